"""A tiny training run on a tiny synthetic corpus lowers the loss; checkpoints resume."""

import json

import numpy as np
import pytest
import torch

from bridge.music import labels
from bridge.music.data import make_example
from bridge.music.model import MusicConfig
from bridge.music.train import TrainConfig, train


def _work(i, minor=False):
    """Four voices of long chords (I-IV-V-I) in quarter notes, plus a moving melody."""
    third = 3 if minor else 4
    roots = [0, 5, 7, 0] * 4
    parts = [[], [], [], []]
    for k, r in enumerate(roots):
        t = 4.0 * k
        for v, iv in enumerate((-12, 0, third, 7)):
            parts[v].append((t, 4.0, 60 + r + iv))
    melody = [(4.0 * k + j, 1.0, 72 + (r + (0, 2, 4, 7)[j]) % 12) for k, r in enumerate(roots) for j in range(4)]
    return {
        "id": f"synth/{i}",
        "collection": "synth",
        "qpm": 90.0,
        "parts": [np.array(p, dtype=np.float32) for p in parts] + [np.array(melody, dtype=np.float32)],
    }


def test_windows_have_labels_boundaries_and_conditions():
    rng = np.random.default_rng(0)
    keep_mode = {"mode_swap": False}  # the swap augmentation would turn one of the two round
    x, c, (v, a) = make_example(_work(0), rng, 128, p_drop_va=0, p_drop_b=0, start_q=0.0, fixed=keep_mode)
    assert x.shape == (129,) and c.shape == (129, 10)
    assert -1 <= v <= 1 and -1 <= a <= 1
    assert np.all(c[:, 3] == 1) and c[:, 6].max() > 0.9  # offsets given, reaching 0 at chords
    _, _, (v_minor, _) = make_example(
        _work(0, minor=True), np.random.default_rng(0), 128, p_drop_va=0, p_drop_b=0, start_q=0.0, fixed=keep_mode
    )
    assert v_minor < v  # same window in minor: lower valence


def test_labels_follow_known_augmentation_effects():
    from bridge.music.tokens import Note

    slow = [Note(i * 0.5, 0.5, 60 + (i % 5), 60, "piano") for i in range(16)]
    fast = [n._replace(start=n.start / 2, duration=n.duration / 2) for n in slow]
    loud = [n._replace(velocity=110) for n in slow]
    assert labels.label(fast)[1] > labels.label(slow)[1]
    assert labels.label(loud)[1] > labels.label(slow)[1]
    chords = [Note(t, 1.2, p, 80, "pad") for t in (0.0, 2.0) for p in (60, 64, 67)]
    assert list(labels.boundaries(chords)) == [0.0, 2.0]


def test_a_short_chord_is_a_boundary_only_when_the_kick_or_a_crash_strikes_with_it():
    from bridge.music.tokens import Note

    stabs = [Note(t, 0.3, p, 80, "piano") for t in (0.0, 1.6, 3.2, 4.0) for p in (60, 64, 67)]
    assert len(labels.boundaries(stabs)) == 0  # short: no boundary alone
    kit = [
        Note(0.0, 0.1, 36, 90, "drums"),
        Note(1.6, 0.1, 42, 90, "drums"),  # kick, hi-hat
        Note(3.2, 0.1, 49, 90, "drums"),
        Note(4.0, 0.1, 35, 90, "drums"),
    ]  # crash, kick
    # the hi-hat is no accent; the kick at 4.0 s comes under MIN_GAP_S after the crash
    assert list(labels.boundaries(stabs + kit)) == [0.0, 3.2]
    two = [n for n in stabs if n.pitch != 67]  # two notes are no chord
    assert len(labels.boundaries(two + kit)) == 0


