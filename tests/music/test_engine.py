"""The layered music engine on small fixed edits: key and tempo, harmony, arrangement, melody,
and the measures that judge them (MUSIC.md §1). The shipped weights are used as they ship."""

from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch

from bridge.eval import cues as eval_cues
from bridge.eval import measures
from bridge.music import arrangement, engine, harmony, melody
from bridge.music.theory import QUALITY_NAMES, best_chord, parse_key
from bridge.plan import make_plan
from bridge.timebase import seconds_to_beats


@pytest.fixture(scope="module")
def model():
    from bridge.score import load_model

    return load_model("cpu")[0]


def _cue(valence, arousal, seconds=40, cuts=6, rate=25, name="1M1", key=None):
    duration = seconds * rate
    hits = [SimpleNamespace(frame=int(duration * (k + 1) / (cuts + 1)), source="cut", name="") for k in range(cuts)]
    sections = [{"start": 0, "end": duration, "valence": valence, "arousal": arousal, "tacet": False}]
    return make_plan(hits, sections, rate, duration, cue=name, key=key)


CORNERS = {"bright": (0.7, 0.7), "warm": (0.6, -0.6), "dark": (-0.7, -0.6), "tense": (-0.6, 0.8)}


@pytest.fixture(scope="module")
def corners(model):
    out = {}
    for name, (v, a) in CORNERS.items():
        plan = _cue(v, a)
        out[name] = (plan, engine.draw(model, plan, seed=3))
    return out


# --- key and tempo ---------------------------------------------------------------------------


def test_keys_parse_and_the_key_option_sets_the_cue_key():
    assert parse_key("E minor") == (4, "minor") and parse_key("Bb") == (10, "major")
    assert parse_key("f# min") == (6, "minor") and parse_key("Ebm") == (3, "minor")
    with pytest.raises(ValueError, match="not a key"):
        parse_key("H major")
    plan = _cue(0.5, 0.0, key="F# minor")
    assert plan.key == "F# minor" and all(s.tonic == 6 for s in plan.sections)


def test_a_reel_of_seven_cues_is_not_in_one_key():
    tonics = {_cue(0.5, 0.3, seconds=20 + 7 * k, cuts=3 + k, name=f"1M{k + 1}").tonic for k in range(7)}
    assert len(tonics) >= 3


def test_negative_valence_takes_the_parallel_minor():
    rate, duration = 25, 500
    sections = [
        {"start": 0, "end": 250, "valence": 0.6, "arousal": 0.0, "tacet": False},
        {"start": 250, "end": 500, "valence": -0.6, "arousal": 0.0, "tacet": False},
    ]
    plan = make_plan([SimpleNamespace(frame=250, source="cut", name="")], sections, rate, duration, key="G major")
    assert [(s.tonic, s.mode) for s in plan.sections] == [(7, "major"), (7, "minor")]


def test_the_meter_stays_steady_and_hits_land_on_beats():
    plan = _cue(0.2, 0.5, seconds=60, cuts=9)
    assert len(plan.tempo["time_signatures"]) == 1 and plan.tempo["time_signatures"][0][1:] == (4, 4)
    for h in plan.hits:
        beat = seconds_to_beats(Fraction(h.seconds), plan.tempo["tempo_map"])
        assert abs(beat - round(beat)) * plan.tempo["bpm"] / 60 * 25 <= 1.01  # within a frame


# --- harmony ---------------------------------------------------------------------------------


def test_the_chord_model_learned_cadences():
    """Before a phrase end (offset 0) after ii and V in major, the chorales' answer is I."""
    chord_model = harmony.load()
    ii, v = harmony.chord_id(2, QUALITY_NAMES.index("min")), harmony.chord_id(7, QUALITY_NAMES.index("maj"))
    tonic = harmony.chord_id(0, QUALITY_NAMES.index("maj"))
    with torch.no_grad():
        p_end = torch.softmax(chord_model(torch.tensor([[ii, v, 0, 0]])), -1)[0]
        p_mid = torch.softmax(chord_model(torch.tensor([[ii, v, 0, 5]])), -1)[0]
    assert p_end[tonic] > 0.4 and p_end[tonic] > p_mid[tonic]


