"""MUSIC.md §1's checklist as functions of a cue's notes: what a composer hears, measured.

Every measure takes plain data: notes (ScoreNote: start, end, pitch, velocity, family), a
`Cue` (sections with tonic, mode, valence, arousal; hits; tacet spans; tempo map; time
signatures; programs per family) and returns a number (None where it does not apply). Real
music is measured by the same functions (eval/corpus.py makes a Cue of a corpus piece).
"""

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from bridge.music import theory
from bridge.music.arrangement import data as pattern_data
from bridge.music.evaluate import spearman_rho
from bridge.music.theory import best_chord
from bridge.plan.tempo import bars
from bridge.timebase import seconds_to_beats

WINDOW_S = 1.0
DECAY_LIMIT_S = 4.0
MAJOR_PROFILE = np.array(theory.MAJOR_PROFILE)
MINOR_PROFILE = np.array(theory.MINOR_PROFILE)


@dataclass(frozen=True)
class Section:
    start: float
    end: float
    tonic: int
    mode: str
    valence: float = 0.0
    arousal: float = 0.0
    tacet: bool = False


@dataclass(frozen=True)
class Cue:
    duration_s: float
    sections: tuple
    tempo_map: list
    time_signatures: list
    hits: tuple = ()  # seconds
    tacet: tuple = ()  # (start, end)
    programs: dict = field(default_factory=dict)  # family -> GM program (drums: None)
    palettes: tuple = ()  # (start seconds, {family: program}) where the programs change by section

    def program(self, family, t):
        """The GM program `family` plays at `t`."""
        current = self.programs
        for start, palette in self.palettes:
            if start <= t + 1e-6:
                current = palette
        return current.get(family)

    def section_at(self, t) -> Section:
        for s in self.sections:
            if s.start <= t < s.end:
                return s
        return self.sections[-1]


PERCUSSION = ("drums", "timpani", "taiko")


def _pitched(notes):
    """The harmonic parts: everything but percussion (the kit, timpani and taiko)."""
    return [n for n in notes if n.family not in PERCUSSION]


def _open_time(cue, grid):
    return np.array([not any(a <= t < b for a, b in cue.tacet) and not cue.section_at(t).tacet for t in grid])


def tonic_share(notes, cue):
    pitched = _pitched(notes)
    if not pitched:
        return None
    return sum(1 for n in pitched if n.pitch % 12 == cue.section_at(n.start).tonic) / len(pitched)


def window_triads(notes, cue):
    """[(window start, (root, 'maj'|'min') or None)] over the cue's sounding 1-s windows."""
    pitched = _pitched(notes)
    out = []
    t = 0.0
    while t < cue.duration_s:
        weights = np.zeros(12)
        for n in pitched:
            overlap = min(n.end, t + WINDOW_S) - max(n.start, t)
            if overlap > 0:
                weights[n.pitch % 12] += overlap
        if any(a <= t < b for a, b in cue.tacet) or cue.section_at(t).tacet:
            pass
        elif weights.sum() > 0:
            best, score = None, -1.0
            for root in range(12):
                for quality, third in (("maj", 4), ("min", 3)):
                    s = weights[root] + weights[(root + third) % 12] + weights[(root + 7) % 12]
                    if s > score + 1e-9:
                        best, score = (root, quality), s
            out.append((t, best))
        else:
            out.append((t, None))
        t += WINDOW_S
    return out


def tonic_triad_share(notes, cue):
    windows = [(t, c) for t, c in window_triads(notes, cue) if c is not None]
    if not windows:
        return None
    return sum(1 for t, c in windows if c[0] == cue.section_at(t).tonic) / len(windows)


def mean_chord_run_s(notes, cue):
    windows = [c for _, c in window_triads(notes, cue)]
    runs, current, length = [], None, 0
    for c in windows:
        if c == current and c is not None:
            length += 1
        else:
            if current is not None:
                runs.append(length)
            current, length = c, 1
    if current is not None:
        runs.append(length)
    return float(np.mean(runs)) * WINDOW_S if runs else None


def sounding_share(notes, cue, family, step=0.1):
    grid = np.arange(0.0, cue.duration_s, step)
    open_ = _open_time(cue, grid)
    if not open_.any():
        return None
    sounding = np.zeros(len(grid), dtype=bool)
    for n in notes:
        if n.family == family:
            sounding[(grid >= n.start) & (grid < n.end)] = True
    return float(sounding[open_].mean())


def top_line(notes, family="melody"):
    """The melody role's line, or (where there is none) the highest note of each onset."""
    line = sorted((n for n in notes if n.family == family), key=lambda n: (n.start, -n.pitch))
    if not line:
        line = sorted(_pitched(notes), key=lambda n: (n.start, -n.pitch))
    out = []
    for n in line:
        if out and abs(out[-1].start - n.start) < 1e-6:
            continue
        out.append(n)
    return out


