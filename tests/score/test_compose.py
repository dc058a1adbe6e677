"""Composition over an edit: a chord on every hit, exact and held, whatever the model does."""

from fractions import Fraction

import numpy as np
import pytest

from bridge.score.compose import (
    ENERGY_WINDOW_S,
    HIT_FAMILIES,
    KEY_PULL,
    HitConstraint,
    ScoreNote,
    candidate_score,
    chord_at,
    chord_events,
    compose,
    mood_parts,
    plan_chords,
    to_parts,
    triad,
)
from bridge.music.sample import sample
from bridge.music.tokens import FINE0, token_times_ms
from bridge.music.theory import SCALES
from bridge.plan import make_plan
from bridge.timebase import seconds_to_beats
from bridge.timeline import Hit
from helpers.scoring import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = Fraction(24000, 1001)


def _plan(tacet=False):
    hits = [
        Hit(f, s)
        for f, s in (
            (30, "cut"),
            (77, "marker"),
            (150, "cut"),
            (151 + 60, "detected"),
            (300, "cut"),
            (360, "transition"),
        )
    ]
    rows = [
        {"start": 0, "end": 150, "valence": -0.5, "arousal": -0.3, "tacet": False},
        {"start": 150, "end": 280, "valence": 0.6, "arousal": 0.7, "tacet": False},
        {"start": 280, "end": 340, "valence": 0.6, "arousal": 0.7, "tacet": tacet},
        {"start": 340, "end": 480, "valence": 0.1, "arousal": 0.2, "tacet": False},
    ]
    return make_plan(hits, rows, RATE, 480)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.mark.parametrize("mode", ["major", "minor"])
@pytest.mark.parametrize("degree", range(7))
def test_triads_are_three_pitch_classes_of_the_key(mode, degree):
    pitches = triad(7, mode, degree)
    classes = {p % 12 for p in pitches}
    assert len(classes) == 3 and classes <= {(7 + s) % 12 for s in SCALES[mode]}


def test_every_hit_gets_a_held_chord_of_its_key(model):
    plan = _plan()
    result = compose(model, plan, seed=5, candidates=2)
    tempo_map = plan.tempo["tempo_map"]
    placed = {
        (c.hit, n)
        for c in result["chords"]
        for n in result["notes"]
        if n.family == c.family and n.start == c.start and n.pitch in c.pitches
    }
    for index, hit in enumerate(plan.hits):
        assert len({n.pitch % 12 for n in chord_at(result["notes"], hit.seconds, tolerance=0.0)}) >= 3
        chord = [n for i, n in placed if i == index]  # the forced chord (the model may add notes)
        classes = {n.pitch % 12 for n in chord}
        assert len(classes) >= 3 and classes <= plan.section_at(hit.seconds).scale, hit
        assert {n.family for n in chord} <= set(HIT_FAMILIES)
        held = [
            seconds_to_beats(Fraction(n.end), tempo_map) - seconds_to_beats(Fraction(n.start), tempo_map) for n in chord
        ]
        assert min(held) >= 1
    assert result["best"] in (0, 1)
    assert result["scores"][result["best"]]["score"] == max(s["score"] for s in result["scores"])
    assert all(s["hit_coverage"] == 1.0 for s in result["scores"])


def test_the_sampler_lands_on_every_hit_millisecond(model):
    """The token stream itself (not only the placed chords) reaches each hit exactly. Every
    take runs to the end (grace=None): a straggler cut off stops short of the later hits."""
    plan = _plan()
    chords = plan_chords(plan, np.random.default_rng(0))
    events = chord_events(chords, plan.duration_s)
    takes, tokens = sample(
        model,
        plan.duration_s,
        boundaries=[h.seconds for h in plan.hits],
        batch=2,
        seed=1,
        constrain=HitConstraint(plan, [events, events], grace=None),
        return_tokens=True,
        max_tokens=4000,
    )
    for seq in tokens:
        times = set(token_times_ms(seq).tolist())
        assert {int(round(h.seconds * 1000)) for h in plan.hits} <= times
        assert len(seq) > model.cfg.block_size  # the window slid at least once
    for take in takes:  # the model's own notes held the chord: it starts at the hit, in the take
        for chord in chords:
            starts = {
                n.pitch for n in take if n.family == chord.family and round(n.start * 1000) == round(chord.start * 1000)
            }
            assert set(chord.pitches) <= starts


