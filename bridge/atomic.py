"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import json
import os
import tempfile
from pathlib import Path


def write_bytes(path, data: bytes, *more) -> Path:
    """Write to a temporary file beside `path`, then rename it over `path`. `more`: further
    buffers (bytes, or arrays through the buffer protocol) written after `data`, uncopied."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            for chunk in more:
                f.write(memoryview(chunk).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
