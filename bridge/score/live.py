"""Live regeneration: re-score only the spans of music that an edit changed.

The edit is cut into *gaps*: the stretches between consecutive boundary points (the start,
every hit, every section start, the end). A gap's label is everything that shapes its
music: its length in frames, whether a hit starts it, and its section's key, palette,
loudness, density, emotion and tacet. The old and new label sequences are aligned
(difflib); runs of equal gaps keep their music, the rest are the changed spans.

Kept music keeps its *beats*. The new tempo map copies the old one inside kept runs and
puts one constant tempo inside each changed span, chosen so the span's old beats fill its
new length; everything after a span that grew or shrank is therefore re-timed by whole
tempo changes, while its notes keep their ticks (the same MIDI events). Where nothing moved,
the tempo map is the old one and kept notes are untouched.

A changed span takes its notes from the engine's draw of the whole new plan (engine.draw,
the very call a full score makes, with the same plan and seed): the kept music resumes at
the span's end on a hit or a section start, where the engine's harmony starts a phrase of
its own, so the seam falls where the music already changes.
"""

import dataclasses
import difflib
from fractions import Fraction

from bridge.plan import tempo as tempo_mod
from bridge.music import engine
from bridge.timebase import (
    PPQ,
    beats_to_seconds,
    seconds_to_beats,
    seconds_to_ticks_all,
    tempo_to_bpm,
    ticks_to_seconds_all,
)

MOOD_STEP = 0.25  # valence/arousal changes smaller than about this keep their music
MOOD_DEADBAND = 0.15  # a re-analysed section's mood this close to the last one's keeps it
MAX_STRETCH = 1.2  # a span's tempo changes by at most this factor; else the span widens
BPM_RANGE = (30.0, 300.0)
MAX_CHANGED_SHARE = 0.75  # more of the cue changed than this: a full re-score is simpler
EPS = 1e-6  # seconds: a note on a boundary's frame belongs to what starts there


class FullRescore(Exception):
    """The update cannot keep music (the message says why): score the edit whole."""


def hold_moods(old_plan, sections) -> list:
    """The picture's sections for a new revision, each holding the last revision's mood where
    its new estimate differs by less than MOOD_DEADBAND in valence and in arousal (hysteresis):
    re-analysing a shot whose picture did not change, or changed a hair, must not move its
    music across a mood step. The old mood is the one of the old section under the new
    section's middle frame."""
    held = []
    for s in sections:
        get = s.get if isinstance(s, dict) else lambda k, d=None, s=s: getattr(s, k, d)
        row = {
            "start": int(get("start")),
            "end": int(get("end")),
            "valence": float(get("valence")),
            "arousal": float(get("arousal")),
            "tacet": bool(get("tacet", False)),
        }
        middle = (row["start"] + row["end"]) / 2
        old = next((o for o in old_plan.sections if o.frame_start <= middle < o.frame_end), None)
        if (
            old is not None
            and not old.tacet
            and not row["tacet"]
            and abs(old.valence - row["valence"]) < MOOD_DEADBAND
            and abs(old.arousal - row["arousal"]) < MOOD_DEADBAND
        ):
            row["valence"], row["arousal"] = old.valence, old.arousal
        held.append(row)
    return held


def points(plan) -> list:
    """The boundary points of a plan, in frames: start, hits (sounding or silent), section
    starts, end."""
    end = plan.sections[-1].frame_end if plan.sections else 0
    frames = {0, end} | {h.frame for h in plan.hits + plan.silent_hits} | {s.frame_start for s in plan.sections}
    return sorted(f for f in frames if 0 <= f <= end)


def gap_labels(plan, pts) -> list:
    """What shapes each gap's music: length, the hit that starts it, tacet, and its mood in
    steps of MOOD_STEP, so that an edit which nudges the picture's emotion a little keeps
    the music there (and the key and palette it was written in: see snap_sections)."""
    hits = {h.frame: h.source for h in plan.hits}
    silent = {h.frame for h in plan.silent_hits}
    labels = []
    for a, b in zip(pts, pts[1:]):
        s = plan.section_at(float(Fraction(a) / plan.rate) + 1e-9)
        labels.append(
            (b - a, hits.get(a), a in silent, s.tacet, round(s.valence / MOOD_STEP), round(s.arousal / MOOD_STEP))
        )
    return labels


