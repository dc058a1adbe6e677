"""The tonic condition: a key's tonic given at every position, so valence can say the mode."""

import json

import numpy as np
import pytest
import torch

from bridge.music.data import TO_MAJOR, TO_MINOR, find_key, key_index, make_example, swap_mode
from bridge.music.model import MusicConfig, MusicTransformer, KVCache, cond_features
from bridge.music.sample import sample
from bridge.music.tokens import BOS, VOCAB_SIZE
from bridge.music.train import TrainConfig, grow_tonic, train, withhold

CFG = MusicConfig(block_size=64, n_layer=2, n_head=2, n_embd=64, n_cond=16, tonic=True)


def _inputs(tonic, T=20):
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(3, VOCAB_SIZE, (2, T), generator=g)
    idx[:, 0] = BOS
    cond = torch.from_numpy(cond_features(0.5, -0.3, np.linspace(1.0, 0.5, T), 1.0, 1.0, tonic))
    return idx, cond.expand(2, T, -1).contiguous()


def _trained_looking(seed=0):
    """A tonic model whose tonic vectors are not zero (as after training)."""
    torch.manual_seed(seed)
    m = MusicTransformer(CFG).eval()
    with torch.no_grad():
        m.tonic.weight.normal_(0, 0.5)
    return m


def test_tonic_column_codes_the_pitch_class_and_withheld():
    c = cond_features(0.2, -0.4, np.array([0.5, 1.0]), 1.0, 1.0, np.array([3, -1]))
    assert c[:, 9].tolist() == [4, 0]  # 1 + pitch class; 0 withheld
    assert cond_features(0.2, -0.4, 0.5, 1.0, 1.0, 14)[9] == 15  # 12-23: minor keys (tonic_modes 2)
    assert cond_features(0.2, -0.4, 0.5, 1.0, 1.0)[9] == 0  # default: withheld


@torch.no_grad()
def test_tonic_starts_at_zero_then_reaches_the_output_and_the_cache_agrees():
    torch.manual_seed(0)
    fresh = MusicTransformer(CFG).eval()
    idx, c_c = _inputs(0)
    _, c_g = _inputs(7)
    assert torch.equal(fresh(idx, c_c)[0], fresh(idx, c_g)[0])  # a fine-tune starts where it was
    m = _trained_looking()
    full = m(idx, c_c)[0]
    assert (m(idx, c_g)[0] - full).abs().max() > 1e-3
    cache = KVCache(CFG, 2, "cpu")
    parts = [m(idx[:, :5], c_c[:, :5], cache=cache)[0]]
    for t in range(5, idx.shape[1]):
        parts.append(m(idx[:, t : t + 1], c_c[:, t : t + 1], cache=cache)[0])
    assert torch.allclose(full, torch.cat(parts, 1), atol=1e-5)
    # A model without the condition reads the same vectors and ignores the tonic column.
    plain = MusicTransformer(MusicConfig(**{**CFG.__dict__, "tonic": False})).eval()
    assert torch.equal(plain(idx, c_c)[0], plain(idx, c_g)[0])


def test_withholding_valence_withholds_the_tonic_and_boundaries_keep_it():
    _, c = _inputs(4)
    assert torch.all(withhold(c)[..., 9] == 0)
    assert torch.all(withhold(c, boundary=False)[..., 9] == 0)
    assert torch.all(withhold(c, va=False)[..., 9] == 5)


def _work():
    from test_music_train import _work as work

    return work(0, minor=True)


def test_windows_carry_their_keys_tonic_as_asked():
    w = _work()
    # evaluation windows always carry it: the tonic of the window's best key
    x, c, _ = make_example(w, np.random.default_rng(0), 128, fixed={"transpose": 0, "octave": 0})
    from bridge.music.tokens import decode

    tonic, _ = find_key(decode([int(t) for t in x if t > 0]))
    assert np.all(c[:, 9] == tonic + 1)
    # models without the condition get none, and no draw is spent on it
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    _, c0, _ = make_example(w, r1, 128, p_drop_va=0, p_drop_b=0)
    assert np.all(c0[:, 9] == 0)
    _, c1, _ = make_example(w, r2, 128, p_drop_va=0, p_drop_b=0, p_drop_tonic=0.0)
    assert np.all(c1[:, 9] >= 1)
    # withheld valence withholds the tonic too
    _, c2, _ = make_example(w, np.random.default_rng(5), 128, p_drop_va=1.0, p_drop_b=0, p_drop_tonic=0.0)
    assert np.all(c2[:, 9] == 0)


