"""The OSC daemon: the real server on a free loopback port, spoken to by a real UDP client.

The server runs in a thread of the test process with the shipped music model (loaded
once for the module); edits are small and scored without audio, so a job takes about a
second. Test packets are built with python-osc, as any OSC client would build them.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import config
from bridge.daemon import client, server
from helpers.daemon import Peer, serving
from helpers.scoring import edit

FAST = json.dumps({"audio": False, "candidates": 1})


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """(host, port, token, folder) of a daemon serving in a thread for this module."""
    base = tmp_path_factory.mktemp("daemon")
    with serving(base / "config") as (host, port, token):
        yield host, port, token, base


@pytest.fixture(autouse=True)
def _same_config(daemon, monkeypatch):
    """The client reads the token the module's daemon wrote (conftest gives each test its own)."""
    monkeypatch.setenv("SCOREBRIDGE_CONFIG", str(daemon[3] / "config"))


@pytest.fixture
def peer(daemon):
    p = Peer(daemon)
    yield p
    p.close()


def small_edit(folder, name="cut", clips=(48, 36, 60)):
    folder.mkdir(parents=True, exist_ok=True)
    return edit(folder / f"{name}.otio", clips=clips, markers=[(40, "hit")])


def test_ping_answers_version_and_device(peer):
    assert peer.ping() == [("pong", [server.__version__, "cpu"])]


def test_score_replies_accepted_progress_done_and_writes_deliverables(peer, tmp_path):
    timeline = small_edit(tmp_path)
    peer.send("score", peer.token, "job-1", str(timeline), str(tmp_path / "out"), FAST)
    got = peer.replies({"done", "error"})
    names = [name for name, _ in got]
    assert names[0] == "accepted" and names[-1] == "done", got
    assert "progress" in names and "ready" not in names  # no WAV to wait for: done is the MIDI
    fractions = [args[1] for name, args in got if name == "progress"]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
    manifest = json.loads(open(got[-1][1][1]).read())
    assert manifest["input"] == str(timeline)
    assert [h["frame"] for h in manifest["hits"]] == [40, 48, 84]
    assert os.path.exists(manifest["outputs"]["midi"]) and manifest["outputs"]["wav"] is None


def test_a_resent_request_is_answered_again_not_run_twice(peer, tmp_path):
    timeline = small_edit(tmp_path)
    args = ("score", peer.token, "twice", str(timeline), str(tmp_path / "out"), FAST)
    peer.send(*args)
    first = peer.replies({"done", "error"})
    peer.send(*args)
    again = peer.replies({"done", "error"}, timeout=5)
    assert again == [first[-1]], "a finished request is answered with its result, not run again"
    status = client.status(*peer.addr)
    assert status["counts"]["done"] >= 1


def test_a_resent_older_revision_is_stale_and_the_newest_is_answered_again(peer, tmp_path):
    timeline = small_edit(tmp_path)
    older = ("update", peer.token, "session-a", 1, str(timeline), str(tmp_path / "r1"), FAST)
    newer = ("update", peer.token, "session-a", 2, str(timeline), str(tmp_path / "r2"), FAST)
    peer.send(*older)
    assert peer.replies({"done", "error"})[-1][0] == "done"
    peer.send(*newer)
    done = peer.replies({"done", "error"})[-1]
    assert done[0] == "done"
    peer.send(*older[:5], str(tmp_path / "elsewhere"), FAST)  # the same id again, after revision 2
    stale = peer.replies({"done", "error"}, timeout=5)[-1]
    assert stale[0] == "error" and stale[1][1] == "stale", stale
    peer.send(*newer)  # the newest revision still gets its result
    assert peer.replies({"done", "error"}, timeout=5) == [done]


