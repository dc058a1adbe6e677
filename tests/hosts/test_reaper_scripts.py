"""ScoreBridge: Score picture, run under Lua 5.4 against the fake REAPER.

The picture edit the script writes is read back with OpenTimelineIO and with the engine's
own reader; the music it places comes from real manifests made by `scorebridge score`.
"""

import json
import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from bridge import timebase as tb
from bridge.render.midi import read_midi
from bridge.timeline import read_timeline
from helpers.reaper.lua_harness import (
    EDITS,
    LUAC,
    SCRIPTS,
    edit_otio,
    edit_project_lua,
    exact_rate,
    lua_string,
    needs_lua,
    run_lua,
    scored_edits,
    tracks_by_tag,
    undo_blocks,
)

pytestmark = needs_lua

SCORE = 'fake.run_script(SCRIPTS .. "scorebridge_score.lua")'
UNDO = ("ScoreBridge: Score picture", -1)


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
    return scored_edits(tmp_path_factory)


def lua_files():
    return sorted(SCRIPTS.glob("*.lua")) + sorted(SCRIPTS.glob("scorebridge/*.lua"))


@pytest.mark.skipif(LUAC is None, reason="luac5.4 is not installed (comes with lua5.4)")
@pytest.mark.parametrize("path", lua_files(), ids=lambda p: str(p.relative_to(SCRIPTS)))
def test_lua_syntax(path):
    # One file per call: Debian's luac 5.4.4 crashes when given several files with -p.
    done = subprocess.run([LUAC, "-p", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def score_once(spec, tmp_path, manifest, extra_before="", extra_after=""):
    """A project holding the edit; the action run; the request answered with `manifest`."""
    body = (
        edit_project_lua(spec, str(tmp_path / "project" / "film.rpp"), extra_before)
        + f"""
{SCORE}
fake.step(2)
fake.progress(1, "0.400 composing 1M1")
fake.step(2)
fake.midi_ready(1, {lua_string(manifest)})   -- a MIDI stage first, as when a WAV follows
fake.step(2)
fake.finish(1, {lua_string(manifest)})
fake.step(2)
{extra_after}
"""
    )
    return run_lua(body, tmp_path)


# --- the picture edit ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EDITS))
def test_writes_the_edit_as_otio(name, tmp_path):
    spec = EDITS[name]
    state = run_lua(edit_project_lua(spec, str(tmp_path / "project" / "film.rpp")) + f"\n{SCORE}\n", tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    [request] = state["requests"]
    written = Path(request["argv"][2])
    assert written == tmp_path / "project" / "ScoreBridge" / "film.otio"

    rate = float(exact_rate(spec))
    tl = otio.adapters.read_from_file(str(written))
    assert tl.name == "film"
    assert tl.global_start_time == otio.opentime.RationalTime(spec["start"] + spec["origin"], rate)
    assert tl.metadata["drop_frame"] is spec["drop"]
    [track] = tl.video_tracks()
    clips = list(track.find_clips())
    assert [(c.name, c.media_reference.target_url) for c in clips] == [(Path(p).name, p) for _, _, p in spec["clips"]]
    assert [
        (c.source_range.start_time.value, c.source_range.duration.value, c.range_in_parent().start_time.value)
        for c in clips
    ] == [
        (first, frames, sum(f for f, _, _ in spec["clips"][:i])) for i, (frames, first, _) in enumerate(spec["clips"])
    ]
    assert all(c.source_range.start_time.rate == rate for c in clips)
    assert [(m.name, m.marked_range.start_time.value, m.marked_range.duration.value) for m in tl.tracks.markers] == [
        (n, f, r[0] if r else 0) for f, n, *r in spec["markers"]
    ]
    # What OpenTimelineIO writes of it reads back the same.
    again = otio.adapters.read_from_string(otio.adapters.write_to_string(tl))
    assert otio.adapters.write_to_string(again) == otio.adapters.write_to_string(tl)

    # The engine reads the same edit from it as from the one OpenTimelineIO wrote.
    mine = read_timeline(written)
    reference = read_timeline(edit_otio(spec, tmp_path / "reference.otio"))
    assert (mine.rate, mine.drop_frame, mine.start_frame, mine.duration) == (
        reference.rate,
        reference.drop_frame,
        reference.start_frame,
        reference.duration,
    )
    assert mine.rate == exact_rate(spec) and mine.drop_frame is spec["drop"]
    assert mine.start_frame == spec["start"] + spec["origin"]
    assert [(s.record_start, s.record_end, s.media_path, s.media_start) for s in mine.segments] == [
        (s.record_start, s.record_end, s.media_path, s.media_start) for s in reference.segments
    ]
    assert mine.hits == reference.hits
    # Regions come out GREEN, markers RED; the rest is the same.
    assert [replace(m, color="") for m in mine.markers] == [replace(m, color="") for m in reference.markers]


def test_timecode_of_the_first_frame(tmp_path):
    """29.97 DF, project start 01:00:00;00, picture two seconds in: the edit starts at
    01:00:02;00 in the engine's reading."""
    spec = EDITS["29.97"]
    run_lua(edit_project_lua(spec, str(tmp_path / "p" / "film.rpp")) + f"\n{SCORE}\n", tmp_path)
    timeline = read_timeline(tmp_path / "p" / "ScoreBridge" / "film.otio")
    assert tb.frames_to_timecode(timeline.start_frame, timeline.rate, timeline.drop_frame) == "01:00:02;00"


def test_picture_track_choice_overlaps_mutes_and_own_markers(tmp_path):
    """No track named Video: the selected track with video wins over the first one; a muted
    item is left out, an overlapping later item cuts the earlier one, SB: markers and
    markers outside the picture are not part of the edit, a play rate becomes a time warp."""
    body = (
        """
fake.setup{ fps = 24.0, offset = 0.0, project = TMP .. "/p/cut.rpp" }
local first = fake.add_track("Ref")
fake.add_item(first, { pos = 0, len = 10, file = "/m/ref.mov" })
local music = fake.add_track("Music")
fake.add_item(music, { pos = 0, len = 10, file = "/m/song.wav", type = "WAVE" })
local pic = fake.add_track("Cut v3", { selected = true })
fake.add_item(pic, { pos = 1.0, len = 3.0, file = "/m/a.mp4" })
fake.add_item(pic, { pos = 3.5, len = 2.0, file = "/m/b.mp4", offs = 1.0, rate = 2.0 })
fake.add_item(pic, { pos = 5.5, len = 1.0, file = "/m/muted.mp4", mute = true })
fake.add_marker{ pos = 2.0, name = "SB: hit cut 00:00:01:00" }
fake.add_marker{ pos = 0.5, name = "before the picture" }
fake.add_marker{ pos = 9.0, name = "after the picture" }
fake.add_marker{ pos = 4.0, name = "  Mood: Tense " }
"""
        + SCORE
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    tl = otio.adapters.read_from_file(str(tmp_path / "p" / "ScoreBridge" / "cut.otio"))
    assert tl.video_tracks()[0].name == "Cut v3"
    clips = list(tl.find_clips())
    assert [(c.name, c.range_in_parent().start_time.value, c.source_range.duration.value) for c in clips] == [
        ("a.mp4", 0, 60),
        ("b.mp4", 60, 48),
    ]
    assert clips[1].source_range.start_time.value == 24
    assert [e.time_scalar for e in clips[1].effects] == [2.0]
    assert [m.name for m in tl.tracks.markers] == ["  Mood: Tense "]
    assert tl.global_start_time.value == 24  # the picture starts one second in
    timeline = read_timeline(tmp_path / "p" / "ScoreBridge" / "cut.otio")
    assert [(m.frame, m.kind, m.mood) for m in timeline.markers] == [(72, "mood", "tense")]


# --- placing the music --------------------------------------------------------------------


def folder_levels(tracks):
    """Each track's folder level (0 = top), from REAPER's relative folder depths."""
    level, out = 0, []
    for t in tracks:
        out.append(level)
        level += t["depth"]
    assert level == 0, "the folders do not close"
    return out


def check_music(state, manifest_path, origin, label, tempo_map=True):
    """Tracks, items and notes placed as the manifest, its notes JSON and its MIDI file say
    (on the MIDI file's ticks too when the cue's tempo map was written)."""
    manifest = json.loads(Path(manifest_path).read_text())
    notes = json.loads(Path(manifest["outputs"]["notes"]).read_text())["parts"]
    midi_parts, midi_tempo, _ = read_midi(manifest["outputs"]["midi"])
    tagged = tracks_by_tag(state)
    names = [t["name"] for t in state["tracks"]]
    levels = dict(zip(names, folder_levels(state["tracks"])))
    assert tagged["folder"]["name"] == "ScoreBridge" and tagged["folder"]["depth"] == 1
    parts = [p for p in notes if p["notes"]]
    assert parts
    for part, midi in zip(parts, [m for m in midi_parts if m["notes"]]):
        track = tagged["part:" + part["name"]]
        assert levels[track["name"]] == levels["ScoreBridge"] + 1
        assert track["name"] == part["name"] == midi["name"]
        [item] = [i for i in track["items"] if i["ext"].get("scorebridge")]
        assert item["ext"]["scorebridge"] == label
        assert item["pos"] == pytest.approx(origin, abs=1e-9)
        assert item["len"] == pytest.approx(manifest["duration_seconds"], abs=1e-9)
        take = item["take"]
        assert take["name"] == part["name"] and take["midi"] and take["sorted"]
        assert [(c["chanmsg"], c["chan"], c["msg2"], c["ppq"]) for c in take["ccs"]] == [
            (0xC0, part["channel"], part["program"], 0)
        ]
        placed = sorted((n["t0"] - origin, n["t1"] - origin, n["pitch"], n["vel"], n["chan"]) for n in take["notes"])
        wanted = sorted((t0, t1, p, v, part["channel"]) for t0, t1, p, v in part["notes"])
        assert len(placed) == len(wanted)
        for got, want in zip(placed, wanted):  # within a tick of the notes JSON
            assert got[2:] == want[2:]
            assert got[0] == pytest.approx(want[0], abs=7e-4)
            assert got[1] == pytest.approx(want[1], abs=7e-4)
        if not tempo_map:
            continue
        # ... and on the MIDI file's own ticks.
        ticks = sorted(
            zip(
                tb.seconds_to_ticks_all([n[0] for n in midi["notes"]], midi_tempo),
                tb.seconds_to_ticks_all([n[1] for n in midi["notes"]], midi_tempo),
                [n[2] for n in midi["notes"]],
            )
        )
        ppqs = sorted((n["ppq0"], n["ppq1"], n["pitch"]) for n in take["notes"])
        for (p0, p1, pitch), (k0, k1, kp) in zip(ppqs, ticks):
            assert pitch == kp and abs(p0 - k0) <= 1 and abs(p1 - k1) <= 1
    return manifest


@pytest.mark.parametrize("name", list(EDITS))
def test_places_the_score(name, tmp_path, scored):
    spec, manifest_path = EDITS[name], scored[name]
    origin = float(spec["origin"] / exact_rate(spec))
    state = score_once(spec, tmp_path, manifest_path)
    assert state["errors"] == [] and state["messages"] == [] and state["deferred"] == 0
    assert undo_blocks(state) == [UNDO]
    assert state["outside_undo"] == [] and state["ui_refresh"] == 0
    assert any("40%  composing 1M1" in line for line in state["console"])
    # placed once, from the final result: the MIDI stage before it was passed over
    assert any(line.strip().endswith(str(manifest_path)) for line in state["console"])
    assert not list((tmp_path / "project" / "ScoreBridge").glob("*.midi.json"))
    manifest = check_music(state, manifest_path, origin, "score")

    # The cue's tempo map and time signatures, from the cue's first frame on.
    tempo = manifest["tempo_map"]
    sigs = {s["beat"]: (s["numerator"], s["denominator"]) for s in manifest["plan"]["time_signatures"]}
    beats = sorted({t["beat"] for t in tempo} | set(sigs))
    tempo_map = [(Fraction(t["beat"]).limit_denominator(1000), t["us_per_quarter"]) for t in tempo]
    assert len(state["tempo"]) == len(beats)
    for marker, beat in zip(state["tempo"], beats):
        seconds = float(tb.beats_to_seconds(Fraction(beat).limit_denominator(1000), tempo_map))
        assert marker["time"] == pytest.approx(origin + seconds, abs=1e-9)
        us = [t["us_per_quarter"] for t in tempo if t["beat"] <= beat][-1]
        assert marker["bpm"] == pytest.approx(60_000_000 / us)
        assert (marker["num"], marker["den"]) == sigs.get(beat, (0, 0))

    # Markers: the user's stay, each hit gets one of ours.
    names = [(round(m["pos"], 6), m["name"]) for m in state["markers"]]
    for frame, marker_name, *_ in spec["markers"]:
        assert (round(float((spec["origin"] + frame) / exact_rate(spec)), 6), marker_name) in names
    ours = [(m["pos"], m["name"]) for m in state["markers"] if m["name"].startswith("SB:")]
    assert ours[0] == (pytest.approx(origin), "SB: cue 1M1")
    assert [(pos, n) for pos, n in ours[1:]] == [
        (pytest.approx(origin + h["seconds"], abs=1e-9), f"SB: hit {h['source']} {h['timecode']}")
        for h in manifest["hits"]
    ]


def test_tempo_map_replaces_only_the_cues_span(tmp_path, scored):
    """Tempo markers before and after the cue stay; those inside it give way to the cue's."""
    spec = EDITS["29.97"]  # the picture starts 2.002 s in
    manifest = json.loads(Path(scored["29.97"]).read_text())
    end = 2.002 + manifest["duration_seconds"]
    user = f"""
fake.add_tempo(1.0, 90.0, 3, 4)
fake.add_tempo(5.0, 140.0)
fake.add_tempo({end + 5!r}, 70.0, 6, 8)
"""
    state = score_once(spec, tmp_path, scored["29.97"], extra_before=user)
    assert state["errors"] == [] and state["messages"] == []
    times = [(round(t["time"], 6), t["bpm"]) for t in state["tempo"]]
    assert times[0] == (1.0, 90.0) and times[-1] == (round(end + 5, 6), 70.0)
    assert (5.0, 140.0) not in times
    inside = state["tempo"][1:-1]
    assert inside[0]["time"] == pytest.approx(2.002) and all(2.002 - 1e-9 <= t["time"] <= end for t in inside)
    check_music(state, scored["29.97"], 2.002, "score")


def part_names(manifest_path):
    manifest = json.loads(Path(manifest_path).read_text())
    parts = json.loads(Path(manifest["outputs"]["notes"]).read_text())["parts"]
    return [p["name"] for p in parts if p["notes"]]


@pytest.mark.parametrize("touch", ["item", "fx"])
def test_rerun_replaces_only_its_own(tmp_path, scored, touch):
    """A second run with another result: parts still wanted are reused (with what the
    composer put on them), parts no longer wanted go unless the composer used them (an item
    or an effect on it), and nothing of the composer's is touched."""
    first, second = part_names(scored["25"]), part_names(scored["29.97"])
    gone = [name for name in first if name not in second]
    assert gone, "the two results must differ in a part for this test"
    used = gone[0]
    action = (
        f'fake.add_item(by_name[{lua_string(used)}], {{ pos = 1, len = 1, file = "/m/mine.mid", type = "MIDI" }})'
        if touch == "item"
        else f'fake.add_fx(by_name[{lua_string(used)}], "ReaSynth")'
    )
    user = f"""
local by_name = {{}}
for _, t in ipairs(fake.state().tracks) do by_name[t.name] = t end
{action}
local dialogue = fake.add_track("Dialogue")
fake.add_item(dialogue, {{ pos = 0, len = 5, file = "/m/dia.wav", type = "WAVE" }})
fake.add_marker{{ pos = 2.5, name = "door slam" }}
fake.run_script(SCRIPTS .. "scorebridge_score.lua")
fake.step(2)
fake.finish(2, {lua_string(scored["29.97"])})
fake.step(2)
"""
    state = score_once(EDITS["25"], tmp_path, scored["25"], extra_after=user)
    assert state["errors"] == [] and state["messages"] == []
    assert undo_blocks(state) == [UNDO, UNDO]
    assert state["outside_undo"] == []
    names = [t["name"] for t in state["tracks"]]
    kept = [n for n in first if n in second or n == used]
    added = [n for n in second if n not in first]
    assert names == ["Video", "ScoreBridge"] + kept + added + ["Dialogue"]
    assert not set(gone[1:]) & set(names), "unused parts nobody touched are removed"
    levels = dict(zip(names, folder_levels(state["tracks"])))
    assert levels == {n: (1 if n in kept + added else 0) for n in names}
    by_name = {t["name"]: t for t in state["tracks"]}
    if touch == "item":
        assert [i["take"]["file"] for i in by_name[used]["items"]] == ["/m/mine.mid"]
    else:
        assert by_name[used]["items"] == [] and by_name[used]["fx"] == ["ReaSynth"]
    assert [i["take"]["file"] for i in by_name["Dialogue"]["items"]] == ["/m/dia.wav"]
    assert len(by_name["Video"]["items"]) == 3
    check_music(state, scored["29.97"], 0.0, "score")
    manifest = json.loads(Path(scored["29.97"]).read_text())
    ours = [m for m in state["markers"] if m["name"].startswith("SB:")]
    assert len(ours) == 1 + len(manifest["hits"])
    assert {"hit", "mood: tense", "door slam"} <= {m["name"] for m in state["markers"]}
    tempo_points = {t["beat"] for t in manifest["tempo_map"]} | {s["beat"] for s in manifest["plan"]["time_signatures"]}
    assert len(state["tempo"]) == len(tempo_points)


def test_settings_shape_the_request_and_the_placement(tmp_path, scored):
    spec = EDITS["25"]
    settings = """
fake.set_ext("scorebridge", "cli", "/opt/score bridge/bin/scorebridge")
fake.set_ext("scorebridge", "seed", "7")
fake.set_ext("scorebridge", "audio", "1")
fake.set_ext("scorebridge", "tempo_map", "0")
fake.set_ext("scorebridge", "markers", "0")
fake.set_ext("scorebridge", "timeout", "120")
fake.set_ext("scorebridge", "palette", "pad = ReaSynth; *=Missing synth")
"""
    state = score_once(spec, tmp_path, scored["25"], extra_before=settings)
    assert state["errors"] == [] and state["messages"] == []
    assert state["execs"][0]["cmd"] == '"/opt/score bridge/bin/scorebridge" "--version"'
    argv = state["requests"][0]["argv"]
    assert argv[:2] == ["/opt/score bridge/bin/scorebridge", "request"]
    assert argv[argv.index("--seed") + 1] == "7" and argv[argv.index("--timeout") + 1] == "120"
    assert "--no-audio" not in argv and "-q" in argv and "--session" not in argv
    assert state["tempo"] == []
    assert not [m for m in state["markers"] if m["name"].startswith("SB:")]
    tagged = tracks_by_tag(state)
    parts = part_names(scored["25"])
    assert "Strings (pad)" in parts  # the hit chords are in the pad family
    for name in parts:
        assert tagged[f"part:{name}"]["fx"] == (["ReaSynth"] if name.endswith("(pad)") else [])
    assert any('no effect or instrument named "Missing synth"' in line for line in state["console"])
    check_music(state, scored["25"], 0.0, "score", tempo_map=False)


# --- what the user is told ----------------------------------------------------------------


def test_missing_executable(tmp_path):
    spec = EDITS["25"]
    state = run_lua(edit_project_lua(spec, "") + "\nfake.exe_missing = true\n" + SCORE, tmp_path)
    assert state["errors"] == [] and state["requests"] == [] and state["undo"] == []
    [box] = state["messages"]
    assert box["title"] == "ScoreBridge" and "engine was not found" in box["msg"]
    assert "scorebridge install reaper" in box["msg"] and "ScoreBridge: Settings" in box["msg"]


@pytest.mark.parametrize(
    "reply, words",
    [
        ("error unreachable: the daemon did not answer within 90 s", "could not be reached"),
        ("error bad_input: cannot read film.otio: no picture", "could not use the picture edit"),
        ("error internal: CUDA out of memory", "failed (internal)"),
    ],
)
def test_daemon_failure(tmp_path, reply, words):
    body = (
        edit_project_lua(EDITS["25"], "")
        + f"""
{SCORE}
fake.step(3)
fake.finish(1, {lua_string(reply)})
fake.step(3)
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["undo"] == [] and state["deferred"] == 0
    [box] = state["messages"]
    assert words in box["msg"] and reply.split(": ", 1)[1] in box["msg"]
    assert not tracks_by_tag(state)


def test_unreadable_result(tmp_path):
    body = (
        edit_project_lua(EDITS["25"], "")
        + f"""
{SCORE}
fake.step(1)
fake.finish(1, TMP .. "/nowhere.manifest.json")
fake.step(2)
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["undo"] == []
    [box] = state["messages"]
    assert "result cannot be read" in box["msg"] and "nowhere.manifest.json" in box["msg"]


def test_client_that_never_answers_times_out(tmp_path):
    body = (
        edit_project_lua(EDITS["25"], "")
        + f"""
fake.set_ext("scorebridge", "timeout", "1")
{SCORE}
fake.step(2200)   -- 66 s of UI cycles: the timeout plus the minute of grace
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["deferred"] == 0
    [box] = state["messages"]
    assert "took too long" in box["msg"]


@pytest.mark.parametrize(
    "setup",
    [
        "",  # an empty project
        'fake.add_track("Video")',  # a picture track without items
        'local t = fake.add_track("Audio")\nfake.add_item(t, { pos = 0, len = 3, file = "/m/a.wav", type = "WAVE" })',
    ],
)
def test_no_picture(tmp_path, setup):
    state = run_lua(f"{setup}\n{SCORE}\n", tmp_path)
    assert state["errors"] == [] and state["requests"] == [] and state["execs"] == []
    [box] = state["messages"]
    assert "No picture found" in box["msg"]


def test_an_error_inside_the_script_is_a_message_not_a_lua_error(tmp_path):
    """A REAPER call failing mid-run (here: the project path holds a double quote, which
    no command line can carry) ends in a message box, never in REAPER's error dialog."""
    body = (
        edit_project_lua(EDITS["25"], "")
        + f"""
fake.set_ext("scorebridge", "cli", '/opt/odd"name/scorebridge')
{SCORE}
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == []
    [box] = state["messages"]
    assert "stopped because of an error" in box["msg"] and "cannot pass this path" in box["msg"]


def test_settings_dialog(tmp_path):
    body = r"""
fake.state().user_inputs = "/usr/local/bin/scorebridge\n0\n1\n42\n0\npad=ReaSynth, warm\n300"
fake.run_script(SCRIPTS .. "scorebridge_settings.lua")
"""
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    asked = state["user_inputs_asked"]
    assert asked["n"] == 7 and "separator=\n" in asked["captions"]
    assert asked["values"].split("\n")[:4] == ["", "1", "1", "1"]
    ext = state["extstate"]
    assert ext["scorebridge/cli"] == "/usr/local/bin/scorebridge"
    assert ext["scorebridge/tempo_map"] == "0" and ext["scorebridge/seed"] == "42"
    assert ext["scorebridge/palette"] == "pad=ReaSynth, warm" and ext["scorebridge/timeout"] == "300"


def test_settings_dialog_refuses_nonsense(tmp_path):
    body = r"""
fake.state().user_inputs = "\nyes\n1\n1\n0\n\n900"
fake.run_script(SCRIPTS .. "scorebridge_settings.lua")
"""
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and "must be 1 or 0" in state["messages"][0]["msg"]
    assert "scorebridge/tempo_map" not in state["extstate"]