def test_tiny_training_run_lowers_loss_and_resumes(tmp_path):
    works = [_work(i, minor=i % 2 == 1) for i in range(6)]
    model_cfg = MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16)
    cfg = TrainConfig(
        out_dir=str(tmp_path / "run"),
        steps=40,
        batch_size=8,
        lr=3e-3,
        warmup=5,
        eval_every=10,
        eval_windows=8,
        log_every=1000,
        bf16=False,
        seed=3,
        model=model_cfg,
    )
    torch.manual_seed(0)
    _, hist = train(cfg, works, works[:2], log=lambda s: None)
    first, last = hist[0], hist[-1]
    assert (tmp_path / "run" / "ckpt.pt").exists()
    assert (tmp_path / "run" / "scorebridge-music.safetensors").exists()
    cfg2 = TrainConfig(**{**cfg.__dict__, "steps": 60, "eval_every": 20})
    _, hist2 = train(cfg2, works, works[:2], resume=True, log=lambda s: None)
    assert hist2[-1]["step"] == 60
    # Untrained loss is ~ln(1032) = 6.9 nats; a few dozen steps on repetitive chords go far below.
    assert last["val_nll_cond"] < first["val_nll_cond"] - 0.5
    assert last["val_nll_cond"] < 6.0
    assert hist2[-1]["val_nll_cond"] < last["val_nll_cond"] + 0.05


def test_mode_swap_moves_major_to_minor_and_back_and_the_label_follows():
    from bridge.music.data import augment, swap_mode
    from bridge.music.tokens import Note

    scale = [Note(i * 0.5, 0.5, p, 80, "melody") for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2)]
    chords = [
        Note(4.0 * k, 2.0, p, 70, "pad")
        for k, root in enumerate([0, 5, 7, 0])
        for p in (48 + root, 52 + root, 55 + root)
    ]
    drums = [Note(0.0, 0.1, 64, 100, "drums")]
    major = scale + chords + drums
    minor = swap_mode(major)
    assert sorted({n.pitch % 12 for n in minor if n.family == "melody"}) == [0, 2, 3, 5, 7, 8, 10]
    assert [n for n in minor if n.family == "drums"] == drums  # drum keys are not pitches
    assert labels.label(minor)[0] < labels.label(major)[0] - 0.5
    back = swap_mode(minor)
    assert sorted({n.pitch % 12 for n in back if n.family == "melody"}) == [0, 2, 4, 5, 7, 9, 11]
    # evaluation windows (fixed choices) are never swapped unless asked
    work = _work(0)
    fixed = {"transpose": 0, "octave": 0, "qpm": 90.0, "level": 3, "scheme": "ensemble"}
    rng = np.random.default_rng(0)
    assert augment(work, rng, start_q=0.0, fixed=fixed) == augment(work, rng, start_q=0.0, fixed=fixed)
    swapped = augment(work, rng, start_q=0.0, fixed=dict(fixed, mode_swap=True))
    assert labels.label(swapped)[0] < labels.label(augment(work, rng, start_q=0.0, fixed=fixed))[0]


def test_boundary_weighted_loss_counts_positions_before_a_boundary_more():
    from bridge.music.model import cond_features
    from bridge.music.train import boundary_weighted_loss

    torch.manual_seed(0)
    logits = torch.randn(1, 4, 10)
    y = torch.tensor([[3, 4, 5, 0]])  # the last target is PAD: ignored
    offsets = np.array([5.0, 0.5, 0.0, 0.0])  # the middle two lie within 1 s of a boundary
    c = torch.from_numpy(cond_features(0.0, 0.0, offsets, 1.0, 1.0))[None]
    ce = torch.nn.functional.cross_entropy(logits[0, :3], y[0, :3], reduction="none")
    assert torch.isclose(boundary_weighted_loss(logits, y, c, 1.0), ce.mean())
    assert torch.isclose(boundary_weighted_loss(logits, y, c, 3.0), (ce[0] + 3 * ce[1] + 3 * ce[2]) / 7)
    withheld = torch.from_numpy(cond_features(0.0, 0.0, offsets, 1.0, 0.0))[None]
    assert torch.isclose(boundary_weighted_loss(logits, y, withheld, 3.0), ce.mean())