def test_constrain_none_changes_nothing(model):
    a = sample(model, 3.0, boundaries=[1.0, 2.0], batch=2, seed=4)
    b = sample(model, 3.0, boundaries=[1.0, 2.0], batch=2, seed=4, constrain=None)
    assert a == b


def test_same_seed_same_notes_other_seed_other_notes(model):
    plan = _plan()
    first = compose(model, plan, seed=9, candidates=2)["notes"]
    assert compose(model, plan, seed=9, candidates=2)["notes"] == first
    assert compose(model, plan, seed=10, candidates=2)["notes"] != first


def test_guided_composition_still_lands_every_hit_and_is_seeded(model):
    plan = _plan()
    guided = compose(model, plan, seed=9, candidates=2, guidance=2.0)
    assert compose(model, plan, seed=9, candidates=2, guidance=2.0)["notes"] == guided["notes"]
    assert compose(model, plan, seed=9, candidates=2)["notes"] != guided["notes"]
    assert all(s["hit_coverage"] == 1.0 for s in guided["scores"])
    for hit in plan.hits:
        assert len({n.pitch % 12 for n in chord_at(guided["notes"], hit.seconds, tolerance=0.0)}) >= 3


def test_mood_changes_cut_the_cue_into_parts_written_afresh(model):
    plan = _plan()
    starts = [s.start for s in plan.sections]
    assert mood_parts(plan, None) == [(0.0, plan.duration_s)]
    # sections 2 and 3 share a mood; 1 -> 2 and 3 -> 4 move by 0.3 or more
    assert mood_parts(plan, 0.3) == [(0.0, starts[1]), (starts[1], starts[3]), (starts[3], plan.duration_s)]
    assert mood_parts(plan, 2.0) == [(0.0, plan.duration_s)]
    fresh = compose(model, plan, seed=9, candidates=2, mood_step=0.3)
    assert compose(model, plan, seed=9, candidates=2, mood_step=0.3)["notes"] == fresh["notes"]
    assert compose(model, plan, seed=9, candidates=2)["notes"] != fresh["notes"]
    assert [s["reached_s"] for s in fresh["scores"]] == [pytest.approx(plan.duration_s, abs=0.002)] * 2
    assert all(s["hit_coverage"] == 1.0 for s in fresh["scores"])
    starts_of_parts = [a for a, _ in mood_parts(plan, 0.3)]
    assert all(any(a <= n.start < a + 1.0 for n in fresh["notes"]) for a in starts_of_parts)
    for hit in plan.hits:
        assert len({n.pitch % 12 for n in chord_at(fresh["notes"], hit.seconds, tolerance=0.0)}) >= 3
    seen = []
    compose(model, plan, seed=9, candidates=2, mood_step=0.3, progress=seen.append)
    assert seen and all(0 <= f <= 1 for f in seen) and max(seen) > 0.5


