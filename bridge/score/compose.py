"""The single-transformer engine (what `score` used until the layered engine), and the score
types and track layout every engine shares (ScoreNote, to_parts).

`score` now draws with bridge/music/engine.py; `compose()` below is kept for `eval-score`,
which measures this engine, and its history is in docs/research/.

Music over a whole edit: the model plays freely, and every hit gets a chord on its frame.

The constraint works at decode time, inside the sampler's loop (`sample(constrain=...)`):
- a time shift that would carry the music past the next hit has its probability moved to
  the shift that lands on the hit's millisecond (a remainder under 10 ms is forced), so the
  music never steps over a hit;
- on the hit the chord is forced: a loudness token and the note-ons of a triad from the
  section's key in the pad or piano family; at its release (on a beat, at least one beat
  later) the note-offs are forced. While it sounds, the model may not start or stop those
  pitches in that family. Forced tokens are fed to the model like its own, so it hears
  the chord and continues from it;
- the end-of-piece token is never drawn, and no note starts in a tacet span or in a family
  that rests in the section's palette;
- every free note-on is pulled toward the section's key (music/steer.py, strength
  `key_pull`): the model alone wanders between keys, and out-of-key notes clash with the
  forced chords and blur the mode the scene's valence asked for. A model with the tonic
  condition is also given each section's tonic;
- the music's pace is pulled toward each section's density (notes a second, from its
  arousal; strength `energy_pull`): where the take has played fewer notes over the last
  two seconds than the section asks, shorter time shifts are made likelier, and longer
  ones where it has played more. The model alone keeps the energy it set at the start;
- its loudness follows each section's (from its arousal; `dynamics_pull`): where a section
  begins, every family of its palette that plays at another loudness level is set to the
  section's (a forced loudness token, like a dynamic marking; the model hears it and goes
  on at that level), and within the section levels nearer the section's are made likelier
  than the one a family plays at. The model alone keeps the level it started with.
The token grid is 1 ms; the chords are then placed at the exact seconds of their frames,
so in the MIDI file they sit on the tick of the frame under the tempo map.

Several candidates are drawn in one batch and the best by `candidate_score` is kept, among
the takes that reached the end of the cue (a take far slower than the first to finish is
ended early rather than holding up the whole batch).
"""

import bisect
import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch

from bridge.music.sample import TOP_P, sample
from bridge.music.steer import STRENGTH, pull
from bridge.music.tokens import (
    BOS,
    EOS,
    FAMILIES,
    FAMILY_INDEX,
    FINE0,
    N_PITCH,
    N_VEL,
    OFF0,
    ON0,
    PAD,
    PITCH_LO,
    SHIFT0,
    TOKEN_MS,
    VEL0,
    VOCAB_SIZE,
    token_times_ms,
    vel_level,
)
from bridge.music.theory import SCALES
from bridge.plan import PART_FAMILIES, PROGRAM_NAMES, ROLES
from bridge.timebase import beats_to_seconds, seconds_to_beats

HIT_FAMILIES = ("pad", "piano")
# Scale degrees (0-based) of the chords on hits inside a section; its first hit takes the tonic.
DEGREES = {"major": (3, 4, 5), "minor": (3, 5, 2, 4)}  # IV V vi / iv VI III v
TOKENS_PER_SECOND = 150  # generation budget: more than the music needs, so it reaches the end
# A batch runs as long as its slowest take. Once one take has reached the end, the others get
# this many times its steps to finish, then are ended (and lose to any take that finished).
STRAGGLER_GRACE = 1.25
SOUNDING_GRID_S = 0.1
MAX_NOTE_S = 8.0  # a note the model never released ends here, not at the end of the cue
KEY_PULL = STRENGTH  # how hard free notes are pulled toward the section's key (steer.py)
KEY_GUIDANCE = 1.0  # key guidance of the free notes' pitch (sample.py); 1: none, the product's default
GUIDANCE = 1.0  # classifier-free guidance of the conditions (1: none)
MOOD_STEP = None  # write afresh where the mood moves this much between sections (None: never)
ENERGY_PULL = 1.0  # how hard the music's pace is pulled toward each section's density (0: not)
ENERGY_WINDOW_S = 2.0  # the notes of this many seconds before are the rate heard
ENERGY_MAX = 3.0  # the most the pull's lift (nats per octave of shift length) may be, either way
DYNAMICS_PULL = 2.0  # nats a level nearer the section's loudness is lifted by (0: no lift, no marking)


