"""One run: a single score, or live mode following the edit."""

import json
import os
import shutil
import time
import uuid

from .api import maybe
from .common import ACCEPT_TIMEOUT, Failure, POLL_SECONDS, SETTLE_SECONDS, SILENCE_GIVE_UP, SILENCE_RESEND
from .edit import edit_signature, export_edit
from .paths import _safe_name, out_base
from .place import _our_track, describe, finish_placing, place_result, stems_wanted


class Session:
    """Sends requests, listens for replies, places the newest result. Driven by tick()."""

    def __init__(self, ctx, link, token, options, poll_seconds=POLL_SECONDS, settle_seconds=SETTLE_SECONDS):
        self.ctx, self.link, self.token = ctx, link, token
        self.view = ctx.view
        # the stems only where they are placed (SCOREBRIDGE_RESOLVE_STEMS=1): writing them is
        # most of what a live update costs after the WAV
        self.options = dict({"audio": True, "stems": stems_wanted()}, **(options or {}))
        self.poll_seconds, self.settle_seconds = poll_seconds, settle_seconds
        self.folder = os.path.join(out_base(), _safe_name(ctx.project_name), _safe_name(ctx.timeline_name))
        self.pending = {}          # request_id -> what was sent and heard
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

    def _send(self, request_id, address, args, revision=None):
        self.link.send(address, self.token, *args)
        now = time.monotonic()
        self.pending[request_id] = {"address": address, "args": args, "sent": now, "heard": now,
                                    "accepted": False, "tries": 1, "revision": revision}

    def score_once(self):
        folder = os.path.join(self.folder, "take-" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4])
        path, self.signature = self._export(folder)
        self.request_id = "resolve-" + uuid.uuid4().hex[:12]
        self.view.say("Scoring %r (%s)..." % (self.ctx.timeline_name, self.ctx.describe_edition()))
        self._send(self.request_id, "/scorebridge/score",
                   [self.request_id, path, folder, json.dumps(self.options)])

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
        for request_id in [rid for rid, p in self.pending.items() if p["revision"] is not None]:
            self.link.send("/scorebridge/cancel", self.token, request_id)
            del self.pending[request_id]
        self.finished = self.request_id not in self.pending
        self.view.say("Live mode stopped%s." % (": " + why if why else ""))

    def _send_update(self):
        self.revision += 1
        folder = os.path.join(self.folder, "%s-r%d" % (self.session_id, self.revision))
        path, self.signature = self._export(folder)
        request_id = "%s:%d" % (self.session_id, self.revision)
        for old in [rid for rid, p in self.pending.items() if p["revision"] is not None]:
            del self.pending[old]   # the daemon drops them as stale; their replies are ignored
        self._send(request_id, "/scorebridge/update",
                   [self.session_id, self.revision, path, folder, json.dumps(self.options)], self.revision)
        self.sent.append(self.revision)
        self.view.say("Edit changed: sent revision %d." % self.revision if self.revision > 1
                      else "Sent revision 1.")

    def cancel_all(self):
        for request_id in list(self.pending):
            self.link.send("/scorebridge/cancel", self.token, request_id)
        self.pending.clear()

    # -- the loop --
    def tick(self, timeout=0.2):
        """Read replies for up to timeout seconds, resend what went unheard, and in live mode
        look at the edit. Failures in live mode are reported and the loop goes on."""
        try:
            for address, args in self.link.receive(timeout):
                self._handle(address, args)
            self._check_pending()
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

    def _check_pending(self):
        now = time.monotonic()
        for request_id, p in list(self.pending.items()):
            if not p["accepted"] and now - p["sent"] > ACCEPT_TIMEOUT:
                if p["tries"] >= 5:
                    del self.pending[request_id]
                    raise Failure("the ScoreBridge daemon stopped answering (request %s)" % request_id)
                p["tries"] += 1
                p["sent"] = now
                self.link.send(p["address"], self.token, *p["args"])
            elif p["accepted"] and now - p["heard"] > SILENCE_GIVE_UP:
                del self.pending[request_id]
                raise Failure("nothing heard from the ScoreBridge daemon about %s for %d s"
                              % (request_id, SILENCE_GIVE_UP))
            elif p["accepted"] and now - p["heard"] > SILENCE_RESEND and now - p["sent"] > SILENCE_RESEND:
                p["sent"] = now   # asking again is answered `accepted` again, or with the result
                self.link.send(p["address"], self.token, *p["args"])

    def _revision_of(self, request_id):
        if self.session_id and str(request_id).startswith(self.session_id + ":"):
            try:
                return int(str(request_id).rsplit(":", 1)[1])
            except ValueError:
                return None
        return None

    def _handle(self, address, args):
        if not args:
            return
        request_id = args[0]
        pending = self.pending.get(request_id)
        if pending is not None:
            pending["heard"] = time.monotonic()
        name = address.rsplit("/", 1)[-1]
        if name == "error" and len(args) > 1 and args[1] == "auth":
            self.live = False
            self._fail("the ScoreBridge daemon does not accept this token: %s" % (args[2:] or [""])[0])
        elif pending is None:
            revision = self._revision_of(request_id)
            if name == "done" and revision is not None and revision < self.revision:
                self.ignored.append(revision)
                self.view.say("Ignored the result of revision %d: revision %d is newer." % (revision, self.revision))
        elif name == "accepted":
            pending["accepted"] = True
        elif name == "progress" and len(args) >= 3:
            self.view.progress(float(args[1]), str(args[2]))
        elif name == "ready" and len(args) >= 3 and args[1] == "midi":
            # the .mid is in place; Resolve places the WAV, which follows
            self.view.say("The MIDI is ready; rendering the WAV.")
        elif name == "ready" and len(args) >= 3 and args[1] == "wav":
            self._wav_ready(pending, args[2])
        elif name == "done" and len(args) >= 2:
            del self.pending[request_id]
            self._done(request_id, pending["revision"], args[1], pending.get("placed"))
        elif name in ("error", "cancelled"):
            del self.pending[request_id]
            code = args[1] if len(args) > 1 else "cancelled"
            message = args[2] if len(args) > 2 else ""
            if code == "stale":
                self.view.say("Revision %s was superseded." % pending["revision"])
            elif self.live:
                self.view.say("Revision %s failed (%s): %s" % (pending["revision"], code, message))
            else:
                self._fail("scoring failed (%s): %s" % (code, message))

    def _wav_ready(self, pending, stage_path):
        """The WAV is in place while the stems are written: the user hears it now. The stage
        manifest lives only until the job ends, so it is read at once; a revision already
        superseded is left alone."""
        revision = pending["revision"]
        if revision is not None and revision != self.revision:
            return
        try:
            with open(stage_path) as stream:
                stage = json.load(stream)
        except (IOError, OSError, ValueError):
            return  # the job ended first: `done` places everything
        self.view.progress(0.9, "placing the WAV")
        pending["placed"] = (place_result(self.ctx, stage), (stage.get("outputs") or {}).get("wav"))
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
            raise Failure("cannot read the daemon's manifest %s: %s" % (manifest_path, exc))
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
