"""`scorebridge eval`: the shipped model's figures, as JSON.

nll            validation NLL (nats/token) with every condition vs all withheld
               (one set of weights trained with condition dropout: see train.py), and,
               given `twin`, vs a separate run trained with every condition withheld
               (also window by window on more windows, with a bootstrap interval)
control        5x5 grid of (valence, arousal) targets, several takes each; Spearman rho
               between target and measured: valence <- Krumhansl major-minor score,
               arousal <- onset density and mean velocity (and their label combination)
boundaries     share of requested boundaries with a chord onset (>= 3 notes) within
               +-125 ms, offsets given vs withheld, no decode-time constraint
               (control and boundaries: plain sampling, and with classifier-free guidance;
               control and style also "steered": plain sampling pulled toward a key whose
               mode follows the valence's sign, as a score does it — steer.py; for a
               model with the tonic condition every section also has "tonic": plain
               sampling with each take given a seeded tonic, its mode left to the valence,
               or for a model with key vectors given by the valence's sign: sample.py;
               and "key_guided_W": the same with key guidance W, sample(key_guidance=));
               control.switch: valence changing mid-take (+0.8 -> -0.8 and back), the
               mode of each half measured apart, as when the picture's mood turns;
               control.arousal_changes: arousal jumping every 6 s, each section's
               energy measured apart (and with each section sampled afresh)
style          pitch-class entropy and grooving-pattern similarity (REFERENCES.md) of
               generated vs held-out real windows that music fills to their end; "bars"
               are 2 s (4 beats at 120 qpm), as generated music has no bar lines;
               entropy per 4-bar window
speed          sampling tokens/s at batch 1 with the key/value cache (and batch 8), at the
               precision sample() picks for each (sample.sampling_precision), the median
               of three runs; steps_by_threads: how many of their steps ran with torch's
               thread count and how many with one (sample() chooses as it goes);
               `scorebridge eval --speed-only` measures this section alone
"""

import json
import time

import numpy as np
import torch

from bridge.music import labels
from bridge.music.model import N_COND_FEATURES, load_shipped, quantized
from bridge.music.sample import KEY_CUT_S, KEY_GUIDANCE, TOP_P, sample, sampling_precision, step_rows
from bridge.music.steer import STRENGTH, for_valence

GRID = (-0.8, -0.4, 0.0, 0.4, 0.8)
BAR_S = 2.0
GRID_STEPS = 16


def spearman_rho(a, b):
    """Spearman's rho (ties share their mean rank); None when either side is constant."""

    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for value in np.unique(x):
            r[x == value] = r[x == value].mean()
        return r

    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def spearman(x, y):
    r = spearman_rho(x, y)
    return None if r is None else round(r, 3)


def measured_arousal(f):
    """The density and loudness terms of the arousal label, on generated notes."""
    z = labels.terms(f)
    return 0.50 * z["tempo"] + 0.35 * z["loudness"]


def pitch_class_entropy(notes, window_s=4 * BAR_S):
    """Mean entropy (bits) of the pitch-class histogram per window; None when no window has
    two pitched notes (undefined, and left out of averages rather than counted as 0)."""
    if not notes:
        return None
    end = max(n.start for n in notes) + 1e-6
    out = []
    for w0 in np.arange(0, end, window_s):
        pcs = [n.pitch % 12 for n in notes if w0 <= n.start < w0 + window_s and n.family != "drums"]
        if len(pcs) < 2:
            continue
        h = np.bincount(pcs, minlength=12) / len(pcs)
        h = h[h > 0]
        out.append(float(-(h * np.log2(h)).sum()))
    return float(np.mean(out)) if out else None