def test_every_hit_gets_its_own_chord_on_its_frame(corners):
    for plan, drawn in corners.values():
        hit_chords = [c for c in drawn.chords if c.hit is not None]
        assert sorted(c.hit for c in hit_chords) == list(range(len(plan.hits)))
        for c in hit_chords:
            assert c.start == plan.hits[c.hit].seconds
            pad = {n.pitch % 12 for n in drawn.notes if n.family == "pad" and n.start == c.start}
            assert pad == set(c.pcs) and len(pad) >= 3


def test_the_harmony_moves_and_the_hit_chords_vary(corners):
    for plan, drawn in corners.values():
        chords = drawn.chords
        assert all(a.numeral != b.numeral or a.root != b.root for a, b in zip(chords, chords[1:]) if b.hit is None)
        assert len({(c.root, c.quality) for c in chords if c.hit is not None}) >= 3
        assert 1.0 <= harmony_run(chords) <= 4.5


def harmony_run(chords):
    return sum(c.end - c.start for c in chords) / len(chords)


def test_dark_harmony_uses_the_flat_side():
    plan = _cue(-0.7, -0.6, seconds=60)
    numerals = [c.numeral for seed in (1, 2) for c in harmony.progression(plan, seed)]
    assert any(n.startswith(("bVI", "bIII", "bVII", "iv")) for n in numerals)


def test_away_from_hits_the_progression_is_a_four_chord_loop_that_comes_round():
    for valence, arousal in ((0.6, -0.6), (-0.7, 0.7), (0.05, 0.0)):
        plan = _cue(valence, arousal, seconds=60, cuts=0)
        s = plan.sections[0]
        tempo_map = plan.tempo["tempo_map"]
        loop = harmony.loop_beats(s.arousal, harmony._bpm_at(0, tempo_map))
        assert loop == max(8, 4 * harmony.chord_beats(s.arousal, harmony._bpm_at(0, tempo_map)))
        chords = harmony.progression(plan, seed=3)
        at = {c.start_beat: (c.root, c.quality) for c in chords}
        again = [(b, c) for b, c in at.items() if b >= loop and b - loop in at]
        assert len(again) >= 4
        # the last chord or two before the cue's end cadence; every other one is the loop's
        closing = sorted(at)[-2:]
        assert all(c == at[b - loop] for b, c in again if b not in closing)
        assert len({at[b] for b in at if b < loop}) >= min(3, len([b for b in at if b < loop]))


def test_a_cue_ends_on_a_cadence_into_its_tonic():
    for valence, arousal in ((0.6, -0.6), (-0.7, 0.7), (0.7, 0.7), (-0.7, -0.6)):
        plan = _cue(valence, arousal, seconds=30, cuts=3)
        for seed in (1, 2, 3):
            chords = harmony.progression(plan, seed)
            last, before = chords[-1], chords[-2]
            if last.hit is not None:
                continue  # a hit at the very end strikes its own chord
            s = plan.sections[last.section]
            assert last.root == s.tonic and last.quality == ("maj" if s.mode == "major" else "min")
            assert before.root != s.tonic  # a cadence into it (a hit's tonic just before rings on instead)


# --- arrangement -----------------------------------------------------------------------------


def test_bass_is_the_lowest_voice_and_nothing_is_out_of_range(corners):
    for plan, drawn in corners.values():
        cue = eval_cues.cue_of_plan(plan)
        assert measures.bass_not_lowest_share(drawn.notes, cue) == 0.0
        assert measures.out_of_range_share(drawn.notes, cue) == 0.0
        bass = [n.pitch for n in drawn.notes if n.family == "bass"]
        assert bass and max(bass) <= 50


def test_onsets_sit_on_the_grid(corners):
    for plan, drawn in corners.values():
        assert measures.on_grid_share(drawn.notes, eval_cues.cue_of_plan(plan)) >= 0.95


def test_percussion_when_excited_and_none_when_calm(corners):
    for name in ("bright", "tense"):
        plan, drawn = corners[name]
        assert measures.percussion_rate(drawn.notes, eval_cues.cue_of_plan(plan)) >= 2.0
        timpani = [n for n in drawn.notes if n.family == "timpani"]
        assert timpani and all(40 <= n.pitch <= 57 for n in timpani)
        # tuned to the key: tonic and dominant only
        assert {n.pitch % 12 for n in timpani} <= {plan.tonic, (plan.tonic + 7) % 12}
    assert [n for n in corners["tense"][1].notes if n.family == "taiko"]
    for name in ("warm", "dark"):
        assert not [n for n in corners[name][1].notes if n.family in ("drums", "timpani", "taiko")]