def test_sampling_takes_a_tonic_per_take_and_refuses_one_the_model_cannot_use():
    m = _trained_looking()
    kw = dict(
        duration_s=2.0,
        valence=[0.5, -0.5],
        arousal=[0.0, 0.0],
        boundaries=[[], []],
        batch=2,
        max_tokens=60,
        per_take=True,
        seed=3,
        return_tokens=True,
    )
    a = sample(m, tonic=[0, [(0.0, 2), (1.0, 9)]], **kw)[1]
    assert a == sample(m, tonic=[0, [(0.0, 2), (1.0, 9)]], **kw)[1]
    assert a != sample(m, tonic=[6, 6], **kw)[1]
    plain = MusicTransformer(MusicConfig(**{**CFG.__dict__, "tonic": False})).eval()
    with pytest.raises(ValueError, match="no tonic condition"):
        sample(plain, tonic=[0, 0], **kw)


def test_a_model_without_the_tonic_grows_one_in_a_fine_tune(tmp_path):
    from test_music_train import _work as work

    works = [work(i, minor=i % 2 == 1) for i in range(6)]
    base_cfg = MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16)
    common = dict(batch_size=8, lr=3e-3, warmup=2, eval_windows=8, log_every=1000, bf16=False, seed=3)
    torch.manual_seed(0)
    base, _ = train(
        TrainConfig(out_dir=str(tmp_path / "base"), steps=10, eval_every=10, model=base_cfg, **common),
        works,
        works[:2],
        log=lambda s: None,
    )
    stem = str(tmp_path / "base" / "scorebridge-music")
    cfg = TrainConfig(
        out_dir=str(tmp_path / "grown"),
        steps=25,
        eval_every=25,
        init=stem,
        model=MusicConfig(**{**base_cfg.__dict__, "tonic": True}),
        **common,
    )
    grown, _ = train(cfg, works, works[:2], log=lambda s: None)
    meta = json.loads((tmp_path / "grown" / "scorebridge-music.json").read_text())
    assert meta["config"]["tonic"] is True and meta["train"]["p_drop_tonic"] == 0.3
    assert grown.tonic.weight.abs().max() > 0  # learnt from zero
    before = dict(base.state_dict())
    assert set(grown.state_dict()) - set(before) == {"tonic.weight"}


@torch.no_grad()
def test_local_attention_hears_only_the_last_tokens():
    torch.manual_seed(0)
    m = MusicTransformer(CFG).eval()
    idx, cond = _inputs(3, T=30)
    full = m(idx, cond)[0]
    assert torch.allclose(m(idx, cond, local=30)[0], full, atol=1e-5)  # everything in reach
    near = m(idx, cond, local=4)[0]
    assert torch.allclose(near[:, :4], full[:, :4], atol=1e-5)  # the first stretch
    assert (near[:, 4:] - full[:, 4:]).abs().max() > 1e-3
    # through both layers, position 25 hears only 24 and 25 (its stretch is 24-27)
    other = idx.clone()
    other[:, 23] = (other[:, 23] + 1) % VOCAB_SIZE
    moved = m(other, cond, local=4)[0]
    assert torch.allclose(moved[:, 24:], near[:, 24:], atol=1e-5)
    assert (moved[:, 23] - near[:, 23]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="training"):
        m(idx, cond, cache=KVCache(CFG, 2, "cpu"), local=4)


def test_local_batches_and_the_tonics_rate_are_recorded(tmp_path):
    from test_music_train import _work as work

    works = [work(i, minor=i % 2 == 1) for i in range(4)]
    cfg = TrainConfig(
        out_dir=str(tmp_path / "run"),
        steps=6,
        eval_every=6,
        batch_size=4,
        lr=3e-3,
        warmup=2,
        eval_windows=4,
        log_every=1000,
        bf16=False,
        seed=3,
        p_local=1.0,
        model=MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16, tonic=True),
    )
    torch.manual_seed(0)
    train(cfg, works, works[:2], log=lambda s: None)
    meta = json.loads((tmp_path / "run" / "scorebridge-music.json").read_text())["train"]
    assert meta["p_local"] == 1.0 and meta["local_tokens"] == [16, 32, 64]
    assert meta["tonic_lr_mult"] == 10.0


KEY_CFG = MusicConfig(**{**CFG.__dict__, "tonic_modes": 2})


