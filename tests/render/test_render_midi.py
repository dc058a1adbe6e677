"""The MIDI deliverable: timing under a tempo map, SMPTE offset, tracks, markers, safety."""

import math
import os
from fractions import Fraction

import mido
import pytest

from bridge import atomic
from bridge import timebase as tb
from bridge.render.midi import _absolute, on_ticks, read_midi, smpte_offset, write_midi, write_notes_json

TEMPO_MAP = [
    (0, tb.bpm_to_tempo(96)),
    (8, tb.bpm_to_tempo(120)),
    (Fraction(33, 2), tb.bpm_to_tempo(72.5)),
    (40, tb.bpm_to_tempo(140)),
]
HALF_TICK = 0.5 * max(t for _, t in TEMPO_MAP) / 1e6 / tb.PPQ  # at the slowest tempo


def _parts():
    return [
        {
            "name": "Strings",
            "program": 48,
            "is_drum": False,
            "notes": [(0.0, 4.9, 48, 70), (4.9, 7.3, 55, 72), (12.345, 20.0, 60, 90)],
        },
        {
            "name": "Horns",
            "program": 60,
            "is_drum": False,
            "notes": [(1.0, 2.5, 65, 80), (7.3, 7.9, 67, 100), (33.3333, 34.0, 69, 64)],
        },
        {
            "name": "Percussion",
            "program": 0,
            "is_drum": True,
            "notes": [(0.0, 0.1, 36, 110), (5.0, 5.1, 38, 100), (12.345, 12.4, 49, 120)],
        },
    ]


def test_note_times_read_back_within_half_a_tick(tmp_path):
    parts = _parts()
    path = write_midi(tmp_path / "cue.mid", parts, TEMPO_MAP)
    back, tempo_map, _ = read_midi(path)
    assert tempo_map == TEMPO_MAP
    assert [p["name"] for p in back] == ["Strings", "Horns", "Percussion"]
    for want, got in zip(parts, back):
        assert len(got["notes"]) == len(want["notes"])
        for (s0, e0, p0, v0), (s1, e1, p1, v1) in zip(want["notes"], got["notes"]):
            assert abs(s0 - s1) <= HALF_TICK and abs(e0 - e1) <= HALF_TICK
            assert (p0, v0) == (p1, v1)


def test_notes_json_says_what_the_midi_file_says(tmp_path):
    """Hosts that build MIDI items from the JSON place every note at the file's tick."""
    import json

    parts = _parts()
    back, _, _ = read_midi(write_midi(tmp_path / "cue.mid", parts, TEMPO_MAP))
    listed = json.loads(write_notes_json(tmp_path / "cue.notes.json", parts, TEMPO_MAP).read_text())["parts"]
    assert [(p["name"], p["program"], p["channel"], p["is_drum"]) for p in listed] == [
        ("Strings", 48, 0, False),
        ("Horns", 60, 1, False),
        ("Percussion", 0, 9, True),
    ]
    for from_json, from_midi in zip(listed, back):
        assert len(from_json["notes"]) == len(from_midi["notes"])
        for (s0, e0, p0, v0), (s1, e1, p1, v1) in zip(from_json["notes"], from_midi["notes"]):
            assert abs(s0 - s1) < 1e-6 and abs(e0 - e1) < 1e-6 and (p0, v0) == (p1, v1)


def test_mido_plays_notes_at_the_requested_seconds(tmp_path):
    """mido's own tick-to-second conversion (not ours) agrees with the requested times."""
    path = write_midi(tmp_path / "cue.mid", _parts(), TEMPO_MAP)
    now, starts = 0.0, []
    for msg in mido.MidiFile(path):
        now += msg.time
        if msg.type == "note_on":
            starts.append(now)
    want = sorted(n[0] for p in _parts() for n in p["notes"])
    assert len(starts) == len(want)
    assert all(abs(a - b) <= HALF_TICK + 1e-9 for a, b in zip(sorted(starts), want))


