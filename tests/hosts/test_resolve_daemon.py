"""main(resolve) on the fake Resolve against the real daemon (`python -m bridge serve` on a
free loopback port, started once for the module): one score, a re-run, failing calls, a
daemon the script has to start itself, and live mode.

Edits are 12 s with three clips and no media (analysed from their cuts, with a warning),
scored with one candidate, so a job takes about a second.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers.resolve import fake_ui
from helpers.resolve.fake import Resolve, Timeline
from helpers.resolve.helpers import FAST, ROOT, cli, daemon_env, free_port, load_script, start_daemon, stop_process

sb = load_script()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    base = tmp_path_factory.mktemp("resolve-daemon")
    port = free_port()
    process = start_daemon(base, port)
    yield base, port
    stop_process(process)


@pytest.fixture(autouse=True)
def _env(daemon, monkeypatch, tmp_path):
    """The script finds the module's daemon and writes its takes under tmp_path."""
    base, port = daemon
    for key, value in daemon_env(base, port).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SCOREBRIDGE_RESOLVE_OUT", str(tmp_path / "takes"))
    monkeypatch.delenv("SCOREBRIDGE_LIVE", raising=False)


def cut(rate="24", start=86400, **options):
    """12 s: cuts at 4 s and 9 s, and a user marker."""
    resolve = Resolve(rate=rate, start=start, **options)
    fps = float(sb.parse_rate(rate)[0])
    n = lambda seconds: int(round(seconds * fps))  # noqa: E731
    tl = resolve.timeline
    tl.add_clip("a", 0, n(4), path="/nowhere/a.mov")
    tl.add_clip("b", n(4), n(5), left_offset=n(2), path="/nowhere/b.mov")
    tl.add_clip("c", n(9), n(3), path="/nowhere/c.mov")
    tl.user_marker(n(6), "hit: door", note="slam")
    return resolve, n


def ours(resolve):
    return {f: m for f, m in resolve.timeline.markers.items() if m["customData"] == "scorebridge"}


def our_items(resolve):
    return [i for t in resolve.timeline.audio if t["name"].startswith("ScoreBridge") for i in t["items"]]


@pytest.mark.parametrize(
    "rate, start, export", [("24", 86400, True), ("29.97 DF", 86400, False), ("29.97 DF", 107892, True)]
)
def test_scores_once_and_places_the_music(capsys, rate, start, export):
    resolve, n = cut(rate, start, export_otio=export)
    tl = resolve.timeline
    report = sb.main(resolve, options=FAST)
    out = capsys.readouterr().out
    assert report["ok"], out
    manifest = json.loads(Path(report["manifest"]).read_text())
    assert manifest["start_seconds"] == pytest.approx(start / float(sb.parse_rate(rate)[0]), abs=1e-6)
    # the WAV, imported into the ScoreBridge bin
    [pool_item] = resolve.media_pool.folder("ScoreBridge").clips
    assert pool_item.path == manifest["outputs"]["wav"] and os.path.isfile(pool_item.path)
    # on a new stereo track named for the cue, from the first frame, as long as the edit
    cue = manifest["plan"]["cue"]
    track = tl.audio[-1]
    assert len(tl.audio) == 2 and track["name"] == f"ScoreBridge {cue}" and track["subtype"] == "stereo"
    [item] = track["items"]
    assert item.pool_item is pool_item
    assert (item.start, item.length) == (start, n(12)) == (start, manifest["duration_frames"])
    calls = [c[0] for c in resolve.faults.calls]
    append = calls.index("AppendToTimeline")
    assert "GetItemListInTrack" in calls[append:]  # re-listed to check the placement
    # a marker on every hit that was not the user's, tagged
    assert sorted(ours(resolve)) == [n(4), n(9)]
    assert all(m["name"].startswith("SB: ") for m in ours(resolve).values())
    assert tl.markers[n(6)]["name"] == "hit: door"
    assert [h["frame"] for h in manifest["hits"]] == [n(4), n(6), n(9)]
    assert "MIDI for the composer: " + manifest["outputs"]["midi"] in out
    assert out.index("The MIDI is ready; rendering the WAV.") < out.index("MIDI for the composer")
    # the WAV placed as soon as the daemon said so (`ready ... wav`), once: one pool item above
    assert out.index("The WAV is in place; the stems follow.") < out.index("MIDI for the composer")
    assert ("built the edit from the timeline's items" in out) == (not export)


