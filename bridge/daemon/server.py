"""`scorebridge serve`: the OSC daemon that keeps the models warm for host scripts.

One UDP socket, read in the main thread; every packet is parsed, authenticated and checked
before anything else sees it, so random bytes, wrong types or a wrong token never reach the
pipeline and never stop the loop. Jobs wait in one queue and run one at a time on a worker
thread (one model job at a time on one device). Replies go to the sender's address and port.
The wire is bridge.daemon.protocol (docs/protocol.md); `bridge.daemon.client` is its other half.
"""

import collections
import hmac
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path

from bridge import __version__, config
from bridge.daemon.protocol import MAX_TEXT, RequestError, decode, encode, is_loopback, name_of, parse_options
from bridge.errors import BadInput, MissingModel

log = logging.getLogger("scorebridge.daemon")

MAX_QUEUE = 64  # waiting jobs; one more is answered `busy`
MAX_SESSIONS = 32  # live sessions whose last score is kept for partial updates
MAX_AUDIO_SESSIONS = 4  # of those, the newest whose audio is kept for spliced WAVs (about 70 MB
# a role for a 3-minute cue); older ones render their next WAV whole
MAX_FINISHED = 256  # finished jobs remembered, so a re-sent request gets its answer again
PROGRESS_INTERVAL = 0.2  # seconds between progress replies for one job
BUNDLES = {".otiod", ".fcpxmld"}  # timelines that are folders


class Cancelled(Exception):
    """Raised inside a job by its progress callback once the job has been cancelled."""


def _text(value, what, request_id=""):
    if not isinstance(value, str):
        raise RequestError("bad_request", f"{what} must be a string, got {type(value).__name__}", request_id)
    if not value or len(value) > MAX_TEXT:
        raise RequestError("bad_request", f"{what} must be 1..{MAX_TEXT} characters", request_id)
    return value


def _path(value, what, request_id):
    path = Path(_text(value, what, request_id))
    if not path.is_absolute():
        raise RequestError("bad_request", f"{what} must be an absolute path, got {value!r}", request_id)
    return path


