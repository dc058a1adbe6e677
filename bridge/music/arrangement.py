"""Arrangement: the roles (pad, bass, rhythm, percussion) realised from the chords; percussion
is the GM kit, and timpani and taiko where the scene is excited.

Patterns are data (data/patterns.json: role x energy x meter, a few variations each); the
plan's sections choose among them, and a section keeps its variation, so bars repeat as an
ostinato does. Voicings are chosen here: the pad moves to the nearest voicing of the next
chord (common tones held, other voices by step), the bass plays roots and fifths at the
bottom (a tonic pedal when the scene is tense), the rhythm role stacks the chord's tones
above the pad. Every note is kept inside its role's register and its instrument's practical
range (data/instruments.json), and a struck or plucked instrument is never held past a few
seconds.

Notes are written in beats on the tempo map's grid and converted to seconds once, at the end
(`to_seconds`); a hit's chord starts on its frame's exact second.
"""

import bisect
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources

import numpy as np

from bridge.music.theory import SCALES
from bridge.timebase import beats_to_seconds_all
from bridge.plan.tempo import bars as lay_out
from bridge.timebase import seconds_to_beats

FAMILY_OF_ROLE = {
    "pad": "pad",
    "bass": "bass",
    "rhythm": "piano",
    "percussion": "drums",
    "melody": "melody",
    "timpani": "timpani",
    "taiko": "taiko",
}
ROLE_VELOCITY = {"pad": -12, "bass": -4, "rhythm": -10, "percussion": 0, "melody": 4, "timpani": -2, "taiko": -4}
CRESCENDO_BEATS = 2  # the beats before an important hit that swell into it
CRESCENDO = 14  # velocity added on the last of them
PERCUSSION_FROM = 0.2  # arousal from which percussion plays (its mid pattern), excited from 0.4


@dataclass(frozen=True)
class BeatNote:
    """A note on the tempo map: beats, not seconds (see to_seconds)."""

    start: Fraction
    end: Fraction
    pitch: int
    velocity: int
    role: str
    at_s: float | None = None  # an exact start in seconds (a hit's frame), overriding `start`


@lru_cache(maxsize=None)
def data(name) -> dict:
    return json.loads(resources.files("bridge.music").joinpath("data", name).read_text())


def energy(arousal) -> str:
    return "calm" if arousal < -0.2 else ("excited" if arousal >= 0.4 else "mid")


def register(role, program) -> tuple:
    """(lo, hi) a role writes in: its register inside its program's practical range."""
    lo, hi = data("instruments.json")["registers"][role]
    spec = data("instruments.json")["programs"].get(str(program))
    if spec:
        lo, hi = max(lo, spec["range"][0]), min(hi, spec["range"][1])
        if hi - lo < 14:  # the instrument tops out inside the role's register: reach lower
            lo = max(spec["range"][0], hi - 14)
    return lo, hi


def decays(program) -> bool:
    return bool(data("instruments.json")["programs"].get(str(program), {}).get("decays"))


def fold(pitch, lo, hi) -> int:
    """The pitch moved by octaves into [lo, hi] (nearest the edge it fell past)."""
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch if pitch >= lo else lo + (pitch - lo) % 12


def bars(plan) -> list:
    """[(start beat, beats in the bar)] from the cue's time signatures, to its end."""

    return lay_out(plan.duration_s, plan.tempo["tempo_map"], plan.tempo["time_signatures"])


def chord_at(chords, beat):
    """The chord sounding at `beat` (chords ordered and not overlapping), or None."""
    i = bisect.bisect_right(chords, beat, key=lambda c: c.start_beat) - 1
    return chords[i] if i >= 0 and beat < chords[i].end_beat else None


def _variation(options, section_index, seed, mood=None):
    fitting = [o for o in options if o.get("mood") in (None, mood)] or options
    return fitting[(section_index * 7 + seed * 3) % len(fitting)]


