"""`scorebridge eval-score`: how well scored music follows edits whose cuts and moods are known.

The edits are built here (no media): cuts at seeded positions, and 25 sections whose
valence and arousal (EMSYNC's 5 × 5 grid of targets) are set as a `va:` marker would set them. Each is planned, composed and written
as MIDI, and the file read back is measured:
- hit chords: share of hits with a chord onset (3+ pitch classes, pad or piano) within one
  frame of the hit, after the file's tempo map is applied (must be 1.0);
- tempo fit: hits within a frame of a beat, and mean frames off;
- Spearman ρ between the sections' targets and the music measured in them: valence against
  the major-minor key clarity of the pitch-class histogram (Krumhansl-Kessler profiles),
  arousal against note density (notes per second, and distinct onsets per second as the
  arousal label counts them) and mean velocity; each also without the forced chords,
  whose key and loudness come from the plan by construction;
- pitch-class entropy (bits) of onsets per 4-bar window, as CMT reports it (real music 4.45).
"""

import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from bridge.score.compose import (
    DYNAMICS_PULL,
    ENERGY_PULL,
    GUIDANCE,
    HIT_FAMILIES,
    KEY_GUIDANCE,
    KEY_PULL,
    MOOD_STEP,
    compose,
    to_parts,
)
from bridge.music import theory
from bridge.music.evaluate import spearman_rho
from bridge.plan import make_plan
from bridge.render.midi import read_midi, write_midi
from bridge.timebase import seconds_to_beats, seconds_to_frame
from bridge.timeline import Hit

# The targets: EMSYNC's grid of 25 (valence, arousal) points, in a fixed shuffled order, one
# section of SECTION_S seconds each, spread over three edits at the three common rates.
GRID = (-0.8, -0.4, 0.0, 0.4, 0.8)
TARGETS = [(v, a) for v in GRID for a in GRID]
ORDER = (12, 3, 21, 7, 16, 0, 24, 9, 5, 18, 14, 1, 22, 10, 6, 19, 2, 23, 11, 15, 8, 20, 4, 13, 17)
SECTION_S = 7.5
# name, rate, first target, number of sections, mean shot length (s)
EDITS = [
    ("drama 23.976", Fraction(24000, 1001), 0, 8, 4.0),
    ("contrast 25", Fraction(25), 8, 8, 3.0),
    ("action 29.97 DF", Fraction(30000, 1001), 16, 9, 2.0),
]

MAJOR_PROFILE = np.array(theory.MAJOR_PROFILE)
MINOR_PROFILE = np.array(theory.MINOR_PROFILE)


def synthetic_edit(rate, first, count, shot_s, seed):
    """(hits, sections, duration frames) for one edit: `count` sections of SECTION_S seconds
    with the grid targets from `first` on, every section start a cut, and cuts about `shot_s`
    apart (at least a second) in between."""
    rng = np.random.default_rng(seed)
    seconds = count * SECTION_S
    duration = seconds_to_frame(seconds, rate)
    bounds = [seconds_to_frame(i * SECTION_S, rate) for i in range(count)] + [duration]
    frames = set(bounds[1:-1])
    t = 0.0
    while True:
        t += max(1.0, rng.exponential(shot_s))
        if t >= seconds - 1.0:
            break
        frames.add(seconds_to_frame(t, rate))
    moods = [TARGETS[ORDER[first + i]] for i in range(count)]
    sections = [
        {"start": a, "end": b, "valence": v, "arousal": ar, "tacet": False}
        for (a, b), (v, ar) in zip(zip(bounds, bounds[1:]), moods)
    ]
    return [Hit(f, "cut") for f in sorted(frames)], sections, duration


