"""Batch throughput by engine: `scorebridge bench batch`.

The same timelines (`--count` edits of `--seconds` each with `--cuts` cuts, WAV and stems
included, as a user's batch would be) scored into fresh folders by:

- local: `--workers 2`, today's process pool;
- ray-1-node: the Ray engine on a one-machine cluster it starts (a worker per CPU);
- ray-2-nodes: the Ray engine on two nodes simulated on this machine (`ray.cluster_utils`,
  one CPU each), to show what spreading over nodes costs;
- and, where torch sees a GPU, local on it.

Each row gives timelines per minute over the whole run (the engine's start included, as a
user waits for it), how long the engine took to start (for Ray, its cluster; the workers'
start, Python, torch and the model, is inside the run for both engines), and p50/p95 of the
seconds a timeline took inside its worker.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

from bridge import batch
from bridge.bench.score import bench_edit


def _row(name, report, wall, start):
    seconds = sorted(e["seconds"] for e in report["timelines"] if e["status"] == "done")
    done = len(seconds)

    def pct(p):
        return round(seconds[min(len(seconds) - 1, round(p * (len(seconds) - 1)))], 2) if seconds else None

    return {
        "engine": name,
        "workers": report["engine"]["workers"],
        "nodes": len(report["engine"]["nodes"]),
        "done": done,
        "failed": report["summary"]["failed"],
        "wall_s": round(wall, 2),
        "engine_start_s": round(start, 2),
        "timelines_per_min": round(60 * done / wall, 2) if wall else None,
        "p50_s": pct(0.5),
        "p95_s": pct(0.95),
        "mean_s": round(statistics.mean(seconds), 2) if seconds else None,
    }


def run(count=12, seconds=30.0, cuts=8, device="auto") -> dict:
    """Everything it writes goes to a scratch folder that is removed afterwards (it holds gigabytes)."""
    with tempfile.TemporaryDirectory(prefix="scorebridge-batch-bench-") as folder:
        return _run(Path(folder), count, seconds, cuts, device)


def _run(work, count, seconds, cuts, device) -> dict:
    (work / "in").mkdir()
    inputs = [bench_edit(work / "in" / f"reel{i:02d}.otio", seconds, cuts, seed=i) for i in range(count)]
    folder = [str(work / "in")]
    rows = []

    def timed(name, engine, workers=None, on=device, began=None):
        started = began or time.perf_counter()
        engine = batch.engine_for(engine, workers=workers, device=on)
        ready = time.perf_counter()
        report = batch.run(folder, work / name, show=False, device=on, engine=engine)
        rows.append(_row(name, report, time.perf_counter() - started, ready - started))

    timed("local", "local", workers=2)
    try:
        from bridge.batch.ray_engine import import_ray

        ray = import_ray()
    except Exception as exc:  # Ray is an extra
        rows.append({"engine": "ray", "skipped": str(exc)})
    else:
        timed("ray-1-node", "ray")
        import signal
        from ray.cluster_utils import Cluster

        sigterm = signal.getsignal(signal.SIGTERM)  # ray.init replaces it for good
        started = time.perf_counter()
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        nodes.add_node(num_cpus=1)
        ray.init(address=nodes.address, log_to_driver=False)
        try:
            timed("ray-2-nodes", "ray", began=started)
        finally:
            ray.shutdown()
            nodes.shutdown()
            signal.signal(signal.SIGTERM, sigterm)
    import torch

    if torch.cuda.is_available():
        timed("local-cuda", "local", workers=1, on="cuda")
    return {"timelines": len(inputs), "seconds_each": seconds, "cuts_each": cuts, "cpus": os.cpu_count(), "rows": rows}


def report(results) -> str:
    lines = [
        f"{results['timelines']} timelines of {results['seconds_each']:g} s ({results['cuts_each']} cuts), "
        f"WAV and stems, on {results['cpus']} CPUs",
        f"{'engine':<12} {'workers':>7} {'nodes':>5} {'done':>4} {'wall s':>7} {'start s':>7} "
        f"{'per min':>8} {'p50 s':>6} {'p95 s':>6}",
    ]
    for r in results["rows"]:
        if "skipped" in r:
            lines.append(f"{r['engine']:<12} skipped: {r['skipped']}")
            continue
        lines.append(
            f"{r['engine']:<12} {r['workers']:>7} {r['nodes']:>5} {r['done']:>4} {r['wall_s']:>7.1f} "
            f"{r['engine_start_s']:>7.1f} "
            f"{r['timelines_per_min']:>8.1f} {r['p50_s']:>6.2f} {r['p95_s']:>6.2f}"
        )
    return "\n".join(lines)
