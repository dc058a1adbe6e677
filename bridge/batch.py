"""`scorebridge batch`: score many timelines into one folder, with a report.

Each timeline gets its own sub-folder of the output folder. `batch-report.json` is
rewritten (atomically) after every timeline, so a batch that is stopped can be resumed
(`--resume` skips timelines already done whose file has not changed since). A timeline that
fails is recorded with its reason and the batch goes on.
"""

import glob
import hashlib
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from bridge import __version__, atomic
from bridge.errors import BadInput, MissingModel

REPORT = "batch-report.json"
TIMELINE_SUFFIXES = {".otio", ".otioz", ".otiod", ".edl", ".xml", ".fcpxml", ".fcpxmld"}


def expand(inputs) -> tuple:
    """(timelines, problems): files as given, folders searched for timelines (not for
    media, which would each be scored as a bare video), glob patterns expanded. Order is kept
    and duplicates dropped; inputs that match nothing are problems."""
    found, problems, seen = [], [], set()

    def add(path):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(key)

    for text in inputs:
        path = Path(text)
        if path.is_dir() and path.suffix.lower() not in {".otiod", ".fcpxmld"}:
            matches = sorted(p for p in path.rglob("*") if p.suffix.lower() in TIMELINE_SUFFIXES
                             and not p.name.startswith(".") and (p.is_file() or p.suffix.lower() in {".otiod", ".fcpxmld"}))
            if not matches:
                problems.append((text, f"no timelines in folder {text}"))
            for p in matches:
                add(p)
        elif path.exists():
            add(path)
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                problems.append((text, f"nothing matches {text}"))
            for m in matches:
                add(Path(m))
        else:
            problems.append((text, f"no such file: {text}"))
    return found, problems


def out_folders(timelines, out) -> dict:
    """Each timeline's own folder: its name, or name-<hash of its path> when two share a name
    (stable across runs, so --resume finds them again)."""
    stems = {}
    for path in timelines:
        stems.setdefault(path.stem, []).append(path)
    folders = {}
    for stem, paths in stems.items():
        for path in paths:
            tag = "" if len(paths) == 1 else "-" + hashlib.sha1(str(path).encode()).hexdigest()[:8]
            folders[path] = Path(out) / f"{stem}{tag}"
    return folders


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
                key = round(start * 1000)   # onsets to the millisecond
                onsets[key] = onsets.get(key, 0) + 1
    chords = sorted(ms / 1000 for ms, n in onsets.items() if n >= 3)
    distances = [min((abs(c - h) for c in chords), default=float("inf")) * fps for h in hits]
    finite = [d for d in distances if d != float("inf")]
    plan = manifest.get("plan", {})
    return {"hits": len(hits), "chord_within_frame": sum(d <= 1.0 for d in distances),
            "mean_frames_to_chord": round(sum(finite) / len(finite), 3) if finite else None,
            "hits_on_beat": plan.get("hits_on_beat"), "tempo_bpm": manifest["tempo_map"][0]["bpm"]
            if manifest.get("tempo_map") else None}


# -- one timeline, in this process or in a worker --------------------------------------

_MODEL = {}


def _load(device):
    if "model" not in _MODEL:
        from bridge.score import load_model
        _MODEL["model"], _MODEL["info"] = load_model(device)
    return _MODEL["model"], _MODEL["info"]


def _worker_init(device, threads):
    import torch
    torch.set_num_threads(threads)
    try:
        _load(device)
    except MissingModel:
        pass   # each job then reports it


def score_one(path, out, options, device="auto", progress=None) -> dict:
    """Score one timeline; never raises: the entry says what happened."""
    from bridge.score import score
    started = time.perf_counter()
    entry = {"input": str(path), "out": str(out)}
    try:
        model, info = _load(device)
        manifest, manifest_path = score(path, out, model=model, model_info=info, device=device,
                                        progress=progress, **options)
        entry.update(status="done", manifest=str(manifest_path), timings=manifest["timings"],
                     alignment=alignment(manifest), warnings=len(manifest["warnings"]),
                     duration_seconds=manifest["duration_seconds"])
    except BadInput as exc:
        entry.update(status="failed", code="bad_input", error=str(exc))
    except MissingModel as exc:
        entry.update(status="failed", code="no_model", error=str(exc))
    except Exception as exc:   # one timeline's bug must not stop the batch
        entry.update(status="failed", code="internal", error=f"{type(exc).__name__}: {exc}")
    entry["seconds"] = round(time.perf_counter() - started, 3)
    return entry


