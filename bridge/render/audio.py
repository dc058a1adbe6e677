"""The audio deliverables: a WAV preview mix, and stems, rendered from the MIDI's notes.

tinysoundfont renders in process and is the fastest, so it is preferred; the fluidsynth
command line is the fallback. Both synthesizers get the notes of the MIDI deliverable
itself, so the preview plays what the DAW will get. Every WAV is 16-bit stereo of exactly
the requested number of samples, so it lines up with the picture sample for sample.

Each part is rendered on its own and level-matched before the mix: a General MIDI soundfont's
presets differ in level as much as its velocities span (TimGM6mb: Synth Strings plays
8.5 dB under Slow Strings and 17.5 dB under French Horn at the same velocity, while velocity
56 to 104 is 10.8 dB on the standard curve below), so
without it a section's loudness would follow the palette's instruments, not the velocities
the music was given for its arousal. A part's level is measured once per soundfont, preset
and register (one note at its median pitch), and the part is brought to a common level.

tinysoundfont scales a note's amplitude linearly with velocity, where the SF2 standard's
default (fluidsynth's) follows its square: velocity 50 to 110 is 6.8 dB against 13.7 dB. For
a soundfont without velocity layers (the bundled TimGM6mb has none) it is given the square,
so both synthesizers follow the standard; with layers, the velocity also picks the sample,
and it is passed as it is.
"""

import io
import math
import numbers
import os
import re
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from bridge import atomic
from bridge import timebase as tb
from bridge.render.midi import DEFAULT_TEMPO, assign_channels, read_midi, write_midi
from bridge.render.soundfont import find_soundfont, has_velocity_layers, synthesizers

SYNTHS = ("tinysoundfont", "fluidsynth")  # in order of preference
PEAK = 10 ** (-1 / 20)        # normalise to -1 dBFS: full level, headroom for lossy encoders
MAX_GAIN = 10 ** (20 / 20)    # at most +20 dB, so a nearly silent render is not made loud
FADE_SECONDS = 0.010          # the end is a cut or a release the synth stopped: fade it
MATCH_RMS = 10 ** (-24 / 20)  # a part's reference note (velocity 100) is brought to this RMS
MATCH_MAX = 10 ** (18 / 20)   # level matching moves a part by at most 18 dB either way
_LEVELS = {}                  # (synth, soundfont, rate, program, pitch) -> matching gain


class NoSynthesizer(Exception):
    """No soundfont or no synthesizer here; the caller can deliver MIDI only, with a warning."""


def pick_synth(soundfont=None, synth="auto"):
    """(soundfont path, synthesizer name) a render would use, or NoSynthesizer saying why not."""
    if synth != "auto" and synth not in SYNTHS:
        raise ValueError(f"unknown synthesizer {synth!r}; choose auto, {', '.join(SYNTHS)}")
    soundfont = soundfont or find_soundfont()
    if soundfont is None:
        configured = os.environ.get("SCOREBRIDGE_SOUNDFONT")
        raise NoSynthesizer(f"soundfont not found: {configured} (SCOREBRIDGE_SOUNDFONT)"
                            if configured else "no General MIDI soundfont found: install "
                            "fluid-soundfont-gm or set SCOREBRIDGE_SOUNDFONT to an .sf2 file")
    if not Path(soundfont).is_file():
        raise NoSynthesizer(f"soundfont not found: {soundfont}")
    available = synthesizers()
    for name in SYNTHS if synth == "auto" else (synth,):
        if available.get(name):
            return str(soundfont), name
    wanted = " or ".join(SYNTHS) if synth == "auto" else synth
    raise NoSynthesizer(f"no synthesizer to render audio: install {wanted}")


def render_wav(parts_or_midi_path, wav_path, duration_seconds, *, tempo_map=None,
               soundfont=None, sample_rate=48000, synth="auto") -> dict:
    """Render the mix to a WAV of exactly round(duration × rate) samples, written atomically.

    Takes the parts that write_midi takes (with their tempo map; 120 bpm when none) or a
    MIDI file's path. Raises NoSynthesizer when nothing here can render.
    """
    started = time.perf_counter()
    samples = _sample_count(duration_seconds, sample_rate)
    soundfont, synth = pick_synth(soundfont, synth)
    parts, tempo_map = _load(parts_or_midi_path, tempo_map)
    mix = _render(synth, parts, tempo_map, soundfont, sample_rate, duration_seconds)
    path = _write_wav(wav_path, mix, _gain([mix]), sample_rate)
    return {"path": str(path.absolute()), "synth": synth, "soundfont": soundfont,
            "render_s": round(time.perf_counter() - started, 3), "samples": samples}


