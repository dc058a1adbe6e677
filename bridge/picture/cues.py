"""Picture and sound cues that need no model, measured per frame and summarised per section.

Per frame, on the small analysis frame (BGR, 8 bit):
- brightness  Y = mean luma / 255 (BT.601 weights, as cv2's BGR2GRAY)        in [0, 1]
- saturation  S = mean HSV saturation / 255                                   in [0, 1]
- colourfulness (Hasler & Süsstrunk 2003): with rg = R - G and yb = (R + G)/2 - B,
      C = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)   on the 0..255 scale
  (their scale: ~15 "slightly", ~33 "moderately", ~45 "quite", ~59 "highly", ~82 "extremely")
- mean R, G, B / 255, from which a section's colour temperature is computed (McCamy 1992):
  sRGB -> linear -> CIE XYZ -> chromaticity (x, y); n = (x - 0.3320) / (0.1858 - y);
  CCT = 449 n^3 + 3525 n^2 + 6823.3 n + 5520.33 kelvin, clamped to [1500, 15000]
- motion energy M = mean |Y_t - Y_(t-1)| / 255 between consecutive frames, scaled to a
  25 fps frame step (x 25 / fps); frames on a cut or at the start of a range have none.
Per section:
- cut rate = edit points and detected cuts per minute in a window of CUT_WINDOW seconds
  centred on the section (clipped to the timeline)
- loudness L = 10 log10(mean(x^2)) dBFS of the mono mix, from 10 Hz blocks of mean square
  decoded by ffmpeg; absent when the file has no sound.
"""

import math
import subprocess

import cv2
import numpy as np

# Columns of the per-frame cue array.
COLUMNS = ("brightness", "saturation", "colourfulness", "red", "green", "blue", "motion")
AUDIO_RATE = 8000  # Hz; loudness needs no more
AUDIO_BLOCKS = 10  # mean-square blocks per second
CUT_WINDOW = 10.0  # seconds


class CueMeter:
    """Consumes the small frames of one range; `values()` is an (n, len(COLUMNS)) array."""

    def __init__(self, fps: float):
        self.step = 25.0 / fps
        self.rows = []
        self.prev_gray = None

    def process(self, small: np.ndarray):
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        sat = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)[:, :, 1]
        b, g, r = cv2.split(small.astype(np.float32))
        rg = r - g
        yb = 0.5 * (r + g) - b
        colourfulness = math.sqrt(rg.var() + yb.var()) + 0.3 * math.sqrt(float(rg.mean()) ** 2 + float(yb.mean()) ** 2)
        motion = np.nan
        if self.prev_gray is not None:
            motion = cv2.absdiff(gray, self.prev_gray).mean() / 255.0 * self.step
        self.prev_gray = gray
        self.rows.append(
            (
                gray.mean() / 255.0,
                sat.mean() / 255.0,
                colourfulness,
                r.mean() / 255.0,
                g.mean() / 255.0,
                b.mean() / 255.0,
                motion,
            )
        )

    def values(self) -> np.ndarray:
        return np.array(self.rows, dtype=np.float64).reshape(len(self.rows), len(COLUMNS))


def colour_temperature(red, green, blue) -> float:
    """Correlated colour temperature in kelvin of a mean sRGB colour (McCamy's formula)."""

    def linear(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = linear(red), linear(green), linear(blue)
    x_ = 0.4124 * r + 0.3576 * g + 0.1805 * b
    y_ = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z_ = 0.0193 * r + 0.1192 * g + 0.9505 * b
    total = x_ + y_ + z_
    if total <= 1e-6:
        return 6500.0  # black has no colour; call it neutral
    x, y = x_ / total, y_ / total
    if abs(0.1858 - y) < 1e-6:
        return 15000.0
    n = (x - 0.3320) / (0.1858 - y)
    cct = 449 * n**3 + 3525 * n**2 + 6823.3 * n + 5520.33
    return float(min(15000.0, max(1500.0, cct)))


def summarise(values: np.ndarray, cut_frames=()) -> dict:
    """Section features from the per-frame rows of its frames (row indices in `cut_frames`
    start a new shot, so their motion is not counted)."""
    rows = values
    motion = rows[:, 6].copy()
    for c in cut_frames:
        motion[c] = np.nan
    mean = rows[:, :6].mean(axis=0)
    moving = motion[~np.isnan(motion)]
    return {
        "brightness": float(mean[0]),
        "saturation": float(mean[1]),
        "colourfulness": float(mean[2]),
        "colour_temperature": colour_temperature(mean[3], mean[4], mean[5]),
        "motion": float(moving.mean()) if len(moving) else 0.0,
    }


def audio_energy(path, start: float, duration: float):
    """Mean square of the mono mix per 1/AUDIO_BLOCKS s block of the range, or None when the
    file has no sound (or ffmpeg cannot read it)."""
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-nostdin",
        "-ss",
        f"{start:.6f}",
        "-t",
        f"{duration:.6f}",
        "-i",
        str(path),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(AUDIO_RATE),
        "-f",
        "s16le",
        "-",
    ]
    try:
        pcm = subprocess.run(cmd, capture_output=True, check=True, timeout=600).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if not pcm:
        return None
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64) / 32768.0
    block = AUDIO_RATE // AUDIO_BLOCKS
    n = max(1, len(x) // block)
    x = np.pad(x, (0, max(0, n * block - len(x))))[: n * block]
    return (x.reshape(n, block) ** 2).mean(axis=1)


def loudness_db(energy_blocks) -> float:
    """dBFS of a run of mean-square blocks (floored at -90 for digital silence)."""
    return float(10 * math.log10(max(float(np.mean(energy_blocks)), 1e-9)))


def cut_rate(cuts, centre: float, total: float, window: float = CUT_WINDOW) -> float:
    """Cuts per minute in `window` seconds around `centre` (all in seconds), the window
    clipped to [0, total] and cuts at the very start or end of the timeline not counted."""
    lo = max(0.0, centre - window / 2)
    hi = min(total, centre + window / 2)
    span = max(hi - lo, 1e-6)
    count = sum(1 for c in cuts if lo <= c <= hi and 0 < c < total)
    return 60.0 * count / span
