"""Event vocabulary: MIDI <-> note list <-> tokens.

A note is `Note(start, duration, pitch, velocity, family)` with times in seconds. The token
stream is event-based, in the spirit of midi-emotion / Music Transformer:

    NOTE_ON(family, pitch)    5 families x 88 pitches (A0..C8)
    NOTE_OFF(family, pitch)   same
    SHIFT(10..1000 ms)        100 coarse time shifts, 10 ms apart
    FINE(1..9 ms)             9 fine shifts, so an onset can sit on any millisecond
    VEL(family, level)        8 loudness levels, sent only when a family's level changes
    PAD, BOS, EOS

Time is kept in integer milliseconds inside this module, so encode/decode is exact on the
millisecond grid. MIDI files are written at 120 qpm with 500 ticks per quarter, i.e. one
tick is exactly one millisecond, so MIDI -> tokens -> MIDI keeps every note to the tick.
(The tempo-mapped writer for deliverables lives with the renderer; this one is for data.)
"""

from typing import NamedTuple

import numpy as np
import mido

FAMILIES = ("drums", "bass", "pad", "melody", "piano")
FAMILY_INDEX = {f: i for i, f in enumerate(FAMILIES)}
# Default General MIDI program (0-based) and channel (0-based; 9 is GM channel 10, drums).
FAMILY_PROGRAM = {"drums": 0, "bass": 32, "pad": 48, "melody": 73, "piano": 0}
FAMILY_CHANNEL = {"drums": 9, "bass": 2, "pad": 1, "melody": 0, "piano": 3}
FAMILY_TRACK_NAME = {
    "drums": "Drums",
    "bass": "Bass (acoustic)",
    "pad": "Strings (pad)",
    "melody": "Melody (flute)",
    "piano": "Piano",
}

PITCH_LO, PITCH_HI = 21, 108
N_PITCH = PITCH_HI - PITCH_LO + 1
N_FAM = len(FAMILIES)
VEL_LEVELS = (20, 36, 52, 68, 84, 100, 112, 124)
N_VEL = len(VEL_LEVELS)
COARSE_MS = 10
N_COARSE = 100  # 10, 20, ..., 1000 ms
N_FINE = 9  # 1..9 ms

PAD, BOS, EOS = 0, 1, 2
ON0 = 3
OFF0 = ON0 + N_FAM * N_PITCH
SHIFT0 = OFF0 + N_FAM * N_PITCH
FINE0 = SHIFT0 + N_COARSE
VEL0 = FINE0 + N_FINE
VOCAB_SIZE = VEL0 + N_FAM * N_VEL


class Note(NamedTuple):
    start: float  # seconds
    duration: float  # seconds
    pitch: int  # MIDI note number (drums: GM drum key)
    velocity: int  # 1..127
    family: str  # one of FAMILIES


def _nearest_level(velocity) -> int:
    return int(np.argmin([abs(velocity - v) for v in VEL_LEVELS]))


# Every MIDI velocity's level, looked up: encoding a training window asks for thousands.
_LEVEL_OF = [_nearest_level(v) for v in range(128)]


def vel_level(velocity) -> int:
    """Index of the nearest loudness level."""
    if isinstance(velocity, (int, np.integer)) and 0 <= velocity < 128:
        return _LEVEL_OF[velocity]
    return _nearest_level(velocity)


def fold_pitch(pitch: int) -> int:
    """Bring a pitch into A0..C8 by octaves (a piccolo's top C is rare, but exists)."""
    while pitch < PITCH_LO:
        pitch += 12
    while pitch > PITCH_HI:
        pitch -= 12
    return pitch


def token_kind(tok: int) -> str:
    if tok < ON0:
        return ("pad", "bos", "eos")[tok]
    if tok < OFF0:
        return "on"
    if tok < SHIFT0:
        return "off"
    if tok < FINE0:
        return "shift"
    if tok < VEL0:
        return "fine"
    if tok < VOCAB_SIZE:
        return "vel"
    raise ValueError(f"token {tok} outside the vocabulary of {VOCAB_SIZE}")


