"""Training windows: corpus work -> augmented note list -> tokens + per-token conditions.

Augmentation is applied on the fly, and the label is computed after it, so each change has
a known effect on (valence, arousal):
  tempo        quarter-note tempo drawn around the work's own (or 100 qpm), x0.7..x1.4
               -> density, hence arousal (and a little valence)
  dynamics     one loudness level for the window, the melody a level above
               -> loudness, hence arousal
  octave       the whole window up or down an octave (sometimes) -> register
  transpose    -5..+6 semitones -> no label change (mode is key-independent)
               (neither moves drums: a drum's key is which drum it is)
  orchestration  which family plays which part (ensemble, piano, strings, piano + solo)
               -> no label change (a work that names its families, a groove, keeps them)
  mode         the whole window, or alternate stretches of it, in the parallel mode
               -> valence (per position: each stretch is labelled in its own mode)
  energy       alternate stretches played slower and softer, or faster and louder
               -> arousal (per position: each stretch is labelled in its own energy)
  cut timing   the music held or cut short just before some boundaries, as a picture
               edit does -> none (teaches landing on a boundary that is off the beat)
Times are put on a 10 ms grid: scores have no finer timing, and the fine 1 ms tokens stay
free for decode-time constraints.
"""

from itertools import repeat

import numpy as np

from bridge.music import labels
from bridge.music.model import cond_features
from bridge.music.tokens import Note, encode, token_times_ms, PAD, PITCH_HI, PITCH_LO, VEL_LEVELS

ORCHESTRATIONS = ("ensemble", "piano", "strings", "piano_solo")


def on_grid(t: float) -> float:
    """A time (s) on the 10 ms grid, rounded as numpy rounds (x 100, half to even, / 100),
    which is how window times have always been put on it."""
    return round(t * 100) / 100


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


def augment(work, rng, start_q=None, max_notes=420, fixed=None, p_mode_swap=None, p_retime=0.0):
    """One augmented window of a work as a note list (seconds) starting near start_q.

    `fixed` (a dict) pins augmentation choices, for evaluation on real data.
    """
    p_mode_swap = P_MODE_SWAP if p_mode_swap is None else p_mode_swap
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
    # A work that names its parts' families (mma's grooves: drums, bass, chords) keeps them.
    fams = work.get("families") or _assign_families(parts, scheme)
    sec_per_q = 60.0 / qpm
    notes = []
    for p, fam in zip(parts, fams):
        sel = p[p[:, 0] >= start_q - 1e-6][:max_notes]
        vel = VEL_LEVELS[min(level + 1, len(VEL_LEVELS) - 1)] if fam == "melody" else VEL_LEVELS[level]
        on, dur = sel[:, 0], sel[:, 1]
        t = np.round((on - start_q) * sec_per_q, 2)  # 10 ms grid; the end
        d = np.maximum(np.round((on + dur - start_q) * sec_per_q, 2) - t, 0.01)  # is rounded, not the length
        pitch = sel[:, 2].astype(np.int64) + (0 if fam == "drums" else transpose + octave)  # a drum key is a drum
        # Plain floats from here on (of the corpus's float32 values, as before): arithmetic
        # on numpy scalars note by note was most of the time it took to build a window.
        notes += map(Note, t.tolist(), d.tolist(), pitch.tolist(), repeat(vel), repeat(fam))
    notes.sort(key=lambda n: (n.start, n.pitch))
    notes = notes[:max_notes]
    # Keep the pitch range playable: undo the octave shift if it pushed notes off the keyboard.
    pitched = [n.pitch for n in notes if n.family != "drums"]
    if pitched and (min(pitched) < 24 or max(pitched) > 105) and octave:
        notes = [n if n.family == "drums" else n._replace(pitch=n.pitch - octave) for n in notes]
    # Evaluation windows (fixed) are real music: no mode swap or cut timing unless asked for.
    if fx.get("retime", fixed is None and rng.random() < p_retime):
        notes = retime_at_boundaries(notes, rng)
    if fx.get("mode_swap", fixed is None and rng.random() < p_mode_swap):
        notes = swap_mode(notes)
    return notes


RETIME_SHARE = 0.6  # of a window's boundaries, the share held or cut before
RETIME_MAX_S = 0.45  # by at most this long (at least 50 ms)


