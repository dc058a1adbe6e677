"""The sampler's fast paths change nothing they should not: the one-token step, the bf16
packed copy and the numpy draw."""

import numpy as np
import pytest
import torch

from bridge.music.model import KVCache, MusicConfig, MusicTransformer, PackedMLP, cond_features, packable, packed
from bridge.music.sample import _top_p, sample
from bridge.music.tokens import BOS, VOCAB_SIZE

CFG = MusicConfig(block_size=64, n_layer=2, n_head=2, n_embd=64, n_cond=16, tonic=True, tonic_modes=2)
needs_bf16 = pytest.mark.skipif(not packable(torch.nn.Linear(2, 2)),
                                reason="this CPU's oneDNN does no bf16 (packed copies need it)")


def _model(seed=0):
    torch.manual_seed(seed)
    m = MusicTransformer(CFG).eval()
    with torch.no_grad():   # random init leaves the condition path at zero: make it matter
        for p in [*m.cond.parameters(), m.offset.weight, m.tonic.weight]:
            p.normal_(0, 0.5)
    return m


def _inputs(T=30):
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(3, VOCAB_SIZE, (2, T), generator=g)
    idx[:, 0] = BOS
    cond = cond_features(np.array([[0.5], [-0.4]]), 0.2, np.linspace(1.0, 0.2, T), 1.0, 1.0,
                         np.array([[3], [15]]))
    return idx, torch.from_numpy(cond)


def _steps(step, m, idx, cond, prefill=20):
    cache = KVCache(CFG, 2, "cpu")
    out = [m(idx[:, :prefill], cond[:, :prefill], cache=cache)[0]]
    for t in range(prefill, idx.shape[1]):
        out.append(step(m, idx[:, t:t + 1], cond[:, t:t + 1], cache))
    return torch.cat(out, 1), cache


@torch.no_grad()
def test_step_gives_what_the_cached_forward_gives_to_the_bit():
    m, (idx, cond) = _model(), _inputs()
    a, ca = _steps(lambda m, x, c, k: m(x, c, cache=k)[0], m, idx, cond)
    b, cb = _steps(lambda m, x, c, k: m.step(x, c, k), m, idx, cond)
    assert torch.equal(a, b)
    assert ca.pos == cb.pos and all(torch.equal(x, y) for x, y in zip(ca.k + ca.v, cb.k + cb.v))
    plan = m.step_plan()   # made once, as the sampler does, and stepped with throughout
    assert torch.equal(_steps(lambda m, x, c, k: m.step(x, c, k, plan), m, idx, cond)[0], a)
    with pytest.raises(ValueError, match="one token per row"):
        m.step(idx[:, :2], cond[:, :2], KVCache(CFG, 2, "cpu"))


@needs_bf16
@torch.no_grad()
def test_packed_copy_computes_what_bf16_autocast_does_and_leaves_the_model_alone():
    m, (idx, cond) = _model(), _inputs()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    p = packed(m)
    assert type(m.blocks[0].attn.qkv) is torch.nn.Linear
    assert all(isinstance(b.mlp, PackedMLP) for b in p.blocks)   # the fused feed-forward is what runs
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = m(idx, cond)[0].float().log_softmax(-1)
    full = m(idx, cond)[0].log_softmax(-1)
    got = p(idx, cond)[0].log_softmax(-1)
    kl = lambda a, b: float((a.exp() * (a - b)).sum(-1).mean())
    # as close to the float model as training's own precision is, and close in absolute terms
    assert kl(full, got) < 2 * kl(full, ref) + 1e-4 and kl(full, got) < 0.01
    plan = p.step_plan()
    assert torch.equal(_steps(lambda m, x, c, k: m.step(x, c, k, plan), p, idx, cond)[0],
                       _steps(lambda m, x, c, k: m(x, c, cache=k)[0], p, idx, cond)[0])


@needs_bf16
def test_sampling_precision_picks_the_copy_and_repacks_a_model_changed_since():
    m = _model()
    kw = dict(duration_s=2.0, valence=0.6, arousal=0.2, boundaries=[1.0], batch=2, seed=3,
              max_tokens=60, return_tokens=True, tonic=2, key_guidance=4.0)
    bf, fp = sample(m, precision="bf16", **kw)[1], sample(m, precision="fp32", **kw)[1]
    assert sample(m, **kw)[1] == bf == sample(m, precision="bf16", **kw)[1]   # "auto" packs here
    assert sample(m, precision="fp32", **kw)[1] == fp
    with torch.no_grad():   # an in-place change, as a training step makes
        m.head.weight.mul_(-1.0)
    assert sample(m, precision="bf16", **kw)[1] != bf
    with pytest.raises(ValueError, match="precision"):
        sample(m, precision="fp16", **kw)


def test_a_model_packing_cannot_serve_is_sampled_as_it_is():
    m = _model().to(torch.bfloat16)
    assert not packable(m)
    kw = dict(duration_s=1.0, batch=1, seed=2, max_tokens=30, return_tokens=True)
    assert sample(m, **kw)[1] == sample(m, precision="fp32", **kw)[1]
    with pytest.raises(RuntimeError, match="bf16"):
        packed(m)


def test_the_draw_keeps_to_the_nucleus_in_proportion():
    rng = np.random.default_rng(0)
    probs = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.01] + [0.0] * (VOCAB_SIZE - 5))
    logits = probs.log().expand(2, -1).contiguous()
    n = 20000
    draws = np.concatenate([_top_p(logits, 1.0, 0.9, rng) for _ in range(n // 2)])
    counts = np.bincount(draws, minlength=VOCAB_SIZE)
    assert set(np.flatnonzero(counts)) == {0, 1, 2}    # 0.5 + 0.3 < 0.9: the third is needed, no more
    share = counts[:3] / n
    assert np.allclose(share, np.array([0.5, 0.3, 0.15]) / 0.95, atol=0.015)
    every = np.bincount(np.concatenate([_top_p(logits, 1.0, 1.0, rng) for _ in range(n // 2)]),
                        minlength=VOCAB_SIZE)
    assert set(np.flatnonzero(every)) == {0, 1, 2, 3, 4}   # zero-probability tokens never
    assert np.allclose(every[:5] / n, probs[:5].numpy(), atol=0.015)


def test_the_draw_follows_the_seed_and_refuses_a_step_with_nothing_left():
    logits = torch.randn(3, VOCAB_SIZE)
    a = [_top_p(logits, 0.8, 0.95, np.random.default_rng(7)) for _ in range(2)]
    assert np.array_equal(a[0], a[1]) and a[0].shape == (3,)
    hot = _top_p(logits, 1e-9, 0.95, np.random.default_rng(1))   # temperature ~0: the argmax
    assert np.array_equal(hot, logits.argmax(-1).numpy())
    with pytest.raises(ValueError, match="ruled out"):
        _top_p(torch.full((1, VOCAB_SIZE), -torch.inf), 1.0, 0.95, np.random.default_rng(0))
