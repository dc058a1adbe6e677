"""`scorebridge score` end to end: hits on their frames in the MIDI file, exact WAV length,
tacet silence, determinism, clean failures."""

import json
import os
import subprocess
import sys
import wave
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import opentimelineio as otio
import pytest

from bridge.score import pipeline as score_mod
from bridge.cli import main
from bridge.music.model import save_shipped
from bridge.render.audio import read_wav
from bridge.render.midi import read_midi
from bridge.score import score
from bridge.timebase import (
    PPQ,
    frames_to_seconds,
    seconds_to_frame,
    seconds_to_ticks,
    ticks_to_seconds,
    timecode_to_frames,
)
from helpers.scoring import TINY_INFO, edit, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

MARKERS = [(100, "hit"), (60, "mood: tense"), (170, "hit: door")]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _run(model, path, out, **options):
    options.setdefault("candidates", 2)
    return score(path, out, model=model, model_info=TINY_INFO, **options)


def _ticks(midi_path):
    """{part name: [(on tick, off tick, pitch)]} straight from the file."""
    out = {}
    for track in mido.MidiFile(midi_path).tracks:
        tick, name, sounding = 0, None, {}
        for msg in track:
            tick += msg.time
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "note_on" and msg.velocity:
                sounding[msg.note] = tick
            elif msg.type in ("note_on", "note_off") and msg.note in sounding:
                out.setdefault(name, []).append((sounding.pop(msg.note), tick, msg.note))
    return out


@pytest.mark.parametrize(
    "rate, drop, start_tc",
    [
        (Fraction(24000, 1001), False, "01:00:00:00"),
        (Fraction(25), False, "01:00:00:00"),
        (Fraction(30000, 1001), True, "01:00:00;00"),
    ],
)
def test_hits_land_on_their_frames_to_the_tick(model, tmp_path, rate, drop, start_tc):
    start = timecode_to_frames(start_tc, rate, drop)
    path = edit(
        tmp_path / "cut.otio",
        rate=float(rate),
        clips=(48, 73, 31, 95),
        start_frame=start,
        markers=MARKERS,
        drop_frame=drop or None,
    )
    manifest, manifest_path = _run(model, path, tmp_path / "out", audio_out=False)
    assert manifest["start_timecode"] == start_tc and manifest["drop_frame"] == drop
    midi_path = manifest["outputs"]["midi"]
    parts, tempo_map, markers = read_midi(midi_path)
    assert tempo_map == [(Fraction(e["beat"]), e["us_per_quarter"]) for e in manifest["tempo_map"]]
    offset = next(m for m in mido.MidiFile(midi_path).tracks[0] if m.type == "smpte_offset")
    assert (offset.hours, offset.minutes, offset.seconds, offset.frames) == (1, 0, 0, 0)
    ticks = _ticks(midi_path)
    chord_parts = [name for name in ticks if name.endswith("(pad)") or name.endswith("(rhythm)")]
    frames = [h["frame"] for h in manifest["hits"]]
    assert frames == [48, 100, 121, 152, 170]
    for frame in frames:
        seconds = frames_to_seconds(frame, rate)
        tick = seconds_to_ticks(seconds, tempo_map)
        # the tick converts back to the hit's own frame and seconds (within a tick)
        assert seconds_to_frame(ticks_to_seconds(tick, tempo_map), rate) == frame
        assert abs(ticks_to_seconds(tick, tempo_map) - seconds) <= 60 / 40 / PPQ
        chord = [(on, off, p) for name in chord_parts for on, off, p in ticks[name] if on == tick]
        assert len({p % 12 for _, _, p in chord}) >= 3, frame
        held = [off - on for on, off, _ in chord]
        # three pitch classes at least, each held a beat or more, or until the next
        # hit's chord takes over (a cut less than a beat later)
        following = [seconds_to_ticks(frames_to_seconds(f, rate), tempo_map) for f in frames if f > frame]
        assert sorted(held)[-3] >= min([PPQ] + [t - tick for t in following[:1]])
    hit_marks = [(s, text) for s, text in markers if text.startswith("SB: hit")]
    assert [seconds_to_frame(s, rate) for s, _ in hit_marks] == frames
    assert any(text == "SB: cue 1M1" for _, text in markers)
    assert manifest_path.name == "cut.manifest.json"


