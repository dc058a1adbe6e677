"""eval-score and bench score: the synthetic edits are what they claim, and the figures add up."""

import pytest

from bridge.eval import score as score_eval
from bridge.bench.score import bench_edit
from bridge.timeline import read_timeline
from helpers.scoring import TINY_INFO, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_eval_covers_the_grid_and_every_hit(monkeypatch):
    assert sorted(score_eval.ORDER) == list(range(25))
    assert sum(count for _, _, _, count, _ in score_eval.EDITS) == 25
    monkeypatch.setattr(score_eval, "EDITS", score_eval.EDITS[:1])
    result = score_eval.evaluate(tiny_model(), TINY_INFO, seed=1, candidates=1)
    summary = result["summary"]
    assert summary["hit_chord_share"] == 1.0 and summary["sections"] == 8
    assert 0 <= summary["hits_on_beat_share"] <= 1 and summary["mean_frames_off"] >= 0
    assert 0 < summary["pitch_class_entropy"] <= 3.585  # log2(12)
    assert all(-1 <= summary[k] <= 1 for k in summary if k.startswith("spearman") and summary[k] is not None)
    assert "spearman_arousal_onset_rate" in summary and result["guidance"] == 1.0


def test_onsets_count_a_chord_once():
    chord = [(1.0, 2.0, p, 80, "pad") for p in (60, 64, 67)]
    assert score_eval._onsets(chord + [(1.5, 2.0, 72, 80, "melody"), (1.0004, 2.0, 48, 80, "bass")]) == 2


def test_spearman_and_mode_clarity():
    assert score_eval._spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert score_eval._spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert score_eval._spearman([1, 2, 3], [5, 5, 5]) is None
    c_major = [(0, 1, p, 80, "pad") for p in (60, 62, 64, 65, 67, 69, 71, 60, 64, 67)]
    a_minor = [(0, 1, p, 80, "pad") for p in (57, 59, 60, 62, 64, 65, 67, 57, 60, 64)]
    assert score_eval._mode_clarity(c_major) > 0 > score_eval._mode_clarity(a_minor)


def test_bench_edit_is_three_minutes_with_forty_cuts(tmp_path):
    timeline = read_timeline(bench_edit(tmp_path / "bench.otio"))
    assert timeline.duration == 180 * 24 and len(timeline.hits) == 40
    assert all(b.record_start - a.record_start >= 24 for a, b in zip(timeline.segments, timeline.segments[1:]))
    assert [m.kind for m in timeline.markers] == ["mood", "mood", "mood"]
