"""Edits in: any timeline format -> Timeline (frame-exact clips, markers and hit points).

OTIO is the core; other formats come in through OpenTimelineIO's adapter plugins
(CMX 3600 EDL, FCP 7 XML, FCP X XML). A bare video file is a one-clip timeline.
All frame numbers here count from the timeline's first frame (0), at the timeline rate.
"""

import bisect
import functools
import json
import ntpath
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from bridge.errors import BadInput
from bridge.markers import parse_marker, tacet_spans
from bridge.timebase import (
    DROP_FRAME_RATES,
    exact_rate,
    frames_to_timecode,
    parse_rate,
    rational_seconds,
    rational_to_frames,
    seconds_to_frame,
    timecode_to_frames,
)


@dataclass(frozen=True)
class Clip:
    """One visible segment of the picture: the top-most enabled video on [record_start, record_end)."""

    name: str
    record_start: int  # first timeline frame (0 = timeline start)
    record_end: int  # exclusive
    kind: str = "clip"  # "clip" or "gap" (gaps are sections too)
    media_path: str | None = None  # local path named by the reference (may not exist)
    media_start: float = 0.0  # seconds into the media file where this segment starts
    media_rate: float = 0.0  # frame rate of the source range (0 when unknown)
    track: int = 0  # index of the video track it came from (0 = bottom)


@dataclass(frozen=True)
class Marker:
    """A marker the user placed, parsed for ScoreBridge's syntax (see docs/edits.md, "Markers")."""

    frame: int
    name: str
    kind: str = "note"  # "hit" | "mood" | "va" | "tacet" | "music" | "note"
    duration: int = 0  # frames; for "tacet" the resolved span without music
    mood: str | None = None  # for kind "mood": the word as written, lower case
    valence: float | None = None  # for "mood" and "va"
    arousal: float | None = None
    color: str = ""
    comment: str = ""  # the marker's note text, as the host keeps it


@dataclass(frozen=True)
class Hit:
    """A frame the music must mark."""

    frame: int
    source: str  # "cut" | "transition" | "marker" | "detected"
    name: str = ""


@dataclass
class Timeline:
    name: str
    path: str  # absolute path of the file read
    rate: Fraction  # exact (24000/1001, 25, 30000/1001 …)
    drop_frame: bool
    start_frame: int  # start timecode as a frame count (01:00:00:00 at 24 -> 86400)
    duration: int  # frames
    segments: list[Clip] = field(default_factory=list)  # contiguous, cover [0, duration)
    markers: list[Marker] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # ordered by frame, one per frame
    warnings: list[str] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------------

VIDEO_EXTENSIONS = {
    ".mp4",
    ".mov",
    ".mkv",
    ".avi",
    ".mxf",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".mts",
    ".m2ts",
    ".ts",
    ".wmv",
    ".flv",
    ".3gp",
    ".ogv",
    ".dv",
}
SUPPORTED = (
    ".otio, .otioz, .otiod, .edl (CMX 3600), .xml (FCP 7 xmeml or FCP X fcpxml), "
    ".fcpxml, .fcpxmld, or a video file (" + " ".join(sorted(VIDEO_EXTENSIONS)) + ")"
)
MAX_FPS = 1000