class ScoreNote(NamedTuple):
    start: float  # seconds from the timeline's first frame
    end: float
    pitch: int
    velocity: int
    family: str


class Chord(NamedTuple):
    hit: int  # index into plan.hits
    start: float  # exact seconds of the hit's frame
    end: float  # exact seconds of the release: a beat of the tempo map
    family: str
    pitches: tuple
    velocity: int


def plan_chords(plan, rng) -> list:
    """A chord for every hit of the plan: a triad of the section's key held to a beat at
    least one beat after the hit (cut short only where a tacet span or the cue ends first)."""
    tempo_map = plan.tempo["tempo_map"]
    free_at = dict.fromkeys(HIT_FAMILIES, -1.0)
    chords = []
    for index, hit in enumerate(plan.hits):
        section = plan.section_at(hit.seconds)
        release_beat = math.floor(seconds_to_beats(Fraction(hit.seconds), tempo_map)) + 2
        end = float(beats_to_seconds(release_beat, tempo_map))
        end = min([end, plan.duration_s] + [a for a, _ in plan.tacet if a > hit.seconds])
        family = next(
            (f for f in HIT_FAMILIES if free_at[f] <= hit.seconds), min(HIT_FAMILIES, key=lambda f: free_at[f])
        )
        free_at[family] = end
        degree = 0 if hit.frame == section.frame_start else int(rng.choice(DEGREES[section.mode]))
        chords.append(
            Chord(
                index,
                hit.seconds,
                end,
                family,
                triad(section.tonic, section.mode, degree),
                min(127, section.velocity + 12),
            )
        )
    return chords


def triad(tonic, mode, degree) -> tuple:
    """Root below middle C, then root, third and fifth above it: four notes, three pitch classes."""
    scale = SCALES[mode]
    root = 48 + (tonic + scale[degree]) % 12
    third = root + (scale[(degree + 2) % 7] - scale[degree]) % 12
    fifth = root + (scale[(degree + 4) % 7] - scale[degree]) % 12
    return (root, root + 12, third + 12, fifth + 12)


def _on(family, pitch):
    return ON0 + FAMILY_INDEX[family] * N_PITCH + pitch - PITCH_LO


def _off(family, pitch):
    return OFF0 + FAMILY_INDEX[family] * N_PITCH + pitch - PITCH_LO


def chord_events(chords, duration_s) -> list:
    """[(ms, tokens, pitches held from here, pitches released here)], ordered by time.

    A release that would fall after the next chord of the same family starts is moved
    onto that start, so the millisecond grid never overlaps two chords of one family."""
    events = {}
    next_start = {}
    for chord in reversed(chords):
        on_ms = int(round(chord.start * 1000))
        off_ms = min(math.ceil(chord.end * 1000), next_start.get(chord.family, 1 << 60))
        next_start[chord.family] = on_ms
        keys = [(chord.family, p) for p in chord.pitches]
        level = VEL0 + FAMILY_INDEX[chord.family] * N_VEL + vel_level(chord.velocity)
        ons = events.setdefault(on_ms, ([], [], [], []))
        ons[1].extend([level] + [_on(f, p) for f, p in keys])
        ons[2].extend(keys)
        if off_ms < duration_s * 1000:
            offs = events.setdefault(off_ms, ([], [], [], []))
            offs[0].extend(_off(f, p) for f, p in keys)
            offs[3].extend(keys)
    # at one millisecond: releases first, then the new chords
    return [(ms, e[0] + e[1], e[2], e[3]) for ms, e in sorted(events.items())]