def voice_pad(chords, lo, hi) -> list:
    """A voicing per chord: four voices inside [lo, hi] holding every chord tone, each chosen
    nearest the one before (common tones stay, the rest move least), or the voicing the chord
    had last time where that is nearly as near."""
    out, previous, voiced = [], None, {}
    for c in chords:
        pcs = list(c.pcs)
        candidates = []
        for inversion in range(len(pcs)):
            order = pcs[inversion:] + pcs[:inversion]
            for bottom in range(lo, lo + 12):
                if bottom % 12 != order[0]:
                    continue
                stack, p = [bottom], bottom
                for pc in order[1:] + ([pcs[0]] if len(order) == 3 else []):  # a triad doubles its root
                    p = p + ((pc - p) % 12 or 12)
                    stack.append(p)
                while stack[-1] <= hi - 12 and stack[0] + 12 <= hi - 12:
                    stack = [x + 12 for x in stack]
                if stack[-1] <= hi:
                    candidates.append(tuple(stack))
        if not candidates:
            candidates = [tuple(fold(lo + (pc - lo) % 12, lo, hi) for pc in pcs)]
        if previous is None:
            middle = (lo + hi) / 2
            best = min(candidates, key=lambda v: abs(sum(v) / len(v) - middle))
        else:

            def movement(v):
                return sum(min(abs(x - y) for y in previous) for x in v) + 2 * abs(v[-1] - previous[-1])

            best = min(candidates, key=movement)
            # a chord heard before comes back in the voicing it had, unless that leaps: a
            # progression that repeats then sounds the same each time round
            again = voiced.get((c.root, c.quality))
            if again in candidates and movement(again) <= movement(best) + 4:
                best = again
        voiced[(c.root, c.quality)] = best
        out.append(best)
        previous = best
    return out


def _velocity(base, role, step_in_bar, beats_in_bar, rng, boost=0):
    accent = (
        8
        if step_in_bar == 0
        else (4 if beats_in_bar == 4 and step_in_bar == 8 else (0 if step_in_bar % 4 == 0 else -6))
    )
    v = base + ROLE_VELOCITY[role] + accent + boost + int(rng.integers(-3, 4))
    return max(1, min(127, v))


def _crescendo(beat, important_beats) -> int:
    """Velocity added to a note `beat` that leads into an important hit."""
    for h in important_beats:
        if h - CRESCENDO_BEATS <= beat < h:
            return int(round(CRESCENDO * float(1 - (h - beat) / CRESCENDO_BEATS)))
    return 0


def arrange(plan, chords, seed) -> list:
    """BeatNotes for pad, bass, rhythm and percussion over the progression `chords`."""

    rng = np.random.default_rng([seed, 2207])
    patterns = data("patterns.json")
    tempo_map = plan.tempo["tempo_map"]
    important = sorted(
        Fraction(round(seconds_to_beats(Fraction(h.seconds), tempo_map) * 4), 4) for h in plan.hits if h.weight >= 2.0
    )  # to the 16th nearest each
    notes = []
    sections = plan.sections

    # pad: one voicing per chord, held (a hit's chord starts on its frame)
    pad_lo, pad_hi = register("pad", sections[0].palette["pad"])
    for c, voicing in zip(chords, voice_pad(chords, pad_lo, pad_hi)):
        s = sections[c.section]
        vel = max(1, min(127, s.velocity + ROLE_VELOCITY["pad"] + (10 if c.hit is not None else 0)))
        notes += [
            BeatNote(c.start_beat, c.end_beat, p, vel, "pad", c.start if c.hit is not None else None) for p in voicing
        ]

    ringing = [(c.start_beat, max(c.end_beat, c.start_beat + 1)) for c in chords if c.hit is not None]
    first_chord = {}
    for c in chords:
        first_chord.setdefault(c.section, c.start_beat)
    phrase = patterns["percussion"]["phrase"]
    laid_out = bars(plan)
    bars_begun = {}  # section -> bars of it begun so far: phrases count from its start
    for i, (bar_start, length) in enumerate(laid_out):
        meter = f"{int(length)}/4" if length in (3, 4) else None
        where = _phrase_place(chords, laid_out, i, bars_begun, phrase["bars"])
        for step in range(int(length * 4)):
            beat = bar_start + Fraction(step, 4)
            c = chord_at(chords, beat)
            if c is None:
                continue
            s = sections[c.section]
            level = energy(s.arousal)
            boost = _crescendo(beat, important)
            # bass
            bass_pattern = _variation(patterns["bass"][level], c.section, seed).get(meter) or []
            for ev_step, ev_len, tone in bass_pattern:
                if ev_step == step:
                    notes.append(_bass(c, chords, beat, Fraction(ev_len, 4), tone, s, rng, step, length, boost))
            # rhythm: enters after the section's first chord when calm
            stabbed = any(a <= beat < b for a, b in ringing)  # a hit's stab rings a beat
            if (
                s.palette.get("piano") is not None
                and not stabbed
                and not (level == "calm" and c.start_beat == first_chord[c.section])
            ):
                pattern = _variation(patterns["rhythm"][level], c.section, seed, s.palette_name).get(meter) or []
                for ev_step, ev_len, voice in pattern:
                    if ev_step == step:
                        notes += _rhythm(c, beat, Fraction(ev_len, 4), voice, s, rng, step, length, boost)
            # orchestral percussion when excited: timpani on the tonic and dominant, taiko
            if s.arousal >= 0.4 and s.palette.get("timpani") is not None and where["first"]:
                for ev_step, ev_len, tone in patterns["percussion"]["timpani"].get(meter) or []:
                    if ev_step == step:
                        notes.append(_timpani(s, beat, Fraction(ev_len, 4), tone, rng, step, length, boost))
            if s.arousal >= 0.4 and s.palette.get("taiko") is not None:
                taiko = patterns["percussion"]["taiko"].get(meter) or {}
                # a phrase builds: its accents alone in the first half, the whole ostinato after
                building = where["index"] % phrase["bars"] >= phrase["bars"] // 2
                if step in (taiko.get("steps", ()) if building else taiko.get("accent", ())):
                    lo, _ = register("taiko", s.palette["taiko"])
                    vel = _velocity(s.velocity, "taiko", step, length, rng, boost)
                    vel += 12 if step in taiko["accent"] else 0
                    notes.append(BeatNote(beat, beat + Fraction(1, 2), lo + 5, min(127, vel), "taiko"))
            # percussion
            if s.palette.get("drums") is not None and s.arousal >= PERCUSSION_FROM:
                kind = "excited" if s.arousal >= 0.4 else "mid"
                kit = _variation(patterns["percussion"][kind], c.section, seed, s.palette_name).get(meter) or {}
                fill = phrase["fill"][kind].get(meter) if where["last"] else None
                if fill and any(bar_start + Fraction(fill["from"], 4) < h < bar_start + length for h in important):
                    fill = None  # a hit inside the fill: its own swell leads into it
                if fill and step >= fill["from"]:
                    for at, key in fill["hits"]:
                        if at == step:  # rising through the fill, into the next phrase
                            rise = int(22 * (step - fill["from"]) / max(1, int(length * 4) - fill["from"]))
                            vel = _velocity(s.velocity, "percussion", step, length, rng, boost) - 10 + rise
                            notes.append(
                                BeatNote(beat, beat + Fraction(1, 4), key, max(1, min(127, vel)), "percussion")
                            )
                    continue
                if step == 0 and where["first"] and where["index"] and kind == "excited":
                    vel = min(127, _velocity(s.velocity, "percussion", 0, length, rng, boost) + 6)
                    notes.append(BeatNote(beat, beat + 2, phrase["crash_key"], vel, "percussion"))
                for key, steps in kit.items():
                    if key != "accent" and step in steps:
                        vel = _velocity(s.velocity, "percussion", step, length, rng, boost)
                        vel = min(127, vel + (10 if step in kit.get("accent", []) else -8))
                        notes.append(BeatNote(beat, beat + Fraction(1, 4), int(key), vel, "percussion"))
    notes += _stabs(plan, chords)
    notes += _into_hits(plan, chords, important, rng)
    return _clip_to_chords(notes, chords)