def diff(old_plan, new_plan) -> list:
    """Blocks in order: (kind, old_start, old_end, new_start, new_end) in frames, kind
    "keep" or "change"; a change never has an empty side (it is merged into a neighbour)."""
    old_pts, new_pts = points(old_plan), points(new_plan)
    matcher = difflib.SequenceMatcher(
        None, gap_labels(old_plan, old_pts), gap_labels(new_plan, new_pts), autojunk=False
    )
    blocks = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        kind = "keep" if tag == "equal" else "change"
        block = [kind, old_pts[i1], old_pts[i2], new_pts[j1], new_pts[j2]]
        if blocks and blocks[-1][0] == "change" and kind == "change":
            blocks[-1][2], blocks[-1][4] = block[2], block[4]
        else:
            blocks.append(block)
    # A change with an empty side (a gap only removed or only inserted) takes in the kept
    # run before it (or after it, at the start), so that old beats have time to fill.
    merged = True
    while merged:
        merged = False
        for i, b in enumerate(blocks):
            if b[0] == "change" and (b[1] == b[2] or b[3] == b[4]):
                j = i - 1 if i > 0 else i + 1
                if j >= len(blocks):
                    raise FullRescore("nothing of the old edit is left to keep")
                lo, hi = min(i, j), max(i, j)
                blocks[lo : hi + 1] = [["change", blocks[lo][1], blocks[hi][2], blocks[lo][3], blocks[hi][4]]]
                merged = True
                break
    return _coalesce(blocks)


def _coalesce(blocks):
    """Neighbouring changes become one."""
    out = []
    for b in blocks:
        if out and out[-1][0] == "change" and b[0] == "change":
            out[-1][2], out[-1][4] = b[2], b[4]
        else:
            out.append(list(b))
    return [tuple(b) for b in out]


def _tick_beat(seconds, tempo_map) -> Fraction:
    """A block boundary's beat, on a MIDI tick (tempo changes must sit on ticks)."""
    return Fraction(round(seconds_to_beats(Fraction(seconds), tempo_map) * PPQ), PPQ)


def retime(blocks, old_map, rate) -> tuple:
    """(new tempo map, re-timed spans): old beats kept, changed spans stretched to fit."""
    rate = Fraction(rate)
    if all(b[1] == b[3] and b[2] == b[4] for b in blocks):
        return list(old_map), []
    segments = []  # (beat, µs per beat) before merging
    retimed = []
    for index, (kind, o0, o1, n0, n1) in enumerate(blocks):
        b0, b1 = _tick_beat(o0 / rate, old_map), _tick_beat(o1 / rate, old_map)
        if kind == "keep" or o1 - o0 == n1 - n0 or b1 <= b0:  # same length: same tempi
            if kind == "change" and b1 <= b0:
                raise FullRescore("a changed span has no beat of music to stretch")
            segments.append((b0, _tempo_at(b0, old_map)))
            segments += [(beat, t) for beat, t in old_map if b0 < beat < b1]
            continue
        start_s = beats_to_seconds(b0, _merge(segments)) if segments else Fraction(0)
        target_s = Fraction(n1) / rate
        us = int(round((target_s - start_s) / (b1 - b0) * 1_000_000))
        bpm = tempo_to_bpm(max(us, 1))
        was = _mean_bpm(b0, b1, old_map)
        if not (BPM_RANGE[0] <= bpm <= BPM_RANGE[1] and 1 / MAX_STRETCH <= bpm / was <= MAX_STRETCH):
            raise Stretch(
                index,
                f"the span {float(n0 / rate):.2f}-{float(n1 / rate):.2f} s would need "
                f"{bpm:.0f} BPM (was {was:.0f}) to keep the music after it",
            )
        segments.append((b0, us))
        retimed.append(
            {
                "start": round(float(Fraction(n0) / rate), 6),
                "end": round(float(target_s), 6),
                "beats": [float(b0), float(b1)],
                "bpm": round(bpm, 3),
                "was_bpm": round(was, 3),
            }
        )
    return _merge(segments), retimed


class Stretch(FullRescore):
    """Block `index` would need too big a tempo change."""

    def __init__(self, index, message):
        super().__init__(message)
        self.index = index


def _mean_bpm(b0, b1, tempo_map):
    return float((b1 - b0) * 60 / (beats_to_seconds(b1, tempo_map) - beats_to_seconds(b0, tempo_map)))