def _phrase():
    """Quarter-note melody over a bass, and a long three-note chord at 2.0 s."""
    from bridge.music.tokens import Note

    notes = [Note(i * 0.5, 0.5, 72 + i, 80, "melody") for i in range(8)]
    notes += [Note(1.0, 1.5, 43, 70, "bass")]  # sounds across the chord's onset
    notes += [Note(2.0, 2.0, p, 70, "pad") for p in (48, 52, 55)]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def test_cut_timing_moves_the_boundary_off_the_beat_and_keeps_the_music_whole():
    from bridge.music.data import _cut_before, _hold_before, retime_at_boundaries

    notes = _phrase()
    assert list(labels.boundaries(notes)) == [2.0]

    def edited(edit, d):
        """The phrase with the edit at its boundary (2 s), as notes."""
        start, dur = np.array([n.start for n in notes]), np.array([n.duration for n in notes])
        start, dur, *kept = edit(start, dur, 2.0, d)
        keep = kept[0] if kept else np.ones(len(notes), bool)
        return [n._replace(start=float(s), duration=float(x)) for n, s, x, k in zip(notes, start, dur, keep) if k]

    held = edited(_hold_before, 0.3)
    assert list(labels.boundaries(held)) == [2.3]
    assert len(held) == len(notes)
    assert [n.duration for n in held if n.pitch == 43] == [1.8]  # held into the chord
    assert [n.duration for n in held if n.start == 1.5] == [0.8]  # the last step is 0.8 s
    cut = edited(_cut_before, 0.3)
    assert list(labels.boundaries(cut)) == [1.7]
    assert [n.duration for n in cut if n.pitch == 43] == [1.2]  # still reaches the chord
    assert [n.duration for n in cut if n.start == 1.5] == [0.2]  # the last step is 0.2 s
    assert len(cut) == len(notes) and all(n.duration > 0 for n in cut)
    removed = edited(_cut_before, 0.6)  # takes the note at 1.5 s
    assert len(removed) == len(notes) - 1 and list(labels.boundaries(removed)) == [1.4]
    # every window with a boundary: the new boundary lies within the allowed range of the old
    rng = np.random.default_rng(0)
    moved = {float(labels.boundaries(retime_at_boundaries(notes, rng, share=1.0))[0]) for _ in range(40)}
    assert len(moved) > 10 and all(1.5 <= b <= 2.5 and b != 2.0 for b in moved)


def test_mode_switch_changes_the_valence_condition_where_the_mode_changes():
    from bridge.music.tokens import decode, token_times_ms

    aug = {"mode_swap": 0.0, "mode_switch": 1.0, "retime": 0.0}
    seen = 0
    for seed in range(10):
        # the same window without the switch (same draws up to it) is the reference
        x, c, (v, _) = make_example(
            _work(0), np.random.default_rng(seed), 512, p_drop_va=0, p_drop_b=0, start_q=0.0, aug=aug
        )
        ref, _, _ = make_example(
            _work(0),
            np.random.default_rng(seed),
            512,
            p_drop_va=0,
            p_drop_b=0,
            start_q=0.0,
            aug=dict(aug, mode_switch=0.0),
        )
        vs = c[:, 0]
        if np.ptp(vs) == 0:
            continue
        seen += 1
        assert vs[0] == v and len(set(np.round(vs, 5))) == 2  # two labels, the first at the start
        assert vs.min() < vs[0] - 0.5  # the major work turned minor
        changes = int((np.diff(vs) != 0).sum())
        assert changes >= 2  # every few seconds, not once
        times = token_times_ms(x) / 1000
        switched = dict(zip(np.round(times, 3), vs != vs[0]))  # condition at each moment

        def by_onset(tokens):
            out = {}
            for n in decode(tokens):
                out.setdefault(round(n.start, 3), []).append(n.pitch)
            return {t: sorted(p) for t, p in out.items()}

        got, want = by_onset(x), by_onset(ref)
        assert got.keys() == want.keys()  # only pitches change
        lowered = kept = 0
        for t in got:
            diff = np.array(got[t]) - np.array(want[t])
            if switched[t]:
                assert set(diff) <= {0, -1}  # 3rd, 6th, 7th lowered
                lowered += int((diff == -1).sum())
            else:
                assert not diff.any()  # major where the condition is
                kept += 1
        assert lowered > 0 and kept > 0
    assert seen >= 5
    # evaluation windows never switch
    _, c, _ = make_example(_work(0), np.random.default_rng(0), 256, fixed={"transpose": 0}, start_q=0.0, aug=aug)
    assert np.ptp(c[:, 0]) == 0


