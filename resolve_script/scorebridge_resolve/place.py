"""Placing the result: the WAV on a fresh stereo track (and the stems, when asked), the hit
markers, and what the user is told."""

import os
import time

from . import common
from .api import _is_list, _is_number, api, maybe
from .common import BIN_NAME, Failure, MARKER_COLOR, RETRIES, STEM_PREFIX, TAG, TRACK_PREFIX
from .edit import _decide_marker_base, _frame, _items, _markers, _ours
from .paths import out_base


def _our_track(ctx):
    """Index of the audio track ScoreBridge placed before, or None."""
    count = int(api(ctx.timeline, "GetTrackCount", "audio", what="count the audio tracks", ok=_is_number))
    for index in range(count, 0, -1):
        name = str(maybe(ctx.timeline, "GetTrackName", "audio", index) or "")
        if name.startswith(TRACK_PREFIX) and not name.startswith(STEM_PREFIX):
            return index
    return None


def stems_wanted():
    """The setting: SCOREBRIDGE_RESOLVE_STEMS=1 puts each stem on a track of its own."""
    return os.environ.get("SCOREBRIDGE_RESOLVE_STEMS", "").strip().lower() in ("1", "true", "yes", "on")


def _stem_track(ctx, role):
    """(index, old pool items) of the emptied track "ScoreBridge stem <role>", added if none."""
    name = "%s %s" % (STEM_PREFIX, role)
    count = int(api(ctx.timeline, "GetTrackCount", "audio", what="count the audio tracks", ok=_is_number))
    for index in range(1, count + 1):
        if maybe(ctx.timeline, "GetTrackName", "audio", index) == name:
            old = _clear_track(ctx, index)
            if old is not None:
                return index, old
    return _add_track(ctx, None, name=name), []


def place_stems(ctx, stems, start, frames):
    """Each stem WAV on its role's track from the same frame as the mix; role -> track."""
    placed = {}
    for role in sorted(stems):
        path = stems[role]
        if not (path and os.path.isfile(path)):
            ctx.view.say("The %s stem is missing (%s): not placed." % (role, path))
            continue
        pool_item = import_wav(ctx, path)
        index, old = _stem_track(ctx, role)
        if append_wav(ctx, pool_item, index, start, frames) is None:
            ctx.view.say("Resolve dropped the %s stem on audio track %d." % (role, index))
            continue
        placed[role] = index
        if old:
            maybe(ctx.media_pool, "DeleteClips", old)
    return placed


def _inside(path, folder):
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)
    except ValueError:
        return False


def _clear_track(ctx, index):
    """Empty our track. Returns the media pool items of the WAVs it held (ours to delete),
    or None when it could not be emptied (then a new track is used)."""
    items = _items(ctx, "audio", index)
    pool_items = []
    for clip in items:
        pool_item = maybe(clip, "GetMediaPoolItem")
        path = maybe(pool_item, "GetClipProperty", "File Path") if pool_item is not None else None
        if path and _inside(path, out_base()):
            pool_items.append(pool_item)
    if items:
        try:
            api(ctx.timeline, "DeleteClips", items, False, what="remove the previous music")
        except Failure as exc:
            ctx.view.say("Could not remove the previous music (%s); using a new track." % exc)
            return None
    return pool_items if not _items(ctx, "audio", index) else None


def _add_track(ctx, cue, name=None):
    """A new stereo audio track named for the cue (or `name`); its index."""
    before = int(api(ctx.timeline, "GetTrackCount", "audio", what="count the audio tracks", ok=_is_number))
    try:
        api(ctx.timeline, "AddTrack", "audio", "stereo", what="add a stereo audio track")
    except Failure:
        if maybe(ctx.timeline, "GetTrackCount", "audio") != before + 1:   # it may have worked anyway
            raise
    index = before + 1
    _name_track(ctx, index, cue, name)
    return index


def _name_track(ctx, index, cue, name=None):
    name = name or "%s %s" % (TRACK_PREFIX, cue)
    if maybe(ctx.timeline, "GetTrackName", "audio", index) != name:
        try:
            api(ctx.timeline, "SetTrackName", "audio", index, name, what="name the music track")
        except Failure:
            ctx.view.say("Could not name audio track %d %r; a re-run will add a new track." % (index, name))