def read_timeline(path, fps=None, media_root=None) -> Timeline:
    """Read an edit (OTIO, EDL, FCP 7/X XML or a bare video file) into a Timeline.

    fps is the rate for formats that carry none (CMX 3600 EDL). Without it an EDL's rate is
    inferred from its timecodes, and a warning says so:
      - `FCM: DROP FRAME` or a `;` in a timecode -> 29.97 drop frame (59.94 DF when a frame
        field passes 29);
      - otherwise the largest frame field seen bounds the rate from below and the smallest
        standard rate above it is taken: FF up to 23 -> 24, 24 -> 25, 25-29 -> 30,
        30-49 -> 50, 50-59 -> 60;
      - when every frame field is 00 nothing bounds the rate: BadInput asks for --fps.
    Formats that carry a rate keep theirs; a differing fps is then ignored with a warning.

    The picture is what a viewer sees: the top-most enabled video track wins, nested stacks
    are flattened, gaps show what lies below (a "gap" segment where nothing does); generated
    clips (titles, slugs) only show where no real picture lies beneath them, so a title over
    a scene keeps its cuts. A transition's edit point is its cut point, where the outgoing
    clip would end; the incoming segment starts there. media_start is seconds into the
    media file: source start minus the reference's available start, else minus the file's
    own start timecode, else the source start as is. media_root relinks media that is not
    where the timeline says: the first file with the same name (compared case-insensitively)
    under media_root, searched in sorted order.
    """
    path = Path(path).expanduser().resolve()
    user_rate, user_drop = _user_rate(fps)
    ext = path.suffix.lower()
    warnings = []
    otio_timeline, edl = _load(path, user_rate, user_drop, warnings)
    start_frame = None
    if edl is not None:
        rate, drop, start_frame = edl
    try:
        if ext != ".edl":
            rate = _checked_rate(_file_rate(otio_timeline), path)
            drop = rate in DROP_FRAME_RATES and _says_drop_frame(otio_timeline)
            if user_rate is not None and user_rate != rate:
                warnings.append(f"--fps {float(user_rate):.3f} ignored: {path.name} says {float(rate):.3f} fps")
        if start_frame is None:
            start = otio_timeline.global_start_time
            start_frame = rational_to_frames(start, rate) if start is not None else 0
        return _build(otio_timeline, path, rate, drop, start_frame, warnings, media_root)
    except (otio.exceptions.OTIOError, ValueError, ZeroDivisionError) as exc:
        raise BadInput(f"cannot read {path.name}: {_first_line(exc)}") from None


def read_otio(path, fps=None):
    """The edit as the OTIO timeline it is read from (EDL and XML through their adapters, a
    video file as one clip), for writing it back out with the score added."""
    path = Path(path).expanduser().resolve()
    user_rate, user_drop = _user_rate(fps)
    try:
        return _load(path, user_rate, user_drop, [])[0]
    except (otio.exceptions.OTIOError, ValueError, ZeroDivisionError) as exc:
        raise BadInput(f"cannot read {path.name}: {_first_line(exc)}") from None


def _load(path, user_rate, user_drop, warnings):
    """(OTIO timeline, (rate, drop, start frame) for an EDL else None) for any supported file."""
    if not path.exists():
        raise BadInput(f"timeline not found: {path}")
    ext = path.suffix.lower()
    edl = None
    if ext in VIDEO_EXTENSIONS:
        otio_timeline = _read_video(path, warnings)
    elif ext == ".edl":
        otio_timeline, rate, drop, start_frame = _read_edl(path, user_rate, user_drop, warnings)
        edl = (rate, drop, start_frame)
    elif ext in (".otio", ".otioz", ".otiod"):
        otio_timeline = _read_with_adapter(path, {".otio": "otio_json", ".otioz": "otioz", ".otiod": "otiod"}[ext])
    elif ext == ".xml":
        adapter = _sniff_xml(path)
        otio_timeline = _read_fcpx(path, warnings) if adapter == "fcpx_xml" else _read_with_adapter(path, adapter)
    elif ext in (".fcpxml", ".fcpxmld"):
        otio_timeline = _read_fcpx(path / "Info.fcpxml" if ext == ".fcpxmld" else path, warnings)
    else:
        raise BadInput(f"unknown timeline format {ext or path.name!r}; supported: {SUPPORTED}")
    if not isinstance(otio_timeline, otio.schema.Timeline):
        raise BadInput(f"{path.name} holds no timeline (found {type(otio_timeline).__name__})")
    return otio_timeline, edl


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _user_rate(fps):
    """--fps as (exact rate, drop frame asked for), or (None, False); absurd values are errors."""
    if fps is None:
        return None, False
    try:
        rate, drop = parse_rate(fps) if isinstance(fps, str) else (exact_rate(Fraction(fps)), False)
    except (ValueError, ZeroDivisionError, TypeError):
        rate, drop = None, False
    if rate is None or not 0 < rate <= MAX_FPS:
        raise BadInput(
            f"not a usable frame rate: {fps!r} (give one above 0 and at most {MAX_FPS}, e.g. 24, 25, 23.976, 29.97)"
        )
    return rate, drop


