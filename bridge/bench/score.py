"""How long scoring an edit takes, split by stage: `scorebridge bench score`.

The edit is a 3-minute OTIO timeline with 40 cuts at seeded positions, three mood markers
and no media (so the picture stage reads only cuts and markers). It is scored once with the
shipped model, WAV preview and scored OTIO included; the manifest's timings are the split.
Without shipped weights a model of the same configuration with untrained weights is timed
instead, and the result says so: the time per token is the same, the music is not.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import opentimelineio as otio
import torch

from bridge import atomic
from bridge.errors import MissingModel
from bridge.music.model import MusicConfig, MusicTransformer, pick_device
from bridge.score import load_model, score

RATE = 24
MOODS = ((0.0, "mood: calm"), (0.35, "mood: tense"), (0.7, "mood: triumphant"))


def bench_edit(path, seconds=180.0, cuts=40, seed=0):
    """Write the benchmark edit: cuts + 1 clips with seeded lengths (at least a second)."""
    rng = np.random.default_rng(seed)
    total = int(round(seconds * RATE))
    weights = rng.uniform(1.0, 3.0, cuts + 1)
    lengths = np.maximum(RATE, np.floor(weights / weights.sum() * total)).astype(int)
    lengths[-1] += total - lengths.sum()
    tl = otio.schema.Timeline(name="bench")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for i, n in enumerate(lengths):
        track.append(
            otio.schema.Clip(
                name=f"shot {i + 1}",
                media_reference=otio.schema.MissingReference(),
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, RATE), otio.opentime.RationalTime(int(n), RATE)
                ),
            )
        )
    tl.tracks.append(track)
    for share, name in MOODS:
        tl.tracks.markers.append(
            otio.schema.Marker(
                name=name,
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(int(share * total), RATE), otio.opentime.RationalTime(0, RATE)
                ),
            )
        )
    atomic.write_text(path, otio.adapters.write_to_string(tl, "otio_json"))
    return path


def run(seconds=180.0, cuts=40, device="auto", candidates=4) -> dict:
    started = time.perf_counter()
    try:
        model, info = load_model(device)
        loaded = round(time.perf_counter() - started, 3)
    except MissingModel as exc:
        print(
            f"bench: {exc}\nbench: timing a model of the same configuration with untrained weights",
            file=sys.stderr,
            flush=True,
        )
        torch.manual_seed(0)
        model = MusicTransformer(MusicConfig()).to(pick_device(device)).eval()
        info = {"name": "untrained (no shipped weights)", "sha256": None, "params": model.num_params()}
        loaded = None
    with tempfile.TemporaryDirectory(prefix="scorebridge-bench-") as folder:
        path = bench_edit(Path(folder) / "bench.otio", seconds, cuts)
        begin = time.perf_counter()
        manifest, _ = score(
            path, Path(folder) / "out", model=model, model_info=info, candidates=candidates, use_cache=False
        )
        total = time.perf_counter() - begin
    result = {
        "edit": {
            "seconds": manifest["duration_seconds"],
            "cuts": len(manifest["hits"]),
            "fps": RATE,
            "candidates": candidates,
        },
        "model": info,
        "device": str(next(model.parameters()).device),
        "torch_threads": torch.get_num_threads(),
        "model_load_s": loaded,
        "total_s": round(total, 3),
        "stages": manifest["timings"],
        "generation_realtime_factor": round(manifest["duration_seconds"] / manifest["timings"]["generation_s"], 2),
        "warnings": manifest["warnings"],
    }
    print(
        f"bench score: {result['edit']['seconds']:.0f} s edit, {result['edit']['cuts']} hits, "
        f"{result['model']['name']} on {result['device']} "
        f"({result['torch_threads']} threads): {total:.2f} s  "
        + "  ".join(f"{k} {v:.2f}" for k, v in manifest["timings"].items()),
        flush=True,
    )
    return result