def token_ms(tok: int) -> int:
    """Milliseconds a token moves time forward (0 for anything but shifts)."""
    if SHIFT0 <= tok < FINE0:
        return (tok - SHIFT0 + 1) * COARSE_MS
    if FINE0 <= tok < VEL0:
        return tok - FINE0 + 1
    return 0


# Lookup table for vectorised running time (used for boundary offsets in training).
TOKEN_MS = np.array([token_ms(t) for t in range(VOCAB_SIZE)], dtype=np.int64)


def shift_tokens(ms: int) -> list:
    """Tokens that advance time by exactly `ms` milliseconds (fewest tokens)."""
    out = []
    while ms >= N_COARSE * COARSE_MS:
        out.append(SHIFT0 + N_COARSE - 1)
        ms -= N_COARSE * COARSE_MS
    if ms >= COARSE_MS:
        out.append(SHIFT0 + ms // COARSE_MS - 1)
        ms %= COARSE_MS
    if ms > 0:
        out.append(FINE0 + ms - 1)
    return out


def encode(notes, bos: bool = True) -> list:
    """Note list -> tokens. Notes are put on the millisecond grid; pitches folded into range.

    At equal times note-offs come before note-ons, so a repeated pitch is re-struck cleanly.
    Overlapping notes of one pitch in one family are cut where the next one starts (MIDI
    could not tell them apart either).
    """
    by_key = {}
    for n in notes:
        fam = FAMILY_INDEX[n.family]
        pitch = fold_pitch(int(n.pitch))
        on = int(round(n.start * 1000))
        off = max(on + 1, int(round((n.start + n.duration) * 1000)))
        by_key.setdefault((fam, pitch), []).append((on, off, int(n.velocity)))
    events = []  # (time_ms, order, family, pitch, velocity): order 0 = off, 1 = on
    for (fam, pitch), lst in by_key.items():
        lst.sort()
        for i, (on, off, vel) in enumerate(lst):
            if i + 1 < len(lst):
                off = min(off, lst[i + 1][0])
            if off <= on:  # two onsets on the same millisecond: keep one
                continue
            events.append((on, 1, fam, pitch, vel))
            events.append((off, 0, fam, pitch, 0))
    events.sort()
    toks = [BOS] if bos else []
    now = 0
    level = [None] * N_FAM
    for t, order, fam, pitch, vel in events:
        if t > now:
            toks.extend(shift_tokens(t - now))
            now = t
        if order == 1:
            lv = vel_level(vel)
            if level[fam] != lv:
                toks.append(VEL0 + fam * N_VEL + lv)
                level[fam] = lv
            toks.append(ON0 + fam * N_PITCH + pitch - PITCH_LO)
        else:
            toks.append(OFF0 + fam * N_PITCH + pitch - PITCH_LO)
    return toks


class Decoder:
    """Incremental tokens -> notes; the sampler feeds it one token at a time."""

    def __init__(self, default_velocity: int = 84):
        self.now_ms = 0
        self.level = [vel_level(default_velocity)] * N_FAM
        self.active = {}  # (family, pitch) -> (start_ms, velocity)
        self.notes = []

    def feed(self, tok: int) -> None:
        tok = int(tok)
        if tok < ON0:
            return
        if tok < OFF0:
            fam, pitch = divmod(tok - ON0, N_PITCH)
            key = (fam, pitch + PITCH_LO)
            if key in self.active:  # re-strike without a note-off: end the old note here
                self._close(key)
            self.active[key] = (self.now_ms, VEL_LEVELS[self.level[fam]])
        elif tok < SHIFT0:
            fam, pitch = divmod(tok - OFF0, N_PITCH)
            key = (fam, pitch + PITCH_LO)
            if key in self.active:
                self._close(key)
        elif tok < VEL0:
            self.now_ms += token_ms(tok)
        else:
            fam, lv = divmod(tok - VEL0, N_VEL)
            self.level[fam] = lv

    def _close(self, key, end_ms=None):
        start, vel = self.active.pop(key)
        end = self.now_ms if end_ms is None else end_ms
        if end > start:
            self.notes.append(Note(start / 1000, (end - start) / 1000, key[1], vel, FAMILIES[key[0]]))

    def finish(self, min_tail_ms: int = 250) -> list:
        """Close notes still sounding (a cut-off sample): they ring for at least min_tail_ms."""
        for key in list(self.active):
            start = self.active[key][0]
            self._close(key, max(self.now_ms, start + min_tail_ms))
        return sorted(self.notes, key=lambda n: (n.start, FAMILY_INDEX[n.family], n.pitch))


def decode(tokens, default_velocity: int = 84) -> list:
    """Tokens -> note list (sorted by start, family, pitch)."""
    dec = Decoder(default_velocity)
    for t in tokens:
        dec.feed(t)
    return dec.finish()


def token_times_ms(tokens) -> np.ndarray:
    """Running time after each token, in ms (what the model has 'heard' at that position)."""
    return np.cumsum(TOKEN_MS[np.asarray(tokens, dtype=np.int64)])


# ---- MIDI ---------------------------------------------------------------------------------

TICKS_PER_BEAT = 500
TEMPO_US = 500_000  # 120 qpm: with 500 ticks per beat one tick is one millisecond


def family_of(channel: int, program: int) -> str:
    """General MIDI channel/program -> instrument family."""
    if channel == 9:
        return "drums"
    if 32 <= program <= 39:
        return "bass"
    if program <= 15:
        return "piano"  # pianos, chromatic percussion
    if 16 <= program <= 23 or 24 <= program <= 31 or 40 <= program <= 55 or 88 <= program <= 103:
        return "pad"  # organs, guitars, strings, ensembles, synth pads
    return "melody"  # brass, reeds, pipes, leads, ethnic


def read_midi(path_or_file) -> list:
    """A MIDI file (path, file object or mido.MidiFile) -> note list in seconds (tempo-aware)."""

    mid = path_or_file if isinstance(path_or_file, mido.MidiFile) else mido.MidiFile(path_or_file)
    program = [0] * 16
    now = 0.0
    active, notes = {}, []
    for msg in mid:  # merged tracks, msg.time in seconds through the file's tempo map
        now += msg.time
        if msg.type == "program_change":
            program[msg.channel] = msg.program
        elif msg.type == "note_on" and msg.velocity > 0:
            key = (msg.channel, msg.note)
            if key in active:
                t0, v, fam = active.pop(key)
                notes.append(Note(t0, now - t0, msg.note, v, fam))
            active[key] = (now, msg.velocity, family_of(msg.channel, program[msg.channel]))
        elif msg.type in ("note_on", "note_off"):
            key = (msg.channel, msg.note)
            if key in active:
                t0, v, fam = active.pop(key)
                notes.append(Note(t0, now - t0, msg.note, v, fam))
    for (ch, pitch), (t0, v, fam) in active.items():
        notes.append(Note(t0, max(now - t0, 0.0), pitch, v, fam))
    notes = [
        Note(round(n.start, 3), round(n.duration, 3), n.pitch, n.velocity, n.family) for n in notes if n.duration > 0
    ]
    return sorted(notes, key=lambda n: (n.start, FAMILY_INDEX[n.family], n.pitch))


def write_midi(notes, path=None):
    """Note list -> type-1 mido.MidiFile (one named track per family, GM programs).

    Saved to `path` when given. Times go to ticks at a fixed 120 qpm (1 tick = 1 ms).
    """

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(meta)
    for fam in FAMILIES:
        fam_notes = [n for n in notes if n.family == fam]
        if not fam_notes:
            continue
        ch = FAMILY_CHANNEL[fam]
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=FAMILY_TRACK_NAME[fam], time=0))
        track.append(mido.Message("program_change", channel=ch, program=FAMILY_PROGRAM[fam], time=0))
        events = []
        for n in fam_notes:
            on = int(round(n.start * 1000))
            off = max(on + 1, int(round((n.start + n.duration) * 1000)))
            p = int(n.pitch)
            events.append((on, 1, p, int(n.velocity)))
            events.append((off, 0, p, 0))
        events.sort()
        now = 0
        for t, kind, p, v in events:
            if kind:
                track.append(mido.Message("note_on", channel=ch, note=p, velocity=v, time=t - now))
            else:
                track.append(mido.Message("note_off", channel=ch, note=p, velocity=0, time=t - now))
            now = t
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(track)
    if path is not None:
        mid.save(path)
    return mid