def test_music21_reads_tracks_programs_channels_and_ticks(tmp_path):
    music21 = pytest.importorskip("music21")
    path = write_midi(tmp_path / "cue.mid", _parts(), TEMPO_MAP, title="1M1")
    low = music21.midi.MidiFile()
    low.open(str(path))
    low.read()
    low.close()
    assert (low.format, low.ticksPerQuarterNote, len(low.tracks)) == (1, tb.PPQ, 4)
    ours = mido.MidiFile(path)
    for theirs, mine in zip(low.tracks[1:], ours.tracks[1:]):
        tick, their_ons = 0, []
        for event in theirs.events:
            if event.isDeltaTime():
                tick += event.time
            elif event.isNoteOn():
                their_ons.append((tick, event.channel, event.pitch))
        my_ons = [(t, m.channel + 1, m.note) for t, m in _absolute(mine) if m.type == "note_on"]
        assert their_ons == my_ons  # music21 numbers channels from 1
    score = music21.converter.parse(str(path))
    found = {p.partName: p.getInstruments()[0] for p in score.parts}
    assert found["Strings"].midiProgram == 48 and found["Horns"].midiProgram == 60
    assert isinstance(found["Percussion"], music21.instrument.Percussion)
    assert {e.channel for e in low.tracks[3].events if e.isNoteOn()} == {10}


@pytest.mark.parametrize(
    "rate, drop, smpte_rate", [("23.976", False, 24), ("25", False, 25), ("29.97 DF", True, 29.97)]
)
def test_hits_round_trip_to_their_frames_from_a_one_hour_start(tmp_path, rate, drop, smpte_rate):
    rate, _ = tb.parse_rate(rate)
    start_tc = "01:00:00;00" if drop else "01:00:00:00"
    start = tb.timecode_to_frames(start_tc, rate, drop)
    hits = [1, 119, 1799, 1800, 1801, 17982, 43157]
    markers = [
        (tb.frames_to_seconds(f, rate), f"SB: hit 1M1 {tb.frames_to_timecode(start + f, rate, drop)}") for f in hits
    ]
    path = write_midi(
        tmp_path / "hits.mid", _parts(), TEMPO_MAP, markers=markers, start_frame=start, rate=rate, drop_frame=drop
    )
    _, _, back = read_midi(path)
    assert [text for _, text in back] == [text for _, text in markers]
    assert [tb.seconds_to_frame(s, rate) for s, _ in back] == hits
    offset = next(m for m in mido.MidiFile(path).tracks[0] if m.type == "smpte_offset")
    assert offset.frame_rate == smpte_rate
    assert (offset.hours, offset.minutes, offset.seconds, offset.frames, offset.sub_frames) == (1, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "timecode, rate, drop, fields",
    [
        ("10:59:59;29", 30000 / 1001, True, (29.97, 10, 59, 59, 29, 0)),
        ("01:02:03:04", 30000 / 1001, False, (30, 1, 2, 3, 4, 0)),
        ("01:02:03:23", 24000 / 1001, False, (24, 1, 2, 3, 23, 0)),
        ("01:00:00:37", 50, False, (25, 1, 0, 0, 18, 50)),
        ("00:00:01;59", 60000 / 1001, True, (29.97, 0, 0, 1, 29, 50)),
    ],
)
def test_smpte_offset_carries_the_start_timecode(timecode, rate, drop, fields):
    offset = smpte_offset(tb.timecode_to_frames(timecode, rate, drop), rate, drop)
    assert tuple(offset.values()) == fields


def test_tracks_named_with_programs_drums_on_channel_ten(tmp_path):
    path = write_midi(tmp_path / "cue.mid", _parts(), TEMPO_MAP, title="1M1 Opening")
    mid = mido.MidiFile(path)
    assert mid.type == 1 and mid.ticks_per_beat == tb.PPQ
    assert mid.tracks[0].name == "1M1 Opening"
    seen = {}
    for track in mid.tracks[1:]:
        program = next(m for m in track if m.type == "program_change")
        channels = {m.channel for m in track if m.type in ("note_on", "note_off")}
        assert channels == {program.channel}
        seen[track.name] = (program.program, program.channel)
    assert seen == {"Strings": (48, 0), "Horns": (60, 1), "Percussion": (0, 9)}


