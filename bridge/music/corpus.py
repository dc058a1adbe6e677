"""The training corpus: music21's bundled scores, parsed once into plain note arrays.

Two sources, each converted by the fastest tool that reads it correctly:
- kern / MusicXML works (Bach, Palestrina, Beethoven, Mozart, Haydn, Monteverdi, …) through
  music21, in worker processes under a time budget (a slow file never blocks the rest);
- the ABC folk collections through Debian's `abc2midi` (all tunes in seconds), read back
  with mido. abc2midi also renders the guitar-chord symbols some tunes carry as
  accompaniment, which gives those tunes a harmony and a bass part.

A work is stored in score time (quarter notes), not seconds: only ~9 % of works carry a
tempo, so tempo is chosen at training time as an augmentation (see labels.py).

    work = {"id": "bach/bwv66.6", "collection": "bach", "qpm": 96.0 or None,
            "parts": [float32 array (n, 3): onset_q, dur_q, pitch], "split": "train"}

music21 is imported only inside this module's functions: the rest of the product must
import without it.
"""

import glob
import hashlib
import os
import pickle
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait, FIRST_COMPLETED
from pathlib import Path

import numpy as np

from bridge import atomic, config
from bridge.errors import BadInput

CORPUS_DIR = config.corpus_dir()

# Multi-part collections parsed with music21, most valuable first (the budget may end the list).
M21_COLLECTIONS = [
    "bach",
    "mozart",
    "haydn",
    "beethoven",
    "monteverdi",
    "schumann_robert",
    "schumann_clara",
    "handel",
    "corelli",
    "joplin",
    "chopin",
    "schubert",
    "verdi",
    "weber",
    "trecento",
    "palestrina",
    "cpebach",
    "beach",
    "lusitano",
    "liliuokalani",
    "johnson_j_r",
    "luca",
    "ciconia",
]
ABC_COLLECTIONS = [
    "essenFolksong",
    "oneills1850",
    "ryansMammoth",
    "airdsAirs",
    "josquin",
    "miscFolk",
    "nottingham-dataset",
]
M21_SUFFIXES = (".krn", ".mxl", ".xml", ".musicxml")