def test_manifest_outputs_and_exact_wav(model, tmp_path):
    rate = Fraction(24000, 1001)
    path = edit(tmp_path / "cut.otio", rate=float(rate), clips=(48, 73, 31), markers=MARKERS[:2])
    manifest, manifest_path = _run(model, path, tmp_path / "out", seed=3)
    outputs = manifest["outputs"]
    for key in ("midi", "wav", "otio", "cue_sheet", "notes"):
        assert Path(outputs[key]).parent == (tmp_path / "out").resolve()
    assert outputs["preview"] is None and any("preview" in w for w in manifest["warnings"])
    with wave.open(outputs["wav"]) as w:
        assert w.getframerate() == 48000
        assert w.getnframes() == round(frames_to_seconds(152, rate) * 48000)
    assert manifest["seed"] == 3 and manifest["model"] == TINY_INFO
    assert set(manifest["timings"]) >= {"read_s", "analysis_s", "plan_s", "generation_s", "render_s"}
    assert manifest["plan"]["cue"] == "1M1" and manifest["candidates"]["count"] == 2
    assert json.loads(manifest_path.read_text()) == manifest
    stems = outputs["stems"]
    assert list(stems) == [role for role in ("percussion", "bass", "pad", "rhythm", "melody") if role in stems]
    assert {"bass", "pad", "melody"} <= set(stems)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["cut.manifest.json", "cut.mid", "cut.notes.json", "cut.wav", "cut.scored.otio", "cut.cuesheet.png"]
        + [f"cut.stem-{role}.wav" for role in stems]
    )
    mix, _ = read_wav(outputs["wav"])
    summed = sum(read_wav(path)[0] for path in stems.values())
    assert all(len(read_wav(path)[0]) == len(mix) for path in stems.values())
    assert np.abs(summed - mix).max() < 1e-4 or manifest["audio"]["loudness"]["limiter_max_db"] > 0
    sound = manifest["audio"]
    assert sound["synth"] in ("fluidsynth", "tinysoundfont") and sound["soundfont"].endswith((".sf2", ".sf3"))
    level = sound["loudness"]
    assert level["staging_lufs"] == -23.0 and level["true_peak_dbtp"] <= -1.0 + 0.05
    assert [s["start"] for s in level["sections"]] == [s["start"] for s in manifest["plan"]["sections"]]
    scored = otio.adapters.read_from_file(outputs["otio"])  # kept: its tracks live as long as it does
    tracks = [t for t in scored.tracks if t.kind == "Audio"]
    assert [t.name for t in tracks] == ["SB: 1M1 score"] + [f"SB: 1M1 stem {role}" for role in stems]
    assert tracks[1][0].media_reference.target_url == Path(stems[tracks[1].metadata["scorebridge"]["role"]]).as_uri()


def test_level_follows_arousal_and_the_loudness_option_moves_it(model, tmp_path):
    """One staging for every cue: a calm cue plays at least 8 LU under an excited one, and
    --loudness moves a cue by what it is told."""
    path = edit(tmp_path / "cut.otio", clips=(72, 96, 60, 84), markers=[])
    level = {}
    for name, arousal, loudness in (("calm", -0.8, None), ("excited", 0.8, None), ("louder", -0.8, -16.0)):
        manifest, _ = _run(model, path, tmp_path / name, valence=0.3, arousal=arousal, loudness=loudness)
        level[name] = manifest["audio"]["loudness"]["integrated_lufs"]
        assert manifest["audio"]["loudness"]["true_peak_dbtp"] <= -1.0 + 0.05
    assert level["excited"] - level["calm"] >= 8.0
    assert level["louder"] - level["calm"] == pytest.approx(7.0, abs=0.3)


def test_tacet_is_silent_in_midi_and_wav(model, tmp_path):
    rate = 25
    path = edit(
        tmp_path / "cut.otio", rate=rate, clips=(50, 100, 75), markers=[(75, "tacet"), (125, "music"), (100, "hit")]
    )
    manifest, _ = _run(model, path, tmp_path / "out")
    a, b = 3.0, 5.0
    assert manifest["plan"]["tacet"] == [[a, b]]
    assert [h["frame"] for h in manifest["plan"]["silent_hits"]] == [100]
    parts, _, _ = read_midi(manifest["outputs"]["midi"])
    sounding = [(s, e) for p in parts for s, e, _, _ in p["notes"] if s < b - 1e-6 and e > a + 1e-6]
    assert not sounding
    for wav in [manifest["outputs"]["wav"], *manifest["outputs"]["stems"].values()]:
        pcm, _ = read_wav(wav)
        assert not pcm[int(a * 48000) : int(b * 48000)].any()
    pcm, _ = read_wav(manifest["outputs"]["wav"])
    assert pcm[: int(a * 48000)].any()


def test_same_seed_same_midi_bytes(model, tmp_path):
    path = edit(tmp_path / "cut.otio", clips=(48, 72, 30), markers=MARKERS[:2])
    one, _ = _run(model, path, tmp_path / "a", seed=7, audio_out=False)
    two, _ = _run(model, path, tmp_path / "b", seed=7, audio_out=False)
    other, _ = _run(model, path, tmp_path / "c", seed=8, audio_out=False)
    data = [open(m["outputs"]["midi"], "rb").read() for m in (one, two, other)]
    assert data[0] == data[1] != data[2]


