"""Melody: the event transformer writes the motifs; the cue states and restates them.

For each mood the cue has (its sections' palettes), the music model draws four-bar lines in
the melody family alone, conditioned as EMSYNC conditions it: the mood's valence and arousal,
the key, and a boundary at the end of each two-bar phrase, so it shapes its phrases toward
them. It draws TAKES of them in one batch and the best-shaped is kept (`shape`): a single
draw often noodled between two notes, which no restatement can make a tune. The draw is heard in seconds at the mood's tempo; here it becomes a motif on the grid:
one line (onsets on 8ths, each note the one nearest the line's last, within a fifth of it),
pitches as scale steps.

Over the cue, phrases of two bars run on the cue's grid from each section start, in a form
that follows the harmony's loop (A A B A over a two- or eight-bar loop, A B A B over a
four-bar one, so each motif comes back over the chords it was first heard on): the motif
(A) restated on whatever chord is sounding — moved by scale steps so it starts on a chord
tone — and the answer (B, the draw's second half). A note on a strong beat
(beats 1 and 3, or a note held two beats) is moved to the nearest tone of its chord that
keeps the motif's motion, every other
note stays in the scale; the phrase is moved by octaves into the instrument's range, and its
last note is held to the phrase's end (less a breath), resting open (on the third or fifth) in
the first phrase of a pair and closed (on the tonic) in the second. Calm sections play the motif at half
speed (augmentation) when it is busy. A restatement is the first statement moved by the
interval its chord moved (a sequence) or else the smallest interval that fits the new chords
(strong notes on chord tones, all in the scale), so the motif comes back with its own
intervals; only where none fits is it re-fitted by scale steps. Where a phrase's harmony
(its chords relative to its first) was heard before under the same motif, the phrase played
there comes back, moved with its chords: a loop come round again is heard again whole.

When the model writes fewer than three notes for a motif, an arpeggiated motif of the
mood's chord takes its place; `Melody.sources` says which motifs came from where.
"""

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from bridge.music.arrangement import BeatNote, chord_at, energy, register
from bridge.music.harmony import _bpm_at, loop_beats
from bridge.music.sample import sample
from bridge.music.theory import SCALES
from bridge.music.tokens import FAMILY_INDEX, N_FAM, N_PITCH, N_VEL, OFF0, ON0, SHIFT0, VEL0, EOS

MOTIF_BEATS = 8  # a phrase: two bars of 4/4
DRAW_PHRASES = 2  # the model draws A and B in one line
# by the harmony's loop, in beats: each motif comes back over the chords it was first heard on
FORM = {8: ("A", "A", "B", "A"), 16: ("A", "B", "A", "B"), 32: ("A", "A", "B", "A")}
BREATH = Fraction(1, 2)
TAKES = 8  # lines drawn per mood; the best-shaped is the motif


@dataclass(frozen=True)
class Motif:
    notes: tuple  # ((onset beats, length beats, scale step from the first note), ...)
    source: str  # "model" or "fallback"


@dataclass
class Melody:
    notes: list  # BeatNote, role "melody"
    sources: dict = field(default_factory=dict)  # palette -> ["model"|"fallback", ...] (A, B)


def _melody_only(logits, now_ms):
    """The sampler's constraint for a motif draw: note-ons, note-offs and loudness of the
    melody family only, time shifts, never the end."""
    mask = torch.full((logits.shape[-1],), float("-inf"))
    f = FAMILY_INDEX["melody"]
    mask[ON0 + f * N_PITCH : ON0 + (f + 1) * N_PITCH] = 0
    mask[OFF0 + f * N_PITCH : OFF0 + (f + 1) * N_PITCH] = 0
    mask[SHIFT0:VEL0] = 0
    mask[VEL0 + f * N_VEL : VEL0 + (f + 1) * N_VEL] = 0
    mask[EOS] = float("-inf")
    assert N_FAM == len(FAMILY_INDEX)
    return logits + mask


