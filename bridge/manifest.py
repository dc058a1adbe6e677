"""The manifest: the JSON document every command writes for a timeline (PROTOCOL.md).

Times are seconds from the timeline's first frame; frame numbers count from there too.
Frame-exact values ride along so that host scripts never round seconds back to frames.
"""

import dataclasses
from pathlib import Path

from bridge import __version__, atomic
from bridge.timebase import frames_to_seconds, frames_to_timecode


def _seconds(frame, rate) -> float:
    return round(frames_to_seconds(frame, rate), 6)


def hit_entries(hits, timeline) -> list:
    rate = timeline.rate
    return [
        {
            "seconds": _seconds(h.frame, rate),
            "frame": h.frame,
            "source": h.source,
            "name": h.name,
            "timecode": frames_to_timecode(timeline.start_frame + h.frame, rate, timeline.drop_frame),
        }
        for h in hits
    ]


def section_entries(sections, timeline) -> list:
    rate = timeline.rate
    out = []
    for s in sections:
        d = dataclasses.asdict(s) if dataclasses.is_dataclass(s) else dict(s)
        start, end = d.pop("start"), d.pop("end")
        entry = {
            "start": _seconds(start, rate),
            "end": _seconds(end, rate),
            "valence": round(float(d.pop("valence")), 4),
            "arousal": round(float(d.pop("arousal")), 4),
            "emotion": {k: round(float(v), 4) for k, v in d.pop("emotion", {}).items()},
            "source": d.pop("source"),
            "frame_start": start,
            "frame_end": end,
        }
        entry.update(d)
        out.append(entry)
    return out


def marker_entries(markers, timeline) -> list:
    rate = timeline.rate
    return [
        {
            "seconds": _seconds(m.frame, rate),
            "frame": m.frame,
            "name": m.name,
            "kind": m.kind,
            "duration_frames": m.duration,
            "valence": m.valence,
            "arousal": m.arousal,
        }
        for m in markers
    ]


def build(timeline, hits, sections, warnings, timings, **extra) -> dict:
    """The manifest for one timeline; `extra` adds or replaces top-level keys (outputs, model…)."""
    rate = timeline.rate
    manifest = {
        "scorebridge_version": __version__,
        "input": str(Path(timeline.path).resolve()) if timeline.path else None,
        "name": timeline.name,
        "fps": round(float(rate), 6),
        "rate": f"{rate.numerator}/{rate.denominator}",
        "drop_frame": timeline.drop_frame,
        "start_seconds": _seconds(timeline.start_frame, rate),
        "start_timecode": frames_to_timecode(timeline.start_frame, rate, timeline.drop_frame),
        "duration_seconds": _seconds(timeline.duration, rate),
        "duration_frames": timeline.duration,
        "hits": hit_entries(hits, timeline),
        "sections": section_entries(sections, timeline),
        "markers": marker_entries(timeline.markers, timeline),
        "tempo_map": [],
        "outputs": {"midi": None, "wav": None, "otio": None},
        "model": None,
        "seed": None,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "warnings": list(dict.fromkeys(warnings)),
    }
    manifest.update(extra)
    return manifest


def manifest_path(out_dir, timeline) -> Path:
    stem = Path(timeline.path).stem if timeline.path else (timeline.name or "timeline")
    return Path(out_dir).resolve() / f"{stem}.manifest.json"


def write(manifest: dict, path) -> Path:
    return atomic.write_json(path, manifest)
