"""mma's grooves as corpus works: drums, bass and chords with their families, repeatable,
split by style; augmentation leaves drums where they are."""

import os
import pickle
import shutil
import subprocess
import sys
from collections import Counter

import mido
import numpy as np
import pytest

from bridge.music import corpus, grooves
from bridge.music.data import augment

needs_mma = pytest.mark.skipif(
    not (grooves.MMA_STDLIB.is_dir() and shutil.which("mma")),
    reason="Debian's mma is not installed (apt-get install mma)",
)


@needs_mma
def test_the_library_gives_looping_grooves_each_once():
    names = grooves.groove_names()
    assert len(names) > 300
    found = {g.lower() for _, g in names}
    assert {"ballad", "bossanova", "swing", "waltz"} <= found
    assert len(found) == len(names)
    assert not any(grooves.NOT_LOOPS.search(g) for _, g in names)
    assert ("ballad", "Ballad1") in names  # with the library file it comes from


@needs_mma
def test_a_groove_renders_drums_bass_and_chords_the_same_every_time():
    chart = grooves.chart_for("Bossanova", "minor")
    assert chart == grooves.chart_for("Bossanova", "minor") and len(chart) == 16
    parts, families, qpm = grooves.render("Bossanova", chart, seed=3)
    again = grooves.render("Bossanova", chart, seed=3)
    assert families == again[1] and all(np.array_equal(a, b) for a, b in zip(parts, again[0]))
    assert qpm == pytest.approx(grooves.TEMPO)
    assert {"drums", "bass"} <= set(families)
    drums = parts[families.index("drums")]
    assert 35 <= drums[:, 2].min() and drums[:, 2].max() <= 81  # General MIDI drum keys
    beats = 4 * 16  # 16 bars of 4/4
    assert 0 <= drums[:, 0].min() and drums[:, 0].max() < beats
    # the bass starts on the chart's first root (A minor: pitch class 9)
    bass = parts[families.index("bass")]
    assert int(bass[np.argmin(bass[:, 0]), 2]) % 12 == 9


@needs_mma
def test_a_groove_mma_does_not_know_is_refused_with_its_name():
    with pytest.raises(RuntimeError, match="NoSuchGroove"):
        grooves.render("NoSuchGroove", ["C", "G"])


def test_track_roles_decide_the_family_before_the_program():
    f = grooves.family_of_track
    assert f("Drum", 9, 0) == "drums" and f("Drum-Snare", 9, 0) == "drums"
    assert f("Bass", 15, 26) == "bass" and f("Walk", 13, 32) == "bass"  # a guitar bass line
    assert f("Chord-Piano", 13, 2) == "piano" and f("Chord-Sax", 12, 66) == "pad"
    assert f("Solo", 11, 73) == "melody" and f("Other", 3, 40) == "pad"  # no role: program


def test_midi_parts_carry_the_family_of_their_track(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=96)
    for name, channel, program, note in (("Drum", 9, 0, 36), ("Bass", 2, 26, 45), ("Chord", 1, 0, 60)):
        track = mido.MidiTrack(
            [
                mido.MetaMessage("track_name", name=name),
                mido.Message("program_change", channel=channel, program=program),
                mido.Message("note_on", channel=channel, note=note, velocity=90, time=0),
                mido.Message("note_off", channel=channel, note=note, time=48),
            ]
        )
        mid.tracks.append(track)
    mid.save(tmp_path / "m.mid")
    parts, _, families = corpus.midi_to_parts(tmp_path / "m.mid", family=grooves.family_of_track)
    assert families == ["drums", "bass", "piano"]
    assert [p[0].tolist() for p in parts] == [[0.0, 0.5, 36.0], [0.0, 0.5, 45.0], [0.0, 0.5, 60.0]]
    assert len(corpus.midi_to_parts(tmp_path / "m.mid")) == 2  # without `family`, as before


def _groove_work():
    beat = np.arange(16, dtype=np.float32)
    drums = np.stack([beat, np.full(16, 0.25), np.where(beat % 2 == 0, 36, 38)], 1).astype(np.float32)
    bass = np.stack([beat, np.ones(16), np.full(16, 45)], 1).astype(np.float32)
    chords = np.stack([np.repeat(beat[::4], 3), np.full(12, 4.0), np.tile([69, 72, 76], 4)], 1).astype(np.float32)
    return {
        "id": "mma/x/X/minor",
        "collection": "mma",
        "qpm": 100.0,
        "parts": [drums, bass, chords],
        "families": ["drums", "bass", "pad"],
        "split": "train",
    }


def test_augmenting_a_groove_keeps_its_families_and_never_moves_a_drum():
    work = _groove_work()
    for transpose, octave in ((5, 12), (-5, -12), (3, 0)):
        notes = augment(
            work,
            np.random.default_rng(0),
            start_q=0.0,
            fixed={"qpm": 100.0, "level": 2, "transpose": transpose, "octave": octave, "scheme": "piano"},
        )  # a scheme would reassign a score's families
        fams = Counter(n.family for n in notes)
        assert fams == {"drums": 16, "bass": 16, "pad": 12}
        assert sorted({n.pitch for n in notes if n.family == "drums"}) == [36, 38]
        assert {n.pitch for n in notes if n.family == "bass"} == {45 + transpose + octave}


