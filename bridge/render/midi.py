"""The MIDI deliverable: a type-1 Standard MIDI File a DAW opens at the picture's timecode.

Track 0 is the conductor track (title, SMPTE offset, tempo map, time signatures, markers);
every part follows on a named track of its own. Tick 0 is the timeline's first frame, and
the SMPTE offset says which timecode that frame carries.
"""

import io
import math
import numbers
from pathlib import Path

import mido

from bridge import atomic
from bridge import timebase as tb

DRUM_CHANNEL = 9  # General MIDI channel 10
MELODIC_CHANNELS = [c for c in range(16) if c != DRUM_CHANNEL]
DEFAULT_TEMPO = 500_000  # 120 bpm, the tempo a MIDI file has when it names none

# At the same tick: names first, then what defines time, then markers; in part tracks a
# note-off before a note-on, so a repeated pitch ends the old note and starts the new one.
_CONDUCTOR_ORDER = {"track_name": 0, "smpte_offset": 1, "time_signature": 2, "set_tempo": 3, "marker": 4}
_PART_ORDER = {"track_name": 0, "program_change": 1, "note_off": 2, "control_change": 3, "note_on": 4}


def write_midi(
    path,
    parts,
    tempo_map,
    *,
    time_signatures=((0, 4, 4),),
    markers=(),
    start_frame=0,
    rate=24,
    drop_frame=False,
    title="",
) -> Path:
    """Write `parts` as a type-1 MIDI file, atomically; times are seconds from the first frame.

    A part is {"name", "program", "is_drum", "notes": [(start_s, end_s, pitch, velocity)]} and,
    optionally, "controls": [(seconds, controller, value)] (CC11 expression swells); markers are (seconds, text); time signatures are (beat, numerator, denominator).
    Everything is checked before anything is written, and a bad value is a ValueError.
    """
    _check_tempo_map(tempo_map)
    channels = assign_channels(parts)
    conductor = _conductor_events(
        title, tempo_map, time_signatures, markers, smpte_offset(start_frame, rate, drop_frame)
    )
    tracks = [conductor] + [_part_events(part, channel, tempo_map) for part, channel in zip(parts, channels)]
    mid = mido.MidiFile(type=1, ticks_per_beat=tb.PPQ)
    for events in tracks:
        mid.tracks.append(_track(events))
    data = io.BytesIO()
    mid.save(file=data)
    return atomic.write_bytes(path, data.getvalue())


def write_notes_json(path, parts, tempo_map) -> Path:
    """The MIDI file's notes as JSON, for host scripts that build MIDI items themselves
    (REAPER's direct route needs no MIDI parser and raises no import dialog).

    Times are seconds from the first frame, after the same tick rounding as the MIDI file,
    so both place a note at the same time.
    """
    _check_tempo_map(tempo_map)
    channels = assign_channels(parts)
    out = []
    for part, channel in zip(parts, channels):
        ticks = tb.seconds_to_ticks_all([t for note in part["notes"] for t in note[:2]], tempo_map)
        times = tb.ticks_to_seconds_all(ticks, tempo_map)
        notes = sorted(
            [round(float(t0), 6), round(float(t1), 6), int(pitch), int(velocity)]
            for t0, t1, (_, _, pitch, velocity) in zip(times[0::2], times[1::2], part["notes"])
        )
        out.append(
            {
                "name": part["name"],
                "family": part.get("family"),
                "program": int(part["program"]),
                "channel": int(channel),
                "is_drum": bool(part.get("is_drum", False)),
                "notes": notes,
            }
        )
    return atomic.write_json(path, {"parts": out})


