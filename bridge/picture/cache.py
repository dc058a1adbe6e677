"""On-disk cache of per-clip picture analysis, so re-scoring an edit analyses only what changed.

An entry is keyed by the media's identity (absolute path, size, modification time), the
source range (start and duration in seconds) and the analysis version; changing any of them
makes a new key. Entries are .npz files (no pickles) written to a temporary name and renamed
into place; an entry that cannot be read is treated as missing and recomputed.
The folder is $SCOREBRIDGE_CACHE, else the user cache folder ("scorebridge"/picture).
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from bridge import config


def cache_dir() -> Path:
    return config.cache_dir() / "picture"


def key(path, start: float, duration: float, version: str) -> str | None:
    """The entry name for a source range of a file, or None when the file cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    ident = {
        "path": os.path.abspath(path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "start": round(start, 6),
        "duration": round(duration, 6),
        "version": version,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def load(name: str) -> dict | None:
    """The arrays stored under `name`, or None when absent or unreadable."""
    path = cache_dir() / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception:  # missing, truncated, not a zip, bad member: all mean "recompute"
        return None


def store(name: str, arrays: dict):
    """Write `arrays` (name -> numpy array) under `name` atomically."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, folder / f"{name}.npz")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