def test_key_index_adds_the_mode_only_for_models_that_tell_it():
    assert key_index((2, TO_MINOR)) == 2 and key_index((2, TO_MAJOR)) == 2  # a major, a minor key
    assert key_index((2, TO_MINOR), 2) == 2 and key_index((2, TO_MAJOR), 2) == 14
    assert key_index((2, TO_MINOR), 2, swapped=True) == 14  # its parallel minor
    assert key_index((2, TO_MAJOR), 2, swapped=True) == 2


def test_key_windows_carry_the_mode_and_follow_the_switches():
    w = _work()  # a minor work
    x, c, _ = make_example(w, np.random.default_rng(0), 128, fixed={"transpose": 0, "octave": 0}, key_modes=2)
    from bridge.music.tokens import decode

    key = find_key(decode([int(t) for t in x if t > 0]))
    assert key[1] is TO_MAJOR and np.all(c[:, 9] == key[0] + 13)  # 1 + 12 + tonic
    # the same window swapped to major carries the major key
    major = find_key(swap_mode(decode([int(t) for t in x if t > 0])))
    assert major[1] is TO_MINOR
    # with switches every stretch carries its own mode, on the same tonic
    seen = set()
    for s in range(20):
        _, cs, _ = make_example(
            w,
            np.random.default_rng(s),
            256,
            p_drop_va=0,
            p_drop_b=0,
            p_drop_tonic=0.0,
            aug={"mode_switch": 1.0},
            key_modes=2,
        )
        codes = set(np.unique(cs[:, 9]).astype(int).tolist())
        assert len(codes) <= 2 and 0 not in codes
        if len(codes) == 2:
            lo, hi = sorted(codes)
            assert hi - lo == 12
            v = cs[:, 0]
            assert v[cs[:, 9] == hi].mean() < v[cs[:, 9] == lo].mean()  # the minor stretches: lower valence
            seen.add(s)
    assert seen, "no window switched mode"


@torch.no_grad()
def test_tonic_vectors_grow_into_key_vectors_that_start_where_they_were():
    tonal = _trained_looking()
    keyed = grow_tonic(tonal, 2).eval()
    assert keyed.tonic.weight.shape[0] == 25
    idx, c_t = _inputs(5)
    _, c_major = _inputs(5)
    _, c_minor = _inputs(17)
    ref = tonal(idx, c_t)[0]
    assert torch.equal(keyed(idx, c_major)[0], ref) and torch.equal(keyed(idx, c_minor)[0], ref)
    # a model without the condition grows zero vectors: the same as before it
    plain = MusicTransformer(MusicConfig(**{**CFG.__dict__, "tonic": False})).eval()
    assert torch.equal(grow_tonic(plain, 2).eval()(idx, c_minor)[0], plain(idx, c_t)[0])
    # once trained apart, the two modes of a tonic differ
    keyed.tonic.weight[18].normal_(0, 0.5)  # key 17 (F minor) is code 18
    assert (keyed(idx, c_minor)[0] - ref).abs().max() > 1e-3


def test_sampling_gives_a_key_model_the_minor_key_below_zero_valence():
    torch.manual_seed(0)
    m = MusicTransformer(KEY_CFG).eval()
    seen = []
    m.tonic.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    sample(
        m,
        1.0,
        valence=[0.6, -0.6, 0.6],
        arousal=[0.0] * 3,
        boundaries=[[]] * 3,
        batch=3,
        max_tokens=8,
        per_take=True,
        seed=1,
        tonic=[2, 2, 14],
    )
    first = (seen[0][:, 0] - 1).tolist()
    assert first == [2, 14, 2]  # D major, D minor; a tonic is a pitch class (14 -> 2)
    assert all(torch.equal(s[:, -1], seen[0][:, 0]) for s in seen)
    seen.clear()
    sample(
        m, 1.0, valence=-0.6, arousal=0.0, batch=1, max_tokens=4, seed=1, tonic=[(0.0, 2)], use_valence_arousal=False
    )
    assert all(torch.all(s == 0) for s in seen)  # withheld with valence


