"""Media references -> local files and offsets, relinked by file name under a media root."""

import functools
import ntpath
import os
import re
import shutil
import urllib.parse
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from bridge.errors import BadInput
from bridge.timebase import rational_seconds, timecode_to_frames

from bridge.timeline.video import _probe, _probe_rate, _probe_timecode


class _Media:
    """Media references -> local paths and offsets, relinked under media_root when missing."""

    def __init__(self, base, media_root):
        self.base = Path(base)
        self.root = Path(media_root).expanduser() if media_root else None
        self.index = None
        self.missing, self.no_media, self.relinked = [], set(), 0

    def locate(self, clip, source_seconds):
        """(local path or None, seconds into the media file) for a clip at source_seconds."""
        ref = clip.media_reference
        path = None
        if isinstance(ref, otio.schema.ExternalReference):
            path = self._path(ref.target_url)
        if path is None:
            if not isinstance(ref, otio.schema.GeneratorReference):
                self.no_media.add(id(clip))
        elif not os.path.exists(path):
            found = self._relink(path)
            if found:
                self.relinked += 1
                path = found
            elif path not in self.missing:
                self.missing.append(path)
        start = source_seconds
        if ref is not None and ref.available_range is not None:
            start -= rational_seconds(ref.available_range.start_time)
        elif path is not None and os.path.exists(path):
            start -= _timecode_seconds(path)
        return path, float(start)

    def _path(self, url):
        """A local path from a target URL: file:// decoded, Windows paths kept as given."""
        url = (url or "").strip()
        if not url:
            return None
        if re.match(r"^[A-Za-z]:[\\/]", url) or url.startswith("\\\\"):
            return url
        if url.lower().startswith("file:"):
            parts = urllib.parse.urlparse(url)
            local = urllib.parse.unquote(parts.path)
            if re.match(r"^/[A-Za-z]:[\\/]", local):
                return local[1:]
            if parts.netloc and parts.netloc.lower() != "localhost":
                return f"//{parts.netloc}{local}"
            return local
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", url):
            return None
        return str(self.base / url) if not os.path.isabs(url) else url

    def _relink(self, path):
        if self.root is None:
            return None
        if self.index is None:
            self.index = {}
            for folder, dirs, files in os.walk(self.root):
                dirs.sort()
                for name in sorted(files):
                    self.index.setdefault(name.lower(), os.path.join(folder, name))
        return self.index.get(ntpath.basename(path).lower())

    def warnings(self) -> list:
        out = []
        if self.relinked:
            out.append(f"{self.relinked} clip(s) relinked to media under {self.root}")
        if self.missing:
            more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
            hint = "" if self.root else " (--media-root relinks by file name)"
            out.append(f"media not found: {', '.join(self.missing[:3])}{more}{hint}")
        if self.no_media:
            out.append(
                f"{len(self.no_media)} clip(s) name no media file; they are scored from their cuts and markers only"
            )
        return out


@functools.lru_cache(maxsize=256)
def _timecode_seconds(path) -> Fraction:
    """A media file's start timecode in seconds (0 when it has none or cannot be probed)."""
    if shutil.which("ffprobe") is None:
        return Fraction(0)
    try:
        info = _probe(Path(path))
        timecode = _probe_timecode(info)
        rate = _probe_rate(info["streams"][0].get("r_frame_rate"))
        if not timecode or rate is None:
            return Fraction(0)
        return Fraction(timecode_to_frames(timecode, rate), 1) / rate
    except (BadInput, ValueError, KeyError, IndexError):
        return Fraction(0)
