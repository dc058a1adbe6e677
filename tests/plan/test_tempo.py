"""Tempo fitting to picture: constant tempos when they serve, a downbeat map when not."""

import random

from bridge.plan import tempo
from bridge.timebase import beats_to_seconds, bpm_to_tempo, seconds_to_beats


def test_constant_tempo_found_when_cuts_sit_on_a_grid():
    # cuts every 2 bars of 4/4 at 120 BPM (4 s), at 25 fps: 120 BPM puts every hit on a beat
    hits = [(4.0 * k, 1.0) for k in range(1, 8)]
    plan = tempo.fit(hits, 32.0, 25, target_bpm=118)
    assert plan["mode"] == "constant"
    assert plan["hits_on_beat"] == 7 and plan["mean_frames_off"] < 0.5
    assert abs(plan["bpm"] - 120) < 0.5 or abs(plan["bpm"] - 90) < 0.5 or abs(plan["bpm"] - 60) < 0.5


def test_ranking_prefers_more_hits_then_fewer_frames_off():
    hits = [2.0, 4.0, 6.0, 7.0]
    ranked = tempo.rank_constant_tempos(hits, 24, 60, 180)
    best_on, best_off, best_bpm = ranked[0]
    assert best_on == 4  # 60/120/180 BPM put all four on a beat
    assert all(r[0] <= best_on for r in ranked)
    assert ranked == sorted(ranked, key=lambda r: (-r[0], round(r[1], 3), abs(r[2] - 120)))


def test_irregular_cuts_get_a_map_with_every_important_hit_on_a_beat_in_one_meter():
    rng = random.Random(3)
    t, hits = 0.0, []
    for _ in range(12):
        t += rng.uniform(2.2, 6.5)
        hits.append((round(t * 24) / 24, 1.0))  # on frames at 24 fps
    duration = t + 3.0
    plan = tempo.fit(hits, duration, 24, target_bpm=96, lo=70, hi=140)
    assert plan["mode"] == "map"
    assert plan["hits_on_beat"] == len(hits)
    assert max(plan["frames_off"]) < 0.05  # within a twentieth of a frame: the µs rounding
    assert plan["time_signatures"] == [(0, 4, 4)]  # no meter change, ever
    for a in plan["anchors"]:
        beat = seconds_to_beats(a, plan["tempo_map"])
        assert abs(float(beats_to_seconds(round(beat), plan["tempo_map"])) - a) < 0.002
    for _, us in plan["tempo_map"]:
        assert 70 <= 60e6 / us <= 140


def test_important_hits_keep_heavier_when_too_close():
    hits = [(1.0, 1.0), (1.5, 3.0), (5.0, 1.0), (5.2, 1.0)]
    assert tempo.important_hits(hits, 1.0) == [1.5, 5.0]


def test_no_hits_gives_the_target_tempo():
    plan = tempo.fit([], 30.0, 25, target_bpm=84)
    assert plan["mode"] == "constant" and plan["tempo_map"] == [(0, bpm_to_tempo(84))]
