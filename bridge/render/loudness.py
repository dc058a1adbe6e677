"""What an editor's meters read: integrated loudness (ITU-R BS.1770, LUFS), true peak (dBTP),
and the limiter that keeps the true peak under the delivery ceiling.

Loudness is pyloudnorm's BS.1770-4 meter. True peak is the peak of the signal oversampled
four times (BS.1770-4 annex 2), looked for only where the sample peak comes within HEADROOM
of the ceiling: a quiet cue costs one pass over its samples.

The limiter only catches peaks. Where the true peak would pass the ceiling, the gain dips
just enough, reached over ATTACK_S before the peak (the render is offline, so it looks
ahead freely), held HOLD_S and released over ATTACK_S; everywhere else the gain is exactly 1,
so the staging, not the limiter, sets how loud a cue is.
"""

import math

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

OVERSAMPLE = 4
HEADROOM_DB = 4.0     # a true peak rarely passes the sample peak by more than this
ATTACK_S = 0.005
HOLD_S = 0.050
SILENCE = -70.0       # BS.1770's absolute gate: below it there is nothing to measure


def _db(x):
    return 20 * math.log10(x) if x > 0 else float("-inf")


def integrated(audio, rate):
    """Integrated loudness in LUFS of float stereo (n, 2); None when it is too short to
    measure (under 0.4 s) or silent."""
    if len(audio) < int(0.4 * rate) + 1:
        return None
    with np.errstate(divide="ignore"):
        value = pyloudnorm.Meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64))
    return round(float(value), 2) if math.isfinite(value) and value > SILENCE else None


def _hot(audio, rate, ceiling):
    """Sample ranges [a, b) whose sample peak comes within HEADROOM_DB of `ceiling` (linear),
    widened so the oversampling filter sees the neighbourhood."""
    channels = audio.shape[1] if audio.ndim == 2 else 1
    flat = np.ascontiguousarray(audio).reshape(-1)
    hot = np.flatnonzero(np.abs(flat) > np.float32(ceiling * 10 ** (-HEADROOM_DB / 20))) // channels
    if not len(hot):
        return []
    length = len(audio)
    pad = int(0.01 * rate)
    ranges, start, last = [], hot[0], hot[0]
    for i in hot[1:]:
        if i - last > 2 * pad:
            ranges.append((max(0, start - pad), min(length, last + pad + 1)))
            start = i
        last = i
    ranges.append((max(0, start - pad), min(length, last + pad + 1)))
    return ranges


def _true_peaks(block):
    """Per sample of `block` (n, 2), the largest oversampled magnitude in its interval."""
    up = resample_poly(block, OVERSAMPLE, 1, axis=0)
    return np.abs(up).max(axis=1)[: len(block) * OVERSAMPLE].reshape(len(block), OVERSAMPLE).max(axis=1)


def true_peak(audio, rate):
    """True peak in dBTP (-inf for silence)."""
    peak = float(np.abs(audio).max(initial=0.0))
    if peak == 0:
        return float("-inf")
    found = peak
    for a, b in _hot(audio, rate, peak):
        found = max(found, float(_true_peaks(audio[a:b]).max()))
    return round(_db(found), 2)


def limit(audio, rate, ceiling_db=-1.0):
    """`audio` (float stereo, changed in place) with its true peak held at or under
    ceiling_db; returns (audio, the deepest gain reduction in dB, 0.0 when none)."""
    ceiling = 10 ** (ceiling_db / 20)
    deepest = 1.0
    for _ in range(4):   # a dip changes the waveform between samples a little: check again
        ranges = _hot(audio, rate, ceiling)
        need = [(a, b, np.minimum(1.0, ceiling / np.maximum(_true_peaks(audio[a:b]), 1e-12)))
                for a, b in ranges]
        need = [(a, b, g) for a, b, g in need if g.min() < 1.0]
        if not need:
            break
        attack, hold = max(1, int(ATTACK_S * rate)), max(1, int(HOLD_S * rate))
        margin = 2 * attack + hold
        for a, b, g in need:
            lo, hi = max(0, a - margin), min(len(audio), b + margin)
            gain = np.ones(hi - lo)
            gain[a - lo:b - lo] = g * 0.999   # a hair under, so the check after passes
            gain = minimum_filter1d(gain, 2 * attack + 1)                      # reached before the peak
            gain = minimum_filter1d(gain, hold, origin=(hold - 1) // 2)          # held after it
            gain = uniform_filter1d(gain, 2 * (attack // 2) + 1)               # no steps
            audio[lo:hi] *= gain[:, None].astype(audio.dtype)
            deepest = min(deepest, float(gain.min()))
    return audio, round(-_db(deepest), 2) if deepest < 1.0 else 0.0