def draw_motifs(model, moods, seed, takes=TAKES) -> dict:
    """{palette: (A, B)} Motifs drawn by the music model: `takes` lines per mood in one batch,
    the one with the best shape kept (`shape`).

    moods: {palette: (valence, arousal, tonic, mode, bpm)}."""
    names = sorted(moods)
    if not names:
        return {}
    rows = [n for n in names for _ in range(takes)]
    seconds = [DRAW_PHRASES * MOTIF_BEATS * 60.0 / moods[n][4] for n in rows]
    length = max(seconds)
    drawn = sample(
        model,
        length,
        valence=[moods[n][0] for n in rows],
        arousal=[moods[n][1] for n in rows],
        boundaries=[[s * (k + 1) / DRAW_PHRASES for k in range(DRAW_PHRASES)] for s in seconds],
        batch=len(rows),
        per_take=True,
        seed=seed,
        constrain=_melody_only,
        tonic=[moods[n][2] for n in rows] if model.cfg.tonic else None,
        max_tokens=int(length * 40) + 32,
    )
    out = {}
    for name, take, span in zip(rows, drawn, seconds):
        _, _, tonic, mode, bpm = moods[name]
        line = _line([n for n in take if n.family == "melody" and n.start < span], bpm)
        halves = []
        for k in range(DRAW_PHRASES):
            part = [(t - k * MOTIF_BEATS, d, p) for t, d, p in line if k * MOTIF_BEATS <= t < (k + 1) * MOTIF_BEATS]
            halves.append(_motif(part, tonic, mode) if len(part) >= 3 else _fallback(k))
        halves = tuple(halves)
        if name not in out or shape(halves) > shape(out[name]):  # ties keep the earlier take
            out[name] = halves
    return out


def shape(motifs) -> float:
    """How much a pair of motifs (A, B) sounds like a tune rather than noodling, by what a
    melody needs: several pitches, a span of a fourth to an octave, motion mostly by step
    (few leaps over a fifth), few repeated notes and little two-note back-and-forth
    (x y x y), and more than one note length.
    A fallback (the model wrote too little) ranks under any drawn line."""
    score = 0.0
    for motif in motifs:
        if motif.source != "model":
            score -= 10.0
            continue
        steps = [st for _, _, st in motif.notes]
        n = len(steps)
        span = max(steps) - min(steps)
        repeated = sum(a == b for a, b in zip(steps, steps[1:])) / max(1, n - 1)
        back_and_forth = sum(steps[i] == steps[i - 2] != steps[i - 1] for i in range(2, n)) / max(1, n - 2)
        by_step = sum(abs(a - b) == 1 for a, b in zip(steps, steps[1:])) / max(1, n - 1)
        leaps = sum(abs(a - b) > 4 for a, b in zip(steps, steps[1:])) / max(1, n - 1)
        score += min(len(set(steps)), 6)
        score += min(span, 7) * 0.5 - max(0, span - 9)
        score += 3.0 * by_step - 3.0 * leaps - 4.0 * repeated - 4.0 * back_and_forth
        score += 1.0 if len({d for _, d, _ in motif.notes}) > 1 else 0.0
    return score


def _line(notes, bpm, unit=Fraction(1, 2)) -> list:
    """[(onset beats, length beats, pitch)]: one singable line from the model's notes.

    Onsets on 8ths (`unit`), one note each: of the notes drawn there, the one nearest the
    line's last pitch, moved by octaves to within a fifth of it (the model writes textures;
    a tune moves mostly by step). Each note is held at least to the next onset when the gap
    is under a beat."""
    by_onset = {}
    for n in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        onset = Fraction(round(n.start * bpm / 60.0 / unit)) * unit
        length = max(unit, Fraction(round(n.duration * bpm / 60.0 / unit)) * unit)
        by_onset.setdefault(onset, []).append((length, n.pitch))
    out, last = [], None
    for t in sorted(by_onset):
        options = by_onset[t]
        length, pitch = options[0] if last is None else min(options, key=lambda o: abs(o[1] - last))
        if last is not None:
            while pitch - last > 7:
                pitch -= 12
            while last - pitch > 7:
                pitch += 12
        out.append([t, length, pitch])
        last = pitch
    for i in range(len(out) - 1):
        gap = out[i + 1][0] - out[i][0]
        if gap <= 1 or out[i][1] > gap:
            out[i][1] = gap
    return [tuple(n) for n in out]