def grooving_similarity(notes, bar_s=BAR_S, steps=GRID_STEPS):
    """1 - mean XOR of per-bar binary onset vectors, averaged over all pairs of bars; None
    when fewer than two bars have an onset (no pair: undefined, not 0)."""
    if not notes:
        return None
    n_bars = int(max(n.start for n in notes) // bar_s) + 1
    grid = np.zeros((n_bars, steps), dtype=bool)
    for n in notes:
        b = int(n.start // bar_s)
        grid[b, min(int((n.start - b * bar_s) / bar_s * steps), steps - 1)] = True
    grid = grid[grid.any(1)]
    if len(grid) < 2:
        return None
    sims = [1 - np.logical_xor(grid[i], grid[j]).mean() for i in range(len(grid)) for j in range(i + 1, len(grid))]
    return float(np.mean(sims))


def _mean_defined(measure, takes):
    vals = [x for x in (measure(t) for t in takes) if x is not None]
    return float(np.mean(vals)) if vals else float("nan")


def boundary_hits(notes, bounds, tol=0.125):
    onsets = labels.chord_onsets(notes)
    if len(onsets) == 0:
        return 0
    return int(sum(np.abs(onsets - b).min() <= tol + 1e-9 for b in bounds))


def _boundary_targets(rng, n_takes, seconds):
    """Random cut lists (first cut 1.5-3 s in, then every 2-5 s) and a (valence, arousal) per take."""
    bounds_per, va_per = [], []
    for _ in range(n_takes):
        t, bs = 1.0 + rng.uniform(0.5, 2.0), []
        while t < seconds - 1.0:
            bs.append(round(t, 3))
            t += rng.uniform(2.0, 5.0)
        bounds_per.append(bs)
        va_per.append((float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.8, 0.8))))
    return bounds_per, va_per


def _boundary_rates(model, seconds, bounds_per, va_per, seed, guidance, draw):
    """Share of the requested boundaries hit with the offsets given, and withheld."""
    rates, requested = {}, max(sum(len(b) for b in bounds_per), 1)
    for mode, use_b in (("given", True), ("withheld", False)):
        takes = sample(
            model,
            seconds,
            valence=[x[0] for x in va_per],
            arousal=[x[1] for x in va_per],
            boundaries=bounds_per,
            batch=len(bounds_per),
            seed=seed + 100,
            per_take=True,
            use_boundaries=use_b,
            guidance=guidance,
            **draw,
        )
        got = sum(boundary_hits(t, bs) for t, bs in zip(takes, bounds_per))
        rates[f"hit_rate_{mode}"] = round(got / requested, 3)
    return rates


def _style_windows(rng, works_test, n_real, seconds, tries=4):
    """Held-out real windows (one ensemble arrangement, untransposed) and their labels and
    boundaries, which the generated takes are conditioned on. Only windows that music fills
    to the end count (a work goes on past it): a window cut short by the work's end, set
    against takes that fill every second, reads as sparser and is labelled calmer than the
    music it holds. Works are taken in a seeded order, each from up to `tries` starts, until
    `n_real` windows are found."""
    from bridge.music.data import augment

    reals, conds = [], []
    for i in rng.permutation(len(works_test)):
        for _ in range(tries):
            notes = augment(
                works_test[i], rng, max_notes=10**5, fixed={"transpose": 0, "octave": 0, "scheme": "ensemble"}
            )
            if notes and max(n.start for n in notes) >= seconds:
                break
        else:
            continue
        notes = [n for n in notes if n.start < seconds]
        if len(notes) < 8:
            continue
        reals.append(notes)
        conds.append((labels.label(notes, span_s=seconds), list(labels.boundaries(notes))))
        if len(reals) == n_real:
            break
    return reals, conds


def _style_row(gens, pe_r, gs_r):
    pe_g, gs_g = _mean_defined(pitch_class_entropy, gens), _mean_defined(grooving_similarity, gens)
    return {
        "pitch_class_entropy_gen": round(pe_g, 3),
        "pitch_class_entropy_rel_diff": round(abs(pe_g - pe_r) / pe_r, 3),
        "grooving_similarity_gen": round(gs_g, 3),
        "grooving_similarity_rel_diff": round(abs(gs_g - gs_r) / gs_r, 3),
    }