def retime_at_boundaries(notes, rng, share=RETIME_SHARE, max_s=RETIME_MAX_S):
    """Hold or cut the music just before some of its boundaries, the way a picture edit
    moves a cut off the beat.

    Why: in scores every boundary falls on the music's own beat grid, so a model learns to
    reach a boundary only when its rhythm happens to. Cuts in an edit fall anywhere. A hold
    (the notes sounding across the boundary lengthened, everything from it on later) or a
    cut (the last stretch before it removed, everything from it on earlier) makes the last
    step into the boundary an arbitrary length, which the offset alone can tell.
    """
    bounds = labels.boundaries(notes)
    if not len(bounds):
        return notes
    start = np.array([n.start for n in notes], dtype=np.float64)
    dur = np.array([n.duration for n in notes], dtype=np.float64)
    kept = np.arange(len(notes))
    for b in bounds[::-1]:  # latest first: earlier edits move it along
        if rng.random() >= share:
            continue
        d = round(float(rng.uniform(0.05, max_s)), 2)
        if rng.random() < 0.5:
            start, dur = _hold_before(start, dur, b, d)
        else:
            start, dur, keep = _cut_before(start, dur, b, d)
            start, dur, kept = start[keep], dur[keep], kept[keep]
    pitch = np.array([notes[i].pitch for i in kept])
    order = np.lexsort((pitch, start))  # by (start, pitch), ties as they were
    return [
        notes[kept[i]]._replace(start=s, duration=d)
        for i, s, d in zip(order.tolist(), start[order].tolist(), dur[order].tolist())
    ]


def _on_grid(t):
    return np.round(t * 100) / 100  # as on_grid, for arrays


def _hold_before(start, dur, b, d):
    """(start, duration) arrays with everything from `b` on later by `d` and the notes
    sounding into it held longer."""
    at = start >= b - 1e-6
    into = ~at & (start + dur > b - 1e-6)
    return np.where(at, _on_grid(start + d), start), np.where(into, _on_grid(dur + d), dur)


def _cut_before(start, dur, b, d):
    """(start, duration, kept) with the `d` before `b` removed: notes starting in it dropped
    (kept False), everything from `b` on earlier, notes sounding across it shortened."""
    cut = max(b - d, 0.0)
    d = b - cut
    end = start + dur
    at = start >= b - 1e-6
    kept = at | (start < cut - 1e-6)  # not inside the removed stretch
    across = ~at & (end > b + 1e-6)
    into = ~at & ~across & (end > cut)
    dur = np.where(across, _on_grid(dur - d), np.where(into, np.maximum(_on_grid(cut - start), 0.01), dur))
    return np.where(at, _on_grid(start - d), start), dur, kept


P_MODE_SWAP = 0.5
# Scale steps above the tonic that differ between major and natural minor: 3rd, 6th, 7th.
TO_MINOR = {4: 3, 9: 8, 11: 10}
TO_MAJOR = {3: 4, 8: 9, 10: 11}


def find_key(notes):
    """(tonic pitch class, steps to change) for the parallel mode of the best
    Krumhansl-Kessler key, or None when the notes have no key."""
    pitched = [n for n in notes if n.family != "drums"]
    if not pitched:
        return None
    hist = np.bincount([n.pitch % 12 for n in pitched], weights=[min(n.duration, 2.0) for n in pitched], minlength=12)
    if hist.std() == 0:
        return None
    h = (hist - hist.mean()) / hist.std()
    major, minor = labels._MAJ @ h, labels._MIN @ h
    if major.max() >= minor.max():
        return int(major.argmax()), TO_MINOR
    return int(minor.argmax()), TO_MAJOR


def key_index(key, modes=1, swapped=False):
    """find_key's key as the condition's key index (model.cond_features): the tonic's pitch
    class, plus 12 for a minor key when the model tells modes (`modes` 2). `swapped` gives
    the parallel key (the window after swap_mode)."""
    tonic, steps = key
    minor = (steps is TO_MAJOR) != bool(swapped)
    return tonic + (12 if modes == 2 and minor else 0)


