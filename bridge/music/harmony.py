"""Harmony: a chord progression on the cue's tempo map, each hit a destination.

The chord model is small and learned: given the two chords before, the mode and the boundary
offset (how many chords remain before the next phrase end — a hit here, a fermata in the
chorales it was trained on; EMSYNC's offset condition applied to Video2Music's chord
pathway), it gives the next chord relative to the key. What Bach did before a fermata (a
cadence: ii6–V–I, iv–V, V–vi) is what the cue does before a hit.

Not every cut is a destination: a hit less than two bars after the last one is an accent —
the sounding chord struck again on its frame — so a fast sequence keeps its progression
going through the cuts instead of cadencing every two seconds.

The mood enters where the chorales have no data: each quadrant's vocabulary (MUSIC.md §2:
warm adds IV, vi and sevenths; dark i–bVI–bIII–bVII and iv; tense bII, diminished and
half-diminished) is mixed into the model's distribution, and the harmonic rhythm comes from
arousal (a chord every 2 bars when calm, every half bar when excited). Hits get varied
chords: the same chord twice running at hits, or the tonic at more than a third of them, is
made unlikely. Away from a destination the progression is a loop of four chords (two bars
at the least, `loop_beats`) that comes round again, as a film cue's does, rather than
wander: the first statement is drawn with the tonic at its head only (a loop with the tonic
in every other slot is a tonic with visitors), no x–y–x back-and-forth inside it, and a last
chord that can lead back to its head; the chords after it repeat it until a destination's
cadence takes over. The melody's form follows the same loop (melody.FORM).

    progression(plan, seed) -> [ChordSpan]   (beats and seconds, key-relative numeral)
"""

import dataclasses
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bridge import atomic, resources
from bridge.music.theory import QUALITY_NAMES, numeral
from bridge.timebase import beats_to_seconds, beats_to_seconds_all, seconds_to_beats
from bridge.errors import MissingModel
from bridge.music.theory import QUALITIES, SCALES
from bridge.music.theory import chord_pcs

N_CHORDS = 12 * len(QUALITY_NAMES)
BOS = N_CHORDS  # "no chord yet"
FAR = 7  # boundary offsets of 7 or more chords are one condition
WEIGHTS = resources.folder("models") / "scorebridge-harmony.safetensors"

LOOP_BEATS = 8  # the shortest loop: two bars, the melody's phrase
DESTINATION_GAP = 8  # beats after the last destination before a hit is a destination again
INNER_TONIC = 0.5  # weight of the tonic chord inside a loop, after its head
BACK_AND_FORTH = 0.3  # weight of the chord two back, inside a loop
MOOD_MIX = 0.35  # share of the quadrant's vocabulary in each chord's distribution
# Quadrant vocabularies: (interval above the tonic, quality) -> relative weight.
VOCABULARY = {
    "warm": {
        (0, "maj"): 1,
        (0, "maj7"): 1,
        (5, "maj"): 1,
        (5, "maj7"): 1,
        (9, "min"): 1,
        (2, "min7"): 1,
        (7, "sus4"): 1,
        (7, "maj"): 2,
    },
    "bright": {
        (0, "maj"): 1,
        (5, "maj"): 2,
        (7, "maj"): 2,
        (9, "min"): 1,
        (10, "maj"): 1,
        (2, "min"): 1,
        (7, "sus4"): 1,
    },
    # Minor moods lean on i, iv and the harmonic minor's V: the flat side (bIII, bVII) alone
    # is the relative major's collection, and a dark scene would be heard in major.
    "dark": {
        (0, "min"): 2,
        (5, "min"): 2,
        (7, "maj"): 1,
        (7, "min"): 1,
        (8, "maj"): 1,
        (3, "maj"): 1,
        (10, "maj"): 1,
        (2, "hdim7"): 1,
    },
    "tense": {
        (0, "min"): 2,
        (1, "maj"): 2,
        (11, "dim7"): 2,
        (7, "dom7"): 2,
        (8, "maj"): 1,
        (5, "min"): 1,
        (2, "hdim7"): 1,
        (6, "dim"): 1,
    },
}