def split_of(work_id: str) -> str:
    """Train/val/test by a hash of the work id: stable across runs, machines and orderings."""
    h = int(hashlib.sha1(work_id.encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 4 else "val" if h < 8 else "train"


def _corpus_root() -> Path:
    import music21  # only here: corpus building is the one place that needs it

    return Path(music21.__path__[0]) / "corpus"


# ---- music21 (kern / MusicXML) ------------------------------------------------------------


def _parse_m21(path: str):
    """One score file -> list of works (a file is one work here). Runs in a worker."""
    import music21

    score = music21.converter.parse(path)
    qpm = None
    marks = score.flatten().getElementsByClass("MetronomeMark")
    for m in marks:
        try:
            qpm = float(m.getQuarterBPM())
            break
        except Exception:
            continue
    parts = []
    for part in score.parts:
        flat = part.flatten().stripTies()
        rows = []
        for el in flat.notes:
            dur = float(el.duration.quarterLength)
            if dur <= 0:  # grace notes carry no time of their own
                continue
            for p in el.pitches:
                rows.append((float(el.offset), dur, p.midi))
        if rows:
            parts.append(np.array(sorted(rows), dtype=np.float32))
    return [{"parts": parts, "qpm": qpm}]


def parse_m21(budget_s: float = 600.0, workers: int = 2, log=print):
    """Parse the multi-part collections, resumably (one cache file per source file)."""
    root = _corpus_root()
    cache = CORPUS_DIR / "m21"
    cache.mkdir(parents=True, exist_ok=True)
    todo = []
    for coll in M21_COLLECTIONS:
        for path in sorted(glob.glob(str(root / coll / "**" / "*"), recursive=True)):
            if path.endswith(M21_SUFFIXES):
                rel = os.path.relpath(path, root)
                out = cache / (rel.replace("/", "__") + ".pkl")
                if not out.exists():
                    todo.append((rel, path, out))
    log(f"music21: {len(todo)} files to parse, budget {budget_s:.0f} s")
    start = time.time()
    done = failed = 0
    with ProcessPoolExecutor(workers) as pool:
        pending = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < workers * 2 and time.time() - start < budget_s:
                rel, path, out = queue.pop(0)
                pending[pool.submit(_parse_m21, path)] = (rel, out)
            if not pending:
                break
            finished, _ = wait(list(pending), timeout=30, return_when=FIRST_COMPLETED)
            for fut in finished:
                rel, out = pending.pop(fut)
                try:
                    works = fut.result()
                except Exception as exc:  # a broken file costs only itself
                    works, failed = [], failed + 1
                    log(f"  skip {rel}: {type(exc).__name__}: {str(exc)[:80]}")
                atomic.write_bytes(out, pickle.dumps({"rel": rel, "works": works}))
                done += 1
                if done % 50 == 0:
                    log(f"  {done}/{len(todo)} files, {time.time() - start:.0f} s")
            if time.time() - start > budget_s and queue:
                log(f"music21: budget reached, {len(queue)} files left for a later run")
                queue = []
                for fut in pending:
                    fut.cancel()
    log(f"music21: parsed {done} files ({failed} failed) in {time.time() - start:.0f} s")


# ---- ABC through abc2midi ------------------------------------------------------------------


def midi_to_parts(path_or_file, family=None):
    """A MIDI file -> (parts in quarter notes, qpm): one part per (track, channel). Given
    `family(track_name, channel, program) -> str`, also each part's family, from the program
    its channel starts with: (parts, qpm, families)."""
    import mido

    mid = mido.MidiFile(path_or_file)
    tpb = mid.ticks_per_beat
    qpm = None
    parts, families = {}, {}
    for ti, track in enumerate(mid.tracks):
        tick, active, program = 0, {}, {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and qpm is None:
                qpm = 60e6 / msg.tempo
            elif msg.type == "program_change":
                program[msg.channel] = msg.program
            elif msg.type == "note_on" and msg.velocity > 0:
                active.setdefault((msg.channel, msg.note), []).append(tick)
                if family is not None and (ti, msg.channel) not in families:
                    families[ti, msg.channel] = family(track.name, msg.channel, program.get(msg.channel, 0))
            elif msg.type in ("note_off", "note_on"):
                starts = active.get((msg.channel, msg.note))
                if starts:
                    t0 = starts.pop(0)
                    if tick > t0:
                        parts.setdefault((ti, msg.channel), []).append((t0 / tpb, (tick - t0) / tpb, msg.note))
    keys = [k for k, rows in sorted(parts.items()) if rows]
    out = [np.array(sorted(parts[k]), dtype=np.float32) for k in keys]
    if family is not None:
        return out, qpm, [families[k] for k in keys]
    return out, qpm


def parse_abc(log=print):
    """All ABC tunes through abc2midi -> one cache file."""
    exe = shutil.which("abc2midi")
    if exe is None:
        raise RuntimeError("abc2midi not found: install Debian's `abcmidi` package (apt-get install abcmidi)")
    root = _corpus_root()
    works = []
    start = time.time()
    for coll in ABC_COLLECTIONS:
        for path in sorted(glob.glob(str(root / coll / "*.abc"))):
            rel = os.path.relpath(path, root)
            with tempfile.TemporaryDirectory() as tmp:
                # abc2midi writes <stem><X number>.mid beside its input: work on a copy.
                shutil.copy(path, os.path.join(tmp, "t.abc"))
                subprocess.run([exe, "t.abc", "-quiet", "-silent"], cwd=tmp, capture_output=True, timeout=300)
                stem = "t"
                for mid in sorted(glob.glob(os.path.join(tmp, stem + "*.mid"))):
                    try:
                        parts, qpm = midi_to_parts(mid)
                    except Exception:
                        continue
                    if parts:
                        x = Path(mid).stem[len(stem) :]
                        works.append({"id": f"{rel}#{x}", "collection": coll, "qpm": qpm, "parts": parts})
    log(f"abc2midi: {len(works)} tunes in {time.time() - start:.0f} s")
    return works


# ---- the assembled corpus ------------------------------------------------------------------


def assemble(abc_works, log=print, groove_works=()):
    """Cached pieces -> one list of works with their split, saved as corpus.pkl. A work that
    comes with its split (the grooves: by style) keeps it."""
    works = list(abc_works) + list(groove_works)
    for f in sorted((CORPUS_DIR / "m21").glob("*.pkl")):
        item = _read_cache(f, log)
        if item is None:
            continue
        coll = item["rel"].split("/")[0]
        for i, w in enumerate(item["works"]):
            if w["parts"]:
                works.append(
                    {
                        "id": item["rel"] + (f"#{i}" if i else ""),
                        "collection": coll,
                        "qpm": w["qpm"],
                        "parts": w["parts"],
                    }
                )
    for w in works:
        w.setdefault("split", split_of(w["id"]))
    atomic.write_bytes(CORPUS_DIR / "corpus.pkl", pickle.dumps(works))
    return works


def load_corpus(path=None):
    """The assembled corpus; BadInput, saying how to build it, when it is missing or unreadable."""
    path = Path(path or CORPUS_DIR / "corpus.pkl")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise BadInput(
            f"no music corpus at {path}: build it with `scorebridge train corpus` "
            f"(up to a quarter of an hour: music21's parse has a 900 s budget)"
        ) from None
    except Exception as exc:  # a pickle cut short can raise almost anything (even MemoryError)
        raise BadInput(
            f"the music corpus at {path} is unreadable ({type(exc).__name__}): "
            f"build it again with `scorebridge train corpus`"
        ) from None


def report(works) -> dict:
    """Works, notes and hours (at each work's own tempo, 100 qpm where it has none) per split."""
    rep = {"collections": {}}
    for split in ("train", "val", "test", "all"):
        ws = [w for w in works if split == "all" or w["split"] == split]
        notes = sum(len(p) for w in ws for p in w["parts"])
        secs = sum(max(float((p[:, 0] + p[:, 1]).max()) for p in w["parts"]) * 60 / (w["qpm"] or 100) for w in ws)
        rep[split] = {"works": len(ws), "notes": int(notes), "hours": round(secs / 3600, 2)}
    for w in works:
        c = rep["collections"].setdefault(w["collection"], {"works": 0, "notes": 0})
        c["works"] += 1
        c["notes"] += int(sum(len(p) for p in w["parts"]))
    return rep


def _read_cache(path, log=print):
    """What a cache file holds; None when it is unreadable (a run cut off before cache files
    were written atomically), which is then removed so that the next run makes it again."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as exc:  # a pickle cut short can raise almost anything (even MemoryError)
        log(f"  unreadable cache {path.name} ({type(exc).__name__}): removed, made again next run")
        path.unlink(missing_ok=True)
        return None


def _cached(name, make, log=print):
    """The works in CORPUS_DIR/name, made (and saved) the first time."""
    path = CORPUS_DIR / name
    if path.exists():
        works = _read_cache(path, log)
        if works is not None:
            return works
    works = make()
    atomic.write_bytes(path, pickle.dumps(works))
    return works


def build(budget_s: float = 600.0, workers: int = 2, log=print, grooves=False) -> dict:
    """`scorebridge train corpus`: parse (resumably), assemble, split, report. With
    `grooves`, mma's grooves join the corpus (bridge/music/grooves.py: its only drums)."""
    CORPUS_DIR.mkdir(parents=True, exist_ok=True)
    groove_works = []
    if grooves:
        from bridge.music.grooves import find_mma, parse_grooves

        find_mma()  # before the long parse: a missing mma is said at once
        # named for the rendering: a cache from before the chords were lined up is not read
        groove_works = _cached("mma-lined.pkl", lambda: parse_grooves(log=log), log)
    abc_works = _cached("abc.pkl", lambda: parse_abc(log=log), log)
    parse_m21(budget_s=budget_s, workers=workers, log=log)
    works = assemble(abc_works, log=log, groove_works=groove_works)
    return report(works)
