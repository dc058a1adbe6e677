"""The demo edit: a synthetic video and an OTIO timeline that picture analysis can read."""

import json
import subprocess
from fractions import Fraction

import opentimelineio as otio
import pytest

from bridge.demo import DEMO_CLIPS, DEMO_INNER_CUT, build_demo
from bridge.picture import analyze_timeline
from bridge.timeline import Clip, Timeline


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo"))


def test_demo_video_and_timeline_are_as_promised(demo):
    video, timeline_path = demo
    info = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-count_frames",
                "-show_entries",
                "stream=codec_type,width,height,nb_read_frames,r_frame_rate",
                "-of",
                "json",
                str(video),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert set(streams) == {"video", "audio"}
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["video"]["r_frame_rate"] == "25/1" and int(streams["video"]["nb_read_frames"]) == 700

    tl = otio.adapters.read_from_file(str(timeline_path))
    clips = list(tl.find_clips())
    assert [c.name for c in clips] == [name for name, _, _ in DEMO_CLIPS]
    assert [(c.source_range.start_time.to_frames(), c.source_range.duration.to_frames()) for c in clips] == [
        (s, e - s) for _, s, e in DEMO_CLIPS
    ]
    assert all(c.media_reference.target_url == str(video) for c in clips)
    assert sorted(m.name for m in tl.tracks.markers) == ["hit", "mood: auto", "mood: tense"]


def test_build_demo_is_idempotent(demo):
    video, timeline_path = demo
    stamps = (video.stat().st_mtime_ns, timeline_path.stat().st_mtime_ns)
    assert build_demo(video.parent) == demo
    assert (video.stat().st_mtime_ns, timeline_path.stat().st_mtime_ns) == stamps


def test_demo_analysis_finds_the_inner_cut_and_the_moods(demo):
    video, _ = demo
    segments = [Clip(name, s, e, media_path=str(video), media_start=s / 25, media_rate=25) for name, s, e in DEMO_CLIPS]
    tl = Timeline("demo", "/tmp/demo.otio", Fraction(25), False, 0, 700, segments)
    result = analyze_timeline(tl, use_cache=False)
    assert [abs(h.frame - DEMO_INNER_CUT) <= 1 for h in result["detected_hits"]] == [True]
    by_clip = {s.segment: s for s in result["sections"]}
    night, city = by_clip[0], by_clip[2]
    assert night.valence < 0 < city.valence and night.arousal < 0 < city.arousal