def test_a_model_with_the_tonic_condition_is_given_each_sections_tonic(monkeypatch):
    import torch
    import bridge.score.compose as comp
    from bridge.music.model import MusicConfig, MusicTransformer

    torch.manual_seed(0)
    tonal = MusicTransformer(
        MusicConfig(n_layer=1, n_head=2, n_embd=64, n_cond=16, block_size=96, cond_zero_init=False, tonic=True)
    ).eval()
    with torch.no_grad():
        tonal.tonic.weight.normal_(0, 0.5)
    plan = _plan()
    seen, real = [], comp.sample

    def spy(*a, **kw):  # the real sampler, noting the tonic it is given
        seen.append(kw.get("tonic"))
        return real(*a, **kw)

    monkeypatch.setattr(comp, "sample", spy)
    out = compose(tonal, plan, seed=9, candidates=2)
    assert seen == [[(s.start, s.tonic) for s in plan.sections]]
    assert all(s["hit_coverage"] == 1.0 for s in out["scores"])
    plain = tiny_model()
    compose(plain, plan, seed=9, candidates=1)
    assert seen[-1] is None and not plain.cfg.tonic


def test_key_guidance_writes_other_notes_still_lands_every_hit_and_needs_a_key_model(model):
    import torch
    from bridge.music.model import MusicConfig, MusicTransformer

    torch.manual_seed(0)
    keyed = MusicTransformer(
        MusicConfig(
            n_layer=1, n_head=2, n_embd=64, n_cond=16, block_size=96, cond_zero_init=False, tonic=True, tonic_modes=2
        )
    ).eval()
    with torch.no_grad():
        keyed.tonic.weight.normal_(0, 1.0)
    plan = _plan()
    plain = compose(keyed, plan, seed=4, candidates=2)
    guided = compose(keyed, plan, seed=4, candidates=2, key_guidance=12.0)
    again = compose(keyed, plan, seed=4, candidates=2, key_guidance=12.0)
    assert guided["notes"] == again["notes"]  # seeded
    assert guided["notes"] != plain["notes"]  # the guidance reaches the notes
    assert all(s["hit_coverage"] == 1.0 for s in guided["scores"])
    with pytest.raises(ValueError, match="tonic condition"):
        compose(model, plan, seed=4, candidates=1, key_guidance=12.0)


def test_free_notes_are_pulled_into_each_sections_key(model):
    plan = _plan()

    def in_key(key_pull):
        result = compose(model, plan, seed=6, candidates=2, key_pull=key_pull)
        placed = {(c.family, p, c.start) for c in result["chords"] for p in c.pitches}
        own = [n for n in result["notes"] if (n.family, n.pitch, n.start) not in placed]
        assert len(own) > 20
        return np.mean([n.pitch % 12 in plan.section_at(n.start).scale for n in own])

    # The untrained model picks pitches about at random (7 of 12 are in a key).
    assert in_key(0.0) < 0.8 and in_key(KEY_PULL) > 0.9


def test_tacet_is_silent_and_its_hit_unmarked(model):
    plan = _plan(tacet=True)
    a, b = plan.tacet[0]
    assert [h.frame for h in plan.silent_hits] == [300]
    notes = compose(model, plan, seed=2, candidates=2)["notes"]
    assert notes and not [n for n in notes if n.start < b and n.end > a]


def test_close_hits_alternate_families():
    rows = [{"start": 0, "end": 100, "valence": 0.5, "arousal": 0.0, "tacet": False}]
    plan = make_plan([Hit(f, "cut") for f in (20, 23, 70)], rows, 25, 100)
    chords = plan_chords(plan, np.random.default_rng(0))
    assert [c.family for c in chords][:2] == ["pad", "piano"]


def test_parts_are_named_instruments_with_programs(model):
    plan = _plan()
    parts = to_parts(compose(model, plan, seed=1, candidates=1)["notes"], plan)
    names = [p["name"] for p in parts]
    assert len(names) == len(set(names))
    assert all(0 <= p["program"] <= 127 for p in parts)
    assert any(p["name"].endswith("(pad)") for p in parts)
    assert all(p["is_drum"] == (p["name"] == "Drums (percussion)") for p in parts)


