"""The daemon's other half: `scorebridge request`, `scorebridge status`, and the calls host
tools use to reach the daemon (starting it when none answers).

UDP can lose a datagram and a daemon can restart, so a request is simply sent again when
the daemon has been silent for a while: the daemon answers a request_id it already knows
with its state (accepted, or the final reply) and never runs it twice.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bridge import atomic, config
from bridge.daemon.protocol import decode, encode, is_loopback, name_of

RESEND_AFTER_S = 10.0  # silence after which a request is sent again
START_WAIT_S = 90.0  # how long a freshly started daemon may take to answer


class RequestFailed(Exception):
    """The request ended in an error reply (or no reply): `code` as in PROTOCOL.md plus
    `unreachable` and `timeout`, which the client itself decides."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Connection:
    """A UDP socket that talks to one daemon and reads only its replies."""

    def __init__(self, host, port):
        self.addr = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        loopback = is_loopback(host)
        self.sock.bind((("::1" if family == socket.AF_INET6 else "127.0.0.1") if loopback else "", 0))

    def send(self, name, *args):
        try:
            self.sock.sendto(encode(name, *args), self.addr)
        except OSError:
            pass  # nothing listening (ICMP), or no route: the wait times out and says so

    def receive(self, timeout):
        """(name, args) of the next reply within `timeout` seconds, else None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            except ConnectionResetError:  # Windows reports an earlier send's ICMP here
                continue
            except OSError:
                return None
            try:
                messages = decode(data)
            except ValueError:
                continue
            for address, args in messages:
                if name_of(address) is not None:
                    return name_of(address), args

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ping(host=None, port=None, token=None, timeout=1.0):
    """(version, device) when a daemon answers with our token; None when none answers.
    A daemon that answers `auth` raises RequestFailed: it runs, but with another token."""
    host, port = _where(host, port)
    reply = _ask(host, port, "ping", token, timeout)
    if reply is None:
        return None
    name, args = reply
    if name == "pong":
        return tuple(args[:2])
    if name == "error" and len(args) >= 3 and args[1] == "auth":
        raise RequestFailed("auth", f"the daemon on {host}:{port} uses another token: {args[2]}")
    return None


def ensure_daemon(host=None, port=None, say=None, wait_s=START_WAIT_S):
    """Make sure a daemon answers; start one (detached, logging to the state folder) if not.
    Returns its token."""
    host, port = _where(host, port)
    say = say or (lambda text: None)
    token = config.read_token()
    if token and ping(host, port, token):
        return token
    log_path = config.state_dir() / "daemon.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"starting the ScoreBridge daemon on {host}:{port} (log: {log_path})")
    with open(log_path, "ab") as log_file:
        kwargs = (
            {"start_new_session": True}
            if os.name == "posix"
            else {"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            close_fds=True,
            **kwargs,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        code = process.poll()
        token = config.read_token()
        if token and ping(host, port, token, timeout=0.5):
            return token
        if code is not None:
            # It exited: perhaps another client started one at the same moment and won the port.
            token = config.read_token()
            if token and ping(host, port, token, timeout=1.0):
                return token
            raise RequestFailed(
                "unreachable", f"the daemon exited at once (code {code}); its log {log_path} ends: {_tail(log_path)}"
            )
        time.sleep(0.2)
    raise RequestFailed("unreachable", f"the daemon did not answer within {wait_s:.0f} s; see {log_path}")


def request(
    timeline,
    out_dir,
    options=None,
    *,
    session=None,
    revision=None,
    host=None,
    port=None,
    timeout=900.0,
    progress=None,
    say=None,
    start=True,
    midi_ready=None,
    wav_ready=None,
    cancelled=None,
):
    """Send a score (or, with session/revision, an update) request and wait for its end.

    Returns the manifest path; raises RequestFailed. progress(fraction, stage) is called as
    progress replies arrive; midi_ready(path) when the daemon says the MIDI is in place while
    the WAV renders (path: a MIDI-stage manifest that lives until the job ends; read it at once);
    wav_ready(path) likewise when the WAV is in place while the stems are written.
    cancelled() is asked four times a second: True cancels the job (RequestFailed "cancelled").
    """
    host, port = _where(host, port)
    token = ensure_daemon(host, port, say) if start else (config.read_token() or "")
    timeline = str(Path(timeline).resolve())
    out_dir = str(Path(out_dir).resolve())
    options_json = json.dumps(options or {})
    if session is not None:
        request_id = f"{session}:{revision}"
        message = ("update", token, session, int(revision), timeline, out_dir, options_json)
    else:
        request_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        message = ("score", token, request_id, timeline, out_dir, options_json)
    deadline = time.monotonic() + timeout
    with Connection(host, port) as conn:
        conn.send(*message)
        accepted = False
        silent_since = time.monotonic()
        resent = 0
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    conn.send("cancel", token, request_id)
                    raise RequestFailed("timeout", f"no result after {timeout:.0f} s; the request was cancelled")
                if cancelled is not None and cancelled():
                    conn.send("cancel", token, request_id)
                    raise RequestFailed("cancelled", "cancelled by the host")
                reply = conn.receive(min(left, 1.0 if cancelled is None else 0.25))
                if reply is None:
                    wait = 2.0 if not accepted else RESEND_AFTER_S
                    if time.monotonic() - silent_since > wait:
                        if resent >= 3 and not (start and ping(host, port, token)):
                            raise RequestFailed("unreachable", f"the daemon on {host}:{port} stopped answering")
                        resent += 1
                        silent_since = time.monotonic()
                        conn.send(*message)
                    continue
                name, args = reply
                if not args or args[0] != request_id:
                    continue
                silent_since, resent = time.monotonic(), 0
                if name == "accepted":
                    accepted = True
                elif name == "progress" and len(args) >= 3 and progress is not None:
                    progress(float(args[1]), str(args[2]))
                elif name == "ready" and len(args) >= 3 and args[1] == "midi" and midi_ready is not None:
                    midi_ready(str(args[2]))
                elif name == "ready" and len(args) >= 3 and args[1] == "wav" and wav_ready is not None:
                    wav_ready(str(args[2]))
                elif name == "done" and len(args) >= 2:
                    return args[1]
                elif name == "error" and len(args) >= 3:
                    raise RequestFailed(str(args[1]), str(args[2]))
        except KeyboardInterrupt:
            conn.send("cancel", token, request_id)
            raise


def status(host=None, port=None, timeout=2.0):
    """The daemon's status dict, or None when none answers."""
    reply = _ask(*_where(host, port), "status", None, timeout)
    if reply is None:
        return None
    name, args = reply
    if name == "status" and args:
        return json.loads(args[0])
    if name == "error" and len(args) >= 3:
        raise RequestFailed(str(args[1]), str(args[2]))
    return None