def render_stems(parts_or_midi_path, out_dir, duration_seconds, *, tempo_map=None,
                 soundfont=None, sample_rate=48000, synth="auto", prefix="") -> dict:
    """One WAV per part, all of the same length and at one common gain, so they sum to the mix.

    Files are named `<prefix><NN>-<part name>.wav` in `out_dir`; returns the render_wav
    fields with "paths" (in part order) in place of "path".
    """
    started = time.perf_counter()
    samples = _sample_count(duration_seconds, sample_rate)
    soundfont, synth = pick_synth(soundfont, synth)
    parts, tempo_map = _load(parts_or_midi_path, tempo_map)
    stems = [_render(synth, [part], tempo_map, soundfont, sample_rate, duration_seconds)
             for part in parts]
    gain = _gain([sum(stems)] + stems) if stems else 1.0
    folder, paths = Path(out_dir).absolute(), []
    for number, (part, stem) in enumerate(zip(parts, stems), start=1):
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", part["name"]).strip("_") or "part"
        path = _write_wav(folder / f"{prefix}{number:02d}-{name}.wav", stem, gain, sample_rate)
        paths.append(str(path))
    return {"paths": paths, "synth": synth, "soundfont": soundfont,
            "render_s": round(time.perf_counter() - started, 3), "samples": samples}


def _sample_count(duration_seconds, sample_rate):
    if not (isinstance(duration_seconds, numbers.Real) and math.isfinite(duration_seconds)
            and duration_seconds > 0):
        raise ValueError(f"duration must be finite seconds > 0, got {duration_seconds!r}")
    if not (isinstance(sample_rate, numbers.Integral) and 8000 <= sample_rate <= 192000):
        raise ValueError(f"sample rate must be an integer 8000..192000 Hz, got {sample_rate!r}")
    return tb.seconds_to_samples(duration_seconds, sample_rate)


def _load(parts_or_midi_path, tempo_map):
    """(parts, tempo map) as the MIDI deliverable holds them: parts go through a MIDI file,
    which checks them and puts every time on its tick."""
    if isinstance(parts_or_midi_path, (str, os.PathLike)):
        parts, tempo_map, _ = read_midi(parts_or_midi_path)
        return parts, tempo_map
    with tempfile.TemporaryDirectory(prefix="scorebridge-render-") as folder:
        midi = write_midi(Path(folder) / "mix.mid", parts_or_midi_path,
                          tempo_map or [(0, DEFAULT_TEMPO)])
        parts, tempo_map, _ = read_midi(midi)
    return parts, tempo_map


def _render(synth, parts, tempo_map, soundfont, sample_rate, duration_seconds):
    """Float stereo (samples × 2) of the parts, each level-matched, cut or padded to length,
    the end faded."""
    samples = tb.seconds_to_samples(duration_seconds, sample_rate)
    audio = np.zeros((samples, 2), dtype=np.float32)
    for part in parts:
        one = _synthesize(synth, [part], tempo_map, soundfont, sample_rate, duration_seconds)[:samples]
        audio[:len(one)] += one * np.float32(_match(synth, part, soundfont, sample_rate))
    fade = min(len(audio), tb.seconds_to_samples(FADE_SECONDS, sample_rate))
    if fade:
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    return audio


def _synthesize(synth, parts, tempo_map, soundfont, sample_rate, duration_seconds):
    """The synthesizer's own float stereo of the parts (its length may differ a little)."""
    if synth == "tinysoundfont":
        samples = tb.seconds_to_samples(duration_seconds, sample_rate)
        return _tinysoundfont(parts, soundfont, sample_rate, samples)
    return _fluidsynth(parts, tempo_map, soundfont, sample_rate, duration_seconds)


def _match(synth, part, soundfont, sample_rate):
    """The gain that brings the part's preset to MATCH_RMS: one note at the part's median
    pitch, velocity 100, held a second, measured once per synthesizer, soundfont, preset
    and pitch. Drums are left as the soundfont has them (a kit has no one level)."""
    if part["is_drum"] or not part["notes"]:
        return 1.0
    pitch = int(np.median([pitch for _, _, pitch, _ in part["notes"]]))
    key = (synth, soundfont, sample_rate, part["program"], pitch)
    if key not in _LEVELS:
        note = {"name": "level", "program": part["program"], "is_drum": False,
                "notes": [(0.0, 1.0, pitch, 100)]}
        heard = _synthesize(synth, [note], [(0, DEFAULT_TEMPO)], soundfont, sample_rate, 1.0)
        rms = float(np.sqrt(np.mean(heard[int(0.1 * sample_rate):sample_rate] ** 2)))
        _LEVELS[key] = min(MATCH_MAX, max(1 / MATCH_MAX, MATCH_RMS / rms)) if rms > 0 else 1.0
    return _LEVELS[key]