def test_a_rerun_replaces_only_its_own_material(capsys):
    resolve, n = cut()
    tl = resolve.timeline
    first = sb.main(resolve, options=FAST)
    assert first["ok"]
    dialogue = __import__("helpers.resolve.fake", fromlist=["TimelineItem"]).TimelineItem(
        resolve, "dialogue", 86400, 50
    )
    tl.audio[0]["items"].append(dialogue)
    tl.video[0][1].length -= n(1)  # the cut at 9 s moves to 8 s
    tl.video[0][2].start -= n(1)
    tl.user_marker(n(2), "mood: calm")
    second = sb.main(resolve, options=FAST)
    assert second["ok"], capsys.readouterr().out
    assert len(tl.audio) == 2 and tl.audio[0]["items"] == [dialogue]
    [item] = our_items(resolve)
    assert item.pool_item.path == second["summary"]["wav"] != first["summary"]["wav"]
    assert item.length == n(11)
    assert [c.path for c in resolve.media_pool.folder("ScoreBridge").clips] == [second["summary"]["wav"]]
    assert sorted(ours(resolve)) == [n(4), n(8)]
    assert {f: m["name"] for f, m in tl.markers.items() if f not in ours(resolve)} == {
        n(6): "hit: door",
        n(2): "mood: calm",
    }


def test_failing_calls_are_retried_or_reported(capsys):
    resolve, n = cut()
    resolve.faults.fail("AppendToTimeline", 1)
    resolve.faults.fail("AddMarker", 2)
    resolve.faults.fail("Export", 1)
    report = sb.main(resolve, options=FAST)
    assert report["ok"], capsys.readouterr().out
    assert len(our_items(resolve)) == 1 and sorted(ours(resolve)) == [n(4), n(9)]

    resolve, n = cut()
    resolve.faults.fail("ImportMedia", None)
    report = sb.main(resolve, options=FAST)
    out = capsys.readouterr().out
    assert not report["ok"] and "did not import" in report["message"]
    assert "ERROR: Resolve did not import" in out and "Traceback" not in out
    assert our_items(resolve) == []


@pytest.mark.slow
def test_a_daemon_that_is_not_running_is_started(tmp_path, monkeypatch, capsys):
    port = free_port()
    for key, value in daemon_env(tmp_path, port, token=None).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SCOREBRIDGE_TOKEN")  # the new daemon writes the token file first
    resolve, n = cut()
    try:
        report = sb.main(resolve, options=FAST)
        out = capsys.readouterr().out
        assert report["ok"], out
        assert f"starting the ScoreBridge daemon on 127.0.0.1:{port}" in out
        assert len(our_items(resolve)) == 1 and (tmp_path / "config" / "token").is_file()
        again = sb.main(resolve, options=FAST)  # now it answers: not started twice
        assert again["ok"] and "starting the ScoreBridge daemon" not in capsys.readouterr().out
    finally:
        info = subprocess.run([str(cli()), "status"], env=dict(os.environ), capture_output=True, text=True, timeout=60)
        if info.returncode == 0:
            os.kill(json.loads(info.stdout)["pid"], signal.SIGTERM)


def test_no_scorebridge_command_is_one_message(tmp_path, monkeypatch, capsys):
    for key, value in daemon_env(tmp_path, free_port()).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sb.paths, "find_cli", lambda: None)
    monkeypatch.setattr(sb.app, "find_cli", lambda: None)
    report = sb.main(cut()[0], options=FAST)
    assert "the `scorebridge` command was not found" in report["message"]
    assert "SCOREBRIDGE_CLI" in report["message"] and "Traceback" not in capsys.readouterr().out


