"""Frames, seconds and timecode: the only module that converts time.

Timeline times are exact frame counts at the timeline rate; seconds appear only at the
edges. NTSC rates are kept exact (24000/1001, not 23.976) so that a frame count converts
to the same seconds everywhere.
"""

from fractions import Fraction

from opentimelineio import opentime

# Rates an editor meets, exact. Loose spellings (23.976, 29.97 …) snap to these.
STANDARD_RATES = [
    Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
    Fraction(48000, 1001), Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60),
    Fraction(120000, 1001), Fraction(120),
]
DROP_FRAME_RATES = {Fraction(30000, 1001), Fraction(60000, 1001)}


def exact_rate(rate) -> Fraction:
    """The exact rate for a loose one: 23.976 or '23.98' -> 24000/1001; 25 -> 25.

    Rates that are no standard rate are kept as given (as a Fraction).
    """
    if isinstance(rate, str):
        text = rate.strip().upper().replace("DF", "").replace("NDF", "").strip()
        rate = float(text)
    value = Fraction(rate).limit_denominator(1001 * 1000)
    if value <= 0:
        raise ValueError(f"frame rate must be positive, got {rate}")
    for std in STANDARD_RATES:
        if abs(float(std) - float(value)) < 0.006:
            return std
    return value


def parse_rate(text):
    """Parse a rate as users and hosts write it: '25', '23.976', '29.97 DF', '30000/1001'.

    Returns (exact rate, drop_frame).
    """
    raw = str(text).strip()
    drop = raw.upper().endswith(" DF") or raw.upper().endswith("DF") and not raw.upper().endswith("NDF")
    core = raw.upper().replace("NDF", "").replace("DF", "").strip()
    if "/" in core:
        num, den = core.split("/", 1)
        rate = exact_rate(Fraction(int(num), int(den)))
    else:
        rate = exact_rate(float(core))
    if drop and rate not in DROP_FRAME_RATES:
        raise ValueError(f"drop-frame timecode exists only at 29.97 and 59.94 fps, not {raw}")
    return rate, drop


def rate_float(rate) -> float:
    return float(exact_rate(rate))


def frames_to_seconds(frames, rate) -> float:
    """Seconds from a frame count, exact for NTSC rates."""
    return float(Fraction(frames) / exact_rate(rate))


def seconds_to_frame(seconds, rate) -> int:
    """The nearest frame to a time in seconds."""
    return int(round(Fraction(seconds) * exact_rate(rate)))


def rescale_frames(frames, from_rate, to_rate) -> int:
    """A frame count at one rate as the nearest frame count at another."""
    return int(round(Fraction(frames) * exact_rate(to_rate) / exact_rate(from_rate)))


def rational_to_frames(rt, rate) -> int:
    """An OTIO RationalTime as a frame count at `rate` (rounded to the nearest frame)."""
    return int(round(Fraction(rt.value).limit_denominator(10**6) * exact_rate(rate)
                     / exact_rate(rt.rate)))


def timecode_to_frames(tc: str, rate, drop_frame=None) -> int:
    """'01:00:00:00' (or '01:00:00;00', drop frame) -> frame count since 00:00:00:00."""
    r = rate_float(rate)
    if drop_frame is None:
        drop_frame = ";" in tc
    if drop_frame and ";" not in tc:
        tc = tc[:8] + ";" + tc[9:]
    try:
        return int(round(opentime.from_timecode(tc, r).value))
    except Exception as exc:  # OTIO raises ValueError / RuntimeError on malformed input
        raise ValueError(f"bad timecode {tc!r} at {float(exact_rate(rate)):.3f} fps: {exc}") from None


def frames_to_timecode(frames: int, rate, drop_frame: bool = False) -> str:
    """Frame count -> 'HH:MM:SS:FF' ('HH:MM:SS;FF' in drop frame)."""
    r = rate_float(rate)
    return opentime.to_timecode(opentime.RationalTime(frames, r), r, bool(drop_frame))