def test_key_guidance_moves_only_which_pitch_sounds():
    from bridge.music.sample import _pitch_guided
    from bridge.music.tokens import N_FAM, N_PITCH, OFF0, ON0

    g = torch.Generator().manual_seed(0)
    lc, lk = torch.randn(3, VOCAB_SIZE, generator=g), torch.randn(3, VOCAB_SIZE, generator=g)
    out = _pitch_guided(lc, lc, lk, 4.0, floor=0)
    p, q = lc.softmax(-1), out.softmax(-1)
    # everything but the pitch keeps its probability: time shifts, note-offs, each family's note-on mass
    assert torch.allclose(p[:, :ON0], q[:, :ON0], atol=1e-6) and torch.allclose(p[:, OFF0:], q[:, OFF0:], atol=1e-6)
    fam = lambda x: x[:, ON0:OFF0].view(-1, N_FAM, N_PITCH)
    assert torch.allclose(fam(p).sum(-1), fam(q).sum(-1), atol=1e-6)
    # within a family, the pitch follows log p(no key) + w (log p(key) - log p(no key))
    on_c, on_k = fam(lc).log_softmax(-1), fam(lk).log_softmax(-1)
    assert torch.allclose(fam(q) / fam(q).sum(-1, keepdim=True), (on_k + 4 * (on_c - on_k)).softmax(-1), atol=1e-5)
    assert torch.allclose(_pitch_guided(lc, lc, lk, 1.0, floor=0).softmax(-1), p, atol=1e-6)  # weight 1: unchanged


def test_key_guidance_draws_only_pitches_the_keyed_row_finds_plausible():
    from bridge.music.sample import KEY_FLOOR, _pitch_guided
    from bridge.music.tokens import N_FAM, N_PITCH, OFF0, ON0

    g = torch.Generator().manual_seed(1)
    lc, lk = torch.randn(2, VOCAB_SIZE, generator=g), torch.randn(2, VOCAB_SIZE, generator=g)
    fam = lambda x: x[:, ON0:OFF0].view(-1, N_FAM, N_PITCH)
    keyed = fam(lc).softmax(-1)
    low = keyed < KEY_FLOOR
    assert low.any() and (~low).sum() > 2 * N_FAM  # the floor has pitches to drop and to keep
    q = _pitch_guided(lc, lc, lk, 4.0).softmax(-1)
    assert torch.all(fam(q)[low] == 0) and torch.all(fam(q)[~low] > 0)
    # the kept pitches keep their guided proportions, and every family its note-on mass
    free = fam(_pitch_guided(lc, lc, lk, 4.0, floor=0).softmax(-1)).masked_fill(low, 0)
    share = lambda x: x / x.sum(-1, keepdim=True)
    assert torch.allclose(share(fam(q)), share(free), atol=1e-5)
    assert torch.allclose(fam(q).sum(-1), fam(lc.softmax(-1)).sum(-1), atol=1e-6)
    # a floor above every pitch leaves the keyed row's most likely one, never nothing
    only = fam(_pitch_guided(lc, lc, lk, 4.0, floor=0.99).softmax(-1))
    assert torch.all((only > 0).sum(-1) == 1) and torch.equal(only.argmax(-1), keyed.argmax(-1))


def test_sampling_with_key_guidance_is_repeatable_and_needs_the_condition():
    torch.manual_seed(0)
    m = MusicTransformer(KEY_CFG).eval()
    with torch.no_grad():
        m.tonic.weight.normal_(0, 0.5)
    kw = dict(
        duration_s=2.0,
        valence=[0.5, -0.5],
        arousal=[0.0, 0.0],
        boundaries=[[], []],
        batch=2,
        max_tokens=60,
        per_take=True,
        seed=3,
        return_tokens=True,
        tonic=[0, 7],
    )
    a = sample(m, key_guidance=6.0, **kw)[1]
    assert a == sample(m, key_guidance=6.0, **kw)[1]
    assert a != sample(m, **kw)[1]
    with pytest.raises(ValueError, match="needs a tonic"):
        sample(m, 1.0, key_guidance=3.0, max_tokens=4)
    with pytest.raises(ValueError, match="key_floor"):
        sample(m, key_guidance=6.0, key_floor=1.5, **kw)
    plain = MusicTransformer(MusicConfig(**{**CFG.__dict__, "tonic": False})).eval()
    with pytest.raises(ValueError, match="no tonic condition"):
        sample(plain, 1.0, key_guidance=3.0, max_tokens=4)


