"""`scorebridge analyze`: read an edit, analyse its picture, write the manifest (no music)."""

import bisect
import math
import time
from pathlib import Path

from bridge import manifest as manifest_mod
from bridge.picture.analysis import analyze_timeline
from bridge.timeline import read_timeline


NEAR_CUT_S = 0.5  # a detected cut this close to an edit cut (inclusive) is a flash, not a hit


def merge_hits(edit_hits, detected_hits, rate=None) -> list:
    """All hit points, one per frame: the edit's own hits win over detected ones, and with
    the frame rate, a detection within NEAR_CUT_S of an edit cut, inclusive, is dropped (a
    flash a roll edit left behind, or the cut itself seen a few frames off)."""
    cuts = sorted(h.frame for h in edit_hits if h.source in ("cut", "transition"))
    near = math.floor(NEAR_CUT_S * rate + 1e-9) if rate else 0

    def far(frame):
        at = bisect.bisect_left(cuts, frame - near)
        return not (at < len(cuts) and cuts[at] <= frame + near)

    by_frame = {h.frame: h for h in detected_hits if far(h.frame)}
    by_frame.update({h.frame: h for h in edit_hits})
    return [by_frame[f] for f in sorted(by_frame)]


def read_and_analyze(input_path, fps=None, media_root=None, progress=None, use_cache=True):
    """The timeline and picture stages, shared by `analyze` and `score`.

    Returns (timeline, picture analysis result, all hits, {"read_s", "analysis_s"}).
    """
    t0 = time.perf_counter()
    timeline = read_timeline(input_path, fps=fps, media_root=media_root)
    t1 = time.perf_counter()
    result = analyze_timeline(timeline, progress=progress, use_cache=use_cache)
    t2 = time.perf_counter()
    hits = merge_hits(timeline.hits, result["detected_hits"], timeline.rate)
    return timeline, result, hits, {"read_s": t1 - t0, "analysis_s": t2 - t1}


def analyze(input_path, out_dir, fps=None, media_root=None, progress=None, use_cache=True):
    """Run the timeline and picture stages; return (manifest dict, manifest path)."""
    timeline, result, hits, timings = read_and_analyze(input_path, fps, media_root, progress, use_cache)
    manifest = manifest_mod.build(timeline, hits, result["sections"], timeline.warnings + result["warnings"], timings)
    path = manifest_mod.manifest_path(out_dir, timeline)
    manifest_mod.write(manifest, path)
    return manifest, path


def summary(manifest: dict) -> str:
    """A few lines an editor can read: cuts, moods, warnings."""
    lines = [
        f"{manifest['name'] or Path(manifest['input']).name}: {manifest['duration_seconds']:.2f} s at "
        f"{manifest['fps']:.3f} fps{' DF' if manifest['drop_frame'] else ''}, "
        f"starts {manifest['start_timecode']}, {len(manifest['hits'])} hit points"
    ]
    for s in manifest["sections"]:
        flag = "  tacet" if s.get("tacet") else ""
        lines.append(
            f"  {s['start']:8.2f}–{s['end']:8.2f} s  valence {s['valence']:+.2f}  "
            f"arousal {s['arousal']:+.2f}  ({s['source']}){flag}"
        )
    for w in manifest["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)