def test_candidate_score_prefers_in_key_sounding_music():
    rows = [{"start": 0, "end": 100, "valence": 0.5, "arousal": 0.0, "tacet": False}]
    plan = make_plan([Hit(50, "cut")], rows, 25, 100)
    hit = plan.hits[0].seconds
    chord = [ScoreNote(hit, hit + 1.0, p, 90, "pad") for p in triad(plan.sections[0].tonic, "major", 0)]
    tonic = plan.sections[0].tonic
    in_key = [ScoreNote(t * 0.25, t * 0.25 + 0.3, 60 + tonic + (0, 2, 4)[t % 3], 80, "melody") for t in range(16)]
    out_of_key = [n._replace(pitch=n.pitch + 1) for n in in_key]
    good, bad = candidate_score(chord + in_key, plan), candidate_score(chord + out_of_key, plan)
    assert good["hit_coverage"] == bad["hit_coverage"] == 1.0
    assert good["in_key"] == 1.0 > bad["in_key"] and good["score"] > bad["score"]
    sparse = candidate_score(chord, plan)
    assert sparse["sounding"] < good["sounding"] and sparse["score"] < good["score"]
    assert candidate_score(in_key, plan)["hit_coverage"] == 0.0


def test_a_shift_past_the_hit_gives_its_probability_to_the_landing_shift():
    import torch
    from bridge.music.tokens import SHIFT0, VOCAB_SIZE

    rows = [{"start": 0, "end": 100, "valence": 0.5, "arousal": 0.0, "tacet": False}]
    plan = make_plan([Hit(50, "cut")], rows, 25, 100)  # the hit at 2000 ms
    chords = plan_chords(plan, np.random.default_rng(0))
    for temperature in (1.0, 1.3):
        hook = HitConstraint(plan, [chord_events(chords, plan.duration_s)], temperature, energy_pull=0.0)
        logits = torch.randn(1, VOCAB_SIZE)
        out = hook(logits, np.array([1500]))  # 500 ms to go: shifts of 510..1000 ms would pass
        before = torch.softmax(logits[0] / temperature, -1)
        after = torch.softmax(out[0] / temperature, -1)
        landing, other = SHIFT0 + 50 - 1, SHIFT0 + 10  # other: a 110 ms shift, untouched
        merged = before[landing + 1 : SHIFT0 + 100].sum() + before[landing]
        # masks elsewhere renormalise, so compare against a token neither merged nor masked
        assert torch.isclose(after[landing] / after[other], merged / before[other], rtol=1e-4)
        assert after[landing + 1 : SHIFT0 + 100].sum() == 0
        out = hook(logits, np.array([1996]))  # 4 ms to go: forced
        assert int(out[0].argmax()) == FINE0 + 3 and torch.isinf(out[0]).sum() == VOCAB_SIZE - 1


def test_the_energy_pull_bends_the_shifts_toward_the_sections_pace():
    import torch
    from bridge.music.tokens import OFF0, ON0, SHIFT0, VOCAB_SIZE

    rows = [{"start": 0, "end": 200, "valence": 0.5, "arousal": 0.0, "tacet": False}]
    plan = make_plan([], rows, 25, 200)  # 8 s; density 4.75 notes a second
    logits = torch.zeros(1, VOCAB_SIZE)
    short, long = SHIFT0 + 4, SHIFT0 + 39  # 50 ms, 400 ms

    def after(played, pull=1.0):
        hook = HitConstraint(plan, [[]], energy_pull=pull)
        for ms in played:  # one take: each step's draw and the time it was drawn at
            hook.observe(np.array([ON0 + 40]), np.array([ms]))
        return hook(logits, np.array([4000]))[0]

    quiet = after([3990])  # one note in the last 2 s
    busy = after(list(range(2100, 4000, 50)))  # 38 notes: 19 a second
    old = after(list(range(100, 1900, 20)))  # 90 notes, but before the window
    assert quiet[short] > quiet[long] and busy[short] < busy[long]
    assert torch.equal(old, after([]))  # only the last ENERGY_WINDOW_S counts
    assert ENERGY_WINDOW_S == 2.0
    none = after([3990], pull=0.0)
    assert none[short] == none[long]
    # what starts, and which pitch, is left to the model and the key pull
    assert torch.equal(quiet[ON0:OFF0], none[ON0:OFF0]) and torch.equal(busy[ON0:OFF0], none[ON0:OFF0])


