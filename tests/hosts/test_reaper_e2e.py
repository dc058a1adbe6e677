"""End to end: the installed Score picture action, in the fake REAPER, really starts
`scorebridge request` in the background against a real daemon, polls its result file and
places the music the engine made."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.hosts import reaper
from helpers import ROOT
from helpers.reaper.lua_harness import lua_string, needs_lua, project_lua, run_lua, tracks_by_tag, undo_blocks

pytestmark = needs_lua

MODEL = ROOT / "models" / "scorebridge-music.safetensors"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not MODEL.exists(), reason="the shipped music model is not installed")
def test_score_picture_through_a_real_daemon(tmp_path):
    env = dict(
        os.environ,
        SCOREBRIDGE_PORT=str(free_port()),
        SCOREBRIDGE_TOKEN="reaper-e2e-token",
        SCOREBRIDGE_CONFIG=str(tmp_path / "config"),
        SCOREBRIDGE_STATE=str(tmp_path / "state"),
        SCOREBRIDGE_CACHE=str(tmp_path / "cache"),
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve", "--port", env["SCOREBRIDGE_PORT"]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Ready before the client looks, so that it never starts a daemon of its own.
        from bridge.daemon import client

        port = int(env["SCOREBRIDGE_PORT"])
        deadline = time.monotonic() + 60
        while not client.ping("127.0.0.1", port, env["SCOREBRIDGE_TOKEN"], timeout=0.5):
            assert daemon.poll() is None and time.monotonic() < deadline, "the daemon did not start"
        resource = tmp_path / "resource"
        reaper.install(dest=resource)
        script = resource / "Scripts" / "ScoreBridge" / "scorebridge_score.lua"
        # Four seconds of picture, one cut, a hit marker; 25 fps from 10:00:00:00.
        body = (
            project_lua(
                "25",
                False,
                900000,
                str(tmp_path / "p" / "film.rpp"),
                [(0.0, 2.0, 0.0, "/m/a.mp4"), (2.0, 2.0, 5.0, "/m/b.mp4")],
                [(1.0, "hit")],
            )
            + f"""
fake.exec_mode = "real"
fake.run_script({lua_string(script)})
local function finished()
  return #fake.state().messages > 0 or #fake.state().errors > 0
    or (fake.state().cycles > 0 and #fake.state().defer_queue == 0)
end
fake.checks.finished = fake.step_until(finished, 900, 0.1)
"""
        )
        started = time.monotonic()
        state = run_lua(body, tmp_path, timeout=180, env=env)
        elapsed = time.monotonic() - started
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=30)
    assert state["errors"] == [] and state["messages"] == [], state["messages"]
    assert state["checks"]["finished"], f"no result after {elapsed:.0f} s"
    [request] = state["requests"]
    assert request["argv"][:2] == [*reaper.own_command(), "request"][:2]
    assert undo_blocks(state) == [("ScoreBridge: Score picture", -1)]
    manifest_path = tmp_path / "p" / "ScoreBridge" / "film.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["start_timecode"] == "10:00:00:00" and manifest["duration_seconds"] == 4.0
    assert [(h["seconds"], h["source"]) for h in manifest["hits"]] == [(1.0, "marker"), (2.0, "cut")]
    parts = [p for p in json.loads(Path(manifest["outputs"]["notes"]).read_text())["parts"] if p["notes"]]
    tagged = tracks_by_tag(state)
    assert {t[5:] for t in tagged if t.startswith("part:")} == {p["name"] for p in parts}
    assert sum(len(i["take"]["notes"]) for t in tagged.values() for i in t["items"]) == sum(
        len(p["notes"]) for p in parts
    )
    assert not Path(request["result"]).exists()  # read and removed
    print(f"end to end: {elapsed:.1f} s")