def swap_mode(notes, key=None, switches_ms=None):
    """The window in the parallel mode: a major passage with its 3rd, 6th and 7th lowered, a
    minor one with them raised (the key is the best Krumhansl-Kessler match, or `key`).
    With `switches_ms`, only the notes starting after an odd number of them change.

    Why: in the corpus the mode is a property of the piece, so a model learns to continue
    the piece's mode whatever valence it is asked for. The same music in both modes, with
    the labels computed from the swapped notes, ties the mode to the condition instead.
    """
    key = key or find_key(notes)
    if key is None:
        return notes
    tonic, steps = key
    if switches_ms is None:
        changing = [True] * len(notes)
    else:
        changing = _switched([round(n.start * 1000) for n in notes], switches_ms).tolist()
    out = []
    for n, change in zip(notes, changing):
        step = (n.pitch - tonic) % 12
        if change and n.family != "drums" and step in steps:
            n = n._replace(pitch=n.pitch + steps[step] - step)
        out.append(n)
    return out


SWITCH_GAP_S = (1.5, 5.0)  # seconds between mode switches inside a window


def mode_switches(notes, covered_s, rng, gap_s=SWITCH_GAP_S):
    """Milliseconds inside the window where the mode changes: every 1.5-5 s, each on the
    nearest onset (a chord's when one is within 0.5 s).

    Why this often: the music just heard tells the mode, so a model learns to continue it
    and the valence condition only helps on the first altered notes after a change. Many
    changes per window make the condition, not the context, the reliable guide.
    Milliseconds, as the tokens count time: note starts are not exact decimals.
    """
    ms = lambda t: int(round(float(t) * 1000))
    onsets = np.array(sorted({ms(n.start) for n in notes if n.start <= covered_s}))
    chords = np.array([ms(t) for t in labels.chord_onsets(notes, per_s=1000)], dtype=np.int64)
    out, t = [], float(rng.uniform(*gap_s)) * 500
    while t < (covered_s - 0.5) * 1000 and len(onsets):
        near = chords[np.abs(chords - t) <= 500] if len(chords) else chords
        pool = near if len(near) else onsets
        snap = int(pool[np.abs(pool - t).argmin()])
        if snap > 0 and (not out or snap > out[-1] + 500):
            out.append(snap)
        t = max(t, snap) + float(rng.uniform(*gap_s)) * 1000
    return out


KEY_GAP_S = (2.0, 6.0)  # seconds between key switches inside a window


def modulate(notes, switches_ms, shifts):
    """The notes starting after the i-th switch (ms) moved by shifts[i] semitones from the
    original key (an octave back where that leaves the keyboard); drums stay.

    Why: in the corpus a window keeps its key, so a model learns to continue the key it has
    heard and the key condition helps only at the start; its own takes drift from key to
    key. A key that changes against what was heard makes the condition the guide."""
    sw = np.asarray(switches_ms)
    out = []
    for n in notes:
        i = int(np.searchsorted(sw, int(round(n.start * 1000)), side="right"))
        if i and n.family != "drums":
            p = n.pitch + shifts[i - 1]
            p = p + 12 if p < PITCH_LO else p - 12 if p > PITCH_HI else p
            n = n._replace(pitch=p)
        out.append(n)
    return sorted(out, key=lambda n: (n.start, n.pitch))


def draw_shifts(n, rng):
    """n successive transpositions (-5..+6 semitones from the original key), each unlike the last."""
    out, last = [], 0
    for _ in range(n):
        k = int(rng.integers(-5, 6))
        k = k + 1 if k >= last else k  # never the key just left
        out.append(k)
        last = k
    return out


ENERGY_GAP_S = (2.5, 6.0)  # seconds between energy switches inside a window
ENERGY_STRETCH = (1.35, 1.8)  # how much slower (or, inverted, faster) a changed stretch plays
ENERGY_LEVELS = (2, 3)  # and how many loudness levels softer (or louder)
# Note times carry the corpus's float32 error (1.79 s is 1.78999996): a note this close to
# a switch starts at it.
SAME_S = 1e-4


def draw_energy(rng):
    """(time factor, loudness levels) of a changed stretch: slower and softer, or faster and louder."""
    k = float(rng.uniform(*ENERGY_STRETCH))
    dv = int(rng.integers(ENERGY_LEVELS[0], ENERGY_LEVELS[1] + 1))
    return (k, -dv) if rng.random() < 0.5 else (1.0 / k, dv)