def motif_reuse(notes, cue, family="melody"):
    """Share of the top line's 4-note figures (3 intervals + 2 duration ratios, transposition-
    free) that occurred earlier in the cue."""
    line = top_line(notes, family)
    if len(line) < 5:
        return 0.0 if line else None
    iois = [max(1e-3, b.start - a.start) for a, b in zip(line, line[1:])] + [max(1e-3, line[-1].end - line[-1].start)]
    seen, reused, total = set(), 0, 0
    for i in range(len(line) - 3):
        grams = (
            tuple(line[i + k + 1].pitch - line[i + k].pitch for k in range(3)),
            tuple(round(iois[i + k + 1] / iois[i + k], 1) for k in range(2)),
        )
        total += 1
        reused += grams in seen
        seen.add(grams)
    return reused / total if total else None


def bar_repetition(notes, cue):
    """Share of bars whose 16th-quantised (onset, pitch class) pattern, pitched parts together,
    repeats or transposes an earlier bar's."""
    bars = _bar_starts(cue)
    patterns = [set() for _ in bars]
    starts = [b for b, _ in bars]
    edges = np.array([float(s) for s in starts])
    for n in _pitched(notes):
        # to the 16th first: a note on a downbeat whose seconds were rounded reads 7.9999 beats
        # and belongs to the bar it starts, not the one before
        beat = Fraction(round(seconds_to_beats(Fraction(n.start), cue.tempo_map) * 12), 12)
        i = max(0, np.searchsorted(edges, float(beat), side="right") - 1)
        patterns[i].add((round(float(beat - starts[i]) * 4), n.pitch % 12))
    seen, repeats, counted = [], 0, 0
    for p in patterns:
        if not p:
            continue
        counted += 1
        forms = {frozenset((t, (pc + k) % 12) for t, pc in p) for k in range(12)}
        repeats += any(f in seen for f in forms)
        seen.append(frozenset(p))
    return repeats / counted if counted else None


def _bar_starts(cue):
    return bars(cue.duration_s, cue.tempo_map, cue.time_signatures)


def percussion_rate(notes, cue, from_arousal=0.4):
    """Percussion onsets (kit, timpani, taiko) a second over the sections whose arousal is at least `from_arousal`."""
    spans = [(s.start, s.end) for s in cue.sections if not s.tacet and s.arousal >= from_arousal]
    seconds = sum(b - a for a, b in spans)
    if seconds <= 0:
        return None
    onsets = {round(n.start, 4) for n in notes if n.family in PERCUSSION and any(a <= n.start < b for a, b in spans)}
    return len(onsets) / seconds


def on_grid_share(notes, cue, tolerance=0.1):
    """Share of onsets within ±10 % of a 16th (or an 8th-triplet) of the tempo map's beats.
    Hits are exempt: a hit's frame is where its chord must be, on the grid or not."""
    hits = [h for h in cue.hits]
    onsets = sorted({round(n.start, 6) for n in notes if not any(abs(n.start - h) < 1e-4 for h in hits)})
    if not onsets:
        return None
    good = 0
    for t in onsets:
        beat = float(seconds_to_beats(Fraction(t), cue.tempo_map))
        sixteenth = abs(beat * 4 - round(beat * 4)) <= tolerance
        triplet = abs(beat * 3 - round(beat * 3)) <= tolerance
        good += sixteenth or triplet
    return good / len(onsets)


def meter_changes_per_minute(cue):
    changes = sum(1 for a, b in zip(cue.time_signatures, cue.time_signatures[1:]) if a[1:] != b[1:])
    return changes / (cue.duration_s / 60.0) if cue.duration_s > 0 else None


def out_of_range_share(notes, cue):
    programs = pattern_data("instruments.json")["programs"]
    pitched = [n for n in notes if n.family != "drums"]  # timpani and taiko have ranges too
    checked = [(n, str(cue.program(n.family, n.start))) for n in pitched]
    checked = [(n, program) for n, program in checked if program in programs]
    if not checked:
        return None
    bad = 0
    for n, program in checked:
        lo, hi = programs[program]["range"]
        bad += not lo <= n.pitch <= hi
    return bad / len(checked)


def bass_absent_share(notes, cue):
    return None if sounding_share(notes, cue, "bass") is None else 1.0 - sounding_share(notes, cue, "bass")


def bass_not_lowest_share(notes, cue):
    """Share of bass onsets where another pitched note sounds lower."""
    bass = [n for n in notes if n.family == "bass"]
    others = [n for n in _pitched(notes) if n.family != "bass"]
    if not bass:
        return None
    starts = np.array([n.start for n in others])
    ends = np.array([n.end for n in others])
    pitches = np.array([n.pitch for n in others])
    bad = 0
    for b in bass:
        t = b.start + 1e-4
        sounding = (starts <= t) & (ends > t)
        bad += bool(sounding.any() and pitches[sounding].min() < b.pitch)
    return bad / len(bass)