def _degree(pitch, tonic, mode) -> int:
    """A pitch as a scale step index (octave * 7 + degree), snapped down into the scale."""
    scale = SCALES[mode]
    rel = pitch - tonic
    octave, pc = divmod(rel, 12)
    degree = max(i for i, s in enumerate(scale) if s <= pc)
    return octave * 7 + degree


def _pitch(step, tonic, mode) -> int:
    octave, degree = divmod(step, 7)
    return tonic + 12 * octave + SCALES[mode][degree]


def _motif(part, tonic, mode) -> Motif:
    first = _degree(part[0][2], tonic, mode)
    return Motif(tuple((t, d, _degree(p, tonic, mode) - first) for t, d, p in part), "model")


def _fallback(k) -> Motif:
    """An arpeggiated figure (up a triad, a step back) when the model wrote too little."""
    steps = ((0, 2, 4, 3, 2), (4, 3, 2, 1, 0))[k % 2]
    rhythm = (Fraction(0), Fraction(1), Fraction(2), Fraction(3), Fraction(4))
    lengths = (Fraction(1), Fraction(1), Fraction(1), Fraction(1), Fraction(3))
    return Motif(tuple(zip(rhythm, lengths, steps)), "fallback")


def phrases(plan, chords) -> list:
    """[(start beat, end beat, section index)]: two-bar phrases on the cue's own grid (every
    8 beats from its first), restarting where a section starts or the music comes back after
    a tacet span. A hit inside a phrase does not restart it: the hit's chord is under the
    phrase's note there, as an ostinato plays through a cut. A fragment of under 3 beats
    before the first grid line is left as a rest."""
    runs = []
    for i, c in enumerate(chords):
        if i == 0 or c.section != chords[i - 1].section or chords[i - 1].end_beat != c.start_beat:
            runs.append([c.start_beat, c.end_beat, c.section])
        else:
            runs[-1][1] = c.end_beat
    out = []
    for start, end, section in runs:
        grid = [
            Fraction(k * MOTIF_BEATS)
            for k in range(int(start // MOTIF_BEATS) + 1, int(end // MOTIF_BEATS) + 1)
            if start < k * MOTIF_BEATS < end
        ]
        points = [start] + grid + [end]
        for a, b in zip(points, points[1:]):
            if b - a >= 3 or (a != start and b - a >= 1):
                out.append((a, b, section))
    return out


def _harmony_context(chords, start, end, chord) -> tuple:
    """The phrase's chords as (offset, root above its first chord's, quality): two phrases
    with the same context are the same harmony, perhaps transposed."""
    out = []
    for c in chords:
        if c.end_beat > start and c.start_beat < end:
            here = ((c.root - chord.root) % 12, c.quality)
            if not out or out[-1][1:] != here:  # a hit striking the sounding chord again is no change
                out.append((max(c.start_beat, start) - start, *here))
    return tuple(out)


def _transposed(reference, start, end, chords, chord, section, lo, hi, from_root=None, only_moved=False):
    """The reference statement moved to fit the phrase at `start`, as [[start, end, pitch]];
    None when no move fits. First by the interval its chord moved (from `from_root` to this
    phrase's chord: a sequence, the accompaniment moving with it), then (unless `only_moved`)
    by the smallest interval, up to a fifth either way."""
    if not reference:
        return None
    scale = {(section.tonic + d) % 12 for d in SCALES[section.mode]}
    shifts = sorted(range(-7, 8), key=lambda d: (abs(d), d))
    if from_root is not None:
        moved = (chord.root - from_root + 6) % 12 - 6
        shifts = [moved, moved + 12, moved - 12] + ([] if only_moved else [d for d in shifts if d != moved])
    for shift in shifts:
        line = []
        for offset, length, pitch, strong in reference:
            t = start + offset
            if offset:  # on the 16th grid even where a hit put the phrase off it
                t = Fraction(round(t * 4), 4)
            if t >= end - Fraction(1, 4):
                break
            p = pitch + shift
            here = chord_at(chords, t) or chord
            if not lo <= p <= hi or p % 12 not in scale or (strong and p % 12 not in here.pcs):
                line = None
                break
            line.append([t, min(t + length, end), p])
        if line and len(line) >= min(3, len(reference)):
            return line
    return None


def write(plan, chords, motifs, seed) -> Melody:
    """The melody over the cue from the motifs (module docstring)."""
    rng = np.random.default_rng([seed, 3301])
    notes = []
    first_of = {}  # "A"/"B" -> the first pitch of its last statement: restated there when it fits
    stated = {}  # (palette, form, stretch) -> the first full statement: (offset, length, pitch, strong)
    heard = {}  # (that, phrase length, its harmony relative to its first chord) -> the phrase played there
    form_index = {}
    spans = phrases(plan, chords)
    for number, (start, end, section_index) in enumerate(spans):
        s = plan.sections[section_index]
        motif_a, motif_b = motifs[s.palette_name]
        k = form_index.get(section_index, 0)
        form_index[section_index] = k + 1
        # the form follows the harmony's loop: over a two- or eight-bar loop A A B A, over a
        # four-bar one the pair A B (question and answer) on its two halves
        shape_of = FORM[loop_beats(s.arousal, _bpm_at(start, plan.tempo["tempo_map"]))]
        form = shape_of[k % len(shape_of)]
        motif = motif_a if form == "A" else motif_b
        busy = len(motif.notes) / MOTIF_BEATS > 0.75
        stretch = 2 if energy(s.arousal) == "calm" and busy else 1
        lo, hi = register("melody", s.palette["melody"])
        chord = chord_at(chords, start)
        # the first note: a chord tone nearest the previous phrase's first note (or mid-range)
        anchor = first_of.get(form, first_of.get("A", (lo + hi) // 2 + 2))
        candidates = [p for p in range(lo, hi + 1) if p % 12 in chord.pcs and (p - s.tonic) % 12 in SCALES[s.mode]]
        candidates = candidates or [p for p in range(lo, hi + 1) if p % 12 in chord.pcs]
        third = 4 if s.mode == "major" else 3
        # nearest the anchor, a note of the tonic triad by preference (the key heard in the
        # tune): its third (the mode's own note) first, then the tonic, then the fifth — a
        # line that starts on the fifth over i–V hovers on the dominant and the key is lost
        leaning = {(s.tonic + third) % 12: 0, s.tonic: 2, (s.tonic + 7) % 12: 5}
        first = min(candidates, key=lambda p: (abs(p - anchor) + leaning.get(p % 12, 6), p))
        first_step = _degree(first, s.tonic, s.mode)
        line, previous_step, strongs = [], None, []
        for onset, length, step in motif.notes:
            t = start + onset * stretch
            if t != start:  # on the 16th grid even where a hit put the phrase off it
                t = Fraction(round(t * 4), 4)
            if t >= end - Fraction(1, 4):
                break
            pitch = first if step == 0 else _pitch(first_step + step, s.tonic, s.mode)
            here = chord_at(chords, t) or chord
            # the motif's own strong beats (1 and 3) and its held notes: augmentation slows a
            # line down, it does not make every note a downbeat
            strong = onset % 2 == 0 or length >= 2
            if strong and pitch % 12 not in here.pcs:
                options = [p for p in range(pitch - 4, pitch + 5) if p % 12 in here.pcs]
                if line and previous_step is not None and step != previous_step:
                    # keep the motif's motion: not the note before, and the way the motif goes
                    way = 1 if step > previous_step else -1
                    moving = [p for p in options if (p - line[-1][2]) * way > 0]
                    options = moving or [p for p in options if p != line[-1][2]] or options
                pitch = min(options, key=lambda p: (abs(p - pitch), p))
            line.append([t, min(t + length * stretch, end), pitch])
            strongs.append(strong)
            previous_step = step
        if not line:
            continue
        # into range by octaves, then note by note
        shift = 0
        while max(n[2] for n in line) + shift > hi and min(n[2] for n in line) + shift - 12 >= lo - 2:
            shift -= 12
        while min(n[2] for n in line) + shift < lo:
            shift += 12
        for n in line:
            n[2] += shift
            while n[2] > hi:
                n[2] -= 12
            while n[2] < lo:
                n[2] += 12
        # the phrase comes to rest on a note of the key's tonic triad where its chord has one
        last_chord = chord_at(chords, line[-1][0]) or chord
        home = {(s.tonic + d) % 12 for d in ((0, 4, 7) if s.mode == "major" else (0, 3, 7))}
        resting = [
            p
            for p in range(line[-1][2] - 5, line[-1][2] + 6)  # a fourth either way at most
            if p % 12 in home and p % 12 in last_chord.pcs and lo <= p <= hi
        ]
        # Phrases go in pairs, question and answer: the first comes to rest open (the third,
        # the mode's own note, then the fifth), the second closes on the tonic, as does the
        # section's last phrase.
        closing = k % 2 == 1 or number + 1 == len(spans) or spans[number + 1][2] != section_index
        if resting:
            order = (0, 4 if s.mode == "major" else 3, 7) if closing else (4 if s.mode == "major" else 3, 7, 0)
            rank = {(s.tonic + d) % 12: i for i, d in enumerate(order)}
            line[-1][2] = min(resting, key=lambda p: (rank[p % 12], abs(p - line[-1][2]), p))
        # A restatement keeps the first statement's intervals where some transposition of it
        # fits this phrase's chords (strong notes on chord tones, every note in the scale and
        # in range): the motif a listener recognises, not a re-fitted cousin of it.
        ref_key = (s.palette_name, form, stretch)
        reference, from_root = stated.get(ref_key, (None, None))
        # Over harmony heard before under this motif (the loop come round again), the phrase
        # is played as it was then, moved with its chords: the bar comes back whole.
        context = (ref_key, closing, end - start, _harmony_context(chords, start, end, chord))
        again = heard.get(context)
        exact = again and _transposed(again[0], start, end, chords, chord, s, lo, hi, again[1], only_moved=True)
        exact = exact or _transposed(reference, start, end, chords, chord, s, lo, hi, from_root)
        if exact:
            line = exact
        elif ref_key not in stated and end - start >= MOTIF_BEATS - 1:
            stated[ref_key] = ([(t - start, e - t, p, strong) for (t, e, p), strong in zip(line, strongs)], chord.root)
        line[-1][1] = max(line[-1][1], end - BREATH) if end - line[-1][0] > BREATH else end
        heard.setdefault(context, ([(t - start, e - t, p, False) for t, e, p in line], chord.root))
        first_of[form] = line[0][2]
        peak = max(n[2] for n in line)
        for i, (t, e, p) in enumerate(line):
            vel = s.velocity + 6 + (6 if (t - start) % 4 == 0 else 0) - 2 * (peak - p) // 3
            vel += int(rng.integers(-2, 3))
            at = chord.start if (chord.hit is not None and t == chord.start_beat) else None
            notes.append(BeatNote(t, e, int(p), max(1, min(127, vel)), "melody", at))
    sources = {name: [m.source for m in pair] for name, pair in motifs.items()}
    return Melody(notes, sources)
