"""The transformer: the cache changes nothing, the conditions reach the output."""

import numpy as np
import torch

from bridge.music.model import (
    COND_DIM,
    MusicConfig,
    MusicTransformer,
    KVCache,
    cond_features,
    offset_bins,
    BIN_NONE,
    BIN_WITHHELD,
)
from bridge.music.sample import sample
from bridge.music.tokens import VOCAB_SIZE, BOS, EOS

CFG = MusicConfig(block_size=64, n_layer=2, n_head=2, n_embd=64, n_cond=16)


def _model(seed=0):
    torch.manual_seed(seed)
    m = MusicTransformer(CFG).eval()
    # Random init has near-zero weights: make the condition path clearly non-trivial.
    with torch.no_grad():
        for p in m.cond.parameters():
            p.normal_(0, 0.5)
    return m


def _inputs(T=20, v=0.5, a=-0.3, offset=1.0):
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(3, VOCAB_SIZE, (2, T), generator=g)
    idx[:, 0] = BOS
    off = np.linspace(offset, offset - 0.5, T)
    cond = torch.from_numpy(cond_features(v, a, off, 1.0, 1.0)).expand(2, T, -1).contiguous()
    return idx, cond


@torch.no_grad()
def test_kv_cache_matches_full_forward():
    m = _model()
    idx, cond = _inputs()
    full, _ = m(idx, cond)
    cache = KVCache(CFG, 2, "cpu")
    parts = [m(idx[:, :7], cond[:, :7], cache=cache)[0]]  # prefill, then one token at a time
    for t in range(7, idx.shape[1]):
        parts.append(m(idx[:, t : t + 1], cond[:, t : t + 1], cache=cache)[0])
    assert torch.allclose(full, torch.cat(parts, 1), atol=1e-5)


