"""One run: a single score, or live mode following the edit."""

import json
import os
import shutil
import time
import uuid

from . import request
from .api import maybe
from .common import Failure, POLL_SECONDS, SETTLE_SECONDS
from .edit import edit_signature, export_edit
from .paths import _safe_name, out_base
from .place import _our_track, describe, finish_placing, place_result, stems_wanted

RESULT = "request.result"   # in each take's folder: what the client heard (request.py)


class Session:
    """Starts requests, polls what they heard, places the newest result. Driven by tick()."""

    def __init__(self, ctx, cli, options, poll_seconds=POLL_SECONDS, settle_seconds=SETTLE_SECONDS):
        self.ctx, self.cli = ctx, cli
        self.view = ctx.view
        # the stems only where they are placed (SCOREBRIDGE_RESOLVE_STEMS=1): writing them is
        # most of what a live update costs after the WAV
        self.options = dict({"audio": True, "stems": stems_wanted()}, **(options or {}))
        self.poll_seconds, self.settle_seconds = poll_seconds, settle_seconds
        self.folder = os.path.join(out_base(), _safe_name(ctx.project_name), _safe_name(ctx.timeline_name))
        self.pending = {}          # request_id -> request.Job, until it ends
        self.request_id = None     # the single score's
        self.live = False
        self.session_id = None
        self.revision = 0          # newest revision sent
        self.placed_revision = 0
        self.sent = []             # revisions sent, in order
        self.ignored = []          # revisions whose late result was ignored
        self.finished = False      # nothing left to do: the single score is over, live mode ended
        self.ok = False
        self.manifest = None
        self.summary = None
        self.error = None
        self.signature = None      # of the edit last sent
        self.seen, self.seen_at, self.last_poll = None, 0.0, 0.0
        self.built_said = False

    # -- sending --
    def _export(self, folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise Failure("cannot create the output folder %s: %s" % (folder, exc))
        path = os.path.join(folder, _safe_name(self.ctx.timeline_name) + ".otio")
        signature = edit_signature(self.ctx)
        how = export_edit(self.ctx, path)
        if how == "built" and not self.built_said:
            self.built_said = True
            self.view.say("Timeline.Export(OTIO) did not work here (Resolve before 18.5, or the call "
                          "failed): built the edit from the timeline's items and markers instead.")
        return path, signature

    def _send(self, request_id, path, folder, revision=None):
        session = self.session_id if revision is not None else None
        self.pending[request_id] = request.start(self.cli, path, folder, self.options,
                                                 os.path.join(folder, RESULT), session, revision)

    def score_once(self):
        folder = os.path.join(self.folder, "take-" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4])
        path, self.signature = self._export(folder)
        self.request_id = "resolve-" + uuid.uuid4().hex[:12]
        self.view.say("Scoring %r (%s)..." % (self.ctx.timeline_name, self.ctx.describe_edition()))
        self._send(self.request_id, path, folder)

    def go_live(self, send_now=True):
        """Follow the edit from now on; with send_now, score its present state at once
        (else from the first edit after the single score)."""
        self.live = True
        self.finished = False
        self.session_id = "resolve-" + uuid.uuid4().hex[:8]
        self.view.say("Live mode: following %r; edits are re-scored a moment after they stop. "
                      "Stop, close the window, switch to another timeline or delete the ScoreBridge "
                      "track to end it." % self.ctx.timeline_name)
        self.seen, self.seen_at = self.signature, time.monotonic()
        if send_now or self.signature is None:
            self._send_update()

    def stop_live(self, why=""):
        """End live mode; its requests are cancelled (a single score still running goes on)."""
        if not self.live:
            return
        self.live = False
        for request_id in [rid for rid, job in self.pending.items() if job.revision is not None]:
            self.pending.pop(request_id).cancel()
        self.finished = self.request_id not in self.pending
        self.view.say("Live mode stopped%s." % (": " + why if why else ""))

    def _send_update(self):
        self.revision += 1
        folder = os.path.join(self.folder, "%s-r%d" % (self.session_id, self.revision))
        path, self.signature = self._export(folder)
        request_id = "%s:%d" % (self.session_id, self.revision)
        # older revisions still running are answered `stale` by the daemon; a late result of
        # one is ignored (_done)
        self._send(request_id, path, folder, self.revision)
        self.sent.append(self.revision)
        self.view.say("Edit changed: sent revision %d." % self.revision if self.revision > 1
                      else "Sent revision 1.")

    def cancel_all(self):
        for job in self.pending.values():
            job.cancel()
        self.pending.clear()

    # -- the loop --
    def tick(self, timeout=0.2):
        """Wait up to timeout seconds, act on what the requests heard, and in live mode look at
        the edit. Failures in live mode are reported and the loop goes on."""
        try:
            time.sleep(timeout)   # the pace of the loop, waiting or not (no busy wait between edits)
            for request_id, job in list(self.pending.items()):
                for event in job.poll():
                    self._handle(request_id, job, event)
            if self.live:
                self._poll_edit()
        except Failure as exc:
            if not self.live:
                self._fail(str(exc))
            else:
                self.view.say("Problem: %s" % exc)

    def _fail(self, message):
        self.error = message
        self.finished = True
        self.cancel_all()
        self.view.error(message)

    def _handle(self, request_id, job, event):
        name = event[0]
        newest = job.revision is None or job.revision == self.revision
        if name == "progress" and newest:
            self.view.progress(event[1], event[2])
        elif name == "midi" and newest:
            # the .mid is in place; Resolve places the WAV, which follows
            self.view.say("The MIDI is ready; rendering the WAV.")
        elif name == "wav":
            self._wav_ready(job, event[1])
        elif name == "done":
            self.pending.pop(request_id, None)
            self._done(request_id, job.revision, event[1], job.placed)
        elif name == "error":
            self.pending.pop(request_id, None)
            code, message = event[1], event[2]
            superseded = job.revision is not None and job.revision < self.revision
            if code == "auth":  # every request would be refused alike: live mode ends too
                self.live = False
                self._fail("the ScoreBridge daemon does not accept this token: %s" % message)
            elif code == "stale" or superseded or (code == "cancelled" and job.revision is not None):
                # whatever became of an older revision (its take folder may be gone already)
                self.view.say("Revision %s was superseded." % job.revision)
            elif self.live:
                self.view.say("Revision %s failed (%s): %s" % (job.revision, code, message))
            else:
                self._fail("scoring failed (%s): %s" % (code, message))

    def _wav_ready(self, job, stage_path):
        """The WAV is in place while the stems are written: the user hears it now; a revision
        already superseded is left alone."""
        revision = job.revision
        if revision is not None and revision != self.revision:
            return
        try:
            with open(stage_path) as stream:
                stage = json.load(stream)
        except (IOError, OSError, ValueError):
            return  # the job ended first: `done` places everything
        self.view.progress(0.9, "placing the WAV")
        job.placed = (place_result(self.ctx, stage), (stage.get("outputs") or {}).get("wav"))
        self.view.say("The WAV is in place; the stems follow.")

    def _done(self, request_id, revision, manifest_path, placed=None):
        if revision is not None and revision != self.revision:
            self.ignored.append(revision)
            self.view.say("Ignored the result of revision %d: revision %d is newer." % (revision, self.revision))
            return
        try:
            with open(manifest_path) as stream:
                manifest = json.load(stream)
        except (IOError, OSError, ValueError) as exc:
            raise Failure("cannot read the manifest %s: %s" % (manifest_path, exc))
        self.view.progress(1.0, "placing the music")
        if placed is not None and placed[1] == (manifest.get("outputs") or {}).get("wav"):
            summary = finish_placing(self.ctx, manifest, placed[0])  # the WAV is there: the stems
        else:
            summary = place_result(self.ctx, manifest)
        self.manifest, self.summary = manifest, dict(summary, manifest=manifest_path)
        self.view.done(describe(manifest, summary))
        if revision is not None:
            self.placed_revision = revision
            self._forget_older_takes(revision)
        else:
            self.finished = True
        self.ok = True

    def _forget_older_takes(self, revision):
        """Live takes older than the placed one are no longer used anywhere."""
        for old in range(1, revision):
            shutil.rmtree(os.path.join(self.folder, "%s-r%d" % (self.session_id, old)), ignore_errors=True)

    def _gone(self):
        """Why live mode should end by itself, where no Stop button exists: the user went to
        another timeline, or deleted the music track it keeps up to date."""
        current = maybe(self.ctx.project, "GetCurrentTimeline")
        current_id = maybe(current, "GetUniqueId") if current is not None else None
        if current_id and self.ctx.timeline_id and current_id != self.ctx.timeline_id:
            return "you switched to another timeline"
        if self.placed_revision and _our_track(self.ctx) is None:
            return "the ScoreBridge track was deleted"
        return None

    def _poll_edit(self):
        now = time.monotonic()
        if now - self.last_poll < self.poll_seconds:
            return
        self.last_poll = now
        why = self._gone()
        if why:
            self.stop_live(why)
            return
        signature = edit_signature(self.ctx)
        if signature is None:
            return
        if signature != self.seen:
            self.seen, self.seen_at = signature, now
        elif signature != self.signature and now - self.seen_at >= self.settle_seconds:
            self._send_update()

    def report(self):
        return {"ok": self.ok and not self.error, "message": self.error, "manifest": (self.summary or {}).get("manifest"),
                "summary": self.summary, "revisions_sent": list(self.sent),
                "placed_revision": self.placed_revision, "ignored_revisions": list(self.ignored)}