def _phrase_place(chords, laid_out, i, bars_begun, phrase_bars) -> dict:
    """Where bar i sits in its section's phrases: `index` (bars of the section before it),
    `first` (it begins a phrase) and `last` (it ends one: the phrase's last bar, or the
    section's, before more music). Phrases count from the section's first bar, so a new
    section starts a new phrase."""
    head = chord_at(chords, laid_out[i][0])
    section = head.section if head is not None else None
    index = bars_begun.get(section, 0)
    bars_begun[section] = index + 1
    following = chord_at(chords, laid_out[i + 1][0]) if i + 1 < len(laid_out) else None
    last = following is not None and (index % phrase_bars == phrase_bars - 1 or following.section != section)
    return {"index": index, "first": index % phrase_bars == 0, "last": last}


# Where the bass holds a pedal under the chords (MUSIC.md §2): the tonic, with its fifth in
# the patterns that have one, under every chord (i, bII, V7, the diminished ones) — the key
# stays certain while the harmony above it grinds. Tried and not kept: a dominant pedal, and
# a pedal only under the chords that lack the tonic (the mode was heard wrong more often).
# The chord that leads into a hit's new chord stands on its own root, so the cut is
# approached by a bass that moves (V–i, bII–i) instead of a drone through it.
PEDAL_PALETTES = ("tense",)
PEDAL_BEATS = 8  # held for two bars, then two bars moving


