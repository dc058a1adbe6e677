"""The sampler's fast paths change nothing they should not: the one-token step, the bf16
packed copy, the float32 model at a few rows and the numpy draw."""

import numpy as np
import pytest
import torch

from bridge.music import sample as sampler
from bridge.music.model import KVCache, MusicConfig, MusicTransformer, PackedMLP, cond_features, packable, packed
from bridge.music.sample import _top_p, sample, sampling_precision
from bridge.music.tokens import BOS, VOCAB_SIZE

CFG = MusicConfig(block_size=64, n_layer=2, n_head=2, n_embd=64, n_cond=16, tonic=True, tonic_modes=2)
needs_bf16 = pytest.mark.skipif(
    not packable(torch.nn.Linear(2, 2)), reason="this CPU's oneDNN does no bf16 (packed copies need it)"
)


def _model(seed=0):
    torch.manual_seed(seed)
    m = MusicTransformer(CFG).eval()
    with torch.no_grad():  # random init leaves the condition path at zero: make it matter
        for p in [*m.cond.parameters(), m.offset.weight, m.tonic.weight]:
            p.normal_(0, 0.5)
    return m


def _inputs(T=30):
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(3, VOCAB_SIZE, (2, T), generator=g)
    idx[:, 0] = BOS
    cond = cond_features(np.array([[0.5], [-0.4]]), 0.2, np.linspace(1.0, 0.2, T), 1.0, 1.0, np.array([[3], [15]]))
    return idx, torch.from_numpy(cond)


def _steps(step, m, idx, cond, prefill=20):
    cache = KVCache(CFG, 2, "cpu")
    out = [m(idx[:, :prefill], cond[:, :prefill], cache=cache)[0]]
    for t in range(prefill, idx.shape[1]):
        out.append(step(m, idx[:, t : t + 1], cond[:, t : t + 1], cache))
    return torch.cat(out, 1), cache


@torch.no_grad()
def test_step_gives_what_the_cached_forward_gives_to_the_bit():
    m, (idx, cond) = _model(), _inputs()
    a, ca = _steps(lambda m, x, c, k: m(x, c, cache=k)[0], m, idx, cond)
    b, cb = _steps(lambda m, x, c, k: m.step(x, c, k), m, idx, cond)
    assert torch.equal(a, b)
    assert ca.pos == cb.pos and all(torch.equal(x, y) for x, y in zip(ca.k + ca.v, cb.k + cb.v))
    plan = m.step_plan()  # made once, as the sampler does, and stepped with throughout
    assert torch.equal(_steps(lambda m, x, c, k: m.step(x, c, k, plan), m, idx, cond)[0], a)
    with pytest.raises(ValueError, match="one token per row"):
        m.step(idx[:, :2], cond[:, :2], KVCache(CFG, 2, "cpu"))


@torch.no_grad()
def test_step_reuses_an_unchanged_condition_and_still_gives_the_forward_values():
    m, (idx, cond) = _model(), _inputs()
    # the steps (positions 20-29) see time stand still for a few tokens at a time
    cond = cond[:, list(range(20)) + [20, 20, 21, 21, 21, 22, 23, 23, 24, 24]]
    a, _ = _steps(lambda m, x, c, k: m(x, c, cache=k)[0], m, idx, cond)
    seen = []

    def step(m, x, c, k):
        out = m.step(x, c, k)
        seen.append(k.last_cond)
        return out

    b, _ = _steps(step, m, idx, cond)
    # the step path and the forward path run different kernels (bit-equal on some CPUs, not
    # on AMD without AVX-512): the same values within float32 rounding, not the same bits
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert seen[1] is seen[0] and seen[2] is not seen[1] and seen[4] is seen[3] is seen[2]
    assert torch.equal(seen[2][0], cond[:, 22:23]) and len({id(x) for x in seen}) == 5


