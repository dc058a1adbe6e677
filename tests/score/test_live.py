"""Live regeneration: an update re-writes only the spans the edit changed.

The shipped model writes the music (it is loaded once); the edits have no media, so their
sections come from cuts and mood markers. Each case scores a base edit, edits it, and
checks that everything outside the changed spans is the same MIDI, and that every hit of
the new edit still gets its chord.
"""

import json
from fractions import Fraction

import numpy as np
import pytest

from bridge.score import live
from bridge.render.midi import read_midi
from bridge.score import load_model, score
from bridge.timebase import seconds_to_ticks
from helpers.daemon import Peer, serving
from helpers.scoring import edit

BASE = [48, 72, 60, 96, 50, 70, 64, 80, 40, 90]  # frames at 24 fps: 27.9 s, 9 cuts
MOODS = [(230, "mood: calm"), (450, "mood: auto")]
FAST = {"audio_out": False, "candidates": 1}


@pytest.fixture(scope="module")
def model():
    return load_model("cpu")


@pytest.fixture(scope="module")
def base(model, tmp_path_factory):
    """The first revision: its manifest and the session state it leaves."""
    folder = tmp_path_factory.mktemp("live")
    keep = {"revision": 1}
    manifest, _ = score(
        edit(folder / "base.otio", clips=BASE, markers=MOODS),
        folder / "r1",
        model=model[0],
        model_info=model[1],
        keep=keep,
        **FAST,
    )
    return manifest, keep


def revise(model, base, tmp_path, clips, markers=MOODS, **options):
    keep = {"revision": 2}
    manifest, _ = score(
        edit(tmp_path / "edit.otio", clips=clips, markers=markers),
        tmp_path / "r2",
        model=model[0],
        model_info=model[1],
        previous=base[1],
        keep=keep,
        **{**FAST, **options},
    )
    return manifest


def midi_events(manifest):
    """{(family-named track, tick on, tick off, pitch, velocity)} of the MIDI deliverable."""
    parts, tempo_map, _ = read_midi(manifest["outputs"]["midi"])
    return {
        (
            p["name"],
            seconds_to_ticks(Fraction(n[0]), tempo_map),
            seconds_to_ticks(Fraction(n[1]), tempo_map),
            n[2],
            n[3],
        )
        for p in parts
        for n in p["notes"]
    }, tempo_map


def outside(events, tempo_map, spans, key):
    """The notes that start outside every span (span times in seconds under `tempo_map`),
    a note held into a span ending where the span starts."""
    ranges = [
        (seconds_to_ticks(Fraction(s[key[0]]), tempo_map), seconds_to_ticks(Fraction(s[key[1]]), tempo_map))
        for s in spans
    ]
    return {
        (name, on, min([off] + [a for a, _ in ranges if on < a < off]), pitch, velocity)
        for name, on, off, pitch, velocity in events
        if not any(a <= on < b for a, b in ranges)
    }


def assert_hits_have_chords(manifest):
    onsets = {}
    for part in json.loads(open(manifest["outputs"]["notes"]).read())["parts"]:
        for start, *_ in part["notes"]:
            onsets[round(start * 1000)] = onsets.get(round(start * 1000), 0) + 1
    for hit in manifest["hits"]:
        near = sum(n for ms, n in onsets.items() if abs(ms - hit["seconds"] * 1000) <= 1)
        assert near >= 3, f"no chord on the hit at {hit['seconds']} s"


def assert_kept_identical(old, new):
    """Outside the changed spans: the same notes at the same ticks (nothing old sounds
    inside a span: a note held into one ends where it starts)."""
    spans = new["update"]["spans"]
    old_events, old_map = midi_events(old)
    new_events, new_map = midi_events(new)
    kept_old = outside(old_events, old_map, spans, ("previous_start", "previous_end"))
    kept_new = outside(new_events, new_map, spans, ("start", "end"))
    assert kept_old == kept_new, (sorted(kept_old - kept_new)[:6], sorted(kept_new - kept_old)[:6], spans)
    assert len(kept_new) == new["update"]["kept_notes"]


def test_an_unchanged_edit_keeps_every_note(model, base, tmp_path):
    new = revise(model, base, tmp_path, BASE)
    assert new["update"]["mode"] == "partial" and new["update"]["spans"] == []
    assert midi_events(new) == midi_events(base[0])


def test_a_moved_cut_rewrites_only_the_two_shots_around_it(model, base, tmp_path):
    clips = BASE[:4] + [62, 58] + BASE[6:]  # the cut at frame 326 moves 12 frames later
    new = revise(model, base, tmp_path, clips)
    update = new["update"]
    assert update["mode"] == "partial" and update["retimed"] == []
    assert [(s["start_frame"], s["end_frame"], s["what"]) for s in update["spans"]] == [(276, 396, "cut(s) moved")]
    assert new["tempo_map"] == base[0]["tempo_map"]
    assert_kept_identical(base[0], new)
    assert update["written_notes"] > 0
    assert_hits_have_chords(new)
    assert 338 in [h["frame"] for h in new["hits"]]


