"""`scorebridge eval-cues`: MUSIC.md §1's measures on scored cues, beside real music.

The cues are edits built here (no media): the four mood corners, a neutral cue, and cues whose
mood turns, at the three common frame rates, with cuts where an editor would put them; and,
given with --edit, real edits (the demo, sample videos, your own timelines), planned from
their own cuts and picture as `score` plans them. Each is
planned and drawn by the engine exactly as `score` draws it, then measured
(bridge/eval/measures.py). Real music from the corpus (a Bach chorale, Beethoven's op. 18/1,
a Joplin rag, an Essen folk tune; mma's grooves where mma is installed) is measured by the same
functions, as a reference. Prints a table and writes every figure to a JSON results file.
"""

import json
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bridge.eval import measures
from bridge.music import engine
from bridge.plan import make_plan
from bridge.score.compose import ScoreNote
from bridge.timebase import bpm_to_tempo, seconds_to_frame

# name, rate, seconds, cuts, [(share of the cue, valence, arousal)]
CUES = [
    ("bright chase", Fraction(25), 60, 14, [(1.0, 0.7, 0.75)]),
    ("warm reunion", Fraction(24000, 1001), 60, 6, [(1.0, 0.6, -0.6)]),
    ("dark grief", Fraction(24), 60, 6, [(1.0, -0.7, -0.65)]),
    ("tense standoff", Fraction(30000, 1001), 60, 16, [(1.0, -0.65, 0.8)]),
    ("neutral walk", Fraction(25), 45, 7, [(1.0, 0.05, 0.0)]),
    ("dark to action", Fraction(24000, 1001), 90, 14, [(0.4, -0.6, -0.5), (0.3, -0.5, 0.6), (0.3, 0.6, 0.7)]),
    ("warm turns dark", Fraction(25), 60, 9, [(0.5, 0.6, -0.3), (0.5, -0.6, -0.4)]),
    ("sting", Fraction(25), 20, 4, [(1.0, 0.5, 0.5)]),
]
CORPUS = ["bach/bwv66.6", "beethoven/opus18no1", "joplin/maple_leaf_rag", "essenFolksong/altdeu10"]
GROOVES = ["BasicRock", "BossaNova", "Ballad"]
SECONDS = 60.0  # of each real piece


def synthetic_cue(name, rate, seconds, cuts, moods, seed):
    """(hits, sections, duration frames): cuts spread like an edit's (seeded), a cut at each
    change of mood."""
    rng = np.random.default_rng([seed, len(name)])
    duration = seconds_to_frame(seconds, rate)
    bounds, t = [0], 0.0
    for share, _, _ in moods:
        t += share * seconds
        bounds.append(seconds_to_frame(t, rate))
    bounds[-1] = duration
    frames = set(bounds[1:-1])
    while len(frames) < cuts:
        frames.add(int(rng.uniform(1.5, seconds - 1.0) * float(rate)))
    sections = [
        {"start": a, "end": b, "valence": v, "arousal": ar, "tacet": False}
        for (a, b), (_, v, ar) in zip(zip(bounds, bounds[1:]), moods)
    ]
    hits = [SimpleNamespace(frame=f, source="cut", name="") for f in sorted(frames)]
    return hits, sections, duration


def cue_of_plan(plan) -> measures.Cue:
    programs = {}
    for s in plan.sections:
        for family, program in s.palette.items():
            programs.setdefault(family, program)
    return measures.Cue(
        duration_s=plan.duration_s,
        sections=tuple(
            measures.Section(s.start, s.end, s.tonic, s.mode, s.valence, s.arousal, s.tacet) for s in plan.sections
        ),
        tempo_map=plan.tempo["tempo_map"],
        time_signatures=plan.tempo["time_signatures"],
        hits=tuple(h.seconds for h in plan.hits),
        tacet=tuple(plan.tacet),
        programs=programs,
        palettes=tuple((s.start, dict(s.palette)) for s in plan.sections),
    )


