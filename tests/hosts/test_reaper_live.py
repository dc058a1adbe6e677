"""ScoreBridge: Live score (toggle), run under Lua 5.4 against the fake REAPER: edits are
debounced into revisions, only the newest revision's music is placed, the toggle stops it."""

import json
from pathlib import Path

import pytest

from helpers.reaper.lua_harness import (
    EDITS,
    edit_project_lua,
    lua_string,
    needs_lua,
    run_lua,
    scored_edits,
    tracks_by_tag,
    undo_blocks,
)

pytestmark = needs_lua

LIVE = 'fake.run_script(SCRIPTS .. "scorebridge_live.lua")'
UNDO = ("ScoreBridge: Live score", -1)


@pytest.fixture(scope="session")
def scored(tmp_path_factory):
    return scored_edits(tmp_path_factory)


def project(tmp_path, extra=""):
    return edit_project_lua(EDITS["25"], str(tmp_path / "p" / "film.rpp"), extra)


def option(argv, name):
    return argv[argv.index(name) + 1]


def live_toggle(state):
    """The states the action's toolbar button was refreshed with."""
    live_id = state["command_ids"][next(k for k in state["command_ids"] if k.endswith("scorebridge_live.lua"))]
    return [t["state"] for t in state["toolbar"] if t["command"] == live_id]


