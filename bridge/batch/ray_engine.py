"""The Ray engine (`--engine ray`): timelines scored by long-lived actors on a Ray cluster.

Each worker is an actor that reserves its CPUs (and a GPU, or a share of one, where the
cluster has them), sets torch's threads to what it reserved, loads the model once and scores
one timeline per call. A worker that dies is replaced and its timeline tried again, up to
`retries` more times, then recorded `worker_died`; the batch goes on. Execution is therefore
at least once: `score` stages its deliverables and moves them into place, so a timeline
scored twice leaves one complete set, and the staging a killed worker left is swept.

Without `--address` a one-machine cluster is started for this batch and stopped after it;
`--address auto` joins the cluster `ray start` runs here, any other address joins that one.
Everything this module starts binds to loopback. Inputs, media and `--out` must be on storage
every node sees at the same path (the report names the node that scored each timeline).
"""

import collections
import logging
import os
import signal
import socket

from bridge.batch import job
from bridge.errors import BadInput

INSTALL = "pip install 'scorebridge[ray]'"
READY_TIMEOUT_S = 300.0  # a worker's start: Python, torch and the model
GPU_SHARE = 0.25  # default share of a GPU per worker: the model is small


def import_ray():
    """Ray, imported with usage statistics off and loopback as this machine's address
    (on Linux Ray would otherwise advertise the machine's routable address)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise BadInput(f"--engine ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


class Scorer:
    """A Ray actor's body (wrapped by ray.remote when the engine starts)."""

    def __init__(self, device, threads, score=None):
        import ray

        job.prepare(device, threads)
        self.device = device
        self.score_fn = score or job.score_one
        self.node = f"{socket.gethostname()} ({ray.get_runtime_context().get_node_id()[:8]})"

    def ready(self):
        return self.node

    def score(self, path, out, options):
        return self.score_fn(path, out, options, self.device, node=self.node)


def _nodes(ray):
    return [n for n in ray.nodes() if n.get("Alive")]