def hit_chords(notes, cue, families=("pad", "piano")):
    """(distinct (root, quality) among the hits' chords, share whose root is the tonic, share
    of hits with a chord of 3+ pitch classes starting on the hit)."""
    if not cue.hits:
        return None, None, None
    chords, covered = [], 0
    for h in cue.hits:
        pcs = [n.pitch % 12 for n in notes if n.family in families and abs(n.start - h) < 1e-4]
        if len(set(pcs)) >= 3:
            covered += 1
            chords.append(best_chord(pcs))
    if not chords:
        return 0, None, 0.0
    tonic = sum(1 for (root, _), h in zip(chords, cue.hits) if root == cue.section_at(h).tonic)
    return len(set(chords)), tonic / len(chords), covered / len(cue.hits)


def long_decaying_share(notes, cue):
    programs = pattern_data("instruments.json")["programs"]
    decaying = [
        n for n in notes if n.family != "drums" and programs.get(str(cue.program(n.family, n.start)), {}).get("decays")
    ]
    if not decaying:
        return None
    return sum(1 for n in decaying if n.end - n.start > DECAY_LIMIT_S + 1e-6) / len(decaying)


def section_mode(notes, section):
    """The mode the notes of a section sound in: the better of the major and minor profiles
    over all 24 keys, from the duration-weighted pitch-class histogram."""
    hist = np.zeros(12)
    for n in _pitched(notes):
        overlap = min(n.end, section.end) - max(n.start, section.start)
        if overlap > 0:
            hist[n.pitch % 12] += overlap
    if hist.sum() == 0:
        return None
    best = max(
        (
            (np.corrcoef(hist, np.roll(profile, k))[0, 1], mode)
            for k in range(12)
            for profile, mode in ((MAJOR_PROFILE, "major"), (MINOR_PROFILE, "minor"))
        )
    )
    return best[1]


def onsets_per_second(notes, section):
    onsets = {round(n.start, 4) for n in notes if section.start <= n.start < section.end}
    return len(onsets) / max(1e-6, section.end - section.start)


def measure(notes, cue) -> dict:
    """Every §1 measure of one cue (None where it does not apply)."""
    distinct, tonic_hits, covered = hit_chords(notes, cue)
    return {
        "tonic_share": tonic_share(notes, cue),
        "tonic_triad_windows": tonic_triad_share(notes, cue),
        "mean_chord_run_s": mean_chord_run_s(notes, cue),
        "melody_sounding": sounding_share(notes, cue, "melody"),
        "motif_reuse": motif_reuse(notes, cue),
        "bar_repetition": bar_repetition(notes, cue),
        "percussion_per_s_excited": percussion_rate(notes, cue),
        "on_grid": on_grid_share(notes, cue),
        "meter_changes_per_min": meter_changes_per_minute(cue),
        "out_of_range": out_of_range_share(notes, cue),
        "bass_absent": bass_absent_share(notes, cue),
        "bass_not_lowest": bass_not_lowest_share(notes, cue),
        "hit_chords_distinct": distinct if len(cue.hits) >= 6 else None,
        "hit_chords_tonic": tonic_hits if len(cue.hits) >= 6 else None,
        "hits_with_chord": covered,
        "decaying_over_4s": long_decaying_share(notes, cue),
        "duration_s": cue.duration_s,
    }


def mood_measures(cues_notes) -> dict:
    """Pooled over cues: arousal vs onsets/s (Spearman over sections) and the share of sections
    with |valence| >= 0.3 whose notes sound in the mode the valence asks for."""
    arousal, rate, right, asked = [], [], 0, 0
    for notes, cue in cues_notes:
        for s in cue.sections:
            if s.tacet or s.end - s.start < 2.0:
                continue
            arousal.append(s.arousal)
            rate.append(onsets_per_second(notes, s))
            if abs(s.valence) >= 0.3:
                heard = section_mode(notes, s)
                asked += 1
                right += heard == ("major" if s.valence > 0 else "minor")
    return {
        "arousal_vs_onsets_rho": spearman_rho(arousal, rate) if len(arousal) >= 3 else None,
        "mode_sign_right": right / asked if asked else None,
        "sections": len(arousal),
    }


def summarise(rows) -> dict:
    """Pooled figures over cues: the median of each measure that applies."""
    keys = [k for k in rows[0] if k != "name"] if rows else []
    out = {}
    for k in keys:
        values = [
            r[k]
            for r in rows
            if isinstance(r.get(k), (int, float)) and not (isinstance(r.get(k), float) and math.isnan(r[k]))
        ]
        if values:
            out[k] = {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values))}
    return out
