"""Frames, seconds and timecode: the only module that converts time.

Timeline times are exact frame counts at the timeline rate; seconds appear only at the
edges. NTSC rates are kept exact (24000/1001, not 23.976) so that a frame count converts
to the same seconds everywhere.
"""

import bisect
from fractions import Fraction

import numpy as np

from opentimelineio import opentime

# Rates an editor meets, exact. Loose spellings (23.976, 29.97 …) snap to these.
STANDARD_RATES = [
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48000, 1001),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
    Fraction(120000, 1001),
    Fraction(120),
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
    return int(round(Fraction(rt.value).limit_denominator(10**6) * exact_rate(rate) / exact_rate(rt.rate)))


def rational_seconds(rt) -> Fraction:
    """An OTIO RationalTime as exact seconds (NTSC rates taken at their exact value)."""
    return Fraction(rt.value).limit_denominator(10**6) / exact_rate(rt.rate)


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


# --- musical time -------------------------------------------------------------------
# A tempo map is a list of (beat, microseconds_per_quarter) changes, the first at beat 0.
# Tempos are whole microseconds per quarter note because that is what a MIDI file stores:
# converting with the same integers the file holds keeps every tick on the same second.

PPQ = 960  # ticks per quarter note in every MIDI file written


def bpm_to_tempo(bpm) -> int:
    """Beats per minute -> microseconds per quarter note (MIDI's unit), rounded."""
    return int(round(60_000_000 / float(bpm)))


def tempo_to_bpm(tempo: int) -> float:
    return 60_000_000 / tempo


def _segments(tempo_map):
    """(start beat, start seconds, µs per beat) for each change, validated and ordered."""
    if not tempo_map or tempo_map[0][0] != 0:
        raise ValueError("a tempo map starts with a change at beat 0")
    out, seconds = [], Fraction(0)
    prev_beat, prev_tempo = None, None
    for beat, tempo in tempo_map:
        beat = Fraction(beat)
        if prev_beat is not None:
            if beat <= prev_beat:
                raise ValueError("tempo changes must be at increasing beats")
            seconds += (beat - prev_beat) * Fraction(prev_tempo, 1_000_000)
        out.append((beat, seconds, int(tempo)))
        prev_beat, prev_tempo = beat, int(tempo)
    return out


def beats_to_seconds(beat, tempo_map) -> Fraction:
    """Exact seconds of a (fractional) beat position under the tempo map."""
    beat = Fraction(beat)
    start_beat, start_s, tempo = [s for s in _segments(tempo_map) if s[0] <= beat][-1]
    return start_s + (beat - start_beat) * Fraction(tempo, 1_000_000)


def seconds_to_beats(seconds, tempo_map) -> Fraction:
    """Exact beat position of a time in seconds under the tempo map."""
    seconds = Fraction(seconds)
    start_beat, start_s, tempo = [s for s in _segments(tempo_map) if s[1] <= seconds][-1]
    return start_beat + (seconds - start_s) / Fraction(tempo, 1_000_000)


def seconds_to_ticks(seconds, tempo_map, ppq: int = PPQ) -> int:
    """The nearest MIDI tick to a time in seconds."""
    return int(round(seconds_to_beats(seconds, tempo_map) * ppq))


def ticks_to_seconds(ticks: int, tempo_map, ppq: int = PPQ) -> float:
    return float(beats_to_seconds(Fraction(ticks, ppq), tempo_map))


def seconds_to_ticks_all(times, tempo_map, ppq: int = PPQ) -> list:
    """seconds_to_ticks for many times, with the same answer for each, in one numpy pass: a
    float product is exact enough except within a hair of a half tick, where the exact rule
    (round half to even of the exact beat) decides. A whole score is ~10^4 times."""
    times = list(times)
    if not times:
        return []
    beats, starts, per_beat = _segment_arrays(tempo_map)
    t = np.asarray([float(x) for x in times], dtype=np.float64)
    i = np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)
    scaled = (beats[i] + (t - starts[i]) / per_beat[i]) * ppq
    out = np.rint(scaled)
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6):
        out[i] = seconds_to_ticks(times[i], tempo_map, ppq)
    return out.astype(np.int64).tolist()


def ticks_to_seconds_all(ticks, tempo_map, ppq: int = PPQ) -> list:
    """ticks_to_seconds for many ticks, reading the tempo map once (floats, as accurate as the
    exact conversion's float to within a few units in the last place)."""
    ticks = [int(x) for x in ticks]
    if not ticks:
        return []
    beats, starts, per_beat = _segment_arrays(tempo_map)
    b = np.asarray(ticks, dtype=np.float64) / ppq
    i = np.maximum(np.searchsorted(beats, b, side="right") - 1, 0)
    return (starts[i] + (b - beats[i]) * per_beat[i]).tolist()


def _segment_arrays(tempo_map):
    """The tempo map's segments as float arrays: start beat, start seconds, seconds a beat."""
    segments = _segments(tempo_map)
    return (
        np.array([float(b) for b, _, _ in segments]),
        np.array([float(s) for _, s, _ in segments]),
        np.array([tempo / 1_000_000 for _, _, tempo in segments]),
    )


def beats_to_seconds_all(beats, tempo_map) -> list:
    """beats_to_seconds for many (fractional) beats, as floats, reading the tempo map once."""
    segments = _segments(tempo_map)
    starts = [beat for beat, _, _ in segments]
    seconds = []
    for beat in map(Fraction, beats):
        start_beat, start_s, tempo = segments[max(bisect.bisect_right(starts, beat) - 1, 0)]
        seconds.append(float(start_s + (beat - start_beat) * Fraction(tempo, 1_000_000)))
    return seconds


def beats_to_ticks(beat, ppq: int = PPQ) -> int:
    """The nearest MIDI tick to a (fractional) beat position."""
    return int(round(Fraction(beat) * ppq))


def ticks_to_beats(ticks: int, ppq: int = PPQ) -> Fraction:
    return Fraction(int(ticks), ppq)


# --- audio ------------------------------------------------------------------------------


def seconds_to_samples(seconds, sample_rate: int) -> int:
    """The nearest sample index to a time in seconds (a duration's exact sample count)."""
    return int(round(Fraction(seconds) * int(sample_rate)))


def seconds_to_samples_all(seconds, sample_rate: int) -> np.ndarray:
    """seconds_to_samples of many times at once (int64), with the same answer for each:
    float products are exact enough except within a hair of a half sample, where the exact
    rule (round half to even of the exact product) decides."""
    times = np.asarray(seconds, dtype=np.float64)
    scaled = times * int(sample_rate)
    out = np.rint(scaled)
    near = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    for i in near:
        out[i] = seconds_to_samples(float(times[i]), sample_rate)
    return out.astype(np.int64)
