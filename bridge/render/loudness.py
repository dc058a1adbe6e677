"""What an editor's meters read: integrated loudness (ITU-R BS.1770, LUFS), true peak (dBTP),
and the limiter that keeps the true peak under the delivery ceiling.

Loudness is measured as pyloudnorm's BS.1770-4 meter measures it, with its K-weighting
filter stages, but gated from cumulative block energies, so a cue's report (the whole mix and
every section) takes one pass over the mix (a test checks it against pyloudnorm's meter).

True peak is the peak of the signal oversampled four times (BS.1770-4 annex 2), looked for
only where the sample peak comes within HEADROOM of the ceiling: a quiet cue costs one pass
over its samples.

The limiter only catches peaks. Where the true peak would pass the ceiling, the gain dips
just enough, reached over ATTACK_S before the peak (the render is offline, so it looks
ahead freely), held HOLD_S and released over ATTACK_S; everywhere else the gain is exactly 1,
so the staging, not the limiter, sets how loud a cue is.
"""

import functools
import math

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import firwin, upfirdn

OVERSAMPLE = 4
TAPS = 48
HEADROOM_DB = 4.0  # a true peak rarely passes the sample peak by more than this
ATTACK_S = 0.005
HOLD_S = 0.050
SILENCE = -70.0  # BS.1770's absolute gate: below it there is nothing to measure


def _db(x):
    return 20 * math.log10(x) if x > 0 else float("-inf")


def integrated(audio, rate):
    """Integrated loudness in LUFS of float stereo (n, 2); None when it is too short to
    measure (under 0.4 s) or silent."""
    return Loudness(audio, rate).integrated()


class Loudness:
    """Integrated loudness of any span of one signal, from a single K-weighting pass.

    A live update changes a few spans of a long mix: given the previous mix's meter (`base`,
    spent by this one) and the changed sample spans, only those spans are weighted again. The
    K-weighting filters are recursive but forget fast (the slowest, the 38 Hz high-pass, falls
    by e^-60 within SETTLE_S), so each span is filtered from SETTLE_S before it, with the
    filters at rest, to SETTLE_S after it; what lies outside is the previous mix's, unchanged."""

    BLOCK_S, STEP = 0.4, 0.25  # BS.1770's gating blocks: 400 ms, 75 % overlap
    SETTLE_S = 0.5

    def __init__(self, audio, rate, base=None, changed=None):
        self.rate = rate
        audio = np.asarray(audio)
        audio = audio.reshape(len(audio), -1)
        if base is not None and changed is not None and len(base.squares) == len(audio):
            squares, settle = base.squares, int(self.SETTLE_S * rate)
            base.squares = None  # spent: its squares are now this meter's
            for lo, hi in changed:
                a, b = max(0, lo - settle), min(len(audio), hi + settle)
                squares[lo:b] = self._weighted(audio[a:b], rate)[lo - a :]
        else:
            squares = self._weighted(audio, rate)
        self.squares = squares
        self.energy = np.concatenate([[0.0], np.cumsum(squares)])

    @staticmethod
    def _weighted(audio, rate):
        """The K-weighted power of each sample, summed over the channels."""
        stages = (
            pyloudnorm.IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, rate, "high_shelf"),
            pyloudnorm.IIRfilter(0.0, 0.5, 38.0, rate, "high_pass"),
        )
        squares = np.zeros(len(audio))
        for channel in range(audio.shape[1]):  # front channels: each weighs 1
            weighted = audio[:, channel].astype(np.float64)
            for stage in stages:
                weighted = stage.apply_filter(weighted)
            squares += np.square(weighted)
        return squares

    def integrated(self, start=0, end=None):
        """LUFS of samples [start, end) (None when shorter than a block or silent)."""
        end = len(self.energy) - 1 if end is None else end
        block = self.BLOCK_S * self.rate
        count = int(np.round(((end - start) / self.rate - self.BLOCK_S) / (self.BLOCK_S * self.STEP))) + 1
        if end - start < block or count < 1:
            return None
        j = np.arange(count)
        lower = start + (self.BLOCK_S * j * self.STEP * self.rate).astype(int)
        upper = np.minimum(start + (self.BLOCK_S * (j * self.STEP + 1) * self.rate).astype(int), end)
        z = (self.energy[upper] - self.energy[lower]) / block
        with np.errstate(divide="ignore"):
            level = -0.691 + 10 * np.log10(z)
        gated = z[level >= SILENCE]
        if not len(gated):
            return None
        relative = -0.691 + 10 * math.log10(gated.mean()) - 10
        kept = z[(level > relative) & (level > SILENCE)]
        value = -0.691 + 10 * math.log10(kept.mean()) if len(kept) else float("-inf")
        return round(value, 2) if math.isfinite(value) and value > SILENCE else None


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