def _arousal_changes(model, seed, quick, guidance, draw):
    """Takes whose arousal jumps to a new grid value every few seconds (valence 0, no cuts).
    Spearman rho over the sections after the first, between each section's target and the
    arousal measured in it (and its onset rate and loudness apart): the first section starts
    from silence, the later ones must turn away from the music just heard."""
    n_takes, n_sec, sec = (8, 4, 4.0) if quick else (24, 6, 6.0)
    rng = np.random.default_rng([seed, 7])  # its own draws: the sections below keep theirs
    targets = [[float(x) for x in rng.choice(GRID, n_sec)] for _ in range(n_takes)]
    out = {"takes": n_takes, "sections_each": n_sec, "seconds_each_section": sec}
    for name, g in (("plain", 1.0), (f"guidance_{guidance:g}", guidance)):
        takes = sample(
            model,
            n_sec * sec,
            arousal=[[(i * sec, a) for i, a in enumerate(t)] for t in targets],
            valence=[0.0] * n_takes,
            batch=n_takes,
            seed=seed + 70,
            per_take=True,
            use_boundaries=False,
            guidance=g,
            **draw,
        )
        out[name] = _section_rhos(takes, targets, sec)
    # The same sections each sampled afresh (from silence at the section's start): how much
    # of what is missing above is the music already heard holding the model to its energy.
    fresh = [[] for _ in targets]
    for i in range(n_sec):
        start = i * sec
        takes = sample(
            model,
            start + sec,
            arousal=[t[i] for t in targets],
            valence=[0.0] * n_takes,
            batch=n_takes,
            seed=seed + 70 + i,
            per_take=True,
            use_boundaries=False,
            prompt_ms=int(round(start * 1000)),
            **draw,
        )
        for f, take in zip(fresh, takes):
            f.extend(n for n in take if n.start >= start)
    out["fresh_sections"] = _section_rhos(fresh, targets, sec)
    return out


def _section_rhos(takes, targets, sec):
    asked, feats = [], []
    for take, t in zip(takes, targets):
        for i in range(1, len(t)):
            asked.append(t[i])
            feats.append(labels.features([n for n in take if i * sec <= n.start < (i + 1) * sec], span_s=sec))
    return {
        "rho_arousal": spearman(asked, [measured_arousal(f) for f in feats]),
        "rho_arousal_density": spearman(asked, [f["density"] for f in feats]),
        "rho_arousal_velocity": spearman(asked, [f["velocity"] for f in feats]),
    }


# Each speed figure is the median of this many timed runs: a shared machine's speed drifts
# from one run to the next.
SPEED_RUNS = 3