class HitConstraint:
    """The sampler's `constrain` and `observe` hooks: one state per take (see the module
    docstring). played: per take, the ms of the note-ons heard before start_s (a prompt's),
    so the energy pull hears the pace the span continues. levels: per take, {family index:
    loudness level} the prompt left each family at, so the dynamics pull starts from it."""

    def __init__(
        self,
        plan,
        events_per_take,
        temperature=1.0,
        progress=None,
        start_s=0.0,
        end_s=None,
        key_pull=KEY_PULL,
        grace=STRAGGLER_GRACE,
        energy_pull=ENERGY_PULL,
        played=None,
        dynamics_pull=DYNAMICS_PULL,
        levels=None,
    ):
        self.plan = plan
        self.key_pull = float(key_pull)
        self.progress = progress  # progress(fraction): every 32 steps; it may raise to stop
        self.temperature = max(temperature, 1e-5)  # the sampler's: merged mass is kept under it
        self.events = events_per_take
        self.next = [0] * len(events_per_take)
        self.queue = [[] for _ in events_per_take]
        self.held = [set() for _ in events_per_take]
        self.shift_ms = torch.from_numpy(TOKEN_MS[SHIFT0:VEL0].astype(np.float64))
        self.always = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
        self.always[[PAD, BOS, EOS]] = True
        self.rests = {}  # (section index, tacet) -> mask of note-ons that may not start
        self.start_ms = start_s * 1000  # the span being written (the whole cue by default)
        self.end_ms = (plan.duration_s if end_s is None else end_s) * 1000
        self.steps = 0
        self.first_finish = None  # steps the first take needed to reach the end
        self.grace = grace  # None: every take runs to the end (or its token budget)
        self.energy_pull = float(energy_pull)
        # ms of every note-on each take has played (its prompt's too, where given): the
        # rate the energy pull hears
        self.played = [sorted(p) for p in played] if played else [[] for _ in events_per_take]
        self.rate_from_ms = self.start_ms - (ENERGY_WINDOW_S * 1000 if played else 0)
        self.shift_log2 = torch.from_numpy(np.log2(TOKEN_MS[SHIFT0:FINE0] / 100.0)).float()
        self.dynamics_pull = float(dynamics_pull)
        self.marked = [None] * len(events_per_take)  # the section each take last had marked
        # each take's loudness level per family (-1: not yet set), as the model last heard it
        self.levels = [[-1] * len(FAMILIES) for _ in events_per_take]
        for b, known in enumerate(levels or []):
            for family, level in known.items():
                self.levels[b][family] = level
        self.lifts = {}  # (section's level, every family's level) -> the loudness tokens' lift

    def __call__(self, logits, now_ms):
        self.steps += 1
        if self.progress is not None and self.steps % 32 == 0:
            done = (float(now_ms.min()) - self.start_ms) / max(1.0, self.end_ms - self.start_ms)
            self.progress(min(1.0, max(0.0, done)))
        if self.first_finish is None and (now_ms >= self.end_ms).any():
            self.first_finish = self.steps
        late = self.grace is not None and self.first_finish is not None and self.steps > self.grace * self.first_finish
        logits = logits.clone()
        for b in range(logits.shape[0]):
            if late and now_ms[b] < self.end_ms:
                logits[b] = _only(logits[b], EOS)
            else:
                logits[b] = self._step(b, int(now_ms[b]), logits[b])
        return logits

    def _step(self, b, now, row):
        events = self.events[b]
        if not self.queue[b] and self.next[b] < len(events) and events[self.next[b]][0] <= now:
            _, tokens, hold, release = events[self.next[b]]
            self.next[b] += 1
            self.queue[b] = list(tokens)
            self.held[b] -= set(release)
            self.held[b] |= set(hold)
        section = self.plan.section_at(now / 1000)
        if not self.queue[b] and self.dynamics_pull:
            self.queue[b] = self._marking(b, now, section)
        if self.queue[b]:
            return _only(row, self.queue[b].pop(0))
        row = row.masked_fill(self.always | self._rests(now), float("-inf"))
        row = pull(row, section.tonic, section.mode, self.key_pull)
        if self.energy_pull:
            row = self._energy(b, now, section, row)
        if self.dynamics_pull:
            row = self._dynamics(b, section, row)
        if self.held[b]:
            held = [t for f, p in self.held[b] for t in (_on(f, p), _off(f, p))]
            row[held] = float("-inf")
        if self.next[b] < len(events):
            remaining = events[self.next[b]][0] - now
            if remaining < 10:
                return _only(row, FINE0 + remaining - 1)
            passing = self.shift_ms > remaining
            if bool(passing.any()):
                landing = SHIFT0 + remaining // 10 - 1
                shifts = row[SHIFT0:VEL0]
                merged = torch.cat([shifts[passing], row[landing : landing + 1]]) / self.temperature
                mass = torch.logsumexp(merged, 0) * self.temperature
                shifts[passing] = float("-inf")
                row[landing] = mass
        return row

    def _energy(self, b, now, section, row):
        """Shorter time shifts made likelier where the take has played fewer notes a second
        over the last ENERGY_WINDOW_S than its section's density, and longer ones where it
        has played more. Why: the model sets its energy from the mood at the start of a run
        and keeps it (docs/research/2026-12-07-music-model-card-history.md, "Moods that
        change mid-cue"), so without this a cue's calm and excited sections move at much the
        same pace. Bending when the next note comes, not whether one starts, leaves the
        choice of pitches to the model (lifting the note-ons instead cost more valence for
        less arousal: the same note, "Energy pull")."""
        since = max(self.rate_from_ms, now - ENERGY_WINDOW_S * 1000)
        heard = max(now - since, 500.0) / 1000
        played = self.played[b]
        recent = (len(played) - bisect.bisect_left(played, since)) / heard
        lift = self.energy_pull * math.log((section.density + 0.5) / (recent + 0.5))
        lift = max(-ENERGY_MAX, min(ENERGY_MAX, lift))
        row[SHIFT0:FINE0] -= lift * self.shift_log2
        return row

    def _marking(self, b, now, section):
        """Where a take enters a section: loudness tokens that set each family of the
        section's palette that plays at another level to the section's. A family with no
        level yet is left to the model (its first loudness leans toward the section's)."""
        silent = section.tacet or any(a <= now / 1000 < end for a, end in self.plan.tacet)
        if self.marked[b] is section or silent:
            return []  # marked already, or silent here (marked where the music comes back)
        self.marked[b] = section
        target = vel_level(section.velocity)
        return [
            VEL0 + FAMILY_INDEX[f] * N_VEL + target
            for f in FAMILIES
            if section.palette.get(f) is not None and self.levels[b][FAMILY_INDEX[f]] not in (-1, target)
        ]

    def _dynamics(self, b, section, row):
        """Loudness levels nearer the section's than the level a family plays at made
        likelier, by dynamics_pull nats per level nearer; before a family has a level, every
        level leans toward the section's. Why: the model keeps the loudness it started with
        (loudness tokens come only where the level changes), so without this a calm opening
        leaves a later excited section as soft. Only levels nearer are lifted, none pushed
        down, so the model's own swells within a section stay its choice."""
        key = (vel_level(section.velocity), tuple(self.levels[b]))
        if key not in self.lifts:
            target, current = key
            off = [abs(level - target) for level in range(N_VEL)]
            self.lifts[key] = self.dynamics_pull * torch.tensor(
                [
                    -off[level] if now_at < 0 else max(0, off[now_at] - off[level])
                    for now_at in current
                    for level in range(N_VEL)
                ],
                dtype=row.dtype,
            )
        row[VEL0:VOCAB_SIZE] += self.lifts[key]  # the loudness tokens end the vocabulary
        return row

    def observe(self, tokens, now_ms):
        """The sampler's observe hook: keeps the time of every note-on each take draws, and
        the loudness level each family was last set to."""
        for b, (tok, now) in enumerate(zip(tokens, now_ms)):
            if ON0 <= tok < OFF0 and now < self.end_ms:
                self.played[b].append(int(now))
            elif VEL0 <= tok < VOCAB_SIZE:
                family, level = divmod(int(tok) - VEL0, N_VEL)
                self.levels[b][family] = level

    def _rests(self, now_ms):
        seconds = now_ms / 1000
        tacet = any(a <= seconds < b for a, b in self.plan.tacet)
        index = self.plan.sections.index(self.plan.section_at(seconds))
        key = (index, tacet)
        if key not in self.rests:
            mask = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
            palette = self.plan.sections[index].palette
            for family in FAMILIES:
                if tacet or palette.get(family) is None:
                    start = ON0 + FAMILY_INDEX[family] * N_PITCH
                    mask[start : start + N_PITCH] = True
            self.rests[key] = mask
        return self.rests[key]


