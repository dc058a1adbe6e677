"""Synthetic test videos, built by the tests themselves (ffmpeg lavfi sources, numpy faces)."""

import subprocess
from fractions import Fraction

import cv2
import numpy as np

from bridge.demo import render_scenes
from bridge.timeline import Clip, Timeline

RATE = 25
SIZE = (320, 180)
FLASH = "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='between(n,25,26)'"
# Hard cuts at frames 40, 100 and 140; a two-frame white flash at frames 65-66 is no cut.
CUTS_SCENES = [("bright", 40), ("fractal", 60, FLASH), ("warm", 40), ("dark", 35)]
CUTS = [40, 100, 140]
FLASH_FRAMES = [65, 66, 67]


def cuts_video(folder):
    return _once(folder / "cuts.mp4", CUTS_SCENES)


def mood_video(folder):
    """Dark, grey, still and quiet for 50 frames, then bright, saturated, fast and loud for 50."""
    return _once(folder / "mood.mp4", [("dark", 50), ("bright", 50)])


def _once(path, scenes):
    if not path.exists():
        render_scenes(path, scenes, size=SIZE, rate=RATE)
    return path


def one_clip_timeline(path, frames, media_start=0.0, record_start=0, markers=(), name="t"):
    """A timeline of one clip of `frames` frames, preceded by a gap when record_start > 0."""
    segments = []
    if record_start:
        segments.append(Clip("gap", 0, record_start, kind="gap"))
    segments.append(
        Clip(
            "clip",
            record_start,
            record_start + frames,
            media_path=str(path) if path else None,
            media_start=media_start,
            media_rate=RATE,
        )
    )
    return Timeline(name, f"/tmp/{name}.otio", Fraction(RATE), False, 0, record_start + frames, segments, list(markers))


def _blob(img, cx, cy, sx, sy, amp):
    h, w = img.shape
    y, x = np.mgrid[0:h, 0:w]
    img += amp * np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2) / 2)


def face_image(size=80, mouth=1.0):
    """A shaded grey face (oval, eye sockets, brows, nose, mouth) that a frontal-face
    cascade accepts; `mouth` bends the mouth (+1 and -1 curve opposite ways)."""
    img = np.full((3 * size, 3 * size), 90.0)
    c = 1.5 * size
    _blob(img, c, c, 0.42 * size, 0.58 * size, 110)
    for dx in (-1, 1):
        _blob(img, c + dx * 0.2 * size, c - 0.12 * size, 0.09 * size, 0.05 * size, -110)
        _blob(img, c + dx * 0.2 * size, c - 0.24 * size, 0.11 * size, 0.025 * size, -70)
    _blob(img, c, c + 0.05 * size, 0.05 * size, 0.12 * size, 20)
    _blob(img, c, c + 0.13 * size, 0.07 * size, 0.025 * size, -50)
    for k in np.linspace(-1, 1, 9):
        _blob(
            img,
            c + k * 0.15 * size,
            c + 0.32 * size - mouth * 0.05 * size * (1 - k * k),
            0.035 * size,
            0.022 * size,
            -70,
        )
    return np.clip(img, 0, 255).astype(np.uint8)


def face_video(folder, frames=50):
    """A 320x180 video of the synthetic face drifting slowly, piped to ffmpeg as raw frames."""
    path = folder / "face.mp4"
    if path.exists():
        return path
    face = cv2.cvtColor(face_image(40), cv2.COLOR_GRAY2BGR)  # 120x120, the face ~65 px
    w, h = SIZE
    tmp = path.with_suffix(".tmp.mp4")
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(RATE),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        str(tmp),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for i in range(frames):
        frame = np.full((h, w, 3), 90, np.uint8)
        x = 100 + i // 5
        frame[30:150, x : x + 120] = face
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("ffmpeg failed to write the face video")
    tmp.replace(path)
    return path


def video_folder(tmp_path_factory):
    """One folder per test session, so videos built by one test module serve the others."""
    folder = tmp_path_factory.getbasetemp() / "picture-videos"
    folder.mkdir(exist_ok=True)
    return folder
