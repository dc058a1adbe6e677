"""The analysis benchmark runs end to end and reports every stage."""

from bridge.bench import analysis as bench
from bridge.picture.analysis import STAGES


def test_bench_reports_frames_per_second_and_stages():
    results = bench.run(seconds=1.0, sizes=((160, 90),))
    (entry,) = results.values()
    assert entry["frames"] == 25 and entry["fps"] > 0
    assert set(entry["stages"]) == set(STAGES)
    assert entry["stages"]["decode"] > 0
