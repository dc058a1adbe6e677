"""Previews: the edit rebuilt from its media with the score as sound, and the cue sheet."""

import json
import subprocess
import wave
from fractions import Fraction

import cv2
import numpy as np
import pytest

from bridge.demo import render_scenes
from bridge.plan import make_plan
from bridge.score.compose import ScoreNote
from bridge.render.preview import PreviewSkipped, cue_sheet, preview_video
from bridge.timeline import Hit, read_timeline
from helpers.scoring import edit


def _wav(path, seconds, rate=48000, value=1000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.full((int(round(seconds * rate)), 2), value, dtype="<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two seconds bright, then two seconds dark, at 25 fps."""
    path = tmp_path_factory.mktemp("media") / "src.mp4"
    return render_scenes(path, [("bright", 50), ("dark", 50)], size=(160, 90), rate=25, audio=False)


def test_multi_clip_preview_has_every_frame_from_the_right_source(tmp_path, media):
    # bright from 0.4 s, then dark from 2.4 s, then bright again from 0 s
    path = edit(tmp_path / "cut.otio", rate=25, clips=(25, 30, 20), media=media, media_starts=(10, 60, 0))
    timeline = read_timeline(path)
    out = preview_video(timeline, _wav(tmp_path / "score.wav", 3.0), tmp_path / "preview.mp4")
    probe = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-count_frames",
                "-show_entries",
                "stream=codec_type,nb_read_frames,r_frame_rate,duration",
                "-of",
                "json",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert int(video["nb_read_frames"]) == 75 and video["r_frame_rate"] == "25/1"
    assert abs(float(audio["duration"]) - 3.0) < 0.05
    capture = cv2.VideoCapture(str(out))
    means = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        means.append(float(frame.mean()))
    assert min(means[:25]) > 60 and max(means[25:55]) < 50 and min(means[55:]) > 60


def test_preview_is_skipped_without_media(tmp_path):
    timeline = read_timeline(edit(tmp_path / "cut.otio", clips=(24, 24)))
    with pytest.raises(PreviewSkipped, match="media"):
        preview_video(timeline, _wav(tmp_path / "s.wav", 2.0), tmp_path / "p.mp4")
    with pytest.raises(PreviewSkipped, match="audio"):
        preview_video(timeline, None, tmp_path / "p.mp4")
    assert not (tmp_path / "p.mp4").exists()


def test_cue_sheet_is_a_png(tmp_path):
    rows = [
        {"start": 0, "end": 50, "valence": -0.5, "arousal": 0.2, "tacet": False},
        {"start": 50, "end": 75, "valence": 0.0, "arousal": 0.0, "tacet": True},
        {"start": 75, "end": 125, "valence": 0.6, "arousal": 0.7, "tacet": False},
    ]
    plan = make_plan([Hit(30, "cut"), Hit(80, "marker")], rows, Fraction(25), 125)
    notes = [
        ScoreNote(1.2, 2.0, 50, 80, "pad"),
        ScoreNote(3.2, 4.5, 62, 70, "melody"),
        ScoreNote(3.5, 3.6, 36, 90, "drums"),
    ]
    path = cue_sheet(tmp_path / "cue.png", plan, notes, "test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image.shape[0] >= 600 and image.shape[1] >= 1200