def test_percussion_phrases_the_music_fills_crashes_and_timpani_where_phrases_begin():
    plan = _cue(0.7, 0.7, seconds=40, cuts=0)  # bright and driving, no hits to interrupt
    chords = harmony.progression(plan, 3)
    notes = arrangement.arrange(plan, chords, 3)
    laid_out = arrangement.bars(plan)
    starts = [b for b, _ in laid_out]

    def bar_of(beat):
        return max(i for i, b in enumerate(starts) if b <= beat)

    kit = [n for n in notes if n.role == "percussion"]
    toms = {bar_of(n.start) for n in kit if n.pitch in (41, 43, 45, 47, 50)}
    crashes = {bar_of(n.start) for n in kit if n.pitch == 49}
    timpani = {bar_of(n.start) for n in notes if n.role == "timpani"}
    phrases = len(laid_out) // 4
    assert phrases >= 3
    # a fill in the last bar of every phrase that has music after it, and only there
    assert toms == {4 * k + 3 for k in range(phrases) if 4 * k + 4 < len(laid_out)}
    # a crash opens every phrase after the first; the timpani play where phrases begin
    assert crashes == {4 * k for k in range(1, phrases + (len(laid_out) % 4 > 0))}
    assert timpani == {4 * k for k in range(phrases + (len(laid_out) % 4 > 0))}
    # the fill rises into the next phrase
    for bar in toms:
        fill = sorted((n for n in kit if bar_of(n.start) == bar and n.start >= starts[bar] + 2), key=lambda n: n.start)
        assert fill[-1].velocity > fill[0].velocity


def test_taiko_build_through_each_phrase():
    plan = _cue(-0.6, 0.8, seconds=40, cuts=0)  # tense: taiko under the kit
    notes = arrangement.arrange(plan, harmony.progression(plan, 3), 3)
    starts = [b for b, _ in arrangement.bars(plan)]
    per_bar = {}
    for n in notes:
        if n.role == "taiko":
            bar = max(i for i, b in enumerate(starts) if b <= n.start)
            per_bar[bar] = per_bar.get(bar, 0) + 1
    full = len(arrangement.data("patterns.json")["percussion"]["taiko"]["4/4"]["steps"])
    assert full > 2
    for bar in range(len(starts) - 1):  # the last bar may be cut short by the cue's end
        assert per_bar.get(bar) == (2 if bar % 4 < 2 else full), (bar, per_bar)


def test_orchestral_percussion_has_tracks_of_its_own(corners):
    from bridge.score.compose import to_parts

    plan, drawn = corners["tense"]
    names = [p["name"] for p in to_parts(drawn.notes, plan)]
    assert "Timpani (percussion)" in names and "Taiko Drum (percussion)" in names
    assert "Drums (percussion)" in names and all(n.endswith(")") for n in names)


def test_struck_notes_decay_and_excited_cues_drive(corners):
    for plan, drawn in corners.values():
        assert measures.long_decaying_share(drawn.notes, eval_cues.cue_of_plan(plan)) in (None, 0.0)
    calm = len(corners["warm"][1].notes) / corners["warm"][0].duration_s
    excited = len(corners["bright"][1].notes) / corners["bright"][0].duration_s
    assert excited > 3 * calm


def test_pad_voicings_move_by_small_steps():
    plan = _cue(0.6, -0.2, seconds=40)
    chords = harmony.progression(plan, 1)
    voicings = arrangement.voice_pad(chords, 48, 67)
    moves = [sum(min(abs(x - y) for y in a) for x in b) / len(b) for a, b in zip(voicings, voicings[1:])]
    assert all(48 <= p <= 67 for v in voicings for p in v)
    assert sum(moves) / len(moves) <= 3.0


# --- melody ----------------------------------------------------------------------------------