def levels_set(tokens) -> dict:
    """{family index: loudness level} as the tokens leave each family (loudness tokens come
    only where a level changes, so the last one of a family is the level it plays at)."""
    return dict(divmod(tok - VEL0, N_VEL) for tok in tokens if VEL0 <= tok < VOCAB_SIZE)


def _only(row, token):
    """Logits that leave `token` the only possible draw."""
    out = torch.full_like(row, float("-inf"))
    out[token] = 0.0
    return out


def mood_parts(plan, step=MOOD_STEP) -> list:
    """[(start_s, end_s)]: the cue cut where a section's valence or arousal differs from the
    one before by `step` or more (None: one part, the whole cue).

    Why: the model sets its energy and mode from the mood at the start of a sampling run
    and then continues the music it has heard; a later change of condition moves almost
    nothing (docs/research/2026-12-07-music-model-card-history.md, "Moods that change
    mid-cue"). Written afresh from a mood change
    on, a part follows its own mood."""
    starts = [0.0]
    if step is not None:
        for before, s in zip(plan.sections, plan.sections[1:]):
            if abs(s.valence - before.valence) >= step or abs(s.arousal - before.arousal) >= step:
                starts.append(s.start)
    ends = starts[1:] + [plan.duration_s]
    return [(a, b) for a, b in zip(starts, ends) if b > a]


