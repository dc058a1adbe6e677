"""Playing parts through a General MIDI soundfont: one interface, two synthesizers.

FluidSynth (its library, through pyfluidsynth) is the reference SF2 player: it honours a
bank's velocity layers, envelopes, filters and release, so it is preferred. tinysoundfont,
a small in-process player, is the fallback where libfluidsynth is missing.

Both are driven the same way by `play`: one synthesizer instance per group of parts (a
role), one channel per part, the part's level set with channel volume (CC7) and its seat in
the orchestra with pan (CC10), its expression swells sent as CC11, and the notes played on
the sample they fall on. Built-in reverb and chorus are off: the hall is added afterwards by
the mixer (render/audio.py), where it is linear and time-invariant, so a span of the cue
rendered again matches the whole render.

A synthesizer works in blocks of BLOCK samples and starts a note at the next block
boundary; a render that starts at a multiple of BLOCK (the mixer's spliced live renders do)
therefore puts every note on the same sample as a render from the start.
"""

import contextlib
import ctypes
import functools
import importlib.util
import io
import sys
import threading

import numpy as np

from bridge import timebase as tb
from bridge.render.midi import assign_channels
from bridge.render.soundfont import has_velocity_layers

BLOCK = 64  # both synthesizers' block size, in samples
CHUNK = 1 << 16  # samples rendered at most per call where no event falls
_IMPORTING = threading.Lock()
_CREATING = threading.Lock()
_KEEPERS = {}  # soundfont path -> an idle FluidSynth holding it loaded


class Synth:
    """A synthesizer with a soundfont loaded. `volume_power`: how CC7 (and CC11) scale the
    amplitude, (value / 127) ** volume_power, so a gain can be set as a CC value."""

    name = ""
    volume_power = 2.0

    def program(self, channel, program, is_drum): ...
    def control(self, channel, controller, value): ...
    def noteon(self, channel, pitch, velocity): ...
    def noteoff(self, channel, pitch): ...
    def write(self, out):
        """Render len(out) frames into the float32 (n, 2) array `out`."""

    def close(self): ...


class FluidSynth(Synth):
    """libfluidsynth through pyfluidsynth; samples are written as float, never through 16 bits.
    The SF2 default modulators make CC7 and CC11 attenuate by 40·log10(value/127) dB."""

    name = "fluidsynth"
    volume_power = 2.0

    def __init__(self, soundfont, rate):
        fluidsynth = _import_fluidsynth()
        # Creating a synth sets up process-wide defaults (its default modulators) without a
        # lock: two threads doing it at once were seen to garble them (a different sound and
        # "fluid_synth_add_default_mod" warnings). Creation and deletion take turns.
        with _CREATING:
            self.synth = fluidsynth.Synth(
                gain=1.0,
                samplerate=float(rate),
                **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512},
            )
            self.sfid = self.synth.sfload(str(soundfont))
            if self.sfid >= 0 and str(soundfont) not in _KEEPERS and len(_KEEPERS) < 2:
                # FluidSynth shares a bank's samples between synths while one holds them; a
                # synth kept with the bank loaded makes the next render's load 0.1 s shorter
                keeper = fluidsynth.Synth(gain=1.0, samplerate=float(rate))
                if keeper.sfload(str(soundfont)) >= 0:
                    _KEEPERS[str(soundfont)] = keeper
        if self.sfid < 0:
            self.close()
            raise RuntimeError(f"fluidsynth could not load {soundfont}")
        self._write = _fluid_write_float(fluidsynth._fl)

    def program(self, channel, program, is_drum):
        if is_drum:
            self.synth.program_select(channel, self.sfid, 128, 0)
        elif self.synth.program_select(channel, self.sfid, 0, program) != 0:
            self.synth.program_select(channel, self.sfid, 0, 0)  # a bank without it: its first preset

    def control(self, channel, controller, value):
        self.synth.cc(channel, controller, value)

    def noteon(self, channel, pitch, velocity):
        self.synth.noteon(channel, pitch, velocity)

    def noteoff(self, channel, pitch):
        self.synth.noteoff(channel, pitch)

    def write(self, out):
        address = out.ctypes.data
        if self._write(self.synth.synth, len(out), address, 0, 2, address + 4, 0, 2) != 0:
            raise RuntimeError("fluidsynth failed to render")

    def close(self):
        with _CREATING:
            self.synth.delete()


@functools.lru_cache(maxsize=1)
def _fluid_write_float(library):
    """fluid_synth_write_float with its argument types declared (pointers are 64-bit)."""
    write = library.fluid_synth_write_float
    write.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    write.restype = ctypes.c_int
    return write


