"""`scorebridge train …` and `scorebridge eval …`."""

import json
import os
import sys
from pathlib import Path

from bridge.errors import BadInput


def _corpus(args) -> int:
    from bridge.music import corpus

    try:
        rep = corpus.build(budget_s=args.budget, workers=args.workers, grooves=args.grooves)
    except RuntimeError as exc:  # a converter the corpus needs is not installed
        print(f"scorebridge: train corpus: {exc}", file=sys.stderr)
        return 1
    works = corpus.load_corpus()
    # Tokens under the default augmentation, estimated from a seeded sample of windows.
    import numpy as np
    from bridge.music.data import augment
    from bridge.music.tokens import encode

    rng = np.random.default_rng(0)
    sample = [works[i] for i in rng.choice(len(works), size=min(400, len(works)), replace=False)]
    per_note = []
    for w in sample:
        notes = augment(w, rng, start_q=0.0, max_notes=10**6)
        if notes:
            per_note.append(len(encode(notes)) / len(notes))
    rep["tokens_per_note"] = round(float(np.mean(per_note)), 2)
    for split in ("train", "val", "test", "all"):
        rep[split]["tokens_est"] = int(rep[split]["notes"] * rep["tokens_per_note"])
    print(json.dumps(rep, indent=2))
    return 0


def _harmony(args) -> int:
    from bridge.music import harmony_train

    harmony_train.main(epochs=args.epochs, ship=args.ship, log=lambda line: print(line, file=sys.stderr))
    return 0


def _shipped():
    from bridge.music.model import MODELS_DIR, SHIPPED_NAME

    return MODELS_DIR / SHIPPED_NAME


def _load(stem, what, device="cpu"):
    """A trained model at `stem`; MissingModel when it is not there or is corrupt."""
    from bridge.music.model import load_usable

    hint = (
        "train one with `scorebridge train model --ship`"
        if what == "shipped"
        else f"give {what} the path stem of a run's weights, e.g. runs/music/scorebridge-music"
    )
    return load_usable(device, stem, hint)


def _model(args) -> int:
    from bridge.music.corpus import load_corpus
    from bridge.music.model import MusicConfig
    from bridge.music.train import TrainConfig, check_out_dir, train

    # Everything that can be checked is, before the corpus loads.
    check_out_dir(args.out, args.resume)
    if args.self_data and not Path(args.self_data).is_file():
        raise BadInput(f"no kept takes at {args.self_data}: write them with `scorebridge train takes`")
    if args.init:
        _load(args.init, "--init")
    cfg = TrainConfig(
        out_dir=args.out,
        steps=args.steps,
        device=args.device,
        model=MusicConfig(
            cond_zero_init=not args.random_cond_init, tonic=args.tonic or args.key, tonic_modes=2 if args.key else 1
        ),
        unconditioned=args.unconditioned,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        seed=args.seed,
        init=args.init or "",
        lr=args.lr,
        min_lr=args.lr / 10,
        boundary_weight=args.boundary_weight,
        p_mode_swap=args.p_mode_swap,
        p_mode_switch=args.p_mode_switch,
        p_retime=args.p_retime,
        p_energy_switch=args.p_energy_switch,
        p_key_switch=args.p_key_switch,
        valence_contrast=args.valence_contrast,
        contrast_scale=args.contrast_scale,
        self_data=args.self_data or "",
        self_share=args.self_share,
        p_local=args.p_local,
        workers=args.workers,
        groove_share=-1.0 if args.groove_share is None else args.groove_share,
    )
    works = load_corpus()
    train(
        cfg,
        [w for w in works if w["split"] == "train"],
        [w for w in works if w["split"] == "val"],
        resume=args.resume,
        ship=args.ship,
        log=lambda s: print(s, flush=True),
    )
    return 0