def test_motifs_are_chosen_for_their_shape_not_their_noodling():
    def motif(steps, lengths=None):
        lengths = lengths or [Fraction(1, 2)] * len(steps)
        onsets = [sum(lengths[:i], Fraction(0)) for i in range(len(steps))]
        return melody.Motif(tuple(zip(onsets, lengths, steps)), "model")

    tune = motif([0, 1, 2, 4, 3, 2, 1, 0], [Fraction(1, 2)] * 7 + [Fraction(2)])
    noodle = motif([0, -1, 0, -1, 0, -1, 0, 0])
    drone = motif([0, 0, 0, 0, 1, 0, 0, 0])
    scale_run = motif(list(range(0, 15, 2)))
    fallback = melody._fallback(0)
    ranked = sorted([noodle, drone, scale_run, tune, fallback], key=lambda m: melody.shape((m, m)), reverse=True)
    assert ranked[0] is tune and ranked[-1] is fallback
    assert melody.shape((tune, tune)) > melody.shape((noodle, noodle)) and melody.shape((tune, tune)) > melody.shape(
        (drone, drone)
    )


def test_the_motif_comes_back(corners):
    for plan, drawn in corners.values():
        cue = eval_cues.cue_of_plan(plan)
        assert measures.sounding_share(drawn.notes, cue, "melody") >= 0.5
        assert measures.motif_reuse(drawn.notes, cue) > 0.0
        assert all(s in ("model", "fallback") for pair in drawn.motif_sources.values() for s in pair)


def test_a_motif_is_restated_note_for_note_over_the_same_chord():
    motif = melody.Motif(
        (
            (Fraction(0), Fraction(1), 0),
            (Fraction(1), Fraction(1), 1),
            (Fraction(2), Fraction(2), 2),
            (Fraction(4), Fraction(4), 0),
        ),
        "model",
    )
    plan = _cue(0.5, 0.0, seconds=24, cuts=0, key="C major")
    chord = harmony.ChordSpan(Fraction(0), Fraction(1000), 0.0, plan.duration_s, 0, "maj", "I", 0)
    line = melody.write(plan, [chord], {plan.sections[0].palette_name: (motif, motif)}, seed=1).notes
    # the next phrase the form gives to A (A A B A over a two-bar loop, A B A B over four)
    s = plan.sections[0]
    form = melody.FORM[harmony.loop_beats(s.arousal, harmony._bpm_at(0, plan.tempo["tempo_map"]))]
    at = 8 * form.index("A", 1)
    first, again = [n for n in line if n.start < 8], [n for n in line if at <= n.start < at + 8]
    assert [n.pitch for n in first] == [n.pitch for n in again]
    assert [n.start + at for n in first] == [n.start for n in again]


def test_a_phrase_over_harmony_heard_before_comes_back_whole():
    # Two-bar phrases in a form of four; the second and sixth phrases (the same motif and
    # the same place in a question-and-answer pair, whatever the form) have the same chords
    # (iii–IV). Re-fitting the motif from the phrase before gave another line there.
    a = melody.Motif(
        tuple((Fraction(k), Fraction(1), step) for k, step in enumerate((0, 1, 2, 1, 4, 3, 2, 1))), "model"
    )
    b = melody.Motif(tuple((Fraction(2 * k), Fraction(2), step) for k, step in enumerate((0, -2, -3, -4))), "model")
    plan = _cue(0.5, 0.0, seconds=40, cuts=0, key="C major")
    numerals = {0: "I", 2: "ii", 4: "iii", 5: "IV", 7: "V", 9: "vi"}
    roots = (7, 0, 4, 5, 4, 7, 9, 2, 9, 7, 4, 5)
    chords = [
        harmony.ChordSpan(
            Fraction(4 * k), Fraction(4 * k + 4), 0.0, 1.0, r, "maj" if numerals[r].isupper() else "min", numerals[r], 0
        )
        for k, r in enumerate(roots)
    ]
    chords.append(harmony.ChordSpan(Fraction(48), Fraction(1000), 0.0, 1.0, 0, "maj", "I", 0))
    line = melody.write(plan, chords, {plan.sections[0].palette_name: (a, b)}, seed=1).notes

    def phrase(start):
        return [(n.start - start, n.end - n.start, n.pitch) for n in line if start <= n.start < start + 8]

    assert phrase(8) and phrase(40) == phrase(8)


