"""The music transformer: decoder-only, rotary positions, key/value cache, and a continuous
condition at every position (valence, arousal, time left until the next boundary, and,
in models built with `tonic`, the tonic of the key the music is in).

Conditioning follows EMSYNC's "continuous concat": the condition vector goes through a
small MLP and is concatenated to the token embedding, so every position sees the target
emotion and how far away the next cut is. Withheld conditions are zeros with a mask bit
cleared; training drops them at random, so one set of weights is both the conditioned
model and its unconditioned twin.
"""

import functools
import hashlib
import json
import math
import platform
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bridge import resources
from bridge.mkl_warmup import warm_vml
from bridge.music.tokens import VOCAB_SIZE
import copy
import warnings
from bridge.errors import MissingModel

warm_vml()  # before rotary_tables or any other split call: see bridge/mkl_warmup.py

N_COND_FEATURES = 9  # the continuous part, read by the condition MLP
COND_DIM = 10  # + the key code (0 withheld, 1 + key index), looked up as a vector
OFFSET_LOG_SCALE_S = 0.05  # log1p(offset / 0.05): fine resolution near a cut, coarse far off
OFFSET_MAX_S = 10.0
# The offset is also looked up as a bin (10 ms steps up to 2 s, then 0.25 s steps): a
# learned vector per bin lets the model tie "310 ms to the cut" to "shift 310 ms" directly,
# which a small network learns far faster from the continuous features alone.
FINE_BINS, FINE_BIN_S = 200, 0.01
COARSE_BINS, COARSE_BIN_S = 32, 0.25
BIN_NONE = FINE_BINS + COARSE_BINS  # no boundary ahead
BIN_WITHHELD = BIN_NONE + 1  # boundary information withheld
N_OFFSET_BINS = BIN_WITHHELD + 1


def cond_features(valence, arousal, offset_s, va_mask, b_mask, tonic=-1) -> np.ndarray:
    """Condition vectors (..., COND_DIM) from broadcastable arrays.

    offset_s: seconds until the next boundary, np.inf where none lies ahead.
    va_mask / b_mask: 1 where valence-arousal / boundary information is given, 0 where withheld.
    tonic: the key, -1 where withheld: the tonic's pitch class 0-11, or for models that tell
    the mode too (MusicConfig.tonic_modes = 2) 12-23 for the minor key on pitch class k - 12.
    """
    v, a, off, vm, bm, tn = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (valence, arousal, offset_s, va_mask, b_mask, tonic))
    )
    ahead = np.isfinite(off) & (bm > 0)
    o = np.where(ahead, np.clip(off, 0.0, OFFSET_MAX_S), OFFSET_MAX_S)
    logo = np.log1p(o / OFFSET_LOG_SCALE_S) / math.log1p(OFFSET_MAX_S / OFFSET_LOG_SCALE_S)
    out = np.stack(
        [
            v * vm,
            a * vm,
            vm,
            bm,
            bm * (~ahead),
            ahead * logo,
            ahead * np.exp(-o / 0.1),
            ahead * np.exp(-o / 1.0),
            ahead * o,
            np.where(tn >= 0, np.mod(tn, 24) + 1, 0),
        ],
        axis=-1,
    )
    return out.astype(np.float32)


def offset_bins(cond: torch.Tensor) -> torch.Tensor:
    """The offset bin of each position, from its condition vector (see cond_features)."""
    o = cond[..., 8].float()
    fine = torch.round(o / FINE_BIN_S).long()
    coarse = FINE_BINS + ((o - FINE_BINS * FINE_BIN_S) / COARSE_BIN_S).long().clamp(0, COARSE_BINS - 1)
    bins = torch.where(fine < FINE_BINS, fine, coarse)
    bins = torch.where(cond[..., 4] > 0.5, torch.full_like(bins, BIN_NONE), bins)
    return torch.where(cond[..., 3] < 0.5, torch.full_like(bins, BIN_WITHHELD), bins)