def _tinysoundfont(parts, soundfont, sample_rate, samples):
    """Render in process, running the synth from one note event to the next."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(soundfont)
    squared = not has_velocity_layers(soundfont)   # the SF2 default's curve (module docstring)
    events = []
    for part, channel in zip(parts, assign_channels(parts)):
        try:
            synth.program_select(channel, sfid, 0, part["program"], is_drums=part["is_drum"])
        except RuntimeError:  # a soundfont without this preset: its first one still sounds
            synth.program_select(channel, sfid, 0, 0, is_drums=part["is_drum"])
        for start, end, pitch, velocity in part["notes"]:
            on = tb.seconds_to_samples(start, sample_rate)
            off = max(on + 1, tb.seconds_to_samples(end, sample_rate))
            events += [(on, 1, channel, pitch, velocity), (off, 0, channel, pitch, 0)]
    buffer = bytearray(samples * 8)  # float32 stereo frames
    view = memoryview(buffer)
    done = 0
    for at, is_on, channel, pitch, velocity in sorted(events):  # note-offs first on a sample
        if at >= samples:
            break
        if at > done:
            synth.generate_simple(at - done, buffer=view[done * 8:at * 8])
            done = at
        if is_on:
            synth.noteon(channel, pitch, max(1, round(velocity * velocity / 127)) if squared else velocity)
        else:
            synth.noteoff(channel, pitch)
    if done < samples:
        synth.generate_simple(samples - done, buffer=view[done * 8:])
    return np.frombuffer(buffer, dtype=np.float32).reshape(samples, 2)


def _fluidsynth(parts, tempo_map, soundfont, sample_rate, duration_seconds):
    """Render with the fluidsynth command line, as raw float so nothing is dithered."""
    with tempfile.TemporaryDirectory(prefix="scorebridge-fluidsynth-") as folder:
        # a marker at the duration keeps the file, and so the render, running through
        # releases and reverb to the end instead of stopping at the last note-off
        midi = write_midi(Path(folder) / "in.mid", parts, tempo_map,
                          markers=[(duration_seconds, "end")])
        raw = Path(folder) / "out.raw"
        command = [shutil.which("fluidsynth") or "fluidsynth", "-n", "-i", "-q",
                   "-r", str(sample_rate), "-T", "raw", "-O", "float", "-E", "little",
                   "-F", str(raw), soundfont, str(midi)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not raw.is_file():
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RuntimeError(f"fluidsynth failed: {reason}")
        return np.fromfile(raw, dtype="<f4").reshape(-1, 2)


def _gain(signals):
    """One gain that brings the loudest of `signals` to PEAK (never above MAX_GAIN)."""
    peak = max(float(np.abs(s).max(initial=0.0)) for s in signals)
    return min(PEAK / peak, MAX_GAIN) if peak > 0 else 1.0


def _write_wav(path, audio, gain, sample_rate):
    """`audio` × gain as a 16-bit stereo WAV, written atomically; rounded, not dithered,
    so the same render gives the same file and silence stays digital silence."""
    scaled = audio * np.float32(gain * 32767.0)
    np.clip(np.rint(scaled, out=scaled), -32768, 32767, out=scaled)
    pcm = scaled.astype("<i2")
    data = io.BytesIO()
    with wave.open(data, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return atomic.write_bytes(path, data.getvalue())


def silence(wav_path, spans, fade_seconds=FADE_SECONDS) -> Path:
    """Make [start, end) second spans of a rendered WAV digital silence, rewritten atomically.

    Notes are cut where a tacet span begins, but a synthesizer's release and reverb ring on;
    a tacet must be silent, so the ring is faded out just before the span and cut inside it."""
    with wave.open(str(wav_path), "rb") as src:
        params = src.getparams()
        pcm = np.frombuffer(src.readframes(params.nframes), dtype="<i2").reshape(-1, params.nchannels)
    audio = pcm.astype(np.float32)
    rate = params.framerate
    fade = tb.seconds_to_samples(fade_seconds, rate)
    for start, end in spans:
        a, b = tb.seconds_to_samples(start, rate), tb.seconds_to_samples(end, rate)
        lead = max(0, a - fade)
        audio[lead:a] *= np.linspace(1.0, 0.0, a - lead, dtype=np.float32)[:, None]
        audio[a:b] = 0.0
    data = io.BytesIO()
    with wave.open(data, "wb") as out:
        out.setnchannels(params.nchannels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.rint(audio).astype("<i2").tobytes())
    return atomic.write_bytes(wav_path, data.getvalue())
