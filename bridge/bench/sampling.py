"""Sampling speed by thread count, on idle cores or beside busy ones: `scorebridge bench sampling`.

The shipped model samples runs of 384 tokens at batch 1 (plain and, for a model with key
vectors, key-guided) and at batch 8, with the thread count the sampler chooses as it goes
(sample._Threads) and with torch's count and one thread fixed, alternating in one process so
that the machine's drift falls on all three alike. `busy` starts that many processes that
spin on a core each for the whole benchmark, as a host application rendering beside the
daemon would. Why: that is where the choice matters
(docs/research/2026-12-07-music-model-card-history.md, "Sampling on a CPU").
"""

import statistics
import subprocess
import sys
import time

import torch

from bridge.music.sample import KEY_GUIDANCE, sample

TOKENS = 384
SPIN = "while True: pass"


def _rate(model, threads, seed, **kw):
    stats = {}
    t = time.perf_counter()
    _, toks = sample(
        model,
        1e9,
        valence=0.6,
        arousal=0.2,
        boundaries=[2.0, 5.0, 9.0, 14.0, 20.0],
        seed=seed,
        max_tokens=TOKENS,
        return_tokens=True,
        threads=threads,
        stats=stats,
        **kw,
    )
    return sum(len(x) - 1 for x in toks) / (time.perf_counter() - t), stats["threads"]


def run(busy=0, runs=5, model=None):
    """tokens/s (median of `runs`) for each set-up and thread policy; busy: spinning processes."""
    if busy < 0 or runs < 1:
        raise ValueError("busy is 0 or more and runs 1 or more")
    if model is None:
        from bridge.score import load_model

        model = load_model("cpu")[0]
    many = torch.get_num_threads()
    setups = {"batch 1": {}, "batch 8": {"batch": 8}}
    if model.cfg.tonic:
        setups["batch 1, key-guided"] = {"tonic": 0, "key_guidance": KEY_GUIDANCE}
    policies = {"chosen as it goes": None, f"{many} threads": many, "1 thread": 1}
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)
        out = {
            "threads": many,
            "busy_processes": busy,
            "runs": runs,
            "tokens": TOKENS,
            "tokens_per_s": {},
            "steps_by_threads": {},
        }
        for name, kw in setups.items():
            sample(model, 1e9, seed=0, max_tokens=16, **kw)  # warm-up: packing, first calls
            rates, used = {p: [] for p in policies}, {}
            for r in range(runs):
                order = list(policies) if r % 2 == 0 else list(policies)[::-1]
                for p in order:
                    rate, steps = _rate(model, policies[p], seed=r, **kw)
                    rates[p].append(rate)
                    if policies[p] is None:
                        for n, k in steps.items():
                            used[str(n)] = used.get(str(n), 0) + k
            out["tokens_per_s"][name] = {p: round(statistics.median(v), 1) for p, v in rates.items()}
            out["steps_by_threads"][name] = dict(sorted(used.items()))
        return out
    finally:
        for s in spinners:
            s.kill()
            s.wait()


def report(res):
    """The figures as a table."""
    policies = list(next(iter(res["tokens_per_s"].values())))
    lines = [
        f"sampling speed, tokens/s, median of {res['runs']} runs of {res['tokens']} tokens; "
        f"torch's threads {res['threads']}; busy processes beside: {res['busy_processes']}",
        f"{'':24}" + "".join(f"{p:>20}" for p in policies),
    ]
    for name, row in res["tokens_per_s"].items():
        steps = ", ".join(f"{k} thread{'s' if k != '1' else ''}: {v}" for k, v in res["steps_by_threads"][name].items())
        figures = "".join(f"{row[p]:>20}" for p in policies)
        lines.append(f"{name:24}{figures}   (chosen: {steps} steps)")
    return "\n".join(lines)