@pytest.mark.parametrize(
    "args, code",
    [
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"loudness": -80}'), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"loudness": "loud"}'), "bad_request"),
        (("score", "wrong-token", "a", "/x.otio", "/tmp", "{}"), "auth"),
        (("score", 42, "a", "/x.otio", "/tmp", "{}"), "auth"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp"), "bad_request"),  # missing
        (("score", "TOKEN", "a", "/x.otio", "/tmp", "{}", "extra"), "bad_request"),  # extra
        (("score", "TOKEN", "a", "relative.otio", "/tmp", "{}"), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", "[1]"), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"seed": "one"}'), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"valence": 7}'), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"tempo": 120}'), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"fps": "fast"}'), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"key": "H major"}'), "bad_request"),
        (("score", "TOKEN", "a", "/x.otio", "/tmp", '{"key": 7}'), "bad_request"),
        (("score", "TOKEN", "a", "/no/such/edit.otio", "/tmp", "{}"), "bad_input"),
        (("score", "TOKEN", "a", "/" + "x" * 20000, "/tmp", "{}"), "bad_request"),  # huge
        (("update", "TOKEN", "s", "three", "/x.otio", "/tmp", "{}"), "bad_request"),
        (("cancel", "TOKEN", "never-sent"), "bad_request"),
        (("frobnicate", "TOKEN"), "bad_request"),
    ],
)
def test_bad_requests_get_their_error_and_the_daemon_keeps_answering(peer, args, code):
    name, *rest = args
    peer.send(name, *[peer.token if a == "TOKEN" else a for a in rest])
    got = peer.replies({"error"}, timeout=5)
    assert got and got[-1][0] == "error" and got[-1][1][1] == code, got
    assert peer.ping()[-1][0] == "pong"


def test_wrong_token_never_reaches_the_pipeline(peer, tmp_path):
    before = client.status(*peer.addr)["counts"].get("accepted", 0)
    peer.send("score", "not-the-token", "sneaky", str(small_edit(tmp_path)), str(tmp_path / "o"), "{}")
    assert peer.replies({"error"}, timeout=5)[-1][1][:2] == ["sneaky", "auth"]
    assert client.status(*peer.addr)["counts"].get("accepted", 0) == before
    assert not (tmp_path / "o").exists()


def test_non_scorebridge_and_garbage_packets_are_dropped_quietly(peer):
    peer.raw(b"\x00\x01garbage")
    peer.raw(b"")
    peer.raw(b"#bundle\x00" + b"\xff" * 12)
    peer.send("/other/app", 1, 2.5)
    assert peer.replies({"pong"}, timeout=0.5) == []
    assert peer.ping() == [("pong", [server.__version__, "cpu"])]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_random_bytes_never_stop_the_daemon(peer, data):
    peer.raw(data)
    assert peer.ping()[-1][0] == "pong"


# OSC strings are UTF-8: lone surrogates cannot be sent at all (the client's own builder
# refuses them), so they are not a message the daemon can be given.
osc_args = st.lists(
    st.one_of(
        st.integers(-(2**31), 2**31 - 1),
        st.floats(allow_nan=False, width=32),
        st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40),
        st.booleans(),
        st.binary(min_size=1, max_size=20),
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["ping", "status", "score", "update", "cancel", "nope"]), osc_args, st.booleans())
def test_random_messages_get_an_error_or_nothing_and_never_queue_work(peer, name, args, with_token):
    """Well-formed OSC with arbitrary arguments: no random message is a valid job."""
    args = [peer.token] + args if with_token else args
    before = client.status(*peer.addr)["counts"].get("accepted", 0)
    peer.send(name, *args)
    assert peer.ping()[-1][0] == "pong"
    assert client.status(*peer.addr)["counts"].get("accepted", 0) == before


@pytest.mark.slow
def test_twenty_requests_at_once_are_all_answered(daemon, tmp_path):
    timeline = small_edit(tmp_path, clips=(24, 24))
    peers = [Peer(daemon) for _ in range(20)]
    try:
        for i, p in enumerate(peers):
            p.send("score", p.token, f"many-{i}", str(timeline), str(tmp_path / f"out{i}"), FAST)
        pinger = Peer(daemon)
        assert pinger.ping()[-1][0] == "pong", "ping is answered while the queue is full"
        pinger.close()
        results = [p.replies({"done", "error"}, timeout=120)[-1] for p in peers]
    finally:
        for p in peers:
            p.close()
    assert [name for name, _ in results] == ["done"] * 20
    assert all(os.path.exists(args[1]) for _, args in results)