@functools.lru_cache(maxsize=1)
def _interpolator():
    """BS.1770-4 annex 2's kind of true-peak filter: 48 taps, 4 phases of 12, cut at the
    input's Nyquist frequency (gain 4 makes up for the inserted zeros)."""
    return firwin(TAPS, 1.0 / OVERSAMPLE) * OVERSAMPLE


def _true_peaks(block):
    """Per sample of `block` (n, 2), the largest oversampled magnitude near it (the
    filter's delay of TAPS/2 upsampled samples is taken out)."""
    up = upfirdn(_interpolator(), block, up=OVERSAMPLE, axis=0)
    delay = (TAPS - 1) // 2
    up = np.abs(up[delay : delay + len(block) * OVERSAMPLE])
    if up.ndim == 2:  # elementwise maxima: numpy reduces short axes slowly
        peak = up[:, 0].copy()
        for channel in range(1, up.shape[1]):
            np.maximum(peak, up[:, channel], out=peak)
        up = peak
    phases = up.reshape(len(block), OVERSAMPLE)
    return np.maximum(np.maximum(phases[:, 0], phases[:, 1]), np.maximum(phases[:, 2], phases[:, 3]))


def true_peak(audio, rate):
    """True peak in dBTP (-inf for silence)."""
    peak = float(np.abs(audio).max(initial=0.0))
    if peak == 0:
        return float("-inf")
    found = peak
    for a, b in _hot(audio, rate, peak):
        found = max(found, float(_true_peaks(audio[a:b]).max()))
    return round(_db(found), 2)


def reach(rate) -> int:
    """How far (in samples) the limiter's gain at one sample can be moved by audio away
    from it: the look-ahead before a peak, the hold after it and the release, with room
    for the interpolation filter and the re-checks."""
    attack, hold = max(1, int(ATTACK_S * rate)), max(1, int(HOLD_S * rate))
    return 3 * attack + hold + int(0.01 * rate) + TAPS


def limit(audio, rate, ceiling_db=-1.0):
    """`audio` (float stereo, changed in place) with its true peak held at or under
    ceiling_db; returns (audio, the deepest gain reduction in dB, 0.0 when none)."""
    ceiling = 10 ** (ceiling_db / 20)
    deepest = 1.0
    attack, hold = max(1, int(ATTACK_S * rate)), max(1, int(HOLD_S * rate))
    margin = 2 * attack + hold
    ranges = _hot(audio, rate, ceiling)
    for _ in range(4):  # a dip changes the waveform between samples a little: check again
        need = [(a, b, np.minimum(1.0, ceiling / np.maximum(_true_peaks(audio[a:b]), 1e-12))) for a, b in ranges]
        need = [(a, b, g) for a, b, g in need if g.min() < 1.0]
        if not need:
            break
        for a, b, g in need:
            lo, hi = max(0, a - margin), min(len(audio), b + margin)
            gain = np.ones(hi - lo)
            gain[a - lo : b - lo] = g * 0.999  # a hair under, so the check after passes
            gain = minimum_filter1d(gain, 2 * attack + 1)  # reached before the peak
            gain = minimum_filter1d(gain, hold, origin=(hold - 1) // 2)  # held after it
            gain = uniform_filter1d(gain, 2 * (attack // 2) + 1)  # no steps
            audio[lo:hi] *= gain[:, None].astype(audio.dtype)
            deepest = min(deepest, float(gain.min()))
        ranges = [(a, b) for a, b, _ in need]  # only where it dipped can a peak remain
    return audio, round(-_db(deepest), 2) if deepest < 1.0 else 0.0
