"""Cuts inside a clip: PySceneDetect's AdaptiveDetector fed the shared small frames, then filtered.

The timeline's own edit points are the primary structure; detection only adds hard cuts the
editor left inside a clip (a long take cut in camera, a montage rendered as one file). The
detector reports flashes (a lightning frame, a camera flash) and jittery bursts as cuts, so
its candidates are filtered: a cut whose new look gives way to the old one within a few
frames is a flash, and cuts closer than MIN_GAP to each other or to the clip's edges are
dropped because the music cannot use them.
"""

import cv2
import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import AdaptiveDetector

MIN_GAP = 0.5  # seconds between kept cuts, and from a cut to the clip's edges
FLASH_WINDOW = 0.25  # seconds within which a return to the previous look marks a flash
LOOK_SIZE = (8, 6)  # the thumbnail that stands for a frame's look


class CutFinder:
    """Consumes the small frames of one source range in order; `cuts()` gives frame indices."""

    def __init__(self, fps: float):
        self.fps = fps
        self.detector = AdaptiveDetector(min_scene_len=0)
        self.candidates = []
        self.looks = []

    def process(self, index: int, small: np.ndarray):
        timecode = FrameTimecode(index, fps=self.fps)
        self.candidates += [tc.frame_num for tc in self.detector.process_frame(timecode, small)]
        self.looks.append(cv2.resize(small, LOOK_SIZE, interpolation=cv2.INTER_AREA))

    def cuts(self) -> list[int]:
        if self.looks:
            last = FrameTimecode(len(self.looks) - 1, fps=self.fps)
            self.candidates += [tc.frame_num for tc in self.detector.post_process(last)]
        looks = np.array(self.looks, dtype=np.float32).reshape(len(self.looks), -1)
        kept = drop_flashes(sorted(set(self.candidates)), looks, max(2, round(FLASH_WINDOW * self.fps)))
        return space_out(kept, len(self.looks), round(MIN_GAP * self.fps))


def drop_flashes(candidates, looks, window):
    """Remove cuts that are flashes: within `window` frames the picture returns to its look
    before the cut (closer to it than a quarter of the jump the cut made). The cut back out
    of the flash goes too."""
    kept, skip_until = [], -1
    for c in candidates:
        if c <= skip_until or c < 1:
            continue
        before = looks[c - 1]
        jump = np.abs(looks[c] - before).mean()
        back = None
        for j in range(c + 1, min(c + window + 1, len(looks))):
            if np.abs(looks[j] - before).mean() < 0.25 * jump:
                back = j
                break
        if back is None:
            kept.append(c)
        else:
            skip_until = back
    return kept


def space_out(cuts, n_frames, min_gap):
    """Keep cuts at least `min_gap` frames from the range's edges and from the cut kept before."""
    kept = []
    for c in cuts:
        if c < min_gap or n_frames - c < min_gap:
            continue
        if kept and c - kept[-1] < min_gap:
            continue
        kept.append(c)
    return kept