def test_a_client_that_dies_without_a_word_is_one_message(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "scorebridge"
    fake.write_text("#!/bin/sh\necho 'scorebridge: something broke' >&2\nexit 9\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SCOREBRIDGE_CLI", str(fake))
    report = sb.main(cut()[0], options=FAST)
    assert not report["ok"] and "exit code 9" in report["message"] and "something broke" in report["message"]


class Script:
    """A stop() hook for live mode: runs steps as the session reaches states, with a deadline."""

    def __init__(self, steps, seconds=120):
        self.steps = list(steps)
        self.deadline = time.monotonic() + seconds
        self.timed_out = False

    def __call__(self, session):
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        while self.steps and self.steps[0][0](session):
            _, action = self.steps.pop(0)
            if action is None:
                return True
            action(session)
        return False


def test_live_mode_follows_an_edit_and_ignores_a_stale_result(capsys, monkeypatch):
    monkeypatch.setenv("SCOREBRIDGE_LIVE", "1")
    resolve, n = cut()
    tl = resolve.timeline
    seen = {}

    def edit(session):
        seen["r1"] = dict(session.summary)
        tl.video[0][0].length += n(1)  # the cut at 4 s moves to 5 s
        tl.video[0][1].start += n(1)
        tl.video[0][1].length -= n(1)

    def late_result(session):
        # a client for revision 1 ends after revision 2 was sent, with revision 1's manifest
        result = os.path.join(os.path.dirname(seen["r1"]["manifest"]), "late.result")
        Path(result).write_text(seen["r1"]["manifest"] + "\n")
        session.pending["%s:1" % session.session_id] = sb.request.Job(None, result, revision=1)
        # and another client for revision 1 that could not write its result (its take folder gone)
        failed = os.path.join(os.path.dirname(seen["r1"]["manifest"]), "failed.result")
        Path(failed).write_text("error client: the scorebridge client stopped (exit code 1)\n")
        session.pending["%s:1b" % session.session_id] = sb.request.Job(None, failed, revision=1)

    script = Script(
        [
            (lambda s: s.placed_revision == 1, edit),
            (lambda s: s.revision == 2, late_result),
            (lambda s: s.placed_revision == 2 and s.ignored, None),
        ]
    )
    report = sb.main(resolve, options=FAST, stop=script, poll_seconds=0.1, settle_seconds=0.3)
    out = capsys.readouterr().out
    assert not script.timed_out, out
    assert report["revisions_sent"] == [1, 2] and report["placed_revision"] == 2
    assert report["ignored_revisions"] == [1] and "Ignored the result of revision 1" in out
    assert "Revision 1 was superseded." in out and "Revision 1 failed" not in out
    [item] = our_items(resolve)
    assert item.pool_item.path == report["summary"]["wav"] and "-r2" in item.pool_item.path
    assert sorted(ours(resolve)) == [n(5), n(9)]
    assert [c.path for c in resolve.media_pool.folder("ScoreBridge").clips] == [item.pool_item.path]
    assert not os.path.exists(os.path.dirname(seen["r1"]["wav"]))  # the superseded take is gone


def test_live_mode_waits_for_edits_to_settle(capsys):
    resolve, n = cut()
    tl = resolve.timeline
    moves = []

    def nudge(session):
        moves.append(time.monotonic())
        tl.video[0][1].length += 1  # the cut at 9 s moves a frame later
        tl.video[0][2].start += 1
        tl.video[0][2].length -= 1

    settled = lambda s: s.placed_revision == 1 and len(moves) < 5 and time.monotonic() - (moves or [0])[-1] > 0.15  # noqa: E731
    script = Script([(settled, nudge)] * 5 + [(lambda s: s.placed_revision == 2, None)])
    report = sb.main(resolve, live=True, options=FAST, stop=script, poll_seconds=0.05, settle_seconds=1.0)
    out = capsys.readouterr().out
    assert not script.timed_out, out
    assert report["revisions_sent"] == [1, 2]  # five quick edits, one update
    assert sorted(ours(resolve)) == [n(4), n(9) + 5]


def _python36():
    """A Python 3.6 interpreter, the oldest Resolve runs scripts with, when this machine has one."""
    candidates = [shutil.which("python3.6")] + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6"))
    )
    for exe in filter(None, candidates):
        try:
            if (
                subprocess.run(
                    [exe, "-c", "import sys; assert sys.version_info[:2] == (3, 6)"], capture_output=True, timeout=30
                ).returncode
                == 0
            ):
                return exe
        except (OSError, subprocess.TimeoutExpired):
            pass
    return None