def widen(blocks, index, old_pts) -> list:
    """Block `index` grown by one gap on each side (more beats to absorb a stretch); a
    changed neighbour is taken in whole."""
    blocks = [list(b) for b in blocks]
    kind, o0, o1, n0, n1 = blocks[index]
    grown = False
    if index > 0:
        prev = blocks[index - 1]
        if prev[0] == "keep":
            o0 = max(p for p in old_pts if prev[1] <= p < o0)
            n0 = o0 + prev[3] - prev[1]
            prev[2], prev[4] = o0, n0
        else:
            o0, n0 = prev[1], prev[3]
            prev[2], prev[4] = prev[1], prev[3]  # emptied: dropped below
        grown = True
    if index + 1 < len(blocks):
        nxt = blocks[index + 1]
        if nxt[0] == "keep":
            o1 = min(p for p in old_pts if o1 < p <= nxt[2])
            n1 = o1 + nxt[3] - nxt[1]
            nxt[1], nxt[3] = o1, n1
        else:
            o1, n1 = nxt[2], nxt[4]
            nxt[1], nxt[3] = nxt[2], nxt[4]
        grown = True
    if not grown:
        raise FullRescore("the whole cue would have to change tempo")
    blocks[index] = ["change", o0, o1, n0, n1]
    return _coalesce([b for b in blocks if b[1] < b[2] or b[3] < b[4]])


def _tempo_at(beat, tempo_map):
    return [t for b, t in tempo_map if Fraction(b) <= beat][-1]


def _merge(segments):
    out = []
    for beat, t in segments:
        if out and out[-1][0] == beat:
            out[-1] = (beat, t)
        elif not out or out[-1][1] != t:
            out.append((beat, t))
    return out


def snap_sections(old_plan, plan, blocks):
    """The plan's sections, with the old ones (key, palette, loudness, mood) wherever music
    is kept: kept notes keep the instruments and key they were written for."""
    rate = Fraction(plan.rate)
    keep = [(b[3], b[4], b[3] - b[1]) for b in blocks if b[0] == "keep"]  # new range, shift
    cuts = sorted(
        {s.frame_start for s in plan.sections}
        | {a for a, _, _ in keep}
        | {b for _, b, _ in keep}
        | {s.frame_start + shift for s in old_plan.sections for a, b, shift in keep if a < s.frame_start + shift < b}
        | {plan.sections[-1].frame_end}
    )
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        shift = next((sh for lo, hi, sh in keep if lo <= a < hi), None)
        if shift is None:
            source = plan.section_at(float(Fraction(a) / rate) + 1e-9)
        else:
            source = old_plan.section_at(float(Fraction(a - shift) / rate) + 1e-9)
        if pieces and pieces[-1][2] == _attributes(source):
            pieces[-1][1] = b
        else:
            pieces.append([a, b, _attributes(source), source])
    return dataclasses.replace(
        plan,
        sections=[
            dataclasses.replace(
                src, start=float(Fraction(a) / rate), end=float(Fraction(b) / rate), frame_start=a, frame_end=b
            )
            for a, b, _, src in pieces
        ],
    )


def _attributes(section):
    return (
        section.tonic,
        section.mode,
        section.palette_name,
        section.velocity,
        section.density,
        section.valence,
        section.arousal,
        section.tacet,
    )


def with_tempo(plan, tempo_map):
    """The plan with its tempo replaced by `tempo_map` (the old one, or the re-timed one)."""
    seconds = [h.seconds for h in plan.hits]
    offs = tempo_mod.frames_off(seconds, tempo_map, float(plan.rate))
    return dataclasses.replace(
        plan,
        tempo=dict(
            plan.tempo,
            tempo_map=tempo_map,
            mode="kept" if len(tempo_map) == 1 else "map",
            bpm=round(tempo_to_bpm(tempo_map[0][1]), 3),
            hits_on_beat=sum(1 for o in offs if o <= 1.0),
            mean_frames_off=round(sum(offs) / len(offs), 3) if offs else 0.0,
            frames_off=[round(o, 3) for o in offs],
        ),
    )


def kept_notes(old_notes, blocks, old_map, new_map, rate) -> list:
    """The old notes that start in kept runs, at their new times (same ticks); their ends
    are cut where a changed span begins (see update)."""
    rate = Fraction(rate)
    keep = [(float(o0 / rate) - EPS, float(o1 / rate) - EPS) for kind, o0, o1, _, _ in blocks if kind == "keep"]
    notes = [n for n in old_notes if any(a <= n.start < b for a, b in keep)]
    if new_map == old_map:
        return notes
    ticks = seconds_to_ticks_all([t for n in notes for t in (n.start, n.end)], old_map)
    times = ticks_to_seconds_all(ticks, new_map)
    return [n._replace(start=float(t0), end=float(t1)) for n, t0, t1 in zip(notes, times[0::2], times[1::2])]


def write_span(drawn, start_s, end_s) -> list:
    """The notes of [start_s, end_s) from `drawn`, the engine's draw of the whole new plan
    (engine.draw: the same call, plan and seed a full score makes), cut at the span's end."""
    return [n._replace(end=min(n.end, end_s)) for n in drawn if start_s - EPS <= n.start < end_s - EPS]