def test_a_ripple_trim_retimes_the_span_and_keeps_the_ticks_after_it(model, base, tmp_path):
    clips = BASE[:4] + [38] + BASE[5:]  # 12 frames out: everything after moves up
    new = revise(model, base, tmp_path, clips)
    update = new["update"]
    assert update["mode"] == "partial"
    assert len(update["retimed"]) == 1 and update["retimed"][0]["bpm"] != update["retimed"][0]["was_bpm"]
    assert 1 / live.MAX_STRETCH <= update["retimed"][0]["bpm"] / update["retimed"][0]["was_bpm"] <= live.MAX_STRETCH
    assert new["tempo_map"] != base[0]["tempo_map"]
    assert new["duration_seconds"] == pytest.approx(base[0]["duration_seconds"] - 0.5)
    assert_kept_identical(base[0], new)
    assert_hits_have_chords(new)


@pytest.mark.parametrize(
    "clips, markers, where",
    [
        (BASE[:6] + [30, 34] + BASE[7:], MOODS, (396, 450)),  # a cut added at 426
        (BASE[:2] + [156] + BASE[4:], MOODS, (120, 230)),  # the cut at 180 removed
        (BASE, [(230, "mood: tense"), (450, "mood: auto")], (230, 450)),  # a mood marker changed
    ],
)
def test_added_removed_cuts_and_mood_changes_rewrite_their_span(model, base, tmp_path, clips, markers, where):
    new = revise(model, base, tmp_path, clips, markers)
    spans = new["update"]["spans"]
    assert new["update"]["mode"] == "partial" and spans
    assert any(s["start_frame"] <= where[0] and where[1] <= s["end_frame"] for s in spans)
    changed = sum(s["end_frame"] - s["start_frame"] for s in spans)
    assert changed < 0.5 * sum(clips)
    assert_kept_identical(base[0], new)
    assert_hits_have_chords(new)


def test_changed_options_or_no_previous_revision_score_the_whole_edit(model, base, tmp_path):
    new = revise(model, base, tmp_path, BASE, seed=7)
    assert new["update"] == {"mode": "full", "reason": "the scoring options changed since the last revision"}
    keep = {"revision": 1}
    first, _ = score(
        edit(tmp_path / "e.otio", clips=BASE), tmp_path / "o", model=model[0], model_info=model[1], keep=keep, **FAST
    )
    assert first["update"]["mode"] == "full" and "no earlier revision" in first["update"]["reason"]
    assert keep["plan"].duration_s == pytest.approx(sum(BASE) / 24)


def test_the_diff_finds_a_moved_cut_as_one_block(model):
    from bridge.plan import make_plan

    class Hit:
        def __init__(self, frame):
            self.frame, self.source = frame, "cut"

    sections = [{"start": 0, "end": 480, "valence": 0.2, "arousal": 0.1}]
    old = make_plan([Hit(f) for f in (100, 200, 300)], sections, 24, 480)
    new = make_plan([Hit(f) for f in (100, 212, 300)], sections, 24, 480)
    assert live.diff(old, new) == [
        ("keep", 0, 100, 0, 100),
        ("change", 100, 300, 100, 300),
        ("keep", 300, 480, 300, 480),
    ]


def test_a_hair_of_mood_change_keeps_the_old_mood_and_the_music_outside_the_moved_cut(model):
    """Re-analysed shots whose mood moved by a hair across a mood step keep the last
    revision's mood (hysteresis), so only the gaps around the moved cut change; a real
    change of mood is taken."""
    from bridge.plan import make_plan

    class Hit:
        def __init__(self, frame):
            self.frame, self.source = frame, "cut"

    old_sections = [
        {"start": 0, "end": 240, "valence": 0.12, "arousal": 0.1},
        {"start": 240, "end": 480, "valence": -0.5, "arousal": 0.6},
    ]
    new_sections = [
        {"start": 0, "end": 240, "valence": 0.13, "arousal": 0.08},  # a hair, across 0.125
        {"start": 240, "end": 480, "valence": -0.1, "arousal": 0.6},
    ]  # a real change
    old = make_plan([Hit(f) for f in (100, 200, 300)], old_sections, 24, 480)
    held = live.hold_moods(old, new_sections)
    assert [(r["valence"], r["arousal"]) for r in held] == [(0.12, 0.1), (-0.1, 0.6)]
    hits = [Hit(f) for f in (112, 200, 300)]
    literal = live.diff(old, make_plan(hits, new_sections[:1] + old_sections[1:], 24, 480))
    steady = live.diff(old, make_plan(hits, live.hold_moods(old, new_sections[:1] + old_sections[1:]), 24, 480))
    assert literal == [("change", 0, 240, 0, 240), ("keep", 240, 480, 240, 480)]  # the whole section
    assert steady == [("change", 0, 200, 0, 200), ("keep", 200, 480, 200, 480)]  # the two gaps only