def test_unconditioned_twin_is_trained_without_conditions_and_evaluated_beside(tmp_path):
    import json
    from bridge.music.evaluate import evaluate

    works = [_work(i, minor=i % 2 == 1) for i in range(6)]
    model_cfg = MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16)
    runs = {}
    for name, uncond in (("cond", False), ("twin", True)):
        cfg = TrainConfig(
            out_dir=str(tmp_path / name),
            steps=30,
            batch_size=8,
            lr=3e-3,
            warmup=5,
            eval_every=30,
            eval_windows=8,
            log_every=1000,
            bf16=False,
            seed=3,
            model=model_cfg,
            unconditioned=uncond,
        )
        torch.manual_seed(0)
        runs[name], _ = train(cfg, works, works[:2], log=lambda s: None)
    meta = json.loads((tmp_path / "twin" / "scorebridge-music.json").read_text())
    assert meta["train"]["unconditioned"] is True
    assert meta["train"]["p_drop_va"] == meta["train"]["p_drop_b"] == 0.2  # drawn as its pair's
    res = evaluate(
        model=runs["cond"].eval(),
        twin=runs["twin"].eval(),
        works_val=works[2:],
        works_test=works[2:],
        quick=True,
        nll_only=True,
        log=lambda s: None,
    )
    nll = res["nll"]
    assert set(nll) >= {"conditioned", "unconditioned", "twin_unconditioned", "valence_flipped"}
    assert all(0 < nll[k] < 7 for k in ("conditioned", "unconditioned", "twin_unconditioned"))
    assert res["targets_met"]["nll_conditioned_below_twin"] == (nll["conditioned"] < nll["twin_unconditioned"])
    paired = nll["twin_paired"]  # window by window on further windows, with an interval
    assert paired["windows"] == 32 and paired["tokens"] > 0
    assert paired["gap"] == pytest.approx(paired["conditioned"] - paired["twin_unconditioned"], abs=2e-4)
    assert paired["gap_95"][0] <= paired["gap"] <= paired["gap_95"][1]
    assert 0 <= paired["windows_conditioned_lower"] <= 1
    assert res["targets_met"]["nll_conditioned_below_twin_paired_95"] == (paired["gap_95"][1] < 0)
    assert "control" not in res  # --nll-only stops after the NLL
    assert not torch.is_autocast_enabled("cpu")  # nothing left switched on for what runs next


def test_twin_pair_differs_only_in_what_the_model_is_told(tmp_path):
    """With the key condition, key switches and boundary weighting (run 8's recipe), the
    unconditioned twin draws its pair's windows and weights the same positions before
    boundaries. A model from scratch starts deaf to its conditions (zero-initialised
    path), so the pair's first loss is the same number; a twin whose windows or loss
    weights differed would not give it."""
    import json

    works = [_work(i, minor=i % 2 == 1) for i in range(6)]
    model_cfg = MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16, tonic=True, tonic_modes=2)
    first = {}
    for name, uncond in (("cond", False), ("twin", True)):
        lines = []
        cfg = TrainConfig(
            out_dir=str(tmp_path / name),
            steps=1,
            batch_size=8,
            lr=3e-3,
            warmup=1,
            eval_every=100,
            eval_windows=4,
            log_every=1,
            bf16=False,
            seed=5,
            boundary_weight=8.0,
            p_key_switch=0.8,
            model=model_cfg,
            unconditioned=uncond,
        )
        torch.manual_seed(0)
        train(cfg, works, works[:2], log=lines.append)
        first[name] = json.loads(next(s for s in lines if s.startswith('{"step"')))["loss"]
    assert first["cond"] == first["twin"]
    # ... and the weighting is in the twin's loss: the same run with weight 1 differs.
    cfg = TrainConfig(
        out_dir=str(tmp_path / "w1"),
        steps=1,
        batch_size=8,
        lr=3e-3,
        warmup=1,
        eval_every=100,
        eval_windows=4,
        log_every=1,
        bf16=False,
        seed=5,
        boundary_weight=1.0,
        p_key_switch=0.8,
        model=model_cfg,
        unconditioned=True,
    )
    lines = []
    torch.manual_seed(0)
    train(cfg, works, works[:2], log=lines.append)
    assert json.loads(next(s for s in lines if s.startswith('{"step"')))["loss"] != first["twin"]


