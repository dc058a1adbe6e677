"""The local engine: timelines scored in this process, or in a pool of worker processes on
this machine (`--workers N`). The default engine."""

import multiprocessing
import os
import socket
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from bridge.batch import job


class LocalEngine:
    name = "local"

    def __init__(self, workers=1, device="auto"):
        self.workers = max(1, int(workers or 1))
        self.device = device
        self.threads = max(1, (os.cpu_count() or 1) // self.workers)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "workers": self.workers,
            "threads_per_worker": self.threads,
            "nodes": [socket.gethostname()],
        }

    def run(self, todo, folders, options, finished, status):
        """Score `todo`; call finished(path, entry) for each, in the order they end."""
        if self.workers == 1:
            for path in todo:
                status(path.name)
                finished(
                    path,
                    job.score_one(
                        path,
                        folders[path],
                        options,
                        self.device,
                        progress=lambda f, stage, p=path: status(f"{p.name}: {stage}"),
                    ),
                )
            return
        self._pool(todo, folders, options, finished)

    def close(self):
        pass

    def _pool(self, todo, folders, options, finished):
        """At most `workers` timelines in flight, so a worker that dies takes only those with
        it; the rest go on in a fresh pool."""
        context = multiprocessing.get_context("spawn")  # torch and fork do not mix
        pending = list(todo)
        while pending:
            pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=job.prepare, initargs=(self.device, self.threads)
            )
            flying, broken = {}, False
            try:
                while (pending or flying) and not broken:
                    while pending and len(flying) < self.workers:
                        path = pending.pop(0)
                        flying[pool.submit(job.score_one, path, folders[path], options, self.device)] = path
                    done, _ = wait(flying, return_when=FIRST_COMPLETED)
                    for future in done:
                        path = flying.pop(future)
                        try:
                            entry = future.result()
                        except BrokenProcessPool:
                            entry, broken = (
                                job.died(path, folders[path], "the worker process died while scoring it"),
                                True,
                            )
                        finished(path, entry)
                for path in flying.values():  # in flight when a worker died
                    finished(path, job.died(path, folders[path], "the worker process died while scoring it"))
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