def test_a_pedal_lets_go_before_a_hits_new_chord():
    plan = _cue(-0.6, 0.8, seconds=20, cuts=0, key="E minor")  # tense: a tonic pedal
    section = plan.sections[0]
    assert section.palette_name in arrangement.PEDAL_PALETTES
    i = harmony.ChordSpan(Fraction(0), Fraction(4), 0.0, 1.0, 4, "min", "i", 0)
    v = harmony.ChordSpan(Fraction(4), Fraction(8), 1.0, 2.0, 11, "maj", "V", 0)
    hit = harmony.ChordSpan(Fraction(8), Fraction(12), 2.0, 3.0, 4, "min", "i", 0, hit=0)
    rng = __import__("numpy").random.default_rng(0)
    bass = [arrangement._bass(c, [i, v, hit], c.start_beat, Fraction(1), "1", section, rng, 0, 4, 0) for c in (i, v)]
    assert bass[0].pitch % 12 == 4  # the pedal under i
    assert bass[1].pitch % 12 == 11  # V on its own root, into the hit


def test_a_pedal_holds_two_bars_and_the_bass_moves_with_the_chords_in_the_next_two():
    plan = _cue(-0.6, 0.8, seconds=20, cuts=0, key="E minor")
    section = plan.sections[0]
    roots = (4, 0, 9, 11, 4, 0, 9, 11)  # i bVI iv V, twice: a bar each
    chords = [
        harmony.ChordSpan(Fraction(4 * k), Fraction(4 * k + 4), float(k), float(k + 1), r, "maj", "x", 0)
        for k, r in enumerate(roots)
    ]
    rng = __import__("numpy").random.default_rng(0)
    bottoms = [
        arrangement._bass(c, chords, c.start_beat, Fraction(1), "1", section, rng, 0, 4, 0).pitch % 12 for c in chords
    ]
    assert bottoms == [4, 4, 9, 11, 4, 4, 9, 11]  # the pedal, then the roots; round again


def test_motif_draws_come_from_the_music_model_in_the_melody_family(model):
    drawn = melody.draw_motifs(model, {"bright": (0.7, 0.7, 2, "major", 140.0)}, seed=5)
    a, b = drawn["bright"]
    assert a.source == "model" and len(a.notes) >= 3
    assert all(0 <= t < melody.MOTIF_BEATS for t, _, _ in a.notes)


# --- one draw for full and live scores --------------------------------------------------------


def test_live_spans_take_the_full_draws_notes(model):
    from bridge.score import live

    plan = _cue(0.3, 0.4, seconds=30, cuts=4)
    full = engine.draw(model, plan, seed=2).notes
    span = live.write_span(full, 10.0, 20.0)
    assert span and span == [n._replace(end=min(n.end, 20.0)) for n in full if 10.0 - 1e-6 <= n.start < 20.0 - 1e-6]
    assert engine.draw(model, plan, seed=2).notes == full


def test_a_moods_motifs_are_its_own_whatever_else_the_cue_holds(model, monkeypatch):
    # moods as moods_of gives them: (valence, arousal, tonic, mode, bpm) per palette
    monkeypatch.setattr(engine, "moods_of", lambda moods: moods)
    bright, dark = (0.7, 0.7, 2, "major", 132.0), (-0.7, -0.6, 2, "minor", 76.0)
    engine._MOTIFS.clear()
    alone = engine.motifs_for(model, {"bright": bright}, seed=4)
    engine._MOTIFS.clear()  # drawn again, beside another mood this time
    beside = engine.motifs_for(model, {"bright": bright, "dark": dark}, seed=4)
    assert set(beside) == {"bright", "dark"} and beside["bright"] == alone["bright"]
    engine._MOTIFS.clear()


# --- the measures themselves ------------------------------------------------------------------


def _note(start, end, pitch, family="pad"):
    from bridge.score.compose import ScoreNote

    return ScoreNote(start, end, pitch, 80, family)


