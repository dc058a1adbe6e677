"""The sampler's thread count: chosen by timing its steps, and never a cause of other notes."""

import pytest
import torch

import bridge.music.sample as S
from bridge.music.model import load_shipped
from bridge.music.sample import THREAD_PERIOD, THREAD_TRIAL, _Threads, sample

MS = 1e-3


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    """Torch's own count 2 (so there is a choice), no choice remembered from other tests."""
    monkeypatch.setattr(S, "_THREAD_MEMORY", {})
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _run(t, timing, steps):
    """Run `steps` steps through `t`, each taking timing(threads, step) seconds; the counts set."""
    seen = []
    for i in range(steps):
        n = t.before()
        assert torch.get_num_threads() == n
        seen.append(n)
        t.after(n, timing(n, i))
    return seen


def test_idle_cores_keep_torchs_count_and_trials_grow_rarer():
    t = _Threads()
    idle = lambda n, i: 3 * MS if n == 1 else 2 * MS  # noqa: E731
    trial = 2 * THREAD_TRIAL
    seen = _run(t, idle, trial)
    assert seen == [1] * THREAD_TRIAL + [2] * THREAD_TRIAL  # one thread is timed first, then torch's count,
    assert t.chosen == 2 and t.period == 2 * THREAD_PERIOD  # which holds: the next trial is later
    seen = _run(t, idle, 2 * THREAD_PERIOD + trial)
    assert seen == [2] * (2 * THREAD_PERIOD) + [1] * THREAD_TRIAL + [2] * THREAD_TRIAL
    assert t.period == 4 * THREAD_PERIOD
    assert t.used == {1: 2 * THREAD_TRIAL, 2: 2 * THREAD_PERIOD + 2 * THREAD_TRIAL}
    t.restore()
    assert torch.get_num_threads() == 2


def test_a_stalled_step_ends_the_trial_on_one_thread():
    t = _Threads()
    # one thread 3 ms a step; the first step with two waits 40 ms for a core held elsewhere
    seen = _run(t, lambda n, i: 3 * MS if n == 1 else 40 * MS, THREAD_TRIAL + 1 + 50)
    assert seen[THREAD_TRIAL] == 2 and set(seen[THREAD_TRIAL + 1 :]) == {1}
    assert t.chosen == 1 and torch.get_num_threads() == 1
    t.restore()
    assert torch.get_num_threads() == 2


def test_steps_that_turn_slower_go_to_one_thread_and_gradual_growth_does_not():
    def timing(n, i):
        if n == 1:
            return 3 * MS
        return 2 * MS * 1.02 ** (i // THREAD_TRIAL) if i < 100 else 8 * MS  # a core taken at step 100

    t = _Threads()
    seen = _run(t, timing, 120)
    assert seen[2 * THREAD_TRIAL : 100] == [2] * (100 - 2 * THREAD_TRIAL)  # context filling: kept
    assert 1 in seen[100 : 100 + THREAD_TRIAL + 1] and seen[-1] == 1  # taken core: given up
    assert t.chosen == 1


def test_ties_go_to_one_thread_only_when_it_is_faster():
    t = _Threads()
    _run(t, lambda n, i: 2 * MS, 2 * THREAD_TRIAL)
    assert t.chosen == 2
    t = _Threads()
    _run(t, lambda n, i: 2 * MS if n == 1 else 2.2 * MS, 2 * THREAD_TRIAL)
    assert t.chosen == 1 and t.period == THREAD_PERIOD


def test_the_next_run_goes_on_with_the_choice_and_a_fixed_count_never_tries():
    t = _Threads()
    _run(t, lambda n, i: 3 * MS if n == 1 else 40 * MS, THREAD_TRIAL + 1)
    t.restore()
    again = _Threads()  # within THREAD_MEMORY_S: one thread from its first step, no trial yet
    assert _run(again, lambda n, i: 3 * MS, THREAD_PERIOD - 1) == [1] * (THREAD_PERIOD - 1)
    again.restore()
    fixed = _Threads(2)
    assert _run(fixed, lambda n, i: 40 * MS, 300) == [2] * 300
    fixed.restore()
    assert torch.get_num_threads() == 2


@pytest.fixture(scope="module")
def shipped():
    return load_shipped("cpu")


# Up to sample.FP32_MAX_ROWS rows a step the float32 model runs, above it (batch 8) the
# bf16-packed copy where the CPU does bf16.
@pytest.mark.parametrize(
    "kw",
    [{}, {"tonic": 2, "key_guidance": 12.0}, {"batch": 3}, {"batch": 8}],
    ids=["plain", "key-guided", "batch-3", "batch-8"],
)
def test_the_thread_count_changes_no_token(shipped, kw):
    takes = {}
    for threads in (1, 2, None):
        stats = {}
        _, toks = sample(
            shipped,
            600,
            valence=0.5,
            arousal=0.2,
            boundaries=[1.0, 2.5],
            seed=5,
            max_tokens=150,
            return_tokens=True,
            threads=threads,
            stats=stats,
            **kw,
        )
        takes[threads] = toks
        drawn = max(len(t) for t in toks) - 1  # a step after each token drawn but one that ended the takes
        assert drawn - 1 <= sum(stats["threads"].values()) <= drawn
        assert torch.get_num_threads() == 2  # torch's count given back
    assert takes[1] == takes[2] == takes[None]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_a_thread_count_that_is_not_one_or_more_is_refused(shipped, bad):
    with pytest.raises(ValueError, match="threads"):
        sample(shipped, 1.0, threads=bad, max_tokens=4)
    assert torch.get_num_threads() == 2


@pytest.mark.slow
def test_the_sampling_benchmark_times_every_policy_and_stops_its_busy_processes(monkeypatch):
    import subprocess
    from bridge.bench import sampling as sample_bench
    from helpers.scoring import tiny_model

    started, real = [], subprocess.Popen

    def popen(*args, **kwargs):  # the real process, kept to see that it was stopped
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(sample_bench.subprocess, "Popen", popen)
    res = sample_bench.run(busy=1, runs=1, model=tiny_model())
    assert res["busy_processes"] == 1 and res["threads"] == 2
    assert list(res["tokens_per_s"]) == ["batch 1", "batch 8"]  # no key vectors: no key-guided row
    for name, row in res["tokens_per_s"].items():
        assert list(row) == ["chosen as it goes", "2 threads", "1 thread"] and min(row.values()) > 0
        assert sum(res["steps_by_threads"][name].values()) > 0
    assert len(started) == 1 and started[0].poll() is not None  # the spinning process is gone
    assert "busy processes beside: 1" in sample_bench.report(res)
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError):
        sample_bench.run(busy=-1, model=tiny_model())