@dataclass
class MusicConfig:
    vocab_size: int = VOCAB_SIZE
    block_size: int = 512  # context in tokens (~15-30 s of music)
    n_layer: int = 6
    n_head: int = 4
    n_embd: int = 256  # width of the residual stream
    n_cond: int = 64  # of which the condition takes this many (concat)
    cond_dim: int = N_COND_FEATURES
    dropout: float = 0.0
    cond_zero_init: bool = True  # condition path starts at zero (runs 1-6 and the first twins: random)
    tonic: bool = False  # a learned vector per tonic (12 + withheld) joins the condition
    tonic_modes: int = 1  # 2: one vector per key instead (12 major + 12 minor + withheld)


def rotary(x, cos, sin):
    """Rotate pairs of channels by position-dependent angles (RoFormer).

    cos and sin come per channel (rotary_tables): the pair (x1, x2) becomes
    (x1 cos - x2 sin, x2 cos + x1 sin) as x * cos + swapped(x) * (-sin, sin), four kernels
    instead of a dozen, which at one token a step is most of what rotation costs."""
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return x * cos + swapped * sin


def rotary_tables(block_size, head_dim):
    """(cos, sin) per position and channel for rotary(): each pair's angle twice, the sine
    negative on the pair's first channel."""
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    ang = torch.outer(torch.arange(block_size).float(), inv)
    return (ang.cos().repeat_interleave(2, dim=-1), torch.stack((-ang.sin(), ang.sin()), dim=-1).flatten(-2))


class KVCache:
    """Preallocated keys/values per layer; `pos` is how many positions are filled."""

    def __init__(self, cfg, batch, device, dtype=torch.float32):
        hd = cfg.n_embd // cfg.n_head
        shape = (batch, cfg.n_head, cfg.block_size, hd)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.pos = 0
        self.last_cond = None  # MusicTransformer.step: the last condition and its vector


def attend_one(q, k, v):
    """One new query per row against every key so far: softmax(q k^T / sqrt(d)) v as two
    plain matmuls. Why not scaled_dot_product_attention: on a CPU its kernel gives other last
    bits with another thread count, and the sampler changes the count as it goes
    (sample._Threads); these give the same bits with any count (tested), for about 6 us
    more a layer."""
    return torch.softmax((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5, -1) @ v


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.dropout = cfg.dropout

    def forward(self, x, cos, sin, cache=None, layer=0, local=None):
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        q, k = rotary(qkv[:2], cos, sin)  # queries and keys together
        v = qkv[2]
        if cache is None:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=local is None, attn_mask=local, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            p = cache.pos
            cache.k[layer][:, :, p : p + T] = k
            cache.v[layer][:, :, p : p + T] = v
            k, v = cache.k[layer][:, :, : p + T], cache.v[layer][:, :, : p + T]
            if T == 1:  # one new query sees everything before it: no mask needed
                y = attend_one(q, k, v)
            else:
                mask = torch.ones(T, p + T, dtype=torch.bool, device=x.device).tril(diagonal=p)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x, cos, sin, cache=None, layer=0, local=None):
        x = x + self.attn(self.ln1(x), cos, sin, cache, layer, local)
        return x + self.mlp(self.ln2(x))


def _direct(layer):
    """`layer`'s forward as the functional calls it makes, where it is a plain nn.Linear or
    a feed-forward of Linear, GELU, Linear and a Dropout that drops nothing; its forward
    method otherwise (a packed layer). The same operations in the same order: the same bits.
    Why: nn.Sequential calls each of its four modules through nn.Module's call wrapper, which
    at one token a step cost a tenth of a float32 step."""
    if type(layer) is nn.Linear:
        return functools.partial(F.linear, weight=layer.weight, bias=layer.bias)
    if (
        isinstance(layer, nn.Sequential)
        and len(layer) == 4
        and [type(m) for m in layer] == [nn.Linear, nn.GELU, nn.Linear, nn.Dropout]
        and (layer[3].p == 0 or not layer[3].training)
    ):
        up, gelu, down = _direct(layer[0]), layer[1].approximate, _direct(layer[2])
        return lambda h: down(F.gelu(up(h), approximate=gelu))
    return layer.forward