def _checked_rate(rate, path) -> Fraction:
    if not 0 < rate <= MAX_FPS:
        raise BadInput(f"{path.name} has an absurd frame rate ({float(rate):g} fps)")
    return rate


def _read_with_adapter(path, adapter, text=None, **options):
    """One OTIO adapter call (on the file, or on its text when given); whatever goes wrong
    becomes one line for the user."""
    try:
        if text is not None:
            return otio.adapters.read_from_string(text, adapter_name=adapter, **options)
        return otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except otio.exceptions.UnsupportedSchemaError:
        raise BadInput(
            f"{path.name} was written by a newer OpenTimelineIO "
            f"({_newer_schemas(path)}); installed is OpenTimelineIO "
            f"{otio.__version__}: upgrade it to read this file"
        ) from None
    except FileNotFoundError:
        raise BadInput(f"timeline not found: {path}") from None
    except PermissionError:
        raise BadInput(f"cannot open {path}: permission denied") from None
    except Exception as exc:  # adapters raise anything from KeyError to ParseError
        raise BadInput(f"cannot read {path.name} as {adapter}: {_first_line(exc)}") from None


def _newer_schemas(path) -> str:
    """Which schema versions in the file are newer than the installed OTIO knows."""
    known = otio.core.type_version_map()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "unknown schema version"
    newer = sorted(
        {
            f"{name}.{version}"
            for name, version in re.findall(r'"OTIO_SCHEMA"\s*:\s*"(\w+)\.(\d+)"', text)
            if name in known and int(version) > known[name]
        }
    )
    return ", ".join(newer) or "unknown schema version"


def _sniff_xml(path) -> str:
    """FCP 7 (<xmeml>) or FCP X (<fcpxml>) XML, told apart by the root element."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096).decode("utf-8", errors="replace")
    except OSError as exc:
        raise BadInput(f"cannot open {path}: {exc.strerror}") from None
    if "<xmeml" in head:
        return "fcp_xml"
    if "<fcpxml" in head:
        return "fcpx_xml"
    raise BadInput(f"{path.name} is no FCP 7 (<xmeml>) or FCP X (<fcpxml>) XML; supported: {SUPPORTED}")


def _read_fcpx(path, warnings):
    """FCP X XML through its adapter, which returns a collection: its first timeline."""
    read = _read_with_adapter(path, "fcpx_xml")
    if isinstance(read, otio.schema.SerializableCollection):
        timelines = list(read.find_children(descended_from_type=otio.schema.Timeline))
        if not timelines:
            raise BadInput(f"{path.name} holds no project (no timeline)")
        if len(timelines) > 1:
            warnings.append(f"{path.name} holds {len(timelines)} projects; read the first, {timelines[0].name!r}")
        read = timelines[0]
    if 'frameDuration="1001/' in path.read_text(errors="replace"):
        warnings.append(
            f"{path.name} is at an NTSC rate, which the fcpx_xml adapter counts "
            f"as a whole rate (29.97 as 29): times may be off; export FCP 7 XML "
            f"or OTIO for frame-exact hits"
        )
    return read


def _file_rate(timeline) -> Fraction:
    """The timeline rate: its start time's rate, else that of its first video clip."""
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    for clip in timeline.find_clips():
        track = clip.parent()
        if isinstance(track, otio.schema.Track) and track.kind == otio.schema.TrackKind.Video:
            return exact_rate(clip.trimmed_range().duration.rate)
    return exact_rate(timeline.duration().rate)