def test_rotary_turns_each_channel_pair_by_its_angle():
    from bridge.music.model import rotary, rotary_tables

    cos, sin = rotary_tables(16, 8)
    x = torch.randn(2, 3, 16, 8, generator=torch.Generator().manual_seed(0))
    inv = 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8))
    ang = torch.outer(torch.arange(16).float(), inv)  # (position, pair)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    want = torch.stack((x1 * ang.cos() - x2 * ang.sin(), x1 * ang.sin() + x2 * ang.cos()), -1).flatten(-2)
    assert torch.equal(rotary(x, cos, sin), want)
    # a rotation: lengths of pairs kept, and position 0 left alone
    assert torch.allclose(rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(rotary(x, cos, sin)[..., 0, :], x[..., 0, :])


def test_sampling_follows_the_model_dtype():
    m = _model().to(torch.bfloat16)
    kw = dict(
        duration_s=2.0, valence=0.3, arousal=0.2, boundaries=[1.0], batch=2, seed=5, max_tokens=40, return_tokens=True
    )
    takes, toks = sample(m, **kw)
    assert toks == sample(m, **kw)[1] and all(len(t) > 1 for t in toks)


def test_int8_copy_samples_like_the_float_model_and_leaves_it_alone():
    from bridge.music.model import quantized

    m = _model()
    q = quantized(m)
    assert type(m.blocks[0].attn.qkv) is torch.nn.Linear  # the model itself unchanged
    assert type(q.blocks[0].attn.qkv) is not torch.nn.Linear
    idx, cond = _inputs()
    with torch.no_grad():
        a, b = m(idx, cond)[0].log_softmax(-1), q(idx, cond)[0].log_softmax(-1)
    assert float((a.exp() * (a - b)).sum(-1).mean()) < 0.05  # nats per position
    kw = dict(
        duration_s=2.0, valence=0.3, arousal=0.2, boundaries=[1.0], batch=2, seed=5, max_tokens=40, return_tokens=True
    )
    assert sample(q, **kw)[1] == sample(q, **kw)[1]


@torch.no_grad()
def test_valence_arousal_and_offset_change_the_logits():
    m = _model()
    idx, cond = _inputs()
    base = m(idx, cond)[0]
    for other in (_inputs(v=-0.8)[1], _inputs(a=0.9)[1], _inputs(offset=0.02)[1]):
        assert (m(idx, other)[0] - base).abs().max() > 1e-3
    # Withholding the offset (mask 0) differs from giving it.
    withheld = torch.from_numpy(cond_features(0.5, -0.3, np.ones(idx.shape[1]), 1.0, 0.0))
    assert (m(idx, withheld.expand(2, -1, -1))[0] - base).abs().max() > 1e-3


def test_condition_path_starts_at_zero_and_still_learns():
    """A model from scratch starts as its unconditioned twin; the conditions enter by training."""
    torch.manual_seed(0)
    m = MusicTransformer(CFG)
    idx, cond = _inputs()
    with torch.no_grad():
        base = m(idx, cond)[0]
        for other in (_inputs(v=-0.8)[1], _inputs(a=0.9)[1], _inputs(offset=0.02)[1]):
            assert torch.equal(m(idx, other)[0], base)
    _, loss = m(idx[:, :-1], cond[:, :-1], targets=idx[:, 1:])
    loss.backward()
    assert m.cond[-1].weight.grad.abs().max() > 0 and m.offset.weight.grad.abs().max() > 0
    # Every other weight is drawn as it was with a random condition path.
    torch.manual_seed(0)
    r = MusicTransformer(MusicConfig(**{**CFG.__dict__, "cond_zero_init": False}))
    assert torch.equal(r.blocks[0].attn.qkv.weight, m.blocks[0].attn.qkv.weight)
    assert r.cond[-1].weight.abs().max() > 0


def test_condition_features_encode_no_boundary_and_withheld():
    c = cond_features(0.2, -0.4, np.array([0.0, 1.0, np.inf]), 1.0, 1.0)
    assert c.shape == (3, COND_DIM) and np.all(c[:, 9] == 0)  # no tonic given
    assert c[2, 4] == 1 and c[0, 4] == 0  # "no boundary ahead" flag
    assert c[0, 6] > c[1, 6] > c[2, 6] == 0  # closeness to the cut
    w = cond_features(0.2, -0.4, 1.0, 0.0, 0.0)
    assert np.all(w == 0)
    bins = offset_bins(torch.from_numpy(np.concatenate([c, w[None]])))
    assert bins.tolist() == [0, 100, BIN_NONE, BIN_WITHHELD]


def test_sampling_is_deterministic_for_a_seed_and_returns_notes():
    m = _model()
    kw = dict(
        duration_s=3.0,
        valence=[(0, -0.5), (1.5, 0.5)],
        arousal=0.2,
        boundaries=[1.0, 2.0],
        batch=3,
        max_tokens=150,
        temperature=1.0,
        top_p=0.9,
    )
    a, ta = sample(m, seed=5, return_tokens=True, **kw)
    b, tb = sample(m, seed=5, return_tokens=True, **kw)
    c, tc = sample(m, seed=6, return_tokens=True, **kw)
    assert ta == tb and a == b
    assert ta != tc
    assert len(a) == 3 and all(len(t) > 1 for t in ta)
    for take in a:
        assert all(0 <= n.start < 3.0 and n.duration > 0 for n in take)


def test_note_temperature_sharpens_pitch_alone():
    from bridge.music.sample import _log_probs
    from bridge.music.tokens import N_FAM, N_PITCH, OFF0, ON0

    torch.manual_seed(1)
    logits = torch.randn(3, VOCAB_SIZE) * 3
    logits[2, ON0 : ON0 + N_PITCH] = -torch.inf  # a family the constraint ruled out
    plain = torch.log_softmax(logits / 1.2, -1)
    lp = _log_probs(logits, 1.2, 0.5)
    assert not lp.isnan().any()
    assert torch.allclose(lp.exp().sum(-1), torch.ones(3))
    # what is not a note-on keeps its probability: when notes start, and how many
    assert torch.allclose(lp[:, :ON0], plain[:, :ON0]) and torch.allclose(lp[:, OFF0:], plain[:, OFF0:])
    fam = lambda x: x[:, ON0:OFF0].view(3, N_FAM, N_PITCH)
    # each family's note-on mass stays; its pitches are drawn more narrowly
    assert torch.allclose(fam(lp).logsumexp(-1).exp(), fam(plain).logsumexp(-1).exp(), atol=1e-6)
    ent = lambda x: -(x.softmax(-1) * x.log_softmax(-1)).nan_to_num().sum(-1)
    assert (ent(fam(lp))[:2] < ent(fam(plain))[:2]).all()
    assert torch.isneginf(lp[2, ON0 : ON0 + N_PITCH]).all()


def test_sampling_with_note_temperature_is_seeded_and_equal_temperatures_change_nothing():
    m = _model()
    kw = dict(duration_s=3.0, valence=0.3, arousal=0.2, boundaries=[1.0], batch=2, max_tokens=120)
    _, base = sample(m, seed=4, return_tokens=True, **kw)
    _, same = sample(m, seed=4, return_tokens=True, note_temperature=1.0, **kw)
    _, cold1 = sample(m, seed=4, return_tokens=True, note_temperature=0.3, **kw)
    _, cold2 = sample(m, seed=4, return_tokens=True, note_temperature=0.3, **kw)
    assert same == base and cold1 == cold2 and cold1 != base


def test_returned_tokens_end_where_each_take_ended():
    from bridge.music.tokens import token_times_ms

    m = _model()
    _, toks = sample(m, duration_s=1.5, batch=3, seed=2, max_tokens=2000, return_tokens=True)
    # every take ran to 1.5 s; its tokens say so, the last take's final shift included
    assert all(token_times_ms(t)[-1] >= 1500 for t in toks)


def test_a_take_without_prompt_can_start_later_on_the_timeline():
    m = _model()

    def no_end(logits, now_ms):  # an untrained model may end a take at once: run it to 3 s
        logits[:, EOS] = -torch.inf
        return logits

    takes = sample(m, duration_s=3.0, batch=2, seed=1, max_tokens=2000, prompt_ms=1500, constrain=no_end)
    assert all(t for t in takes)
    assert all(1.5 <= n.start < 3.0 for t in takes for n in t)


def test_sampling_runs_past_the_context_window():
    m = _model()
    _, toks = sample(m, duration_s=1e9, batch=2, seed=0, max_tokens=3 * CFG.block_size, return_tokens=True)
    assert all(len(t) > CFG.block_size for t in toks)


def test_guided_sampling_is_deterministic_and_differs_from_plain():
    m = _model()
    kw = dict(duration_s=2.0, valence=0.8, arousal=-0.5, boundaries=[1.0], batch=2, max_tokens=80)
    _, plain = sample(m, seed=3, return_tokens=True, **kw)
    _, g1 = sample(m, seed=3, return_tokens=True, guidance=2.0, **kw)
    _, g2 = sample(m, seed=3, return_tokens=True, guidance=2.0, **kw)
    assert g1 == g2 and g1 != plain
