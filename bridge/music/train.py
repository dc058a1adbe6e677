"""Train the music transformer. Reads top to bottom: config, data, model, loop, export.

    scorebridge train model --out runs/music --steps 3000 [--resume] [--ship]

Resumable (a checkpoint every `ckpt_every_s` seconds and at the end, written atomically),
seeded, bf16 autocast on CPU, CUDA when present. One model is trained with condition
dropout: a share of the windows withholds valence/arousal and/or the boundary offsets, so
the same weights also serve as the unconditioned twin (evaluate.py measures both ways).
"""

import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, asdict, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bridge.errors import BadInput
from bridge.music.data import Batcher, make_example
from bridge.music.model import (
    MusicConfig,
    MusicTransformer,
    N_COND_FEATURES,
    pick_device,
    save_shipped,
    MODELS_DIR,
    SHIPPED_NAME,
)


@dataclass
class TrainConfig:
    out_dir: str = "runs/music"
    steps: int = 4000
    batch_size: int = 16
    lr: float = 1.5e-3
    min_lr: float = 1.5e-4
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    p_drop_va: float = 0.2  # condition dropout: valence/arousal withheld
    p_drop_b: float = 0.2  # condition dropout: boundary offsets withheld
    p_drop_tonic: float = 0.3  # condition dropout: tonic withheld (models with the tonic condition)
    unconditioned: bool = False  # withhold every condition (a separate unconditioned twin)
    eval_every: int = 250
    eval_windows: int = 64
    log_every: int = 10
    ckpt_every_s: float = 300.0
    seed: int = 1337
    device: str = "auto"
    bf16: bool = True
    threads: int = 0  # 0: torch's default
    max_minutes: float = 0.0  # stop (and save) after this long, 0 = no limit
    init: str = ""  # path stem of weights to start from (a fine-tune), "" = random
    boundary_weight: float = 1.0  # loss weight of positions less than 1 s before a boundary
    p_mode_swap: float = 0.5  # augmentation (data.py): whole window in the parallel mode,
    p_mode_switch: float = 0.5  # the mode changing mid-window with the valence condition,
    p_retime: float = 0.5  # the music held or cut before boundaries
    p_energy_switch: float = 0.0  # tempo and loudness changing mid-window with the arousal condition
    p_key_switch: float = 0.0  # the key changing mid-window with the tonic/key condition
    valence_contrast: float = 0.0  # weight of the valence contrast (valence_contrast_loss)
    contrast_scale: float = 50.0  # its sharpness, per nat/token of likelihood ratio
    self_data: str = ""  # kept takes to mix in (selftrain.py), "" = real windows only
    self_share: float = 0.5  # share of each batch drawn from them
    groove_share: float = -1.0  # share of windows from mma's grooves (< 0: weighted as every work)
    p_local: float = 0.0  # share of batches trained with local attention (LOCAL_TOKENS)
    tonic_lr_mult: float = 10.0  # the tonic vectors' learning rate, times the rest's (no decay)
    workers: int = 0  # processes building batches ahead (prefetch.py), 0 = in the loop
    model: MusicConfig = field(default_factory=MusicConfig)


# Stretch lengths of local-attention batches (--p-local): each position hears at most this
# many tokens back (0.3-2 s of music), too little to be sure of the key or the mode, so the
# tonic and valence conditions carry them.
LOCAL_TOKENS = (16, 32, 64)


class Diverged(BadInput):
    """The loss or the weights went NaN or infinite; nothing of the diverged run is saved."""


def progress(step, elapsed_s, cfg):
    """Share of the run done: by steps, or by time when a time limit is set (whichever is
    further), so a run slowed down by a busy machine still ends on a fully decayed rate."""
    p = step / cfg.steps
    if cfg.max_minutes:
        p = max(p, elapsed_s / 60 / cfg.max_minutes)
    return min(p, 1.0)