_DROP_KEYS = {"drop_frame", "dropframe", "drop-frame", "is_drop_frame", "isdropframe"}


def _says_drop_frame(timeline) -> bool:
    """Whether the timeline's own metadata declares drop-frame timecode.

    Adapters and hosts spell it differently: FCP XML `timecode/displayformat: DF`,
    `drop_frame: true` and the like, or an EDL-style `FCM: DROP FRAME`.
    """

    def says(value, key=""):
        key = key.lower()
        if isinstance(value, Mapping):
            return any(says(v, str(k)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return any(says(v, key) for v in value)
        text = str(value).strip().upper()
        if key in _DROP_KEYS:
            return value is True or text in ("TRUE", "YES", "1", "DF")
        if key == "displayformat":
            return text == "DF"
        if key == "fcm":
            return "DROP" in text and "NON" not in text
        return False

    return says(timeline.metadata) or says(timeline.tracks.metadata)


# --- EDL -----------------------------------------------------------------------------------

_TC = r"\d{2}[:;.]\d{2}[:;.]\d{2}[:;.]\d{2}"
_EDL_EVENT = re.compile(rf"^\s*\d+\s+.*?({_TC})\s+({_TC})\s+({_TC})\s+({_TC})\s*$")
_NDF_RATE_FOR_FRAME = [
    (23, Fraction(24)),
    (24, Fraction(25)),
    (29, Fraction(30)),
    (49, Fraction(50)),
    (59, Fraction(60)),
]


def _read_edl(path, user_rate, user_drop, warnings):
    """A CMX 3600 EDL through OTIO's adapter, at the given or the inferred rate.

    Returns (OTIO timeline, rate, drop_frame, start frame = earliest record-in timecode).
    """
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise BadInput(f"cannot open {path}: {exc.strerror}") from None
    events = [m.groups() for m in map(_EDL_EVENT.match, text.splitlines()) if m]
    if not events:
        raise BadInput(f"{path.name} is no CMX 3600 EDL: it has no event lines")
    timecodes = [tc for event in events for tc in event]
    says_drop = ";" in "".join(timecodes) or bool(re.search(r"^\s*FCM:\s*DROP", text, re.IGNORECASE | re.MULTILINE))
    largest_frame = max(int(tc[-2:]) for tc in timecodes)
    if user_rate is not None:
        rate = user_rate
        drop = (says_drop or user_drop) and rate in DROP_FRAME_RATES
        if says_drop and not drop:
            warnings.append(
                f"{path.name} uses drop-frame timecode but --fps {float(rate):.3f} has none; read as non-drop"
            )
    else:
        rate, drop = _infer_edl_rate(path, says_drop, largest_frame)
        warnings.append(
            f"{path.name} carries no frame rate: inferred {float(rate):.3f} fps"
            f"{' drop frame' if drop else ''} from its timecodes; --fps overrides"
        )
    if drop:
        text = _drop_frame_as_counts(text, rate)
    otio_timeline = _read_with_adapter(path, "cmx_3600", text=text, rate=float(rate))
    # The adapter keeps each track's first record-in as a negative track start (none when it
    # is 00:00:00:00). The timeline starts at the earliest one; each track starts there too,
    # with a gap up to its own first event.
    tracks = list(otio_timeline.tracks)
    record_ins = [
        -rational_to_frames(t.source_range.start_time, rate) if t.source_range is not None else 0 for t in tracks
    ]
    start_frame = min(record_ins, default=0)
    for track, record_in in zip(tracks, record_ins):
        track.source_range = None
        if record_in > start_frame:
            lead = otio.opentime.RationalTime(record_in - start_frame, float(rate))
            track.insert(
                0,
                otio.schema.Gap(source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, float(rate)), lead)),
            )
    return otio_timeline, rate, drop, start_frame


