"""The Timeline and what it holds: frame-exact clips (segments), markers and hit points.

All frame numbers count from the timeline's first frame (0), at the timeline rate."""

from dataclasses import dataclass, field
from fractions import Fraction


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
