"""`scorebridge batch --engine ray`: the same work as the local engine, on a real Ray
cluster (two nodes simulated on this machine, on loopback), with workers that die."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge import batch
from bridge.batch import job
from bridge.errors import BadInput
from helpers.scoring import edit
from bridge.settings import ScoreOptions

# Before Ray is imported: it reads these once. Loopback as this machine's address (on Linux
# Ray would otherwise use the routable one) and no usage statistics.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ray = pytest.importorskip("ray", reason="Ray is an extra (pip install 'scorebridge[ray]'); .ci/setup installs it")
pytestmark = pytest.mark.slow

FAST = ScoreOptions(audio=False, candidates=1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two simulated nodes of one CPU each, on loopback, usage statistics off; this process
    is the driver. Workers get the tests' private cache, and the test module by value (so
    the fault-injecting scorers below reach them)."""
    from ray.cluster_utils import Cluster

    saved = dict(os.environ)
    base = tmp_path_factory.getbasetemp()
    os.environ.update(
        SCOREBRIDGE_CACHE=str(base / "cache"),
        SCOREBRIDGE_CONFIG=str(base / "config"),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    )
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    sigterm = signal.getsignal(signal.SIGTERM)  # ray.init replaces it, and shutdown keeps Ray's
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    ray.init(address=nodes.address, log_to_driver=False)
    try:
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()
        signal.signal(signal.SIGTERM, sigterm)
        os.environ.clear()
        os.environ.update(saved)


def edits(folder, n=6):
    folder.mkdir(parents=True, exist_ok=True)
    return [edit(folder / f"reel{i}.otio", clips=(36 + 6 * i, 30, 24), markers=[(40, "hit")]) for i in range(n)]


def midi_bytes(report):
    return {
        Path(e["input"]).name: Path(json.loads(Path(e["manifest"]).read_text())["outputs"]["midi"]).read_bytes()
        for e in report["timelines"]
        if e["status"] == "done"
    }


def comparable(entry):
    """What must agree between engines: all but where and how long, and the paths under --out."""
    skip = {"seconds", "timings", "node", "attempts", "identity", "manifest", "out"}
    return {k: v for k, v in entry.items() if k not in skip}


def test_local_and_ray_give_the_same_reports_and_midi_and_ray_spreads_over_both_nodes(tmp_path, cluster):
    inputs = edits(tmp_path / "in")
    local = batch.run([str(tmp_path / "in")], tmp_path / "local", workers=2, options=FAST, show=False)
    on_ray = batch.run([str(tmp_path / "in")], tmp_path / "ray", engine="ray", options=FAST, show=False)

    assert on_ray["summary"] == local["summary"] == {"timelines": 6, "done": 6, "failed": 0, "resumed": 0, "pending": 0}
    assert [comparable(e) for e in on_ray["timelines"]] == [comparable(e) for e in local["timelines"]]
    assert midi_bytes(on_ray) == midi_bytes(local) and len(midi_bytes(local)) == len(inputs)
    engine = on_ray["engine"]
    assert engine["name"] == "ray" and engine["workers"] == 2 and engine["cpus_per_worker"] == 1
    assert len(engine["nodes"]) == 2
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}  # loopback only
    used = {e["node"] for e in on_ray["timelines"]}
    assert used == {n["node"] for n in engine["nodes"]}  # each node scored some of the reels
    assert json.loads((tmp_path / "ray" / batch.REPORT).read_text())["timelines"] == on_ray["timelines"]
    assert not list((tmp_path / "ray").glob("*/.*"))  # no staging left


def kill_once_mid_timeline(path, out, options, device, node=None):
    """Scores as a worker does, but the first time a timeline is tried its worker is killed
    (SIGKILL) part-way through, after its staging folder exists."""
    marker = Path(out).parent / f"{Path(path).stem}.killed"

    def progress(fraction, stage):
        if not marker.exists() and fraction > 0.2:
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

    return job.score_one(path, out, options, device, progress=progress, node=node)


def always_kill(path, out, options, device, node=None):
    if "poison" in str(path):
        os.kill(os.getpid(), signal.SIGKILL)
    return job.score_one(path, out, options, device, node=node)


def test_a_worker_killed_mid_timeline_is_replaced_and_its_timeline_retried(tmp_path, cluster):
    edits(tmp_path / "in", n=2)
    engine = batch.engine_for("ray", score=kill_once_mid_timeline, retries=1)
    report = batch.run([str(tmp_path / "in")], tmp_path / "out", engine=engine, options=FAST, show=False)
    assert report["summary"]["done"] == 2
    for entry in report["timelines"]:
        assert entry["attempts"] == 2  # killed once, then scored
        assert (tmp_path / "out" / f"{Path(entry['input']).stem}.killed").exists()
        assert Path(entry["manifest"]).exists()
    assert not list((tmp_path / "out").glob("*/.*"))  # the killed attempt's staging is swept