def _identity(path):
    stat = Path(path).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _resumable(entry, path):
    """A previous run's entry that still stands: done, its manifest there, the file unchanged."""
    try:
        return (entry.get("status") == "done" and Path(entry["manifest"]).exists()
                and entry.get("identity") == _identity(path))
    except (OSError, KeyError, TypeError):
        return False


def run(inputs, out, *, workers=1, resume=False, options=None, device="auto", show=True) -> dict:
    """Score every timeline the inputs name; returns the report (also written to out/REPORT)."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    options = options or {}
    timelines, problems = expand(inputs)
    folders = out_folders(timelines, out)
    report_path = out / REPORT
    previous = {}
    if resume and report_path.exists():
        try:
            previous = {e["input"]: e for e in json.loads(report_path.read_text())["timelines"]}
        except (ValueError, KeyError, TypeError):
            print(f"batch: {report_path} is unreadable; scoring everything again", file=sys.stderr)
    report = {"scorebridge_version": __version__, "out": str(out), "workers": workers,
              "options": {k: str(v) for k, v in options.items()}, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "timelines": [{"input": text, "status": "failed", "code": "bad_input", "error": why}
                            for text, why in problems]}
    entries = {}
    todo = []
    for path in timelines:
        if resume and _resumable(previous.get(str(path), {}), path):
            entries[path] = dict(previous[str(path)], status="done", resumed=True)
        else:
            todo.append(path)

    def save():
        listed = [entries[p] for p in timelines if p in entries]
        report["timelines"][len(problems):] = listed
        counts = {s: sum(e["status"] == s for e in report["timelines"]) for s in ("done", "failed")}
        report["summary"] = {"timelines": len(timelines) + len(problems), **counts,
                             "resumed": sum(bool(e.get("resumed")) for e in listed),
                             "pending": len(timelines) - len(listed)}
        atomic.write_json(report_path, report)

    save()
    # The bar on a terminal; in a log, one line per timeline says as much.
    bar = tqdm(total=len(timelines), initial=len(timelines) - len(todo), unit="timeline",
               disable=not (show and sys.stderr.isatty()), file=sys.stderr, dynamic_ncols=True)

    def finished(path, entry):
        entry["identity"] = _identity(path) if path.exists() else None
        entries[path] = entry
        save()
        bar.update(1)
        if not show:
            return
        count = f"[{len(entries)}/{len(timelines)}]"
        if entry["status"] == "done":
            a = entry["alignment"]
            bar.write(f"batch: {count} done   {path.name}: {a['chord_within_frame']}/{a['hits']} hits on a "
                      f"chord, {entry['seconds']:.1f} s", file=sys.stderr)
        else:
            bar.write(f"batch: {count} FAILED {path.name}: {entry['error']}", file=sys.stderr)

    try:
        if workers <= 1:
            for path in todo:
                bar.set_postfix_str(path.name)
                finished(path, score_one(path, folders[path], options, device,
                                         progress=lambda f, stage: bar.set_postfix_str(f"{path.name}: {stage}")))
        else:
            _run_pool(todo, folders, options, device, workers, finished, bar)
    finally:
        bar.close()
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        save()
    return report


def _run_pool(todo, folders, options, device, workers, finished, bar):
    """At most `workers` timelines in flight, so a worker that dies takes only those with it;
    the rest go on in a fresh pool."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")   # torch and fork do not mix
    pending = list(todo)

    def crashed(path):
        return {"input": str(path), "out": str(folders[path]), "status": "failed", "code": "internal",
                "error": "the worker process died while scoring it"}

    while pending:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                   initargs=(device, threads))
        flying, broken = {}, False
        try:
            while (pending or flying) and not broken:
                while pending and len(flying) < workers:
                    path = pending.pop(0)
                    flying[pool.submit(score_one, path, folders[path], options, device)] = path
                done, _ = wait(flying, return_when=FIRST_COMPLETED)
                for future in done:
                    path = flying.pop(future)
                    try:
                        entry = future.result()
                    except BrokenProcessPool:
                        entry, broken = crashed(path), True
                    finished(path, entry)
            for path in flying.values():   # in flight when a worker died
                finished(path, crashed(path))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