def score_cues(model, seeds, log=print) -> tuple:
    rows, pooled, keys = [], [], {}
    for seed in seeds:
        for number, (name, rate, seconds, cuts, moods) in enumerate(CUES):
            hits, sections, duration = synthetic_cue(name, rate, seconds, cuts, moods, seed)
            plan = make_plan(hits, sections, rate, duration, cue=f"1M{number + 1}")
            started = time.perf_counter()
            result = engine.draw(model, plan, seed)
            elapsed = time.perf_counter() - started
            cue = cue_of_plan(plan)
            row = {
                "name": name,
                "seed": seed,
                "key": plan.key,
                "bpm": plan.tempo["bpm"],
                **measures.measure(result.notes, cue),
                "draw_s": round(elapsed, 3),
                "motifs": result.motif_sources,
            }
            rows.append(row)
            pooled.append((result.notes, cue))
            keys.setdefault(seed, set()).add(plan.tonic)
            log(f"  {name:16s} seed {seed}: {plan.key:9s} {len(result.notes):5d} notes in {elapsed:.2f} s")
    mood = measures.mood_measures(pooled)
    mood["distinct_keys_per_reel"] = {str(s): len(k) for s, k in keys.items()}
    return rows, mood


def edit_rows(model, paths, seeds, log=print) -> tuple:
    """The same measures on real edits (timelines or videos: the demo, your own), planned
    from their own cuts and picture analysis as `score` plans them."""
    from bridge.analyze import read_and_analyze

    rows, pooled = [], []
    for path in paths:
        timeline, analysis, hits, _ = read_and_analyze(path, progress=lambda f, stage: None)
        plan = make_plan(hits, analysis["sections"], timeline.rate, timeline.duration, cue="1M1")
        for seed in seeds:
            started = time.perf_counter()
            result = engine.draw(model, plan, seed)
            elapsed = time.perf_counter() - started
            cue = cue_of_plan(plan)
            rows.append(
                {
                    "name": Path(path).name,
                    "seed": seed,
                    "key": plan.key,
                    "bpm": plan.tempo["bpm"],
                    **measures.measure(result.notes, cue),
                    "draw_s": round(elapsed, 3),
                    "motifs": result.motif_sources,
                }
            )
            pooled.append((result.notes, cue))
        log(f"  {Path(path).name}: {plan.key}, {len(plan.hits)} hits, {plan.duration_s:.1f} s")
    return rows, pooled


def corpus_rows(log=print) -> list:
    rows = []
    try:
        from music21 import corpus
    except ImportError:
        log("  music21 is not installed: no corpus reference (pip install -e '.[train]')")
        return rows
    for name in CORPUS:
        try:
            piece = corpus.parse(name)
            piece = piece.scores[0] if hasattr(piece, "scores") else piece  # an Opus: its first work
            notes, cue = _corpus_piece(piece)
        except Exception as exc:  # a piece the installed music21 lacks is reported, not fatal
            log(f"  {name}: not measured ({exc})")
            continue
        rows.append({"name": name, **measures.measure(notes, cue)})
    rows += _groove_rows(log)
    return rows


def _corpus_piece(score, qpm=100.0):
    key = score.analyze("key")
    parts = list(score.parts)
    notes = []
    limit_q = SECONDS * qpm / 60.0
    for index, part in enumerate(parts):
        family = "melody" if index == 0 else ("bass" if index == len(parts) - 1 and len(parts) > 1 else "pad")
        for n in part.flatten().notes:
            q = float(n.getOffsetInHierarchy(part))
            if q >= limit_q:
                continue
            for p in n.pitches:
                start = q * 60.0 / qpm
                notes.append(
                    ScoreNote(start, start + max(0.05, float(n.quarterLength) * 60.0 / qpm), p.midi, 80, family)
                )
    duration = max(n.end for n in notes)
    ts = score.recurse().getElementsByClass("TimeSignature")
    numerator, denominator = (ts[0].numerator, ts[0].denominator) if ts else (4, 4)
    cue = measures.Cue(
        duration,
        (measures.Section(0.0, duration, key.tonic.pitchClass, key.mode),),
        [(0, bpm_to_tempo(qpm))],
        [(0, numerator, denominator)],
    )
    return notes, cue


def _groove_rows(log) -> list:
    from bridge.music import grooves

    if grooves.find_mma() is None:
        log("  mma is not installed: no groove reference")
        return []
    rows = []
    for groove in GROOVES:
        try:
            parts, families, qpm = grooves.render(groove, ["C", "Am", "F", "G"] * 4)
        except Exception as exc:
            log(f"  mma {groove}: not measured ({exc})")
            continue
        notes = []
        for part, family in zip(parts, families):
            for start_q, length_q, pitch in part.tolist():
                notes.append(ScoreNote(start_q * 60 / qpm, (start_q + length_q) * 60 / qpm, int(pitch), 80, family))
        duration = max(n.end for n in notes)
        cue = measures.Cue(
            duration, (measures.Section(0.0, duration, 0, "major", arousal=0.8),), [(0, bpm_to_tempo(qpm))], [(0, 4, 4)]
        )
        rows.append({"name": f"mma {groove}", **measures.measure(notes, cue)})
    return rows


