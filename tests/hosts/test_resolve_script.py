"""The Resolve script without a daemon: syntax and imports for Resolve's Python, the files
it reads and writes to talk through `scorebridge request`, the edit it exports (read back with bridge.timeline), placement on the
fake Resolve of tests/helpers/resolve (HOSTS.md), and `install`."""

import ast
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from bridge.hosts import resolve as resolve_host
from bridge.timeline import read_timeline
from helpers.resolve.fake import Resolve
from helpers.resolve.helpers import SCRIPT, load_script, write_wav

sb = load_script()


class Quiet(sb.Console):
    """A console that keeps what it would print."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def say(self, text):
        self.lines.extend(str(text).splitlines())


def cut(rate="24", start=86400, **options):
    """A 12-second edit (at 24 fps): three clips, the second with a source offset."""
    resolve = Resolve(rate=rate, start=start, **options)
    fps = float(Fraction(sb.parse_rate(rate)[0]))
    n = lambda seconds: int(round(seconds * fps))  # noqa: E731
    tl = resolve.timeline
    tl.add_clip("a", 0, n(4), path="/media/a.mov")
    tl.add_clip("b", n(4), n(5), left_offset=n(10), path="/media/b.mov")
    tl.add_clip("c", n(9), n(3), path="/media/c.mov")
    return resolve


# --- Resolve's Python ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [SCRIPT, *sorted((SCRIPT.parent / "scorebridge_resolve").glob("*.py"))], ids=lambda p: p.name
)
def test_parses_as_python_36_and_imports_only_the_standard_library(path):
    tree = ast.parse(path.read_text(), feature_version=(3, 6))
    names = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    names |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and not node.level
    }
    names -= {"DaVinciResolveScript", "scorebridge_resolve"}  # Resolve's own module; the script's own package
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)
    for node in ast.walk(tree):  # 3.7+ library calls a 3.6 Python does not have
        if isinstance(node, ast.keyword):
            assert node.arg not in ("capture_output", "text"), node.arg


def test_the_menu_entry_is_small_and_the_modules_are_a_package():
    assert len(SCRIPT.read_text().splitlines()) < 60
    package = load_script()
    assert package.main is package.app.main and package.common.INSTALLED_CLI is None


# --- the request, through `scorebridge request` ---------------------------------------------


def test_the_script_speaks_no_protocol_of_its_own():
    # the wire format lives in bridge/daemon/protocol.py; the script asks `scorebridge request`
    for path in (SCRIPT.parent / "scorebridge_resolve").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert "socket" not in imported and "struct" not in imported, path.name


def test_a_job_reads_the_files_the_client_writes_in_order(tmp_path):
    result = str(tmp_path / "request.result")
    job = sb.request.Job(None, result, revision=3)
    assert job.poll() == []
    Path(result + ".progress").write_text("0.250 composing 1M1\n")
    assert job.poll() == [("progress", 0.25, "composing 1M1")]
    assert job.poll() == []  # the same line is not news
    Path(result + ".midi.json").write_text("{}")
    Path(result + ".wav.json").write_text("{}")
    Path(result + ".progress").write_text("0.900 writing the stems\n")
    assert job.poll() == [
        ("midi", result + ".midi.json"),
        ("wav", result + ".wav.json"),
        ("progress", 0.9, "writing the stems"),
    ]
    Path(result).write_text("/takes/r3/1M1.json")  # not yet whole: no newline
    assert job.poll() == []
    Path(result).write_text("/takes/r3/1M1.json\n")
    assert job.poll() == [("done", "/takes/r3/1M1.json")] and job.ended
    assert job.poll() == []


def test_a_job_reads_an_error_and_a_cancel_is_a_file(tmp_path):
    result = str(tmp_path / "request.result")
    job = sb.request.Job(None, result)
    job.cancel()
    assert Path(result + ".cancel").read_text() == "cancel\n"  # the client takes it (client.cancel_file)
    Path(result).write_text("error bad_input: no such timeline: /x.otio\n")
    assert job.poll() == [("error", "bad_input", "no such timeline: /x.otio")]


def test_start_passes_the_options_and_the_session_and_clears_old_files(tmp_path):
    seen = tmp_path / "argv.json"
    fake = tmp_path / "scorebridge"
    fake.write_text(
        "#!%s\nimport json, sys\nopen(%r, 'w').write(json.dumps(sys.argv[1:]))\n" % (sys.executable, str(seen))
    )
    fake.chmod(0o755)
    result = str(tmp_path / "take" / "request.result")
    os.makedirs(os.path.dirname(result))
    for suffix in ("", ".progress", ".midi.json", ".wav.json", ".cancel"):
        Path(result + suffix).write_text("left by an earlier run\n")
    job = sb.request.start([str(fake)], "/e/cut.otio", "/e/take", {"seed": 3, "stems": False}, result, "s1", 2)
    job.process.wait(timeout=60)
    argv = json.loads(seen.read_text())
    assert argv[:2] == ["request", "/e/cut.otio"] and argv[argv.index("--manifest-file") + 1] == result
    assert json.loads(argv[argv.index("--options") + 1]) == {"seed": 3, "stems": False}
    assert argv[argv.index("--session") + 1 :][:3] == ["s1", "--revision", "2"]
    assert not any(os.path.exists(result + suffix) for suffix in ("", ".progress", ".midi.json", ".wav.json"))
    [(kind, code, message)] = job.poll()  # it ended without writing a result
    assert (kind, code) == ("error", "client") and "exit code 0" in message


# --- reading the edit --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rate, drop",
    [
        ("24", Fraction(24), False),
        ("23.976", Fraction(24000, 1001), False),
        ("25", Fraction(25), False),
        ("29.97 DF", Fraction(30000, 1001), True),
        ("29.97", Fraction(30000, 1001), False),
        ("59.94 DF", Fraction(60000, 1001), True),
        ("30 NDF", Fraction(30), False),
    ],
)
def test_parse_rate(text, rate, drop):
    assert sb.parse_rate(text) == (rate, drop)


def built(resolve, tmp_path):
    ctx = sb.Context(resolve, Quiet())
    path = tmp_path / "built.otio"
    path.write_text(json.dumps(sb.build_otio(ctx)))
    return read_timeline(path)


@pytest.mark.parametrize(
    "rate, start, marker_frames",
    [
        ("24", 86400, "relative"),
        ("29.97 DF", 86400, "relative"),
        ("29.97 DF", 107892, "absolute"),
        ("23.976", 86314, "relative"),
    ],
)
def test_built_otio_reads_frame_exact(tmp_path, rate, start, marker_frames):
    resolve = cut(rate, start, marker_frames=marker_frames)
    tl = resolve.timeline
    tl.user_marker(30, "hit: door slam")
    tl.user_marker(50, "mood: tense", duration=20)
    tl.user_marker(40, "SB: hit cut", custom="scorebridge")  # ScoreBridge's own: ignored
    timeline = built(resolve, tmp_path)
    exact, drop = sb.parse_rate(rate)
    fps = float(exact)
    cuts = [int(round(4 * fps)), int(round(9 * fps))]
    assert timeline.rate == exact and timeline.drop_frame == drop
    assert timeline.start_frame == start
    assert timeline.duration == int(round(12 * fps))
    assert [(h.frame, h.source) for h in timeline.hits] == sorted([(30, "marker")] + [(c, "cut") for c in cuts])
    assert [(m.frame, m.kind, m.duration) for m in timeline.markers] == [(30, "hit", 1), (50, "mood", 20)]
    b = timeline.segments[1]
    assert (b.name, b.media_path, b.media_start) == ("b", "/media/b.mov", pytest.approx(int(round(10 * fps)) / fps))


def test_built_otio_fills_gaps_and_reads_every_video_track(tmp_path):
    resolve = Resolve(rate="25", start=90000)
    tl = resolve.timeline
    tl.add_clip("a", 25, 50, path="/media/a.mov")  # a gap first
    tl.add_clip("b", 100, 50, path="/media/b.mov")  # a gap between
    tl.add_clip("title", 60, 20, track=2)  # no media pool item: a generator over the gap
    timeline = built(resolve, tmp_path)
    assert [(s.kind, s.record_start, s.record_end) for s in timeline.segments] == [
        ("gap", 0, 25),
        ("clip", 25, 75),
        ("clip", 75, 80),
        ("gap", 80, 100),
        ("clip", 100, 150),
    ]


@pytest.mark.parametrize("on", ["stack", "track"])
def test_resolve_export_and_the_built_otio_agree(tmp_path, on):
    resolve = cut("29.97 DF", 107892, export_markers_on=on)
    resolve.timeline.user_marker(30, "hit")
    ctx = sb.Context(resolve, Quiet())
    path = tmp_path / "exported.otio"
    assert sb.export_edit(ctx, str(path)) == "export"
    exported = read_timeline(path)
    assert json.loads(path.read_text())["metadata"]["drop_frame"] is True  # added for Resolve's export
    fallback = built(resolve, tmp_path)
    for field in ("rate", "drop_frame", "start_frame", "duration"):
        assert getattr(exported, field) == getattr(fallback, field)
    assert [(h.frame, h.source) for h in exported.hits] == [(h.frame, h.source) for h in fallback.hits]


def test_export_falls_back_to_building_the_edit(tmp_path):
    for resolve in (cut(export_otio=False), cut(version=(18, 1, 4, 9, ""))):
        ctx = sb.Context(resolve, Quiet())
        path = tmp_path / "edit.otio"
        assert sb.export_edit(ctx, str(path)) == "built"
        assert len(read_timeline(path).hits) == 2


def test_signature_follows_the_picture_and_user_markers_only():
    resolve = cut()
    ctx = sb.Context(resolve, Quiet())
    tl = resolve.timeline
    first = sb.edit_signature(ctx)
    tl.markers[12] = {"name": "SB: hit cut", "customData": "scorebridge", "note": "", "duration": 1}
    tl.audio[0]["items"].append(object())
    assert sb.edit_signature(ctx) == first
    tl.user_marker(20, "hit")
    second = sb.edit_signature(ctx)
    assert second != first
    tl.video[0][1].start += 5
    assert sb.edit_signature(ctx) != second
    resolve.faults.fail("GetMarkers")
    assert sb.edit_signature(ctx) is None  # a failed call is no edit


# --- placing -----------------------------------------------------------------------------


def manifest_for(tmp_path, resolve, hits=(96, 216), frames=288, cue="1M1"):
    fps = float(sb.parse_rate(resolve.timeline.rate)[0])
    wav = write_wav(tmp_path / f"cue-{cue}-{len(os.listdir(tmp_path))}.wav", frames / fps)
    return {
        "duration_frames": frames,
        "duration_seconds": frames / fps,
        "fps": fps,
        "start_timecode": "01:00:00:00",
        "plan": {"cue": cue},
        "hits": [{"frame": f, "seconds": f / fps, "source": "cut", "timecode": "", "name": ""} for f in hits],
        "outputs": {"wav": wav, "midi": str(tmp_path / "cue.mid")},
        "warnings": [],
    }


@pytest.fixture
def out_here(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREBRIDGE_RESOLVE_OUT", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("inclusive", [True, False])
def test_placement_length_is_checked_whichever_way_endframe_counts(out_here, inclusive):
    resolve = cut()
    resolve.media_pool.end_inclusive = inclusive
    ctx = sb.Context(resolve, Quiet())
    summary = sb.place_result(ctx, manifest_for(out_here, resolve))
    track = resolve.timeline.audio[summary["track"] - 1]
    assert track["name"] == "ScoreBridge 1M1" and track["subtype"] == "stereo"
    [item] = track["items"]
    assert (item.start, item.length) == (86400, 288)
    assert resolve.faults.count("AppendToTimeline") == (1 if inclusive else 2)


def test_a_dropped_append_is_caught_by_relisting(out_here):
    resolve = cut()
    ctx = sb.Context(resolve, Quiet())
    wav = manifest_for(out_here, resolve)["outputs"]["wav"]
    pool_item = sb.import_wav(ctx, wav)
    resolve.timeline.audio[0]["items"].append(
        __import__("helpers.resolve.fake", fromlist=["TimelineItem"]).TimelineItem(resolve, "dialogue", 86500, 50)
    )
    assert resolve.media_pool.AppendToTimeline(
        [
            {
                "mediaPoolItem": pool_item,
                "startFrame": 0,
                "endFrame": 287,
                "mediaType": 2,
                "trackIndex": 1,
                "recordFrame": 86400,
            }
        ]
    )
    assert sb.append_wav(ctx, pool_item, 1, 86400, 288) is None  # answered, but not placed
    assert [i.name for i in resolve.timeline.audio[0]["items"]] == ["dialogue"]


@pytest.mark.parametrize(
    "marker_frames, user_markers", [("relative", True), ("relative", False), ("absolute", True), ("absolute", False)]
)
def test_hit_markers_land_on_hit_frames_either_marker_convention(out_here, marker_frames, user_markers):
    resolve = cut(marker_frames=marker_frames)
    tl = resolve.timeline
    if user_markers:
        tl.user_marker(10, "note to self")
        tl.user_marker(96, "hit")  # the user's marker on a hit frame stays theirs
    ctx = sb.Context(resolve, Quiet())
    summary = sb.place_result(ctx, manifest_for(out_here, resolve, hits=(50, 96, 216)))
    ours = {f: m for f, m in tl.markers.items() if m["customData"] == "scorebridge"}
    assert sorted(ours) == ([50, 216] if user_markers else [50, 96, 216])
    assert all(m["name"].startswith("SB: hit") for m in ours.values())
    assert summary["markers_skipped"] == (1 if user_markers else 0)
    assert summary["markers_failed"] == 0


def test_replacing_keeps_user_material(out_here):
    resolve = cut()
    tl = resolve.timeline
    tl.user_marker(10, "note to self")
    ctx = sb.Context(resolve, Quiet())
    first = sb.place_result(ctx, manifest_for(out_here, resolve, hits=(96, 216)))
    second = sb.place_result(sb.Context(resolve, Quiet()), manifest_for(out_here, resolve, hits=(100,), cue="1M2"))
    assert first["track"] == second["track"] == 2 and len(tl.audio) == 2
    assert tl.audio[1]["name"] == "ScoreBridge 1M2"
    [item] = tl.audio[1]["items"]
    assert item.pool_item.path == second["wav"]
    assert [c.path for c in resolve.media_pool.folder("ScoreBridge").clips] == [second["wav"]]
    assert {f: m["name"] for f, m in tl.markers.items()} == {10: "note to self", 100: "SB: hit cut"}


def test_stems_go_on_tracks_of_their_own_when_asked(out_here, monkeypatch):
    resolve = cut()
    tl = resolve.timeline

    def with_stems(cue):
        manifest = manifest_for(out_here, resolve, cue=cue)
        manifest["outputs"]["stems"] = {
            role: write_wav(out_here / f"{cue}-{role}.wav", 288 / 24.0) for role in ("pad", "percussion")
        }
        return manifest

    plain = sb.place_result(sb.Context(resolve, Quiet()), with_stems("1M1"))
    assert "stems" not in plain and len(tl.audio) == 2  # off unless set
    assert "SCOREBRIDGE_RESOLVE_STEMS" in sb.describe(with_stems("1M1"), plain)
    monkeypatch.setenv("SCOREBRIDGE_RESOLVE_STEMS", "1")
    first = sb.place_result(sb.Context(resolve, Quiet()), with_stems("1M1"))
    second = sb.place_result(sb.Context(resolve, Quiet()), with_stems("1M2"))
    assert first["track"] == second["track"] == 2  # the mix keeps its track
    assert first["stems"] == second["stems"] == {"pad": 3, "percussion": 4}
    assert [t["name"] for t in tl.audio[2:]] == ["ScoreBridge stem pad", "ScoreBridge stem percussion"]
    for track, role in zip(tl.audio[2:], ("pad", "percussion")):
        [item] = track["items"]
        assert (item.start, item.length) == (86400, 288) and item.pool_item.path.endswith(f"1M2-{role}.wav")
    assert "Stems on their own tracks: pad on 3, percussion on 4." in sb.describe(with_stems("1M2"), second)


def test_calls_that_fail_now_and_then_are_retried(out_here):
    resolve = cut()
    for name in (
        "AddTrack",
        "SetCurrentFolder",
        "ImportMedia",
        "AppendToTimeline",
        "AddMarker",
        "GetItemListInTrack",
        "GetStartFrame",
    ):
        resolve.faults.fail(name, 2)
    summary = sb.place_result(sb.Context(resolve, Quiet()), manifest_for(out_here, resolve))
    assert summary["placed_frames"] == 288 and summary["markers"] == 2
    assert len(resolve.media_pool.folder("ScoreBridge").clips) == 1


def test_a_call_that_keeps_failing_is_one_clear_message(out_here):
    resolve = cut()
    resolve.faults.fail("AppendToTimeline", None)
    with pytest.raises(sb.Failure, match="did not put the music on the timeline.*dialog"):
        sb.place_result(sb.Context(resolve, Quiet()), manifest_for(out_here, resolve))


def test_main_without_a_timeline_says_so(capsys):
    resolve = cut()
    resolve.faults.fail("GetCurrentTimeline", None)
    report = sb.main(resolve)
    out = capsys.readouterr().out
    assert not report["ok"] and "open one on the Edit page" in report["message"]
    assert "ERROR" in out and "Traceback" not in out
    assert sb.main(None)["message"].startswith("no Resolve scripting object")


def test_free_and_studio_are_told_apart(capsys):
    assert sb.edition(cut()) == ("DaVinci Resolve Studio", (19, 1, 3), True)
    free = cut(product="DaVinci Resolve", version=(20, 2, 1, 5, ""))
    assert sb.edition(free) == ("DaVinci Resolve", (20, 2, 1), False)
    free.faults.fail("GetCurrentTimeline", None)
    message = sb.main(free)["message"]
    assert "On the free DaVinci Resolve" in message and "scorebridge score" in message
    studio = cut()
    studio.faults.fail("GetCurrentTimeline", None)
    assert "free" not in sb.main(studio)["message"]
    capsys.readouterr()


# --- install -----------------------------------------------------------------------------


def test_install_into_a_folder(tmp_path):
    dest = tmp_path / "Fusion" / "Scripts" / "Utility"
    [path] = resolve_host.install(dest)
    assert path == dest / "ScoreBridge.py"
    text = path.read_text()
    ast.parse(text, feature_version=(3, 6))
    line = next(row for row in text.splitlines() if row.startswith("INSTALLED_CLI = "))
    command = ast.literal_eval(line.split("=", 1)[1].split("#")[0].strip())
    assert command and Path(command[0]).exists()
    line = next(row for row in text.splitlines() if row.startswith("MODULES = "))
    modules = Path(ast.literal_eval(line.split("=", 1)[1].split("#")[0].strip()))
    assert (modules / "scorebridge_resolve" / "__init__.py").is_file()
    assert resolve_host.install(dest) == [path]  # again: replaced, not doubled
    # the installed entry, run from Resolve's folder, finds the package where MODULES says
    probe = (
        "import runpy, sys; entry = runpy.run_path(sys.argv[1]); "
        "print(entry['scorebridge'].__file__, entry['scorebridge'].common.INSTALLED_CLI is not None)"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=dest, capture_output=True, text=True, check=True)
    found, told = out.stdout.split()
    assert Path(found).parent.parent == modules and told == "True"


@pytest.mark.parametrize(
    "system, parts",
    [
        ("Linux", (".local", "share", "DaVinciResolve", "Fusion", "Scripts", "Utility")),
        (
            "Darwin",
            ("Library", "Application Support", "Blackmagic Design", "DaVinci Resolve", "Fusion", "Scripts", "Utility"),
        ),
    ],
)
def test_default_folders(monkeypatch, tmp_path, system, parts):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_host.default_dir(system) == tmp_path.joinpath(*parts)


def test_default_folder_on_windows(monkeypatch, tmp_path):
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert resolve_host.default_dir("Windows") == tmp_path.joinpath(
        "Roaming", "Blackmagic Design", "DaVinci Resolve", "Support", "Fusion", "Scripts", "Utility"
    )


def test_install_by_default_creates_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(resolve_host.platform, "system", lambda: "Linux")
    [path] = resolve_host.install()
    assert path == tmp_path / ".local/share/DaVinciResolve/Fusion/Scripts/Utility/ScoreBridge.py"