def _time(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def twin_gap(model, twin, works_val, n, seed, resamples=4000):
    """The conditioned run's NLL (every condition given) minus its unconditioned twin's
    (every condition withheld), on n fixed validation windows, with a 95 % interval from
    bootstrap resamples of the windows (the pairs kept together) and the share of windows
    on which the conditioned run is lower. Why: at the sizes trained here the gap is a few
    thousandths of a nat, less than one set of 128 windows moves it by."""
    from bridge.music.train import fixed_windows, window_nll, withhold

    x, c, y = fixed_windows(works_val, n, model.cfg.block_size, seed=seed, key_modes=model.cfg.tonic_modes)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as the eval's other NLL figures
        s_cond, counts = window_nll(model, x, c, y, "cpu")
        s_twin, _ = window_nll(twin, x, withhold(c), y, "cpu")
    diff = s_cond - s_twin
    pick = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    boot = diff[pick].sum(1) / counts[pick].sum(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "windows": int(len(diff)),
        "tokens": int(counts.sum()),
        "conditioned": round(float(s_cond.sum() / counts.sum()), 4),
        "twin_unconditioned": round(float(s_twin.sum() / counts.sum()), 4),
        "gap": round(float(diff.sum() / counts.sum()), 4),
        "gap_95": [round(float(lo), 4), round(float(hi), 4)],
        "windows_conditioned_lower": round(float(np.mean(diff < 0)), 3),
    }


def evaluate(
    quick=False,
    model=None,
    works_val=None,
    works_test=None,
    seed=0,
    guidance=2.0,
    log=print,
    twin=None,
    nll_only=False,
    steer=STRENGTH,
    temperature=1.0,
    note_temperature=None,
    seeds=1,
    top_p=TOP_P,
    key_guidance=KEY_GUIDANCE,
    int8=False,
    precision="auto",
    key_cut_s=KEY_CUT_S,
    twin_windows=1024,
):
    """The model's metrics as a dict. `temperature` and `top_p` are the sampling temperature
    and nucleus of every generated take (controllability, boundaries, style);
    `note_temperature`, when given, that of the pitch of each note-on (sample._log_probs).
    `seeds` > 1 repeats the plain boundary and style sections with seeds seed+1, ... (fresh
    cuts, targets and real windows each time) and reports them per seed and on average: one
    draw of 24 takes and 32 windows moves those figures by several points.
    `key_guidance`: for a model with the tonic condition, the key-guided variant's weight
    (sample(key_guidance=); 1 leaves the variant out), which steps aside `key_cut_s` before
    each cut where the offsets are given (sample(key_cut_s=); 0: guided everywhere).
    `int8`: every take is sampled from model.quantized(model) (int8 linear layers, on the
    CPU); the NLL stays the float model's.
    `precision`: sample(precision=) for every take (sample.sampling_precision).
    `twin_windows`: with `twin`, the number of further validation windows (seed + 1) on which
    the two runs are compared window by window (twin_gap)."""
    torch.manual_seed(seed)
    model = model or load_shipped("auto")
    if works_val is None or works_test is None:
        from bridge.music.corpus import load_corpus

        # The figures are on the scores (music21's corpus), as they have always been: mma's
        # grooves, where the corpus has them (train corpus --grooves), are rendered
        # accompaniment, not the held-out real music the targets compare with.
        works = [w for w in load_corpus() if w["collection"] != "mma"]
        works_val = [w for w in works if w["split"] == "val"]
        works_test = [w for w in works if w["split"] == "test"]
    res = {"quick": quick, "temperature": temperature, "top_p": top_p}
    if model.cfg.tonic and key_guidance != 1:
        res["key_cut_s"] = key_cut_s
    if note_temperature is not None:
        res["note_temperature"] = note_temperature
    draw = {
        "temperature": temperature,
        "note_temperature": note_temperature,
        "top_p": top_p,
        "precision": precision,
        "key_cut_s": key_cut_s,
    }
    rng = np.random.default_rng(seed)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)

    # 1. NLL, conditioned vs withheld, on fixed validation windows.
    from bridge.music.train import fixed_windows, eval_nll, withhold

    vx, vc, vy = fixed_windows(
        works_val, 32 if quick else 128, model.cfg.block_size, seed=seed, key_modes=model.cfg.tonic_modes
    )
    with autocast:
        res["nll"] = {
            "conditioned": round(eval_nll(model, vx, vc, vy, "cpu"), 4),
            "unconditioned": round(eval_nll(model, vx, withhold(vc), vy, "cpu"), 4),
            "va_withheld": round(eval_nll(model, vx, withhold(vc, boundary=False), vy, "cpu"), 4),
            "boundary_withheld": round(eval_nll(model, vx, withhold(vc, va=False), vy, "cpu"), 4),
            "windows": len(vx),
            "tokens": int((vy != 0).sum()),
        }
        # How much the model uses valence at all: the same windows with its sign flipped (and
        # for a model with key vectors the key's mode, which the valence sets at sampling).
        flipped = vc.clone()
        flipped[..., 0] = -flipped[..., 0]
        if model.cfg.tonic and model.cfg.tonic_modes == 2:
            code = flipped[..., N_COND_FEATURES]
            flipped[..., N_COND_FEATURES] = torch.where(code > 0, (code - 1 + 12) % 24 + 1, code)
        res["nll"]["valence_flipped"] = round(eval_nll(model, vx, flipped, vy, "cpu"), 4)
        if twin is not None:  # an otherwise identical run that never saw a condition
            res["nll"]["twin_unconditioned"] = round(eval_nll(twin, vx, withhold(vc), vy, "cpu"), 4)
    if twin is not None:  # outside the block above: an autocast object must not be re-entered
        res["nll"]["twin_paired"] = twin_gap(model, twin, works_val, 32 if quick else twin_windows, seed + 1)
    log(json.dumps({"nll": res["nll"]}))
    nll = res["nll"]
    met = {"nll_conditioned_below_unconditioned": nll["conditioned"] < nll["unconditioned"]}
    if "twin_unconditioned" in nll:
        met["nll_conditioned_below_twin"] = nll["conditioned"] < nll["twin_unconditioned"]
        met["nll_conditioned_below_twin_paired_95"] = nll["twin_paired"]["gap_95"][1] < 0
    if nll_only:
        res["targets_met"] = met
        return res
    if int8:  # from here on the model only samples
        model = quantized(model)
        res["int8"] = True

    # 2. Controllability over a 5x5 grid, plain sampling and with classifier-free guidance.
    per = 2 if quick else 4
    dur = 10.0 if quick else 12.0
    targets = [(v, a) for v in GRID for a in GRID for _ in range(per)]
    tv = [t[0] for t in targets]
    ta = [t[1] for t in targets]
    res["control"] = {"takes": len(targets), "seconds_each": dur}
    steered = f"steered_{steer:g}"
    # (name, guidance, key-steering strength, key guidance with the tonic given or None)
    variants = [("plain", 1.0, 0.0, None), (f"guidance_{guidance:g}", guidance, 0.0, None)]
    variants += [(steered, 1.0, steer, None)] if steer else []
    keyed = f"key_guided_{key_guidance:g}"
    if model.cfg.tonic:
        variants += [("tonic", 1.0, 0.0, 1.0)] + ([(keyed, 1.0, 0.0, key_guidance)] if key_guidance != 1 else [])

    def extra(valences, strength, key):
        """A variant's sampler arguments: each take in a seeded tonic, either pulled toward
        that key (steered) or given it as the model's tonic condition (tonic, key_guided)."""
        tonics = [int(k) for k in np.random.default_rng([seed, len(valences)]).integers(0, 12, len(valences))]
        return {
            **({"constrain": for_valence(valences, tonics, strength)} if strength else {}),
            **({"tonic": tonics, "key_guidance": key} if key is not None else {}),
        }

    for name, g, strength, key in variants:
        takes, secs = _time(
            lambda: sample(
                model,
                dur,
                valence=tv,
                arousal=ta,
                batch=len(targets),
                seed=seed + 1,
                per_take=True,
                use_boundaries=False,
                guidance=g,
                **extra(tv, strength, key),
                **draw,
            )
        )
        feats = [labels.features(t, span_s=dur) for t in takes]
        mv = [f["mode"] for f in feats]
        ma = [measured_arousal(f) for f in feats]
        cells = {}  # means per target cell, read alongside the per-take correlations
        for (v, a), x, y in zip(targets, mv, ma):
            cells.setdefault((v, a), []).append((x, y))
        res["control"][name] = {
            "generation_s": round(secs, 1),
            "rho_valence": spearman(tv, mv),
            "rho_arousal": spearman(ta, ma),
            "rho_arousal_density": spearman(ta, [f["density"] for f in feats]),
            "rho_arousal_velocity": spearman(ta, [f["velocity"] for f in feats]),
            "rho_valence_cell_means": spearman(
                [k[0] for k in cells], [np.mean([p[0] for p in c]) for c in cells.values()]
            ),
            "rho_arousal_cell_means": spearman(
                [k[1] for k in cells], [np.mean([p[1] for p in c]) for c in cells.values()]
            ),
            "empty_takes": int(sum(1 for t in takes if not t)),
            "pitch_class_entropy": round(_mean_defined(pitch_class_entropy, takes), 3),
        }
        log(json.dumps({"control": {name: res["control"][name]}}))

    # Valence that turns mid-take: does the music's mode turn with it?
    n_sw = 8 if quick else 24
    half = dur / 2
    signs = [1 if i % 2 == 0 else -1 for i in range(n_sw)]
    turns = [[(0.0, 0.8 * s), (half, -0.8 * s)] for s in signs]
    res["control"]["switch"] = {"takes": n_sw}
    for name, _, strength, key in (v for v in variants if v[1] == 1.0):
        takes = sample(
            model,
            dur,
            valence=turns,
            arousal=[0.0] * n_sw,
            batch=n_sw,
            seed=seed + 50,
            per_take=True,
            use_boundaries=False,
            **extra(turns, strength, key),
            **draw,
        )
        moved = []
        for t, s in zip(takes, signs):
            m1 = labels.features([n for n in t if n.start < half], span_s=half)["mode"]
            m2 = labels.features([n for n in t if n.start >= half], span_s=half)["mode"]
            moved.append(s * (m1 - m2))  # > 0: the mode moved the way the valence did
        row = {
            "mean_mode_change_in_asked_direction": round(float(np.mean(moved)), 3),
            "share_in_asked_direction": round(float(np.mean(np.array(moved) > 0)), 3),
        }
        if name == "plain":  # the plain figures sit at the top level, as before
            res["control"]["switch"].update(row)
        else:
            res["control"]["switch"][name] = row
    log(json.dumps({"control": {"switch": res["control"]["switch"]}}))

    # Arousal that changes every few seconds, as a cue's moods do: does the energy follow?
    res["control"]["arousal_changes"] = _arousal_changes(model, seed, quick, guidance, draw)
    log(json.dumps({"control": {"arousal_changes": res["control"]["arousal_changes"]}}))

    # 3. Boundaries from the conditioning alone, vs the same takes with offsets withheld.
    bdur = 16.0 if quick else 20.0
    bounds_per, va_per = _boundary_targets(rng, 8 if quick else 24, bdur)
    res["boundaries"] = {
        "requested": int(sum(len(b) for b in bounds_per)),
        "takes": len(bounds_per),
        "seconds_each": bdur,
        "tolerance_ms": 125,
    }
    for name, g, _, key in (v for v in variants if not v[2]):
        rates = _boundary_rates(model, bdur, bounds_per, va_per, seed, g, {**draw, **extra(va_per, 0.0, key)})
        res["boundaries"][name] = rates
        log(json.dumps({"boundaries": {name: rates}}))

    # 4. Style: held-out real windows vs takes generated with the same labels and boundaries.
    sdur = 16.0
    reals, conds = _style_windows(rng, works_test, 12 if quick else 32, sdur)
    pe_r, gs_r = _mean_defined(pitch_class_entropy, reals), _mean_defined(grooving_similarity, reals)
    res["style"] = {
        "pitch_class_entropy_real": round(pe_r, 3),
        "grooving_similarity_real": round(gs_r, 3),
        "windows": len(reals),
        "seconds_each": sdur,
    }
    valences = [c[0][0] for c in conds]
    for name, _, strength, key in (v for v in variants if v[1] == 1.0):
        gens = sample(
            model,
            sdur,
            valence=valences,
            arousal=[c[0][1] for c in conds],
            boundaries=[c[1] for c in conds],
            batch=len(conds),
            seed=seed + 500,
            per_take=True,
            **extra(valences, strength, key),
            **draw,
        )
        row = _style_row(gens, pe_r, gs_r)
        if name == "plain":
            res["style"].update(row)
        else:
            res["style"][name] = row
    log(json.dumps({"style": res["style"]}))

    # 4b. The plain boundary and style figures again, over further seeds.
    if seeds > 1:
        res["over_seeds"] = _over_seeds(
            model,
            works_test,
            seed,
            seeds,
            quick,
            draw,
            res,
            log,
            keyed=next(((v[0], v[3]) for v in variants if v[0] == keyed), None),
        )

    # 5. Speed at batch 1 with the cache (and batch 8, total tokens/s).
    res["speed"] = speed(model, seed, quick, precision, guidance, key_guidance if keyed in res["control"] else 1.0)
    log(json.dumps({"speed": res["speed"]}))

    st, sp = res["style"], res["speed"]
    for name, _, _, _ in variants:
        c = res["control"][name]
        met[f"{name}: rho_valence_ge_0.7"] = (c["rho_valence"] or 0) >= 0.7
        met[f"{name}: rho_arousal_ge_0.8"] = (c["rho_arousal"] or 0) >= 0.8
        if name in res["boundaries"]:
            bd = res["boundaries"][name]
            met[f"{name}: boundary_hits_ge_70pct_and_above_withheld"] = (
                bd["hit_rate_given"] >= 0.7 and bd["hit_rate_given"] > bd["hit_rate_withheld"] + 0.1
            )
    for name, row in [("plain", st)] + [(k, st[k]) for k in (steered, "tonic", keyed) if k in st]:
        met[f"{name}: pitch_class_entropy_within_10pct"] = row["pitch_class_entropy_rel_diff"] <= 0.10
        met[f"{name}: grooving_similarity_within_10pct"] = row["grooving_similarity_rel_diff"] <= 0.10
    if "over_seeds" in res:
        blocks = [("", res["over_seeds"])]
        if keyed in res["over_seeds"]:
            blocks.append((f"{keyed}: ", res["over_seeds"][keyed]))
        for name, block in blocks:
            mean = block["mean"]
            met[f"{name}mean over seeds: boundary_hits_ge_70pct_and_above_withheld"] = (
                mean["hit_rate_given"] >= 0.7 and mean["hit_rate_given"] > mean["hit_rate_withheld"] + 0.1
            )
            met[f"{name}mean over seeds: pitch_class_entropy_within_10pct"] = (
                mean["pitch_class_entropy_rel_diff"] <= 0.10
            )
            met[f"{name}mean over seeds: grooving_similarity_within_10pct"] = (
                mean["grooving_similarity_rel_diff"] <= 0.10
            )
    met.update(speed_met(sp))
    res["targets_met"] = met
    return res


