"""One timeline of a batch, scored wherever an engine runs it (this process, a pool
worker, a Ray actor). Everything here is picklable and never raises: the entry it returns
says what happened, so one timeline's failure cannot stop the batch."""

import json
import os
import socket
import time
from pathlib import Path

from bridge.errors import BadInput, MissingModel

# The music model, loaded once per process: a worker scores many timelines with it.
_MODEL = {}


def load(device):
    if "model" not in _MODEL:
        from bridge.score import load_model

        _MODEL["model"], _MODEL["info"] = load_model(device)
    return _MODEL["model"], _MODEL["info"]


def prepare(device, threads):
    """A worker's start: torch's threads set to the CPUs it reserved, the model loaded."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    try:
        load(device)
    except MissingModel:
        pass  # each timeline then reports it


def alignment(manifest) -> dict:
    """How well the music sits on the hits: a chord (3+ notes starting together) within a
    frame of each hit, the mean distance to the nearest chord in frames, hits on a beat."""
    fps = manifest["fps"]
    hits = [h["seconds"] for h in manifest["hits"]]
    onsets = {}
    notes_path = manifest["outputs"].get("notes")
    if notes_path and os.path.exists(notes_path):
        for part in json.loads(Path(notes_path).read_text())["parts"]:
            for start, *_ in part["notes"]:
                key = round(start * 1000)  # onsets to the millisecond
                onsets[key] = onsets.get(key, 0) + 1
    chords = sorted(ms / 1000 for ms, n in onsets.items() if n >= 3)
    distances = [min((abs(c - h) for c in chords), default=float("inf")) * fps for h in hits]
    finite = [d for d in distances if d != float("inf")]
    plan = manifest.get("plan", {})
    return {
        "hits": len(hits),
        "chord_within_frame": sum(d <= 1.0 for d in distances),
        "mean_frames_to_chord": round(sum(finite) / len(finite), 3) if finite else None,
        "hits_on_beat": plan.get("hits_on_beat"),
        "tempo_bpm": manifest["tempo_map"][0]["bpm"] if manifest.get("tempo_map") else None,
    }


def score_one(path, out, options, device="auto", progress=None, node=None) -> dict:
    """Score one timeline into `out`; never raises. `node` names where it ran (the report's
    `node`); the deliverables are staged and moved into place by `score`, so a timeline
    scored twice (an engine's retry) leaves one complete set."""
    from bridge.score import score

    started = time.perf_counter()
    entry = {"input": str(path), "out": str(out), "node": node or socket.gethostname()}
    try:
        if not Path(path).exists():
            shared = (
                (f" on node {node} (inputs, media and --out must be on storage every node sees at the same path)")
                if node
                else ""
            )
            raise BadInput(f"no such file: {path}{shared}")
        model, info = load(device)
        manifest, manifest_path = score(
            path, out, model=model, model_info=info, device=device, progress=progress, **options.score_kwargs()
        )
        entry.update(
            status="done",
            manifest=str(manifest_path),
            timings=manifest["timings"],
            alignment=alignment(manifest),
            warnings=len(manifest["warnings"]),
            duration_seconds=manifest["duration_seconds"],
        )
    except BadInput as exc:
        entry.update(status="failed", code="bad_input", error=str(exc))
    except MissingModel as exc:
        entry.update(status="failed", code="no_model", error=str(exc))
    except Exception as exc:  # one timeline's bug must not stop the batch
        entry.update(status="failed", code="internal", error=f"{type(exc).__name__}: {exc}")
    entry["seconds"] = round(time.perf_counter() - started, 3)
    return entry


def died(path, out, why, attempts=1) -> dict:
    """The entry of a timeline whose worker process died under it `attempts` times."""
    return {
        "input": str(path),
        "out": str(out),
        "status": "failed",
        "code": "worker_died",
        "error": why,
        "attempts": attempts,
    }