def test_override_and_cli_with_a_model_file(tmp_path, capsys, model):
    stem = tmp_path / "models" / "tiny"
    stem.parent.mkdir()
    save_shipped(model, stem)
    path = edit(tmp_path / "cut.otio", clips=(48, 72, 30))
    code = main(
        [
            "score",
            str(path),
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(stem),
            "--no-audio",
            "--valence",
            "-0.8",
            "--arousal",
            "0.9",
            "--candidates",
            "1",
            "--seed",
            "4",
            "-q",
        ]
    )
    assert code == 0
    manifest = json.loads(open(capsys.readouterr().out.strip()).read())
    assert manifest["override"] == {"valence": -0.8, "arousal": 0.9}
    assert {s["palette"] for s in manifest["plan"]["sections"]} == {"tense"}
    assert manifest["outputs"]["wav"] is None and manifest["model"]["name"] == "tiny"
    assert any("--no-audio" in w for w in manifest["warnings"])


@pytest.mark.parametrize("args", [["--valence", "1.5"], ["--arousal", "-2"], ["--valence", "x"]])
def test_emotion_out_of_range_is_a_usage_error(tmp_path, args):
    with pytest.raises(SystemExit) as exc:
        main(["score", str(tmp_path / "cut.otio"), *args])
    assert exc.value.code == 2


@pytest.mark.parametrize("content, suffix", [("{ not json", ".otio"), ("hello", ".doc"), (None, ".otio")])
def test_bad_input_is_exit_3_and_leaves_nothing(tmp_path, content, suffix):
    bad = tmp_path / f"bad{suffix}"
    if content is not None:
        bad.write_text(content)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "score", str(bad), "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scorebridge: ")
    assert not out.exists() or not list(out.iterdir())


def test_a_failure_while_rendering_leaves_no_deliverable(model, tmp_path, monkeypatch):
    path = edit(tmp_path / "cut.otio", clips=(48, 72))
    out = tmp_path / "out"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(score_mod.otio_out, "write_scored_otio", broken)
    with pytest.raises(RuntimeError):
        _run(model, path, out)
    assert list(out.iterdir()) == []


def test_the_midi_is_placed_before_the_wav_and_taken_back_if_the_job_then_fails(model, tmp_path, monkeypatch):
    path = edit(tmp_path / "cut.otio", clips=(48, 72), markers=[(30, "hit")])
    out = tmp_path / "out"
    seen = []

    def midi_ready(early_path):
        early = json.loads(Path(early_path).read_text())
        seen.append((early, Path(early["outputs"]["midi"]).read_bytes(), sorted(p.name for p in out.iterdir())))

    final, _ = _run(model, path, out, seed=1, on_midi=midi_ready)
    ((early, midi_then, listing),) = seen
    assert early["stage"] == "midi" and "stage" not in final
    assert early["outputs"]["wav"] is None and early["outputs"]["stems"] is None and final["outputs"]["wav"]
    assert midi_then == Path(final["outputs"]["midi"]).read_bytes()  # the same file, placed early
    assert early["hits"] == final["hits"] and early["tempo_map"] == final["tempo_map"]
    assert "cut.mid" in listing and "cut.notes.json" in listing and "cut.wav" not in listing
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(score_mod.otio_out, "write_scored_otio", broken)  # after the MIDI stage
    seen.clear()
    with pytest.raises(RuntimeError):
        _run(model, path, out, seed=2, on_midi=midi_ready)
    assert seen and seen[0][1] != before["cut.mid"]  # seed 2's MIDI was placed, then taken back
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(RuntimeError):  # with no earlier run, nothing stays
        _run(model, path, tmp_path / "fresh", seed=2, on_midi=midi_ready)
    assert list((tmp_path / "fresh").iterdir()) == []
    # no WAV to come, no MIDI stage: the result is the MIDI
    monkeypatch.undo()
    seen.clear()
    _run(model, path, out, seed=3, audio_out=False, on_midi=midi_ready)
    assert not seen


def test_no_shipped_model_says_so(tmp_path, monkeypatch):
    import bridge.music.model as model_mod

    monkeypatch.setattr(model_mod, "MODELS_DIR", tmp_path / "empty")
    path = edit(tmp_path / "cut.otio", clips=(48, 72))
    code = main(["score", str(path), "--out", str(tmp_path / "out"), "-q"])
    assert code == 4
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_scored_otio_reads_back_without_its_own_markers(model, tmp_path):
    from bridge.timeline import read_timeline

    path = edit(tmp_path / "cut.otio", clips=(48, 72, 30), markers=MARKERS[:1])
    manifest, _ = _run(model, path, tmp_path / "out", audio_out=False)
    again = read_timeline(manifest["outputs"]["otio"])
    original = read_timeline(path)
    assert again.hits == original.hits and again.markers == original.markers
    tl = otio.adapters.read_from_file(manifest["outputs"]["otio"])
    assert [m.name for m in tl.tracks.markers if m.name.startswith("SB: hit")]