def long_edit(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return edit(folder / "long.otio", clips=[240] * 12)  # two minutes: many seconds of sampling


def test_cancel_mid_job_stops_it_and_leaves_nothing_behind(peer, daemon, tmp_path):
    out = tmp_path / "out"
    peer.send("score", peer.token, "to-cancel", str(long_edit(tmp_path)), str(out), "{}")
    got = peer.replies({"progress"}, timeout=30)
    while not any(name == "progress" and "composing" in args[2] for name, args in got):
        got = peer.replies({"progress"}, timeout=30)
    canceller = Peer(daemon)
    canceller.send("cancel", canceller.token, "to-cancel")
    assert canceller.replies({"cancelled"}, timeout=5)[-1] == ("cancelled", ["to-cancel"])
    canceller.close()
    assert peer.replies({"done", "error"}, timeout=30)[-1] == (
        "error",
        ["to-cancel", "cancelled", "cancelled while running"],
    )
    assert not out.exists() or list(out.iterdir()) == []
    assert peer.ping()[-1][0] == "pong"


def test_a_job_that_raises_is_an_internal_error_and_writes_nothing(peer, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    peer.send("score", peer.token, "raises", str(small_edit(tmp_path)), str(blocker / "out"), FAST)
    name, args = peer.replies({"done", "error"})[-1]
    assert (name, args[:2]) == ("error", ["raises", "internal"])
    assert blocker.read_text().startswith("a file")
    assert peer.ping()[-1][0] == "pong"


def test_update_newer_revision_supersedes_older_ones(daemon, tmp_path):
    long_one, short_one = long_edit(tmp_path / "a"), small_edit(tmp_path / "b")
    first, second = Peer(daemon), Peer(daemon)
    try:
        first.send("update", first.token, "sess", 1, str(long_one), str(tmp_path / "out"), FAST)
        assert first.replies({"accepted"}, timeout=5)[-1] == ("accepted", ["sess:1"])
        second.send("update", second.token, "sess", 2, str(short_one), str(tmp_path / "out"), FAST)
        assert first.replies({"done", "error"})[-1][1][:2] == ["sess:1", "stale"]
        assert second.replies({"done", "error"})[-1][0] == "done"
        second.send("update", second.token, "sess", 1, str(short_one), str(tmp_path / "out"), FAST)
        assert second.replies({"error"}, timeout=5)[-1][1][:2] == ["sess:1", "stale"]
    finally:
        first.close()
        second.close()


def test_status_reports_queue_device_model_uptime(peer):
    info = client.status(*peer.addr)
    assert info["device"] == "cpu" and info["model"]["loaded"] and info["model"]["sha256"]
    assert info["queue"] == [] and info["uptime_s"] > 0


def test_client_request_returns_manifest_and_writes_the_manifest_file(daemon, tmp_path):
    timeline = small_edit(tmp_path)
    seen = []
    path = client.request(
        timeline,
        tmp_path / "out",
        {"audio": False, "candidates": 1},
        host=daemon[0],
        port=daemon[1],
        progress=lambda f, s: seen.append(f),
    )
    assert json.loads(open(path).read())["outputs"]["midi"]
    assert seen and seen[-1] == 1.0
    client.write_result(tmp_path / "result.txt", path)
    assert (tmp_path / "result.txt").read_text() == f"{path}\n"
    assert not (tmp_path / "result.txt.progress").exists()


def test_a_host_cancels_through_the_manifest_files_cancel_file(daemon, tmp_path):
    timeline = small_edit(tmp_path)
    result = tmp_path / "result.txt"
    asked = client.cancel_file(result)
    assert not asked()
    seen = []

    def progress(fraction, stage):
        seen.append(stage)
        result.with_name("result.txt.cancel").write_text("cancel\n")  # what a host writes

    with pytest.raises(client.RequestFailed) as failed:
        client.request(
            timeline,
            tmp_path / "out",
            {"candidates": 1},
            host=daemon[0],
            port=daemon[1],
            progress=progress,
            cancelled=asked,
        )
    assert failed.value.code == "cancelled" and seen
    assert not Path(f"{result}.cancel").exists()  # taken, once
    deadline = time.monotonic() + 30
    while client.status(daemon[0], daemon[1])["running"] is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.status(daemon[0], daemon[1])["running"] is None  # the daemon let the job go


def test_the_host_hears_of_the_midi_while_the_wav_renders(daemon, tmp_path):
    timeline = small_edit(tmp_path)
    events = []

    def midi_ready(path):
        early = json.loads(Path(path).read_text())
        events.append(("midi", early, Path(early["outputs"]["midi"]).read_bytes()))
        client.midi_writer(tmp_path / "result.txt")(path)  # what `request --manifest-file` does

    path = client.request(
        timeline,
        tmp_path / "out",
        {"candidates": 1},
        host=daemon[0],
        port=daemon[1],
        midi_ready=midi_ready,
        progress=lambda f, stage: events.append(("progress", stage)),
    )
    final = json.loads(Path(path).read_text())
    (ready,) = [e for e in events if e[0] == "midi"]
    assert ready[1]["stage"] == "midi" and ready[1]["outputs"]["wav"] is None and final["outputs"]["wav"]
    assert ready[2] == Path(final["outputs"]["midi"]).read_bytes()
    after = [stage for kind, stage in events[events.index(ready) + 1 :] if kind == "progress"]
    assert any("WAV" in stage for stage in after)  # told before the WAV was made
    # REAPER's way: the client copies the MIDI stage beside the manifest file at once
    assert json.loads((tmp_path / "result.txt.midi.json").read_text()) == ready[1]
    client.write_result(tmp_path / "result.txt", error=client.RequestFailed("internal", "the WAV failed"))
    assert not (tmp_path / "result.txt.midi.json").exists()  # no MIDI stage left beside an error
    client.midi_writer(tmp_path / "result.txt")(str(tmp_path / "gone.json"))  # a stage already gone: no file
    assert not (tmp_path / "result.txt.midi.json").exists()


def test_the_host_hears_of_the_wav_while_the_stems_are_written(daemon, tmp_path):
    timeline = small_edit(tmp_path)
    events = []

    def stage(kind):
        def ready(path):
            early = json.loads(Path(path).read_text())
            placed = Path(early["outputs"][kind]) if early["outputs"].get(kind) else None
            events.append((kind, early, placed.read_bytes() if placed else None))
            client.stage_writer(tmp_path / "result.txt", kind)(path)  # what `request --manifest-file` does

        return ready

    path = client.request(
        timeline,
        tmp_path / "out",
        {"candidates": 1},
        host=daemon[0],
        port=daemon[1],
        midi_ready=stage("midi"),
        wav_ready=stage("wav"),
        progress=lambda f, what: events.append(("progress", what)),
    )
    final = json.loads(Path(path).read_text())
    kinds = [e[0] for e in events if e[0] != "progress"]
    assert kinds == ["midi", "wav"]  # the MIDI first, then the WAV, then done
    (wav,) = [e for e in events if e[0] == "wav"]
    assert wav[1]["stage"] == "wav" and wav[1]["outputs"]["midi"] and wav[1]["outputs"]["stems"] is None
    assert wav[2] == Path(final["outputs"]["wav"]).read_bytes()  # the WAV in place was the final one
    assert final["outputs"]["stems"] and all(Path(p).is_file() for p in final["outputs"]["stems"].values())
    after = [what for kind, what in events[events.index(wav) + 1 :] if kind == "progress"]
    assert all("WAV" not in what or "ready" in what for what in after)
    assert json.loads((tmp_path / "result.txt.wav.json").read_text()) == wav[1]
    client.write_result(tmp_path / "result.txt", error=client.RequestFailed("internal", "the stems failed"))
    assert not (tmp_path / "result.txt.wav.json").exists()


def test_client_request_raises_with_the_daemons_error_code(daemon, tmp_path):
    with pytest.raises(client.RequestFailed) as failed:
        client.request(tmp_path / "missing.otio", tmp_path / "out", host=daemon[0], port=daemon[1])
    assert failed.value.code == "bad_input"
    client.write_result(tmp_path / "result.txt", error=failed.value)
    assert (tmp_path / "result.txt").read_text().startswith("error bad_input: no such timeline")


def test_serve_refuses_a_non_loopback_host_without_the_flag():
    from bridge.errors import BadInput

    with pytest.raises(BadInput, match="--allow-remote"):
        server.serve("0.0.0.0", 0)


def test_token_file_is_private(daemon):
    path = daemon[3] / "config" / "token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert config.read_token() == daemon[2]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_request_command_starts_the_daemon_and_answers_through_the_manifest_file(tmp_path):
    """What REAPER does: run `scorebridge request … --manifest-file F` and poll F."""
    env = dict(
        os.environ,
        SCOREBRIDGE_PORT=str(free_port()),
        SCOREBRIDGE_CONFIG=str(tmp_path / "cfg"),
        SCOREBRIDGE_STATE=str(tmp_path / "state"),
    )
    env.pop("SCOREBRIDGE_TOKEN", None)
    timeline, result = small_edit(tmp_path), tmp_path / "result.txt"

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "bridge", *args], env=env, capture_output=True, text=True, timeout=180
        )

    request = [
        "request",
        str(timeline),
        "--out",
        str(tmp_path / "out"),
        "--manifest-file",
        str(result),
        "--no-audio",
        "--candidates",
        "1",
        "--session",
        "s",
        "--revision",
    ]
    try:
        done = run(*request, "2")
        assert done.returncode == 0, done.stderr
        assert "starting the ScoreBridge daemon" in done.stderr
        manifest = done.stdout.strip()
        assert result.read_text() == manifest + "\n" and os.path.exists(manifest)
        assert not Path(f"{result}.progress").exists()
        assert (tmp_path / "state" / "daemon.log").exists()
        assert (tmp_path / "cfg" / "token").stat().st_mode & 0o777 == 0o600

        stale = run(*request, "1")
        assert stale.returncode == 6 and "starting" not in stale.stderr
        assert result.read_text().startswith("error stale: revision 1 of session s is older than revision 2")

        missing = run("request", str(tmp_path / "gone.otio"), "--out", str(tmp_path / "out"))
        assert missing.returncode == 3 and "no such timeline" in missing.stderr

        # options as the protocol's options_json, over the flags (how the Resolve script asks)
        seeded = run(*request[:-3], "--options", '{"seed": 7, "candidates": 1}')
        assert seeded.returncode == 0, seeded.stderr
        assert json.loads(Path(seeded.stdout.strip()).read_text())["seed"] == 7
        for bad, said in (("[1]", "not a JSON object"), ('{"seed": -1}', "seed"), ('{"colour": 1}', "unknown")):
            refused = run(*request[:-3], "--options", bad)
            assert refused.returncode == 3 and "--options" in refused.stderr and said in refused.stderr

        status = run("status")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["sessions"] == {"s": 2}
    finally:
        info = run("status")
        if info.returncode == 0:
            os.kill(json.loads(info.stdout)["pid"], signal.SIGTERM)
    time.sleep(1.0)
    assert run("status").returncode == 1


def test_a_key_option_is_checked_and_handed_to_the_score():
    from bridge.daemon.protocol import RequestError, parse_options

    handed = parse_options('{"key": "F# minor", "seed": 3}')
    assert handed["key"] == "F# minor" and handed["seed"] == 3 and handed["audio_out"] is True
    with pytest.raises(RequestError, match="not a key"):
        parse_options('{"key": "Q"}')
