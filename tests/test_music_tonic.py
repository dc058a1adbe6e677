"""The tonic condition: a key's tonic given at every position, so valence can say the mode."""

import json

import numpy as np
import pytest
import torch

from bridge.music.data import find_key, make_example
from bridge.music.model import MusicConfig, MusicTransformer, KVCache, cond_features
from bridge.music.sample import sample
from bridge.music.tokens import BOS, VOCAB_SIZE
from bridge.music.train import TrainConfig, train, withhold

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
    assert c[:, 9].tolist() == [4, 0]                     # 1 + pitch class; 0 withheld
    assert cond_features(0.2, -0.4, 0.5, 1.0, 1.0, 14)[9] == 3   # any octave: pitch class 2
    assert cond_features(0.2, -0.4, 0.5, 1.0, 1.0)[9] == 0        # default: withheld


@torch.no_grad()
def test_tonic_starts_at_zero_then_reaches_the_output_and_the_cache_agrees():
    torch.manual_seed(0)
    fresh = MusicTransformer(CFG).eval()
    idx, c_c = _inputs(0)
    _, c_g = _inputs(7)
    assert torch.equal(fresh(idx, c_c)[0], fresh(idx, c_g)[0])   # a fine-tune starts where it was
    m = _trained_looking()
    full = m(idx, c_c)[0]
    assert (m(idx, c_g)[0] - full).abs().max() > 1e-3
    cache = KVCache(CFG, 2, "cpu")
    parts = [m(idx[:, :5], c_c[:, :5], cache=cache)[0]]
    for t in range(5, idx.shape[1]):
        parts.append(m(idx[:, t:t + 1], c_c[:, t:t + 1], cache=cache)[0])
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
    kw = dict(duration_s=2.0, valence=[0.5, -0.5], arousal=[0.0, 0.0], boundaries=[[], []],
              batch=2, max_tokens=60, per_take=True, seed=3, return_tokens=True)
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
    base, _ = train(TrainConfig(out_dir=str(tmp_path / "base"), steps=10, eval_every=10, model=base_cfg,
                                **common), works, works[:2], log=lambda s: None)
    stem = str(tmp_path / "base" / "scorebridge-music")
    cfg = TrainConfig(out_dir=str(tmp_path / "grown"), steps=25, eval_every=25, init=stem,
                      model=MusicConfig(**{**base_cfg.__dict__, "tonic": True}), **common)
    grown, _ = train(cfg, works, works[:2], log=lambda s: None)
    meta = json.loads((tmp_path / "grown" / "scorebridge-music.json").read_text())
    assert meta["config"]["tonic"] is True and meta["train"]["p_drop_tonic"] == 0.3
    assert grown.tonic.weight.abs().max() > 0          # learnt from zero
    before = dict(base.state_dict())
    assert set(grown.state_dict()) - set(before) == {"tonic.weight"}


@torch.no_grad()
def test_local_attention_hears_only_the_last_tokens():
    torch.manual_seed(0)
    m = MusicTransformer(CFG).eval()
    idx, cond = _inputs(3, T=30)
    full = m(idx, cond)[0]
    assert torch.allclose(m(idx, cond, local=30)[0], full, atol=1e-5)   # everything in reach
    near = m(idx, cond, local=4)[0]
    assert torch.allclose(near[:, :4], full[:, :4], atol=1e-5)           # the first stretch
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
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=6, eval_every=6, batch_size=4, lr=3e-3,
                      warmup=2, eval_windows=4, log_every=1000, bf16=False, seed=3, p_local=1.0,
                      model=MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16, tonic=True))
    torch.manual_seed(0)
    train(cfg, works, works[:2], log=lambda s: None)
    meta = json.loads((tmp_path / "run" / "scorebridge-music.json").read_text())["train"]
    assert meta["p_local"] == 1.0 and meta["local_tokens"] == [16, 32, 64]
    assert meta["tonic_lr_mult"] == 10.0
