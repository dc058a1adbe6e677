"""Time conversion: frames, seconds, timecode, ticks — exact where the formats are exact."""

from fractions import Fraction

import mido
import numpy as np
import pytest

from bridge import timebase as tb


@pytest.mark.parametrize(
    "text, rate, drop",
    [
        ("23.976", Fraction(24000, 1001), False),
        ("23.98", Fraction(24000, 1001), False),
        ("24", Fraction(24), False),
        ("25", Fraction(25), False),
        ("29.97", Fraction(30000, 1001), False),
        ("29.97 DF", Fraction(30000, 1001), True),
        ("59.94DF", Fraction(60000, 1001), True),
        ("30000/1001", Fraction(30000, 1001), False),
        ("29.97 NDF", Fraction(30000, 1001), False),
    ],
)
def test_parse_rate(text, rate, drop):
    assert tb.parse_rate(text) == (rate, drop)


def test_drop_frame_only_at_ntsc_30_and_60():
    with pytest.raises(ValueError):
        tb.parse_rate("25 DF")


@pytest.mark.parametrize(
    "tc, rate, frames",
    [
        ("01:00:00:00", 24, 86400),
        ("01:00:00:00", 25, 90000),
        ("01:00:00;00", 30000 / 1001, 107892),  # 108000 minus 2 frames × 54 minutes
        ("00:01:00;02", 30000 / 1001, 1800),  # frames ;00 and ;01 of minute 1 do not exist
        ("00:10:00;00", 30000 / 1001, 17982),
        ("01:00:00:00", 24000 / 1001, 86400),  # 23.976 counts timecode at 24
    ],
)
def test_timecode_round_trip(tc, rate, frames):
    assert tb.timecode_to_frames(tc, rate) == frames
    drop = ";" in tc
    assert tb.frames_to_timecode(frames, rate, drop) == tc


def test_ntsc_seconds_are_exact():
    assert tb.frames_to_seconds(24000, 24000 / 1001) == 1001.0
    assert tb.seconds_to_frame(1001.0, "23.976") == 24000
    assert tb.rescale_frames(30, 30000 / 1001, 60000 / 1001) == 60


def test_tempo_map_ticks_round_trip_through_a_midi_file(tmp_path):
    tempo_map = [(0, tb.bpm_to_tempo(96)), (8, tb.bpm_to_tempo(120)), (Fraction(33, 2), tb.bpm_to_tempo(72.5))]
    times = [0.0, 1.0, 4.9, 5.0, 7.3, 12.345, 40.0]
    ticks = [tb.seconds_to_ticks(t, tempo_map) for t in times]
    # a MIDI file holding the same tempo map gives back the same seconds (within half a tick)
    mid = mido.MidiFile(ticks_per_beat=tb.PPQ)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = [(int(b * tb.PPQ), mido.MetaMessage("set_tempo", tempo=t)) for b, t in tempo_map]
    events += [(tk, mido.Message("note_on", note=60, velocity=64)) for tk in ticks]
    now = 0
    for tick, msg in sorted(events, key=lambda e: (e[0], e[1].type != "set_tempo")):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(tmp_path / "t.mid")
    seconds, played = 0.0, []
    for msg in mido.MidiFile(tmp_path / "t.mid"):
        seconds += msg.time
        if msg.type == "note_on":
            played.append(seconds)
    half_tick = 0.5 * 60 / 72.5 / tb.PPQ
    for want, got in zip(times, played):
        assert abs(want - got) <= half_tick + 1e-9
    for t, tick in zip(times, ticks):
        assert abs(tb.ticks_to_seconds(tick, tempo_map) - t) <= half_tick


def test_tempo_map_must_start_at_zero_and_increase():
    with pytest.raises(ValueError):
        tb.beats_to_seconds(1, [(1, 500000)])
    with pytest.raises(ValueError):
        tb.beats_to_seconds(1, [(0, 500000), (0, 400000)])


def test_beats_ticks_and_samples():
    assert tb.beats_to_ticks(Fraction(33, 2)) == 33 * tb.PPQ // 2
    assert tb.beats_to_ticks(0.0001) == 0
    assert tb.ticks_to_beats(1440) == Fraction(3, 2)
    assert tb.ticks_to_beats(tb.beats_to_ticks(Fraction(7, 4))) == Fraction(7, 4)
    assert tb.seconds_to_samples(1.5, 48000) == 72000
    assert tb.seconds_to_samples(tb.frames_to_seconds(1, "23.976"), 48000) == 2002
    assert tb.seconds_to_samples(1 / 3, 48000) == 16000


def test_batch_conversions_match_one_at_a_time():
    tempo_map = [(0, tb.bpm_to_tempo(96)), (8, tb.bpm_to_tempo(120)), (Fraction(33, 2), 827586)]
    times = [0.0, 4.9, 5.0, 7.3, 12.345, 40.0, 1 / 3]
    ticks = tb.seconds_to_ticks_all(times, tempo_map)
    assert ticks == [tb.seconds_to_ticks(t, tempo_map) for t in times]
    # floats: the exact conversion's, within a few units in the last place
    assert tb.ticks_to_seconds_all(ticks + [7680, 15840], tempo_map) == pytest.approx(
        [tb.ticks_to_seconds(t, tempo_map) for t in ticks + [7680, 15840]], rel=1e-14, abs=1e-15
    )
    assert tb.seconds_to_ticks_all([], tempo_map) == [] and tb.ticks_to_seconds_all([], tempo_map) == []


def test_many_seconds_to_ticks_at_once_round_as_the_exact_rule_does_ties_included():
    tempo_map = [(0, tb.bpm_to_tempo(96)), (8, tb.bpm_to_tempo(120)), (Fraction(33, 2), 827586)]
    rng = np.random.default_rng(1)
    exact_ticks = rng.integers(0, 200_000, 3000)
    ties = [float(tb.beats_to_seconds(Fraction(2 * int(k) + 1, 2 * tb.PPQ), tempo_map)) for k in exact_ticks[:300]]
    times = list(rng.uniform(0, 120, 5000)) + ties + [Fraction(k, 7) for k in range(50)]
    assert tb.seconds_to_ticks_all(times, tempo_map) == [tb.seconds_to_ticks(t, tempo_map) for t in times]


def test_beats_to_seconds_all_matches_one_at_a_time():
    tempo_map = [(0, 500_000), (8, 400_000), (Fraction(37, 3), 612_345)]
    beats = [0, Fraction(1, 4), 8, Fraction(29, 3), Fraction(37, 3), 20, Fraction(123, 7)]
    assert tb.beats_to_seconds_all(beats, tempo_map) == [float(tb.beats_to_seconds(b, tempo_map)) for b in beats]


def test_many_seconds_to_samples_at_once_agree_with_one_at_a_time():
    """The vectorised conversion rounds exactly as the exact one, ties included."""
    rng = np.random.default_rng(0)
    times = np.concatenate(
        [rng.uniform(0, 200, 20000), np.arange(0, 2, 1 / 96000), (np.arange(500) + 0.5) / 48000, [0.0, 1e-9]]
    )
    for rate in (44100, 48000, 96000):
        fast = tb.seconds_to_samples_all(times, rate)
        assert fast.dtype == np.int64
        assert fast.tolist() == [tb.seconds_to_samples(float(t), rate) for t in times]