def compose(
    model,
    plan,
    seed=0,
    candidates=4,
    temperature=1.0,
    top_p=TOP_P,
    progress=None,
    key_pull=KEY_PULL,
    guidance=GUIDANCE,
    mood_step=MOOD_STEP,
    key_guidance=KEY_GUIDANCE,
    energy_pull=ENERGY_PULL,
    dynamics_pull=DYNAMICS_PULL,
) -> dict:
    """Generate `candidates` takes of the whole cue and keep the best.

    Returns {"notes": [ScoreNote], "chords": [Chord], "scores": [per candidate], "best": i,
    "tokens": tokens drawn for the best take, "reached_s": where its music ended (the token
    budget can run out first)}. The same model, plan and seed give the same notes.
    progress(fraction of the cue reached by the slowest take) is called as sampling goes;
    an exception it raises stops the work (that is how a daemon cancels a job).
    guidance > 1 draws with classifier-free guidance (sample.py): the moods and cuts weigh
    more against the music already heard, at the cost of a second row per candidate.
    mood_step: where the mood moves this much from one section to the next, the music is
    written afresh from there (mood_parts); None writes the cue in one run.
    key_guidance > 1 (a model with the tonic condition) draws each free note's pitch with key
    guidance toward its section's key (sample.py), at the cost of another row per candidate;
    the sampler refuses it for a model without that condition.
    energy_pull: how hard each section's pace is pulled toward its density (HitConstraint;
    0 leaves the model's own pace). dynamics_pull: the same for its loudness (0: the
    model's own).
    """
    chords_per_take = [plan_chords(plan, np.random.default_rng([seed, k])) for k in range(candidates)]
    sections = plan.sections
    parts = mood_parts(plan, mood_step)
    takes, tokens = [[] for _ in range(candidates)], [[] for _ in range(candidates)]
    reached = [None] * candidates  # where each take's music ended: the first part it fell short in
    for i, (start, end) in enumerate(parts):

        def part_progress(fraction, start=start, end=end):
            progress((start + fraction * (end - start)) / plan.duration_s)

        inside = [
            [c._replace(end=min(c.end, end)) for c in chords if start - 1e-6 <= c.start < end - 1e-6]
            for chords in chords_per_take
        ]
        hook = HitConstraint(
            plan,
            [chord_events(c, end) for c in inside],
            temperature,
            part_progress if progress is not None else None,
            start_s=start,
            end_s=end,
            key_pull=key_pull,
            grace=STRAGGLER_GRACE if len(parts) == 1 else None,
            energy_pull=energy_pull,
            dynamics_pull=dynamics_pull,
        )
        # Each part starts from silence at its mood change. Every take runs each part to its
        # end: one ended early would leave a gap before the next.
        start_ms = int(round(start * 1000))
        hits_inside = sum(1 for h in plan.hits if start - 1e-6 <= h.seconds < end - 1e-6)
        part_takes, part_tokens = sample(
            model,
            end,
            valence=[(s.start, s.valence) for s in sections],
            arousal=[(s.start, s.arousal) for s in sections],
            boundaries=[h.seconds for h in plan.hits],
            batch=candidates,
            seed=seed + 7919 * i,
            temperature=temperature,
            top_p=top_p,
            return_tokens=True,
            constrain=hook,
            observe=hook.observe,
            guidance=guidance,
            max_tokens=int((end - start) * TOKENS_PER_SECOND) + 16 * hits_inside + 64,
            prompt_ms=start_ms,
            tonic=[(s.start, s.tonic) for s in sections] if model.cfg.tonic else None,
            key_guidance=key_guidance,
        )
        for k in range(candidates):
            takes[k] += [n for n in part_takes[k] if n.start >= start - 1e-6]
            tokens[k] += part_tokens[k]
        for k, seq in enumerate(part_tokens):
            ms = start_ms + (int(token_times_ms(seq)[-1]) if seq else 0)
            if reached[k] is None or reached[k] >= start * 1000 - 0.5:  # not yet short
                reached[k] = ms
    results = [finish(take, chords, plan) for take, chords in zip(takes, chords_per_take)]
    scores = [candidate_score(notes, plan) for notes in results]
    for score, ms in zip(scores, reached):
        score["reached_s"] = round(min(ms / 1000, plan.duration_s), 3)
    finished = [k for k in range(candidates) if scores[k]["reached_s"] >= plan.duration_s - 0.001]
    best = max(finished or range(candidates), key=lambda k: (scores[k]["score"], -k))
    return {
        "notes": results[best],
        "chords": chords_per_take[best],
        "scores": scores,
        "best": best,
        "tokens": len(tokens[best]),
        "reached_s": scores[best]["reached_s"],
    }