def test_edits_are_debounced_and_only_the_newest_revision_is_placed(tmp_path, scored):
    body = (
        project(tmp_path)
        + f"""
local video = fake.state().tracks[1]
{LIVE}
fake.step(2)
fake.checks.at_start = #fake.requests                 -- revision 1 goes at once
fake.move_item(video.items[1], 0.52)                  -- the picture now starts 13 frames in
fake.step(10)
fake.add_marker{{ pos = 5.0, name = "hit" }}          -- another edit 0.3 s later
fake.step(40)
fake.checks.while_editing = #fake.requests            -- 1.2 s after the last edit: nothing yet
fake.step(20)
fake.checks.after_pause = #fake.requests              -- 1.5 s still: revision 2
fake.finish(1, {lua_string(scored["29.97"])})         -- revision 1 ends after revision 2 was sent
fake.step(3)
fake.checks.tracks_after_stale = #fake.state().tracks
fake.progress(2, "0.700 composing 1M1")
fake.step(2)
fake.finish(2, {lua_string(scored["25"])})
fake.step(3)
fake.step(100)                                         -- placing is no edit of the picture
fake.checks.after_placing = #fake.requests
fake.move_item(video.items[3], 7.2)
fake.step(60)
fake.checks.third = #fake.requests
fake.finish(3, "error stale: superseded by a newer revision")
fake.step(3)
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    checks = state["checks"]
    assert checks["at_start"] == 1
    assert checks["while_editing"] == 1 and checks["after_pause"] == 2
    assert checks["tracks_after_stale"] == 1  # revision 1's music was not placed
    assert checks["after_placing"] == 2 and checks["third"] == 3

    requests = [r["argv"] for r in state["requests"]]
    sessions = {option(a, "--session") for a in requests}
    assert len(sessions) == 1 and next(iter(sessions)).startswith("reaper-")
    assert [option(a, "--revision") for a in requests] == ["1", "2", "3"]
    live_otio = tmp_path / "p" / "ScoreBridge" / "film.live.otio"
    assert {a[2] for a in requests} == {str(live_otio)}
    assert [option(a, "--manifest-file") for a in requests] == [
        str(tmp_path / "p" / "ScoreBridge" / f"film.live-{n}.result") for n in (1, 2, 3)
    ]
    # The OTIO sent last is the edit as it is now.
    assert json.loads(live_otio.read_text())["global_start_time"]["value"] == 90000 + 13

    assert undo_blocks(state) == [UNDO]
    assert state["outside_undo"] == []
    tagged = tracks_by_tag(state)
    manifest = json.loads(Path(scored["25"]).read_text())
    for tag, track in tagged.items():
        if tag != "folder":
            [item] = track["items"]
            assert item["pos"] == pytest.approx(0.52) and item["ext"]["scorebridge"] == "live 2"
            assert item["len"] == pytest.approx(manifest["duration_seconds"])
    console = "".join(state["console"])
    assert "revision 1 superseded, not placed" in console
    assert "revision 2 placed" in console and "revision 3 superseded, not placed" in console
    assert " 70%  composing 1M1" in console
    assert state["deferred"] == 1 and live_toggle(state) == [1]


def test_the_midi_is_placed_as_soon_as_it_is_ready_and_the_wav_places_nothing_more(tmp_path, scored):
    manifest = json.loads(Path(scored["25"]).read_text())
    early = tmp_path / "early.json"  # what the client copies beside FILE when the MIDI is ready
    early.write_text(json.dumps(dict(manifest, stage="midi", outputs=dict(manifest["outputs"], wav=None))))
    body = (
        project(tmp_path)
        + f"""
{LIVE}
fake.step(2)
fake.midi_ready(1, {lua_string(str(early))})
fake.step(3)
fake.checks.tracks_on_midi = #fake.state().tracks
fake.finish(1, {lua_string(scored["25"])})
fake.step(3)
fake.checks.tracks_on_done = #fake.state().tracks
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    assert state["checks"]["tracks_on_midi"] > 1  # placed before the job ended
    assert state["checks"]["tracks_on_done"] == state["checks"]["tracks_on_midi"]
    assert undo_blocks(state) == [UNDO]  # one placement, one undo step
    console = "".join(state["console"])
    assert "revision 1 placed (MIDI; the WAV follows)" in console
    assert "revision 1: the WAV is ready too" in console
    assert not list((tmp_path / "p" / "ScoreBridge").glob("*.midi.json"))


def test_running_the_action_again_stops_it(tmp_path):
    body = (
        project(tmp_path)
        + f"""
{LIVE}
fake.step(5)
fake.checks.running = fake.state().toggles["0:" .. fake.command_id(SCRIPTS .. "scorebridge_live.lua")]
{LIVE}
fake.move_item(fake.state().tracks[1].items[2], 4.5)
fake.step(100)
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    assert state["checks"]["running"] == 1
    assert state["action_options"] & 1  # REAPER ends it when run again
    assert state["deferred"] == 0 and state["atexit_pending"] == 0
    assert live_toggle(state) == [1, 0]
    assert len(state["requests"]) == 1  # the edit after stopping sent nothing
    assert state["extstate"]["scorebridge/live_running"] == ""
    assert "ScoreBridge live: off\n" in state["console"]


def test_stops_on_reapers_without_action_options(tmp_path):
    """Before REAPER 7.03 a second instance starts; it asks the first one to stop."""
    body = (
        project(tmp_path)
        + f"""
fake.has_action_options = false
{LIVE}
fake.step(5)
{LIVE}
fake.step(3)
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    assert state.get("action_options") is None
    assert state["deferred"] == 0 and live_toggle(state) == [1, 0]
    assert len(state["requests"]) == 1
    assert state["extstate"]["scorebridge/live_stop"] == ""


def test_unreachable_daemon_is_said_once_and_stops_live_mode(tmp_path):
    body = (
        project(tmp_path)
        + f"""
{LIVE}
fake.step(3)
fake.finish(1, "error unreachable: the daemon did not answer within 90 s")
fake.step(5)
"""
    )
    state = run_lua(body, tmp_path)
    assert state["errors"] == []
    [box] = state["messages"]
    assert "could not be reached" in box["msg"]
    assert state["deferred"] == 0 and live_toggle(state) == [1, 0]


def test_missing_executable_never_turns_it_on(tmp_path):
    state = run_lua(project(tmp_path) + f"\nfake.exe_missing = true\n{LIVE}\nfake.step(3)\n", tmp_path)
    assert state["errors"] == [] and state["requests"] == []
    [box] = state["messages"]
    assert "engine was not found" in box["msg"]
    assert live_toggle(state) == [] and state["deferred"] == 0


def test_waits_for_a_picture(tmp_path):
    body = f"""
fake.setup{{ fps = 25.0, project = TMP .. "/p/film.rpp" }}
{LIVE}
fake.step(10)
fake.checks.before = #fake.requests
local video = fake.add_track("Video")
fake.add_item(video, {{ pos = 0, len = 4, file = "/m/a.mp4" }})
fake.step(3)
"""
    state = run_lua(body, tmp_path)
    assert state["errors"] == [] and state["messages"] == []
    assert state["checks"]["before"] == 0 and len(state["requests"]) == 1
    assert any("waiting for a picture" in line for line in state["console"])