class RayEngine:
    name = "ray"

    def __init__(
        self,
        address=None,
        workers=None,
        worker_cpus=None,
        worker_gpus=None,
        retries=2,
        device="auto",
        score=None,
        ready_timeout=READY_TIMEOUT_S,
    ):
        if retries < 0:
            raise BadInput(f"--retries must be 0 or more, not {retries}")
        self.ray = ray = import_ray()
        self.connected = False
        self.actors = []
        # ray.init installs a SIGTERM handler that outlives ray.shutdown; processes forked
        # later inherit it and can hang when terminated. Put back what was there on close.
        self.sigterm = signal.getsignal(signal.SIGTERM)
        if not ray.is_initialized():
            self.connected = True
            try:
                if address is None:
                    # A cluster of our own on loopback: its token note is noise to a user.
                    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
                    ray.init(
                        address="local",
                        _node_ip_address="127.0.0.1",
                        include_dashboard=False,
                        log_to_driver=False,
                        num_cpus=os.cpu_count() or 1,
                        logging_level=logging.WARNING,
                    )
                else:
                    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            except ConnectionError as exc:
                raise BadInput(f"cannot join the Ray cluster at {address}: {exc}") from None
        self.address = address or "local"
        nodes = _nodes(ray)
        gpus_total = sum(n["Resources"].get("GPU", 0) for n in nodes)
        if device == "cuda" and not gpus_total:
            self.close()
            raise BadInput("--device cuda, but the Ray cluster has no GPU")
        self.cpus = float(worker_cpus or 1)
        if worker_gpus is None:
            worker_gpus = GPU_SHARE if gpus_total and device != "cpu" else 0.0
        self.gpus = float(worker_gpus)
        if self.cpus <= 0 or self.gpus < 0 or self.gpus > 1 and self.gpus != int(self.gpus):
            self.close()
            raise BadInput(
                f"a worker needs at least some CPU and a share of a GPU up to 1 or whole GPUs "
                f"(got --worker-cpus {worker_cpus}, --worker-gpus {worker_gpus})"
            )
        # How many workers the cluster can place at once: a worker that cannot be placed
        # would wait for ever, so ask for no more than fit.
        self.fit = sum(self._fits(n["Resources"]) for n in nodes)
        if not self.fit:
            largest = max(((n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes), default=(0, 0))
            self.close()
            raise BadInput(
                f"no node of the Ray cluster can hold a worker of {self.cpus:g} CPU(s) and "
                f"{self.gpus:g} GPU(s) (the largest has {largest[0]:g} CPUs, {largest[1]:g} GPUs); "
                "lower --worker-cpus or --worker-gpus"
            )
        self.workers = min(int(workers), self.fit) if workers else self.fit
        self.asked = workers
        self.retries = retries
        self.device = device
        self.score_fn = score
        self.ready_timeout = ready_timeout
        self.nodes = [
            {
                "node": f"{n['NodeManagerHostname']} ({n['NodeID'][:8]})",
                "cpus": n["Resources"].get("CPU", 0),
                "gpus": n["Resources"].get("GPU", 0),
            }
            for n in nodes
        ]
        self.actor_class = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0)(Scorer)

    def _fits(self, resources):
        count = int(resources.get("CPU", 0) // self.cpus)
        if self.gpus:
            count = min(count, int(resources.get("GPU", 0) // self.gpus))
        return count

    def describe(self) -> dict:
        described = {
            "name": self.name,
            "address": self.address,
            "workers": self.workers,
            "cpus_per_worker": self.cpus,
            "gpus_per_worker": self.gpus,
            "retries": self.retries,
            "nodes": self.nodes,
        }
        if self.asked and int(self.asked) > self.workers:  # more were asked for than the cluster holds
            described["workers_asked"] = int(self.asked)
        return described

    def _start(self):
        actor = self.actor_class.remote(self.device, max(1, int(self.cpus)), self.score_fn)
        self.actors.append(actor)
        return actor.ready.remote(), actor

    def _drop(self, actor):
        if actor in self.actors:
            self.actors.remove(actor)
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # already gone
            pass

    def run(self, todo, folders, options, finished, status):
        """Score `todo`; call finished(path, entry) for each, in the order they end."""
        ray = self.ray
        pending = collections.deque(todo)
        attempts = collections.Counter()
        starting = dict(self._start() for _ in range(min(self.workers, len(pending))))
        idle, flying = [], {}
        failed_starts = 0

        def show():
            status(f"{len(flying)} scoring, {len(idle) + len(flying)} of {self.workers} workers ready")

        while pending or flying:
            while pending and idle:
                actor, path = idle.pop(), pending.popleft()
                attempts[path] += 1
                flying[actor.score.remote(str(path), str(folders[path]), options)] = (actor, path)
            show()
            waiting = list(flying) + list(starting)
            done, _ = ray.wait(waiting, num_returns=1, timeout=None if flying else self.ready_timeout)
            if not done:
                raise BadInput(
                    f"no Ray worker started within {self.ready_timeout:g} s: the cluster could "
                    "not place or start one (see `ray status`)"
                )
            ref = done[0]
            if ref in starting:
                actor = starting.pop(ref)
                try:
                    ray.get(ref)
                    idle.append(actor)
                    failed_starts = 0
                except ray.exceptions.RayError as exc:
                    self._drop(actor)
                    failed_starts += 1
                    if failed_starts > 2 * self.workers:
                        raise BadInput(f"Ray workers die as they start: {exc}") from None
                    starting.update([self._start()])
                continue
            actor, path = flying.pop(ref)
            try:
                entry = ray.get(ref)
            except ray.exceptions.RayError as exc:
                # The worker died under this timeline: replace it, and try again or give up.
                self._drop(actor)
                if len(self.actors) < self.workers:
                    starting.update([self._start()])
                if attempts[path] <= self.retries:
                    pending.appendleft(path)
                else:
                    finished(
                        path,
                        job.died(
                            path,
                            folders[path],
                            f"its worker died on each of {attempts[path]} attempts ({type(exc).__name__})",
                            attempts[path],
                        ),
                    )
                continue
            entry["attempts"] = attempts[path]
            idle.append(actor)
            finished(path, entry)

    def close(self):
        """Stop the workers; leave the cluster we started, or disconnect from the one we
        joined, and give SIGTERM back. A connection the caller made stays theirs."""
        for actor in list(self.actors):
            self._drop(actor)
        if self.connected and self.ray.is_initialized():
            self.ray.shutdown()
            signal.signal(signal.SIGTERM, self.sigterm)
        self.connected = False