def read_midi(path):
    """Read a MIDI file back as (parts, tempo_map, markers), times in seconds from tick 0.

    Parts come back as write_midi takes them; a track with no notes and no program change
    (a conductor track) is not a part. Only mido is needed.
    """
    mid = mido.MidiFile(path)
    if mid.type == 2:
        raise ValueError(f"{path}: type-2 MIDI files (independent sequences) are not supported")
    ppq = mid.ticks_per_beat
    tracks = [_absolute(track) for track in mid.tracks]
    tempos = {}
    for events in tracks:
        for tick, msg in events:
            if msg.type == "set_tempo":
                tempos[tick] = msg.tempo
    if 0 not in tempos:
        tempos[0] = DEFAULT_TEMPO
    tempo_map = [(tb.ticks_to_beats(tick, ppq), tempos[tick]) for tick in sorted(tempos)]

    marks = sorted((tick, msg.text) for events in tracks for tick, msg in events if msg.type == "marker")
    markers = list(zip(tb.ticks_to_seconds_all([t for t, _ in marks], tempo_map, ppq), [text for _, text in marks]))
    parts = []
    for number, events in enumerate(tracks):
        part = _read_part(events, default_name=f"Track {number}")
        if part is not None:
            _to_seconds(part, tempo_map, ppq)
            parts.append(part)
    return parts, tempo_map, markers


def on_ticks(parts, tempo_map) -> list:
    """`parts` as a MIDI file written with write_midi holds them and read_midi gives them
    back (every time on its tick, overlaps resolved, controls included), without the file."""
    _check_tempo_map(tempo_map)
    out = []
    for part, channel in zip(parts, assign_channels(parts)):
        back = _read_part(_part_events(part, channel, tempo_map), default_name=part["name"])
        if back is not None:
            out.append(_to_seconds(back, tempo_map, tb.PPQ))
    return out


def _to_seconds(part, tempo_map, ppq):
    """A part read in ticks, its note and control times turned into seconds (in place)."""
    ticks = [t for on, off, _, _ in part["notes"] for t in (on, off)]
    seconds = tb.ticks_to_seconds_all(ticks, tempo_map, ppq)
    part["notes"] = [
        (on, off, pitch, velocity)
        for on, off, (_, _, pitch, velocity) in zip(seconds[0::2], seconds[1::2], part["notes"])
    ]
    if "controls" in part:
        times = tb.ticks_to_seconds_all([t for t, _, _ in part["controls"]], tempo_map, ppq)
        part["controls"] = [(t, controller, value) for t, (_, controller, value) in zip(times, part["controls"])]
    return part


def assign_channels(parts) -> list:
    """Drum parts share channel 10 (index 9); every other part gets a channel of its own."""
    melodic = sum(1 for part in parts if not part.get("is_drum", False))
    if melodic > len(MELODIC_CHANNELS):
        raise ValueError(
            f"{melodic} melodic parts, but a MIDI file has only "
            f"{len(MELODIC_CHANNELS)} channels besides drums; merge some parts"
        )
    free = iter(MELODIC_CHANNELS)
    return [DRUM_CHANNEL if part.get("is_drum", False) else next(free) for part in parts]


def smpte_offset(start_frame, rate, drop_frame=False) -> dict:
    """The smpte_offset meta fields for the timeline's first frame.

    MIDI knows 24, 25, 29.97 DF and 30 fps. The offset carries the start timecode's own
    labels (23.976 counts timecode at 24, so 01:00:00:00 stays 01:00:00:00); faster rates
    keep their labels with the frame field scaled to the SMPTE rate (50 fps frame 37 ->
    25 fps frame 18, subframe 50).
    """
    if not isinstance(start_frame, numbers.Integral) or start_frame < 0:
        raise ValueError(f"start_frame must be a frame count >= 0, got {start_frame!r}")
    timecode = tb.frames_to_timecode(int(start_frame), rate, drop_frame)
    hours, minutes, seconds, frames = (int(f) for f in timecode.replace(";", ":").split(":"))
    if hours > 23:
        raise ValueError(f"start timecode {timecode} is past 23:59:59, which SMPTE cannot hold")
    nominal = round(tb.rate_float(rate))
    if drop_frame:
        smpte_rate, frame_rate = 30, 29.97
    else:
        smpte_rate = next(
            (s for s in (30, 25, 24) if nominal % s == 0), min((24, 25, 30), key=lambda s: abs(s - nominal))
        )
        frame_rate = smpte_rate
    scaled = frames * smpte_rate / nominal
    return {
        "frame_rate": frame_rate,
        "hours": hours,
        "minutes": minutes,
        "seconds": seconds,
        "frames": int(scaled),
        "sub_frames": int(round((scaled - int(scaled)) * 100)),
    }