def _takes(args) -> int:
    """Write takes, keep the best per target, save them for `train model --self-data`."""
    import numpy as np
    import torch
    from bridge.music import selftrain

    log = lambda s: print(s, file=sys.stderr, flush=True)
    torch.manual_seed(args.seed)
    model = _load(args.model or _shipped(), "--model" if args.model else "shipped", "auto")
    targets = selftrain.draw_targets(args.targets, args.seconds, np.random.default_rng(args.seed))
    if args.key_guidance != 1.0 and not model.cfg.tonic:
        raise BadInput("--key-guidance needs a model with the tonic condition (train model --tonic/--key)")
    best = selftrain.generate(
        model, targets, args.candidates, args.seconds, seed=args.seed, log=log, key_guidance=args.key_guidance
    )
    kept = selftrain.keep(targets, best, args.seconds)
    rep = selftrain.report(targets, best)
    meta = {
        "model": args.model or "models/scorebridge-music",
        "candidates": args.candidates,
        "seconds": args.seconds,
        "seed": args.seed,
        **({"key_guidance": args.key_guidance} if model.cfg.tonic else {}),
        **rep,
    }
    selftrain.save(args.out, kept, meta)
    print(json.dumps(meta, indent=2))
    return 0


def _eval(args) -> int:
    from bridge.music.evaluate import evaluate

    if args.int8 and args.precision == "bf16":
        print(
            "error: --int8 samples from an int8 copy; --precision bf16 asks for a bf16 one. Pick one.", file=sys.stderr
        )
        return 2
    model = _load(args.model, "--model") if args.model else _load(_shipped(), "shipped", "auto")
    if args.speed_only:
        from bridge.music.evaluate import speed, speed_met
        from bridge.music.model import quantized

        sp = speed(
            quantized(model) if args.int8 else model,
            quick=args.quick,
            precision=args.precision,
            guidance=args.guidance,
            **({} if args.key_guidance is None else {"key_guidance": args.key_guidance}),
        )
        return _print_eval({"speed": sp, "targets_met": speed_met(sp)}, args)
    twin = _load(args.twin, "--twin") if args.twin else None
    res = evaluate(
        quick=args.quick,
        model=model,
        guidance=args.guidance,
        twin=twin,
        twin_windows=args.twin_windows,
        nll_only=args.nll_only,
        temperature=args.temperature,
        note_temperature=args.note_temperature,
        seeds=args.seeds,
        int8=args.int8,
        precision=args.precision,
        log=lambda s: print(s, file=sys.stderr, flush=True),
        **({} if args.steer is None else {"steer": args.steer}),
        **({} if args.top_p is None else {"top_p": args.top_p}),
        **({} if args.key_guidance is None else {"key_guidance": args.key_guidance}),
        **({} if args.key_cut is None else {"key_cut_s": args.key_cut}),
    )
    return _print_eval(res, args)


def _print_eval(res, args) -> int:
    text = json.dumps(res, indent=2)
    print(text)
    if args.json_out:
        from bridge import atomic

        atomic.write_text(args.json_out, text + "\n")
    return 0


