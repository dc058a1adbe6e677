"""The style measures of `scorebridge eval` (REFERENCES.md definitions) on notes with known answers."""

import math

import numpy as np
import pytest

from bridge.music.evaluate import _mean_defined, _style_windows, grooving_similarity, pitch_class_entropy
from bridge.music.tokens import Note
from test_music_train import _work  # pytest puts tests/ on the path (as test_music_tonic relies on)


def _at(times, pitch=60):
    return [Note(t, 0.1, pitch, 80, "piano") for t in times]


def test_grooving_similarity_of_known_bars():
    beats = [0.0, 0.5, 1.0, 1.5]  # 2 s bars, 16 steps of 125 ms
    same = _at(beats + [2 + t for t in beats])
    assert grooving_similarity(same) == 1.0
    # bar 2 moves one onset by one step: 2 of 16 steps differ
    other = _at(beats + [2.0, 2.5, 3.0, 3.625])
    assert math.isclose(grooving_similarity(other), 1 - 2 / 16)
    # empty bars are not compared; a single bar with onsets has no pair: undefined, not 0
    assert grooving_similarity(_at(beats + [6 + t for t in beats])) == 1.0
    assert grooving_similarity(_at(beats)) is None and grooving_similarity([]) is None


def test_pitch_class_entropy_and_undefined_takes_left_out_of_means():
    chromatic = [Note(i * 0.25, 0.25, 60 + i, 80, "piano") for i in range(12)]
    assert math.isclose(pitch_class_entropy(chromatic), math.log2(12))
    assert pitch_class_entropy(_at([0.0, 0.5, 1.0])) == 0.0  # one pitch class: 0 bits
    assert pitch_class_entropy(_at([0.0])) is None
    assert _mean_defined(grooving_similarity, [_at([0.0, 0.5, 2.0, 2.5]), _at([0.0])]) == 1.0