def test_melodic_parts_skip_channel_ten_and_stop_at_fifteen(tmp_path):
    melodic = [{"name": f"P{i}", "program": i, "notes": [(0, 1, 60, 80)]} for i in range(15)]
    drums = {"name": "Kit", "program": 0, "is_drum": True, "notes": [(0, 0.1, 36, 90)]}
    path = write_midi(tmp_path / "full.mid", melodic[:9] + [drums] + melodic[9:], TEMPO_MAP)
    channels = [next(m.channel for m in t if m.type == "program_change") for t in mido.MidiFile(path).tracks[1:]]
    assert channels == list(range(9)) + [9] + list(range(10, 16))
    extra = {"name": "P15", "program": 1, "notes": []}
    with pytest.raises(ValueError, match="16 melodic parts"):
        write_midi(tmp_path / "over.mid", melodic + [extra], TEMPO_MAP)
    assert not (tmp_path / "over.mid").exists()


def test_conductor_track_tempo_signatures_and_markers_at_their_ticks(tmp_path):
    markers = [(0.0, "1M1"), (5.0, "SB: section tension"), (12.345, "SB: hit 1M1 01:00:12:08")]
    signatures = [(0, 4, 4), (8, 3, 4), (Fraction(33, 2), 6, 8)]
    path = write_midi(tmp_path / "cue.mid", _parts(), TEMPO_MAP, markers=markers, time_signatures=signatures)
    conductor = _absolute(mido.MidiFile(path).tracks[0])
    assert [(t, m.tempo) for t, m in conductor if m.type == "set_tempo"] == [
        (tb.beats_to_ticks(b), tempo) for b, tempo in TEMPO_MAP
    ]
    assert [(t, m.numerator, m.denominator) for t, m in conductor if m.type == "time_signature"] == [
        (tb.beats_to_ticks(b), n, d) for b, n, d in signatures
    ]
    assert [(t, m.text) for t, m in conductor if m.type == "marker"] == [
        (tb.seconds_to_ticks(s, TEMPO_MAP), text) for s, text in markers
    ]
    assert not any(m.type in ("note_on", "note_off") for _, m in conductor)


def test_note_offs_come_first_short_and_overlapping_notes_stay_playable(tmp_path):
    notes = [
        (1.0, 1.0, 60, 80),  # zero length
        (2.0, 3.0, 62, 80),
        (3.0, 4.0, 62, 90),  # repeated pitch, touching
        (5.0, 7.0, 64, 80),
        (6.0, 6.5, 64, 90),  # same pitch starts while sounding
        (8.0, 8.5, 65, 70),
        (8.0, 9.0, 65, 100),
    ]  # same pitch, same start
    path = write_midi(tmp_path / "cue.mid", [{"name": "Piano", "program": 0, "notes": notes}], [(0, 500000)])
    events = _absolute(mido.MidiFile(path).tracks[1])
    sounding = set()
    for tick, msg in events:
        if msg.type == "note_on":
            assert msg.note not in sounding, f"note {msg.note} started twice at tick {tick}"
            sounding.add(msg.note)
        elif msg.type == "note_off":
            assert msg.note in sounding
            sounding.discard(msg.note)
    assert not sounding
    assert events[-1][1].type == "end_of_track"
    assert events[-1][0] == events[-2][0]  # at the last event
    back = read_midi(path)[0][0]["notes"]
    second = tb.PPQ * 2  # ticks per second at 120 bpm
    as_ticks = [(round(s * second), round(e * second), p, v) for s, e, p, v in back]
    assert as_ticks == [
        (1920, 1921, 60, 80),
        (3840, 5760, 62, 80),
        (5760, 7680, 62, 90),
        (9600, 11520, 64, 80),
        (11520, 12480, 64, 90),
        (15360, 17280, 65, 100),
    ]


