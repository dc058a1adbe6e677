"""The command line end to end: real timelines in, a manifest out, clear errors."""

import json
import os
import subprocess
import sys
from fractions import Fraction

import opentimelineio as otio
import pytest

from bridge.cli import main
from helpers.scoring import edit


def test_analyze_writes_manifest_with_frame_exact_hits(tmp_path, capsys):
    cut = edit(tmp_path / "cut.otio", markers=[(100, "hit"), (60, "mood: tense")])
    assert main(["analyze", str(cut), "--out", str(tmp_path / "out"), "-q"]) == 0
    path = capsys.readouterr().out.strip()
    manifest = json.loads(open(path).read())
    assert path == str((tmp_path / "out" / "cut.manifest.json").resolve())
    assert manifest["fps"] == 24.0 and manifest["duration_frames"] == 150
    # cuts after 48 and 48+72 frames, plus the user's hit marker at 100
    assert [(h["frame"], h["source"]) for h in manifest["hits"]] == [(48, "cut"), (100, "marker"), (120, "cut")]
    assert [h["seconds"] for h in manifest["hits"]] == [2.0, round(100 / 24, 6), 5.0]
    # sections cover the timeline without holes; the mood marker drives its span
    starts = [s["frame_start"] for s in manifest["sections"]]
    ends = [s["frame_end"] for s in manifest["sections"]]
    assert starts[0] == 0 and ends[-1] == 150 and starts[1:] == ends[:-1]
    tense = [s for s in manifest["sections"] if s["frame_start"] >= 60]
    assert tense and all(s["source"] == "marker" and s["valence"] < 0 < s["arousal"] for s in tense)
    # media are missing: still analysed, with a warning
    assert manifest["warnings"]


def test_analyze_ntsc_drop_frame_with_hour_start(tmp_path, capsys):
    rate = 30000 / 1001
    start = otio.opentime.from_timecode("01:00:00;00", rate).value  # 107892 frames
    cut = edit(tmp_path / "df.otio", rate=rate, clips=(300, 300), start_frame=start, drop_frame=True)
    assert main(["analyze", str(cut), "--out", str(tmp_path), "-q"]) == 0
    manifest = json.loads(open(capsys.readouterr().out.strip()).read())
    assert manifest["rate"] == "30000/1001"
    assert manifest["start_timecode"] == "01:00:00;00"
    assert manifest["start_seconds"] == round(107892 * 1001 / 30000, 6)
    hit = manifest["hits"][0]
    assert hit["frame"] == 300 and hit["seconds"] == round(float(Fraction(300 * 1001, 30000)), 6)
    assert hit["timecode"] == "01:00:10;00"


@pytest.mark.parametrize(
    "content, suffix",
    [("{ not json", ".otio"), ('{"OTIO_SCHEMA": "Timeline.99", "tracks": null}', ".otio"), ("hello", ".doc")],
)
def test_bad_input_is_one_line_and_exit_3(tmp_path, content, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "analyze", str(bad), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scorebridge: ") and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.manifest.json"))


def test_missing_file_and_bad_fps(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "analyze", str(tmp_path / "nope.otio")], capture_output=True, text=True
    )
    assert proc.returncode == 3 and "nope.otio" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "analyze", "x.edl", "--fps", "-5"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "frame rate" in proc.stderr


def test_doctor_reports_core_parts(capsys):
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0
    for name in ("torch", "opentimelineio", "cmx_3600", "fcp_xml", "ffmpeg", "soundfont", "music corpus"):
        assert name in out