def change_energy(notes, switches_s, k, dv):
    """The notes with every other stretch (after the 1st, 3rd, ... switch) played `k` times
    as long and `dv` loudness levels up; the stretches between keep their time and level.

    Why: in the corpus a window keeps one tempo and one loudness, so a model learns to
    continue the energy it has heard and the arousal condition matters only at the start;
    a score's mood changes mid-cue. Returns (notes, switch times in the new timing)."""
    edges = [float(e) for e in switches_s]

    def warp(t):
        out, prev = 0.0, 0.0
        for i, e in enumerate(edges):
            if t <= e + SAME_S:
                break
            out += (e - prev) * (k if i % 2 == 1 else 1.0)
            prev = e
        return out + (t - prev) * (k if len(edges) and sum(e < t - SAME_S for e in edges) % 2 == 1 else 1.0)

    def louder(v):
        level = int(np.argmin([abs(v - x) for x in VEL_LEVELS]))
        return VEL_LEVELS[int(np.clip(level + dv, 0, len(VEL_LEVELS) - 1))]

    out = []
    for n in notes:
        start = on_grid(warp(n.start))
        end = on_grid(warp(n.start + n.duration))
        odd = sum(e <= n.start + SAME_S for e in edges) % 2 == 1
        out.append(
            n._replace(start=start, duration=max(end - start, 0.01), velocity=louder(n.velocity) if odd else n.velocity)
        )
    out.sort(key=lambda n: (n.start, n.pitch))
    return out, [round(warp(e), 2) for e in edges]  # on the notes' 10 ms grid


def _switched(times_ms, switches_ms):
    """True where an odd number of switches lie at or before each time (ms)."""
    return (np.searchsorted(np.asarray(switches_ms), np.round(np.asarray(times_ms)), side="right") % 2) == 1