def test_a_failing_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "cue.mid"

    def broken_disk(fd):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fsync", broken_disk)
    with pytest.raises(OSError, match="disk full"):
        write_midi(target, _parts(), TEMPO_MAP)
    assert os.listdir(tmp_path) == []


def test_a_failing_rewrite_keeps_the_old_file(tmp_path, monkeypatch):
    target = write_midi(tmp_path / "cue.mid", _parts(), TEMPO_MAP)
    before = target.read_bytes()
    monkeypatch.setattr(atomic.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("no")))
    with pytest.raises(OSError):
        write_midi(target, _parts()[:1], TEMPO_MAP)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["cue.mid"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p[0]["notes"].append((1.0, 2.0, 200, 80)), "pitch must be a MIDI note 0..127, got 200"),
        (lambda p: p[0]["notes"].append((-0.5, 2.0, 60, 80)), "time must be finite seconds >= 0, got -0.5"),
        (lambda p: p[1]["notes"].append((math.nan, 2.0, 60, 80)), "'Horns' note 3 start.*got nan"),
        (lambda p: p[1]["notes"].append((1.0, math.inf, 60, 80)), "note 3 end.*got inf"),
        (lambda p: p[0]["notes"].append((3.0, 2.0, 60, 80)), "before it starts"),
        (lambda p: p[0]["notes"].append((1.0, 2.0, 60, 0)), "velocity must be 1..127, got 0"),
        (lambda p: p[0]["notes"].append((1.0, 2.0, 60.5, 80)), "pitch .* got 60.5"),
        (lambda p: p[0]["notes"].append((1.0, 2.0)), r"a note is \(start_s, end_s, pitch, velocity\)"),
        (lambda p: p[2].update(program=300), "program must be 0..127"),
    ],
)
def test_absurd_notes_are_refused_with_a_clear_message(tmp_path, change, message):
    parts = _parts()
    change(parts)
    with pytest.raises(ValueError, match=message):
        write_midi(tmp_path / "bad.mid", parts, TEMPO_MAP)
    assert not (tmp_path / "bad.mid").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tempo_map": [(1, 500000)]}, "starts with a change at beat 0"),
        ({"tempo_map": [(0, 0)]}, "microseconds per quarter"),
        ({"tempo_map": [(0, 500000)], "markers": [(math.nan, "x")]}, "marker 'x'"),
        ({"tempo_map": [(0, 500000)], "time_signatures": [(0, 4, 3)]}, "power of two"),
        ({"tempo_map": [(0, 500000)], "start_frame": -1}, "start_frame"),
    ],
)
def test_absurd_settings_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_midi(tmp_path / "bad.mid", _parts(), **kwargs)
    assert not (tmp_path / "bad.mid").exists()


def test_parts_on_their_ticks_are_what_the_file_gives_back(tmp_path):
    """on_ticks (the renderer's way to put parts on the MIDI grid without a file) gives
    exactly what write_midi then read_midi give, CC11 swells included."""
    tempo_map = [(0, tb.bpm_to_tempo(93)), (7, tb.bpm_to_tempo(131))]
    parts = [
        {
            "name": "Strings (pad)",
            "program": 48,
            "is_drum": False,
            "notes": [(0.0, 1.2345, 60, 80), (0.5, 0.51, 60, 90), (1.0, 3.3333, 64, 70)],
            "controls": [(0.0, 11, 90), (2.71828, 11, 110)],
        },
        {
            "name": "Drums (percussion)",
            "program": 0,
            "is_drum": True,
            "notes": [(0.1, 0.2, 36, 100), (0.7777, 0.8, 38, 120)],
        },
    ]
    path = write_midi(tmp_path / "cue.mid", parts, tempo_map)
    back, _, _ = read_midi(path)
    assert on_ticks(parts, tempo_map) == back
    assert back[0]["controls"][1][1:] == (11, 110) and abs(back[0]["controls"][1][0] - 2.71828) < 1e-3
