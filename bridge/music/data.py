"""Training windows: corpus work -> augmented note list -> tokens + per-token conditions.

Augmentation is applied on the fly, and the label is computed after it, so each change has
a known effect on (valence, arousal):
  tempo        quarter-note tempo drawn around the work's own (or 100 qpm), x0.7..x1.4
               -> density, hence arousal (and a little valence)
  dynamics     one loudness level for the window, the melody a level above
               -> loudness, hence arousal
  octave       the whole window up or down an octave (sometimes) -> register
  transpose    -5..+6 semitones -> no label change (mode is key-independent)
  orchestration  which family plays which part (ensemble, piano, strings, piano + solo)
               -> no label change
Times are put on a 10 ms grid: scores have no finer timing, and the fine 1 ms tokens stay
free for decode-time constraints.
"""

import numpy as np

from bridge.music import labels
from bridge.music.model import cond_features
from bridge.music.tokens import Note, encode, token_times_ms, VEL_LEVELS, PAD

ORCHESTRATIONS = ("ensemble", "piano", "strings", "piano_solo")


def _assign_families(parts, scheme):
    """Family per part, by register: the highest part leads, the lowest is the bass."""
    n = len(parts)
    if n == 1:
        return ["piano" if scheme == "piano" else "melody"]
    means = [float(p[:, 2].mean()) for p in parts]
    order = np.argsort(means)  # low .. high
    fam = [None] * n
    for rank, i in enumerate(order):
        top, bottom = rank == n - 1, rank == 0
        if scheme == "piano":
            fam[i] = "piano"
        elif scheme == "strings":
            fam[i] = "bass" if bottom else "pad"
        elif scheme == "piano_solo":
            fam[i] = "melody" if top else "piano"
        else:
            fam[i] = "melody" if top else "bass" if bottom else "pad"
    return fam


def augment(work, rng, start_q=None, max_notes=420, fixed=None):
    """One augmented window of a work as a note list (seconds) starting near start_q.

    `fixed` (a dict) pins augmentation choices, for evaluation on real data.
    """
    parts = work["parts"]
    fx = fixed or {}
    if start_q is None:
        starts = np.concatenate([p[:, 0] for p in parts])
        start_q = float(rng.choice(starts))
    base_qpm = work.get("qpm") or 100.0
    base_qpm = float(np.clip(base_qpm, 50, 180))
    qpm = fx.get("qpm", float(np.clip(base_qpm * np.exp(rng.uniform(np.log(0.7), np.log(1.4))), 40, 200)))
    level = fx.get("level", int(rng.integers(1, len(VEL_LEVELS) - 1)))
    transpose = fx.get("transpose", int(rng.integers(-5, 7)))
    octave = fx.get("octave", int(rng.choice([-12, 0, 0, 0, 12])))
    scheme = fx.get("scheme", ORCHESTRATIONS[int(rng.integers(len(ORCHESTRATIONS)))])
    fams = _assign_families(parts, scheme)
    sec_per_q = 60.0 / qpm
    notes = []
    for p, fam in zip(parts, fams):
        sel = p[p[:, 0] >= start_q - 1e-6]
        vel = VEL_LEVELS[min(level + 1, len(VEL_LEVELS) - 1)] if fam == "melody" else VEL_LEVELS[level]
        for on, dur, pitch in sel[:max_notes]:
            t = round((on - start_q) * sec_per_q, 2)             # 10 ms grid; the end is
            d = max(round((on + dur - start_q) * sec_per_q, 2) - t, 0.01)  # rounded, not the length
            notes.append(Note(t, d, int(pitch) + transpose + octave, vel, fam))
    notes.sort(key=lambda n: (n.start, n.pitch))
    notes = notes[:max_notes]
    # Keep the pitch range playable: undo the octave shift if it pushed notes off the keyboard.
    if notes and (min(n.pitch for n in notes) < 24 or max(n.pitch for n in notes) > 105) and octave:
        notes = [n._replace(pitch=n.pitch - octave) for n in notes]
    # Evaluation windows (fixed) are real music: no mode swap unless asked for.
    if fx.get("mode_swap", fixed is None and rng.random() < P_MODE_SWAP):
        notes = swap_mode(notes)
    return notes