class TinySoundFont(Synth):
    """tinysoundfont: scales a note's amplitude linearly with velocity where the SF2 default
    follows its square, so a bank without velocity layers gets the velocity squared (both
    synthesizers then follow the standard); its CC7 curve is the cube."""

    name = "tinysoundfont"
    volume_power = 3.0

    def __init__(self, soundfont, rate):
        import tinysoundfont  # noqa: PLC0415

        self.synth = tinysoundfont.Synth(samplerate=rate)
        self.sfid = self.synth.sfload(str(soundfont))
        self.squared = not has_velocity_layers(str(soundfont))

    def program(self, channel, program, is_drum):
        try:
            self.synth.program_select(channel, self.sfid, 0, program, is_drums=is_drum)
        except RuntimeError:
            self.synth.program_select(channel, self.sfid, 0, 0, is_drums=is_drum)

    def control(self, channel, controller, value):
        self.synth.control_change(channel, controller, value)

    def noteon(self, channel, pitch, velocity):
        self.synth.noteon(channel, pitch, max(1, round(velocity * velocity / 127)) if self.squared else velocity)

    def noteoff(self, channel, pitch):
        self.synth.noteoff(channel, pitch)

    def write(self, out):
        self.synth.generate_simple(len(out), buffer=memoryview(out).cast("B"))

    def close(self):
        pass


SYNTHS = {"fluidsynth": FluidSynth, "tinysoundfont": TinySoundFont}  # in order of preference


def available() -> dict:
    """Which synthesizers are usable here: name -> how it is reached (None when absent)."""
    return {
        "fluidsynth": _libfluidsynth(),
        "tinysoundfont": "python module" if importlib.util.find_spec("tinysoundfont") else None,
    }


def version(name) -> str:
    """The synthesizer's library version, part of what a measured preset level depends on."""
    from importlib import metadata  # noqa: PLC0415

    package = {"fluidsynth": "pyfluidsynth", "tinysoundfont": "tinysoundfont"}[name]
    try:
        found = metadata.version(package)
    except metadata.PackageNotFoundError:
        found = "?"
    if name == "fluidsynth" and _libfluidsynth():
        library = _import_fluidsynth()._fl
        try:
            library.fluid_version_str.restype = ctypes.c_char_p
            found += "/" + library.fluid_version_str().decode()
        except AttributeError:
            pass
    return found


def _import_fluidsynth():
    """pyfluidsynth, imported quietly (it prints where it found the library when $CI is set);
    ImportError when it or libfluidsynth is missing."""
    with _IMPORTING:  # redirect_stdout swaps a global: never from two threads at once
        if "fluidsynth" not in sys.modules:
            with contextlib.redirect_stdout(io.StringIO()):
                import fluidsynth  # noqa: F401, PLC0415  (a C library: loaded only when rendering)
    return sys.modules["fluidsynth"]


@functools.lru_cache(maxsize=1)
def _libfluidsynth():
    if importlib.util.find_spec("fluidsynth") is None:
        return None
    try:
        fluidsynth = _import_fluidsynth()
    except (ImportError, OSError):
        return None
    return getattr(fluidsynth._fl, "_name", "libfluidsynth")


def play(synth_name, soundfont, parts, rate, start, end, *, gains=None, pans=None) -> np.ndarray:
    """Float32 stereo (end - start, 2) of `parts` from sample `start` (a multiple of BLOCK, so
    notes fall where a render from 0 puts them) to `end`, all on one synthesizer instance.

    gains: one linear gain per part (its level match and staging), set as CC7 relative to the
    loudest, which scales the whole output; pans: CC10 values (0..127, 64 centre).
    Notes that end before `start` are not played; ones that began before it sound from it.
    """
    if start % BLOCK:
        raise ValueError(f"a render starts on a multiple of {BLOCK} samples, got {start}")
    gains = list(gains) if gains is not None else [1.0] * len(parts)
    pans = list(pans) if pans is not None else [64] * len(parts)
    top = max(gains, default=1.0) or 1.0
    synth = SYNTHS[synth_name](soundfont, rate)
    try:
        events = []  # (sample, order, channel, a, b): order 0 control, 1 note-off, 2 note-on
        for part, channel, gain, pan in zip(parts, assign_channels(parts), gains, pans):
            synth.program(channel, part["program"], part.get("is_drum", False))
            volume = round(127 * (gain / top) ** (1 / synth.volume_power))
            synth.control(channel, 7, max(1, min(127, volume)))
            synth.control(channel, 10, int(pan))
            controls = sorted(part.get("controls", ()))
            before = [c for c in controls if tb.seconds_to_samples(c[0], rate) <= start]
            for _, controller, value in {c[1]: c for c in before}.values():  # the state at `start`
                synth.control(channel, controller, value)
            for seconds, controller, value in controls[len(before) :]:
                events.append((tb.seconds_to_samples(seconds, rate), 0, channel, controller, value))
            notes = part["notes"]
            times = tb.seconds_to_samples_all([t for note in notes for t in note[:2]], rate).tolist()
            for (_, _, pitch, velocity), on, off in zip(notes, times[0::2], times[1::2]):
                off = max(on + 1, off)
                if off <= start or on >= end:
                    continue
                events += [(max(on, start), 2, channel, pitch, velocity), (off, 1, channel, pitch, 0)]
        events.sort()
        out = np.zeros((end - start, 2), dtype=np.float32)
        done = start
        for at, order, channel, a, b in events:
            if at >= end:
                break
            while done < at:
                step = min(at, done + CHUNK)
                synth.write(out[done - start : step - start])
                done = step
            if order == 0:
                synth.control(channel, a, b)
            elif order == 1:
                synth.noteoff(channel, a)
            else:
                synth.noteon(channel, a, b)
        while done < end:
            step = min(end, done + CHUNK)
            synth.write(out[done - start : step - start])
            done = step
        return out * np.float32(top)
    finally:
        synth.close()