class Daemon:
    """The protocol's state: queue, sessions, finished jobs. `handle` is called per packet."""

    def __init__(self, sock, token, device="auto", load_model=None, run_job=None):
        self.sock = sock
        self.token = token
        self.device = device
        self.started = time.monotonic()
        self.lock = threading.Condition()
        self.queue = collections.deque()
        self.jobs = {}  # request_id -> job (queued, running and recent finished)
        self.finished = collections.deque()  # request_ids in the order they finished
        self.running = None
        self.sessions = {}  # session_id -> newest revision seen
        self.states = collections.OrderedDict()  # session_id -> what its last finished revision left
        self.counts = collections.Counter()
        self.model = None
        self.model_info = None
        self.model_error = None
        self.model_ready = threading.Event()
        self._load_model = load_model or _load_shipped
        self._run_job = run_job or _run_score
        self.stopping = False

    # -- sending -------------------------------------------------------------------------
    def reply(self, addr, name, *args):
        try:
            self.sock.sendto(encode(name, *args), addr)
        except OSError as exc:  # the client went away: nothing to tell it
            log.debug("reply %s to %s failed: %s", name, addr, exc)

    # -- receiving -----------------------------------------------------------------------
    def handle(self, data, addr):
        """One datagram: parse, authenticate, dispatch. Never raises."""
        started = time.perf_counter()
        try:
            messages = decode(data)
        except ValueError as exc:
            log.warning("dropped a malformed packet from %s (%d bytes): %s", _peer(addr), len(data), exc)
            self.counts["malformed"] += 1
            return
        for address, args in messages:
            try:
                self._dispatch(address, args, addr, started)
            except RequestError as exc:
                self.counts["errors"] += 1
                log.info("%s from %s: %s %s", address, _peer(addr), exc.code, exc.message)
                self.reply(addr, "error", exc.request_id, exc.code, exc.message)
            except Exception:  # a bug here must not stop the daemon
                log.error("handling %s from %s failed:\n%s", address, _peer(addr), traceback.format_exc())

    def _dispatch(self, address, args, addr, started):
        name = name_of(address)
        if name is None:
            self.counts["unknown"] += 1
            log.info("dropped %r from %s: not a ScoreBridge address", address, _peer(addr))
            return
        request_id = ""
        if name in ("score", "cancel") and len(args) > 1 and isinstance(args[1], str):
            request_id = args[1][:MAX_TEXT]
        elif name == "update" and len(args) > 2 and isinstance(args[1], str) and isinstance(args[2], int):
            request_id = f"{args[1][:MAX_TEXT]}:{args[2]}"
        if (
            not args
            or not isinstance(args[0], str)
            or not hmac.compare_digest(args[0].encode("utf-8", "replace"), self.token.encode())
        ):
            self.counts["auth"] += 1
            raise RequestError(
                "auth",
                "wrong or missing token (see the token file in the ScoreBridge config folder, or SCOREBRIDGE_TOKEN)",
                request_id,
            )
        handler = {
            "ping": self._ping,
            "status": self._status,
            "score": self._score,
            "update": self._update,
            "cancel": self._cancel,
        }.get(name)
        if handler is None:
            raise RequestError("bad_request", f"unknown request {address}", request_id)
        handler(args[1:], addr, request_id)
        log.info(
            "%s %s from %s answered in %.1f ms",
            name,
            request_id or "-",
            _peer(addr),
            1000 * (time.perf_counter() - started),
        )

    def _arity(self, args, names, request_id):
        if len(args) != len(names):
            raise RequestError(
                "bad_request",
                f"expected token {' '.join(names)} ({len(names) + 1} arguments), got {len(args) + 1}",
                request_id,
            )

    def _ping(self, args, addr, request_id):
        self._arity(args, [], request_id)
        self.reply(addr, "pong", __version__, self._device_name())

    def _status(self, args, addr, request_id):
        self._arity(args, [], request_id)
        self.reply(addr, "status", json.dumps(self.status()))

    def status(self) -> dict:
        with self.lock:
            running = self.running
            return {
                "version": __version__,
                "pid": os.getpid(),
                "device": self._device_name(),
                "model": (self.model_info or {}) | {"loaded": self.model is not None, "error": self.model_error},
                "uptime_s": round(time.monotonic() - self.started, 1),
                "queue": [job["id"] for job in self.queue],
                "running": None
                if running is None
                else {
                    "id": running["id"],
                    "fraction": round(running["fraction"], 3),
                    "stage": running["stage"],
                    "elapsed_s": round(time.monotonic() - running["started"], 2),
                },
                "sessions": dict(self.sessions),
                "counts": dict(self.counts),
            }

    def _score(self, args, addr, request_id):
        self._arity(args, ["request_id", "timeline_path", "out_dir", "options_json"], request_id)
        _text(args[0], "request_id", request_id)
        self._submit(request_id, None, None, args[1], args[2], args[3], addr)

    def _update(self, args, addr, request_id):
        self._arity(args, ["session_id", "revision", "timeline_path", "out_dir", "options_json"], request_id)
        session = _text(args[0], "session_id", request_id)
        revision = args[1]
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
            raise RequestError("bad_request", f"revision must be an integer >= 0, got {revision!r}", request_id)
        self._submit(request_id, session, revision, args[2], args[3], args[4], addr)

    def _submit(self, request_id, session, revision, timeline, out_dir, options_json, addr):
        timeline = _path(timeline, "timeline_path", request_id)
        out_dir = _path(out_dir, "out_dir", request_id)
        if not isinstance(options_json, str):
            raise RequestError("bad_request", "options_json must be a string", request_id)
        try:
            options = parse_options(options_json)
        except RequestError as exc:
            exc.request_id = request_id
            raise
        with self.lock:
            known = self.jobs.get(request_id)
            if known is not None and known["session"] is not None:
                newest = self.sessions.get(known["session"])
                if newest is not None and known["revision"] < newest:  # re-sent, but superseded
                    self.counts["stale"] += 1
                    raise RequestError(
                        "stale",
                        f"revision {known['revision']} of session {known['session']} "
                        f"is older than revision {newest}; its result is stale",
                        request_id,
                    )
            if known is not None:  # a re-sent request: answer again, never run it twice
                known["addr"] = addr
                self._answer_again(known)
                return
            if session is not None:
                newest = self.sessions.get(session)
                if newest is not None and revision < newest:
                    self.counts["stale"] += 1
                    raise RequestError(
                        "stale",
                        f"revision {revision} of session {session} is older than revision {newest}; not computed",
                        request_id,
                    )
            if not timeline.exists():
                raise RequestError("bad_input", f"no such timeline: {timeline}", request_id)
            if timeline.is_dir() and timeline.suffix.lower() not in BUNDLES:
                raise RequestError("bad_input", f"{timeline} is a folder, not a timeline", request_id)
            if len(self.queue) >= MAX_QUEUE:
                self.counts["busy"] += 1
                raise RequestError("busy", f"{len(self.queue)} jobs are waiting; try again later", request_id)
            if session is not None:
                self.sessions[session] = revision
                self._supersede(session, revision)
            job = {
                "id": request_id,
                "session": session,
                "revision": revision,
                "timeline": str(timeline),
                "out": str(out_dir),
                "options": options,
                "addr": addr,
                "state": "queued",
                "received": time.monotonic(),
                "started": None,
                "fraction": 0.0,
                "stage": "queued",
                "cancel": None,
                "result": None,
                "sent": 0.0,
            }
            self.jobs[request_id] = job
            self.queue.append(job)
            self.counts["accepted"] += 1
            # told before the worker can take the job: its progress never overtakes `accepted`
            self.reply(addr, "accepted", request_id)
            self.lock.notify_all()

    def _supersede(self, session, revision):
        """A newer revision arrived: older ones of the session are stale, queued or running."""
        for job in list(self.queue):
            if job["session"] == session and job["revision"] < revision:
                self.queue.remove(job)
                self._finish(job, "error", ("stale", f"superseded by revision {revision}"))
        running = self.running
        if running is not None and running["session"] == session and running["revision"] < revision:
            running["cancel"] = ("stale", f"superseded by revision {revision}")

    def _answer_again(self, job):
        if job["state"] in ("queued", "running"):
            self.reply(job["addr"], "accepted", job["id"])
        else:
            self._send_result(job)

    def _cancel(self, args, addr, request_id):
        self._arity(args, ["request_id"], request_id)
        _text(args[0], "request_id", request_id)
        with self.lock:
            job = self.jobs.get(request_id)
            if job is None:
                raise RequestError("bad_request", f"no request {request_id!r} to cancel", request_id)
            if job["state"] == "queued":
                self.queue.remove(job)
                self._finish(job, "error", ("cancelled", "cancelled before it started"))
            elif job["state"] == "running":
                job["cancel"] = ("cancelled", "cancelled while running")
        self.reply(addr, "cancelled", request_id)

    # -- jobs ----------------------------------------------------------------------------
    def _finish(self, job, state, result):
        """Record a job's end (lock held) and send its reply."""
        job["state"], job["result"] = state, result
        self.finished.append(job["id"])
        while len(self.finished) > MAX_FINISHED:
            self.jobs.pop(self.finished.popleft(), None)
        self._send_result(job)

    def _send_result(self, job):
        if job["state"] == "done":
            self.reply(job["addr"], "done", job["id"], job["result"])
        else:
            code, message = job["result"]
            self.reply(job["addr"], "error", job["id"], code, message)

    def _progress(self, job):
        def report(fraction, stage):
            if job["cancel"] is not None:
                raise Cancelled()
            changed = stage != job["stage"]
            job["fraction"], job["stage"] = fraction, stage
            now = time.monotonic()
            if changed or fraction >= 1.0 or now - job["sent"] >= PROGRESS_INTERVAL:
                job["sent"] = now
                self.reply(job["addr"], "progress", job["id"], float(fraction), str(stage))

        return report

    def work(self):
        """The worker thread: load the model once, then run jobs one at a time."""
        try:
            self.model, self.model_info = self._load_model(self.device)
            log.info("music model %s loaded on %s", (self.model_info or {}).get("name"), self._device_name())
        except MissingModel as exc:
            self.model_error = str(exc)
            log.error("%s", exc)
        except Exception as exc:
            self.model_error = f"the music model failed to load: {exc}"
            log.error("the music model failed to load:\n%s", traceback.format_exc())
        self.model_ready.set()
        while True:
            with self.lock:
                while not self.queue and not self.stopping:
                    self.lock.wait()
                if self.stopping:
                    return
                job = self.queue.popleft()
                job["state"], job["started"] = "running", time.monotonic()
                job["previous"] = self.states.get(job["session"])
                self.running = job
            outcome = self._execute(job)
            with self.lock:
                self.running = None
                if job["cancel"] is not None and outcome[0] == "done":
                    outcome = ("error", job["cancel"])
                if outcome[0] == "done" and job.get("keep"):
                    self.states[job["session"]] = job["keep"]
                    self.states.move_to_end(job["session"])
                    while len(self.states) > MAX_SESSIONS:
                        self.states.popitem(last=False)
                    for older in list(self.states.values())[:-MAX_AUDIO_SESSIONS]:
                        older.pop("mix", None)
                self._finish(job, *outcome)
                self.counts[outcome[0] if outcome[0] == "done" else outcome[1][0]] += 1
            took = time.monotonic() - job["started"]
            waited = job["started"] - job["received"]
            log.info(
                "job %s %s in %.2f s (waited %.2f s): %s",
                job["id"],
                outcome[0],
                took,
                waited,
                outcome[1] if outcome[0] == "done" else " ".join(outcome[1]),
            )

    def _execute(self, job):
        if self.model is None:
            return "error", ("internal", self.model_error or "no music model")
        # the host hears of the MIDI while the WAV renders, and of the WAV while the stems are
        # written: /scorebridge/ready id "midi"|"wav" manifest
        job["on_midi"] = lambda early: self.reply(job["addr"], "ready", job["id"], "midi", str(early))
        job["on_wav"] = lambda early: self.reply(job["addr"], "ready", job["id"], "wav", str(early))
        try:
            path = self._run_job(job, self.model, self.model_info, self._progress(job))
            return "done", str(path)
        except Cancelled:
            return "error", job["cancel"]
        except BadInput as exc:
            return "error", ("bad_input", str(exc))
        except MissingModel as exc:
            return "error", ("internal", str(exc))
        except Exception as exc:
            log.error("job %s raised:\n%s", job["id"], traceback.format_exc())
            return "error", ("internal", f"{type(exc).__name__}: {exc}")

    def stop(self):
        with self.lock:
            self.stopping = True
            if self.running is not None:
                self.running["cancel"] = ("cancelled", "the daemon is stopping")
            for job in list(self.queue):
                self._finish(job, "error", ("cancelled", "the daemon is stopping"))
            self.queue.clear()
            self.lock.notify_all()

    def _device_name(self):
        if self.model is not None:
            return str(next(self.model.parameters()).device)
        return self.device


