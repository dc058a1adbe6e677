"""Reading the edit: the timeline as OTIO (Resolve's export, or built from its items), its
markers, and a signature that changes when the cut does (live mode polls it)."""

import json
import os

from .api import _is_list, _is_number, api, maybe
from .common import Failure, TAG


def _ours(marker):
    return str((marker or {}).get("customData") or "").startswith(TAG)


def _markers(ctx):
    markers = api(ctx.timeline, "GetMarkers", what="list the timeline markers", ok=lambda r: isinstance(r, dict))
    return dict((int(round(float(frame))), info or {}) for frame, info in markers.items())


def _decide_marker_base(ctx, markers, start, end):
    """Marker frames count from the timeline start (the docs); one report says absolute.
    Absolute shows when every marker lies in [start, end) and the timeline is too short for
    a relative frame to get there."""
    if ctx.marker_base is None and markers and start > 0 and end - start <= start:
        if all(start <= f < end for f in markers):
            ctx.marker_base = start
    return ctx.marker_base or 0


def _frame(clip, name):
    """A timeline item's position or offset in frames (Resolve 19 may answer floats)."""
    return int(round(api(clip, name, what="tell a clip's %s" % name[3:].lower(), ok=_is_number)))


def _items(ctx, kind, index):
    return api(ctx.timeline, "GetItemListInTrack", kind, index,
               what="list the items of %s track %d" % (kind, index), ok=_is_list)


def build_otio(ctx):
    """The edit as OTIO JSON built from the timeline's items and markers, for Resolves whose
    Export() cannot write OTIO. Frames are those of the timeline, from its start frame."""
    rate, drop = ctx.rate()
    start, end = ctx.start_frame(), ctx.end_frame()
    fps = float(rate)

    def rt(value):
        return {"OTIO_SCHEMA": "RationalTime.1", "rate": fps, "value": float(value)}

    def span(first, length):
        return {"OTIO_SCHEMA": "TimeRange.1", "start_time": rt(first), "duration": rt(length)}

    def item(schema, name, length, first=0, **extra):
        out = {"OTIO_SCHEMA": schema, "name": name, "source_range": span(first, length),
               "effects": [], "markers": [], "metadata": {}, "enabled": True}
        out.update(extra)
        return out

    tracks = []
    count = int(api(ctx.timeline, "GetTrackCount", "video", what="count the video tracks", ok=_is_number))
    for index in range(1, count + 1):
        children, cursor = [], start
        placed = sorted((_frame(clip, "GetStart"), _frame(clip, "GetEnd"), n, clip)
                        for n, clip in enumerate(_items(ctx, "video", index)))
        for first, last, _, clip in placed:
            if last <= max(first, cursor):
                continue
            first = max(first, cursor)
            if first > cursor:
                children.append(item("Gap.1", "", first - cursor))
            offset = _frame(clip, "GetLeftOffset")
            pool_item = maybe(clip, "GetMediaPoolItem")
            path = maybe(pool_item, "GetClipProperty", "File Path") if pool_item is not None else None
            if path:
                reference = {"OTIO_SCHEMA": "ExternalReference.1", "name": "", "metadata": {},
                             "target_url": str(path), "available_range": span(0, offset + last - first)}
            elif pool_item is not None:
                reference = {"OTIO_SCHEMA": "MissingReference.1", "name": "", "metadata": {},
                             "available_range": None}
            else:   # titles and generators have no media pool item
                reference = {"OTIO_SCHEMA": "GeneratorReference.1", "name": "", "metadata": {},
                             "generator_kind": "resolve", "parameters": {}, "available_range": None}
            enabled = maybe(clip, "GetClipEnabled")
            children.append(item("Clip.1", str(maybe(clip, "GetName") or "clip"), last - first, offset,
                                 media_reference=reference, enabled=enabled is not False))
            cursor = last
        enabled = maybe(ctx.timeline, "GetIsTrackEnabled", "video", index)
        tracks.append({"OTIO_SCHEMA": "Track.1", "name": "V%d" % index, "kind": "Video",
                       "children": children, "source_range": None, "effects": [], "markers": [],
                       "metadata": {}, "enabled": enabled is not False})
    markers = _markers(ctx)
    base = _decide_marker_base(ctx, markers, start, end)
    stack_markers = [{"OTIO_SCHEMA": "Marker.2", "name": str(m.get("name") or ""),
                      "color": str(m.get("color") or "").upper() or "RED", "comment": str(m.get("note") or ""),
                      "metadata": {}, "marked_range": span(frame - base, int(m.get("duration") or 0))}
                     for frame, m in sorted(markers.items()) if not _ours(m)]
    return {"OTIO_SCHEMA": "Timeline.1", "name": ctx.timeline_name,
            "metadata": {"drop_frame": drop, "scorebridge": {"built_from": "Resolve scripting API"}},
            "global_start_time": rt(start),
            "tracks": {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "children": tracks,
                       "source_range": None, "effects": [], "markers": stack_markers,
                       "metadata": {}, "enabled": True}}


def export_edit(ctx, path):
    """Write the timeline as OTIO to path: Resolve's own export (18.5+), else built here.
    Returns how it was made ("export" or "built")."""
    kind = getattr(ctx.resolve, "EXPORT_OTIO", None)
    if kind is not None and (ctx.version == (0,) or ctx.version >= (18, 5)):
        try:
            if os.path.exists(path):
                os.remove(path)
            api(ctx.timeline, "Export", path, kind, getattr(ctx.resolve, "EXPORT_NONE", 0),
                what="export the timeline as OTIO")
            if os.path.isfile(path) and os.path.getsize(path) > 0:
                _mark_drop_frame(ctx, path)
                return "export"
        except Failure:
            pass
    with open(path, "w") as stream:
        json.dump(build_otio(ctx), stream, indent=1)
    return "built"


def _mark_drop_frame(ctx, path):
    """Resolve's OTIO says 29.97 but not whether the timecode drops frames: add it, so the
    manifest's timecodes read as Resolve shows them."""
    _, drop = ctx.rate()
    if not drop:
        return
    try:
        with open(path) as stream:
            data = json.load(stream)
        metadata = data.setdefault("metadata", {})
        if "drop_frame" not in metadata:
            metadata["drop_frame"] = True
            with open(path, "w") as stream:
                json.dump(data, stream)
    except (ValueError, OSError, AttributeError):
        pass


def edit_signature(ctx):
    """What the music depends on: video items, enabled tracks, user markers, start, rate.
    None when Resolve did not answer this time (live mode then just looks again)."""
    timeline = ctx.timeline
    try:
        parts = [maybe(timeline, "GetStartFrame"), maybe(timeline, "GetSetting", "timelineFrameRate")]
        count = maybe(timeline, "GetTrackCount", "video")
        markers = maybe(timeline, "GetMarkers")
        if not _is_number(count) or not isinstance(markers, dict) or None in parts:
            return None
        for index in range(1, int(count) + 1):
            items = maybe(timeline, "GetItemListInTrack", "video", index)
            if not _is_list(items):
                return None
            parts.append(("track", index, maybe(timeline, "GetIsTrackEnabled", "video", index)))
            for clip in items:
                parts.append(tuple(maybe(clip, name) for name in
                                   ("GetStart", "GetEnd", "GetLeftOffset", "GetName", "GetClipEnabled")))
        for frame in sorted(markers):
            m = markers[frame] or {}
            if not _ours(m):
                parts.append((frame, m.get("name"), m.get("note"), m.get("duration")))
        return repr(parts)
    except Exception:
        return None