def test_valence_contrast_pushes_each_window_towards_its_own_valence(tmp_path):
    """Steps on the contrast alone make windows likelier under their valence than under the
    opposite one; windows whose valence is withheld or near 0 take no part."""
    import json
    from bridge.music.model import MusicTransformer
    from bridge.music.train import fixed_windows, valence_contrast_loss, token_logprobs

    works = [_work(i, minor=i % 2 == 1) for i in range(6)]
    cfg = MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16)
    torch.manual_seed(0)
    model = MusicTransformer(cfg)
    x, c, y = fixed_windows(works, 8, cfg.block_size, seed=1)
    flipped = c.clone()
    flipped[..., 0] = -flipped[..., 0]

    def margin():
        with torch.no_grad():
            return float(
                (token_logprobs(model(x, c)[0], y) - token_logprobs(model(x, flipped)[0], y)).sum() / (y != 0).sum()
            )

    before = margin()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = valence_contrast_loss(model, x, c, y, model(x, c)[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[0] > 0.6 and losses[-1] < 0.3  # softplus(0) = 0.69 at the start
    assert margin() > before + 0.01
    quiet = c.clone()
    quiet[..., 0] = 0.1  # near 0: flipping changes nothing
    assert valence_contrast_loss(model, x, quiet, y, model(x, quiet)[0]) is None
    withheld = c.clone()
    withheld[..., 0:3] = 0
    assert valence_contrast_loss(model, x, withheld, y, model(x, withheld)[0]) is None
    # Restricted to some rows (the kept takes of a mixed batch): the others take no part.
    none = torch.zeros(len(x), dtype=torch.bool)
    assert valence_contrast_loss(model, x, c, y, model(x, c)[0], rows=none) is None
    one = none.clone()
    one[int((c[:, 0, 0].abs() > 0.2).nonzero()[0])] = True
    assert valence_contrast_loss(model, x, c, y, model(x, c)[0], rows=one) is not None
    # In the loop: logged beside the loss and recorded in the exported weights' metadata.
    lines = []
    tcfg = TrainConfig(
        out_dir=str(tmp_path / "run"),
        steps=3,
        batch_size=4,
        warmup=1,
        eval_every=3,
        eval_windows=4,
        log_every=1,
        bf16=False,
        model=cfg,
        valence_contrast=0.5,
    )
    train(tcfg, works, works[:2], log=lines.append)
    assert any('"contrast"' in line for line in lines)
    meta = json.loads((tmp_path / "run" / "scorebridge-music.json").read_text())
    assert meta["train"]["valence_contrast"] == 0.5


def test_kept_takes_follow_their_target_and_train_as_sampled(tmp_path):
    """Self-training data: the take in the asked mode scores higher, a kept take survives the
    file round trip, and its training window carries the conditions it was sampled with."""
    from bridge.music import selftrain
    from bridge.music.data import swap_mode
    from bridge.music.tokens import Note, decode

    chords = [
        Note(2.0 * k + 0.0, 1.9, 60 + r + iv, 84, "pad")
        for k, r in enumerate((0, 5, 7, 0, 0, 5, 7, 0))
        for iv in (0, 4, 7)
    ]
    minor = swap_mode(chords)
    happy = {"valence": 0.8, "arousal": 0.0, "bounds": [2.0, 6.0]}
    sad = {**happy, "valence": -0.8}
    assert selftrain.score(chords, happy, 16.0) > selftrain.score(minor, happy, 16.0)
    assert selftrain.score(minor, sad, 16.0) > selftrain.score(chords, sad, 16.0)
    off_cut = [n._replace(start=n.start + 0.5) for n in chords]  # chords miss the cuts
    assert selftrain.score(chords, happy, 16.0) > selftrain.score(off_cut, happy, 16.0)
    assert selftrain.score([], happy, 16.0) == float("-inf")

    targets = [happy, sad]
    best = [(chords, 0.5, [0.5, -1.0]), (minor, 0.4, [0.4])]
    path = tmp_path / "takes.json.gz"
    selftrain.save(path, selftrain.keep(targets, best, 16.0), {"candidates": 2})
    data = selftrain.load(path)
    assert data["meta"]["candidates"] == 2 and len(data["takes"]) == 2
    assert data["takes"][0]["notes"] == chords

    rec = data["takes"][0]
    toks, cond = selftrain.make_self_example(rec, np.random.default_rng(0), 96, transpose=False)
    assert toks.shape == (97,) and cond.shape == (97, 10) and np.all(cond[:, 9] == 0)
    real = toks[toks != 0]
    got = decode(list(real))
    assert [(round(n.start, 3), n.pitch) for n in got] == [(n.start, n.pitch) for n in chords][: len(got)]
    assert np.allclose(cond[: len(real), 0], 0.8) and np.all(cond[: len(real), 3] == 1)
    assert cond[0, 8] == np.float32(2.0)  # 2 s to the first cut at the start
    sad_toks, sad_cond = selftrain.make_self_example(
        {**rec, "bounds": None, "valence": -0.8}, np.random.default_rng(0), 96
    )
    assert np.all(sad_cond[:, 3] == 0) and np.allclose(sad_cond[:, 0], -0.8)
    # for a model with the tonic condition: the tonic of the take's key (C major here)
    _, with_tonic = selftrain.make_self_example(rec, np.random.default_rng(0), 96, transpose=False, p_drop_tonic=0.0)
    assert np.all(with_tonic[:, 9] == 1)


def test_training_mixes_kept_takes_into_every_batch_and_resumes(tmp_path):
    from bridge.music import selftrain
    from bridge.music.model import MusicTransformer

    torch.manual_seed(0)
    model_cfg = MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16)
    writer = MusicTransformer(model_cfg).eval()
    targets = selftrain.draw_targets(4, 4.0, np.random.default_rng(1))
    best = selftrain.generate(writer, targets, 2, 4.0, seed=1, batch=4, log=lambda s: None)
    assert all(len(b[2]) == 2 for b in best)  # every candidate was scored
    assert all(b[1] == max(b[2]) for b in best)  # and the best one kept
    kept = selftrain.keep(targets, best, 4.0)
    path = tmp_path / "takes.json.gz"
    selftrain.save(path, kept, {"candidates": 2})
    works = [_work(i, minor=i % 2 == 1) for i in range(4)]
    cfg = TrainConfig(
        out_dir=str(tmp_path / "run"),
        steps=6,
        batch_size=4,
        lr=3e-3,
        warmup=2,
        eval_every=6,
        eval_windows=4,
        log_every=1000,
        bf16=False,
        seed=3,
        model=model_cfg,
        self_data=str(path),
        self_share=0.5,
    )
    logs = []
    train(cfg, works, works[:2], log=logs.append)
    assert any(f"mixing in {len(kept)} kept takes" in s for s in logs)
    ck = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    assert "self_rng" in ck
    import json

    meta = json.loads((tmp_path / "run" / "scorebridge-music.json").read_text())
    assert meta["train"]["self_data"]["takes"] == len(kept)
    _, hist = train(TrainConfig(**{**cfg.__dict__, "steps": 8}), works, works[:2], resume=True, log=lambda s: None)
    assert hist[-1]["step"] == 8
    # Only kept takes (share 1) works too: no real windows drawn.
    train(
        TrainConfig(**{**cfg.__dict__, "out_dir": str(tmp_path / "all"), "self_share": 1.0}),
        works,
        works[:2],
        log=lambda s: None,
    )


def test_missing_or_broken_kept_takes_are_a_clear_error(tmp_path):
    import gzip
    import subprocess
    import sys
    import pytest
    from bridge.errors import BadInput
    from bridge.music import selftrain

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "train",
            "model",
            "--out",
            str(tmp_path / "run"),
            "--self-data",
            str(tmp_path / "none.json.gz"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 3 and "no kept takes" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing started
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "train",
            "takes",
            "--out",
            str(tmp_path / "t.json.gz"),
            "--model",
            str(tmp_path / "no-such-model"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 4 and "give --model the path stem" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "t.json.gz").exists()
    (tmp_path / "plain.json.gz").write_text("not gzip")
    with pytest.raises(BadInput, match="not a file of kept takes"):
        selftrain.load(tmp_path / "plain.json.gz")
    (tmp_path / "wrong.json.gz").write_bytes(gzip.compress(b'{"meta": {}}'))
    with pytest.raises(BadInput, match="not a file of kept takes"):
        selftrain.load(tmp_path / "wrong.json.gz")


def test_change_energy_stretches_and_louder_every_other_stretch():
    from bridge.music.data import change_energy
    from bridge.music.tokens import Note, VEL_LEVELS

    notes = [
        Note(0.5, 1.0, 60, VEL_LEVELS[3], "piano"),
        Note(1.0, 0.5, 62, VEL_LEVELS[3], "piano"),
        Note(1.5, 0.25, 64, VEL_LEVELS[6], "melody"),
        Note(2.0, 0.5, 65, VEL_LEVELS[3], "piano"),
        Note(2.5, 0.5, 67, VEL_LEVELS[3], "piano"),
    ]
    out, moved = change_energy(notes, [1.0, 2.0], 2.0, 2)
    assert moved == [1.0, 3.0]
    assert [n.start for n in out] == [0.5, 1.0, 2.0, 3.0, 3.5]
    # a note sounding across a switch is held through the slower stretch
    assert out[0].duration == 1.5 and out[1].duration == 1.0 and out[2].duration == 0.5
    assert [n.velocity for n in out] == [VEL_LEVELS[3], VEL_LEVELS[5], VEL_LEVELS[7], VEL_LEVELS[3], VEL_LEVELS[3]]
    whole, _ = change_energy(notes, [0.0], 0.5, -4)  # the whole window, faster and softer
    assert [n.start for n in whole] == [0.25, 0.5, 0.75, 1.0, 1.25]
    assert min(n.velocity for n in whole) == VEL_LEVELS[0]


def test_energy_switch_changes_the_arousal_condition_with_the_music():
    from bridge.music.tokens import decode, token_times_ms

    aug = {"mode_swap": 0.0, "mode_switch": 0.0, "retime": 0.0, "energy_switch": 1.0}
    seen = 0
    for seed in range(10):
        x, c, (_, a) = make_example(
            _work(0), np.random.default_rng(seed), 512, p_drop_va=0, p_drop_b=0, start_q=0.0, aug=aug
        )
        arousal = c[:, 1]
        if np.ptp(arousal) == 0:
            continue
        seen += 1
        assert np.isclose(arousal[0], a, atol=1e-6) and len(set(np.round(arousal, 5))) == 2
        times = token_times_ms(x)
        changed = arousal != arousal[0]
        first = times[np.argmax(changed)]  # the first switch (ms)
        notes = decode(x)
        before = [n for n in notes if n.start * 1000 < first]
        after = [n for n in notes if first <= n.start * 1000 < first + 1000 * 1.0]
        # louder stretches are labelled higher, softer ones lower
        up = np.mean([n.velocity for n in after]) > np.mean([n.velocity for n in before])
        assert (arousal[changed][0] > arousal[0]) == up
    assert seen >= 5


def test_workers_build_each_steps_batch_from_its_seed_and_a_resumed_run_matches(tmp_path):
    from bridge.music import prefetch
    from bridge.music.data import Batcher
    from bridge.music.model import load_shipped

    works = [_work(i, minor=i % 2 == 1) for i in range(6)]
    b = Batcher(works, 96, seed=0)
    with prefetch.Prefetcher(b, None, 5, 4, 0, workers=2, start=3) as pf:
        got = [pf.next() for _ in range(3)]
    for step, arrays in zip((3, 4, 5), got):
        want = prefetch.build(step, Batcher(works, 96, seed=99), None, 5, 4, 0)
        assert all(np.array_equal(g, w) for g, w in zip(arrays, want))
    assert not np.array_equal(got[0][0], got[1][0])  # each step its own windows

    model_cfg = MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16)
    # A flat rate after warm-up, so the 3-step run's schedule is the first half of the 6-step one.
    cfg = TrainConfig(
        out_dir=str(tmp_path / "whole"),
        steps=6,
        batch_size=4,
        lr=3e-3,
        min_lr=3e-3,
        warmup=2,
        eval_every=6,
        eval_windows=4,
        log_every=1000,
        bf16=False,
        seed=3,
        model=model_cfg,
        workers=2,
    )
    train(cfg, works, works[:2], log=lambda s: None)
    half = TrainConfig(**{**cfg.__dict__, "out_dir": str(tmp_path / "half"), "steps": 3})
    train(half, works, works[:2], log=lambda s: None)
    train(TrainConfig(**{**half.__dict__, "steps": 6}), works, works[:2], resume=True, log=lambda s: None)
    whole = load_shipped("cpu", str(tmp_path / "whole" / "scorebridge-music")).state_dict()
    resumed = load_shipped("cpu", str(tmp_path / "half" / "scorebridge-music")).state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def _tiny(tmp_path, name="run", **kw):
    return TrainConfig(
        **{
            "out_dir": str(tmp_path / name),
            "steps": 2,
            "batch_size": 4,
            "lr": 3e-3,
            "warmup": 1,
            "eval_every": 10,
            "eval_windows": 4,
            "log_every": 1000,
            "bf16": False,
            "seed": 3,
            "model": MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=64, n_cond=16),
            **kw,
        }
    )


