"""How fast picture analysis runs: frames per second on synthetic 640x360 and 1280x720 footage.

Emotion is on (faces sampled, cues, audio) and the cache is off, so every frame is decoded
and measured. Run as `scorebridge bench analysis [--seconds N] [--json]`.
"""

import tempfile
import time
from fractions import Fraction
from pathlib import Path

from bridge.demo import render_scenes
from bridge.picture.analysis import analyze_timeline
from bridge.timeline import Clip, Timeline

RATE = 25
SIZES = ((640, 360), (1280, 720))
CYCLE = ("dark", "bright", "grey", "fractal", "warm")  # a look change every 2 s


def run(seconds=20.0, sizes=SIZES) -> dict:
    """{"640x360": {"frames", "seconds", "fps", "stages": {stage: seconds}}, ...}, also printed."""
    frames = int(round(seconds * RATE))
    scenes, left = [], frames
    while left > 0:
        scenes.append((CYCLE[len(scenes) % len(CYCLE)], min(2 * RATE, left)))
        left -= scenes[-1][1]
    results = {}
    with tempfile.TemporaryDirectory(prefix="scorebridge-bench-") as tmp:
        for w, h in sizes:
            path = Path(tmp) / f"bench-{w}x{h}.mp4"
            render_scenes(path, scenes, size=(w, h), rate=RATE)
            clip = Clip("bench", 0, frames, media_path=str(path), media_start=0.0, media_rate=RATE)
            tl = Timeline("bench", str(path), Fraction(RATE), False, 0, frames, [clip])
            start = time.perf_counter()
            out = analyze_timeline(tl, use_cache=False)
            elapsed = time.perf_counter() - start
            results[f"{w}x{h}"] = {
                "frames": out["frames"],
                "seconds": round(elapsed, 3),
                "fps": round(out["frames"] / elapsed, 1),
                "stages": {k: round(v, 3) for k, v in out["timings"].items()},
            }
            print(
                f"{w}x{h}: {out['frames']} frames in {elapsed:.2f} s = {out['frames'] / elapsed:.0f} frames/s  "
                + "  ".join(f"{k} {v:.2f}s" for k, v in out["timings"].items()),
                flush=True,
            )
    return results