def test_key_guidance_steps_aside_where_a_cut_is_due():
    torch.manual_seed(0)
    m = MusicTransformer(KEY_CFG).eval()
    with torch.no_grad():
        m.tonic.weight.normal_(0, 0.5)
    # one precision throughout: "auto" picks it by the rows a step runs (sample.FP32_MAX_ROWS),
    # and these runs differ in rows (a key-guided take is two)
    kw = dict(
        duration_s=2.0,
        valence=[0.5, -0.5],
        arousal=[0.0, 0.0],
        batch=2,
        max_tokens=60,
        per_take=True,
        seed=3,
        return_tokens=True,
        tonic=[0, 7],
        precision="fp32",
    )
    toks = lambda bounds, **k: sample(m, boundaries=bounds, **kw, **k)[1]
    far, one = [[100.0], [100.0]], [[100.0], []]
    given, guided = toks(far), toks(far, key_guidance=6.0, key_cut_s=0.0)
    assert given != guided
    # a cut within reach all along: every pitch as the model gives it with the key
    assert toks(far, key_guidance=6.0, key_cut_s=1000.0) == given
    # per take: the take with a cut ahead steps aside, the other stays guided
    mixed = toks(one, key_guidance=6.0, key_cut_s=1000.0)
    assert mixed[0] == toks(one)[0] and mixed[1] == toks(one, key_guidance=6.0, key_cut_s=0.0)[1]
    # no cut in reach, or the cuts withheld (the sampler must not tell the takes of them): guided
    assert toks(far, key_guidance=6.0) == guided  # 0.5 s: the cut is 98 s off
    assert toks(far, key_guidance=6.0, key_cut_s=1000.0, use_boundaries=False) == toks(
        far, key_guidance=6.0, key_cut_s=0.0, use_boundaries=False
    )
    with pytest.raises(ValueError, match="key_cut_s"):
        toks(far, key_guidance=6.0, key_cut_s=-1.0)


def test_modulation_moves_the_music_after_each_switch_and_the_key_with_it():
    from bridge.music.data import draw_shifts, modulate
    from bridge.music.tokens import Note, PITCH_HI, PITCH_LO

    notes = [
        Note(0.0, 1.0, 60, 80, "piano"),
        Note(1.0, 1.0, 64, 80, "piano"),
        Note(1.0, 0.5, 36, 90, "drums"),
        Note(2.0, 1.0, 106, 80, "melody"),
        Note(3.0, 1.0, 22, 80, "bass"),
    ]
    out = modulate(notes, [1000, 2500], [4, -3])
    assert [n.pitch for n in out] == [60, 36, 68, 110 - 12, 19 + 12]  # drums stay; off the keyboard: an octave back
    assert all(PITCH_LO <= n.pitch <= PITCH_HI for n in out)
    shifts = draw_shifts(200, np.random.default_rng(0))
    assert all(-5 <= k <= 6 for k in shifts) and shifts[0] != 0
    assert all(a != b for a, b in zip(shifts, shifts[1:]))
    w = _work()
    seen = 0
    for s in range(10):
        _, c, _ = make_example(
            w,
            np.random.default_rng(s),
            256,
            p_drop_va=0,
            p_drop_b=0,
            p_drop_tonic=0.0,
            aug={"key_switch": 1.0},
            key_modes=2,
        )
        codes = c[:, 9].astype(int)
        assert np.all(codes >= 1) and len(set((codes - 1) // 12)) == 1  # one mode: only the tonic moves
        seen += int(len(np.unique(codes)) > 1)
    assert seen >= 5
    # models without the option draw nothing for it: their windows stay what they were
    a = make_example(w, np.random.default_rng(1), 256, aug={"mode_swap": 0.5})
    b = make_example(w, np.random.default_rng(1), 256, aug={"mode_swap": 0.5, "key_switch": 0.0})
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_kept_takes_of_a_key_model_are_written_in_seeded_tonics_with_key_guidance(monkeypatch):
    from bridge.music import selftrain

    torch.manual_seed(0)
    m = MusicTransformer(KEY_CFG).eval()
    seen, real = [], selftrain.sample

    def spy(*a, **kw):  # the real sampler, noting the tonic and key guidance of each call
        seen.append((kw.get("tonic"), kw.get("key_guidance"), kw["batch"]))
        return real(*a, **kw)

    monkeypatch.setattr(selftrain, "sample", spy)
    targets = selftrain.draw_targets(3, 4.0, np.random.default_rng(0))
    best = selftrain.generate(m, targets, 2, 2.0, seed=5, batch=8, log=lambda s: None, key_guidance=4.0)
    assert len(best) == 3 and all(len(b[2]) == 2 for b in best)
    tonics = selftrain.target_tonics(3, 5)
    assert tonics == selftrain.target_tonics(3, 5) and set(tonics) <= set(range(12))
    assert all(g == 4.0 and len(t) == b and set(t) <= set(tonics) for t, g, b in seen)
    # a model without the condition is sampled as before
    seen.clear()
    plain = MusicTransformer(MusicConfig(**{**CFG.__dict__, "tonic": False})).eval()
    selftrain.generate(plain, targets, 1, 2.0, seed=5, batch=8, log=lambda s: None)
    assert all(t is None and g is None for t, g, _ in seen)