@pytest.mark.slow
def test_eval_runs_every_section_on_a_tiny_model(monkeypatch):
    import torch
    from bridge.music.evaluate import evaluate
    from bridge.music.model import MusicConfig, MusicTransformer

    torch.manual_seed(0)
    model = MusicTransformer(
        MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16, tonic=True, tonic_modes=2)
    ).eval()
    works = [_work(i) for i in range(4)]
    import bridge.music.evaluate as ev

    seen, tonics, cuts, real_sample = [], [], set(), ev.sample

    def sample(*a, **kw):  # the real sampler, noting the temperatures each take is drawn at
        drawn = (kw.get("temperature", 1.0), kw.get("note_temperature"), kw.get("top_p"))
        seen.append(drawn if kw.get("max_tokens") is None else "speed")
        if kw.get("tonic") is not None and kw.get("max_tokens") is None:  # not the speed runs
            tonics.append((kw["tonic"], kw["batch"], kw.get("key_guidance")))
            cuts.add(kw.get("key_cut_s"))
        return real_sample(*a, **kw)

    monkeypatch.setattr(ev, "sample", sample)
    res = evaluate(
        quick=True,
        model=model,
        works_val=works,
        works_test=works,
        log=lambda s: None,
        temperature=0.8,
        note_temperature=0.6,
        seeds=2,
        top_p=0.9,
        key_guidance=6,
        int8=True,
        key_cut_s=0.25,
    )
    assert {t for t in seen if t != "speed"} == {(0.8, 0.6, 0.9)} and seen.count((0.8, 0.6, 0.9)) >= 10
    assert set(res) == {
        "quick",
        "temperature",
        "top_p",
        "note_temperature",
        "nll",
        "control",
        "boundaries",
        "style",
        "over_seeds",
        "speed",
        "targets_met",
        "int8",
        "key_cut_s",
    }
    assert res["key_cut_s"] == 0.25 and cuts == {0.25}  # the keyed draws step aside as asked
    # a model with the tonic condition is also run with a seeded tonic per take, everywhere
    assert len(tonics) >= 10 and all(len(t) == b and set(t) <= set(range(12)) for t, b, _ in tonics)
    # ... once as given, once with the key guidance asked for
    assert {g for _, _, g in tonics} == {1.0, 6}
    # the first seed's row is the sections' own figures; the second is a fresh draw
    first, second = res["over_seeds"]["per_seed"]
    assert first["seed"] == 0 and second["seed"] == 1
    assert first["hit_rate_given"] == res["boundaries"]["plain"]["hit_rate_given"]
    assert first["grooving_similarity_rel_diff"] == res["style"]["grooving_similarity_rel_diff"]
    mean = res["over_seeds"]["mean"]
    assert abs(mean["hit_rate_given"] - (first["hit_rate_given"] + second["hit_rate_given"]) / 2) < 1e-3
    assert "mean over seeds: grooving_similarity_within_10pct" in res["targets_met"]
    # the key-guided variant is drawn over the seeds as well, its first row its sections' own
    kfirst, ksecond = res["over_seeds"]["key_guided_6"]["per_seed"]
    assert kfirst["hit_rate_given"] == res["boundaries"]["key_guided_6"]["hit_rate_given"] and ksecond["seed"] == 1
    assert "key_guided_6: mean over seeds: pitch_class_entropy_within_10pct" in res["targets_met"]
    assert res["temperature"] == 0.8 and res["note_temperature"] == 0.6
    for name in ("plain", "guidance_2", "steered_3.5", "tonic", "key_guided_6"):
        c = res["control"][name]
        assert all(c[k] is None or -1 <= c[k] <= 1 for k in ("rho_valence", "rho_arousal"))
        assert f"{name}: rho_valence_ge_0.7" in res["targets_met"]
    for name in ("plain", "guidance_2", "tonic", "key_guided_6"):
        b = res["boundaries"][name]
        assert 0 <= b["hit_rate_given"] <= 1 and 0 <= b["hit_rate_withheld"] <= 1
    assert "steered_3.5" not in res["boundaries"]  # steering moves pitches, not time
    assert res["control"]["switch"]["takes"] == 8
    changes = res["control"]["arousal_changes"]
    assert changes["takes"] == 8 and changes["sections_each"] == 4
    for name in ("plain", "guidance_2", "fresh_sections"):
        assert all(changes[name][k] is None or -1 <= changes[name][k] <= 1 for k in changes[name])
    assert 0 <= res["control"]["switch"]["share_in_asked_direction"] <= 1
    assert 0 <= res["control"]["switch"]["steered_3.5"]["share_in_asked_direction"] <= 1
    assert 0 <= res["control"]["switch"]["tonic"]["share_in_asked_direction"] <= 1
    assert "tonic: pitch_class_entropy_within_10pct" in res["targets_met"]
    assert "key_guided_6: grooving_similarity_within_10pct" in res["targets_met"]
    assert 0 <= res["control"]["switch"]["key_guided_6"]["share_in_asked_direction"] <= 1
    assert res["style"]["windows"] > 0 and res["style"]["grooving_similarity_real"] > 0
    assert res["style"]["steered_3.5"]["pitch_class_entropy_gen"] >= 0
    # the key-guided variant's own sampling speed, and its target
    assert res["speed"]["tokens_per_s_batch1_key_guided_6"] > 0
    assert "key_guided_6: speed_ge_400_tok_s" in res["targets_met"]
    assert res["speed"]["tokens_per_s_batch1"] > 0
    assert set(res["speed"]["precision"]) == {k for k in res["speed"] if k.startswith("tokens_per_s")}
    assert all(isinstance(v, bool) for v in res["targets_met"].values())


def test_spearman_matches_its_definition_with_ties():
    from bridge.music.evaluate import spearman, spearman_rho

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # ties share the mean rank: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4)
    expected = float(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1])
    assert math.isclose(spearman_rho([1, 2, 2, 3], [1, 2, 3, 4]), expected)
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_style_windows_are_filled_to_the_end():
    """A real window cut short by its work's end would read as sparse and calm next to takes
    that fill every second: only windows the music fills count."""
    short = _work(9)
    short["parts"] = [p[p[:, 0] < 8.0] for p in short["parts"]]  # two bars: about 5 s
    rng = np.random.default_rng(0)
    assert _style_windows(rng, [short], 4, 16.0) == ([], [])
    reals, conds = _style_windows(rng, [short, _work(0), _work(1), _work(2)], 2, 16.0)
    assert len(reals) == len(conds) == 2
    for notes in reals:
        assert max(n.start for n in notes) < 16.0 and max(n.start + n.duration for n in notes) > 14.0