P_MODE_SWAP = 0.5
# Scale steps above the tonic that differ between major and natural minor: 3rd, 6th, 7th.
TO_MINOR = {4: 3, 9: 8, 11: 10}
TO_MAJOR = {3: 4, 8: 9, 10: 11}


def swap_mode(notes):
    """The window in the parallel mode: a major passage with its 3rd, 6th and 7th lowered, a
    minor one with them raised (the key is the best Krumhansl-Kessler match).

    Why: in the corpus the mode is a property of the piece, so a model learns to continue
    the piece's mode whatever valence it is asked for. The same music in both modes, with
    the labels computed from the swapped notes, ties the mode to the condition instead.
    """
    pitched = [n for n in notes if n.family != "drums"]
    if not pitched:
        return notes
    hist = np.bincount([n.pitch % 12 for n in pitched], weights=[min(n.duration, 2.0) for n in pitched],
                       minlength=12)
    if hist.std() == 0:
        return notes
    h = (hist - hist.mean()) / hist.std()
    major, minor = labels._MAJ @ h, labels._MIN @ h
    if major.max() >= minor.max():
        tonic, steps = int(major.argmax()), TO_MINOR
    else:
        tonic, steps = int(minor.argmax()), TO_MAJOR
    out = []
    for n in notes:
        step = (n.pitch - tonic) % 12
        if n.family != "drums" and step in steps:
            n = n._replace(pitch=n.pitch + steps[step] - step)
        out.append(n)
    return out


def make_example(work, rng, block_size, p_drop_va=0.15, p_drop_b=0.15, fixed=None, start_q=None):
    """-> (tokens (block_size+1,), cond (block_size+1, COND_DIM), (valence, arousal))."""
    notes = augment(work, rng, start_q=start_q, fixed=fixed)
    toks = np.array(encode(notes), dtype=np.int64)[: block_size + 1]
    times = token_times_ms(toks) / 1000.0          # running time after each token
    covered = times[-1] if len(times) else 0.0
    window = [n for n in notes if n.start <= covered]
    v, a = labels.label(window, span_s=max(covered, 1.0))
    # Boundaries come from the notes beyond the window too, so late positions see the next cut.
    bounds = labels.boundaries(notes)
    b_given = len(bounds) > 0 or labels.has_chords(window)  # no chords at all: a bare melody
    nxt = np.full(len(times), np.inf)
    if len(bounds):
        idx = np.searchsorted(bounds, times - 1e-6)  # first boundary at or after each position
        ok = idx < len(bounds)
        nxt[ok] = bounds[idx[ok]]
    offset = nxt - times
    va_mask = 0.0 if (fixed is None and rng.random() < p_drop_va) else 1.0
    b_mask = 1.0 if b_given and not (fixed is None and rng.random() < p_drop_b) else 0.0
    cond = cond_features(v, a, offset, va_mask, b_mask)
    if len(toks) < block_size + 1:  # short works: pad (PAD targets are ignored by the loss)
        n = block_size + 1 - len(toks)
        toks = np.concatenate([toks, np.full(n, PAD)])
        cond = np.concatenate([cond, np.repeat(cond[-1:], n, axis=0)])
    return toks, cond, (v, a)


class Batcher:
    """Random windows from a list of works, weighted by note count (long works matter more)."""

    def __init__(self, works, block_size, seed=0, p_drop_va=0.15, p_drop_b=0.15):
        self.works = works
        self.block_size = block_size
        sizes = np.array([sum(len(p) for p in w["parts"]) for w in works], dtype=np.float64)
        self.weights = np.sqrt(sizes) * np.sqrt(np.minimum(sizes, 2000))  # ~ size, capped boost
        self.weights /= self.weights.sum()
        self.rng = np.random.default_rng(seed)
        self.p_drop_va, self.p_drop_b = p_drop_va, p_drop_b

    def batch(self, n):
        xs, cs = [], []
        for i in self.rng.choice(len(self.works), size=n, p=self.weights):
            t, c, _ = make_example(self.works[i], self.rng, self.block_size,
                                   self.p_drop_va, self.p_drop_b)
            xs.append(t)
            cs.append(c)
        x = np.stack(xs)
        c = np.stack(cs)
        # Position i predicts token i+1 from the condition at i (time heard so far, next cut).
        return x[:, :-1], c[:, :-1], x[:, 1:]
