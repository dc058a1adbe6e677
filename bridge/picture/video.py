"""Decoding a source range once, with OpenCV, into small frames every consumer shares.

Analysis never needs full resolution: cut detection and picture cues run on a frame about
256 px wide, and only the few frames sampled for faces are kept larger. Each frame carries
its presentation time from the container, so variable frame rate footage is still placed
correctly (and reported).
"""

import os
from dataclasses import dataclass

import cv2

ANALYSIS_WIDTH = 256  # PySceneDetect's own default downscaling lands near this width


class MediaError(Exception):
    """The media file cannot be opened or decoded; the message names it."""


@dataclass
class MediaInfo:
    path: str
    fps: float
    width: int
    height: int


def probe(path) -> MediaInfo:
    """Open `path` just to read its frame rate and size; MediaError when it is no video."""
    if not path or not os.path.isfile(path):
        raise MediaError(f"media not found: {path}")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError(f"cannot read media: {path}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if fps <= 0 or width <= 0 or height <= 0:
            raise MediaError(f"cannot read media (no video stream): {path}")
        return MediaInfo(str(path), fps, width, height)
    finally:
        cap.release()


def small_size(width, height, target=ANALYSIS_WIDTH):
    """(w, h) for a frame scaled to `target` px wide (never enlarged), even sizes."""
    scale = min(1.0, target / width)
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


class RangeReader:
    """Iterates over the frames of [start, start + duration) seconds of one file.

    Yields (time, frame) with time in seconds from `start` and frame the decoded BGR image
    at full size (callers downscale once). After iteration, `vfr` tells whether frame times
    strayed from the constant-rate grid by more than half a frame, and `frames` how many
    frames were read.
    """

    def __init__(self, info: MediaInfo, start: float, duration: float):
        self.info = info
        self.start = start
        self.duration = duration
        self.vfr = False
        self.frames = 0

    def __iter__(self):
        fps = self.info.fps
        half = 0.5 / fps
        cap = cv2.VideoCapture(self.info.path)
        if not cap.isOpened():
            raise MediaError(f"cannot read media: {self.info.path}")
        try:
            if self.start > 0:
                cap.set(cv2.CAP_PROP_POS_MSEC, self.start * 1000.0)
            first = prev = None
            while True:
                if not cap.grab():
                    break
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - self.start
                if prev is not None and t <= prev:
                    t = prev + 1.0 / fps  # a stream without usable timestamps
                if t < -half:
                    continue  # the seek landed before the range
                if t >= self.duration - half:
                    break
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
                prev = t
                if first is None:
                    first = t
                elif abs((t - first) * fps - self.frames) > 0.5:
                    self.vfr = True
                self.frames += 1
                yield max(t, 0.0), frame
        finally:
            cap.release()