def _ask(host, port, name, token, timeout):
    """One request without arguments, one reply: (name, args) or None."""
    with Connection(host, port) as conn:
        conn.send(name, token or config.read_token() or "")
        return conn.receive(timeout)


def _where(host, port):
    default_host, default_port = config.endpoint()
    return host or default_host, default_port if port is None else port


def _tail(path, lines=3):
    try:
        return " | ".join(Path(path).read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the manifest file: for hosts that do not open sockets (REAPER, Resolve) ----------------


def write_result(manifest_file, manifest_path=None, error=None):
    """FILE gets the manifest path, or `error CODE: message`; its .progress file goes first."""
    Path(f"{manifest_file}.progress").unlink(missing_ok=True)
    if error is not None:  # a stage the job did not finish is no result
        for stage in ("midi", "wav"):
            Path(f"{manifest_file}.{stage}.json").unlink(missing_ok=True)
    text = f"{manifest_path}\n" if error is None else f"error {error.code}: {' '.join(error.message.split())}\n"
    atomic.write_text(manifest_file, text)


def cancel_file(manifest_file):
    """A `cancelled` callback: True once the host has written `FILE.cancel` (it is removed)."""
    path = Path(f"{manifest_file}.cancel")

    def asked():
        if path.exists():
            path.unlink(missing_ok=True)
            return True
        return False

    return asked


def midi_writer(manifest_file):
    """A midi_ready callback that copies the MIDI-stage manifest to `FILE.midi.json` at once
    (the daemon's copy goes when the job ends), for a host that places the MIDI before the WAV."""
    return stage_writer(manifest_file, "midi")


def stage_writer(manifest_file, stage):
    """A midi_ready or wav_ready callback: the `stage` manifest copied to `FILE.<stage>.json`."""

    def ready(path):
        try:
            atomic.write_text(f"{manifest_file}.{stage}.json", Path(path).read_text())
        except OSError:  # the job already ended: its final manifest follows
            pass

    return ready


def progress_writer(manifest_file):
    """A progress callback that keeps `FILE.progress` as one line: `fraction stage`."""
    path = f"{manifest_file}.progress"
    last = {"t": 0.0}

    def report(fraction, stage):
        now = time.monotonic()
        if now - last["t"] >= 0.25 or fraction >= 1.0:
            last["t"] = now
            atomic.write_text(path, f"{fraction:.3f} {' '.join(stage.split())}\n")

    return report
