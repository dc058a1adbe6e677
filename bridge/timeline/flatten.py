"""The core: an OTIO timeline -> what a viewer sees (segments), its markers and its hit points.

The top-most enabled video track wins, nested stacks are flattened, gaps show what lies
below; transitions cut at their cut point."""

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction

import opentimelineio as otio

from bridge.errors import BadInput
from bridge.timeline.markers import parse_marker, tacet_spans
from bridge.timebase import exact_rate, rational_seconds, seconds_to_frame

from bridge.timeline.media import _Media
from bridge.timeline.model import Clip, Hit, Marker, Timeline


@dataclass(frozen=True)
class _Piece:
    """A visible stretch of one clip, in timeline seconds."""

    start: Fraction
    end: Fraction
    clip: otio.schema.Clip
    shift: Fraction  # the clip's source time = timeline time + shift
    track: int  # top-level video track it came from
    generated: bool  # titles, slugs, solids: overlays, not picture


@dataclass
class _Context:
    rate: Fraction
    transitions: set = field(default_factory=set)  # (cut point seconds, track)
    zero_length: list = field(default_factory=list)  # names of dropped clips
    markers: list = field(default_factory=list)  # (seconds, duration seconds, marker)


def _place(child, offset):
    """Where a child of a composition lands: (start, end, offset of its own time), seconds."""
    placed = child.range_in_parent()
    start = offset + rational_seconds(placed.start_time)
    end = start + rational_seconds(placed.duration)
    return start, end, start - rational_seconds(child.trimmed_range().start_time)


def _is_video(item) -> bool:
    return not isinstance(item, otio.schema.Track) or item.kind == otio.schema.TrackKind.Video


def _pieces(composition, offset, lo, hi, track, ctx) -> list:
    """The visible clip pieces of a stack or track within [lo, hi), in timeline seconds.

    In a stack later children lie on top; gaps and empty stretches are transparent.
    """
    layers = []
    for child in composition:
        if isinstance(child, otio.schema.Transition):
            cut = offset + rational_seconds(child.range_in_parent().start_time + child.in_offset)
            ctx.transitions.add((cut, track))
            continue
        if not child.enabled or not _is_video(child):
            continue
        start, end, child_offset = _place(child, offset)
        if isinstance(child, otio.schema.Clip) and seconds_to_frame(end - start, ctx.rate) == 0:
            ctx.zero_length.append(child.name or "(unnamed)")
            continue
        lo_in, hi_in = max(lo, start), min(hi, end)
        if lo_in >= hi_in or isinstance(child, otio.schema.Gap):
            continue
        if isinstance(child, otio.schema.Clip):
            generated = isinstance(child.media_reference, otio.schema.GeneratorReference)
            layers.append([_Piece(lo_in, hi_in, child, -child_offset, track, generated)])
        else:
            layers.append(_pieces(child, child_offset, lo_in, hi_in, track, ctx))
    if isinstance(composition, otio.schema.Track):
        return [piece for layer in layers for piece in layer]
    return _paint(layers)


def _paint(layers) -> list:
    """Layers (bottom first) seen from above: top-most wins; generated clips only show
    where no real picture lies beneath them (a title over a shot does not hide the cut)."""
    media = _top_most([[p for p in layer if not p.generated] for layer in layers])
    generated = _top_most([[p for p in layer if p.generated] for layer in layers])
    return _top_most([generated, media])


def _top_most(layers) -> list:
    """Non-overlapping sorted piece lists (bottom first) -> the top-most piece everywhere."""
    bounds = sorted({t for layer in layers for p in layer for t in (p.start, p.end)})
    starts = [[p.start for p in layer] for layer in layers]
    out, last = [], None
    for a, b in zip(bounds, bounds[1:]):
        for layer, layer_starts in zip(reversed(layers), reversed(starts)):
            i = bisect.bisect_right(layer_starts, a) - 1
            if i >= 0 and layer[i].end > a:
                if last is layer[i] and out[-1].end == a:
                    out[-1] = replace(out[-1], end=b)
                else:
                    out.append(replace(layer[i], start=a, end=b))
                last = layer[i]
                break
    return out