def _bottom(c, chords, section) -> int:
    """The pitch class the bass stands on under chord `c`: its root, or the pedal's tonic,
    which lets go before a hit's new chord so the bass walks into the cut. The pedal holds
    through the first two bars of each four (the first half of the harmony's loop, so it
    comes round with it) and the bass moves with the chords in the other two: a pedal held
    through a whole cue is a drone."""
    if section.palette_name not in PEDAL_PALETTES:
        return c.root
    head = next(x.start_beat for x in chords if x.section == c.section)
    if (c.start_beat - head) // PEDAL_BEATS % 2:
        return c.root
    after = chord_at(chords, c.end_beat)
    if after is not None and after.hit is not None and (after.root, after.quality) != (c.root, c.quality):
        return c.root
    return section.tonic


def _bass(c, chords, beat, length, tone, section, rng, step, bar_len, boost) -> BeatNote:
    lo, hi = register("bass", section.palette["bass"])
    root = fold(_bottom(c, chords, section) + 36, lo, min(hi, lo + 11))  # in the register's lower octave
    if tone == "5":
        pitch = root + 7 if root + 7 <= hi else root - 5
    elif tone == "8":
        pitch = root + 12 if root + 12 <= hi else root
    elif tone == "A":  # a step below where the bass goes next (the next chord's root, or the pedal)
        nxt = chord_at(chords, c.end_beat)
        while nxt is not None and nxt.hit is not None and (nxt.root, nxt.quality) == (c.root, c.quality):
            nxt = chord_at(chords, nxt.end_beat)  # a hit striking this chord again: on to the next change
        goal = c.root if nxt is None else (_bottom(nxt, chords, section) if nxt.section == c.section else nxt.root)
        target = fold(goal + 36, lo, min(hi, lo + 11))
        scale = [(section.tonic + d) % 12 for d in SCALES[section.mode]]
        pitch = next((target - k for k in (1, 2) if (target - k) % 12 in scale), target - 1)
        pitch = fold(pitch, lo, hi)
    else:
        pitch = root
    end = min(beat + length, c.end_beat)
    return BeatNote(
        beat,
        end,
        pitch,
        _velocity(section.velocity, "bass", step, bar_len, rng, boost),
        "bass",
        c.start if (c.hit is not None and beat == c.start_beat) else None,
    )


def _stack(c, lo, hi, pcs) -> list:
    """The chord's root in the lowest octave of [lo, hi], then `pcs` stacked upward in turn."""
    base = fold(c.root + 60, lo, lo + 11)
    tones, p = [base], base
    for pc in pcs:
        p = p + ((pc - p) % 12 or 12)
        tones.append(p)
    return [t for t in tones if t <= hi] or [base]


def _rhythm(c, beat, length, voice, section, rng, step, bar_len, boost) -> list:
    lo, hi = register("rhythm", section.palette["piano"])
    tones = _stack(c, lo, hi, list(c.pcs[1:]) + [c.pcs[0]] + list(c.pcs[1:]))
    vel = _velocity(section.velocity, "rhythm", step, bar_len, rng, boost)
    end = min(beat + length, c.end_beat)
    at = c.start if (c.hit is not None and beat == c.start_beat) else None
    if voice == "C":
        return [BeatNote(beat, end, t, vel, "rhythm", at) for t in tones[: len(c.pcs)]]
    return [BeatNote(beat, end, tones[voice % len(tones)], vel, "rhythm", at)]


def _stabs(plan, chords) -> list:
    """The rhythm instrument strikes every hit's chord with the pad and lets it ring a beat at
    least, however soon the next hit comes: the stinger an editor hears on the cut."""
    out = []
    for c in chords:
        if c.hit is None:
            continue
        s = plan.sections[c.section]
        if s.palette.get("piano") is None:
            continue
        tones = _stack(c, *register("rhythm", s.palette["piano"]), c.pcs[1:])
        vel = max(1, min(127, s.velocity + 6))
        end = max(c.end_beat, c.start_beat + 1)
        out += [BeatNote(c.start_beat, end, t, vel, "rhythm", c.start) for t in tones]
    return out


def _timpani(section, beat, length, tone, rng, step, bar_len, boost) -> BeatNote:
    lo, hi = register("timpani", section.palette["timpani"])
    tonic = fold(section.tonic + 36, lo, hi)
    pitch = tonic if tone == "R" else fold(tonic + 7, lo, hi)
    return BeatNote(
        beat, beat + length, pitch, _velocity(section.velocity, "timpani", step, bar_len, rng, boost), "timpani"
    )


