"""Training batches built ahead in worker processes (`train model --workers N`).

Why: building one window (augmentation, labels, tokens) takes 2-3 ms of one core, so a
batch of 64 takes longer to build than a GPU takes to train on it. Workers build batches
ahead of the loop, a bounded number at a time.

Each step's batch is drawn from its own generator, seeded by (seed, step): the batches do not
depend on the number of workers or on their timing, and a resumed run draws exactly the
batches an unbroken one would have.

The workers are forked, so they share the corpus with the trainer instead of copying it; they
use numpy only, never torch.
"""

import multiprocessing as mp
import signal
from collections import deque

import numpy as np

_WORKER = {}


def _start(batcher, self_batcher, seed, n_real, n_self):
    # Ctrl-C reaches every process of the terminal's group: the trainer stops between steps and
    # closes the pool; a worker stopped by it would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER.update(batcher=batcher, self_batcher=self_batcher, seed=seed, n_real=n_real, n_self=n_self)


def build(step, batcher, self_batcher, seed, n_real, n_self):
    """The batch of one step: n_real windows, then n_self kept takes, as (x, cond, y) arrays."""
    parts = []
    if n_real:
        batcher.rng = np.random.default_rng([seed, step])
        parts.append(batcher.batch(n_real))
    if n_self:
        self_batcher.rng = np.random.default_rng([seed, step, 1])
        parts.append(self_batcher.batch(n_self))
    return tuple(np.concatenate(a) for a in zip(*parts))


def _build(step):
    w = _WORKER
    return build(step, w["batcher"], w["self_batcher"], w["seed"], w["n_real"], w["n_self"])


class Prefetcher:
    """Batches for steps start, start+1, … in order, at most `ahead` of them built or waiting."""

    def __init__(self, batcher, self_batcher, seed, n_real, n_self, workers, start=0, ahead=None):
        if workers < 1:
            raise ValueError("a prefetcher needs at least one worker")
        self._pool = mp.get_context("fork").Pool(
            workers, initializer=_start, initargs=(batcher, self_batcher, seed, n_real, n_self)
        )
        self._next = start
        self._ahead = ahead or 4 * workers
        self._pending = deque()

    def next(self):
        while len(self._pending) < self._ahead:
            self._pending.append(self._pool.apply_async(_build, (self._next,)))
            self._next += 1
        return self._pending.popleft().get()

    def close(self):
        self._pool.terminate()
        self._pool.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