def test_runs_under_python_36():
    exe = _python36()
    if exe is None:
        pytest.skip("no Python 3.6 on this machine (the syntax check in test_resolve_script still runs)")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [exe, str(ROOT / "tests" / "helpers" / "resolve" / "run_main.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["python"] == [3, 6] and result["ok"], done.stdout
    assert result["placed"] == [[107892, 360]] and result["markers"] == [120, 270]


class User:
    """Plays the user at the script's window: each step waits for a condition on the window's
    items (Status label, Log text), then acts."""

    def __init__(self, steps):
        self.steps = list(steps)

    def __call__(self, window, dispatcher):
        items = window.GetItems()
        if self.steps and self.steps[0][0](items):
            self.steps.pop(0)[1](window)


def with_window(monkeypatch, resolve, steps):
    user = User(steps)
    bmd = fake_ui.Bmd(user)
    resolve.fusion = fake_ui.Fusion()
    monkeypatch.setattr(sb.ui, "BMD", bmd)
    return user, bmd


def test_the_window_scores_and_stays_until_closed(monkeypatch, capsys):
    resolve, n = cut()
    user, bmd = with_window(
        monkeypatch,
        resolve,
        [(lambda items: items["Status"].Text.startswith("Done"), lambda w: w.click("CloseButton"))],
    )
    report = sb.main(resolve, options=FAST)
    assert report["ok"] and not user.steps and not bmd.dispatchers[0].timed_out
    assert len(our_items(resolve)) == 1 and sorted(ours(resolve)) == [n(4), n(9)]
    log = bmd.dispatchers[0].windows[0].GetItems()["Log"].PlainText
    assert "MIDI for the composer" in log


def test_the_window_live_button_follows_edits_until_stopped(monkeypatch):
    resolve, n = cut()
    tl = resolve.timeline

    def edit(window):
        tl.video[0][0].length += n(1)
        tl.video[0][1].start += n(1)
        tl.video[0][1].length -= n(1)

    placed_twice = lambda items: items["Log"].PlainText.count("Placed cue") == 2  # noqa: E731
    user, bmd = with_window(
        monkeypatch,
        resolve,
        [
            (lambda items: items["Status"].Text.startswith("Done"), lambda w: w.click("LiveButton")),
            (lambda items: "Live mode" in items["Log"].PlainText, edit),
            (placed_twice, lambda w: w.click("StopButton")),
            (lambda items: items["Status"].Text == "Live mode stopped.", lambda w: w.click("CloseButton")),
        ],
    )
    report = sb.main(resolve, options=FAST, poll_seconds=0.1, settle_seconds=0.3)
    assert not user.steps and not bmd.dispatchers[0].timed_out
    assert report["revisions_sent"] == [1] and report["placed_revision"] == 1
    assert sorted(ours(resolve)) == [n(5), n(9)] and len(our_items(resolve)) == 1


def test_the_window_shows_a_failure_until_closed(monkeypatch):
    resolve, n = cut()
    resolve.faults.fail("GetCurrentTimeline", None)
    user, bmd = with_window(
        monkeypatch,
        resolve,
        [(lambda items: items["Status"].Text.startswith("ERROR"), lambda w: w.click("CloseButton"))],
    )
    report = sb.main(resolve, options=FAST)
    assert not report["ok"] and "open one on the Edit page" in report["message"] and not user.steps


@pytest.mark.parametrize(
    "leave, why",
    [
        ("delete the track", "the ScoreBridge track was deleted"),
        ("switch timelines", "you switched to another timeline"),
    ],
)
def test_live_mode_without_a_window_ends_by_itself(capsys, leave, why):
    resolve, n = cut()

    def go(session):
        if leave == "delete the track":
            del resolve.timeline.audio[-1]
        else:
            resolve.project.timeline = Timeline(resolve, name="Cut 2")

    script = Script([(lambda s: s.placed_revision == 1, go)], seconds=60)
    report = sb.main(resolve, live=True, options=FAST, stop=script, poll_seconds=0.05, settle_seconds=0.2)
    out = capsys.readouterr().out
    assert not script.timed_out and report["ok"], out
    assert f"Live mode stopped: {why}." in out and report["revisions_sent"] == [1]


def test_with_stems_the_wav_goes_first_and_the_stems_follow_on_done(monkeypatch, capsys):
    monkeypatch.setenv("SCOREBRIDGE_RESOLVE_STEMS", "1")
    resolve, n = cut()
    report = sb.main(resolve, options=FAST)
    out = capsys.readouterr().out
    assert report["ok"], out
    manifest = json.loads(Path(report["manifest"]).read_text())
    stems = manifest["outputs"]["stems"]
    tracks = {t["name"]: t for t in resolve.timeline.audio}
    assert [len(tracks[f"ScoreBridge {manifest['plan']['cue']}"]["items"])] == [1]  # the mix, placed once
    for role in stems:
        [item] = tracks[f"ScoreBridge stem {role}"]["items"]
        assert item.length == n(12)
    assert out.index("The WAV is in place; the stems follow.") < out.index("MIDI for the composer")


def test_stopping_live_mode_cancels_the_request_it_is_waiting_for(capsys):
    resolve, n = cut()
    jobs = []

    def stop(session):
        jobs.extend(session.pending.values())
        session.stop_live("stopped by the test")

    script = Script([(lambda s: s.revision == 1 and s.pending, stop)], seconds=60)
    report = sb.main(resolve, live=True, options=FAST, stop=script, poll_seconds=0.05, settle_seconds=0.2)
    out = capsys.readouterr().out
    assert not script.timed_out and "Live mode stopped: stopped by the test." in out
    [job] = jobs
    job.process.wait(timeout=60)  # the client took the cancel file, told the daemon, and ended
    assert job.poll()[-1] == ("error", "cancelled", "cancelled by the host")
    assert report["placed_revision"] == 0 and our_items(resolve) == []


def test_a_daemon_refusing_the_token_ends_live_mode_with_one_message(monkeypatch, capsys):
    monkeypatch.setenv("SCOREBRIDGE_TOKEN", "not-the-daemons-token")
    resolve, n = cut()
    script = Script([], seconds=60)
    report = sb.main(resolve, live=True, options=FAST, stop=script, poll_seconds=0.05, settle_seconds=0.2)
    out = capsys.readouterr().out
    assert not script.timed_out and not report["ok"], out
    assert "does not accept this token" in report["message"] and "Traceback" not in out
    assert our_items(resolve) == []