def finish(take, chords, plan) -> list:
    """The decoded take as the score: chords at their exact times, nothing in tacet spans,
    no model note longer than MAX_NOTE_S."""
    placed = {(c.family, p, int(round(c.start * 1000))) for c in chords for p in c.pitches}
    notes = [
        ScoreNote(n.start, n.start + min(n.duration, MAX_NOTE_S), n.pitch, n.velocity, n.family)
        for n in take
        if (n.family, n.pitch, int(round(n.start * 1000))) not in placed
    ]
    notes += [ScoreNote(c.start, c.end, p, c.velocity, c.family) for c in chords for p in c.pitches]
    out = []
    for n in notes:
        end = min([n.end, plan.duration_s] + [a for a, _ in plan.tacet if a > n.start])
        if n.start < plan.duration_s and end > n.start and not any(a <= n.start < b for a, b in plan.tacet):
            out.append(n._replace(end=end))
    return sorted(out, key=lambda n: (n.start, FAMILY_INDEX[n.family], n.pitch))


def chord_at(notes, seconds, tolerance=1e-9):
    """The pad/piano pitches that start at `seconds` (within `tolerance`)."""
    return [n for n in notes if n.family in HIT_FAMILIES and abs(n.start - seconds) <= tolerance]


def candidate_score(notes, plan) -> dict:
    """How well a take serves the plan; the best take has the highest `score`:
    hit coverage (chords of 3+ pitch classes on the hits) + share of pitched notes in the
    section's key + 0.5 × closeness of note density to the arousal target + share of the
    non-tacet time in which something sounds."""
    hits = plan.hits
    covered = sum(1 for h in hits if len({n.pitch % 12 for n in chord_at(notes, h.seconds)}) >= 3)
    pitched = [n for n in notes if n.family != "drums"]
    in_key = sum(1 for n in pitched if n.pitch % 12 in plan.section_at(n.start).scale)
    density, weight = 0.0, 0.0
    for s in plan.sections:
        if s.tacet or s.end <= s.start:
            continue
        count = sum(1 for n in notes if s.start <= n.start < s.end)
        rate = count / (s.end - s.start)
        density += math.exp(-abs(math.log((rate + 0.1) / (s.density + 0.1)))) * (s.end - s.start)
        weight += s.end - s.start
    grid = np.arange(0.0, plan.duration_s, SOUNDING_GRID_S)
    open_time = np.array([not any(a <= t < b for a, b in plan.tacet) for t in grid], dtype=bool)
    sounding = np.zeros(len(grid), dtype=bool)
    for n in notes:
        sounding[(grid >= n.start) & (grid < n.end)] = True
    parts = {
        "hit_coverage": covered / len(hits) if hits else 1.0,
        "in_key": in_key / len(pitched) if pitched else 0.0,
        "density_match": density / weight if weight else 1.0,
        "sounding": float(sounding[open_time].mean()) if open_time.any() else 1.0,
    }
    parts["score"] = parts["hit_coverage"] + parts["in_key"] + 0.5 * parts["density_match"] + parts["sounding"]
    return {k: round(v, 4) for k, v in parts.items()}