def test_a_diverging_run_stops_with_a_clear_error_and_saves_nothing_of_it(tmp_path):
    from bridge.music.train import Diverged

    works = [_work(i, minor=i % 2 == 1) for i in range(6)]
    # A checkpoint after every step; a rate that overflows the weights at the second.
    cfg = _tiny(tmp_path, steps=30, lr=1e30, ckpt_every_s=0.0)
    with pytest.raises(Diverged, match=r"diverged at step 2: the loss is nan .*Try a lower --lr"):
        train(cfg, works, works[:2], log=lambda s: None)
    ck = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    assert ck["step"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (tmp_path / "run" / "scorebridge-music.safetensors").exists()  # nothing exported


def test_a_fresh_run_never_writes_over_a_checkpoint_and_a_broken_one_is_a_clear_error(tmp_path):
    from bridge.errors import BadInput

    works = [_work(i) for i in range(4)]
    train(_tiny(tmp_path, steps=1), works, works[:2], log=lambda s: None)
    ckpt = tmp_path / "run" / "ckpt.pt"
    saved = ckpt.read_bytes()
    with pytest.raises(BadInput, match="already holds a training checkpoint.*--resume"):
        train(_tiny(tmp_path), works, works[:2], log=lambda s: None)
    wider = _tiny(tmp_path, model=MusicConfig(block_size=96, n_layer=1, n_head=2, n_embd=96, n_cond=16))
    with pytest.raises(BadInput, match="another model or options"):
        train(wider, works, works[:2], resume=True, log=lambda s: None)
    assert ckpt.read_bytes() == saved
    ckpt.write_bytes(saved[:1000])  # cut short
    with pytest.raises(BadInput, match="unreadable"):
        train(_tiny(tmp_path), works, works[:2], resume=True, log=lambda s: None)
    lines = []
    train(_tiny(tmp_path, "new"), works, works[:2], resume=True, log=lines.append)
    assert any("no checkpoint" in s and "step 0" in s for s in lines)
    first = json.loads(next(s for s in lines if s.startswith('{"step": 1,')))
    assert first["eta_min"] >= 0 and first["min"] >= 0  # half the steps done: as long again


@pytest.mark.slow
@pytest.mark.parametrize("sig, workers", [("SIGTERM", 0), ("SIGINT", 0), ("SIGINT", 2)])
def test_a_run_stopped_by_a_signal_saves_a_checkpoint_between_steps_and_resumes(tmp_path, sig, workers):
    import os
    import signal
    import subprocess
    import sys

    script = f"""
import sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_music_train import _tiny, _work
from bridge.music.train import train
from pathlib import Path
works = [_work(i) for i in range(4)]
try:
    train(_tiny(Path({str(tmp_path)!r}), steps=100000, log_every=1, workers={workers}), works, works[:2], log=lambda s: print(s, flush=True))
except KeyboardInterrupt:
    sys.exit(130)
"""
    # Its own process group, which Ctrl-C in a terminal reaches whole (the batch workers too).
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines = []
    for line in proc.stdout:  # wait until it trains
        lines.append(line)
        if '"step": 3' in line:
            os.killpg(proc.pid, getattr(signal, sig)) if sig == "SIGINT" else proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    lines += out.splitlines()
    assert proc.returncode == 130 and "Traceback" not in err
    stop = [s for s in lines if s.startswith(f"stopped by {sig}")]
    assert stop and "continue with --resume" in stop[0]
    ck = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    assert ck["step"] >= 3 and f"at step {ck['step']}:" in stop[0]
    assert not (tmp_path / "run" / "scorebridge-music.safetensors").exists()  # not a finished run
    works = [_work(i) for i in range(4)]
    logs = []
    train(_tiny(tmp_path, steps=ck["step"] + 1), works, works[:2], resume=True, log=logs.append)
    assert any(s.startswith(f"resumed at step {ck['step']}") for s in logs)
