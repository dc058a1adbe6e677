"""`scorebridge batch`: score many timelines into one folder, with a report.

One dispatcher, two engines: `local` (this machine: in this process or a pool of worker
processes; the default) and `ray` (long-lived actors on a Ray cluster, `ray_engine`). Both
share what is here: the expansion of the inputs, `--resume`, the progress bar and the
report. Each timeline gets its own sub-folder of the output folder. `batch-report.json` is
written by this process only (atomically, after every timeline), so a batch that is stopped
can be resumed (`--resume` skips timelines already done whose file has not changed since).
A timeline that fails is recorded with its reason and the batch goes on.
"""

import glob
import hashlib
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from bridge.settings import ScoreOptions
from bridge import __version__, atomic
from bridge.batch.job import alignment, score_one  # noqa: F401  (the batch's one-timeline API)
from bridge.errors import BadInput

ENGINES = ("local", "ray")

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
            matches = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in TIMELINE_SUFFIXES
                and not p.name.startswith(".")
                and (p.is_file() or p.suffix.lower() in {".otiod", ".fcpxmld"})
            )
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


def _identity(path):
    stat = Path(path).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _resumable(entry, path):
    """A previous run's entry that still stands: done, its manifest there, the file unchanged."""
    try:
        return (
            entry.get("status") == "done"
            and Path(entry["manifest"]).exists()
            and entry.get("identity") == _identity(path)
        )
    except (OSError, KeyError, TypeError):
        return False


def engine_for(
    name="local",
    *,
    workers=None,
    device="auto",
    address=None,
    worker_cpus=None,
    worker_gpus=None,
    retries=2,
    score=None,
):
    """The engine a batch runs on. Ray's is imported only when asked for: it is an extra."""
    if name == "local":
        if address or worker_cpus or worker_gpus:
            raise BadInput("--address, --worker-cpus and --worker-gpus are for --engine ray")
        from bridge.batch.local import LocalEngine

        return LocalEngine(workers or 1, device)
    if name == "ray":
        from bridge.batch.ray_engine import RayEngine

        return RayEngine(
            address=address,
            workers=workers,
            worker_cpus=worker_cpus,
            worker_gpus=worker_gpus,
            retries=retries,
            device=device,
            score=score,
        )
    raise BadInput(f"unknown engine {name!r}: one of {', '.join(ENGINES)}")


def run(
    inputs, out, *, workers=None, resume=False, options=None, device="auto", show=True, engine="local", **engine_options
) -> dict:
    """Score every timeline the inputs name on `engine` (a name, or an engine object) with
    `options` (a bridge.settings.ScoreOptions; the defaults when None); returns the report
    (also written to out/REPORT)."""
    options = options if options is not None else ScoreOptions()
    if not isinstance(options, ScoreOptions):
        raise TypeError("batch options are a bridge.settings.ScoreOptions")
    out = Path(out).resolve()
    timelines, problems = expand(inputs)
    if isinstance(engine, str):
        engine = engine_for(engine, workers=workers, device=device, **engine_options)
    try:
        return _run(engine, timelines, problems, out, resume, options, show)
    finally:
        engine.close()


def _run(engine, timelines, problems, out, resume, options, show):
    out.mkdir(parents=True, exist_ok=True)
    folders = out_folders(timelines, out)
    report_path = out / REPORT
    previous = {}
    if resume and report_path.exists():
        try:
            previous = {e["input"]: e for e in json.loads(report_path.read_text())["timelines"]}
        except (ValueError, KeyError, TypeError):
            print(f"batch: {report_path} is unreadable; scoring everything again", file=sys.stderr)
    described = engine.describe()
    report = {
        "scorebridge_version": __version__,
        "out": str(out),
        "engine": described,
        "workers": described["workers"],
        "options": {k: str(v) for k, v in options.score_kwargs().items()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "timelines": [{"input": text, "status": "failed", "code": "bad_input", "error": why} for text, why in problems],
    }
    entries = {}
    todo = []
    for path in timelines:
        if resume and _resumable(previous.get(str(path), {}), path):
            entries[path] = dict(previous[str(path)], status="done", resumed=True)
        else:
            todo.append(path)

    def save():
        listed = [entries[p] for p in timelines if p in entries]
        report["timelines"][len(problems) :] = listed
        counts = {s: sum(e["status"] == s for e in report["timelines"]) for s in ("done", "failed")}
        report["summary"] = {
            "timelines": len(timelines) + len(problems),
            **counts,
            "resumed": sum(bool(e.get("resumed")) for e in listed),
            "pending": len(timelines) - len(listed),
        }
        atomic.write_json(report_path, report)

    save()
    # The bar on a terminal; in a log, one line per timeline says as much.
    bar = tqdm(
        total=len(timelines),
        initial=len(timelines) - len(todo),
        unit="timeline",
        disable=not (show and sys.stderr.isatty()),
        file=sys.stderr,
        dynamic_ncols=True,
    )

    def finished(path, entry):
        entry["identity"] = _identity(path) if path.exists() else None
        entries[path] = entry
        save()
        bar.update(1)
        if not show:
            return
        count = f"[{len(entries)}/{len(timelines)}]"
        where = f" on {entry['node']}" if engine.name != "local" and entry.get("node") else ""
        if entry["status"] == "done":
            a = entry["alignment"]
            bar.write(
                f"batch: {count} done   {path.name}: {a['chord_within_frame']}/{a['hits']} hits on a "
                f"chord, {entry['seconds']:.1f} s{where}",
                file=sys.stderr,
            )
        else:
            bar.write(f"batch: {count} FAILED {path.name}: {entry['error']}", file=sys.stderr)

    try:
        engine.run(todo, folders, options, finished, bar.set_postfix_str)
    finally:
        bar.close()
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        save()
    return report