def to_parts(notes, plan, expression=()) -> list:
    """Notes as the MIDI writer's parts: one named track per instrument ("Instrument (role)":
    the GM program its section's palette gives the family, and the family's role), in family
    order. expression: (seconds, family, CC11 value), given to the part of that family whose
    program plays at that time."""
    groups = {}
    # where a family's section rests (a swell leading into the next section's hit), the note
    # keeps the family's instrument from a section where it plays
    playing = {}
    for section in plan.sections:
        for family, program in section.palette.items():
            if program is not None:
                playing.setdefault(family, program)
    for n in notes:
        # a hair of tolerance: a note on a section's first frame, re-timed by a live update,
        # may land a float's width before it and must keep its section's instrument
        program = plan.section_at(n.start + 1e-4).palette.get(n.family)
        program = playing.get(n.family, 0) if program is None else program
        groups.setdefault((PART_FAMILIES.index(n.family), program), []).append(n)
    parts = []
    for (fam, program), group in sorted(groups.items()):
        family = PART_FAMILIES[fam]
        instrument = "Drums" if family == "drums" else PROGRAM_NAMES.get(program, f"Program {program}")
        name = f"{instrument} ({ROLES[family]})"
        part = {
            "name": name,
            "family": family,
            "program": 0 if family == "drums" else program,
            "is_drum": family == "drums",
            "notes": [(n.start, n.end, n.pitch, n.velocity) for n in group],
        }
        controls = [
            (t, 11, value)
            for t, fam, value in expression
            if fam == family and (plan.section_at(t + 1e-4).palette.get(family) or 0) == program
        ]
        if controls:
            part["controls"] = controls
        parts.append(part)
    return parts
