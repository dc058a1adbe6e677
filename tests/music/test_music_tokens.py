"""Vocabulary: MIDI -> note list -> tokens -> note list -> MIDI keeps every note."""

import io

import mido
import numpy as np
import pytest

from bridge.music import tokens as T
from bridge.music.tokens import Note


def _notes():
    return [
        Note(0.0, 0.5, 60, 84, "melody"),
        Note(0.0, 2.0, 48, 68, "pad"),
        Note(0.0, 2.0, 52, 68, "pad"),
        Note(0.0, 2.0, 55, 68, "pad"),
        Note(0.0, 1.0, 36, 100, "bass"),
        Note(0.0, 0.1, 36, 124, "drums"),
        Note(0.5, 0.1, 38, 112, "drums"),
        Note(0.5, 0.1, 42, 52, "drums"),
        Note(0.503, 0.25, 62, 100, "melody"),  # 3 ms late: needs a fine shift
        Note(0.753, 0.25, 64, 36, "melody"),
        Note(1.003, 0.007, 64, 36, "melody"),  # re-struck at once, 7 ms long
        Note(2.5, 0.3, 72, 20, "piano"),
        Note(2.5, 0.3, 76, 20, "piano"),
        Note(4.001, 1.499, 79, 124, "piano"),  # after a gap longer than 1 s
    ]


def _key(notes):
    return sorted((round(n.start * 1000), round(n.duration * 1000), n.pitch, n.velocity, n.family) for n in notes)


def _ticks(mid):
    """(track name, channel, pitch, on tick, off tick, velocity) of every note in a file."""
    out = []
    for track in mid.tracks:
        name, now, active = "", 0, {}
        for msg in track:
            now += msg.time
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "note_on" and msg.velocity > 0:
                active[(msg.channel, msg.note)] = (now, msg.velocity)
            elif msg.type in ("note_on", "note_off") and (msg.channel, msg.note) in active:
                t0, v = active.pop((msg.channel, msg.note))
                out.append((name, msg.channel, msg.note, t0, now, v))
    return sorted(out)


def test_notes_tokens_round_trip_is_exact():
    notes = _notes()
    toks = T.encode(notes)
    assert toks[0] == T.BOS and all(0 <= t < T.VOCAB_SIZE for t in toks)
    assert _key(T.decode(toks)) == _key(notes)


def test_midi_tokens_midi_keeps_notes_to_the_tick():
    first = T.write_midi(_notes())
    buf = io.BytesIO()
    first.save(file=buf)
    buf.seek(0)
    read = T.read_midi(mido.MidiFile(file=buf))
    again = T.write_midi(T.decode(T.encode(read)))
    a, b = _ticks(first), _ticks(again)
    assert a == b
    drums = [x for x in b if x[1] == 9]
    assert len(drums) == 3 and {x[5] for x in drums} == {124, 112, 52}


def test_families_have_gm_programs_and_drums_on_channel_10():
    mid = T.write_midi(_notes())
    programs = {}
    for track in mid.tracks:
        for msg in track:
            if msg.type == "program_change":
                programs[msg.channel] = msg.program
    assert programs[9] == 0 and T.FAMILY_CHANNEL["drums"] == 9
    for fam in T.FAMILIES:
        assert programs[T.FAMILY_CHANNEL[fam]] == T.FAMILY_PROGRAM[fam]
        assert T.family_of(T.FAMILY_CHANNEL[fam], T.FAMILY_PROGRAM[fam]) == fam


@pytest.mark.parametrize("ms", [1, 9, 10, 11, 999, 1000, 1001, 2345, 10007])
def test_any_millisecond_is_reachable(ms):
    toks = T.shift_tokens(ms)
    assert sum(T.token_ms(t) for t in toks) == ms
    assert len(toks) <= ms // 1000 + 2


def test_velocity_is_quantised_to_levels_and_sent_only_on_change():
    notes = [Note(i * 0.1, 0.1, 60 + i, 83, "melody") for i in range(5)]
    toks = T.encode(notes)
    vel_tokens = [t for t in toks if T.token_kind(t) == "vel"]
    assert len(vel_tokens) == 1
    assert {n.velocity for n in T.decode(toks)} == {84}


def test_running_time_follows_shifts():
    toks = T.encode([Note(0.0, 0.5, 60, 84, "piano"), Note(1.234, 0.5, 62, 84, "piano")])
    times = T.token_times_ms(toks)
    assert times[-1] == 1734
    assert np.all(np.diff(times) >= 0)
