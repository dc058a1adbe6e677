"""The cue plan: hit weights, tempo from arousal, keys from valence, palettes, tacet."""

from fractions import Fraction

import pytest

from bridge.plan import BPM_HI, BPM_LO, HIT_WEIGHTS, make_plan, target_bpm
from bridge.timebase import beats_to_seconds, frames_to_seconds, seconds_to_beats
from bridge.timeline import Hit


def _sections(*rows):
    return [{"start": a, "end": b, "valence": v, "arousal": ar, "tacet": bool(t)} for a, b, v, ar, *t in rows]


def test_hits_carry_their_weights_and_exact_seconds():
    hits = [Hit(24, "marker"), Hit(60, "cut"), Hit(96, "transition"), Hit(130, "detected")]
    plan = make_plan(hits, _sections((0, 200, 0.3, 0.1)), Fraction(24000, 1001), 200)
    assert [h.weight for h in plan.hits] == [HIT_WEIGHTS[s] for s in ("marker", "cut", "transition", "detected")]
    assert HIT_WEIGHTS == {"marker": 3.0, "cut": 2.0, "transition": 1.5, "detected": 1.0}
    assert plan.hits[1].seconds == frames_to_seconds(60, Fraction(24000, 1001))
    assert plan.name == "1M1" and plan.duration_s == frames_to_seconds(200, Fraction(24000, 1001))


def test_tempo_follows_arousal_within_bounds():
    assert target_bpm(-1) == BPM_LO == 60 and target_bpm(1) == BPM_HI == 160
    assert target_bpm(-5) == 60 and target_bpm(0) == 110
    calm = make_plan([], _sections((0, 250, 0.2, -0.8)), 25, 250)
    excited = make_plan([], _sections((0, 250, 0.2, 0.8)), 25, 250)
    assert calm.tempo["bpm"] < 80 < 140 < excited.tempo["bpm"]


def test_tempo_map_puts_the_hits_on_beats():
    hits = [Hit(f, "cut") for f in (37, 101, 160, 239)]
    plan = make_plan(hits, _sections((0, 300, 0.0, 0.0)), 25, 300)
    assert plan.tempo["hits_on_beat"] == 4
    for h in plan.hits:
        beat = seconds_to_beats(Fraction(h.seconds), plan.tempo["tempo_map"])
        assert abs(float(beats_to_seconds(round(beat), plan.tempo["tempo_map"])) - h.seconds) * 25 <= 1.0


def test_keys_from_valence_take_the_parallel_mode():
    plan = make_plan([Hit(100, "cut")], _sections((0, 100, -0.7, 0.0), (100, 200, 0.6, 0.0)), 25, 200)
    sad, happy = plan.sections
    assert (sad.mode, happy.mode) == ("minor", "major")
    assert sad.tonic == happy.tonic == plan.tonic  # the parallel keys: one tonic
    # a near-neutral section keeps the cue's home mode
    positive = make_plan([], _sections((0, 100, 0.5, 0.0), (100, 200, -0.1, 0.0)), 25, 200, key="A major")
    assert [s.key for s in positive.sections] == ["A major", "A major"]


def test_dynamics_density_and_palette_from_arousal():
    plan = make_plan([], _sections((0, 100, -0.5, -0.8), (100, 200, -0.5, 0.8), (200, 300, 0.5, 0.8)), 25, 300)
    calm, tense, bright = plan.sections
    assert calm.velocity < tense.velocity and calm.density < tense.density
    assert calm.palette["drums"] is None and tense.palette["drums"] is not None
    assert (calm.palette_name, tense.palette_name, bright.palette_name) == ("dark", "tense", "bright")
    assert all(set(s.palette) == {"drums", "bass", "pad", "melody", "piano", "timpani", "taiko"} for s in plan.sections)


def test_tacet_spans_merge_and_their_hits_are_silent():
    rows = _sections((0, 50, 0, 0), (50, 80, 0, 0, 1), (80, 100, 0, 0, 1), (100, 150, 0, 0))
    plan = make_plan([Hit(50, "cut"), Hit(90, "marker"), Hit(100, "cut")], rows, 25, 150)
    assert plan.tacet == [(2.0, 4.0)]
    assert [h.frame for h in plan.silent_hits] == [50, 90]
    assert [h.frame for h in plan.hits] == [100]


def test_override_replaces_the_picture_everywhere():
    plan = make_plan(
        [], _sections((0, 100, -0.9, -0.9), (100, 200, 0.9, 0.9)), 25, 200, valence=0.4, arousal=-0.2, cue="2M3"
    )
    assert {(s.valence, s.arousal) for s in plan.sections} == {(0.4, -0.2)}
    assert plan.name == "2M3"


def test_hits_outside_the_edit_are_ignored():
    plan = make_plan([Hit(-1, "marker"), Hit(100, "cut"), Hit(10, "cut")], _sections((0, 100, 0, 0)), 25, 100)
    assert [h.frame for h in plan.hits] == [10]


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), 25, Fraction(30000, 1001)])
def test_sections_cover_the_cue(rate):
    plan = make_plan([], _sections((0, 40, 0, 0), (40, 90, 0, 0)), rate, 90)
    assert plan.sections[0].start == 0 and plan.sections[-1].end == plan.duration_s
    assert plan.section_at(frames_to_seconds(45, rate)) is plan.sections[1]