class MusicTransformer(nn.Module):
    def __init__(self, cfg: MusicConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd - cfg.n_cond)
        # A small MLP rather than one linear layer: "0.05 s to the cut" vs "2 s" is non-linear.
        self.cond = nn.Sequential(nn.Linear(cfg.cond_dim, cfg.n_cond), nn.GELU(), nn.Linear(cfg.n_cond, cfg.n_cond))
        self.offset = nn.Embedding(N_OFFSET_BINS, cfg.n_cond)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        cos, sin = rotary_tables(cfg.block_size, cfg.n_embd // cfg.n_head)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))
        if cfg.cond_zero_init:
            # Start as the unconditioned model (ControlNet's zero convolution, DiT's adaLN-Zero):
            # random condition embeddings are noise in a quarter of the residual stream that
            # slowed early training, so a run from scratch lagged its unconditioned twin.
            # Zeroed after the random init, so every other weight is drawn as before.
            nn.init.zeros_(self.cond[-1].weight)
            nn.init.zeros_(self.offset.weight)
        if cfg.tonic:
            # Why: the valence says major or minor, but a mode is a set of pitches only relative
            # to a tonic; without one the model must keep its key from context, and its takes
            # wander from key to key (docs/research/2026-12-07-music-model-card-history.md,
            # "A tonic condition, not shipped"). Zero at first (and made last, so every other
            # weight is drawn as without it): a fine-tune from a model without it starts
            # where that model was.
            # With tonic_modes = 2 a vector per key: the mode joins the tonic directly, so a
            # minor key's vector can name its pitches without first combining tonic and valence.
            self.tonic = nn.Embedding(1 + 12 * cfg.tonic_modes, cfg.n_cond)
            nn.init.zeros_(self.tonic.weight)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def _condition(self, cond):
        """Each position's condition vector (the concatenated part of its input)."""
        c = self.cond(cond[..., : self.cfg.cond_dim].to(self.tok.weight.dtype)) + self.offset(offset_bins(cond))
        if self.cfg.tonic:
            c = c + self.tonic(cond[..., N_COND_FEATURES].round().long().clamp(0, 12 * self.cfg.tonic_modes))
        return c

    def _embed(self, idx, cond):
        """Each position's input: its token's vector beside its condition's."""
        return torch.cat([self.tok(idx), self._condition(cond)], dim=-1)

    def step_plan(self):
        """What step() reads of each block, looked up once: layer norm 1 (weight, bias, eps),
        the qkv and output projections, layer norm 2, the feed-forward; the layers as direct
        calls (_direct). Why: at one token a step, nn.Module's attribute lookups and call
        wrappers took about a tenth of it. Valid until a submodule is replaced."""
        return [
            (
                b.ln1.weight,
                b.ln1.bias,
                b.ln1.eps,
                _direct(b.attn.qkv),
                _direct(b.attn.proj),
                b.ln2.weight,
                b.ln2.bias,
                b.ln2.eps,
                _direct(b.mlp),
            )
            for b in self.blocks
        ]

    def step(self, idx, cond, cache, plan=None):
        """One new token per row, idx (B, 1) and cond (B, 1, COND_DIM), after what `cache`
        holds -> logits (B, 1, V): what forward(idx, cond, cache=cache) gives, in fewer calls.
        Why: at one token a step a CPU spends more of it on the calls around the arithmetic
        than on the arithmetic; this is the sampler's inner loop. `plan`: step_plan(), which
        a caller stepping many times makes once."""
        p, (B, T) = cache.pos, idx.shape
        if T != 1 or p >= self.cfg.block_size:
            raise ValueError(f"step takes one token per row within the context, not {T} at {p}")
        C, H = self.cfg.n_embd, self.cfg.n_head
        # The condition changes only when time moves on (a shift token) or the mood does, so
        # most steps reuse the last one's vector: the same bits, a tenth of a step less.
        last = cache.last_cond
        if last is None or not torch.equal(last[0], cond):
            last = cache.last_cond = (cond.clone(), self._condition(cond))
        x = torch.cat([self.tok(idx), last[1]], dim=-1)
        cos, sin = self.cos[p].to(x.dtype), self.sin[p].to(x.dtype)
        ks, vs = cache.k, cache.v
        for i, (w1, b1, e1, qkv_of, proj_of, w2, b2, e2, mlp_of) in enumerate(plan or self.step_plan()):
            h = F.layer_norm(x, (C,), w1, b1, e1)
            qkv = qkv_of(h).view(B, 3, H, 1, C // H).transpose(0, 1)
            qk = rotary(qkv[:2], cos, sin)
            ks[i][:, :, p] = qk[1, :, :, 0]
            vs[i][:, :, p] = qkv[2, :, :, 0]
            y = attend_one(qk[0], ks[i][:, :, : p + 1], vs[i][:, :, : p + 1])
            x = x + proj_of(y.view(B, 1, C))
            x = x + mlp_of(F.layer_norm(x, (C,), w2, b2, e2))
        cache.pos += 1
        return self.head(F.layer_norm(x, (C,), self.ln_f.weight, self.ln_f.bias, self.ln_f.eps))

    def forward(self, idx, cond, targets=None, cache=None, local=None):
        """idx (B, T) tokens, cond (B, T, COND_DIM) -> logits (B, T, V) [, mean cross-entropy].

        With a cache, idx continues the cached sequence at position cache.pos.
        local (training only): the window is cut into stretches of `local` tokens and each
        position hears only its own stretch so far, through every layer, so the music heard
        cannot tell everything and the conditions must.
        """
        B, T = idx.shape
        p = cache.pos if cache is not None else 0
        if p + T > self.cfg.block_size:
            raise ValueError(f"sequence of {p + T} exceeds the context of {self.cfg.block_size}")
        x = self.drop(self._embed(idx, cond))
        cos = self.cos[p : p + T].to(x.dtype)
        sin = self.sin[p : p + T].to(x.dtype)
        mask = None
        if local is not None:
            if cache is not None:
                raise ValueError("local attention is for training, not with a cache")
            i = torch.arange(T, device=x.device)
            # Block-diagonal, not a sliding window: with a sliding window of w each layer
            # reaches w - 1 further back, so six layers would hear 6 (w - 1) tokens.
            mask = (i[:, None] >= i[None, :]) & (i[:, None] // int(local) == i[None, :] // int(local))
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, i, mask)
        if cache is not None:
            cache.pos += T
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=0)  # PAD
        return logits, loss


def quantized(model):
    """A copy of `model` for sampling on a CPU, its linear layers in int8 (weights quantized
    once, activations per call); the model itself is left as it is.

    Why: at one token a step the CPU spends most of each step reading the linear layers'
    weights, and int8 weights are a quarter of float32's. Not for training or for NLL."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # the torch.ao API is marked for migration, not broken
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear}, dtype=torch.qint8)


class PackedLinear(nn.Module):
    """A linear layer for sampling on a CPU: its weight in bf16, prepacked once for oneDNN;
    float32 in and out. Why: at one token a step a CPU spends most of a step reading weights,
    which bf16 halves, and oneDNN's bf16 kernel costs about the same for the two rows a guided
    step runs as for one, where float32 costs nearly twice. bf16 matmuls are the precision
    the model was trained in (autocast) and its NLL is measured in."""

    def __init__(self, linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach().bfloat16(), None)
        self.bias = None if linear.bias is None else linear.bias.detach().bfloat16()

    def forward(self, x):
        y = torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), self.weight, self.bias, "none", [], "")
        return y.float()


class PackedMLP(nn.Module):
    """A block's feed-forward for sampling on a CPU: both linear layers as in PackedLinear,
    the GELU fused into the first (oneDNN applies it to the float32 sum before rounding to
    bf16), bf16 between them and out (adding it to the float32 residual stream promotes it
    exactly). Why: at one token a step each call costs more than its arithmetic; this makes
    three calls of the seven the feed-forward took."""

    def __init__(self, mlp):
        super().__init__()
        self.up, self.down = PackedLinear(mlp[0]), PackedLinear(mlp[2])

    def forward(self, x):
        lp = torch.ops.mkldnn._linear_pointwise
        h = lp(x.to(torch.bfloat16), self.up.weight, self.up.bias, "gelu", [], "none")
        return lp(h, self.down.weight, self.down.bias, "none", [], "")


def native_bf16() -> bool:
    """Whether this CPU's oneDNN does bf16 with the CPU's own instructions (AVX512-BF16 or AMX
    on x86, BF16 on Arm). Why: where it only emulates them, bf16 buys no speed over float32."""
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return False
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        return True  # oneDNN's check on Arm is the instruction itself
    except (AttributeError, RuntimeError):
        return False


def packable(model) -> bool:
    """Whether packed() can serve `model` here: float32 weights on a CPU with native bf16."""
    ok = native_bf16()
    params = list(model.parameters())
    return bool(
        ok
        and params
        and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)
        and any(isinstance(m, nn.Linear) for m in model.modules())
    )


def packed(model):
    """A copy of `model` for sampling on a CPU, every linear layer a PackedLinear (bf16
    weights, float32 activations and cache; each feed-forward a PackedMLP); the model itself
    is left as it is. Not for training. Raises RuntimeError where packable() is False."""

    if not packable(model):
        raise RuntimeError("bf16 packing needs float32 weights on a CPU with native bf16 (oneDNN)")
    out = copy.deepcopy(model).eval()
    for b in out.blocks:
        if not isinstance(b.mlp[1], nn.GELU) or b.mlp[1].approximate != "none":
            raise RuntimeError("bf16 packing fuses the feed-forward's exact GELU; this block has another")
        b.mlp = PackedMLP(b.mlp)
    for mod in list(out.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, nn.Linear):
                setattr(mod, name, PackedLinear(child))
    return out


# ---- shipped weights ----------------------------------------------------------------------

MODELS_DIR = resources.folder("models")
SHIPPED_NAME = "scorebridge-music"


class ChecksumError(RuntimeError):
    """The weights file is not the one the config records."""


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pick_device(device="auto") -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def save_shipped(model, path_stem, extra=None, dtype=torch.float16):
    """Write <stem>.safetensors (half precision) and <stem>.json (config + SHA-256).

    Both are written whole beside their place first and then renamed over it, weights first:
    a write cut off leaves the files before it (a reader sees the new weights with the old
    record only between the two renames). Refuses weights that are not finite (a diverged
    run), leaving the files as they were."""
    from safetensors.torch import save as to_bytes
    from bridge import atomic

    stem = Path(path_stem)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(
            f"not writing {stem.name}: {len(bad)} tensors hold NaN or infinite values "
            f"(first {bad[0]}); the run diverged or the model overflows {dtype}"
        )
    data = to_bytes(tensors)
    meta = {
        "config": asdict(model.cfg),
        "dtype": str(dtype).replace("torch.", ""),
        "sha256": hashlib.sha256(data).hexdigest(),
        "params": model.num_params(),
    }
    meta.update(extra or {})
    weights = atomic.write_bytes(stem.with_suffix(".safetensors"), data)
    atomic.write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return weights


def load_usable(device, path_stem, missing_hint) -> MusicTransformer:
    """load_shipped, with a missing or corrupt model as MissingModel and a one-line message
    for the user (missing_hint says what to do when none is there)."""

    try:
        return load_shipped(device, path_stem)
    except FileNotFoundError:
        raise MissingModel(f"no music model at {Path(path_stem)}.safetensors (+ .json): {missing_hint}") from None
    except ChecksumError as exc:
        raise MissingModel(f"{exc}; restore models/ from the project's repository") from None


def load_shipped(device="auto", path_stem=None) -> MusicTransformer:
    """The shipped model in eval mode (float32 on CPU), after checking its SHA-256."""
    from safetensors.torch import load_file

    stem = Path(path_stem) if path_stem else MODELS_DIR / SHIPPED_NAME
    weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not weights.exists() or not meta_path.exists():
        raise FileNotFoundError(
            f"no shipped music model at {weights} (+ {meta_path.name}); train one with `scorebridge train model`"
        )
    meta = json.loads(meta_path.read_text())
    digest = sha256_file(weights)
    if digest != meta["sha256"]:
        raise ChecksumError(
            f"{weights} has SHA-256 {digest}, but {meta_path.name} records "
            f"{meta['sha256']}: the weights are corrupt or not the shipped ones"
        )
    model = MusicTransformer(MusicConfig(**meta["config"]))
    state = load_file(str(weights))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(pick_device(device)).eval()
