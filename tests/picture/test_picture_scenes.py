"""Cuts found inside clips: at the right timeline frames, flashes and edge cuts left out."""

from fractions import Fraction

import numpy as np
import pytest
from helpers import videos

from bridge.picture import analyze_timeline
from bridge.picture.scenes import drop_flashes, space_out
from bridge.timeline import Clip, Timeline


@pytest.fixture(scope="module")
def cuts_path(tmp_path_factory):
    return videos.cuts_video(videos.video_folder(tmp_path_factory))


def detected(result):
    return [h.frame for h in result["detected_hits"]]


def assert_near(found, expected):
    assert len(found) == len(expected), (found, expected)
    for f, e in zip(found, expected):
        assert abs(f - e) <= 1, (found, expected)


def test_cuts_inside_a_clip_land_on_their_timeline_frames(cuts_path):
    # The clip sits after a 10-frame gap, so its cuts move 10 frames later on the timeline.
    tl = videos.one_clip_timeline(cuts_path, 175, record_start=10)
    result = analyze_timeline(tl, use_cache=False)
    assert_near(detected(result), [c + 10 for c in videos.CUTS])
    assert all(h.source == "detected" for h in result["detected_hits"])


def test_a_flash_is_not_a_cut(cuts_path):
    result = analyze_timeline(videos.one_clip_timeline(cuts_path, 175), use_cache=False)
    found = detected(result)
    assert not any(abs(f - flash) <= 2 for f in found for flash in videos.FLASH_FRAMES), found


def test_source_offset_moves_cuts_and_drops_those_near_the_edges(cuts_path):
    # Starting 30 frames into the file puts the first cut 10 frames (< 0.5 s) after the clip's
    # head: it is dropped. The others land 30 frames earlier than in the file.
    tl = videos.one_clip_timeline(cuts_path, 140, media_start=30 / videos.RATE)
    assert_near(detected(analyze_timeline(tl, use_cache=False)), [c - 30 for c in videos.CUTS[1:]])


def test_sections_split_at_detected_cuts(cuts_path):
    result = analyze_timeline(videos.one_clip_timeline(cuts_path, 175), use_cache=False)
    edges = [s.start for s in result["sections"]]
    assert edges[0] == 0 and result["sections"][-1].end == 175
    assert edges[1:] == detected(result)
    assert all(s.segment == 0 for s in result["sections"])


def test_space_out_keeps_cuts_apart_and_away_from_edges():
    assert space_out([5, 20, 25, 40, 90, 96], 100, 12) == [20, 40]
    assert space_out([12, 24, 36], 48, 12) == [12, 24, 36]


def test_drop_flashes_removes_a_return_to_the_previous_look():
    looks = np.zeros((30, 4), dtype=np.float32)
    looks[10:12] = 200.0  # a two-frame flash
    looks[20:] = 100.0  # a real cut
    assert drop_flashes([10, 12, 20], looks, window=6) == [20]


def test_cuts_in_25_fps_media_land_on_a_24_fps_timeline(cuts_path):
    clip = Clip("clip", 0, 150, media_path=str(cuts_path), media_start=0.0, media_rate=25)
    tl = Timeline("t24", "/tmp/t24.otio", Fraction(24), False, 0, 150, [clip])
    expected = [round(c / videos.RATE * 24) for c in videos.CUTS]  # same seconds, 24 fps frames
    assert_near(detected(analyze_timeline(tl, use_cache=False)), expected)


def test_detections_within_half_a_second_of_an_edit_cut_are_dropped_inclusive():
    from fractions import Fraction

    from bridge.analyze import merge_hits
    from bridge.timeline import Hit

    edit = [Hit(100, "cut"), Hit(300, "marker", "door")]
    detected = [Hit(f, "detected") for f in (88, 87, 112, 113, 290, 200)]
    kept = merge_hits(edit, detected, Fraction(24))
    # 12 frames at 24 fps is exactly half a second: dropped; 13 frames is kept; a marker
    # is not a cut, so a detection near it stays
    assert [(h.frame, h.source) for h in kept] == [
        (87, "detected"),
        (100, "cut"),
        (113, "detected"),
        (200, "detected"),
        (290, "detected"),
        (300, "marker"),
    ]
    ntsc = merge_hits(edit, [Hit(88, "detected"), Hit(89, "detected")], Fraction(24000, 1001))
    assert [h.frame for h in ntsc] == [88, 100, 300]  # 11 frames = 0.459 s dropped, 12 = 0.5005 s kept
    assert [h.frame for h in merge_hits(edit, detected)] == [87, 88, 100, 112, 113, 200, 290, 300]