def _drop_frame_as_counts(text, rate) -> str:
    """Event and locator timecodes rewritten so that the adapter, which counts every
    timecode as non-drop, gets the frame counts they mean in drop frame."""

    def rewrite(line):
        if not (_EDL_EVENT.match(line) or re.match(r"^\*?\s*LOC:", line)):
            return line
        return re.sub(
            _TC, lambda tc: frames_to_timecode(timecode_to_frames(tc.group().replace(".", ":"), rate, True), rate), line
        )

    return "\n".join(rewrite(line) for line in text.splitlines())


def _infer_edl_rate(path, says_drop, largest_frame):
    """The EDL rate from its timecodes alone (rule in read_timeline's docstring)."""
    if says_drop:
        return (Fraction(30000, 1001) if largest_frame <= 29 else Fraction(60000, 1001)), True
    if largest_frame == 0:
        raise BadInput(
            f"{path.name} carries no frame rate and its timecodes do not tell it "
            f"(every frame field is 00): pass --fps (e.g. --fps 24)"
        )
    for bound, rate in _NDF_RATE_FOR_FRAME:
        if largest_frame <= bound:
            return rate, False
    raise BadInput(
        f"{path.name} has a timecode frame field of {largest_frame}, beyond any frame rate up to 60: pass --fps"
    )


# --- bare video ----------------------------------------------------------------------------


def _probe(path) -> dict:
    """ffprobe's view of a media file's first video stream (and its format tags)."""
    if shutil.which("ffprobe") is None:
        raise BadInput("reading a video file needs ffprobe (part of ffmpeg) on the PATH")
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-of",
        "json",
        "-show_entries",
        "stream=r_frame_rate,avg_frame_rate,nb_frames,duration:"
        "stream_tags=timecode:format=duration:format_tags=timecode",
        str(path),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BadInput(
            f"cannot read video {path.name}: {_first_line(done.stderr) if done.stderr.strip() else 'ffprobe failed'}"
        )
    return json.loads(done.stdout or "{}")


def _probe_rate(text) -> Fraction | None:
    """'30000/1001' as an exact rate; None for ffprobe's '0/0' (unknown)."""
    num, _, den = str(text or "0/0").partition("/")
    try:
        value = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return exact_rate(value) if value > 0 else None


def _probe_timecode(info):
    return (info.get("streams") or [{}])[0].get("tags", {}).get("timecode") or info.get("format", {}).get(
        "tags", {}
    ).get("timecode")


def _read_video(path, warnings):
    """A bare video file as a one-clip OTIO timeline at its nominal rate."""
    info = _probe(path)
    if not info.get("streams"):
        raise BadInput(f"{path.name} has no video stream")
    stream = info["streams"][0]
    base = _probe_rate(stream.get("r_frame_rate"))
    average = _probe_rate(stream.get("avg_frame_rate"))
    rate = base or average
    if rate is None:
        raise BadInput(f"cannot tell the frame rate of {path.name}")
    rate = _checked_rate(rate, path)
    seconds = float(stream.get("duration") or info.get("format", {}).get("duration") or 0)
    if average is not None and average != base:
        warnings.append(
            f"{path.name} has a variable frame rate (nominal {float(base):.3f}, "
            f"average {float(average):.3f} fps); frames are counted at "
            f"{float(rate):.3f} fps from its duration, so hits may be off by a frame"
        )
        frames = seconds_to_frame(seconds, rate)
    else:
        frames = int(stream.get("nb_frames") or 0) or seconds_to_frame(seconds, rate)
    if frames <= 0:
        raise BadInput(f"{path.name} has no frames")
    r = float(rate)
    available = otio.opentime.TimeRange(otio.opentime.RationalTime(0, r), otio.opentime.RationalTime(frames, r))
    clip = otio.schema.Clip(
        name=path.stem,
        source_range=available,
        media_reference=otio.schema.ExternalReference(target_url=path.as_uri(), available_range=available),
    )
    timeline = otio.schema.Timeline(name=path.stem)
    timeline.tracks.append(otio.schema.Track(name="V1", children=[clip]))
    timecode = _probe_timecode(info)
    timeline.metadata["drop_frame"] = bool(timecode) and ";" in timecode
    if timecode:
        try:
            timeline.global_start_time = otio.opentime.RationalTime(timecode_to_frames(timecode, rate), r)
        except ValueError:
            warnings.append(f"{path.name}: start timecode {timecode!r} unreadable; starting at 0")
    return timeline


