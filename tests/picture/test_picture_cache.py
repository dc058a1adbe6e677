"""The analysis cache: a second run reads it, a corrupt entry is recomputed, a new range misses."""

import os

import pytest
from helpers import videos

from bridge.picture import analyze_timeline, cache


@pytest.fixture(scope="module")
def cuts_path(tmp_path_factory):
    return videos.cuts_video(videos.video_folder(tmp_path_factory))


def entries():
    folder = cache.cache_dir()
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def plain(result):
    return result["sections"], result["detected_hits"], result["warnings"]


def test_cache_lives_under_scorebridge_cache():
    assert str(cache.cache_dir()).startswith(os.environ["SCOREBRIDGE_CACHE"])


def test_second_run_reads_the_cache_and_a_corrupt_entry_is_recomputed(cuts_path):
    tl = videos.one_clip_timeline(cuts_path, 175, name="cached")
    before = set(entries())
    first = analyze_timeline(tl)
    (entry,) = set(entries()) - before
    second = analyze_timeline(tl)
    assert first["frames"] == 175 and second["frames"] == 0
    assert plain(second) == plain(first)

    entry.write_bytes(b"\x00garbage, not an npz")
    third = analyze_timeline(tl)
    assert third["frames"] == 175 and plain(third) == plain(first)
    assert cache.load(entry.stem) is not None  # rewritten whole

    entry.write_bytes(entry.read_bytes()[:200])  # truncated mid-write by a crash
    assert analyze_timeline(tl)["frames"] == 175


def test_another_source_range_or_a_touched_file_misses(cuts_path, tmp_path):
    tl = videos.one_clip_timeline(cuts_path, 100, name="range")
    analyze_timeline(tl)
    assert analyze_timeline(tl)["frames"] == 0
    shifted = videos.one_clip_timeline(cuts_path, 100, media_start=1.0, name="range")
    assert analyze_timeline(shifted)["frames"] == 100
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(cuts_path.read_bytes())
    moved = videos.one_clip_timeline(copy, 100, name="copy")
    assert analyze_timeline(moved)["frames"] == 100
    os.utime(copy, ns=(0, 10**18))
    assert analyze_timeline(moved)["frames"] == 100


def test_use_cache_false_neither_reads_nor_writes(cuts_path):
    tl = videos.one_clip_timeline(cuts_path, 60, media_start=0.4, name="nocache")
    before = set(entries())
    assert analyze_timeline(tl, use_cache=False)["frames"] == 60
    assert set(entries()) == before
