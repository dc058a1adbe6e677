"""Reading any supported file into an OTIO timeline, and its rate: OTIO, CMX 3600 EDL (edl.py),
FCP 7 and FCP X XML through OpenTimelineIO's adapters, a bare video file (video.py)."""

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from bridge.errors import BadInput
from bridge.timebase import DROP_FRAME_RATES, exact_rate, parse_rate, rational_to_frames

from bridge.timeline.adapters import MAX_FPS, _checked_rate, _first_line, _read_with_adapter
from bridge.timeline.edl import _read_edl
from bridge.timeline.flatten import _build
from bridge.timeline.model import Timeline
from bridge.timeline.video import _read_video


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
