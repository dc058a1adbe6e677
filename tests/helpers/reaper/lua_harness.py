"""Runs ScoreBridge's REAPER scripts under a real Lua 5.4 against the fake REAPER
(fake_reaper.lua) and returns what the fake project looks like afterwards.

A test writes the scenario in Lua: it builds the project with `fake.*`, runs a script
with `fake.run_script(SCRIPTS .. "scorebridge_score.lua")`, steps the UI loop, answers the
client's requests; the harness then dumps the fake's state as JSON for the test to read.
"""

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]  # the checkout
SCRIPTS = ROOT / "reaper_scripts"
FAKE = Path(__file__).resolve().parent / "fake_reaper.lua"

LUA = shutil.which("lua5.4")
LUAC = shutil.which("luac5.4")
needs_lua = pytest.mark.skipif(
    LUA is None,
    reason="lua5.4 is not installed (.ci/setup installs it when run as root; or: sudo apt-get install lua5.4)",
)

NTSC = Fraction(30000, 1001)


def lua_string(text) -> str:
    """A Lua long-bracket-free string literal for a path or text."""
    return json.dumps(str(text))  # JSON string escapes are valid Lua escapes


def run_lua(body: str, tmp_path: Path, timeout=120, env=None) -> dict:
    """Run a scenario (Lua source using `fake`, SCRIPTS and TMP) and return the dump;
    env: the environment of the Lua process (and of what it starts)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state.json"
    prelude = "\n".join(
        [
            f"TMP = {lua_string(tmp_path)}",
            f"SCRIPTS = {lua_string(str(SCRIPTS) + '/')}",
            f"fake = dofile({lua_string(FAKE)})",
            "fake.setup{ resource = TMP .. '/resource' }",
        ]
    )
    scenario = tmp_path / "scenario.lua"
    scenario.write_text(f"{prelude}\n{body}\nfake.dump({lua_string(state)})\n")
    done = subprocess.run([LUA, str(scenario)], cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise AssertionError(f"the Lua scenario failed:\n{done.stderr}\n{done.stdout}")
    return json.loads(state.read_text())


def project_lua(rate="25", drop=False, offset_frames=0, project=None, video_items=(), markers=(), extra="") -> str:
    """Lua that builds a project: a track "Video" with video items (pos, len, offs, file)
    in seconds, markers (pos, name[, region_end]) in seconds, the frame rate and the project
    start time as a frame count at that rate."""
    fps = NTSC if rate == "29.97" else Fraction(rate)
    offset = float(offset_frames / fps)
    lines = [
        f"fake.setup{{ fps = {float(fps)!r}, drop = {str(drop).lower()}, "
        f"offset = {offset!r}, project = {lua_string(project or '')} }}",
        'local video = fake.add_track("Video")',
    ]
    for pos, length, offs, file in video_items:
        lines.append(
            f"fake.add_item(video, {{ pos = {pos!r}, len = {length!r}, offs = {offs!r}, file = {lua_string(file)} }})"
        )
    for pos, name, *region in markers:
        end = f", region_end = {region[0]!r}" if region else ""
        lines.append(f"fake.add_marker{{ pos = {pos!r}, name = {lua_string(name)}{end} }}")
    lines.append(extra)
    return "\n".join(lines)


def tracks_by_tag(state) -> dict:
    return {t["ext"].get("scorebridge"): t for t in state["tracks"] if t["ext"].get("scorebridge")}


def undo_blocks(state) -> list:
    """The names of the undo blocks the scripts closed, checking that they nest properly."""
    names, depth = [], 0
    for event in state["undo"]:
        depth += 1 if event["event"] == "begin" else -1
        assert depth >= 0, "Undo_EndBlock without Undo_BeginBlock"
        if event["event"] == "end":
            names.append((event["name"], event["flags"]))
    assert depth == 0 and state["undo_depth"] == 0, "an undo block was left open"
    return names


# --- edits: the same picture as a REAPER project (for the scripts) and as OTIO (for the engine)

# clips: (frames, source first frame, file); markers: (frame, name[, region frames]);
# origin: where the picture starts in the REAPER project, in frames; start: the project's
# start time (its time offset) as a frame count.
EDITS = {
    "25": dict(
        rate="25",
        drop=False,
        start=90000,
        origin=0,
        clips=[(100, 0, "/media/shots/a.mp4"), (75, 250, "/media/shots/b.mp4"), (125, 0, "/media/shots/c.mp4")],
        markers=[(40, "hit"), (190, "mood: tense")],
    ),
    "29.97": dict(
        rate="29.97",
        drop=True,
        start=107892,
        origin=60,
        clips=[(120, 0, "/media/shots/a.mov"), (90, 300, "/media/shots/b.mov"), (150, 30, "/media/shots/c.mov")],
        markers=[(50, "hit"), (240, "tacet", 30)],
    ),
}


def exact_rate(spec) -> Fraction:
    return NTSC if spec["rate"] == "29.97" else Fraction(spec["rate"])


def edit_project_lua(spec, project, extra="") -> str:
    """Lua that builds the REAPER project holding the edit `spec`."""
    fps = exact_rate(spec)
    items, at = [], spec["origin"]
    for frames, source_first, path in spec["clips"]:
        items.append((float(at / fps), float(frames / fps), float(source_first / fps), path))
        at += frames
    markers = []
    for frame, name, *region in spec["markers"]:
        pos = float((spec["origin"] + frame) / fps)
        markers.append((pos, name) + ((float((spec["origin"] + frame + region[0]) / fps),) if region else ()))
    return project_lua(spec["rate"], spec["drop"], spec["start"], project, items, markers, extra)


def edit_otio(spec, path):
    """The edit `spec` written as OTIO by OpenTimelineIO itself."""
    import opentimelineio as otio

    rate = float(exact_rate(spec))

    def rt(v):
        return otio.opentime.RationalTime(v, rate)

    tl = otio.schema.Timeline(name=Path(path).stem, global_start_time=rt(spec["start"] + spec["origin"]))
    tl.metadata["drop_frame"] = spec["drop"]
    track = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    for frames, source_first, media in spec["clips"]:
        ref = otio.schema.ExternalReference(
            target_url=media, available_range=otio.opentime.TimeRange(rt(0), rt(source_first + frames))
        )
        track.append(
            otio.schema.Clip(
                name=Path(media).name,
                media_reference=ref,
                source_range=otio.opentime.TimeRange(rt(source_first), rt(frames)),
            )
        )
    for frame, name, *region in spec["markers"]:
        tl.tracks.markers.append(
            otio.schema.Marker(
                name=name, marked_range=otio.opentime.TimeRange(rt(frame), rt(region[0] if region else 0))
            )
        )
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(path))
    return path


_SCORED = {}


def scored_edits(tmp_path_factory) -> dict:
    """Both edits scored once per test run by the real engine (`scorebridge score`, no
    audio, one candidate): {"25": manifest path, "29.97": …}. Skips without the model."""
    if not _SCORED:
        import os
        import sys

        base = tmp_path_factory.mktemp("reaper-scored")
        env = dict(os.environ, SCOREBRIDGE_CACHE=str(base / "cache"), SCOREBRIDGE_CONFIG=str(base / "config"))
        for name, spec in EDITS.items():
            stem = "edit" + name.replace(".", "")
            otio_path = edit_otio(spec, base / f"{stem}.otio")
            # The 29.97 edit is scored dark (another palette), so the two results always have
            # different instrument parts, whatever the model plays: re-runs must replace them.
            mood = ["--valence", "-0.8", "--arousal", "-0.8"] if name == "29.97" else []
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bridge",
                    "score",
                    str(otio_path),
                    "--out",
                    str(base / stem),
                    "--no-audio",
                    "--candidates",
                    "1",
                    "--seed",
                    "1",
                    "-q",
                    *mood,
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
            )
            if done.returncode == 4:
                pytest.skip("the shipped music model is not installed: " + done.stderr.strip())
            assert done.returncode == 0, done.stderr
            _SCORED[name] = Path(done.stdout.strip().splitlines()[-1])
    return _SCORED