# --- the core: OTIO timeline -> segments, hits, markers ------------------------------------


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


class _Media:
    """Media references -> local paths and offsets, relinked under media_root when missing."""

    def __init__(self, base, media_root):
        self.base = Path(base)
        self.root = Path(media_root).expanduser() if media_root else None
        self.index = None
        self.missing, self.no_media, self.relinked = [], set(), 0

    def locate(self, clip, source_seconds):
        """(local path or None, seconds into the media file) for a clip at source_seconds."""
        ref = clip.media_reference
        path = None
        if isinstance(ref, otio.schema.ExternalReference):
            path = self._path(ref.target_url)
        if path is None:
            if not isinstance(ref, otio.schema.GeneratorReference):
                self.no_media.add(id(clip))
        elif not os.path.exists(path):
            found = self._relink(path)
            if found:
                self.relinked += 1
                path = found
            elif path not in self.missing:
                self.missing.append(path)
        start = source_seconds
        if ref is not None and ref.available_range is not None:
            start -= rational_seconds(ref.available_range.start_time)
        elif path is not None and os.path.exists(path):
            start -= _timecode_seconds(path)
        return path, float(start)

    def _path(self, url):
        """A local path from a target URL: file:// decoded, Windows paths kept as given."""
        url = (url or "").strip()
        if not url:
            return None
        if re.match(r"^[A-Za-z]:[\\/]", url) or url.startswith("\\\\"):
            return url
        if url.lower().startswith("file:"):
            parts = urllib.parse.urlparse(url)
            local = urllib.parse.unquote(parts.path)
            if re.match(r"^/[A-Za-z]:[\\/]", local):
                return local[1:]
            if parts.netloc and parts.netloc.lower() != "localhost":
                return f"//{parts.netloc}{local}"
            return local
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", url):
            return None
        return str(self.base / url) if not os.path.isabs(url) else url

    def _relink(self, path):
        if self.root is None:
            return None
        if self.index is None:
            self.index = {}
            for folder, dirs, files in os.walk(self.root):
                dirs.sort()
                for name in sorted(files):
                    self.index.setdefault(name.lower(), os.path.join(folder, name))
        return self.index.get(ntpath.basename(path).lower())

    def warnings(self) -> list:
        out = []
        if self.relinked:
            out.append(f"{self.relinked} clip(s) relinked to media under {self.root}")
        if self.missing:
            more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
            hint = "" if self.root else " (--media-root relinks by file name)"
            out.append(f"media not found: {', '.join(self.missing[:3])}{more}{hint}")
        if self.no_media:
            out.append(
                f"{len(self.no_media)} clip(s) name no media file; they are scored from their cuts and markers only"
            )
        return out


@functools.lru_cache(maxsize=256)
def _timecode_seconds(path) -> Fraction:
    """A media file's start timecode in seconds (0 when it has none or cannot be probed)."""
    if shutil.which("ffprobe") is None:
        return Fraction(0)
    try:
        info = _probe(Path(path))
        timecode = _probe_timecode(info)
        rate = _probe_rate(info["streams"][0].get("r_frame_rate"))
        if not timecode or rate is None:
            return Fraction(0)
        return Fraction(timecode_to_frames(timecode, rate), 1) / rate
    except (BadInput, ValueError, KeyError, IndexError):
        return Fraction(0)