def _picture_end(track) -> Fraction:
    """Where a video track's picture ends (transitions at its ends add no picture)."""
    if track.source_range is not None:
        return rational_seconds(track.source_range.duration)
    items = [c for c in track if not isinstance(c, otio.schema.Transition)]
    return rational_seconds(items[-1].range_in_parent().end_time_exclusive()) if items else 0


def _collect_markers(item, offset, lo, hi, ctx):
    """Markers on item and everything in it, placed in timeline seconds.

    A marker lies in its item's own time (a clip's in its source time); markers outside
    the part of the item that is seen (a clip's trimmed handles) are left out.
    """
    for marker in item.markers:
        at = offset + rational_seconds(marker.marked_range.start_time)
        if lo <= at < hi:
            ctx.markers.append((at, rational_seconds(marker.marked_range.duration), marker))
    if isinstance(item, otio.core.Composition):
        for child in item:
            if isinstance(child, otio.schema.Transition) or not child.enabled:
                continue
            start, end, child_offset = _place(child, offset)
            if max(lo, start) < min(hi, end):
                _collect_markers(child, child_offset, max(lo, start), min(hi, end), ctx)


def _trim_outside_clips(track, index, path, warnings):
    """Some converters write a video track's source range in another origin (a record
    timecode such as 01:00:00:00) so that it shows none of the track's clips. Read
    literally the edit would have no picture and no cuts; OpenTimelineIO's own flatten
    shows the clips, so the track is read as flatten reads it, with a warning."""
    trim = track.source_range
    if trim is None or not len(track):
        return
    content = track.available_range()
    if trim.start_time < content.end_time_exclusive() and trim.end_time_exclusive() > content.start_time:
        return
    track.source_range = None
    warnings.append(
        f"{path.name}: video track {index + 1} is trimmed to "
        f"{float(rational_seconds(trim.start_time)):.2f}–"
        f"{float(rational_seconds(trim.end_time_exclusive())):.2f} s, outside its clips "
        f"(0–{float(rational_seconds(content.duration)):.2f} s); read as OpenTimelineIO's "
        "flatten reads it, from its first clip"
    )


def _build(otio_timeline, path, rate, drop, start_frame, warnings, media_root) -> Timeline:
    ctx = _Context(rate)
    stack = otio_timeline.tracks
    video = [t for t in stack if isinstance(t, otio.schema.Track) and t.kind == otio.schema.TrackKind.Video]
    if not video:
        raise BadInput(f"{path.name} has no video track")
    for index, track in enumerate(video):
        _trim_outside_clips(track, index, path, warnings)
    offset = Fraction(0)
    if stack.source_range is not None:
        offset = -rational_seconds(stack.source_range.start_time)
        end = rational_seconds(stack.source_range.duration)
    else:
        end = max([_picture_end(t) for t in video if t.enabled], default=Fraction(0))
    duration = seconds_to_frame(end, rate)
    if duration <= 0:
        raise BadInput(f"{path.name} has no picture: its video is empty or zero frames long")
    layers = []
    for index, track in enumerate(video):
        if track.enabled:
            start, stop, track_offset = _place(track, offset)
            layers.append(_pieces(track, track_offset, max(Fraction(0), start), min(end, stop), index, ctx))
    pieces = _paint(layers)
    if ctx.zero_length:
        warnings.append(f"{len(ctx.zero_length)} zero-length clip(s) dropped: {', '.join(ctx.zero_length[:5])}")
    segments = _segments(pieces, duration, rate, path, media_root, warnings)
    _collect_markers(stack, offset, Fraction(0), end, ctx)
    markers = _markers(ctx.markers, rate, duration, warnings)
    hits = _hits(segments, markers, ctx, rate)
    return Timeline(
        name=otio_timeline.name or path.stem,
        path=str(path),
        rate=rate,
        drop_frame=drop,
        start_frame=start_frame,
        duration=duration,
        segments=segments,
        markers=markers,
        hits=hits,
        warnings=warnings,
    )