# --- writing ------------------------------------------------------------------------


def _conductor_events(title, tempo_map, time_signatures, markers, offset):
    events = [(0, mido.MetaMessage("track_name", name=_text(title))), (0, mido.MetaMessage("smpte_offset", **offset))]
    for entry in time_signatures:
        beat, numerator, denominator = entry
        _check_beat("time signature", beat)
        if not (
            _is_int(numerator)
            and 1 <= numerator <= 255
            and _is_int(denominator)
            and denominator in (1, 2, 4, 8, 16, 32, 64)
        ):
            raise ValueError(
                f"time signature {entry!r}: want (beat, numerator 1..255, denominator a power of two up to 64)"
            )
        events.append(
            (
                tb.beats_to_ticks(beat),
                mido.MetaMessage("time_signature", numerator=int(numerator), denominator=int(denominator)),
            )
        )
    for beat, tempo in tempo_map:
        events.append((tb.beats_to_ticks(beat), mido.MetaMessage("set_tempo", tempo=int(tempo))))
    for seconds, text in markers:
        _check_seconds(f"marker {text!r}", seconds)
    ticks = tb.seconds_to_ticks_all([seconds for seconds, _ in markers], tempo_map)
    for tick, (_, text) in zip(ticks, markers):
        events.append((tick, mido.MetaMessage("marker", text=_text(text))))
    return sorted(events, key=lambda e: (e[0], _CONDUCTOR_ORDER[e[1].type]))