def test_the_energy_pull_holds_each_section_nearer_its_density(model):
    rows = [
        {"start": 0, "end": 240, "valence": 0.4, "arousal": -0.8, "tacet": False},
        {"start": 240, "end": 480, "valence": 0.4, "arousal": 0.8, "tacet": False},
    ]
    plan = make_plan([Hit(f, "cut") for f in (48, 240, 400)], rows, 24, 480)

    def off_target(pull):
        miss = []
        for seed in range(3):
            notes = compose(model, plan, seed=seed, candidates=1, energy_pull=pull)["notes"]
            for s in plan.sections:
                rate = sum(1 for n in notes if s.start <= n.start < s.end) / (s.end - s.start)
                miss.append(abs(np.log((rate + 0.5) / (s.density + 0.5))))
        return np.mean(miss)

    assert off_target(1.0) < 0.5 * off_target(0.0)


def test_the_dynamics_pull_marks_each_section_and_lifts_the_levels_nearer_its_own():
    import torch
    from bridge.music.tokens import N_VEL, VEL0, VOCAB_SIZE, vel_level

    rows = [
        {"start": 0, "end": 100, "valence": 0.5, "arousal": -0.8, "tacet": False},
        {"start": 100, "end": 200, "valence": 0.5, "arousal": 0.8, "tacet": False},
    ]
    plan = make_plan([], rows, 25, 200)
    calm, loud = (vel_level(s.velocity) for s in plan.sections)
    pad = VEL0 + 2 * N_VEL  # the pad family's levels
    assert plan.sections[1].palette.get("pad") is not None and loud - calm >= 3
    logits = torch.zeros(1, VOCAB_SIZE)

    def hook_at(level=None, pull=2.0, levels=None):
        hook = HitConstraint(plan, [[]], energy_pull=0.0, dynamics_pull=pull, levels=levels)
        if level is not None:  # the model (or a forced chord) set the pad's level
            hook.observe(np.array([pad + level]), np.array([100]))
        return hook

    def forced(row):
        return int(row.argmax()) if int(torch.isinf(row).sum()) == VOCAB_SIZE - 1 else None

    # entering the loud section at the calm level: the pad is set to the loud level, once
    hook = hook_at(calm)
    assert forced(hook(logits, np.array([4100]))[0]) == pad + loud
    lean = hook(logits, np.array([4110]))[0]  # not yet heard: the levels nearer are lifted
    lift = lean[pad : pad + N_VEL] - logits[0, pad : pad + N_VEL]
    assert int(lift.argmax()) == loud and float(lift[loud]) == pytest.approx(2.0 * (loud - calm))
    assert float(lift[calm + 1]) == pytest.approx(2.0) and float(lift.min()) == 0.0  # none pushed down
    hook.observe(np.array([pad + loud]), np.array([4110]))
    free = hook(logits, np.array([4120]))[0]  # at the section's level: left to the model
    assert torch.equal(free[pad : pad + N_VEL], logits[0, pad : pad + N_VEL])
    assert forced(hook(logits, np.array([4500]))[0]) is None  # marked once per section
    # a prompt's level counts as heard; at the section's level nothing is marked
    assert forced(hook_at(levels=[{2: calm}])(logits, np.array([4100]))[0]) == pad + loud
    assert forced(hook_at(loud)(logits, np.array([4100]))[0]) is None
    # no level yet: nothing forced, every level leans toward the section's
    fresh = hook_at()(logits, np.array([4100]))[0]
    assert forced(fresh) is None and int(fresh[pad : pad + N_VEL].argmax()) == loud
    # pull 0: no marking, no lift; what starts, which pitch and when are left to the other pulls
    off = hook_at(calm, pull=0.0)(logits, np.array([4100]))[0]
    assert forced(off) is None and torch.equal(off[pad : pad + N_VEL], logits[0, pad : pad + N_VEL])
    assert torch.equal(lean[:VEL0], off[:VEL0])