def _segments(pieces, duration, rate, path, media_root, warnings) -> list:
    """Pieces as frame-exact segments covering [0, duration), holes filled with gaps."""
    media = _Media(path if path.is_dir() else path.parent, media_root)  # bundles: .otiod
    segments, frame = [], 0
    for piece in pieces:
        first, stop = seconds_to_frame(piece.start, rate), seconds_to_frame(piece.end, rate)
        if stop <= first:
            continue
        if first > frame:
            segments.append(Clip("gap", frame, first, kind="gap"))
        media_path, media_start = media.locate(piece.clip, piece.start + piece.shift)
        source_rate = piece.clip.trimmed_range().start_time.rate
        segments.append(
            Clip(
                piece.clip.name,
                first,
                stop,
                media_path=media_path,
                media_start=media_start,
                media_rate=float(exact_rate(source_rate)),
                track=piece.track,
            )
        )
        frame = stop
    if frame < duration:
        segments.append(Clip("gap", frame, duration, kind="gap"))
    warnings.extend(media.warnings())
    return segments


def _hits(segments, markers, ctx, rate) -> list:
    """Every edit point of the picture, then marker hits on frames that are no edit point.

    An edit point is a transition's when a transition on the track of the picture on
    either side has its cut point there (where the outgoing clip would end).
    """
    transition_frames = {(seconds_to_frame(cut, rate), track) for cut, track in ctx.transitions}
    hits = {}
    for left, right in zip(segments, segments[1:]):
        frame = right.record_start
        sides = {s.track for s in (left, right) if s.kind == "clip"}
        source = "transition" if any((frame, t) in transition_frames for t in sides) else "cut"
        hits[frame] = Hit(frame, source, right.name)
    duration = segments[-1].record_end
    for marker in markers:
        if marker.kind == "hit" and 0 <= marker.frame < duration and marker.frame not in hits:
            hits[marker.frame] = Hit(marker.frame, "marker", marker.name)
    return [hits[f] for f in sorted(hits)]


def _marker_comment(marker) -> str:
    """A marker's note text: OTIO's comment, else what an adapter kept in metadata."""
    if getattr(marker, "comment", ""):
        return marker.comment

    def find(value):
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if str(key).lower() in ("comment", "note", "notes") and isinstance(inner, str):
                    return inner
                found = find(inner)
                if found:
                    return found
        return ""

    return find(marker.metadata)


def _markers(placed, rate, duration, warnings) -> list:
    """User markers (not ScoreBridge's own SB: ones), parsed, ordered, tacets resolved."""
    markers = []
    for seconds, length, marker in sorted(placed, key=lambda m: m[0]):
        name = (marker.name or "").strip()
        if name.upper().startswith("SB:"):
            continue
        comment = _marker_comment(marker)
        parsed = parse_marker(name, comment)
        if parsed["warning"]:
            warnings.append(f"marker {name or comment!r}: {parsed['warning']}")
        markers.append(
            Marker(
                seconds_to_frame(seconds, rate),
                name,
                parsed["kind"],
                seconds_to_frame(length, rate),
                parsed["mood"],
                parsed["valence"],
                parsed["arousal"],
                str(marker.color or ""),
                comment or "",
            )
        )
    return [_tacet_span(m, markers, duration) for m in markers]


def _tacet_span(marker, markers, duration):
    """A tacet marker with its resolved span as its duration (rule: markers.tacet_spans)."""
    if marker.kind != "tacet":
        return marker
    spans = tacet_spans([marker] + [m for m in markers if m.kind == "music"], duration)
    return replace(marker, duration=spans[0][1] - spans[0][0] if spans else 0)