@pytest.mark.slow
def test_daemon_updates_partially_skips_stale_bursts_and_falls_back_after_a_restart(tmp_path):
    clips = [
        edit(tmp_path / f"rev{i}.otio", clips=BASE[:4] + [50 + 2 * i, 70 - 2 * i] + BASE[6:], markers=MOODS)
        for i in range(6)
    ]
    out = str(tmp_path / "out")
    options = json.dumps({"audio": False, "candidates": 1})

    def update(peer, revision):
        peer.send("update", peer.token, "reel1", revision, str(clips[revision]), out, options)

    with serving(tmp_path / "config") as daemon:
        peer = Peer(daemon)
        update(peer, 0)
        name, args = peer.replies({"done", "error"})[-1]
        assert name == "done" and json.loads(open(args[1]).read())["update"]["mode"] == "full"
        for revision in (1, 2, 3, 4):  # a burst of edits: only the newest is scored
            update(peer, revision)
        finals = {}
        while len(finals) < 4:
            got = peer.replies({"done", "error"})
            assert got, f"no final reply for every revision: {finals}"
            name, args = got[-1]
            finals[args[0]] = (name, args[1])
        assert [finals[f"reel1:{r}"][1] for r in (1, 2, 3)] == ["stale"] * 3
        assert finals["reel1:4"][0] == "done"
        manifest = json.loads(open(finals["reel1:4"][1]).read())
        assert manifest["update"]["mode"] == "partial" and manifest["update"]["previous_revision"] == 0
        peer.close()
    with serving(tmp_path / "config") as daemon:  # a restarted daemon knows no session
        peer = Peer(daemon)
        update(peer, 5)
        name, args = peer.replies({"done", "error"})[-1]
        assert name == "done"
        manifest = json.loads(open(args[1]).read())
        assert manifest["update"]["mode"] == "full" and "no earlier revision" in manifest["update"]["reason"]
        peer.close()


def test_a_partial_update_draws_through_the_engine_as_a_full_score_does(model, base, tmp_path, monkeypatch):
    """Live spans and full scores share one draw: engine.draw, once, with the update's plan
    and the session's seed."""
    from bridge.music import engine

    calls, real = [], engine.draw
    monkeypatch.setattr(engine, "draw", lambda m, plan, seed: calls.append((m, plan, seed)) or real(m, plan, seed))
    new = revise(model, base, tmp_path, BASE[:2] + [66] + BASE[3:])
    assert new["update"]["mode"] == "partial" and new["update"]["spans"]
    assert len(calls) == 1 and calls[0][0] is model[0] and calls[0][2] == 1
    assert {n.family for n in real(model[0], calls[0][1], 1).notes} >= {"pad", "bass", "melody"}


def test_a_moved_cut_renders_only_its_stretch_of_audio_and_sounds_as_a_whole_render(model, tmp_path):
    """With audio: the update takes the last revision's audio over, renders a few seconds
    of it again, and its WAV (and every stem) equals its own MIDI rendered whole within
    -40 dB; a failed hand-over leaves nothing for the next revision to splice into."""
    audio = pytest.importorskip("bridge.render.audio")
    try:
        audio.pick_synth()
    except audio.NoSynthesizer as exc:
        pytest.skip(f"no audio here: {exc}")
    keep = {"revision": 1}
    first, _ = score(
        edit(tmp_path / "base.otio", clips=BASE, markers=MOODS),
        tmp_path / "r1",
        model=model[0],
        model_info=model[1],
        keep=keep,
        candidates=1,
    )
    assert keep["mix"] is not None and first["audio"]["rendered_seconds"] > 0
    clips = BASE[:4] + [62, 58] + BASE[6:]
    after = {"revision": 2}
    second, _ = score(
        edit(tmp_path / "edit.otio", clips=clips, markers=MOODS),
        tmp_path / "r2",
        model=model[0],
        model_info=model[1],
        previous=keep,
        keep=after,
        candidates=1,
    )
    assert second["update"]["mode"] == "partial"
    assert "mix" not in keep and after["mix"] is not None  # handed over, then kept anew
    assert 0 < second["audio"]["rendered_seconds"] < 0.5 * first["audio"]["rendered_seconds"]
    whole = audio.mix(
        second["outputs"]["midi"], second["duration_seconds"], tacet=[tuple(t) for t in second["plan"]["tacet"]]
    )
    spliced, _ = audio.read_wav(second["outputs"]["wav"])
    _, _, reference, _ = audio.master(whole)
    error = np.sqrt(np.mean(np.square(spliced - reference, dtype=np.float64)))
    assert 20 * np.log10(error / np.sqrt(np.mean(np.square(reference, dtype=np.float64)))) < -40
    for role, path in second["outputs"]["stems"].items():
        stem, _ = audio.read_wav(path)
        expected = whole.roles[role] * audio.envelope(whole)[:, None]
        assert np.sqrt(np.mean(np.square(stem - expected))) <= 0.01 * np.sqrt(np.mean(np.square(expected))) + 1e-6