def test_a_timeline_that_always_kills_its_worker_ends_worker_died_and_the_batch_goes_on(tmp_path, cluster):
    good = edits(tmp_path / "in", n=2)
    edit(tmp_path / "in" / "poison.otio", clips=(24, 24))
    engine = batch.engine_for("ray", score=always_kill, retries=1)
    report = batch.run([str(tmp_path / "in")], tmp_path / "out", engine=engine, options=FAST, show=False)
    by_name = {Path(e["input"]).name: e for e in report["timelines"]}
    assert by_name["poison.otio"]["status"] == "failed" and by_name["poison.otio"]["code"] == "worker_died"
    assert by_name["poison.otio"]["attempts"] == 2 and "died on each of 2 attempts" in by_name["poison.otio"]["error"]
    assert all(by_name[p.name]["status"] == "done" for p in good)
    assert report["summary"] == {"timelines": 3, "done": 2, "failed": 1, "resumed": 0, "pending": 0}


def test_work_that_cannot_be_placed_fails_at_once_with_a_clear_error(tmp_path, cluster):
    with pytest.raises(BadInput, match="no node of the Ray cluster can hold a worker of 64 CPU"):
        batch.run([str(tmp_path)], tmp_path / "out", engine="ray", worker_cpus=64, options=FAST, show=False)
    with pytest.raises(BadInput, match="--device cuda, but the Ray cluster has no GPU"):
        batch.run([str(tmp_path)], tmp_path / "out", engine="ray", device="cuda", options=FAST, show=False)
    engine = batch.engine_for("ray", workers=5)  # more than the two CPUs hold: as many as fit, and said
    assert engine.describe()["workers"] == 2 and engine.describe()["workers_asked"] == 5
    engine.close()
    with pytest.raises(BadInput, match="for --engine ray"):
        batch.run([str(tmp_path)], tmp_path / "out", address="auto", options=FAST, show=False)
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_killed_driver_resumes_cleanly_on_a_cluster_of_its_own(tmp_path):
    edits(tmp_path / "in", n=5)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "bridge",
        "batch",
        str(tmp_path / "in"),
        "--out",
        str(out),
        "--engine",
        "ray",
        "--workers",
        "1",
        "--no-audio",
        "--quiet",
    ]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    report_path = out / batch.REPORT
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and driver.poll() is None and done < 1:
        time.sleep(0.1)
        try:
            done = json.loads(report_path.read_text())["summary"]["done"]
        except (OSError, ValueError, KeyError):
            pass
    assert done >= 1 and driver.poll() is None, driver.stderr.read().decode() if driver.poll() is not None else ""
    assert {"raylet", "gcs_server"} <= {
        w for line in _cluster_left(driver.pid) for w in ("raylet", "gcs_server") if f"/{w} " in line
    }, _cluster_left(driver.pid)  # its own cluster
    driver.kill()  # SIGKILL: no clean-up of its own
    driver.wait(timeout=30)
    killed = json.loads(report_path.read_text())["summary"]
    assert killed["pending"] >= 1  # it really was stopped part-way

    again = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads(report_path.read_text())
    assert report["summary"]["done"] == 5 and report["summary"]["resumed"] == killed["done"]
    assert f"5 done ({killed['done']} from an earlier run), 0 failed, of 5" in again.stderr
    assert not list(out.glob("*/.*"))  # the killed run's staging is swept
    # The killed driver's own cluster went with it: its GCS, raylet and workers. (Ray's two
    # agents notice too, but report the raylet's death to the dead GCS before they exit,
    # which takes them about a minute.)
    deadline = time.monotonic() + 20
    while _cluster_left(driver.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _cluster_left(driver.pid)


def _cluster_left(driver):
    """The command lines of the processes of the Ray session a driver started (named
    session_<date>_<driver pid>), other than its two agents."""
    session = re.compile(rf"session_[0-9_-]+_{driver}\b")
    left = []
    for proc in Path("/proc").iterdir():
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and session.search(line) and not re.match(r"ray::\w*Agent", line):
            left.append(line)
    return left


def test_engine_ray_without_ray_installed_exits_3_with_the_install_line(tmp_path):
    edits(tmp_path / "in", n=1)
    code = (
        "import sys; sys.modules['ray'] = None; from bridge.cli import main; "
        f"sys.exit(main(['batch', {str(tmp_path / 'in')!r}, '--out', {str(tmp_path / 'out')!r}, '--engine', 'ray']))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 3
    assert "pip install 'scorebridge[ray]'" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()