def test_a_groove_keeps_its_split_in_the_assembled_corpus(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CORPUS_DIR", tmp_path)
    g = _groove_work()
    g["split"] = "test"
    abc = {"id": "essenFolksong/x.abc#1", "collection": "essenFolksong", "qpm": None, "parts": g["parts"][1:2]}
    works = corpus.assemble([abc], log=lambda s: None, groove_works=[g])
    assert [w["split"] for w in works] == [corpus.split_of(abc["id"]), "test"]
    assert corpus.load_corpus(tmp_path / "corpus.pkl")[1]["families"] == g["families"]


def test_a_cache_file_cut_short_is_made_again_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CORPUS_DIR", tmp_path)
    (tmp_path / "m21").mkdir()
    whole = {"rel": "bach/x.mxl", "works": [{"qpm": None, "parts": _groove_work()["parts"][1:2]}]}
    (tmp_path / "m21" / "bach__x.mxl.pkl").write_bytes(pickle.dumps(whole))
    (tmp_path / "m21" / "bach__y.mxl.pkl").write_bytes(pickle.dumps(whole)[:40])  # cut short
    logs = []
    works = corpus.assemble([], log=logs.append)
    assert [w["id"] for w in works] == ["bach/x.mxl"]
    assert not (tmp_path / "m21" / "bach__y.mxl.pkl").exists()  # parsed again by the next run
    assert any("unreadable cache bach__y.mxl.pkl" in s for s in logs)
    (tmp_path / "abc.pkl").write_bytes(b"\x80\x04 cut")
    assert corpus._cached("abc.pkl", lambda: ["made again"], logs.append) == ["made again"]
    assert corpus._cached("abc.pkl", lambda: ["not called"], logs.append) == ["made again"]


def test_corpus_without_mma_says_what_to_install(tmp_path):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable), "SCOREBRIDGE_CORPUS": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "train", "corpus", "--grooves"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "apt-get install mma" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "corpus.pkl").exists()


def test_the_grooves_share_of_training_windows_is_what_is_asked():
    from bridge.music.data import Batcher

    score = {"id": "bach/x", "collection": "bach", "qpm": None, "parts": _groove_work()["parts"][1:]}
    works = [_groove_work() for _ in range(3)] + [dict(score, id=f"bach/{i}") for i in range(5)]
    grooves = np.array([w["collection"] == "mma" for w in works])
    plain = Batcher(works, 64)
    assert plain.weights[grooves].sum() == pytest.approx(3 * 44**1 / (3 * 44 + 5 * 28), rel=1e-6)
    for share in (0.0, 0.1, 0.5):
        b = Batcher(works, 64, groove_share=share)
        assert b.weights.sum() == pytest.approx(1.0)
        assert b.weights[grooves].sum() == pytest.approx(share)
        # within each side, works keep their weights' proportions
        assert np.allclose(
            b.weights[~grooves] / b.weights[~grooves].sum(), plain.weights[~grooves] / plain.weights[~grooves].sum()
        )
    only_scores = Batcher(works[3:], 64, groove_share=0.5)  # no grooves: nothing to share
    assert np.allclose(only_scores.weights, plain.weights[3:] / plain.weights[3:].sum())


def test_training_on_scores_and_grooves_records_the_share(tmp_path):
    import json
    from bridge.music.model import MusicConfig
    from bridge.music.train import TrainConfig, train

    score = {"id": "bach/x", "collection": "bach", "qpm": 90.0, "parts": _groove_work()["parts"][1:]}
    works = [dict(_groove_work(), id=f"mma/x/X{i}/minor") for i in range(2)] + [
        dict(score, id=f"bach/{i}") for i in range(4)
    ]
    lines = []
    cfg = TrainConfig(
        out_dir=str(tmp_path / "run"),
        steps=2,
        batch_size=4,
        warmup=1,
        eval_every=2,
        eval_windows=2,
        log_every=1,
        bf16=False,
        groove_share=0.3,
        model=MusicConfig(block_size=64, n_layer=1, n_head=2, n_embd=64, n_cond=16),
    )
    train(cfg, works, works[2:4], log=lines.append)
    assert any("2 groove works (mma) among the training works: 30% of the windows" in s for s in lines)
    meta = json.loads((tmp_path / "run" / "scorebridge-music.json").read_text())
    assert meta["train"]["groove_works"] == 2 and meta["train"]["groove_share"] == 0.3


def test_strummed_chords_are_struck_at_once_and_drums_keep_their_feel():
    strum = np.array(
        [
            [0.0, 4.0, 60],
            [0.03, 3.97, 64],
            [0.07, 3.93, 67],  # one chord, strummed
            [1.0, 0.5, 48],
            [1.5, 0.5, 50],  # a line, 0.5 q apart
            [2.0, 1.0, 72],
            [2.04, 1.2, 72],
        ],
        dtype=np.float32,
    )  # one pitch struck twice
    drums = np.array([[0.0, 0.1, 36], [0.05, 0.1, 42]], dtype=np.float32)
    pad, kit = grooves.line_up_chords([strum, drums], ["pad", "drums"])
    assert kit is drums  # flams stay
    assert pad[:3, 0].tolist() == [0.0, 0.0, 0.0]
    assert np.allclose(pad[:3, 0] + pad[:3, 1], 4.0)  # each still ends where it did
    assert pad[3:5, 0].tolist() == [1.0, 1.5]
    assert len(pad) == 6 and pad[5, 0] == 2.0 and pad[5, 1] == pytest.approx(1.24)  # once, the longer
    # a chord is one only if it starts within the spread of its first note, not chained on
    slow = np.array([[0.0, 1, 60], [0.08, 1, 64], [0.16, 1, 67]], dtype=np.float32)
    assert grooves.line_up_chords([slow], ["piano"])[0][:, 0].tolist() == pytest.approx([0.0, 0.0, 0.16])


@needs_mma
def test_a_rendered_groove_strikes_its_chords_together():
    parts, families, _ = grooves.render("Ballad", grooves.chart_for("Ballad", "major"), seed=2)
    for part, family in zip(parts, families):
        if family in ("pad", "piano"):
            onsets = np.unique(part[:, 0])
            assert np.diff(onsets).min() > grooves.CHORD_SPREAD_Q
