"""The cue plan itself: the frozen dataclasses the stages after it read, and make_plan,
which decides them from the edit's hits and sections (key.py for the key and tempo target,
roles.py for the instruments, tempo.py for the tempo map).
"""

import bisect
from dataclasses import dataclass
from fractions import Fraction

from bridge.music.theory import PITCH_NAMES, SCALES, parse_key
from bridge.plan import tempo
from bridge.plan.key import BPM_HI, BPM_LO, MODE_DEADBAND, choose_key, target_bpm
from bridge.plan.roles import PALETTES, palette_for
from bridge.timebase import frames_to_seconds

# How strongly a hit pulls the tempo map: the editor's own markers most, then cuts.
HIT_WEIGHTS = {"marker": 3.0, "cut": 2.0, "transition": 1.5, "detected": 1.0}


@dataclass(frozen=True)
class PlannedHit:
    frame: int
    seconds: float  # exact seconds of the frame (the chord lands here)
    source: str
    weight: float
    name: str = ""


@dataclass(frozen=True)
class SectionPlan:
    start: float  # seconds, end exclusive
    end: float
    frame_start: int
    frame_end: int
    valence: float
    arousal: float
    tonic: int  # pitch class 0..11
    mode: str  # "major" | "minor"
    velocity: int  # loudness of the hit chords, 1..127
    density: float  # target notes per second
    palette_name: str
    palette: dict  # family -> GM program, None where the family rests
    tacet: bool = False

    @property
    def key(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    @property
    def scale(self) -> set:
        return {(self.tonic + step) % 12 for step in SCALES[self.mode]}


@dataclass(frozen=True)
class CuePlan:
    name: str  # cue number, e.g. 1M1
    rate: Fraction
    duration_s: float
    hits: list  # PlannedHit the music marks (none inside tacet spans)
    silent_hits: list  # PlannedHit inside tacet spans: nothing plays there
    sections: list  # SectionPlan, covering [0, duration_s)
    tacet: list  # [(start_s, end_s)] without music
    tempo: dict  # tempo.fit's result: mode, tempo_map, time_signatures, bpm, ...
    target_bpm: float
    home: str = "major"  # the cue's home mode (its sections' keys follow from it)
    tonic: int = 2  # the cue's home tonic, pitch class

    @property
    def key(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.home}"

    def section_at(self, seconds) -> SectionPlan:
        starts = [s.start for s in self.sections]
        return self.sections[max(0, bisect.bisect_right(starts, seconds) - 1)]


def make_plan(
    hits, sections, rate, duration_frames, valence=None, arousal=None, cue="1M1", home=None, key=None
) -> CuePlan:
    """The cue plan for an edit.

    hits: objects with frame, source (and name); sections: objects or dicts with start/end
    frames, valence, arousal and tacet. valence/arousal, when given, replace the picture's
    emotion everywhere (an override for the whole cue). home ("major"/"minor"), when given,
    replaces the mode the cue's mean valence picks (a live update keeps its cue's keys).
    key: "E minor", "Bb" ... or (tonic, mode): the cue's home key instead of choose_key's.
    """
    if isinstance(key, str):
        key = parse_key(key)
    duration_s = frames_to_seconds(duration_frames, rate)
    rows = [_section_row(s) for s in sections] or [
        {"start": 0, "end": duration_frames, "valence": 0.0, "arousal": 0.0, "tacet": False}
    ]
    for row in rows:
        if valence is not None:
            row["valence"] = float(valence)
        if arousal is not None:
            row["arousal"] = float(arousal)
    tacet = _tacet_spans(rows, rate)

    planned, silent = [], []
    for h in sorted(hits, key=lambda h: h.frame):
        if not 0 <= h.frame < duration_frames:
            continue
        seconds = frames_to_seconds(h.frame, rate)
        p = PlannedHit(h.frame, seconds, h.source, HIT_WEIGHTS.get(h.source, 1.0), getattr(h, "name", ""))
        (silent if any(a <= seconds < b for a, b in tacet) else planned).append(p)

    lengths = [r["end"] - r["start"] for r in rows if not r["tacet"]] or [1]
    sounding = [r for r in rows if not r["tacet"]] or rows
    mean_v = sum(r["valence"] * (r["end"] - r["start"]) for r in sounding) / sum(lengths)
    mean_a = sum(r["arousal"] * (r["end"] - r["start"]) for r in sounding) / sum(lengths)
    bpm = target_bpm(mean_a)
    fit = tempo.fit(
        [(h.seconds, h.weight) for h in planned], duration_s, float(rate), target_bpm=bpm, lo=BPM_LO, hi=BPM_HI
    )

    if key is not None:
        tonic, home = key
    else:
        home = home or ("major" if mean_v >= 0 else "minor")
        tonic = choose_key(mean_v, mean_a, [h.frame for h in planned], duration_frames, cue)
    section_plans = [_section_plan(r, rate, home, tonic) for r in rows]
    return CuePlan(
        name=cue,
        rate=Fraction(rate),
        duration_s=duration_s,
        hits=planned,
        silent_hits=silent,
        sections=section_plans,
        tacet=tacet,
        tempo=fit,
        target_bpm=round(bpm, 3),
        home=home,
        tonic=tonic,
    )


def _section_row(s) -> dict:
    get = s.get if isinstance(s, dict) else lambda k, d=None: getattr(s, k, d)
    return {
        "start": int(get("start")),
        "end": int(get("end")),
        "valence": float(get("valence")),
        "arousal": float(get("arousal")),
        "tacet": bool(get("tacet", False)),
    }


def _tacet_spans(rows, rate) -> list:
    """Adjacent tacet sections merged into (start_s, end_s) spans."""
    spans = []
    for r in rows:
        if not r["tacet"]:
            continue
        if spans and spans[-1][1] == r["start"]:
            spans[-1][1] = r["end"]
        else:
            spans.append([r["start"], r["end"]])
    return [(frames_to_seconds(a, rate), frames_to_seconds(b, rate)) for a, b in spans]


def _section_plan(row, rate, home, tonic) -> SectionPlan:
    v, a = row["valence"], row["arousal"]
    mode = home if abs(v) < MODE_DEADBAND else ("major" if v >= 0 else "minor")
    level = (max(-1.0, min(1.0, a)) + 1) / 2
    name = palette_for(v, a)
    return SectionPlan(
        start=frames_to_seconds(row["start"], rate),
        end=frames_to_seconds(row["end"], rate),
        frame_start=row["start"],
        frame_end=row["end"],
        valence=v,
        arousal=a,
        tonic=tonic,
        mode=mode,
        velocity=int(round(50 + 60 * level)),
        density=round(1.5 + 6.5 * level, 3),
        palette_name=name,
        palette=dict(PALETTES[name]),
        tacet=row["tacet"],
    )


def describe(plan: CuePlan) -> dict:
    """The plan as JSON-ready data for the manifest."""
    return {
        "cue": plan.name,
        "key": plan.key,
        "target_bpm": plan.target_bpm,
        "tempo_mode": plan.tempo["mode"],
        "hits_on_beat": plan.tempo["hits_on_beat"],
        "mean_frames_off": plan.tempo["mean_frames_off"],
        "time_signatures": [
            {"beat": float(b), "numerator": n, "denominator": d} for b, n, d in plan.tempo["time_signatures"]
        ],
        "sections": [
            {
                "start": round(s.start, 6),
                "end": round(s.end, 6),
                "key": s.key,
                "velocity": s.velocity,
                "density": s.density,
                "palette": s.palette_name,
                "tacet": s.tacet,
            }
            for s in plan.sections
        ],
        "tacet": [[round(a, 6), round(b, 6)] for a, b in plan.tacet],
        "silent_hits": [
            {"frame": h.frame, "seconds": round(h.seconds, 6), "source": h.source} for h in plan.silent_hits
        ],
    }