@torch.no_grad()
def test_the_step_plan_calls_the_layers_directly_with_the_same_bits():
    m = _model()
    x = torch.randn(2, 1, CFG.n_embd)
    for entry, block in zip(m.step_plan(), m.blocks):
        qkv_of, proj_of, mlp_of = entry[3], entry[4], entry[8]
        assert not hasattr(mlp_of, "__self__")  # not the module's own forward
        assert torch.equal(qkv_of(x), block.attn.qkv(x)) and torch.equal(proj_of(x), block.attn.proj(x))
        assert torch.equal(mlp_of(x), block.mlp(x))
    train = MusicTransformer(MusicConfig(**{**CFG.__dict__, "dropout": 0.5})).train()
    assert all(e[8] == b.mlp.forward for e, b in zip(train.step_plan(), train.blocks))  # dropout live


@needs_bf16
@torch.no_grad()
def test_packed_copy_computes_what_bf16_autocast_does_and_leaves_the_model_alone():
    m, (idx, cond) = _model(), _inputs()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    p = packed(m)
    assert type(m.blocks[0].attn.qkv) is torch.nn.Linear
    assert all(isinstance(b.mlp, PackedMLP) for b in p.blocks)  # the fused feed-forward is what runs
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = m(idx, cond)[0].float().log_softmax(-1)
    full = m(idx, cond)[0].log_softmax(-1)
    got = p(idx, cond)[0].log_softmax(-1)
    kl = lambda a, b: float((a.exp() * (a - b)).sum(-1).mean())
    # as close to the float model as training's own precision is, and close in absolute terms
    assert kl(full, got) < 2 * kl(full, ref) + 1e-4 and kl(full, got) < 0.01
    plan = p.step_plan()
    assert torch.equal(
        _steps(lambda m, x, c, k: m.step(x, c, k, plan), p, idx, cond)[0],
        _steps(lambda m, x, c, k: m(x, c, cache=k)[0], p, idx, cond)[0],
    )


@needs_bf16
def test_sampling_precision_picks_the_copy_and_repacks_a_model_changed_since():
    m = _model()
    kw = dict(
        duration_s=2.0,
        valence=0.6,
        arousal=0.2,
        boundaries=[1.0],
        batch=4,
        seed=3,
        max_tokens=60,
        return_tokens=True,
        tonic=2,
        key_guidance=4.0,
    )
    bf, fp = sample(m, precision="bf16", **kw)[1], sample(m, precision="fp32", **kw)[1]
    assert sample(m, **kw)[1] == bf == sample(m, precision="bf16", **kw)[1]  # "auto" packs 8 rows
    assert sample(m, precision="fp32", **kw)[1] == fp
    with torch.no_grad():  # an in-place change, as a training step makes
        m.head.weight.mul_(-1.0)
    assert sample(m, precision="bf16", **kw)[1] != bf
    with pytest.raises(ValueError, match="precision"):
        sample(m, precision="fp16", **kw)


@needs_bf16
def test_auto_precision_samples_a_few_rows_in_float32_where_the_thread_count_changes_no_bit(monkeypatch):
    m = _model()
    kw = dict(
        duration_s=2.0, valence=0.6, arousal=0.2, boundaries=[1.0], seed=3, max_tokens=60, return_tokens=True, tonic=2
    )
    # one row; six (two takes and their two guided twins each); eight (four takes and their twins)
    few, six, eight = dict(batch=1), dict(batch=2, guidance=2.0, key_guidance=4.0), dict(batch=4, guidance=2.0)
    with monkeypatch.context() as mp:
        mp.setattr(sampler, "_same_bits", lambda model, rows: True)
        assert [sampling_precision(m, "auto", r) for r in (1, 6, 7, 12)] == ["fp32", "fp32", "bf16", "bf16"]
        assert sample(m, **few, **kw)[1] == sample(m, precision="fp32", **few, **kw)[1]
        assert sample(m, **six, **kw)[1] == sample(m, precision="fp32", **six, **kw)[1]
        assert sample(m, **eight, **kw)[1] == sample(m, precision="bf16", **eight, **kw)[1]
        assert sampling_precision(m, "bf16", 1) == "bf16" and sampling_precision(m, "fp32", 8) == "fp32"
        mp.setattr(sampler, "_same_bits", lambda model, rows: False)  # say, MKL at 4 threads
        assert sampling_precision(m, "auto", 1) == "bf16"
        assert sample(m, **few, **kw)[1] == sample(m, precision="bf16", **few, **kw)[1]


