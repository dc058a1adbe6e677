"""Valence/arousal labels and boundaries, derived from the notes themselves.

The corpus carries no emotion labels, so every training window is labelled from musical
features that the music-psychology literature ties to perceived emotion, computed on the
window *after* augmentation (so tempo, dynamics and octave changes move the label by a
known amount):

  mode      Krumhansl-Kessler key profiles: best major-key correlation minus best
            minor-key correlation of the duration-weighted pitch-class histogram
  register  duration-weighted mean pitch, in octaves from middle C
  density   note onsets per second (all parts)
  loudness  mean MIDI velocity
  leaps     mean absolute interval of the top line (skyline), semitones

  valence = tanh(0.80*mode + 0.12*register + 0.08*tempo)
  arousal = tanh(0.50*tempo + 0.35*loudness + 0.08*register + 0.07*leaps)

where tempo = log2(density / 2.4) and every term is centred and scaled to about unit
spread on the corpus (constants below).
Transposition and orchestration leave the label unchanged by construction (mode and
density do not depend on them; register is measured after octave shift only).

Boundaries are onsets of long chords: >= 3 notes starting on the same millisecond whose
third-longest note lasts at least LONG_CHORD_S, at least MIN_GAP_S apart — the moments a
film composer would put on a cut. Where there are drums (mma's grooves; the scores have
none), a chord struck with the bass drum or a crash is one too, however short: a band's
accent, which a composer would put on a cut as well.
"""

import numpy as np

from bridge.music.theory import MAJOR_PROFILE, MINOR_PROFILE

# Krumhansl & Kessler (1982) probe-tone profiles, C major / C minor.
KK_MAJOR = np.array(MAJOR_PROFILE)
KK_MINOR = np.array(MINOR_PROFILE)


def _profiles():
    maj = np.stack([np.roll(KK_MAJOR, k) for k in range(12)])
    mnr = np.stack([np.roll(KK_MINOR, k) for k in range(12)])
    z = lambda m: (m - m.mean(1, keepdims=True)) / m.std(1, keepdims=True)
    return z(maj), z(mnr)


_MAJ, _MIN = _profiles()

LONG_CHORD_S = 0.9
MIN_GAP_S = 1.5
CHORD_NOTES = 3
ACCENT_DRUMS = frozenset((35, 36, 49, 57))  # General MIDI: the two bass drums, the two crashes


def as_arrays(notes):
    """Note list -> (start, duration, pitch, velocity, is_drum) arrays."""
    if not notes:
        z = np.zeros(0)
        return z, z, z, z, z.astype(bool)
    a = np.array([(n.start, n.duration, n.pitch, n.velocity) for n in notes], dtype=np.float64)
    drum = np.array([n.family == "drums" for n in notes])
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3], drum


def mode_score(pitch, dur):
    """(major-minor correlation difference, key clarity) of a duration-weighted pc histogram."""
    if len(pitch) == 0:
        return 0.0, 0.0
    hist = np.bincount(pitch.astype(int) % 12, weights=np.minimum(dur, 2.0), minlength=12)
    if hist.std() == 0:
        return 0.0, 0.0
    h = (hist - hist.mean()) / hist.std()
    rmaj = (_MAJ @ h) / 12
    rmin = (_MIN @ h) / 12
    return float(rmaj.max() - rmin.max()), float(max(rmaj.max(), rmin.max()))


def features(notes, span_s=None) -> dict:
    """The musical features behind the labels (pitched notes only for pitch features)."""
    start, dur, pitch, vel, drum = as_arrays(notes)
    if len(start) == 0:
        return {
            "mode": 0.0,
            "clarity": 0.0,
            "register": 0.0,
            "density": 0.0,
            "velocity": 0.0,
            "leaps": 0.0,
            "seconds": 0.0,
        }
    end = float((start + dur).max())
    span = span_s or max(end - float(start.min()), 1.0)
    p = ~drum
    mode, clarity = mode_score(pitch[p], dur[p])
    w = np.minimum(dur[p], 2.0)
    register = float((pitch[p] * w).sum() / w.sum()) if p.any() else 60.0
    onsets = len(np.unique(np.round(start * 1000)))
    # Skyline: the highest pitched note at each onset, then its mean melodic step.
    leaps = 0.0
    if p.sum() > 1:
        order = np.lexsort((-pitch[p], start[p]))
        s, pp = start[p][order], pitch[p][order]
        first = np.r_[True, np.diff(np.round(s * 1000)) != 0]
        top = pp[first]
        if len(top) > 1:
            leaps = float(np.abs(np.diff(top)).mean())
    return {
        "mode": mode,
        "clarity": clarity,
        "register": register,
        "density": onsets / span,
        "velocity": float(vel.mean()),
        "leaps": leaps,
        "seconds": span,
    }


# Centre and spread of each feature over training windows (measured on 1,500 augmented
# windows of the corpus: median and roughly half the 5-95 % range).
MODE_C, MODE_S = 0.10, 0.15
REG_C, REG_S = 67.0, 10.0
DENS_C = 2.4  # onsets per second; the tempo term is log2(density / DENS_C)
VEL_C, VEL_S = 80.0, 28.0
LEAP_C, LEAP_S = 3.3, 2.5


def terms(f) -> dict:
    """Features -> centred, unit-spread terms."""
    return {
        "mode": (f["mode"] - MODE_C) / MODE_S,
        "register": (f["register"] - REG_C) / REG_S,
        "tempo": float(np.log2(max(f["density"], 0.25) / DENS_C)),
        "loudness": (f["velocity"] - VEL_C) / VEL_S,
        "leaps": (f["leaps"] - LEAP_C) / LEAP_S,
    }


def label_from_features(f) -> tuple:
    """Features -> (valence, arousal) in [-1, 1]."""
    z = terms(f)
    valence = np.tanh(0.80 * z["mode"] + 0.12 * z["register"] + 0.08 * z["tempo"])
    arousal = np.tanh(0.50 * z["tempo"] + 0.35 * z["loudness"] + 0.08 * z["register"] + 0.07 * z["leaps"])
    return float(valence), float(arousal)


def label(notes, span_s=None) -> tuple:
    return label_from_features(features(notes, span_s))


def boundaries(notes) -> np.ndarray:
    """Onsets (seconds) of long chords, and of chords struck with an accent drum
    (ACCENT_DRUMS), at least MIN_GAP_S apart."""
    groups, accents = {}, set()
    for n in notes:
        ms = int(round(n.start * 1000))
        if n.family != "drums":
            groups.setdefault(ms, []).append(n.duration)
        elif n.pitch in ACCENT_DRUMS:
            accents.add(ms)
    out = []
    for t in sorted(groups):
        durs = sorted(groups[t], reverse=True)
        if len(durs) >= CHORD_NOTES and (durs[CHORD_NOTES - 1] >= LONG_CHORD_S or t in accents):
            if not out or t / 1000 - out[-1] >= MIN_GAP_S:
                out.append(t / 1000)
    return np.array(out)


def chord_onsets(notes, min_notes: int = CHORD_NOTES, per_s: int = 100) -> np.ndarray:
    """Times (s) where at least `min_notes` pitched notes start within the same 1/per_s s
    (10 ms by default)."""
    counts = {}
    for n in notes:
        if n.family != "drums":
            k = int(round(n.start * per_s))
            counts[k] = counts.get(k, 0) + 1
    return np.array(sorted(k / per_s for k, c in counts.items() if c >= min_notes))


def has_chords(notes) -> bool:
    return len(chord_onsets(notes)) > 0