def update(model, old, plan, seed, progress=None) -> dict:
    """Regenerate what changed between `old` (a session state: plan, notes) and `plan`.

    Returns {"notes", "plan" (its tempo replaced), "spans", "retimed", "kept", "written"};
    raises FullRescore when keeping music makes no sense.
    """
    old_plan = old["plan"]
    if Fraction(old_plan.rate) != Fraction(plan.rate):
        raise FullRescore(f"the frame rate changed ({float(old_plan.rate):g} -> {float(plan.rate):g} fps)")
    blocks = diff(old_plan, plan)
    rate = Fraction(plan.rate)
    changed = [b for b in blocks if b[0] == "change"]
    if not changed:
        new_map, retimed = list(old_plan.tempo["tempo_map"]), []
    else:
        while True:
            try:
                new_map, retimed = retime(blocks, old_plan.tempo["tempo_map"], rate)
                break
            except Stretch as exc:
                blocks = widen(blocks, exc.index, points(old_plan))
        changed = [b for b in blocks if b[0] == "change"]
        share = sum(b[4] - b[3] for b in changed) / max(1, plan.sections[-1].frame_end)
        if share > MAX_CHANGED_SHARE:
            raise FullRescore(f"{100 * share:.0f}% of the cue changed")
    plan = with_tempo(snap_sections(old_plan, plan, blocks), new_map)
    notes = kept_notes(old["notes"], blocks, old_plan.tempo["tempo_map"], new_map, rate)
    # Nothing old sounds inside a changed span: a note held into one is released where the
    # span starts (a hit or a section start, where new music begins anyway).
    starts = [float(Fraction(b[3]) / rate) for b in blocks if b[0] == "change"]
    ends = [float(Fraction(b[4]) / rate) for b in blocks if b[0] == "change"]
    notes = [n._replace(end=min([n.end] + [a for a, b in zip(starts, ends) if n.start < a < n.end])) for n in notes]
    kept = len(notes)
    spans = []
    whole = engine.draw(model, plan, seed) if changed else None
    drawn = whole.notes if whole else []
    for kind, o0, o1, n0, n1 in changed:
        start_s, end_s = float(Fraction(n0) / rate), float(Fraction(n1) / rate)
        written = write_span(drawn, start_s, end_s)
        notes = notes + written
        spans.append(
            {
                "start": round(start_s, 6),
                "end": round(end_s, 6),
                "start_frame": n0,
                "end_frame": n1,
                "previous_start": round(float(Fraction(o0) / rate), 6),
                "previous_end": round(float(Fraction(o1) / rate), 6),
                "what": describe_change(old_plan, plan, (o0, o1), (n0, n1)),
                "notes": len(written),
            }
        )
    if progress is not None:
        progress(1.0)
    notes.sort(key=lambda n: (n.start, n.family, n.pitch))
    return {
        "notes": notes,
        "plan": plan,
        "spans": spans,
        "retimed": retimed,
        "kept": kept,
        "written": len(notes) - kept,
        "expression": whole.expression if whole else old.get("expression", ()),
    }


def describe_change(old_plan, new_plan, old_range, new_range) -> str:
    """A few words on what changed inside a span, for the manifest and the host's message."""

    def inside(plan, lo, hi):
        return [h.frame - lo for h in plan.hits if lo < h.frame < hi], {
            (round(s.valence / MOOD_STEP), round(s.arousal / MOOD_STEP), s.tacet)
            for s in plan.sections
            if s.frame_start < hi and s.frame_end > lo
        }

    old_hits, old_moods = inside(old_plan, *old_range)
    new_hits, new_moods = inside(new_plan, *new_range)
    words = []
    if len(new_hits) > len(old_hits):
        words.append(f"{len(new_hits) - len(old_hits)} cut(s) added")
    elif len(new_hits) < len(old_hits):
        words.append(f"{len(old_hits) - len(new_hits)} cut(s) removed")
    elif new_hits != old_hits:
        words.append("cut(s) moved")
    if (new_range[1] - new_range[0]) != (old_range[1] - old_range[0]):
        words.append(f"{new_range[1] - new_range[0] - (old_range[1] - old_range[0]):+d} frames")
    if new_moods != old_moods:
        words.append("mood changed")
    return ", ".join(words) or "section re-planned"


def state(plan, notes, options, revision, expression=()) -> dict:
    """What a session keeps between revisions (expression: the CC11 swells of its MIDI)."""
    return {
        "plan": plan,
        "notes": list(notes),
        "options": dict(options),
        "revision": revision,
        "expression": list(expression),
    }
