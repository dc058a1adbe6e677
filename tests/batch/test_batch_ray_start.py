"""`scorebridge batch --engine ray --address auto` joins the cluster `ray start` runs here.

Its own module: `ray stop` stops every Ray process on the machine, so no other cluster may be
up while it runs (pytest finishes a module, fixtures included, before the next)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import batch
from helpers.scoring import edit

pytest.importorskip("ray", reason="Ray is an extra (pip install 'scorebridge[ray]'); .ci/setup installs it")
pytestmark = pytest.mark.slow


def test_address_auto_joins_the_cluster_ray_start_runs_on_this_machine(tmp_path):
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        ray_cli = shutil.which("ray")
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")
    start = subprocess.run(
        [
            str(ray_cli),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            "0",
            "--num-cpus",
            "1",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert start.returncode == 0, start.stderr
    try:
        (tmp_path / "in").mkdir()
        edit(tmp_path / "in" / "a.otio", clips=(36, 30))
        edit(tmp_path / "in" / "b.otio", clips=(30, 36, 24))
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "bridge",
                "batch",
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "out"),
                "--engine",
                "ray",
                "--address",
                "auto",
                "--no-audio",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        report = json.loads((tmp_path / "out" / batch.REPORT).read_text())
        assert report["engine"]["address"] == "auto" and report["engine"]["workers"] == 1
        assert [e["status"] for e in report["timelines"]] == ["done", "done"]
        # The cluster belongs to `ray start`: the batch left it running.
        still = subprocess.run(
            [
                sys.executable,
                "-c",
                "import ray; ray.init(address='auto', log_to_driver=False); print(ray.cluster_resources()['CPU'])",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert still.returncode == 0 and still.stdout.split()[-1] == "1.0", still.stderr
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, env=env, timeout=120)
