"""Edits in: any timeline format -> Timeline (frame-exact clips, markers and hit points).

OTIO is the core; other formats come in through OpenTimelineIO's adapter plugins (CMX 3600
EDL, FCP 7 XML, FCP X XML). A bare video file is a one-clip timeline. All frame numbers count
from the timeline's first frame (0), at the timeline rate.

    model.py     Timeline, Clip, Marker, Hit: what the rest of ScoreBridge reads
    formats.py   read_timeline / read_otio: any supported file -> OTIO timeline and its rate
    edl.py       CMX 3600 (its rate inferred when the file carries none)
    video.py     a bare video file; ffprobe
    flatten.py   OTIO timeline -> what a viewer sees: segments, markers, hit points
    media.py     media references -> local files, relinked by name
    markers.py   what a marker says (mood, hit, tacet, ...)
"""

from bridge.timeline.formats import SUPPORTED, VIDEO_EXTENSIONS, read_otio, read_timeline
from bridge.timeline.model import Clip, Hit, Marker, Timeline

__all__ = ["Clip", "Hit", "Marker", "Timeline", "SUPPORTED", "VIDEO_EXTENSIONS", "read_otio", "read_timeline"]