def test_measures_on_a_known_fragment():
    cue = measures.Cue(
        4.0,
        (measures.Section(0.0, 4.0, 0, "major", 0.5, 0.5),),
        [(0, 500_000)],
        [(0, 4, 4)],
        programs={"pad": 48, "bass": 43},
    )
    notes = [
        _note(0, 2, 60),
        _note(0, 2, 64),
        _note(0, 2, 67),
        _note(2, 4, 65),
        _note(2, 4, 69),
        _note(2, 4, 72),
        _note(0, 2, 36, "bass"),
        _note(2, 4, 41, "bass"),
    ]
    assert measures.tonic_share(notes, cue) == pytest.approx(3 / 8)
    assert measures.tonic_triad_share(notes, cue) == pytest.approx(0.5)
    assert measures.mean_chord_run_s(notes, cue) == pytest.approx(2.0)
    assert measures.bass_not_lowest_share(notes, cue) == 0.0
    assert measures.on_grid_share(notes + [_note(0.07, 0.5, 62)], cue) == pytest.approx(2 / 3)
    assert best_chord([5, 9, 0]) == (5, "maj")


def test_bar_repetition_hears_a_transposed_bar():
    cue = measures.Cue(4.0, (measures.Section(0.0, 4.0, 0, "major"),), [(0, 500_000)], [(0, 4, 4)])
    bar = [(0.0, 60), (0.5, 64), (1.0, 67)]
    notes = [_note(t, t + 0.25, p) for t, p in bar] + [_note(t + 2, t + 2.25, p + 2) for t, p in bar]
    assert measures.bar_repetition(notes, cue) == pytest.approx(0.5)


def test_bar_repetition_puts_a_downbeat_read_a_hair_early_in_its_own_bar():
    # 80 BPM: beat 4 is at 3.0 s; seconds rounded in a MIDI file read as 3.9999 beats
    cue = measures.Cue(6.0, (measures.Section(0.0, 6.0, 0, "major"),), [(0, 750_000)], [(0, 4, 4)])
    bar = [(0.0, 60), (0.75, 64), (1.5, 67)]
    notes = [_note(t, t + 0.5, p) for t, p in bar] + [_note(t + 3.0 - 1e-7, t + 3.5, p) for t, p in bar]
    assert measures.bar_repetition(notes, cue) == pytest.approx(0.5)


# --- the commands ------------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_cues_prints_the_checklist_and_writes_the_results_file(tmp_path, capsys):
    import json
    from bridge.cli import main
    from helpers.scoring import edit

    out = tmp_path / "figures" / "eval-cues.json"
    cut = edit(tmp_path / "cut.otio", clips=(48, 72, 30, 60))
    assert main(["eval-cues", "--seeds", "4", "--no-reference", "--out", str(out), "--edit", str(cut)]) == 0
    printed = capsys.readouterr().err
    assert "tonic" in printed and "cues missing a floor" in printed
    result = json.loads(out.read_text())
    assert len(result["cues"]) == len(eval_cues.CUES) + 1 and result["seeds"] == [4]
    assert result["cues"][-1]["name"] == "cut.otio" and result["cues"][-1]["hits_with_chord"] == 1.0
    assert main(["eval-cues", "--edit", str(tmp_path / "missing.otio"), "--out", str(out)]) == 3
    assert "no such file" in capsys.readouterr().err
    for row in result["cues"]:
        assert row["hits_with_chord"] == 1.0 and row["meter_changes_per_min"] == 0.0
        assert row["out_of_range"] == 0.0 and row["on_grid"] >= 0.95
    assert result["mood"]["arousal_vs_onsets_rho"] >= 0.8
    assert len({r["key"] for r in result["cues"]}) >= 3


def test_score_takes_a_key_and_refuses_a_wrong_one(tmp_path, capsys):
    from bridge.cli import main
    from helpers.scoring import edit

    cut = edit(tmp_path / "cut.otio", clips=(48, 72, 30))
    with pytest.raises(SystemExit) as exc:
        main(["score", str(cut), "--out", str(tmp_path / "out"), "--key", "H sharp", "--no-audio", "-q"])
    assert exc.value.code == 2 and "not a key" in capsys.readouterr().err
    assert main(["score", str(cut), "--out", str(tmp_path / "out"), "--key", "Eb minor", "--no-audio", "-q"]) == 0
    import json

    manifest = json.loads(open(capsys.readouterr().out.strip()).read())
    assert manifest["plan"]["key"] == "Eb minor" and manifest["music"]["key"] == "Eb minor"
    assert manifest["music"]["engine"] == "layered"
    assert all(set(v) <= {"model", "fallback"} for v in manifest["music"]["motifs"].values())
    assert {s["key"].split()[0] for s in manifest["plan"]["sections"]} == {"Eb"}