def speed(model, seed=0, quick=False, precision="auto", guidance=2.0, key_guidance=KEY_GUIDANCE):
    """Sampling tokens/s with the cache: batch 1, batch 8 (all takes' tokens), batch 1 with
    classifier-free guidance, and for a model with the tonic condition (key_guidance != 1)
    batch 1 key-guided; each the median over runs of 384 tokens after a warm-up. Also the
    precision each ran at (sample.sampling_precision: it follows the rows a step runs) and,
    per figure, how many steps ran with each thread count (sample() chooses as it goes)."""
    out = {
        "threads": torch.get_num_threads(),
        "precision": {},
        "runs": 1 if quick else SPEED_RUNS,
        "steps_by_threads": {},
    }

    def tokens_per_s(key, **kw):
        kw["precision"] = precision
        rows = step_rows(kw.get("batch", 1), kw.get("guidance", 1.0), kw.get("key_guidance", 1.0))
        out["precision"][key] = sampling_precision(model, precision, rows)
        sample(model, 1e9, seed=seed, max_tokens=16, **kw)
        rates, used = [], {}
        for _ in range(out["runs"]):
            stats = {}
            (_, toks), secs = _time(
                lambda: sample(model, 1e9, seed=seed, max_tokens=384, return_tokens=True, stats=stats, **kw)
            )
            rates.append(sum(len(t) - 1 for t in toks) / secs)
            for n, steps in stats["threads"].items():
                used[str(n)] = used.get(str(n), 0) + steps
        out["steps_by_threads"][key] = dict(sorted(used.items()))
        out[key] = round(float(np.median(rates)), 1)

    for b, g, key in (
        (1, 1.0, "tokens_per_s_batch1"),
        (8, 1.0, "tokens_per_s_batch8"),
        (1, guidance, f"tokens_per_s_batch1_guidance_{guidance:g}"),
    ):
        tokens_per_s(key, batch=b, guidance=g)
    if model.cfg.tonic and key_guidance != 1:  # the key-guided variant: a second row per step
        tokens_per_s(
            f"tokens_per_s_batch1_key_guided_{key_guidance:g}", batch=1, tonic=0, valence=0.6, key_guidance=key_guidance
        )
    return out