def chord_id(interval: int, quality_index: int) -> int:
    return quality_index * 12 + interval % 12


def chord_of(index: int) -> tuple:
    """(interval above the tonic, quality name) of a chord id."""
    return index % 12, QUALITY_NAMES[index // 12]


class ChordModel(nn.Module):
    """Next chord from the two before, the mode and the boundary offset: a two-layer MLP
    (about 45 k parameters), readable at a glance."""

    def __init__(self, dim=48, hidden=160):
        super().__init__()
        self.chord = nn.Embedding(N_CHORDS + 1, dim)
        self.mode = nn.Embedding(2, 8)
        self.offset = nn.Embedding(FAR + 1, 16)
        self.net = nn.Sequential(
            nn.Linear(2 * dim + 8 + 16, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, N_CHORDS)
        )

    def forward(self, x):  # x: (n, 4) long: prev2, prev1, mode (0 major, 1 minor), offset
        h = torch.cat(
            [self.chord(x[:, 0]), self.chord(x[:, 1]), self.mode(x[:, 2]), self.offset(x[:, 3].clamp(0, FAR))], dim=-1
        )
        return self.net(h)


def save(model, figures, path=WEIGHTS) -> None:
    from safetensors.torch import save as to_bytes

    tensors = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    atomic.write_bytes(Path(path), to_bytes(tensors))
    atomic.write_text(Path(path).with_suffix(".json"), json.dumps(figures, indent=1) + "\n")


_LOADED = {}


def load(path=WEIGHTS) -> ChordModel:
    """The shipped chord model (cached per path); MissingModel (exit 4) when it is absent or
    unreadable, naming the command that makes it."""

    path = Path(path)
    if path not in _LOADED:
        if not path.exists():
            raise MissingModel(f"no chord model at {path}: `scorebridge train harmony --ship` makes one")
        from safetensors.torch import load_file

        model = ChordModel()
        try:
            model.load_state_dict(load_file(str(path)))
        except Exception as exc:  # a truncated or foreign file: say so, as for the music model
            raise MissingModel(
                f"the chord model at {path} is unreadable ({type(exc).__name__}): "
                "`scorebridge train harmony --ship` writes it again"
            ) from None
        model.eval()
        _LOADED[path] = model
    return _LOADED[path]


@dataclass(frozen=True)
class ChordSpan:
    start_beat: Fraction  # on the tempo map
    end_beat: Fraction
    start: float  # seconds (a hit's chord starts on its frame's exact second)
    end: float
    root: int  # pitch class
    quality: str
    numeral: str  # relative to the section's key
    section: int  # index into plan.sections
    hit: int | None = None  # index into plan.hits where this chord is the hit's

    @property
    def pcs(self) -> tuple:

        return chord_pcs(self.root, self.quality)


def chord_beats(arousal: float, bpm: float) -> int:
    """Harmonic rhythm: about 3.5 s a chord when calm, 1.5 s when excited, as 2, 4 or 8 beats."""
    level = (max(-1.0, min(1.0, arousal)) + 1) / 2
    seconds = 3.5 - 2.0 * level
    want = seconds * bpm / 60.0
    return min((2, 4, 8), key=lambda b: abs(math.log(b / want)))


def loop_beats(arousal: float, bpm: float) -> int:
    """The loop a progression repeats: four chords, as a film cue's progression has (two,
    four or eight bars: one, two or four of the melody's phrases, so a phrase comes back
    over the harmony it was first heard on)."""
    return max(LOOP_BEATS, 4 * chord_beats(arousal, bpm))


def _bpm_at(beat, tempo_map) -> float:
    current = tempo_map[0][1]
    for b, t in tempo_map:
        if b <= beat:
            current = t
    return 60_000_000 / current


def slots(plan) -> list:
    """[(start_beat, end_beat, section index, hit index or None, kind)] covering the sounding
    cue. kind: "destination" (a hit the harmony cadences into: it starts a new chord), "accent"
    (a hit within two bars of the last destination: the sounding chord is struck again on
    its frame, as a composer accents a cut in a fast sequence without stopping the
    progression) or None."""
    tempo_map = plan.tempo["tempo_map"]
    to_beat = lambda s: seconds_to_beats(Fraction(s), tempo_map)  # noqa: E731
    end_beat = to_beat(plan.duration_s)
    marks = {}  # beat -> hit index (None: a section start)
    owner = {}  # beat -> the section a slot starting there belongs to (where rounding could lie)
    section_beats = []
    for i, s in enumerate(plan.sections):  # a tacet section's start ends the chord before it
        beat = Fraction(round(to_beat(s.start)))
        marks.setdefault(beat, None)
        owner[beat] = i
        section_beats.append(beat)
    accents = {}  # beat -> hit index
    last = None
    for i, h in enumerate(plan.hits):
        beat = to_beat(h.seconds)
        near = Fraction(round(beat))
        on_beat = abs(beat - near) < Fraction(1, 8)
        at = near if on_beat else beat
        starts_section = any(abs(at - b) <= 1 for b in section_beats)
        since = min([at - b for b in section_beats if b <= at + 1] + ([at - last] if last is not None else []))
        if starts_section or h.weight >= 3.0 or since >= DESTINATION_GAP:
            at = at if marks.get(at) is None else beat  # a second hit near the same beat: its own beat
            marks[at] = i
            owner[at] = plan.sections.index(plan.section_at(h.seconds))
            last = at
        else:  # an accent on a beat another hit already has: its own exact beat
            accents[at if at not in accents and marks.get(at) is None else beat] = i
    for a, b in plan.tacet:  # music resumes after a tacet span
        marks.setdefault(Fraction(math.ceil(to_beat(b))), None)
    points = sorted(b for b in marks if 0 <= b < end_beat)
    if not points or points[0] > 0:
        points.insert(0, Fraction(0))
        marks.setdefault(Fraction(0), None)
    out = []
    for a, b in zip(points, points[1:] + [end_beat]):
        section = (
            owner[a]
            if a in owner
            else plan.sections.index(plan.section_at(float(beats_to_seconds(a, tempo_map)) + 1e-6))
        )
        if plan.sections[section].tacet:
            continue
        length = chord_beats(plan.sections[section].arousal, _bpm_at(a, tempo_map))
        cuts = [a] + [
            Fraction(k * length) for k in range(math.floor(a / length) + 1, math.ceil(b / length)) if a < k * length < b
        ]
        cuts.append(b)
        merged = [cuts[0]]
        for c in cuts[1:-1]:  # no chord shorter than a beat
            if c - merged[-1] >= 1 and b - c >= 1:
                merged.append(c)
        merged.append(b)
        for i, (x, y) in enumerate(zip(merged, merged[1:])):
            hit = marks.get(a) if i == 0 else None
            kind = "destination" if hit is not None else None
            inside = sorted(t for t in accents if x <= t < y and not (t == x and hit is not None))
            if inside and inside[0] == x:  # an accent on a chord change: the new chord takes it
                hit, kind = accents[x], "accent-new"
                inside = inside[1:]
            for t in inside:
                out.append((x, t, section, hit, kind))
                x, hit, kind = t, accents[t], "accent"
            out.append((x, y, section, hit, kind))
    return out


def progression(plan, seed, model=None) -> list:
    """The cue's chords: the chord model sampled slot by slot (module docstring), one per
    slot, except that a hit striking the tonic just before the cue's last slot rings on
    through it."""
    model = model or load()
    rng = np.random.default_rng([seed, 1801])
    tempo_map = plan.tempo["tempo_map"]
    rows = slots(plan)
    edges = sorted({b for r in rows for b in r[:2]})
    second = dict(zip(edges, beats_to_seconds_all(edges, tempo_map)))
    # boundary offset: chords left before the next hit's chord (or the cue's last chord)
    destinations = [i for i, r in enumerate(rows) if r[4] == "destination"] + [len(rows) - 1]
    chords, history, hit_chords = [], [BOS, BOS], []
    at_beat = {}  # start beat -> chord id, this section's: the loop a progression repeats
    for i, (a, b, section_index, hit, kind) in enumerate(rows):
        tonic_heavy = hit_chords and sum(c in _TONICS for c in hit_chords) >= len(hit_chords) / 3
        if (
            kind == "accent"
            and chords
            and chords[-1].end_beat == a
            and chords[-1].section == section_index
            and not (tonic_heavy and history[-1] in _TONICS)
        ):  # else a stinger chord of its own
            # the sounding chord, struck again on the hit's frame
            c = chords[-1]
            hit_chords.append(history[-1])
            chords.append(
                ChordSpan(a, b, plan.hits[hit].seconds, second[b], c.root, c.quality, c.numeral, section_index, hit)
            )
            continue
        if i and rows[i - 1][2] != section_index:
            at_beat = {}
        section = plan.sections[section_index]
        if i and rows[i - 1][2] != section_index and section.mode != plan.sections[rows[i - 1][2]].mode:
            history = [BOS, BOS]  # a change of mode starts a new phrase
        offset = min(FAR, min(d - i for d in destinations if d >= i))
        x = torch.tensor([[history[-2], history[-1], 0 if section.mode == "major" else 1, offset]])
        with torch.no_grad():
            p = torch.softmax(model(x)[0].double(), -1).numpy()
        p = (1 - MOOD_MIX) * p + MOOD_MIX * _vocabulary(section.palette_name)
        if history[-1] != BOS:  # a new chord each slot: a new root (V7 after V is no change)
            p[_SAME_ROOT[history[-1] % 12]] *= 0.02
        loop = loop_beats(section.arousal, _bpm_at(a, tempo_map))
        ahead = at_beat.get(b - loop)  # the loop's head, which comes after this chord next time round
        if ahead is not None and hit is None and offset >= 1:
            p[_SAME_ROOT[ahead % 12]] *= 0.02
        p[_WRONG_TONIC[section.mode]] *= 0.05  # no Picardy third: a dark cue stays minor
        if section.mode == "minor" and offset >= 2:
            p[_DOMINANTS] *= 0.4  # in minor the major V is for cadences: a run of it sounds major
        p *= _in_mode(section.mode, section.palette_name)  # colour from the mood, not from Bach's
        #                                                    secondary dominants, which blur the mode
        if hit is None and history[-1] != BOS:
            # the tonic heads the loop (and a section); inside it the harmony moves away
            # (I–V–vi–IV, i–bVI–bIII–bVII), or the cue is heard as a tonic with visitors
            p[_TONICS] *= INNER_TONIC
            if history[-2] != BOS:  # x–y–x again is a two-chord vamp, not a four-chord loop
                p[history[-2]] *= BACK_AND_FORTH
        if hit is not None:
            if hit_chords:
                p[hit_chords[-1]] *= 0.1  # vary the hit chords
            if tonic_heavy:
                p[_TONICS] *= 0.15
        # The cue ends as a composer ends one, on a cadence into its tonic (the button):
        # the chord before the last leans to the dominant (or the subdominant), and the last,
        # unless a hit strikes its own chord there, is the tonic (held on, when a hit just
        # before it struck the tonic).
        ending = i == len(rows) - 1 and hit is None
        if i == len(rows) - 2 and hit is None and rows[-1][3] is None:
            p[_TONICS] *= 0.02
            p[_CADENTIAL] *= 4.0
        p = p / p.sum()
        choice = int(rng.choice(N_CHORDS, p=p))
        tonic = chord_id(0, QUALITY_NAMES.index("maj" if section.mode == "major" else "min"))
        if history[-1] == BOS and hit is None:  # a section (or a new mode) starts on its tonic
            choice = tonic
        if ending and chords and chords[-1].section == section_index and history[-1] % 12 == 0:
            # a hit just before the end struck the tonic: it rings on to the end
            chords[-1] = dataclasses.replace(chords[-1], end_beat=b, end=second[b])
            continue
        if ending:
            choice = tonic
        # Harmony that repeats is harmony a listener follows: away from a destination the
        # loop's chords come back (the draw above still advances the generator).
        back = at_beat.get(a - loop)
        if kind is None and offset >= 2 and back is not None and back % 12 != history[-1] % 12:
            choice = back
        at_beat[a] = choice
        history.append(choice)
        if hit is not None:
            hit_chords.append(choice)
        interval, quality = chord_of(choice)
        start = plan.hits[hit].seconds if hit is not None else second[a]
        chords.append(
            ChordSpan(
                a,
                b,
                start,
                second[b],
                (section.tonic + interval) % 12,
                quality,
                numeral(interval, quality),
                section_index,
                hit,
            )
        )
    return chords


# The tonic chord of the other mode (the chorales end minor phrases on a major tonic).
_WRONG_TONIC = {
    "minor": [chord_id(0, QUALITY_NAMES.index(q)) for q in ("maj", "maj7", "dom7", "aug", "sus4")],
    "major": [chord_id(0, QUALITY_NAMES.index(q)) for q in ("min", "min7", "dim", "hdim7", "dim7")],
}
_DOMINANTS = [chord_id(7, QUALITY_NAMES.index(q)) for q in ("maj", "dom7", "sus4")]
_CADENTIAL = _DOMINANTS + [chord_id(5, QUALITY_NAMES.index(q)) for q in ("maj", "min")]  # V, IV, iv
_TONICS = [chord_id(0, q) for q in range(len(QUALITY_NAMES))]
_SAME_ROOT = [[chord_id(root, q) for q in range(len(QUALITY_NAMES))] for root in range(12)]
_VOCAB_CACHE = {}
_MODE_CACHE = {}


def _in_mode(mode, palette_name) -> np.ndarray:
    """1 for the chords of the mode (minor: with the harmonic minor's V and vii) and of the
    mood's vocabulary, 0.35 for the relative key's tonic and dominant, 0.03 for any other."""
    key = (mode, palette_name)
    if key not in _MODE_CACHE:
        scale = set(SCALES[mode])
        weights = np.full(N_CHORDS, 0.03)
        for index in range(N_CHORDS):
            interval, quality = chord_of(index)
            tones = {(interval + t) % 12 for t in QUALITIES[quality]}
            leading = mode == "minor" and interval in (7, 11) and tones <= scale | {11}
            if tones <= scale or leading:
                weights[index] = 1.0
        for interval, quality in VOCABULARY[palette_name]:
            weights[chord_id(interval, QUALITY_NAMES.index(quality))] = 1.0
        # the relative key's own tonic and dominant, taken less often: in a run of them the
        # ear hears the relative key (a dark cue heard in Eb major instead of C minor)
        relative = {
            "minor": ((3, "maj"), (3, "maj7"), (10, "maj"), (10, "dom7")),
            "major": ((9, "min"), (9, "min7"), (4, "maj"), (4, "dom7")),
        }[mode]
        for interval, quality in relative:
            weights[chord_id(interval, QUALITY_NAMES.index(quality))] *= 0.35
        _MODE_CACHE[key] = weights
    return _MODE_CACHE[key]


def _vocabulary(palette_name) -> np.ndarray:
    if palette_name not in _VOCAB_CACHE:
        p = np.zeros(N_CHORDS)
        for (interval, quality), w in VOCABULARY[palette_name].items():
            p[chord_id(interval, QUALITY_NAMES.index(quality))] = w
        _VOCAB_CACHE[palette_name] = p / p.sum()
    return _VOCAB_CACHE[palette_name]
