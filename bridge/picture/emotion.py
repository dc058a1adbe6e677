"""Emotion as (valence, arousal) in [-1, 1]: from faces, from picture cues, from markers.

Every source is an Estimator: `estimate(span) -> Estimate | None`, like PySceneDetect's
detectors share `process_frame`. A later learned head is one more Estimator. `combine`
holds the one rule that decides between them:

1. A mood/va marker in force wins outright (the editor said so).
2. Otherwise faces and picture cues are averaged, weighted: picture cues weigh 1, faces
   weigh 2 x coverage (the share of sampled frames where a face was found), so faces drive
   the estimate once they are seen in at least half of the samples. `source` is the heavier one.
3. With neither (no media, or a gap), the default: valence 0, arousal from the cut rate
   (or GAP_AROUSAL for a gap).
"""

import math
from dataclasses import dataclass, field

# EMSYNC's Ekman means in valence/arousal (REFERENCES.md); neutral sits at the origin.
EKMAN_VA = {
    "anger": (-0.51, 0.59),
    "disgust": (-0.60, 0.35),
    "fear": (-0.64, 0.60),
    "joy": (0.76, 0.48),
    "sadness": (-0.63, -0.27),
    "surprise": (0.40, 0.67),
    "neutral": (0.0, 0.0),
}
GAP_AROUSAL = -0.5


def clip(x, lo=-1.0, hi=1.0):
    return max(lo, min(hi, x))


def ekman_to_va(probs: dict) -> tuple[float, float]:
    """Probability-weighted mean of the Ekman means (probabilities renormalised to sum 1)."""
    total = sum(p for k, p in probs.items() if k in EKMAN_VA)
    if total <= 0:
        return 0.0, 0.0
    v = sum(p * EKMAN_VA[k][0] for k, p in probs.items() if k in EKMAN_VA) / total
    a = sum(p * EKMAN_VA[k][1] for k, p in probs.items() if k in EKMAN_VA) / total
    return v, a


def picture_valence(f: dict) -> float:
    """Brightness dominates pleasantness (Valdez & Mehrabian 1994: P = .69 Y + .22 S), then
    colourfulness, saturation and warmth:
        v = 0.45 clip((Y - 0.40) / 0.25) + 0.25 clip((C - 30) / 30)
          + 0.20 clip((S - 0.30) / 0.25) + 0.10 clip((6500 - CCT) / 3000)
    Y 0.15 or darker, colourless, grey and cool gives -1; Y 0.65, C 60, S 0.55, 3500 K gives +1."""
    return clip(
        0.45 * clip((f["brightness"] - 0.40) / 0.25)
        + 0.25 * clip((f["colourfulness"] - 30.0) / 30.0)
        + 0.20 * clip((f["saturation"] - 0.30) / 0.25)
        + 0.10 * clip((6500.0 - f["colour_temperature"]) / 3000.0)
    )


def motion_arousal(motion: float) -> float:
    """Log scale, 0 at M = 0.02 (a mean luma change of 2 % per frame at 25 fps), +-1 a factor
    4 either side: a locked-off shot (M <= 0.005) is -1, fast action (M >= 0.08) is +1."""
    return clip(math.log2(max(motion, 1e-6) / 0.02) / 2.0)


def cut_arousal(cuts_per_minute: float) -> float:
    """Log scale, 0 at 15 cuts a minute (a 4 s average shot), +1 at 60, -1 at 3.75 or fewer."""
    return clip(math.log2(max(cuts_per_minute, 1e-6) / 15.0) / 2.0)


def loudness_arousal(db: float) -> float:
    """Linear in dBFS: -28 dBFS (dialogue level) is 0, -42 and quieter -1, -14 and louder +1."""
    return clip((db + 28.0) / 14.0)


def picture_arousal(f: dict) -> float:
    """Weighted mean of motion (0.5), cut rate (0.3) and loudness (0.2, when there is sound)."""
    parts = [(0.5, motion_arousal(f["motion"])), (0.3, cut_arousal(f["cut_rate"]))]
    if f.get("loudness") is not None:
        parts.append((0.2, loudness_arousal(f["loudness"])))
    return sum(w * a for w, a in parts) / sum(w for w, _ in parts)


@dataclass
class Span:
    """What estimators see of one section."""

    start: int  # timeline frames, end exclusive
    end: int
    kind: str = "clip"  # "clip" or "gap"
    features: dict = field(default_factory=dict)  # cue values (empty without media)
    faces: list = field(default_factory=list)  # per sample with a face: {label: prob}
    samples: int = 0  # frames sampled for faces


@dataclass
class Estimate:
    valence: float
    arousal: float
    source: str  # "faces" | "picture" | "marker" | "default"
    weight: float = 1.0
    emotion: dict = field(default_factory=dict)


class Estimator:
    """One source of emotion. `estimate` returns None when it has nothing to say."""

    source = ""

    def estimate(self, span: Span) -> Estimate | None:
        raise NotImplementedError


class FaceEstimator(Estimator):
    source = "faces"

    def estimate(self, span):
        if not span.faces or not span.samples:
            return None
        labels = span.faces[0].keys()
        mean = {k: sum(p[k] for p in span.faces) / len(span.faces) for k in labels}
        v, a = ekman_to_va(mean)
        coverage = len(span.faces) / span.samples
        return Estimate(v, a, self.source, weight=2.0 * coverage, emotion=mean)


class PictureEstimator(Estimator):
    source = "picture"

    def estimate(self, span):
        if "brightness" not in span.features:
            return None
        return Estimate(picture_valence(span.features), picture_arousal(span.features), self.source)


class MarkerEstimator(Estimator):
    """The mood/va marker in force at the span's start: each holds until the next one.
    A `mood: auto` marker (no values) hands the emotion back to the picture."""

    source = "marker"

    def __init__(self, markers):
        self.markers = sorted((m for m in markers if m.kind in ("mood", "va")), key=lambda m: m.frame)

    def estimate(self, span):
        current = None
        for m in self.markers:
            if m.frame <= span.start:
                current = m
        if current is None or current.valence is None or current.arousal is None:
            return None
        return Estimate(clip(current.valence), clip(current.arousal), self.source)


class DefaultEstimator(Estimator):
    """Needs no media: valence 0, arousal from the cut rate (low in gaps)."""

    source = "default"

    def estimate(self, span):
        if span.kind == "gap":
            return Estimate(0.0, GAP_AROUSAL, self.source, weight=0.0)
        return Estimate(0.0, cut_arousal(span.features.get("cut_rate", 15.0)), self.source, weight=0.0)


def combine(estimates) -> Estimate:
    """The rule in the module docstring, over the non-None estimates. The face probabilities,
    when faces were read, are kept whichever source wins: they were measured all the same."""
    estimates = [e for e in estimates if e is not None]
    emotion = next((e.emotion for e in estimates if e.emotion), {})
    for e in estimates:
        if e.source == "marker":
            return Estimate(e.valence, e.arousal, e.source, e.weight, emotion)
    measured = [e for e in estimates if e.source in ("faces", "picture") and e.weight > 0]
    if measured:
        total = sum(e.weight for e in measured)
        lead = max(measured, key=lambda e: e.weight)
        return Estimate(
            clip(sum(e.valence * e.weight for e in measured) / total),
            clip(sum(e.arousal * e.weight for e in measured) / total),
            lead.source,
            total,
            emotion,
        )
    defaults = [e for e in estimates if e.source == "default"]
    return defaults[0] if defaults else Estimate(0.0, 0.0, "default", 0.0)
