"""A small demo edit built from nothing: a synthetic video of contrasting moods and a timeline.

The video is drawn with ffmpeg's lavfi sources, so the demo, the tests and the benchmark need
no sample footage. Scenes are chosen so that picture analysis has something to tell apart:
dark, grey, nearly still and quiet against bright, saturated, fast-moving and loud.
"""

import os
import subprocess
import tempfile
from pathlib import Path

import opentimelineio as otio

from bridge import atomic

# Each look is a lavfi video chain with {w}, {h}, {r} placeholders, and an audio amplitude.
LOOKS = {
    # Two near-black greys drifting slowly into each other: dark, desaturated, nearly still.
    "dark": ("gradients=s={w}x{h}:r={r}:c0=0x0e1012:c1=0x2a2d31:nb_colors=2:speed=0.004:seed=1", 0.004),
    # Grey fog: mid-dark, colourless, slow.
    "grey": ("gradients=s={w}x{h}:r={r}:c0=0x303236:c1=0x5a5c60:nb_colors=2:speed=0.006:seed=2", 0.006),
    # The colour test pattern scrolling fast with its hue turning: bright, saturated, moving.
    "bright": ("testsrc2=s={w}x{h}:r={r},scroll=h=0.045:v=0.02,hue=h='t*150':s=1.4,eq=brightness=0.06", 0.35),
    # A zooming Mandelbrot set: saturated and slowly moving, with its own look for cut tests.
    "fractal": ("mandelbrot=s={w}x{h}:r={r}:maxiter=64:end_scale=0.5,eq=brightness=0.1:saturation=1.3", 0.25),
    # Orange and gold gradients turning at a moderate pace: warm, bright, some motion.
    "warm": ("gradients=s={w}x{h}:r={r}:c0=0xd06020:c1=0xf0c050:c2=0xb04018:nb_colors=3:speed=0.03:seed=3", 0.15),
}


def render_scenes(path, scenes, size=(320, 180), rate=25, audio=True):
    """Write a video of `scenes` [(look, frames, extra_filter or None), ...] at an exact frame count.

    Every scene starts its source at time 0, so each scene is a hard cut from the one before.
    `extra_filter` is a lavfi chain applied to that scene only (e.g. a flash with drawbox).
    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    w, h = size
    chains, labels = [], []
    for i, scene in enumerate(scenes):
        look, frames, extra = (tuple(scene) + (None,))[:3]
        video, amp = LOOKS[look]
        chain = video.format(w=w, h=h, r=rate)
        if extra:
            chain += "," + extra
        chains.append(f"{chain},trim=end_frame={frames},setpts=PTS-STARTPTS,format=yuv420p[v{i}]")
        labels.append(f"[v{i}]")
        if audio:
            seconds = frames / rate
            chains.append(
                f"anoisesrc=c=pink:r=16000:a={amp}:seed={i + 1},atrim=duration={seconds:.6f},asetpts=PTS-STARTPTS[a{i}]"
            )
            labels.append(f"[a{i}]")
    n = len(scenes)
    chains.append("".join(labels) + f"concat=n={n}:v=1:a={1 if audio else 0}[v]" + ("[a]" if audio else ""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=".tmp-")
    os.close(fd)
    cmd = ["ffmpeg", "-v", "error", "-y", "-filter_complex", ";".join(chains), "-map", "[v]"]
    if audio:
        cmd += ["-map", "[a]", "-c:a", "aac", "-b:a", "64k"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-r", str(rate), tmp]
    try:
        subprocess.run(cmd, check=True, capture_output=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# The demo's scenes (look, frames at 25 fps) and the timeline's clips (name, first frame,
# end frame exclusive, the same in the source): clip edges fall on scene changes except in
# the last clip, which holds a cut inside it (bright, then warm at frame 625) for picture
# analysis to find.
DEMO_RATE = 25
DEMO_SCENES = [
    ("dark", 125),
    ("grey", 100),
    ("bright", 75),
    ("dark", 125),
    ("fractal", 100),
    ("bright", 100),
    ("warm", 75),
]
DEMO_CLIPS = [
    ("1 night", 0, 125),
    ("2 fog", 125, 225),
    ("3 city", 225, 300),
    ("4 night again", 300, 425),
    ("5 fractal", 425, 525),
    ("6 run to sunset", 525, 700),
]
DEMO_INNER_CUT = 625
# The fog turns tense a second in; from the city on the picture decides again; a hit lands
# inside the fractal shot.
DEMO_MARKERS = [(150, "mood: tense"), (225, "mood: auto"), (480, "hit")]


def build_demo(out_dir):
    """Write demo.mp4 and demo.otio into `out_dir`; returns (video_path, timeline_path).

    Idempotent: files already present are kept, so a second call costs nothing.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo.mp4"
    timeline_path = out / "demo.otio"
    if not video.exists():
        render_scenes(video, DEMO_SCENES, size=(640, 360), rate=DEMO_RATE)
    if not timeline_path.exists():
        atomic.write_text(timeline_path, otio.adapters.write_to_string(demo_timeline(video), "otio_json"))
    return video, timeline_path


def demo_timeline(video_path):
    """The demo edit as an OTIO timeline referencing `video_path` by absolute path."""
    rate = DEMO_RATE
    total = sum(frames for _, frames in DEMO_SCENES)
    tl = otio.schema.Timeline(name="ScoreBridge demo")
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    tl.tracks.append(track)
    available = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(total, rate))
    for name, start, end in DEMO_CLIPS:
        ref = otio.schema.ExternalReference(target_url=str(Path(video_path).resolve()), available_range=available)
        track.append(
            otio.schema.Clip(
                name=name,
                media_reference=ref,
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(end - start, rate)
                ),
            )
        )
    for frame, name in DEMO_MARKERS:
        tl.tracks.markers.append(
            otio.schema.Marker(
                name=name,
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(frame, rate), otio.opentime.RationalTime(0, rate)
                ),
            )
        )
    return tl
