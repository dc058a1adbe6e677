"""A bare video file as a one-clip timeline, and what ffprobe says of a file (rate, timecode)."""

import json
import shutil
import subprocess
from fractions import Fraction

import opentimelineio as otio

from bridge.errors import BadInput
from bridge.timebase import exact_rate, seconds_to_frame, timecode_to_frames
from bridge.timeline.adapters import _checked_rate, _first_line


def _probe(path) -> dict:
    """ffprobe's view of a media file's first video stream (and its format tags)."""
    if shutil.which("ffprobe") is None:
        raise BadInput("reading a video file needs ffprobe (part of ffmpeg) on the PATH")
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-of",
        "json",
        "-show_entries",
        "stream=r_frame_rate,avg_frame_rate,nb_frames,duration:"
        "stream_tags=timecode:format=duration:format_tags=timecode",
        str(path),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BadInput(
            f"cannot read video {path.name}: {_first_line(done.stderr) if done.stderr.strip() else 'ffprobe failed'}"
        )
    return json.loads(done.stdout or "{}")


def _probe_rate(text) -> Fraction | None:
    """'30000/1001' as an exact rate; None for ffprobe's '0/0' (unknown)."""
    num, _, den = str(text or "0/0").partition("/")
    try:
        value = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return exact_rate(value) if value > 0 else None


def _probe_timecode(info):
    return (info.get("streams") or [{}])[0].get("tags", {}).get("timecode") or info.get("format", {}).get(
        "tags", {}
    ).get("timecode")


def _read_video(path, warnings):
    """A bare video file as a one-clip OTIO timeline at its nominal rate."""
    info = _probe(path)
    if not info.get("streams"):
        raise BadInput(f"{path.name} has no video stream")
    stream = info["streams"][0]
    base = _probe_rate(stream.get("r_frame_rate"))
    average = _probe_rate(stream.get("avg_frame_rate"))
    rate = base or average
    if rate is None:
        raise BadInput(f"cannot tell the frame rate of {path.name}")
    rate = _checked_rate(rate, path)
    seconds = float(stream.get("duration") or info.get("format", {}).get("duration") or 0)
    if average is not None and average != base:
        warnings.append(
            f"{path.name} has a variable frame rate (nominal {float(base):.3f}, "
            f"average {float(average):.3f} fps); frames are counted at "
            f"{float(rate):.3f} fps from its duration, so hits may be off by a frame"
        )
        frames = seconds_to_frame(seconds, rate)
    else:
        frames = int(stream.get("nb_frames") or 0) or seconds_to_frame(seconds, rate)
    if frames <= 0:
        raise BadInput(f"{path.name} has no frames")
    r = float(rate)
    available = otio.opentime.TimeRange(otio.opentime.RationalTime(0, r), otio.opentime.RationalTime(frames, r))
    clip = otio.schema.Clip(
        name=path.stem,
        source_range=available,
        media_reference=otio.schema.ExternalReference(target_url=path.as_uri(), available_range=available),
    )
    timeline = otio.schema.Timeline(name=path.stem)
    timeline.tracks.append(otio.schema.Track(name="V1", children=[clip]))
    timecode = _probe_timecode(info)
    timeline.metadata["drop_frame"] = bool(timecode) and ";" in timecode
    if timecode:
        try:
            timeline.global_start_time = otio.opentime.RationalTime(timecode_to_frames(timecode, rate), r)
        except ValueError:
            warnings.append(f"{path.name}: start timecode {timecode!r} unreadable; starting at 0")
    return timeline