def test_sustained_parts_swell_into_important_hits_with_cc11(model, tmp_path):
    import mido
    from bridge.score.compose import to_parts
    from bridge.render.midi import write_midi

    plan = _cue(0.6, 0.6, seconds=30, cuts=3)
    drawn = engine.draw(model, plan, seed=1)
    hit = plan.hits[1].seconds
    window = arrangement.CRESCENDO_BEATS * 60.0 / plan.tempo["bpm"] * 1.05  # the beats before it
    before = [(t, v) for t, family, v in drawn.expression if family == "pad" and hit - window < t < hit - 1e-6]
    assert len(before) >= 4 and [v for _, v in before] == sorted(v for _, v in before) and before[-1][1] == 127
    assert any(abs(t - hit) < 0.05 and v == arrangement.EXPRESSION_REST for t, f, v in drawn.expression if f == "pad")
    parts = to_parts(drawn.notes, plan, drawn.expression)
    path = write_midi(tmp_path / "cue.mid", parts, plan.tempo["tempo_map"])
    pad_track = next(t for t in mido.MidiFile(path).tracks if t.name.endswith("(pad)"))
    values = [m.value for m in pad_track if m.type == "control_change" and m.control == 11]
    assert 127 in values and arrangement.EXPRESSION_REST in values
    calm = _cue(0.6, -0.7, seconds=30, cuts=3)
    assert {v for _, _, v in engine.draw(model, calm, seed=1).expression} == {arrangement.EXPRESSION_REST}


def test_a_missing_or_broken_chord_model_is_a_clear_missing_model(tmp_path):
    from bridge.errors import MissingModel

    with pytest.raises(MissingModel, match="train harmony --ship"):
        harmony.load(tmp_path / "none.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not weights")
    with pytest.raises(MissingModel, match="unreadable"):
        harmony.load(broken)


def test_the_chord_model_trains_on_phrases_with_their_offsets():
    """The training loop on a small corpus of its own: ii-V-I cadences into every phrase end
    (offset 0), other chords elsewhere; the model learns to put I on the phrase end."""
    from bridge.music import harmony_train

    phrase = [[2, "min", 2], [7, "maj", 1], [0, "maj", 0]]
    filler = [[5, "maj", 5], [9, "min", 4], [4, "min", 3]]
    pieces = [{"mode": "major", "chords": (filler + phrase) * 6} for _ in range(40)]
    model, figures = harmony_train.train(pieces, epochs=8, seed=1, log=lambda line: None)
    assert figures["cadence_top1"] >= 0.9 and figures["nll"] < figures["unigram_nll"]


def test_no_two_notes_of_one_pitch_overlap_in_a_part(corners):
    """A MIDI channel cannot hold them: the file and the notes JSON would disagree."""
    for plan, drawn in corners.values():
        last_end = {}
        for n in sorted(drawn.notes, key=lambda n: (n.family, n.pitch, n.start)):
            key = (n.family, n.pitch)
            assert n.start >= last_end.get(key, -1.0) - 1e-9, (key, n.start)
            last_end[key] = n.end


def test_destination_hits_are_approached_by_cadences():
    """Over seeds, most hits the harmony treats as destinations arrive on I or V (or a
    deceptive vi after V), as the chorales arrive at their fermatas."""
    arrivals = cadences = 0
    for seed in range(1, 9):
        plan = _cue(0.5, 0.0, seconds=60, cuts=5)
        rows, chords = harmony.slots(plan), harmony.progression(plan, seed)
        assert len(chords) in (len(rows), len(rows) - 1)  # a hit's tonic may ring on through the last slot
        for i, (row, chord) in enumerate(zip(rows, chords)):
            if row[4] != "destination" or not i:
                continue
            before = chords[i - 1]
            interval = (chord.root - plan.tonic) % 12
            arrivals += 1
            cadences += interval in (0, 7) or (interval == 9 and (before.root - plan.tonic) % 12 == 7)
    assert arrivals >= 20 and cadences / arrivals >= 0.5