def _peer(addr):
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) and len(addr) >= 2 else str(addr)


def _load_shipped(device):
    from bridge.score import load_model

    return load_model(device)


def _run_score(job, model, model_info, progress):
    """One job; an update keeps what bridge.score.live needs for the session's next revision."""
    from bridge.score import score

    keep = None
    if job["session"] is not None:
        keep = job["keep"] = {"revision": job["revision"]}
    _, path = score(
        job["timeline"],
        job["out"],
        model=model,
        model_info=model_info,
        progress=progress,
        previous=job.get("previous"),
        keep=keep,
        on_midi=job.get("on_midi"),
        on_wav=job.get("on_wav"),
        **job["options"],
    )
    return path


def serve(
    host=config.DEFAULT_HOST,
    port=config.DEFAULT_PORT,
    *,
    device="auto",
    allow_remote=False,
    ready=None,
    stop_event=None,
) -> int:
    """Run the daemon until SIGINT/SIGTERM (or `stop_event`). `ready(port)` is called once listening."""
    if not is_loopback(host):
        if not allow_remote:
            raise BadInput(
                f"--host {host} is not a loopback address: anyone who can reach it could "
                f"use the daemon; pass --allow-remote if that is what you want"
            )
        log.warning(
            "listening on %s, which is not loopback: every machine that can reach it and "
            "knows the token can run jobs here",
            host,
        )
    token = config.ensure_token()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInput(
            f"cannot listen on {host}:{port} ({exc.strerror}); is a daemon already running? "
            f"`scorebridge status` asks it"
        ) from None
    sock.settimeout(0.5)
    port = sock.getsockname()[1]
    daemon = Daemon(sock, token, device)
    worker = threading.Thread(target=daemon.work, name="scorebridge-worker", daemon=True)
    worker.start()
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    log.info(
        "scorebridge %s listening on %s:%d (pid %d, token in %s)",
        __version__,
        host,
        port,
        os.getpid(),
        config.token_source(),
    )
    if ready is not None:
        ready(port)
    try:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError as exc:  # e.g. ICMP port unreachable reported on Windows
                log.debug("recvfrom: %s", exc)
                continue
            daemon.handle(data, addr)
    finally:
        daemon.stop()
        worker.join(timeout=10)
        sock.close()
        log.info("stopped")
    return 0
