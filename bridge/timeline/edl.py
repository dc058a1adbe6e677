"""CMX 3600 EDLs: events to an OTIO timeline, the rate given or inferred from the timecodes."""

import re
from fractions import Fraction

import opentimelineio as otio

from bridge.errors import BadInput
from bridge.timebase import DROP_FRAME_RATES, frames_to_timecode, rational_to_frames, timecode_to_frames
from bridge.timeline.adapters import _read_with_adapter


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