def speed_met(sp) -> dict:
    """The speed target (400 tok/s at batch 1) for each batch-1 figure it applies to."""
    met = {"speed_ge_400_tok_s": sp["tokens_per_s_batch1"] >= 400}
    for key in sp:
        if key.startswith("tokens_per_s_batch1_key_guided_"):
            met[f"{key[len('tokens_per_s_batch1_') :]}: speed_ge_400_tok_s"] = sp[key] >= 400
    return met


def _over_seeds(model, works_test, seed, seeds, quick, draw, res, log, keyed=None):
    """Plain boundary hits and style per seed (the first is the sections above), and means;
    with `keyed` (name, key guidance) the same for that variant, each take in a seeded tonic."""
    keys = ("hit_rate_given", "hit_rate_withheld", "pitch_class_entropy_rel_diff", "grooving_similarity_rel_diff")
    out = {}
    for name, key in [("plain", None)] + ([keyed] if keyed else []):
        first = {
            **res["boundaries"][name],
            **{k: (res["style"] if name == "plain" else res["style"][name])[k] for k in keys[2:]},
        }
        rows = [{"seed": seed, **{k: first[k] for k in keys}}]
        bdur, sdur = (16.0 if quick else 20.0), 16.0
        for s in range(seed + 1, seed + seeds):

            def extra(n):
                if key is None:
                    return draw
                tonics = [int(k) for k in np.random.default_rng([s, n]).integers(0, 12, n)]
                return {**draw, "tonic": tonics, "key_guidance": key}

            rng = np.random.default_rng(s)  # drawn in the same order as the sections above
            bounds_per, va_per = _boundary_targets(rng, 8 if quick else 24, bdur)
            row = {"seed": s, **_boundary_rates(model, bdur, bounds_per, va_per, s, 1.0, extra(len(va_per)))}
            reals, conds = _style_windows(rng, works_test, 12 if quick else 32, sdur)
            gens = sample(
                model,
                sdur,
                valence=[c[0][0] for c in conds],
                arousal=[c[0][1] for c in conds],
                boundaries=[c[1] for c in conds],
                batch=len(conds),
                seed=s + 500,
                per_take=True,
                **extra(len(conds)),
            )
            pe_r, gs_r = _mean_defined(pitch_class_entropy, reals), _mean_defined(grooving_similarity, reals)
            row.update({k: v for k, v in _style_row(gens, pe_r, gs_r).items() if k in keys})
            rows.append(row)
            log(json.dumps({"over_seeds": {name: row}}))
        block = {"per_seed": rows, "mean": {k: round(float(np.mean([r[k] for r in rows])), 3) for k in keys}}
        if name == "plain":  # the plain figures sit at the top level, as before
            out.update(block)
        else:
            out[name] = block
    return out