def _part_events(part, channel, tempo_map):
    name = part.get("name", "")
    program = part.get("program", 0)
    if not (_is_int(program) and 0 <= program <= 127):
        raise ValueError(f"part {name!r}: program must be 0..127, got {program!r}")
    checked = []
    for number, note in enumerate(part["notes"]):
        where = f"part {name!r} note {number}"
        try:
            start, end, pitch, velocity = note
        except (TypeError, ValueError):
            raise ValueError(f"{where}: a note is (start_s, end_s, pitch, velocity), got {note!r}") from None
        _check_seconds(where + " start", start)
        _check_seconds(where + " end", end)
        if end < start:
            raise ValueError(f"{where}: ends at {end} s, before it starts at {start} s")
        if not (_is_int(pitch) and 0 <= pitch <= 127):
            raise ValueError(f"{where}: pitch must be a MIDI note 0..127, got {pitch!r}")
        if not (_is_int(velocity) and 1 <= velocity <= 127):
            raise ValueError(f"{where}: velocity must be 1..127, got {velocity!r}")
        checked.append((start, end, int(pitch), int(velocity)))
    ticks = tb.seconds_to_ticks_all([t for note in checked for t in note[:2]], tempo_map)
    notes = [(on, off, pitch, velocity) for on, off, (_, _, pitch, velocity) in zip(ticks[0::2], ticks[1::2], checked)]
    events = [
        (0, mido.MetaMessage("track_name", name=_text(name))),
        (0, mido.Message("program_change", channel=channel, program=int(program))),
    ]
    controls = []
    for number, control in enumerate(part.get("controls", ())):
        where = f"part {name!r} control {number}"
        try:
            seconds, controller, value = control
        except (TypeError, ValueError):
            raise ValueError(f"{where}: a control is (seconds, controller, value), got {control!r}") from None
        _check_seconds(where, seconds)
        if not (_is_int(controller) and 0 <= controller <= 127 and _is_int(value) and 0 <= value <= 127):
            raise ValueError(f"{where}: controller and value must be 0..127, got {controller!r}, {value!r}")
        controls.append((seconds, int(controller), int(value)))
    for tick, (_, controller, value) in zip(tb.seconds_to_ticks_all([c[0] for c in controls], tempo_map), controls):
        events.append((tick, mido.Message("control_change", channel=channel, control=controller, value=value)))
    for on, off, pitch, velocity in _playable(notes):
        events.append((on, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((off, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    return sorted(events, key=lambda e: (e[0], _PART_ORDER[e[1].type], getattr(e[1], "note", 0)))


def _playable(notes):
    """Notes (on, off, pitch, velocity) in ticks as one MIDI channel can hold them.

    A channel sounds one note per pitch, and a note-off ends it whichever note-on started
    it. So every note lasts at least a tick; notes of one pitch starting on the same tick
    become one (the longest, at the loudest velocity); and a note still sounding when the
    same pitch starts again ends there, as a DAW's overlap correction would do.
    """
    by_pitch = {}
    for on, off, pitch, velocity in sorted(notes):
        by_pitch.setdefault(pitch, []).append([on, max(off, on + 1), velocity])
    out = []
    for pitch, group in by_pitch.items():
        kept = []
        for on, off, velocity in group:
            if kept and kept[-1][0] == on:
                kept[-1][1] = max(kept[-1][1], off)
                kept[-1][2] = max(kept[-1][2], velocity)
                continue
            if kept and kept[-1][1] > on:
                kept[-1][1] = on
            kept.append([on, off, velocity])
        out += [(on, off, pitch, velocity) for on, off, velocity in kept]
    return sorted(out)


def _track(events):
    """A mido track from (absolute tick, message) pairs, closed at its last event."""
    track = mido.MidiTrack()
    now = 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _check_tempo_map(tempo_map):
    for beat, tempo in tempo_map:
        _check_beat("tempo change", beat)
        if not (_is_int(tempo) and 1 <= tempo <= 0xFFFFFF):
            raise ValueError(f"tempo at beat {beat}: microseconds per quarter must be 1..16777215, got {tempo!r}")
    tb.beats_to_seconds(0, tempo_map)  # raises unless it starts at beat 0 and increases


def _check_seconds(what, value):
    if not (_is_number(value) and value >= 0):
        raise ValueError(f"{what}: time must be finite seconds >= 0, got {value!r}")


def _check_beat(what, value):
    if not (_is_number(value) and value >= 0):
        raise ValueError(f"{what}: beat must be a finite number >= 0, got {value!r}")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value):
    return _is_number(value) and int(value) == value


def _text(text):
    """Meta text as a MIDI file stores it (Latin-1; other characters become '?')."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


# --- reading ------------------------------------------------------------------------


def _absolute(track):
    tick, out = 0, []
    for msg in track:
        tick += msg.time
        out.append((tick, msg))
    return out


def _read_part(events, default_name):
    """A part (note times in ticks) from one track's events, or None for a track without
    notes or programs."""
    name, program, channel = default_name, None, None
    sounding, notes, controls = {}, [], []
    for tick, msg in events:
        if msg.type == "track_name":
            name = msg.name
        elif msg.type == "program_change" and program is None:
            program, channel = msg.program, msg.channel
        elif msg.type == "control_change":
            controls.append((tick, msg.control, msg.value))
        elif msg.type in ("note_on", "note_off"):
            channel = msg.channel if channel is None else channel
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault(key, []).append((tick, msg.velocity))
            elif sounding.get(key):
                on, velocity = sounding[key].pop(0)
                notes.append((on, tick, msg.note, velocity))
    end = events[-1][0] if events else 0
    for (_, pitch), held in sounding.items():
        notes += [(on, end, pitch, velocity) for on, velocity in held]
    if program is None and not notes:
        return None
    part = {"name": name, "program": program or 0, "is_drum": channel == DRUM_CHANNEL, "notes": sorted(notes)}
    if controls:
        part["controls"] = controls
    return part
