"""Key steering: a soft pull toward one key and mode, applied while sampling.

At its size the model takes little from the valence it is given (about 0.002 nats per
window, docs/research/2026-12-07-music-model-card-history.md, "Three valence experiments
that did not help") and its takes wander from key to key, so a scene's mood is not
heard as a mode. Steering adds `strength` times the log Krumhansl-Kessler weight of each
pitch class in the asked key (mean 0 over the twelve) to the logits of the pitched
note-ons, then shifts them together so that their total probability is the model's: the
pull changes which pitch starts, not whether a note starts (density still follows
arousal). The tonic triad is drawn more often and pitches outside the key less; nothing is
forbidden, and timing, loudness, families and note-offs are untouched.

Its limit: on its own (no chord plan) a strong pull makes the model circle the tonic
triad, and pitch-class entropy falls well below real music's
(docs/research/2026-12-07-music-model-card-history.md, "Key steering"). In a score
the plan's chords on the cuts (IV, V, vi, ...) bring the other degrees back, which is why
steering is the product's default (compose.py) and reported beside, not instead of, the
plain model's figures (`scorebridge eval`, "steered").
"""

import numpy as np
import torch

from bridge.music.labels import KK_MAJOR, KK_MINOR
from bridge.music.sample import _schedule
from bridge.music.tokens import FAMILY_INDEX, N_PITCH, ON0, PITCH_LO

PROFILES = {"major": KK_MAJOR, "minor": KK_MINOR}
# The product's strength (compose.KEY_PULL). On eval-score's 25 targets, seeds 1-3, it took
# the valence-mode rho from -0.06 to 0.76 and pitch-class entropy from 2.91 to 2.21 bits.
STRENGTH = 3.5

# Drums come first in the vocabulary, so the pitched note-ons are one contiguous span.
assert FAMILY_INDEX["drums"] == 0
ON_LO, ON_HI = ON0 + N_PITCH, ON0 + len(FAMILY_INDEX) * N_PITCH
_PC_OF_ON = np.tile((np.arange(N_PITCH) + PITCH_LO) % 12, len(FAMILY_INDEX) - 1)
_CACHE = {}


def pitch_class_bias(tonic, mode) -> np.ndarray:
    """(12,) log profile weights of pitch classes 0..11 (C..B) in `tonic` `mode`, mean 0."""
    log = np.log(np.roll(PROFILES[mode], int(tonic) % 12))
    return log - log.mean()


def _note_on_bias(tonic, mode) -> torch.Tensor:
    key = (int(tonic) % 12, mode)
    if key not in _CACHE:
        _CACHE[key] = torch.from_numpy(pitch_class_bias(*key)[_PC_OF_ON]).float()
    return _CACHE[key]


def pull(row, tonic, mode, strength):
    """Logits (vocab,) with the pitched note-ons pulled toward the key, their total mass kept."""
    if not strength:
        return row
    ons = row[ON_LO:ON_HI]
    before = torch.logsumexp(ons, 0)
    if not torch.isfinite(before):  # no note may start here (a rest, a forced token)
        return row
    moved = ons + strength * _note_on_bias(tonic, mode).to(row.dtype)
    row = row.clone()
    row[ON_LO:ON_HI] = moved + (before - torch.logsumexp(moved, 0))
    return row


class KeySteer:
    """A sampler `constrain` hook: key_at(take, seconds) -> (tonic, mode, strength)."""

    def __init__(self, key_at):
        self.key_at = key_at

    def __call__(self, logits, now_ms):
        return torch.stack([pull(row, *self.key_at(b, float(now_ms[b]) / 1000)) for b, row in enumerate(logits)])


def for_valence(valence_per_take, tonics, strength):
    """Steering as a score's plan does it: each take in its tonic, major while v >= 0 and
    minor below, at one strength. valence_per_take: one valence per take, in any form the
    sampler takes (a number, [(seconds, v), ...] breakpoints, a function of seconds)."""
    valence_at = [_schedule(v) for v in valence_per_take]

    def key_at(b, seconds):
        return tonics[b], ("major" if valence_at[b](seconds) >= 0 else "minor"), strength

    return KeySteer(key_at)
