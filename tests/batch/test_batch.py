"""`scorebridge batch`: many timelines, one report; failures are recorded, not fatal."""

import json
import subprocess
import sys

import pytest

from bridge import batch
from helpers.scoring import edit
from bridge.settings import ScoreOptions

FAST = ScoreOptions(audio=False, candidates=1)


def edits(folder):
    (folder / "reel1").mkdir(parents=True)
    (folder / "reel2").mkdir()
    good = [
        edit(folder / "reel1" / "scene.otio", clips=(48, 30)),
        edit(folder / "reel2" / "scene.otio", clips=(24, 24, 24), markers=[(30, "hit")]),
    ]
    broken = folder / "reel2" / "broken.otio"
    broken.write_text("{ not json")
    return good, broken


def test_expand_takes_files_folders_and_globs_once_each(tmp_path):
    good, broken = edits(tmp_path)
    (tmp_path / "reel1" / "picture.mp4").write_bytes(b"")  # media in a folder is not a timeline
    found, problems = batch.expand(
        [
            str(good[0]),
            str(tmp_path / "reel2"),
            str(tmp_path / "*" / "*.otio"),
            str(tmp_path / "missing.edl"),
            str(tmp_path / "none-*.xml"),
        ]
    )
    assert found == [good[0], broken, good[1]]
    assert [why for _, why in problems] == [
        f"no such file: {tmp_path / 'missing.edl'}",
        f"nothing matches {tmp_path / 'none-*.xml'}",
    ]


def test_timelines_that_share_a_name_get_stable_separate_folders(tmp_path):
    good, _ = edits(tmp_path)
    first = batch.out_folders(good, tmp_path / "out")
    assert len(set(first.values())) == 2 and all(f.name.startswith("scene-") for f in first.values())
    assert batch.out_folders(list(reversed(good)), tmp_path / "out") == first


def test_a_failing_timeline_never_stops_the_others_and_resume_skips_finished_ones(tmp_path):
    good, broken = edits(tmp_path)
    out = tmp_path / "out"
    report = batch.run(
        [str(tmp_path / "reel1"), str(tmp_path / "reel2"), str(tmp_path / "gone.otio")], out, options=FAST, show=False
    )
    on_disk = json.loads((out / batch.REPORT).read_text())
    assert (
        on_disk["summary"] == report["summary"] == {"timelines": 4, "done": 2, "failed": 2, "resumed": 0, "pending": 0}
    )
    by_input = {e["input"]: e for e in on_disk["timelines"]}
    assert by_input[str(broken)]["code"] == "bad_input" and "cannot read" in by_input[str(broken)]["error"]
    assert by_input[str(tmp_path / "gone.otio")]["error"].startswith("no such file")
    for path in good:
        entry = by_input[str(path)]
        assert entry["status"] == "done" and entry["seconds"] > 0 and entry["timings"]["generation_s"] > 0
        manifest = json.loads(open(entry["manifest"]).read())
        assert entry["alignment"]["hits"] == len(manifest["hits"])
        assert entry["alignment"]["chord_within_frame"] == len(manifest["hits"])  # hits are guaranteed
    assert not list(out.glob("*/.*"))  # no staging folders left behind

    edit(good[1], clips=(24, 48))  # changed since: scored again
    again = batch.run([str(tmp_path / "reel1"), str(tmp_path / "reel2")], out, options=FAST, resume=True, show=False)
    by_input = {e["input"]: e for e in again["timelines"]}
    assert by_input[str(good[0])].get("resumed") is True
    assert not by_input[str(good[1])].get("resumed") and by_input[str(good[1])]["status"] == "done"
    assert by_input[str(broken)]["status"] == "failed"
    assert again["summary"]["resumed"] == 1


@pytest.mark.slow
def test_batch_command_with_workers_reports_and_exits_non_zero_on_a_failure(tmp_path):
    good, broken = edits(tmp_path)
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge",
            "batch",
            str(tmp_path / "*" / "*.otio"),
            "--out",
            str(out),
            "--workers",
            "2",
            "--no-audio",
            "--candidates",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    assert "2 done (0 from an earlier run), 1 failed, of 3" in run.stderr
    report = json.loads((out / batch.REPORT).read_text())
    assert sorted(e["status"] for e in report["timelines"]) == ["done", "done", "failed"]

    ok = subprocess.run(
        [sys.executable, "-m", "bridge", "batch", str(good[0]), "--out", str(out), "--resume", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0 and "1 done (1 from an earlier run), 0 failed, of 1" in ok.stderr
