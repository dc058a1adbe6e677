"""Timeline-level rules: missing media, markers, tacet, gaps, progress, bad video."""

import subprocess
from fractions import Fraction

import pytest
from helpers import videos

from bridge.picture import Section, analyze_timeline
from bridge.picture.emotion import GAP_AROUSAL
from bridge.timeline import Clip, Marker, Timeline


@pytest.fixture(scope="module")
def mood_path(tmp_path_factory):
    return videos.mood_video(videos.video_folder(tmp_path_factory))


def test_missing_media_gives_default_sections(tmp_path):
    lost, other = str(tmp_path / "lost.mov"), str(tmp_path / "other.mov")
    segments = [
        Clip("a", 0, 25, media_path=lost),
        Clip("b", 25, 50, media_path=lost),
        Clip("gap", 50, 100, kind="gap"),
        Clip("c", 100, 400, media_path=other),
        Clip("d", 400, 410, media_path=None),
    ]
    tl = Timeline("lost", "/tmp/lost.otio", Fraction(24), False, 0, 410, segments)
    result = analyze_timeline(tl)
    sections = result["sections"]
    assert [(s.start, s.end) for s in sections] == [(0, 25), (25, 50), (50, 100), (100, 400), (400, 410)]
    assert all(isinstance(s, Section) and s.source == "default" and s.valence == 0.0 for s in sections)
    assert all(s.emotion == {} for s in sections)
    assert sections[2].arousal == GAP_AROUSAL
    # Quick cuts at the head, one long clip after: arousal follows the cut rate.
    assert sections[0].arousal > sections[3].arousal
    # Missing files and clips that name none are reported once, by read_timeline, not here.
    assert result["warnings"] == []
    assert result["detected_hits"] == []


def test_unreadable_media_warns_and_falls_back(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    result = analyze_timeline(videos.one_clip_timeline(bad, 50))
    assert result["sections"][0].source == "default"
    assert len(result["warnings"]) == 1 and str(bad) in result["warnings"][0]


def test_a_source_range_past_the_end_of_the_file_warns(mood_path):
    result = analyze_timeline(videos.one_clip_timeline(mood_path, 50, media_start=60.0), use_cache=False)
    assert result["sections"][0].source == "default"
    assert len(result["warnings"]) == 1 and str(mood_path) in result["warnings"][0]


def test_variable_frame_rate_warns_without_failing(tmp_path):
    path = tmp_path / "vfr.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=160x90:r=25:d=3",
            "-vf",
            "setpts='N/25/TB+gte(N,25)*0.6/TB+gte(N,50)*0.3/TB'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    result = analyze_timeline(videos.one_clip_timeline(path, 75), use_cache=False)
    assert any("variable frame rate" in w for w in result["warnings"]), result["warnings"]
    assert result["sections"][0].source == "picture"


def test_markers_override_emotion_and_tacet_spans_flag_sections(mood_path):
    markers = [
        Marker(20, "mood: tense", kind="mood", mood="tense", valence=-0.6, arousal=0.7),
        Marker(70, "va 0.5 -0.2", kind="va", valence=0.5, arousal=-0.2),
        Marker(30, "tacet", kind="tacet", duration=10),
        Marker(80, "tacet", kind="tacet"),
        Marker(90, "music", kind="music"),
    ]
    segments = [
        Clip("dark", 0, 50, media_path=str(mood_path), media_start=0.0, media_rate=25),
        Clip("bright", 50, 100, media_path=str(mood_path), media_start=2.0, media_rate=25),
    ]
    tl = Timeline("m", "/tmp/m.otio", Fraction(25), False, 0, 100, segments, markers)
    sections = analyze_timeline(tl)["sections"]
    assert [(s.start, s.end) for s in sections] == [
        (0, 20),
        (20, 30),
        (30, 40),
        (40, 50),
        (50, 70),
        (70, 80),
        (80, 90),
        (90, 100),
    ]
    assert sections[0].source == "picture"
    for s in sections[1:5]:
        assert (s.source, s.valence, s.arousal) == ("marker", -0.6, 0.7)
    for s in sections[5:]:
        assert (s.source, s.valence, s.arousal) == ("marker", 0.5, -0.2)
    assert [s.tacet for s in sections] == [False, False, True, False, False, False, True, False]
    assert [s.segment for s in sections] == [0, 0, 0, 0, 1, 1, 1, 1]
    # Measured cues are still reported under a marker.
    assert "brightness" in sections[1].features


def test_a_marker_covers_a_gap_and_progress_is_reported(mood_path):
    segments = [
        Clip("gap", 0, 25, kind="gap"),
        Clip("dark", 25, 75, media_path=str(mood_path), media_start=0.0, media_rate=25),
    ]
    markers = [Marker(10, "mood: calm", kind="mood", mood="calm", valence=0.3, arousal=-0.6)]
    tl = Timeline("g", "/tmp/g.otio", Fraction(25), False, 0, 75, segments, markers)
    calls = []
    sections = analyze_timeline(tl, progress=lambda f, stage: calls.append((f, stage)), use_cache=False)["sections"]
    assert [(s.start, s.end, s.source) for s in sections] == [
        (0, 10, "default"),
        (10, 25, "marker"),
        (25, 75, "marker"),
    ]
    assert sections[0].arousal == GAP_AROUSAL
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(calls) >= 3
    assert all(isinstance(stage, str) and stage for _, stage in calls)


def test_real_footage_cuts_match_pyscenedetect_and_the_bunny_face_is_read(shared_data):
    from scenedetect import AdaptiveDetector, detect

    bikes = shared_data / "video" / "bikes.mp4"
    reference = [start.frame_num for start, _ in detect(str(bikes), AdaptiveDetector())][1:]
    # Cuts within half a second of the clip's edges are dropped on purpose.
    reference = [r for r in reference if 13 <= r <= 250 - 13]
    result = analyze_timeline(videos.one_clip_timeline(bikes, 250), use_cache=False)
    found = [h.frame for h in result["detected_hits"]]
    assert reference and len(found) == len(reference)
    assert all(abs(f - r) <= 1 for f, r in zip(found, reference)), (found, reference)
    assert result["warnings"] == []

    bunny = shared_data / "video" / "bigbuckbunny.mp4"
    (section,) = analyze_timeline(videos.one_clip_timeline(bunny, 132), use_cache=False)["sections"]
    # The rabbit faces the camera around 4.8 s (frame 120): the cascade finds his face there,
    # the expression model reads it, but one sampled frame in eleven is too few for faces to
    # lead, so the picture still sets the emotion.
    assert section.emotion and abs(sum(section.emotion.values()) - 1.0) < 1e-3
    assert 0.0 < section.features["face_coverage"] < 0.5
    assert section.source == "picture"