FLOORS = {  # MUSIC.md §1 and issue floors: (measure, "<=" or ">=", value)
    "tonic_share": ("<=", 0.30),
    "tonic_triad_windows": ("<=", 0.55),
    "on_grid": (">=", 0.95),
    "melody_sounding": (">=", 0.5),
    "out_of_range": ("<=", 0.01),
    "bass_absent": ("<=", 0.2),
    "bass_not_lowest": ("<=", 0.05),
    "percussion_per_s_excited": (">=", 2.0),
    "hit_chords_distinct": (">=", 3),
    "hit_chords_tonic": ("<=", 0.5),
    "decaying_over_4s": ("<=", 0.01),
    "meter_changes_per_min": ("<=", 2.0),
    "hits_with_chord": (">=", 1.0),
}
LONG_CUE_FLOORS = {"motif_reuse": (">=", 0.15), "bar_repetition": (">=", 0.15)}


def misses(row) -> list:
    out = []
    floors = dict(FLOORS)
    if row.get("duration_s", 0) >= 30:
        floors.update(LONG_CUE_FLOORS)
    for k, (op, bound) in floors.items():
        v = row.get(k)
        if v is None:
            continue
        if (op == "<=" and v > bound + 1e-9) or (op == ">=" and v < bound - 1e-9):
            out.append(k)
    run = row.get("mean_chord_run_s")
    if run is not None and not 1.0 <= run <= 4.0:
        out.append("mean_chord_run_s")
    return out


COLUMNS = [
    ("tonic_share", "tonic"),
    ("tonic_triad_windows", "I-win"),
    ("mean_chord_run_s", "run s"),
    ("melody_sounding", "melody"),
    ("motif_reuse", "motif"),
    ("bar_repetition", "bars"),
    ("percussion_per_s_excited", "perc/s"),
    ("on_grid", "grid"),
    ("meter_changes_per_min", "meter"),
    ("out_of_range", "range"),
    ("bass_absent", "bass-"),
    ("bass_not_lowest", "bass^"),
    ("hit_chords_distinct", "hitCh"),
    ("hit_chords_tonic", "hitI"),
    ("decaying_over_4s", "dec4s"),
]


def table(rows) -> str:
    head = f"{'cue':22s}" + "".join(f"{label:>7s}" for _, label in COLUMNS)
    lines = [head]
    for r in rows:
        name = r["name"] + (f" s{r['seed']}" if "seed" in r else "")
        cells = "".join(f"{'-':>7s}" if r.get(k) is None else f"{r[k]:7.2f}" for k, _ in COLUMNS)
        lines.append(f"{name[:22]:22s}{cells}")
    return "\n".join(lines)


def run(model, model_info, seeds=(1, 2, 3), out=None, reference=True, edits=(), log=print) -> dict:
    started = time.perf_counter()
    rows, mood = score_cues(model, seeds, log)
    if edits:
        extra, pooled = edit_rows(model, edits, seeds, log)
        rows += extra
        mood["edits"] = measures.mood_measures(pooled)
    for r in rows:
        r["misses"] = misses(r)
    real = corpus_rows(log) if reference else []
    result = {
        "model": model_info,
        "seeds": list(seeds),
        "cues": rows,
        "pooled": measures.summarise(
            [{k: v for k, v in r.items() if k not in ("name", "seed", "key", "motifs", "misses")} for r in rows]
        ),
        "mood": mood,
        "reference": real,
        "cues_missing_a_floor": sum(1 for r in rows if r["misses"]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log(table(rows))
    if real:
        log("real music:")
        log(table(real))
    log(
        f"mood: arousal vs onsets rho {mood['arousal_vs_onsets_rho']}, mode sign right {mood['mode_sign_right']}, "
        f"keys per reel {mood['distinct_keys_per_reel']}"
    )
    log(f"cues missing a floor: {result['cues_missing_a_floor']} of {len(rows)}")
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=str) + "\n")
        log(f"figures: {path}")
    return result