def test_levels_set_reads_the_loudness_each_family_is_left_at():
    from bridge.score.compose import levels_set
    from bridge.music.tokens import FAMILY_INDEX, Note, encode, vel_level

    notes = [
        Note(0.0, 0.5, 60, 40, "pad"),
        Note(0.5, 0.5, 64, 100, "pad"),
        Note(0.2, 1.0, 40, 70, "bass"),
        Note(1.0, 0.5, 67, 100, "pad"),
    ]
    assert levels_set(encode(notes)) == {FAMILY_INDEX["pad"]: vel_level(100), FAMILY_INDEX["bass"]: vel_level(70)}
    assert levels_set([]) == {}


def test_the_dynamics_pull_makes_a_later_louder_section_louder(model):
    rows = [
        {"start": 0, "end": 240, "valence": 0.4, "arousal": -0.8, "tacet": False},
        {"start": 240, "end": 480, "valence": 0.4, "arousal": 0.8, "tacet": False},
    ]
    plan = make_plan([Hit(f, "cut") for f in (48, 240, 400)], rows, 24, 480)
    loud = plan.sections[1]

    def off_target(pull):
        miss = []
        for seed in range(3):
            composed = compose(model, plan, seed=seed, candidates=1, dynamics_pull=pull)
            forced = {(c.start, p) for c in composed["chords"] for p in c.pitches}
            own = [
                n.velocity
                for n in composed["notes"]
                if loud.start <= n.start < loud.end and (n.start, n.pitch) not in forced
            ]
            miss += [abs(v - loud.velocity) for v in own]
        return np.mean(miss)

    assert off_target(2.0) < 0.7 * off_target(0.0)


def test_a_straggling_take_is_ended_once_another_has_finished():
    import torch
    from bridge.music.tokens import EOS, VOCAB_SIZE

    rows = [{"start": 0, "end": 100, "valence": 0.5, "arousal": 0.0, "tacet": False}]
    plan = make_plan([], rows, 25, 100)
    hook = HitConstraint(plan, [[], []])
    logits = torch.zeros(2, VOCAB_SIZE)
    for step in range(4):
        out = hook(logits, np.array([1000 * step, 10 * step]))
    out = hook(logits, np.array([4000, 50]))  # step 5: take 0 at the end
    assert int(out[1].argmax()) != EOS
    for step in range(2):
        out = hook(logits, np.array([4000, 60]))
    assert int(out[1].argmax()) == EOS and torch.isinf(out[1]).sum() == VOCAB_SIZE - 1


def test_finish_places_chords_exactly_and_ends_unreleased_notes():
    from bridge.score.compose import MAX_NOTE_S, finish
    from bridge.music.tokens import Note

    plan = _plan(tacet=True)
    chords = plan_chords(plan, np.random.default_rng(0))
    take = [
        Note(0.5, 30.0, 64, 80, "piano"),
        Note(0.5, 1.0, 40, 80, "bass"),
        Note(12.0, 3.0, 70, 80, "melody"),
        Note(12.6, 0.2, 71, 80, "melody"),
    ]  # tacet from 11.678 s
    notes = finish(take, chords, plan)
    assert ScoreNote(0.5, 0.5 + MAX_NOTE_S, 64, 80, "piano") in notes
    assert not [n for n in notes if n.family == "melody"]
    for chord in chords:
        assert {n.pitch for n in chord_at(notes, chord.start, tolerance=0.0) if n.family == chord.family} >= set(
            chord.pitches
        )
