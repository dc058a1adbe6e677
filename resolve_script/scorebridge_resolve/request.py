"""The daemon, through its command-line client, as the REAPER scripts reach it.

`scorebridge request EDIT --out FOLDER --manifest-file FILE` runs beside Resolve (started
here, not waited for): it starts the daemon when none answers, speaks the protocol
(bridge/daemon/protocol.py, docs/protocol.md), and leaves what it hears in files that this
script polls:

    FILE.progress    one line, "<fraction> <stage>", while the job runs
    FILE.midi.json   the MIDI stage's manifest, once the .mid is in place
    FILE.wav.json    the WAV stage's manifest, once the WAV is in place (the stems follow)
    FILE             at the end: the manifest path, or "error CODE: message"

and FILE.cancel, written here, cancels the job. So the wire format lives in one place, and
this script stays standard-library Python that Resolve's interpreter runs.
"""

import json
import os
import platform
import subprocess

from .common import Failure

CLIENT_TIMEOUT = 900    # seconds the client waits for the daemon before it gives up


class Job:
    """One request: the client process (None for a result file written elsewhere) and its files."""

    def __init__(self, process, result, revision=None, log_path=None):
        self.process, self.result, self.revision = process, result, revision
        self.log_path = log_path or result + ".log"
        self.midi_seen = self.wav_seen = False
        self.progress = None
        self.ended = False
        self.placed = None   # set by the session once it placed this job's WAV stage

    def poll(self):
        """What happened since the last poll, in order: ("progress", fraction, stage),
        ("midi", stage manifest path), ("wav", stage manifest path), then at most one of
        ("done", manifest path) and ("error", code, message)."""
        events = []
        if self.ended:
            return events
        if not self.midi_seen and os.path.exists(self.result + ".midi.json"):
            self.midi_seen = True
            events.append(("midi", self.result + ".midi.json"))
        if not self.wav_seen and os.path.exists(self.result + ".wav.json"):
            self.wav_seen = True
            events.append(("wav", self.result + ".wav.json"))
        line = _read_line(self.result + ".progress")
        if line and line != self.progress:
            self.progress = line
            fraction, _, stage = line.partition(" ")
            try:
                events.append(("progress", float(fraction), stage))
            except ValueError:
                pass
        text = _read(self.result)
        if text is not None and text.endswith("\n"):  # written whole (atomically) by the client
            self.ended = True
            line = text.strip().splitlines()[0] if text.strip() else ""
            if line.startswith("error "):
                code, _, message = line[len("error "):].partition(":")
                events.append(("error", code.strip(), message.strip()))
            else:
                events.append(("done", line))
        elif self.process is not None and self.process.poll() is not None:
            self.ended = True   # it ended without a word: its log says why
            events.append(("error", "client", "the scorebridge client stopped (exit code %s): %s"
                           % (self.process.returncode, _last_line(self.log_path))))
        return events

    def cancel(self):
        """Ask the client to cancel (it tells the daemon, then writes `error cancelled`)."""
        if not self.ended:
            try:
                with open(self.result + ".cancel", "w") as stream:
                    stream.write("cancel\n")
            except (IOError, OSError):
                pass


def start(cli, edit_path, out, options, result, session=None, revision=None, timeout=CLIENT_TIMEOUT):
    """Start `scorebridge request` for one edit; a Job to poll."""
    args = list(cli) + ["request", edit_path, "--out", out, "--manifest-file", result,
                        "--options", json.dumps(options or {}), "--timeout", str(int(timeout)), "-q"]
    if session is not None:
        args += ["--session", session, "--revision", str(revision)]
    for suffix in ("", ".progress", ".midi.json", ".wav.json", ".cancel"):
        try:
            os.remove(result + suffix)   # a file left by an earlier run is not this one's
        except OSError:
            pass
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONPATH"):   # Resolve's own Python must not leak into the client's
        env.pop(name, None)
    kwargs = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "env": env, "close_fds": True}
    if platform.system() == "Windows":
        kwargs["creationflags"] = 0x08000000   # CREATE_NO_WINDOW: no console flashes up
    log_path = result + ".log"
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(args, stderr=log, **kwargs)
        except OSError as exc:
            raise Failure("could not start the ScoreBridge client (%s request): %s" % (" ".join(cli), exc))
    return Job(process, result, revision, log_path)


def _read(path):
    try:
        with open(path) as stream:
            return stream.read()
    except (IOError, OSError):
        return None


def _read_line(path):
    text = _read(path)
    return text.strip().splitlines()[0] if text and text.strip() else None


def _last_line(path):
    text = _read(path) or ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output (see %s)" % path