def make_example(
    work,
    rng,
    block_size,
    p_drop_va=0.15,
    p_drop_b=0.15,
    fixed=None,
    start_q=None,
    aug=None,
    p_drop_tonic=None,
    key_modes=1,
):
    """-> (tokens (block_size+1,), cond (block_size+1, COND_DIM), (valence, arousal)).

    aug: augmentation probabilities {"mode_swap", "mode_switch", "key_switch", "energy_switch",
    "retime"}
    (see Batcher). With "mode_switch" a window changes mode every few seconds; the valence
    condition changes with it (each stretch carries the label of the whole window in that
    mode), so the model must follow the condition against what it has heard so far.
    "key_switch" (drawn only when the mode does not switch) moves the music to another key
    every few seconds (modulate), and the tonic/key condition with it.
    "energy_switch" (drawn only when neither switches) does the same with tempo and
    loudness, and so arousal (change_energy).
    The valence and arousal returned are those of the window's start.
    p_drop_tonic: None gives no tonic (models without the tonic condition; nothing is drawn,
    so their training windows stay what they were); otherwise the tonic of the window's key
    (find_key: the same in both modes, so valence alone tells the mode) is given except with
    this probability, and never when valence/arousal are withheld. Fixed (evaluation)
    windows always carry it; models without the condition ignore it. key_modes 2 gives the
    key with its mode instead (key_index), which follows the mode switches.
    """
    aug = aug or {}
    notes = augment(
        work, rng, start_q=start_q, fixed=fixed, p_mode_swap=aug.get("mode_swap"), p_retime=aug.get("retime", 0.0)
    )
    toks = np.array(encode(notes), dtype=np.int64)[: block_size + 1]
    times = token_times_ms(toks) / 1000.0  # running time after each token
    covered = times[-1] if len(times) else 0.0
    window = [n for n in notes if n.start <= covered]
    v, a = labels.label(window, span_s=max(covered, 1.0))
    key = find_key(window)
    key_at = None if key is None else key_index(key, key_modes)
    if fixed is None and key is not None and rng.random() < aug.get("mode_switch", 0.0):
        switches = mode_switches(window, covered, rng)
        if switches:
            v_other = labels.label(swap_mode(window, key), span_s=max(covered, 1.0))[0]
            notes = swap_mode(notes, key, switches_ms=switches)
            toks = np.array(encode(notes), dtype=np.int64)[: block_size + 1]
            times_ms = token_times_ms(toks)
            times = times_ms / 1000.0
            odd = _switched(times_ms, switches)
            v = np.where(odd, v_other, v)
            key_at = np.where(odd, key_index(key, key_modes, swapped=True), key_at)
    elif fixed is None and key is not None and aug.get("key_switch", 0.0) > 0 and rng.random() < aug["key_switch"]:
        switches = mode_switches(window, covered, rng, gap_s=KEY_GAP_S)
        if switches:
            shifts = draw_shifts(len(switches), rng)
            notes = modulate(notes, switches, shifts)
            toks = np.array(encode(notes), dtype=np.int64)[: block_size + 1]
            times_ms = token_times_ms(toks)
            times = times_ms / 1000.0
            i = np.searchsorted(np.asarray(switches), np.round(times_ms), side="right")
            shift = np.array([0] + shifts)[i]
            key_at = np.mod(key_at % 12 + shift, 12) + (key_at // 12) * 12
    elif fixed is None and aug.get("energy_switch", 0.0) > 0 and rng.random() < aug["energy_switch"]:
        switches = mode_switches(window, covered, rng, gap_s=ENERGY_GAP_S)
        if switches:
            k, dv = draw_energy(rng)
            changed, _ = change_energy(window, [0.0], k, dv)  # the whole window, changed
            v_other, a_other = labels.label(changed, span_s=max(covered * k, 1.0))
            notes, moved = change_energy(notes, [x / 1000 for x in switches], k, dv)
            toks = np.array(encode(notes), dtype=np.int64)[: block_size + 1]
            times_ms = token_times_ms(toks)
            times = times_ms / 1000.0
            odd = _switched(times_ms, [int(round(x * 1000)) for x in moved])
            v, a = np.where(odd, v_other, v), np.where(odd, a_other, a)
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
    tonic = -1
    if (
        key is not None
        and va_mask
        and (fixed is not None or (p_drop_tonic is not None and rng.random() >= p_drop_tonic))
    ):
        tonic = key_at
    cond = cond_features(v, a, offset, va_mask, b_mask, tonic)
    toks, cond = pad_window(toks, cond, block_size)
    return toks, cond, (float(np.ravel(v)[0]), float(np.ravel(a)[0]))


def pad_window(toks, cond, block_size):
    """Short windows filled to block_size + 1 with PAD (ignored by the loss), the last
    condition repeated."""
    if len(toks) < block_size + 1:
        n = block_size + 1 - len(toks)
        toks = np.concatenate([toks, np.full(n, PAD)])
        cond = np.concatenate([cond, np.repeat(cond[-1:], n, axis=0)])
    return toks, cond


class Batcher:
    """Random windows from a list of works, weighted by note count (long works matter more)."""

    def __init__(
        self,
        works,
        block_size,
        seed=0,
        p_drop_va=0.15,
        p_drop_b=0.15,
        aug=None,
        p_drop_tonic=None,
        key_modes=1,
        groove_share=None,
    ):
        self.works = works
        self.p_drop_tonic, self.key_modes = p_drop_tonic, key_modes
        self.aug = aug
        self.block_size = block_size
        sizes = np.array([sum(len(p) for p in w["parts"]) for w in works], dtype=np.float64)
        self.weights = np.sqrt(sizes) * np.sqrt(np.minimum(sizes, 2000))  # ~ size, capped boost
        # groove_share: the share of windows drawn from mma's grooves (by size within them);
        # weighted like every work they are a quarter, as dense as drums make them.
        grooves = np.array([w.get("collection") == "mma" for w in works], dtype=bool)
        if groove_share is not None and grooves.any() and (~grooves).any():
            self.weights[grooves] *= groove_share / self.weights[grooves].sum()
            self.weights[~grooves] *= (1.0 - groove_share) / self.weights[~grooves].sum()
        self.weights /= self.weights.sum()
        self.rng = np.random.default_rng(seed)
        self.p_drop_va, self.p_drop_b = p_drop_va, p_drop_b

    def batch(self, n):
        xs, cs = [], []
        for i in self.rng.choice(len(self.works), size=n, p=self.weights):
            t, c, _ = make_example(
                self.works[i],
                self.rng,
                self.block_size,
                self.p_drop_va,
                self.p_drop_b,
                aug=self.aug,
                p_drop_tonic=self.p_drop_tonic,
                key_modes=self.key_modes,
            )
            xs.append(t)
            cs.append(c)
        x = np.stack(xs)
        c = np.stack(cs)
        # Position i predicts token i+1 from the condition at i (time heard so far, next cut).
        return x[:, :-1], c[:, :-1], x[:, 1:]