def test_doctor_checks_the_music_models_checksum(tmp_path):
    from bridge.doctor import music_model
    from bridge.music.model import MusicConfig, MusicTransformer, save_shipped

    save_shipped(MusicTransformer(MusicConfig(n_layer=1, n_head=2, n_embd=32, n_cond=8, block_size=32)), tmp_path / "m")
    name, ok, detail, required = music_model(tmp_path / "m")
    assert ok and "checked" in detail and not required
    with open(tmp_path / "m.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    name, ok, detail, _ = music_model(tmp_path / "m")
    assert not ok and "corrupt" in detail
    assert not music_model(tmp_path / "none")[1]


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    """The README's first command: builds the demo edit and analyses it through the CLI."""
    assert main(["demo", "--out", str(tmp_path)]) == 0
    manifest = json.loads(open(capsys.readouterr().out.strip()).read())
    hits = {h["frame"]: h["source"] for h in manifest["hits"]}
    # the edit's cuts, the user's hit marker inside the fractal shot, the cut detected inside
    # the last clip (bright -> warm at frame 625, within a frame)
    assert {125: "cut", 225: "cut", 300: "cut", 425: "cut", 480: "marker", 525: "cut"}.items() <= hits.items()
    assert [f for f, s in hits.items() if s == "detected"] in ([624], [625], [626])
    by_start = {s["frame_start"]: s for s in manifest["sections"]}
    night, tense, city = by_start[0], by_start[150], by_start[225]
    assert night["source"] == "picture" and night["valence"] < 0 and night["arousal"] < 0
    assert tense["source"] == "marker" and (tense["valence"], tense["arousal"]) == (-0.4, 0.6)
    # `mood: auto` at 225 hands the emotion back to the picture: the bright city scene
    assert city["source"] == "picture" and city["valence"] > 0 and city["arousal"] > 0
    assert not manifest["warnings"]


@pytest.mark.parametrize(
    "argv",
    [
        ["eval-score", "--key-pull", "nan"],
        ["eval", "--steer", "-1"],
        ["eval-score", "--key-pull", "many"],
        ["eval", "--temperature", "0"],
        ["eval", "--temperature", "nan"],
        ["eval", "--note-temperature", "3"],
        ["eval", "--seeds", "0"],
        ["eval", "--seeds", "500"],
        ["eval-score", "--guidance", "0.5"],
        ["eval-score", "--mood-step", "-1"],
        ["train", "takes", "--out", "t.json.gz", "--seconds", "1"],
        ["train", "takes", "--out", "t.json.gz", "--candidates", "0"],
        ["train", "model", "--self-share", "1.5"],
        ["train", "model", "--groove-share", "-0.1"],
        ["train", "model", "--workers", "-1"],
        ["eval-score", "--key-guidance", "0.5"],
        ["eval-score", "--energy-pull", "-1"],
        ["eval-score", "--energy-pull", "nan"],
        ["eval-score", "--dynamics-pull", "5"],
        ["eval-score", "--dynamics-pull", "inf"],
        ["eval", "--int8", "--precision", "bf16"],
        ["eval", "--precision", "fp16"],
        ["eval", "--key-cut", "-0.5"],
        ["eval", "--key-cut", "nan"],
        ["eval", "--twin-windows", "4"],
        ["eval", "--twin-windows", "1e6"],
        ["train", "model", "--workers", "10000"],
        ["train", "model", "--steps", "0"],
        ["train", "model", "--batch-size", "0"],
        ["train", "model", "--batch-size", "100000"],
        ["train", "model", "--lr", "nan"],
        ["train", "model", "--lr", "5"],
        ["train", "model", "--lr", "0"],
        ["train", "model", "--max-minutes", "-1"],
        ["train", "model", "--boundary-weight", "-1"],
        ["train", "model", "--seed", "-1"],
        ["train", "model", "--p-retime", "2"],
        ["train", "model", "--p-mode-swap", "nan"],
        ["train", "model", "--valence-contrast", "inf"],
        ["train", "model", "--contrast-scale", "0"],
        ["train", "takes", "--out", "t.json.gz", "--seed", "-3"],
        ["eval", "--guidance", "nan"],
        ["eval", "--guidance", "-5"],
        ["train", "corpus", "--budget", "-5"],
        ["train", "corpus", "--budget", "nan"],
        ["train", "corpus", "--workers", "0"],
        ["train", "corpus", "--workers", "100000"],
        ["bench", "sampling", "--busy", "-1"],
        ["bench", "sampling", "--busy", "100000"],
        ["bench", "sampling", "--runs", "0"],
    ],
)
def test_absurd_steering_strength_or_temperature_is_refused_before_any_work(argv):
    proc = subprocess.run([sys.executable, "-m", "bridge.cli", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert any(
        s in proc.stderr
        for s in (
            "[0, 20]",
            "(0, 2]",
            "not a number",
            "[4, 60]",
            "at least 1",
            "[0, 1]",
            "at most 32",
            "[1, 4]",
            "[0, 2]",
            "workers must be 0 to",
            "[1, 30]",
            "Pick one",
            "invalid choice",
            "[0, 10]",
            "16 to 8192",
            "not a whole number",
            "(0, 1]",
            "[0, 10080]",
            "[0, 100]",
            "0 to 4294967295",
            "(0, 1000]",
            "1 to 4096",
            "[0, 86400]",
            "must be 1 to",
            "must be 0 to",
            "[0, 4]",
        )
    )
    assert "Traceback" not in proc.stderr


def test_key_guidance_in_scores_refuses_a_model_without_the_key(tmp_path):
    from bridge.music.model import MusicConfig, MusicTransformer, save_shipped

    save_shipped(
        MusicTransformer(MusicConfig(n_layer=1, n_head=2, n_embd=64, n_cond=16, block_size=96)), tmp_path / "m"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "eval-score", "--key-guidance", "12", "--model", str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 3 and "tonic condition" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_speed_only_times_the_sampler_without_a_corpus(tmp_path):
    from bridge.music.model import MusicConfig, MusicTransformer, packable, save_shipped

    model = MusicTransformer(
        MusicConfig(n_layer=1, n_head=2, n_embd=64, n_cond=16, block_size=96, tonic=True, tonic_modes=2)
    )
    save_shipped(model, tmp_path / "m")
    run = lambda *argv: subprocess.run(
        [sys.executable, "-m", "bridge.cli", "eval", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "SCOREBRIDGE_CORPUS": str(tmp_path / "none")},
    )
    proc = run(
        "--speed-only",
        "--quick",
        "--key-guidance",
        "6",
        "--model",
        str(tmp_path / "m"),
        "--json-out",
        str(tmp_path / "speed.json"),
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert set(res) == {"speed", "targets_met"} and json.loads((tmp_path / "speed.json").read_text()) == res
    sp, keys = (
        res["speed"],
        {
            "tokens_per_s_batch1",
            "tokens_per_s_batch8",
            "tokens_per_s_batch1_guidance_2",
            "tokens_per_s_batch1_key_guided_6",
        },
    )
    assert keys <= set(sp) and all(sp[k] > 0 for k in keys) and sp["runs"] == 1
    assert set(sp["precision"]) == keys and set(sp["precision"].values()) <= {"fp32", "bf16"}
    assert sp["precision"]["tokens_per_s_batch8"] == ("bf16" if packable(model) else "fp32")  # 8 rows
    assert set(res["targets_met"]) == {"speed_ge_400_tok_s", "key_guided_6: speed_ge_400_tok_s"}
    proc = run("--speed-only", "--nll-only")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


@pytest.mark.slow
def test_training_or_eval_without_a_corpus_or_a_model_says_what_to_do_and_starts_nothing(tmp_path):
    run = lambda *argv: subprocess.run(
        [sys.executable, "-m", "bridge.cli", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "SCOREBRIDGE_CORPUS": str(tmp_path / "corpus")},
    )
    for argv in (["train", "model", "--out", str(tmp_path / "run"), "--steps", "1"], ["eval", "--nll-only"]):
        proc = run(*argv)
        assert proc.returncode == 3 and "Traceback" not in proc.stderr
        assert "no music corpus" in proc.stderr and "scorebridge train corpus" in proc.stderr
    assert not (tmp_path / "run").exists()
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "corpus.pkl").write_bytes(b"\x80\x04\x95 cut short")
    proc = run("train", "model", "--out", str(tmp_path / "run"))
    assert proc.returncode == 3 and "unreadable" in proc.stderr and "Traceback" not in proc.stderr
    for argv in (
        ["train", "model", "--init", str(tmp_path / "none")],
        ["eval", "--model", str(tmp_path / "none")],
        ["eval", "--twin", str(tmp_path / "none"), "--nll-only"],
    ):
        proc = run(*argv)
        assert proc.returncode == 4 and "Traceback" not in proc.stderr
        assert f"at {tmp_path / 'none'}.safetensors" in proc.stderr
    # A run folder that holds a checkpoint is refused before anything loads, unless resumed.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ckpt.pt").write_bytes(b"hours of training")
    proc = run("train", "model", "--out", str(tmp_path / "run"))
    assert proc.returncode == 3 and "--resume" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "ckpt.pt").read_bytes() == b"hours of training"


def test_speed_figures_name_the_kernels_they_ran_on():
    import os

    from bridge.doctor import kernels

    here = kernels()
    assert here["torch"] and here["numpy"]
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": ""}
    probe = "import json; from bridge.doctor import kernels; print(json.dumps(kernels()))"
    lowered = json.loads(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout)
    assert lowered["torch"] == "DEFAULT"  # torch told to use no SIMD kernels says so
