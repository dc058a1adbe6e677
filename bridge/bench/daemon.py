"""How fast and how sturdy the daemon is: `scorebridge bench daemon`.

It starts its own daemon (a free loopback port, a temporary config folder, so a daemon the
user runs is not touched) the way `scorebridge request` does, and measures:
- ping round trip (median and 95th percentile over many pings);
- request-to-done for a 60 s edit (14 cuts, no media, WAV included): cold (no daemon
  running: process start, model load and the job) and warm (the daemon already up);
- bursts of N clients sending at the same moment: how many pings are answered, and how many
  score requests end in `done` (none may be lost).
"""

import json
import os
import socket
import statistics
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bridge.daemon import client
from bridge.bench.score import bench_edit


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _burst(port, token, count, message, until, timeout):
    """`count` sockets send at once; returns how many got a reply named in `until`."""
    conns = [client.Connection("127.0.0.1", port) for _ in range(count)]
    try:
        for i, conn in enumerate(conns):
            conn.send(*message(i))
        answered = 0
        deadline = time.monotonic() + timeout
        for conn in conns:
            while True:
                reply = conn.receive(max(0.01, deadline - time.monotonic()))
                if reply is None:
                    break
                if reply[0] in until:
                    answered += 1
                    break
        return answered
    finally:
        for conn in conns:
            conn.close()


def run(seconds=60.0, cuts=14, pings=500, bursts=(10, 50, 200), score_bursts=(20, 64)) -> dict:
    work = Path(tempfile.mkdtemp(prefix="scorebridge-bench-"))
    port = _free_port()
    saved = {k: os.environ.get(k) for k in ("SCOREBRIDGE_CONFIG", "SCOREBRIDGE_STATE", "SCOREBRIDGE_TOKEN")}
    os.environ.update(SCOREBRIDGE_CONFIG=str(work / "config"), SCOREBRIDGE_STATE=str(work / "state"))
    os.environ.pop("SCOREBRIDGE_TOKEN", None)
    edit = bench_edit(work / "edit.otio", seconds=seconds, cuts=cuts)
    tiny = bench_edit(work / "tiny.otio", seconds=4.0, cuts=2)
    result = {"port": port, "edit": {"seconds": seconds, "cuts": cuts}}
    try:
        print(f"bench: cold request ({seconds:.0f} s edit, {cuts} cuts; starts the daemon)", file=sys.stderr)
        started = time.perf_counter()
        manifest = client.request(edit, work / "cold", {"seed": 1}, port=port)
        result["cold_request_s"] = round(time.perf_counter() - started, 3)
        result["cold_timings"] = json.loads(Path(manifest).read_text())["timings"]

        print("bench: warm requests", file=sys.stderr)
        warm = []
        for seed in (2, 3, 4):
            started = time.perf_counter()
            manifest = client.request(edit, work / f"warm{seed}", {"seed": seed}, port=port)
            warm.append(time.perf_counter() - started)
        result["warm_request_s"] = {"median": round(statistics.median(warm), 3), "runs": [round(w, 3) for w in warm]}
        result["warm_timings"] = json.loads(Path(manifest).read_text())["timings"]

        token = client.ensure_daemon(port=port)
        rtts = []
        with client.Connection("127.0.0.1", port) as conn:
            for _ in range(pings):
                started = time.perf_counter()
                conn.send("ping", token)
                if conn.receive(1.0) is not None:
                    rtts.append(1000 * (time.perf_counter() - started))
        rtts.sort()
        result["ping_ms"] = {
            "median": round(statistics.median(rtts), 3),
            "p95": round(rtts[int(0.95 * (len(rtts) - 1))], 3),
            "answered": len(rtts),
            "sent": pings,
        }

        print("bench: bursts", file=sys.stderr)
        result["ping_bursts"] = {
            str(n): _burst(port, token, n, lambda i: ("ping", token), {"pong"}, 5.0) for n in bursts
        }
        result["score_bursts"] = {}
        for n in score_bursts:
            started = time.perf_counter()
            done = _burst(
                port,
                token,
                n,
                lambda i: (
                    "score",
                    token,
                    f"burst-{n}-{i}",
                    str(tiny),
                    str(work / f"burst{n}" / str(i)),
                    json.dumps({"audio": False, "candidates": 1}),
                ),
                {"done"},
                600.0,
            )
            result["score_bursts"][str(n)] = {"done": done, "seconds": round(time.perf_counter() - started, 2)}
    finally:
        info = client.status(port=port)
        if info:
            os.kill(info["pid"], 15)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(work, ignore_errors=True)
    return result


def report(result) -> str:
    r = result
    lines = [
        f"daemon benchmark ({r['edit']['seconds']:.0f} s edit, {r['edit']['cuts']} cuts, WAV included)",
        f"  ping round trip        {r['ping_ms']['median']:.2f} ms median, {r['ping_ms']['p95']:.2f} ms p95 "
        f"({r['ping_ms']['answered']}/{r['ping_ms']['sent']} answered)",
        f"  request to done, cold  {r['cold_request_s']:.2f} s (daemon start + model load + job)",
        f"  request to done, warm  {r['warm_request_s']['median']:.2f} s median of {len(r['warm_request_s']['runs'])}",
        "  ping bursts            " + ", ".join(f"{v}/{k} answered" for k, v in r["ping_bursts"].items()),
        "  score bursts           "
        + ", ".join(f"{v['done']}/{k} done in {v['seconds']:.1f} s" for k, v in r["score_bursts"].items()),
    ]
    return "\n".join(lines)