def evaluate(
    model,
    model_info,
    seed=1,
    candidates=2,
    key_pull=KEY_PULL,
    guidance=GUIDANCE,
    mood_step=MOOD_STEP,
    key_guidance=KEY_GUIDANCE,
    energy_pull=ENERGY_PULL,
    dynamics_pull=DYNAMICS_PULL,
) -> dict:
    rows, targets, measured = [], [], []
    started = time.perf_counter()
    for number, (name, rate, first, count, shot_s) in enumerate(EDITS):
        hits, sections, duration = synthetic_edit(rate, first, count, shot_s, seed + number)
        plan = make_plan(hits, sections, rate, duration, cue=f"1M{number + 1}")
        composed = compose(
            model,
            plan,
            seed=seed,
            candidates=candidates,
            key_pull=key_pull,
            guidance=guidance,
            mood_step=mood_step,
            key_guidance=key_guidance,
            energy_pull=energy_pull,
            dynamics_pull=dynamics_pull,
        )
        notes = _through_midi(composed["notes"], plan, rate)
        forced = {(round(c.start, 3), p) for c in composed["chords"] for p in c.pitches}
        own = [n for n in notes if (round(n[0], 3), n[2]) not in forced or n[4] not in HIT_FAMILIES]
        for s in plan.sections:
            inside = [n for n in notes if s.start <= n[0] < s.end]
            inside_own = [n for n in own if s.start <= n[0] < s.end]
            targets.append((s.valence, s.arousal))
            length = s.end - s.start
            measured.append(
                (
                    _mode_clarity(inside),
                    _mode_clarity(inside_own),
                    len(inside) / length,
                    len(inside_own) / length,
                    _mean_velocity(inside),
                    _mean_velocity(inside_own),
                    _onsets(inside) / length,
                    _onsets(inside_own) / length,
                )
            )
        frame = 1 / float(rate)
        chord_hits = sum(1 for h in plan.hits if _has_chord(notes, h.seconds, frame))
        rows.append(
            {
                "edit": name,
                "fps": round(float(rate), 3),
                "seconds": round(plan.duration_s, 3),
                "hits": len(plan.hits),
                "sections": len(plan.sections),
                "hit_chord_share": chord_hits / len(plan.hits),
                "tempo_mode": plan.tempo["mode"],
                "bpm": plan.tempo["bpm"],
                "hits_on_beat": plan.tempo["hits_on_beat"],
                "mean_frames_off": plan.tempo["mean_frames_off"],
                "pitch_class_entropy": round(_entropy(notes, plan), 3),
                "best_candidate": composed["scores"][composed["best"]],
            }
        )
    targets, measured = np.array(targets), np.array(measured)
    hits = sum(r["hits"] for r in rows)
    return {
        "model": model_info,
        "seed": seed,
        "candidates": candidates,
        "key_pull": key_pull,
        "guidance": guidance,
        "mood_step": mood_step,
        "key_guidance": key_guidance,
        "energy_pull": energy_pull,
        "dynamics_pull": dynamics_pull,
        "edits": rows,
        "summary": {
            "hits": hits,
            "hit_chord_share": sum(r["hit_chord_share"] * r["hits"] for r in rows) / hits,
            "hits_on_beat_share": round(sum(r["hits_on_beat"] for r in rows) / hits, 4),
            "mean_frames_off": round(sum(r["mean_frames_off"] * r["hits"] for r in rows) / hits, 3),
            "sections": len(targets),
            "spearman_valence_mode": _spearman(targets[:, 0], measured[:, 0]),
            "spearman_valence_mode_model_notes_only": _spearman(targets[:, 0], measured[:, 1]),
            "spearman_arousal_density": _spearman(targets[:, 1], measured[:, 2]),
            "spearman_arousal_density_model_notes_only": _spearman(targets[:, 1], measured[:, 3]),
            "spearman_arousal_onset_rate": _spearman(targets[:, 1], measured[:, 6]),
            "spearman_arousal_onset_rate_model_notes_only": _spearman(targets[:, 1], measured[:, 7]),
            "spearman_arousal_velocity": _spearman(targets[:, 1], measured[:, 4]),
            "spearman_arousal_velocity_model_notes_only": _spearman(targets[:, 1], measured[:, 5]),
            "pitch_class_entropy": round(float(np.mean([r["pitch_class_entropy"] for r in rows])), 3),
            "seconds": round(time.perf_counter() - started, 1),
        },
    }


def _through_midi(notes, plan, rate):
    """The notes as the MIDI deliverable holds them: [(start, end, pitch, velocity, family)]."""
    with tempfile.TemporaryDirectory(prefix="scorebridge-eval-") as folder:
        parts = to_parts(notes, plan)
        path = write_midi(
            Path(folder) / "cue.mid",
            parts,
            plan.tempo["tempo_map"],
            time_signatures=plan.tempo["time_signatures"],
            rate=rate,
        )
        read, _, _ = read_midi(path)
    out = []
    for written, part in zip(read, parts):
        out += [(s, e, p, v, part["family"]) for s, e, p, v in written["notes"]]
    return sorted(out)


def _onsets(notes):
    """Distinct onset times (to the millisecond): the arousal label's density, where a chord
    counts once however many notes it has."""
    return len({round(n[0], 3) for n in notes})


def _mean_velocity(notes):
    return float(np.mean([n[3] for n in notes])) if notes else 0.0


def _has_chord(notes, seconds, window):
    onsets = [n for n in notes if n[4] in HIT_FAMILIES and abs(n[0] - seconds) <= window]
    return len({n[2] % 12 for n in onsets}) >= 3


def _histogram(notes):
    h = np.zeros(12)
    for start, end, pitch, _, family in notes:
        if family != "drums":
            h[pitch % 12] += end - start
    return h


def _mode_clarity(notes):
    """Best major-key correlation minus best minor-key correlation: > 0 sounds major."""
    h = _histogram(notes)
    if not h.any():
        return 0.0
    major = max(np.corrcoef(h, np.roll(MAJOR_PROFILE, k))[0, 1] for k in range(12))
    minor = max(np.corrcoef(h, np.roll(MINOR_PROFILE, k))[0, 1] for k in range(12))
    return float(major - minor)


def _entropy(notes, plan, bar_beats=16):
    """Mean pitch-class entropy of onsets over windows of 4 bars of 4/4 (16 beats)."""
    windows = {}
    tempo_map = plan.tempo["tempo_map"]
    for start, _, pitch, _, family in notes:
        if family != "drums":
            window = int(seconds_to_beats(Fraction(start), tempo_map) // bar_beats)
            windows.setdefault(window, np.zeros(12))[pitch % 12] += 1
    values = []
    for h in windows.values():
        p = h[h > 0] / h.sum()
        values.append(float(-(p * np.log2(p)).sum()))
    return float(np.mean(values)) if values else 0.0


def _spearman(a, b):
    r = spearman_rho(a, b)
    return None if r is None else round(r, 4)