def _bin(ctx):
    root = api(ctx.media_pool, "GetRootFolder", what="give the media pool's root bin")
    for folder in api(root, "GetSubFolderList", what="list the bins", ok=_is_list):
        if maybe(folder, "GetName") == BIN_NAME:
            return folder
    return api(ctx.media_pool, "AddSubFolder", root, BIN_NAME, what="add the %r bin" % BIN_NAME)


def import_wav(ctx, wav):
    """The WAV as a media pool item in the ScoreBridge bin."""
    folder = _bin(ctx)
    previous = maybe(ctx.media_pool, "GetCurrentFolder")
    api(ctx.media_pool, "SetCurrentFolder", folder, what="open the %r bin" % BIN_NAME)
    try:
        for attempt in range(RETRIES):
            items = maybe(ctx.media_pool, "ImportMedia", [wav])
            if _is_list(items) and items:
                return items[0]
            for clip in maybe(folder, "GetClipList") or []:   # imported after all?
                if maybe(clip, "GetClipProperty", "File Path") == wav:
                    return clip
            time.sleep(common.RETRY_SLEEP)
        raise Failure("Resolve did not import %s into the %r bin (is a dialog open?)" % (wav, BIN_NAME))
    finally:   # back to the bin the user had open; if that fails, ours stays open: harmless
        if previous is not None:
            maybe(ctx.media_pool, "SetCurrentFolder", previous)


def _length(clip):
    return _frame(clip, "GetDuration")


def _placed(ctx, index, start):
    for clip in _items(ctx, "audio", index):
        if _frame(clip, "GetStart") == start:
            return clip
    return None


def append_wav(ctx, pool_item, index, start, frames):
    """Put the WAV on audio track index at absolute frame start; the placed item, or None
    when Resolve dropped it (the range was occupied). endFrame is inclusive in Resolve's
    examples and was measured exclusive once: the re-listed duration decides."""
    for end_frame in (frames - 1, frames):
        info = {"mediaPoolItem": pool_item, "startFrame": 0, "endFrame": end_frame,
                "mediaType": 2, "trackIndex": index, "recordFrame": start}
        api(ctx.media_pool, "AppendToTimeline", [info], what="put the music on the timeline", ok=_is_list)
        clip = _placed(ctx, index, start)
        if clip is None:
            return None
        length = _length(clip)
        if length == frames:
            return clip
        if length == frames - 1 and end_frame == frames - 1:   # exclusive: place it again
            api(ctx.timeline, "DeleteClips", [clip], False, what="remove a short placement")
            continue
        ctx.view.say("Warning: the music was placed %d frames long, expected %d." % (length, frames))
        return clip
    return _placed(ctx, index, start)


def replace_markers(ctx, manifest, start, end):
    """Remove ScoreBridge's markers, then mark every hit (name `SB: hit …`, customData tag).
    User markers stay; a hit on a frame that already has one is not marked twice."""
    markers = _markers(ctx)
    for frame, info in sorted(markers.items()):
        if _ours(info):
            if not maybe(ctx.timeline, "DeleteMarkerAtFrame", frame):
                api(ctx.timeline, "DeleteMarkerByCustomData", info.get("customData"),
                    what="remove an old ScoreBridge marker")
    markers = _markers(ctx)
    left = [f for f, m in markers.items() if _ours(m)]
    if left:
        ctx.view.say("%d old ScoreBridge marker(s) could not be removed." % len(left))
    markers = dict((f, m) for f, m in markers.items() if not _ours(m))
    base = _decide_marker_base(ctx, markers, start, end)
    placed, skipped, failed = 0, 0, 0
    for hit in manifest.get("hits") or []:
        frame = int(hit["frame"])
        name = "SB: hit %s" % hit.get("source", "")
        note = "%s %s" % (hit.get("timecode", ""), hit.get("name", ""))
        if frame + base in markers:
            skipped += 1
            continue
        try:
            api(ctx.timeline, "AddMarker", frame + base, MARKER_COLOR, name, note.strip(), 1, TAG,
                what="add a hit marker")
            placed += 1
            if ctx.marker_base is None:   # relative frames work here
                ctx.marker_base = base
        except Failure:
            if ctx.marker_base is None and start > 0 and maybe(
                    ctx.timeline, "AddMarker", frame + start, MARKER_COLOR, name, note.strip(), 1, TAG):
                ctx.marker_base, base = start, start   # this Resolve counts marker frames absolutely
                placed += 1
            else:
                failed += 1
    return placed, skipped, failed