def _into_hits(plan, chords, important, rng) -> list:
    """A cymbal swell (ride, rising) over the beats before each important hit and a crash on
    it, where the section has percussion; a timpani roll on the tonic under the swell where
    the palette has timpani."""
    spec = data("patterns.json")["percussion"]["into_hit"]
    out = []
    for h in important:
        c = chord_at(chords, h)
        if c is None:
            continue
        s = plan.sections[c.section]
        if s.palette.get("drums") is None or s.arousal < 0.4:
            continue
        steps = spec["swell_beats"] * 4
        roll = fold(s.tonic + 36, *register("timpani", s.palette["timpani"])) if s.palette.get("timpani") else None
        for k in range(steps):
            at = h - Fraction(steps - k, 4)
            if at >= 0:
                out.append(BeatNote(at, at + Fraction(1, 4), spec["swell_key"], 40 + int(70 * k / steps), "percussion"))
                if roll is not None:
                    out.append(BeatNote(at, at + Fraction(1, 4), roll, 45 + int(70 * k / steps), "timpani"))
        on_hit = c.hit is not None and abs(c.start_beat - h) <= Fraction(1, 8)
        out.append(
            BeatNote(h, h + 1, spec["crash_key"], min(127, s.velocity + 15), "percussion", c.start if on_hit else None)
        )
    return out


EXPRESSION_REST = 100  # CC11 between swells
EXPRESSION_FROM = 72  # where a swell into a hit starts


def expression(plan, chords) -> list:
    """[(seconds, family, CC11 value)]: the sustained roles (pad, melody) swell over the beats
    before each important hit and fall back on its frame — velocity cannot shape a held note."""
    tempo_map = plan.tempo["tempo_map"]
    out = [(0.0, family, EXPRESSION_REST) for family in ("pad", "melody")]
    for c in chords:
        if c.hit is None or plan.hits[c.hit].weight < 2.0 or plan.sections[c.section].arousal < -0.2:
            continue  # calm music does not swell
        hit = Fraction(round(c.start_beat * 4), 4)
        steps = CRESCENDO_BEATS * 4
        ramp = [
            (hit - Fraction(steps - k, 4), EXPRESSION_FROM + (127 - EXPRESSION_FROM) * (k + 1) // steps)
            for k in range(steps)
            if hit - Fraction(steps - k, 4) >= 0
        ]
        times = beats_to_seconds_all([at for at, _ in ramp], tempo_map)
        for family in ("pad", "melody"):
            out += [(t, family, value) for t, (_, value) in zip(times, ramp)]
            out.append((c.start, family, EXPRESSION_REST))
    return sorted(out)


def _clip_to_chords(notes, chords) -> list:
    """Nothing outside the chords' spans (tacet, past the end)."""
    return [n for n in notes if chord_at(chords, n.start) is not None]


def to_seconds(notes, plan, chords=()) -> list:
    """BeatNotes -> ScoreNotes (seconds) with their families; a struck or plucked note no
    longer than max_hold_s. A note on the beat a hit's chord starts on starts on the hit's
    exact second with it (the beat can be a tick or two off the frame)."""
    from bridge.score.compose import ScoreNote

    max_hold = data("instruments.json")["max_hold_s"]
    beats = sorted({b for n in notes for b in (n.start, n.end)})
    sec = dict(zip(beats, beats_to_seconds_all(beats, plan.tempo["tempo_map"])))
    on_hit = {c.start_beat: c.start for c in chords if c.hit is not None}
    out = []
    for n in notes:
        family = FAMILY_OF_ROLE[n.role]
        start = n.at_s if n.at_s is not None else on_hit.get(n.start, None)
        start = sec[n.start] if start is None else start
        end = max(sec[n.end], start + 0.02)
        program = plan.section_at(start).palette.get(family)
        if family != "drums" and program is not None and decays(program):
            end = min(end, start + max_hold)
        if any(a - 1e-6 <= start < b for a, b in plan.tacet):
            continue
        end = min([end, plan.duration_s] + [a for a, _ in plan.tacet if a > start])
        out.append(ScoreNote(start, end, n.pitch, n.velocity, family))
    return _one_at_a_time([n for n in out if n.end > n.start and n.start < plan.duration_s])


def _one_at_a_time(notes) -> list:
    """No two notes of one pitch overlap in a family (a MIDI channel cannot hold them): a note
    ends where the next of its pitch starts, and of two struck together the louder stays."""
    by_key = {}
    for n in sorted(notes, key=lambda n: (n.family, n.pitch, n.start, -n.velocity)):
        by_key.setdefault((n.family, n.pitch), []).append(n)
    out = []
    for group in by_key.values():
        kept = []
        for n in group:
            if kept and abs(kept[-1].start - n.start) < 1e-9:
                continue  # struck together: the louder is kept
            if kept and kept[-1].end > n.start:
                kept[-1] = kept[-1]._replace(end=n.start)
            kept.append(n)
        out += kept
    return out


def harmonic_rhythm_s(chords) -> float:
    return float(np.mean([c.end - c.start for c in chords])) if chords else math.nan