def test_the_bits_check_runs_once_per_layer_kind_shape_and_count_and_gives_the_count_back():
    m, before = _model(), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert sampler._same_bits(m, 1)  # one thread: nothing to compare
        torch.set_num_threads(2)
        sampler._SAME_BITS.clear()
        first = sampler._same_bits(m, 2)
        assert torch.get_num_threads() == 2 and len(sampler._SAME_BITS) == 1
        (((layers, rows, n), same),) = sampler._SAME_BITS.items()
        assert (rows, n, same) == (2, 2, first)
        assert ("Linear", CFG.n_embd, CFG.n_embd, False, "float32") in layers
        assert ("Linear", 4 * CFG.n_embd, CFG.n_embd, True, "float32") in layers
        sampler._SAME_BITS[layers, rows, n] = "remembered"
        assert sampler._same_bits(m, 2) == "remembered"
        if packable(m):  # the packed copy's layers are their own kinds, checked apart
            sampler._same_bits(packed(m), 8)
            kinds = {k[0] for (ls, r, _) in sampler._SAME_BITS if r == 8 for k in ls}
            assert kinds == {"PackedLinear", "PackedMLP"}
    finally:
        sampler._SAME_BITS.clear()
        torch.set_num_threads(before)


def test_where_the_thread_count_would_change_bits_the_sampler_keeps_torchs_count(monkeypatch):
    m, before = _model(), torch.get_num_threads()
    kw = dict(
        duration_s=2.0,
        valence=0.6,
        arousal=0.2,
        boundaries=[1.0],
        seed=3,
        max_tokens=60,
        return_tokens=True,
        precision="fp32",
    )
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(sampler, "_same_bits", lambda model, rows: False)
        stats = {}
        toks = sample(m, stats=stats, **kw)[1]
        assert set(stats["threads"]) == {2} and toks == sample(m, threads=2, **kw)[1]
        stats = {}
        sample(m, threads=1, stats=stats, **kw)  # a count asked for is still kept
        assert set(stats["threads"]) == {1}
        monkeypatch.setattr(sampler, "_same_bits", lambda model, rows: True)
        sampler._THREAD_MEMORY.clear()
        stats = {}
        sample(m, stats=stats, **kw)
        assert set(stats["threads"]) == {1, 2}  # the trial runs both counts
    finally:
        sampler._THREAD_MEMORY.clear()
        torch.set_num_threads(before)


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
    assert set(np.flatnonzero(counts)) == {0, 1, 2}  # 0.5 + 0.3 < 0.9: the third is needed, no more
    share = counts[:3] / n
    assert np.allclose(share, np.array([0.5, 0.3, 0.15]) / 0.95, atol=0.015)
    every = np.bincount(np.concatenate([_top_p(logits, 1.0, 1.0, rng) for _ in range(n // 2)]), minlength=VOCAB_SIZE)
    assert set(np.flatnonzero(every)) == {0, 1, 2, 3, 4}  # zero-probability tokens never
    assert np.allclose(every[:5] / n, probs[:5].numpy(), atol=0.015)


def test_the_draw_follows_the_seed_and_refuses_a_step_with_nothing_left():
    logits = torch.randn(3, VOCAB_SIZE)
    a = [_top_p(logits, 0.8, 0.95, np.random.default_rng(7)) for _ in range(2)]
    assert np.array_equal(a[0], a[1]) and a[0].shape == (3,)
    hot = _top_p(logits, 1e-9, 0.95, np.random.default_rng(1))  # temperature ~0: the argmax
    assert np.array_equal(hot, logits.argmax(-1).numpy())
    with pytest.raises(ValueError, match="ruled out"):
        _top_p(torch.full((1, VOCAB_SIZE), -torch.inf), 1.0, 0.95, np.random.default_rng(0))