def place_result(ctx, manifest):
    """The daemon's result under the edit: WAV on our track, hit markers. Returns a summary."""
    start, end = ctx.start_frame(), ctx.end_frame()
    cue = (manifest.get("plan") or {}).get("cue") or "cue"
    outputs = manifest.get("outputs") or {}
    frames = manifest.get("duration_frames")
    if not isinstance(frames, int):
        frames = int(round(float(manifest.get("duration_seconds") or 0) * float(manifest.get("fps") or 0)))
    summary = {"cue": cue, "start": start, "frames": frames, "track": None}
    wav = outputs.get("wav")
    if wav and os.path.isfile(wav):
        pool_item = import_wav(ctx, wav)
        ctx.make_current()
        index = _our_track(ctx)
        old = _clear_track(ctx, index) if index is not None else None
        if old is None:
            index, old = _add_track(ctx, cue), []
        else:
            _name_track(ctx, index, cue)
        clip = append_wav(ctx, pool_item, index, start, frames)
        if clip is None:   # the track was not empty after all: a fresh one cannot be occupied
            index = _add_track(ctx, cue)
            clip = append_wav(ctx, pool_item, index, start, frames)
        if clip is None:
            raise Failure("Resolve dropped the music when placing it on audio track %d "
                          "(AppendToTimeline placed nothing)" % index)
        summary.update(track=index, placed_frames=_length(clip), wav=wav)
        if old and not maybe(ctx.media_pool, "DeleteClips", old):
            ctx.view.say("The previous take stays in the %r bin (Resolve did not delete it)." % BIN_NAME)
        if stems_wanted() and isinstance(outputs.get("stems"), dict):
            summary["stems"] = place_stems(ctx, outputs["stems"], start, frames)
    else:
        ctx.view.say("No WAV was rendered (%s): only the MIDI and the markers."
                     % ("; ".join(manifest.get("warnings") or []) or "audio off"))
    summary["markers"], summary["markers_skipped"], summary["markers_failed"] = replace_markers(
        ctx, manifest, start, end)
    return summary


def finish_placing(ctx, manifest, summary):
    """The rest of a result whose WAV was placed early (`ready ... wav`): its stems, where
    wanted, and the markers again from the final manifest. Returns the summary."""
    outputs = manifest.get("outputs") or {}
    summary = dict(summary)
    if stems_wanted() and isinstance(outputs.get("stems"), dict):
        summary["stems"] = place_stems(ctx, outputs["stems"], summary["start"], summary["frames"])
    summary["markers"], summary["markers_skipped"], summary["markers_failed"] = replace_markers(
        ctx, manifest, ctx.start_frame(), ctx.end_frame())
    return summary


def describe(manifest, summary):
    """What was done and where the files are, for the user."""
    outputs = manifest.get("outputs") or {}
    lines = []
    if summary.get("track"):
        lines.append("Placed cue %s (%.2f s, %d frames) on audio track %d \"%s %s\" at %s."
                     % (summary["cue"], float(manifest.get("duration_seconds") or 0), summary["frames"],
                        summary["track"], TRACK_PREFIX, summary["cue"],
                        manifest.get("start_timecode") or summary["start"]))
    line = "%d hit marker(s)" % summary["markers"]
    if summary["markers_skipped"]:
        line += ", %d hit(s) already marked by you" % summary["markers_skipped"]
    if summary["markers_failed"]:
        line += ", %d could not be placed" % summary["markers_failed"]
    lines.append(line + ".")
    if summary.get("stems"):
        lines.append("Stems on their own tracks: %s." % ", ".join(
            "%s on %d" % (role, index) for role, index in sorted(summary["stems"].items())))
    if outputs.get("midi"):
        lines.append("MIDI for the composer: %s" % outputs["midi"])
    if isinstance(outputs.get("stems"), dict) and not summary.get("stems"):
        lines.append("Stems (set SCOREBRIDGE_RESOLVE_STEMS=1 to place them): %s"
                     % "; ".join(sorted(outputs["stems"].values())))
    others = ["%s: %s" % (k.replace("_", " "), v) for k, v in sorted(outputs.items())
              if v and k not in ("midi", "wav", "stems")]
    if others:
        lines.append("Also in %s: %s" % (os.path.dirname(outputs.get("midi") or others[0]), "; ".join(others)))
    for warning in manifest.get("warnings") or []:
        lines.append("Note: %s" % warning)
    return "\n".join(lines)