def register(sub) -> None:
    """Add this concern's sub-commands to the top-level parser."""
    from bridge.cli.types import (
        _guidance,
        _int_in,
        _key_cut,
        _key_guidance,
        _number_in,
        _strength,
        _temperature,
        _top_p,
        _share,
        _take_seconds,
        _positive_int,
        _seed_count,
        _twin_windows,
        _workers,
    )

    # train model's numbers: a run that cannot mean anything is refused before the corpus loads.
    lr = _number_in(0, 1, low_open=True)
    minutes = _number_in(0, 7 * 24 * 60)  # 0: no limit; a week at most
    weight = _number_in(0, 100)  # --boundary-weight, --valence-contrast
    scale = _number_in(0, 1000, low_open=True)
    batch_size = _int_in(1, 4096)
    seed_value = _int_in(0, 2**32 - 1)
    parsers = _int_in(1, 4 * (os.cpu_count() or 1))  # train corpus --workers: up to four per core

    train = sub.add_parser("train", help="build the music corpus or train the music model")
    tsub = train.add_subparsers(dest="train_command", required=True, metavar="WHAT")
    c = tsub.add_parser("corpus", help="parse music21's corpus into .corpus/ and print a report")
    c.add_argument(
        "--budget",
        type=_number_in(0, 86400),
        default=900.0,
        help="seconds for music21 parsing (default 900; a later run goes on where it stopped)",
    )
    c.add_argument("--workers", type=parsers, default=2, help="processes parsing music21's files (default 2)")
    c.add_argument(
        "--grooves",
        action="store_true",
        help="add mma's groove library (drums, bass, chords over major and minor "
        "charts; needs Debian's mma): the corpus's only drums",
    )
    c.set_defaults(func=lambda args: _corpus(args))
    h = tsub.add_parser("harmony", help="train the chord model on Bach's chorales (about a minute on CPU)")
    h.add_argument("--epochs", type=_positive_int, default=30, help="most epochs (default 30; the best is kept)")
    h.add_argument("--ship", action="store_true", help="write models/scorebridge-harmony.safetensors")
    h.set_defaults(func=lambda args: _harmony(args))
    m = tsub.add_parser("model", help="train the music transformer")
    m.add_argument("--out", default="runs/music", help="run folder (checkpoints, exported weights)")
    m.add_argument("--steps", type=_positive_int, default=4000)
    m.add_argument("--batch-size", type=batch_size, default=16)
    m.add_argument("--seed", type=seed_value, default=1337)
    m.add_argument("--resume", action="store_true", help="continue from <out>/ckpt.pt")
    m.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    m.add_argument("--unconditioned", action="store_true", help="withhold every condition")
    m.add_argument(
        "--random-cond-init",
        action="store_true",
        help="random rather than zero initial condition path (as runs 1-6 were trained)",
    )
    m.add_argument(
        "--tonic",
        action="store_true",
        help="condition on the tonic of each window's key as well (added, at zero, to an --init model without it)",
    )
    m.add_argument(
        "--key",
        action="store_true",
        help="condition on each window's key, tonic and mode (24 vectors; an --init "
        "model's tonic vectors start both modes of their tonic)",
    )
    m.add_argument(
        "--max-minutes", type=minutes, default=0.0, help="stop and save after this long (default 0: no limit)"
    )
    m.add_argument("--init", help="path stem of weights to fine-tune (e.g. models/scorebridge-music)")
    m.add_argument("--lr", type=lr, default=1.5e-3, help="peak learning rate (default 0.0015)")
    m.add_argument(
        "--boundary-weight",
        type=weight,
        default=1.0,
        help="loss weight of positions less than 1 s before a boundary (default 1)",
    )
    m.add_argument(
        "--p-mode-swap", type=_share, default=0.5, help="share of windows put in the parallel mode (default 0.5)"
    )
    m.add_argument(
        "--p-mode-switch",
        type=_share,
        default=0.5,
        help="share of windows whose mode and valence change mid-window (default 0.5)",
    )
    m.add_argument(
        "--p-retime", type=_share, default=0.5, help="share of windows held or cut before boundaries (default 0.5)"
    )
    m.add_argument(
        "--p-key-switch",
        type=_share,
        default=0.0,
        metavar="P",
        help="share of windows (models with --tonic/--key, when the mode does not switch) "
        "whose key changes every 2-6 s, the condition with it (default 0)",
    )
    m.add_argument(
        "--p-energy-switch",
        type=_share,
        default=0.0,
        help="share of windows whose tempo, loudness and arousal change mid-window "
        "(drawn when the mode does not switch; default 0)",
    )
    m.add_argument(
        "--valence-contrast",
        type=weight,
        default=0.0,
        help="weight of the valence contrast: each window more likely under its own "
        "valence than under the opposite one (default 0: off)",
    )
    m.add_argument(
        "--contrast-scale", type=scale, default=50.0, help="sharpness of that contrast, per nat/token (default 50)"
    )
    m.add_argument(
        "--self-data", metavar="FILE", help="kept takes from `train takes` to mix into every batch (a fine-tune)"
    )
    m.add_argument(
        "--self-share",
        type=_share,
        default=0.5,
        metavar="S",
        help="share of each batch drawn from --self-data (default 0.5)",
    )
    m.add_argument(
        "--groove-share",
        type=_share,
        default=None,
        metavar="S",
        help="share of training windows drawn from mma's grooves, where the corpus has "
        "them (train corpus --grooves; default: weighted as every work, about 0.25)",
    )
    m.add_argument(
        "--p-local",
        type=_share,
        default=0.0,
        metavar="P",
        help="share of batches cut into stretches of 16-64 tokens, each position "
        "hearing only its own stretch, so the conditions must tell the key and "
        "mode (default 0)",
    )
    m.add_argument(
        "--workers",
        type=_workers,
        default=0,
        metavar="N",
        help="processes building batches ahead of the loop, each step's batch seeded by "
        "the step (for a GPU, which trains faster than one core builds batches; "
        "default 0: built in the loop)",
    )
    m.add_argument("--ship", action="store_true", help="also write models/scorebridge-music.*")
    m.set_defaults(func=lambda args: _model(args))
    k = tsub.add_parser(
        "takes",
        help="write takes for a set of targets and keep the best of each "
        "(data for self-training, see bridge/music/selftrain.py)",
    )
    k.add_argument("--out", required=True, help="where to write the kept takes (.json.gz)")
    k.add_argument("--model", help="path stem of the model that writes them (default: the shipped one)")
    k.add_argument("--targets", type=_positive_int, default=800)
    k.add_argument("--candidates", type=_positive_int, default=6, help="takes per target")
    k.add_argument("--seconds", type=_take_seconds, default=16.0, help="length of each take")
    k.add_argument("--seed", type=seed_value, default=1)
    k.add_argument(
        "--key-guidance",
        type=_key_guidance,
        default=1.0,
        metavar="W",
        help="for a model with the tonic condition (each target then in a seeded tonic): "
        "key guidance of its takes (default 1: none)",
    )
    k.set_defaults(func=lambda args: _takes(args))
    e = sub.add_parser("eval", help="evaluate the shipped music model (JSON)")
    e.add_argument("--quick", action="store_true", help="fewer windows and takes")
    e.add_argument("--json-out", help="also write the JSON here")
    e.add_argument("--model", help="path stem of another model (default: the shipped one)")
    e.add_argument(
        "--twin",
        help="path stem of a run trained with --unconditioned (otherwise "
        "identical), whose NLL is reported beside the model's",
    )
    e.add_argument(
        "--twin-windows",
        type=_twin_windows,
        default=1024,
        metavar="N",
        help="with --twin: further validation windows on which the two runs are compared "
        "window by window, with a bootstrap interval (default 1024)",
    )
    only = e.add_mutually_exclusive_group()
    only.add_argument("--nll-only", action="store_true", help="only the validation NLL section")
    only.add_argument("--speed-only", action="store_true", help="only the sampling speed section (needs no corpus)")
    e.add_argument(
        "--guidance", type=_guidance, default=2.0, help="classifier-free guidance reported beside plain sampling"
    )
    e.add_argument(
        "--steer",
        type=_strength,
        default=None,
        metavar="S",
        help="key-steering strength reported beside plain sampling (the product's, "
        "compose.KEY_PULL; 0 leaves that variant out)",
    )
    e.add_argument(
        "--temperature",
        type=_temperature,
        default=1.0,
        metavar="T",
        help="sampling temperature of every generated take (default 1.0)",
    )
    e.add_argument(
        "--top-p",
        type=_top_p,
        default=None,
        metavar="P",
        help="nucleus of every generated take: the smallest set of likeliest tokens "
        "holding this much probability (default: the sampler's, sample.TOP_P)",
    )
    e.add_argument(
        "--note-temperature",
        type=_temperature,
        default=None,
        metavar="T",
        help="temperature of each note-on's pitch alone (default: --temperature); "
        "how many notes start, when and in which family stay at --temperature",
    )
    e.add_argument(
        "--key-guidance",
        type=_key_guidance,
        default=None,
        metavar="W",
        help="for a model with the tonic condition, the key guidance of its key-guided "
        "variant (default: the sampler's, sample.KEY_GUIDANCE; 1 leaves it out)",
    )
    e.add_argument(
        "--key-cut",
        type=_key_cut,
        default=None,
        metavar="S",
        help="the key-guided variant draws its pitches unguided where a cut is due within "
        "S seconds (default: the sampler's, sample.KEY_CUT_S; 0: guided everywhere)",
    )
    e.add_argument(
        "--int8",
        action="store_true",
        help="sample every take from a copy with int8 linear layers (CPU; faster at "
        "batch 1); the NLL stays the float model's",
    )
    e.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="the linear layers' precision when sampling: auto (default) takes a "
        "bf16-packed copy for steps of more than 6 rows on a CPU that does bf16 and "
        "the model as it is elsewhere; fp32 the model as it is; the NLL is measured "
        "apart (bf16 autocast)",
    )
    e.add_argument(
        "--seeds",
        type=_seed_count,
        default=4,
        metavar="N",
        help="draws of the plain boundary and style sections, reported per seed and "
        "on average (default 4; 1 for the first draw alone)",
    )
    e.set_defaults(func=lambda args: _eval(args))