@pytest.mark.slow
def test_demo_scores_its_edit_and_says_where_to_listen(tmp_path, capsys, monkeypatch, model):
    import bridge.music.model as model_mod

    (tmp_path / "models").mkdir()
    save_shipped(model, tmp_path / "models" / model_mod.SHIPPED_NAME)
    monkeypatch.setattr(model_mod, "MODELS_DIR", tmp_path / "models")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    captured = capsys.readouterr()
    manifest = json.loads(open(captured.out.strip()).read())
    outputs = manifest["outputs"]
    assert all(Path(outputs[k]).is_file() for k in ("midi", "wav", "otio", "cue_sheet", "preview"))
    assert f"watch and listen: {outputs['preview']}" in captured.err
    assert len(manifest["plan"]["sections"]) >= 6 and manifest["model"]["name"] == model_mod.SHIPPED_NAME


def test_a_second_run_replaces_the_first(model, tmp_path):
    path = edit(tmp_path / "cut.otio", clips=(48, 72))
    first, _ = _run(model, path, tmp_path / "out", seed=1)
    assert Path(first["outputs"]["wav"]).is_file()
    second, _ = _run(model, path, tmp_path / "out", seed=2, audio_out=False)
    assert second["outputs"]["wav"] is None and not Path(first["outputs"]["wav"]).exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cut.cuesheet.png",
        "cut.manifest.json",
        "cut.mid",
        "cut.notes.json",
        "cut.scored.otio",
    ]


def test_staging_folders_a_killed_job_left_are_swept(model, tmp_path):
    """A job killed hard leaves its `.<stem>-XXXX` staging folder; the next run in that
    folder removes those whose process is gone (or, without an owner, a day old), and
    leaves a running job's and other edits' alone."""
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name, pid in ((".cut-dead1", dead.pid), (".cut-busy1", running.pid), (".other-dead1", dead.pid)):
            (out / name).mkdir()
            (out / name / "cut.wav").write_bytes(b"half")
            (out / name / score_mod.OWNER).write_text(
                json.dumps({"pid": pid, "host": score_mod.socket.gethostname(), "started": 0})
            )
        (out / ".cut-old1").mkdir()
        os.utime(out / ".cut-old1", (1, 1))
        (out / ".cut-new1").mkdir()
        path = edit(tmp_path / "cut.otio", clips=(48, 60), markers=[])
        _run(model, path, out, audio_out=False)
        left = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
        assert left == [".cut-busy1", ".cut-new1", ".other-dead1"]
    finally:
        running.kill()
        running.wait()


def test_the_wav_is_placed_before_the_stems_and_taken_back_if_the_job_then_fails(model, tmp_path, monkeypatch):
    path = edit(tmp_path / "cut.otio", clips=(48, 72), markers=[(30, "hit")])
    out = tmp_path / "out"
    seen = []

    def wav_ready(early_path):
        early = json.loads(Path(early_path).read_text())
        seen.append((early, Path(early["outputs"]["wav"]).read_bytes(), sorted(p.name for p in out.iterdir())))

    final, _ = _run(model, path, out, seed=1, on_wav=wav_ready)
    ((early, wav_then, listing),) = seen
    assert early["stage"] == "wav" and early["outputs"]["midi"] and early["outputs"]["stems"] is None
    assert wav_then == Path(final["outputs"]["wav"]).read_bytes()  # the same file, placed early
    assert "cut.wav" in listing and not any(".stem-" in name for name in listing)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(score_mod.otio_out, "write_scored_otio", broken)  # after the WAV stage
    seen.clear()
    with pytest.raises(RuntimeError):
        _run(model, path, out, seed=2, on_wav=wav_ready)
    assert seen and seen[0][1] != before["cut.wav"]  # seed 2's WAV was placed, then taken back
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_without_stems_the_mix_is_written_alone(model, tmp_path):
    path = edit(tmp_path / "cut.otio", clips=(48, 72))
    manifest, _ = _run(model, path, tmp_path / "out", seed=1, stems=False)
    assert manifest["outputs"]["wav"] and Path(manifest["outputs"]["wav"]).is_file()
    assert manifest["outputs"]["stems"] is None and manifest["audio"]["stem_format"] is None
    assert not list((tmp_path / "out").glob("*.stem-*.wav"))
    with_stems, _ = _run(model, path, tmp_path / "out", seed=1)  # and back: the stems come again
    assert with_stems["outputs"]["stems"] and all(Path(p).is_file() for p in with_stems["outputs"]["stems"].values())