def lr_at(step, prog, cfg):
    """Linear warm-up, then cosine decay to min_lr over the run's progress (nanoGPT)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * prog)) * (cfg.lr - cfg.min_lr)


def fixed_windows(works, n, block_size, seed=0, key_modes=1):
    """A fixed, seeded set of evaluation windows with every condition given (the key with
    its mode for models with tonic_modes 2)."""
    rng = np.random.default_rng(seed)
    xs, cs = [], []
    for i in rng.choice(len(works), size=n, replace=len(works) < n):
        t, c, _ = make_example(works[i], rng, block_size, fixed={"transpose": 0, "octave": 0}, key_modes=key_modes)
        xs.append(t)
        cs.append(c)
    x, c = np.stack(xs), np.stack(cs)
    return torch.from_numpy(x[:, :-1]), torch.from_numpy(c[:, :-1]), torch.from_numpy(x[:, 1:])


def withhold(cond, va=True, boundary=True):
    """The same conditions with valence/arousal (and with them the tonic) and/or boundary
    information withheld."""
    c = cond.clone()
    if va:
        c[..., 0:3] = 0
        c[..., N_COND_FEATURES] = 0
    if boundary:
        c[..., 3:N_COND_FEATURES] = 0
    return c


@torch.no_grad()
def grow_tonic(start, modes=1):
    """`start` with the tonic condition added (vectors at zero), or its tonic vectors made
    key vectors (modes 2: both modes of a tonic start from that tonic's vector). Every other
    weight is carried over, so the grown model starts exactly where `start` was."""
    grown = MusicTransformer(replace(start.cfg, tonic=True, tonic_modes=modes))
    old = start.state_dict()
    tv = old.pop("tonic.weight", None)
    missing, unexpected = grown.load_state_dict(old, strict=False)
    assert missing == ["tonic.weight"] and not unexpected, (missing, unexpected)
    if tv is not None:
        w = grown.tonic.weight
        w[0] = tv[0]
        for m in range(modes):
            w[1 + 12 * m : 13 + 12 * m] = tv[1:13]
    return grown


def eval_nll(model, x, c, y, device, batch=16):
    """Mean per-token NLL (nats) over fixed windows; PAD targets ignored."""
    sums, counts = window_nll(model, x, c, y, device, batch)
    return float(sums.sum() / max(int(counts.sum()), 1))


@torch.no_grad()
def window_nll(model, x, c, y, device, batch=16):
    """Each window's summed NLL (nats) and its number of targets, PAD ignored: for paired
    comparisons of two models window by window."""
    model.eval()
    sums, counts = [], []
    for i in range(0, len(x), batch):
        xb, cb, yb = x[i : i + batch].to(device), c[i : i + batch].to(device), y[i : i + batch].to(device)
        sums.append(-token_logprobs(model(xb, cb)[0], yb).sum(1).double().cpu())
        counts.append((yb != 0).sum(1).cpu())
    model.train()
    return torch.cat(sums).numpy(), torch.cat(counts).numpy()


def token_logprobs(logits, y):
    """Log-probability of each target token, 0 at PAD."""
    lp = -F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=0, reduction="none"
    ).view_as(y)
    return lp * (y != 0)


def boundary_weighted_loss(logits, y, c, weight):
    """Cross-entropy in which positions less than 1 s before a given boundary count `weight`
    times: they are few, and they are where the model must learn to time a chord onto the
    boundary (columns of cond_features: 3 offsets given, 4 none ahead, 7 exp(-offset / 1 s))."""
    ce = -token_logprobs(logits, y)
    near = (c[..., 3] > 0.5) & (c[..., 4] < 0.5) & (c[..., 7] > math.exp(-1.0))
    w = torch.where(near, float(weight), 1.0) * (y != 0)
    return (ce * w).sum() / w.sum().clamp(min=1.0)


CONTRAST_MIN_VALENCE = 0.2


def valence_contrast_loss(model, x, c, y, logits, scale=50.0, rows=None):
    """softplus(-scale * mean-per-token log[p(x | valence) / p(x | -valence)]) per window.

    Why: the music heard so far tells its mode, so the plain likelihood gains almost nothing
    from the valence condition (a few notes after each change) and the model learns to ignore
    it. Asking each window to be more likely under its own valence than under the opposite
    one is meant to make the condition, not the context, carry the mode. Off by default: in
    a 12-minute fine-tune on real windows it learnt the augmentation's traces instead (see
    docs/research/2026-12-07-music-model-card-history.md, "Three valence experiments that
    did not help"); with kept takes (selftrain.py) it applies to those rows only (`rows`).
    Only windows whose valence is given and not near 0 take part (flipping 0 changes
    nothing); None when there are none.
    """
    v = c[..., 0]
    eligible = (c[:, 0, 2] > 0.5) & (v.abs().mean(1) > CONTRAST_MIN_VALENCE)
    rows = eligible if rows is None else eligible & rows
    if not bool(rows.any()):
        return None
    neg = c[rows].clone()
    neg[..., 0] = -neg[..., 0]
    lp_true = token_logprobs(logits[rows], y[rows])
    lp_neg = token_logprobs(model(x[rows], neg)[0], y[rows])
    n = (y[rows] != 0).sum(1).clamp(min=1)
    margin = (lp_true - lp_neg).sum(1) / n  # nats per token
    return F.softplus(-scale * margin).mean()


def check_out_dir(out_dir, resume):
    """The run folder's checkpoint path; BadInput when a fresh run would write over a checkpoint
    (hours of training lost at its first save)."""
    path = Path(out_dir) / "ckpt.pt"
    if path.exists() and not resume:
        raise BadInput(
            f"{out_dir} already holds a training checkpoint ({path.name}): add --resume "
            f"to continue that run, or give another --out"
        )
    return path


class _StopSignals(list):
    """Ctrl-C or a polite kill (a shutdown, a job scheduler's time limit) received while the
    loop runs: their names. The loop stops between steps, where the weights and the optimizer
    agree, and saves a checkpoint; stopped in the middle of an optimizer step they would not.
    A second signal stops at once."""

    def __init__(self):
        super().__init__()
        self._before = {}
        if threading.current_thread() is threading.main_thread():  # signals reach that thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._before[sig] = signal.signal(sig, self._on)

    def _on(self, signum, frame):
        if self:
            raise KeyboardInterrupt
        self.append(signal.Signals(signum).name)

    def restore(self):
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        self._before = {}


def _read_ckpt(path, device):
    """A checkpoint to resume from; BadInput when it cannot be read."""
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # torch.load raises many kinds on a file cut short or not its own
        raise BadInput(
            f"the checkpoint {path} is unreadable ({type(exc).__name__}): resume from a "
            f"copy, or move it away to start afresh"
        ) from None


def train(cfg: TrainConfig, works_train, works_val, resume=False, ship=False, log=print):
    out = Path(cfg.out_dir)
    ckpt_path = check_out_dir(out, resume)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)

    model = MusicTransformer(cfg.model).to(device)
    base = None
    if cfg.init:  # a fine-tune starts from earlier weights, with a fresh optimizer
        from bridge.music.model import load_shipped

        start = load_shipped("cpu", cfg.init)
        if cfg.model.tonic and (not start.cfg.tonic or start.cfg.tonic_modes < cfg.model.tonic_modes):
            start = grow_tonic(start, cfg.model.tonic_modes)
        cfg.model = start.cfg
        model = start.to(device)
        base = json.loads(Path(cfg.init).with_suffix(".json").read_text())
        log(f"starting from {cfg.init} (SHA-256 {base['sha256'][:12]}…)")
    # Weight decay on matrices only, as in nanoGPT.
    named = list(model.named_parameters())
    decay = [p for n, p in named if p.dim() >= 2 and not n.startswith("tonic.")]
    no_decay = [p for n, p in named if p.dim() < 2]
    # The tonic vectors start at zero in a fine-tune, against weights that already work: a
    # faster rate lets them grow within one (at the base rate they stayed near zero).
    fast = [p for n, p in named if n.startswith("tonic.")]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        + ([{"params": fast, "weight_decay": 0.0, "lr_mult": cfg.tonic_lr_mult}] if fast else []),
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    aug = {
        "mode_swap": cfg.p_mode_swap,
        "mode_switch": cfg.p_mode_switch,
        "retime": cfg.p_retime,
        "energy_switch": cfg.p_energy_switch,
        "key_switch": cfg.p_key_switch,
    }
    p_tonic = cfg.p_drop_tonic if cfg.model.tonic else None
    batcher = Batcher(
        works_train,
        cfg.model.block_size,
        seed=cfg.seed,
        p_drop_va=cfg.p_drop_va,
        p_drop_b=cfg.p_drop_b,
        aug=aug,
        p_drop_tonic=p_tonic,
        key_modes=cfg.model.tonic_modes,
        groove_share=cfg.groove_share if cfg.groove_share >= 0 else None,
    )
    n_grooves = sum(w.get("collection") == "mma" for w in works_train)
    if n_grooves:
        share = float(batcher.weights[[w.get("collection") == "mma" for w in works_train]].sum())
        log(f"{n_grooves} groove works (mma) among the training works: {share:.0%} of the windows")
    self_batcher, self_meta = None, None
    if cfg.self_data:
        from bridge.music import selftrain

        data = selftrain.load(cfg.self_data)
        self_batcher = selftrain.SelfBatcher(
            data["takes"], cfg.model.block_size, seed=cfg.seed, p_drop_tonic=p_tonic, key_modes=cfg.model.tonic_modes
        )
        self_meta = {"path": cfg.self_data, "takes": len(data["takes"]), "share": cfg.self_share, **data["meta"]}
        log(f"mixing in {len(data['takes'])} kept takes from {cfg.self_data} ({cfg.self_share:.0%} of each batch)")
    n_self = int(round(cfg.batch_size * cfg.self_share)) if self_batcher else 0
    step, elapsed, tokens_seen, history = 0, 0.0, 0, []
    if resume and not ckpt_path.exists():
        log(f"no checkpoint at {ckpt_path} to resume: starting at step 0")
    elif resume:
        ck = _read_ckpt(ckpt_path, device)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            was = ck.get("cfg", {}).get("model") if isinstance(ck, dict) else None
            raise BadInput(
                f"{ckpt_path} is from a run with another model or options"
                f"{f' (its model: {was})' if was else ''}: resume it with the options it "
                f"was started with, or give another --out ({type(exc).__name__})"
            ) from None
        batcher.rng.bit_generator.state = ck["batch_rng"]
        if self_batcher is not None and "self_rng" in ck:
            self_batcher.rng.bit_generator.state = ck["self_rng"]
        torch.set_rng_state(ck["torch_rng"])
        step, elapsed, tokens_seen, history = ck["step"], ck["elapsed"], ck["tokens"], ck["history"]
        log(f"resumed at step {step} ({elapsed / 60:.1f} min, {tokens_seen / 1e6:.2f} M tokens)")
    log(f"model: {model.num_params() / 1e6:.2f} M parameters, device {device}, {len(works_train)} training works")
    vx, vc, vy = fixed_windows(works_val, cfg.eval_windows, cfg.model.block_size, key_modes=cfg.model.tonic_modes)

    def diverged(what, at):
        kept = (
            f"; {ckpt_path} still holds the last checkpoint before it"
            if ckpt_path.exists()
            else "; no checkpoint had been written"
        )
        return Diverged(
            f"training diverged at step {at}: {what} (peak learning rate {cfg.lr:g}); "
            f"nothing of the diverged steps was saved{kept}. Try a lower --lr"
        )

    def save_ckpt():
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            raise diverged("the weights hold NaN or infinite values", step)
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "elapsed": elapsed,
                "tokens": tokens_seen,
                "history": history,
                "batch_rng": batcher.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cfg": asdict(cfg),
                **({"self_rng": self_batcher.rng.bit_generator.state} if self_batcher else {}),
            },
            tmp,
        )
        os.replace(tmp, ckpt_path)

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16)
    prefetch = None
    if cfg.workers:
        from bridge.music.prefetch import Prefetcher

        prefetch = Prefetcher(batcher, self_batcher, cfg.seed, cfg.batch_size - n_self, n_self, cfg.workers, start=step)
        log(f"{cfg.workers} workers building batches ahead")

    def next_batch():
        if prefetch is not None:
            arrays = prefetch.next()
        else:
            parts = ([batcher.batch(cfg.batch_size - n_self)] if n_self < cfg.batch_size else []) + (
                [self_batcher.batch(n_self)] if n_self else []
            )
            arrays = (np.concatenate(a) for a in zip(*parts))
        return (torch.from_numpy(a).to(device, non_blocking=True) for a in arrays)

    t_start, t_ckpt = time.time() - elapsed, time.time()
    model.train()
    stopped = _StopSignals()
    try:
        while step < cfg.steps and not stopped:
            t0 = time.time()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, progress(step, elapsed, cfg), cfg) * g.get("lr_mult", 1.0)
            x, c, y = next_batch()
            local = None
            if cfg.p_local:  # drawn from the step, so a resumed run draws the same
                r = np.random.default_rng([cfg.seed, step])
                local = int(r.choice(LOCAL_TOKENS)) if r.random() < cfg.p_local else None
            # The unconditioned twin sees every condition withheld, but draws the same windows
            # (the same condition dropout) and weights the same positions before boundaries
            # as its conditioned pair: only what the model is told differs.
            seen = withhold(c) if cfg.unconditioned else c
            with autocast:
                logits = model(x, seen, local=local)[0]
                loss = boundary_weighted_loss(logits, y, c, cfg.boundary_weight)
                contrast = None
                if cfg.valence_contrast:
                    # With kept takes mixed in, only they take part: they carry no augmentation
                    # trace to learn instead of the mode (it did not help either:
                    # docs/research/2026-12-07-music-model-card-history.md).
                    own = None
                    if n_self:
                        own = torch.arange(len(x), device=device) >= len(x) - n_self
                    contrast = valence_contrast_loss(model, x, seen, y, logits, cfg.contrast_scale, rows=own)
                total = loss if contrast is None else loss + cfg.valence_contrast * contrast
            if not math.isfinite(total.item()):  # before the update: the weights stay as they were
                raise diverged(f"the loss is {total.item()}", step + 1)
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            tokens_seen += int((y != 0).sum())
            elapsed = time.time() - t_start
            if step % cfg.log_every == 0 or step == 1:
                tps = x.numel() / (time.time() - t0)
                rec = {
                    "step": step,
                    "loss": round(loss.item(), 4),
                    "lr": round(opt.param_groups[0]["lr"], 6),
                    "tok_s": round(tps),
                    "min": round(elapsed / 60, 2),
                    "Mtok": round(tokens_seen / 1e6, 3),
                }
                done = progress(step, elapsed, cfg)  # by steps, or by the time limit where nearer
                if done > 0:
                    rec["eta_min"] = round(elapsed / 60 * (1 - done) / done, 1)
                if contrast is not None:
                    rec["contrast"] = round(contrast.item(), 4)
                log(json.dumps(rec))
            out_of_time = bool(cfg.max_minutes) and elapsed / 60 > cfg.max_minutes
            if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
                with autocast:
                    nll_u = eval_nll(model, vx, withhold(vc), vy, device)
                    # the twin is told nothing, so its two figures are one
                    nll_c = nll_u if cfg.unconditioned else eval_nll(model, vx, vc, vy, device)
                history.append(
                    {
                        "step": step,
                        "train_loss": loss.item(),
                        "val_nll_cond": nll_c,
                        "val_nll_uncond": nll_u,
                        "min": elapsed / 60,
                    }
                )
                log(json.dumps({"eval": history[-1]}))
            if time.time() - t_ckpt > cfg.ckpt_every_s:
                save_ckpt()
                t_ckpt = time.time()
            if out_of_time:
                log(f"time limit of {cfg.max_minutes} min reached at step {step}")
                break
    finally:
        stopped.restore()
        if prefetch is not None:
            prefetch.close()
    save_ckpt()
    if stopped:
        log(f"stopped by {stopped[0]} at step {step}: checkpoint saved in {ckpt_path}; continue with --resume")
        raise KeyboardInterrupt
    info = {
        "train": {
            "steps": step,
            "tokens": tokens_seen,
            "minutes": round(elapsed / 60, 1),
            "batch_size": cfg.batch_size,
            "block_size": cfg.model.block_size,
            "lr": cfg.lr,
            "seed": cfg.seed,
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "p_drop_va": cfg.p_drop_va,
            "p_drop_b": cfg.p_drop_b,
            **({"unconditioned": True} if cfg.unconditioned else {}),
            **({"p_drop_tonic": cfg.p_drop_tonic, "tonic_lr_mult": cfg.tonic_lr_mult} if cfg.model.tonic else {}),
            **({"p_local": cfg.p_local, "local_tokens": list(LOCAL_TOKENS)} if cfg.p_local else {}),
            **({"workers": cfg.workers} if cfg.workers else {}),
            **({"groove_works": n_grooves, "groove_share": round(share, 4)} if n_grooves else {}),
            "boundary_weight": cfg.boundary_weight,
            "augment": aug,
            "valence_contrast": cfg.valence_contrast,
            "contrast_scale": cfg.contrast_scale,
            "history": history[-3:],
        }
    }
    if self_meta is not None:
        info["train"]["self_data"] = self_meta
    if base is not None:  # what the fine-tune started from, and how that was trained
        info["train"]["init"] = {"sha256": base["sha256"], "train": base.get("train")}
    try:
        save_shipped(model, out / SHIPPED_NAME, extra=info)
    except ValueError as exc:  # weights too large for the file's float16
        raise BadInput(f"{exc}; the checkpoint {ckpt_path} holds the run") from None
    if ship:
        save_shipped(model, MODELS_DIR / SHIPPED_NAME, extra=info)
        log(f"shipped to {MODELS_DIR / SHIPPED_NAME}.safetensors")
    return model, history
