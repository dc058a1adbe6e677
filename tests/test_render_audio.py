"""The audio deliverables: exact length, notes heard where they are, silence in a tacet,
determinism, normalisation, stems, and a clear refusal when nothing can render."""

import os
import shutil
import struct
import wave

import numpy as np
import pytest

from bridge import atomic
from bridge import timebase as tb
from bridge.render import audio
from bridge.render.audio import NoSynthesizer, render_stems, render_wav
from bridge.render.midi import write_midi
from bridge.render.soundfont import find_soundfont, has_velocity_layers

pytestmark = pytest.mark.skipif(find_soundfont() is None, reason="no GM soundfont installed")
needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                      reason="fluidsynth not installed")
SYNTHS = ["tinysoundfont", pytest.param("fluidsynth", marks=needs_fluidsynth)]
RATE = 48000
TEMPO_MAP = [(0, tb.bpm_to_tempo(96)), (4, tb.bpm_to_tempo(120))]

# Music from 0 to 0.75 s, a tacet from then until 3.5 s, music again from 3.5 s.
PARTS = [
    {"name": "Strings", "program": 48, "is_drum": False,
     "notes": [(0.0, 0.5, 60, 90), (0.0, 0.5, 64, 90), (3.5, 4.0, 67, 90)]},
    {"name": "Horn", "program": 60, "is_drum": False, "notes": [(0.25, 0.75, 55, 90)]},
    {"name": "Drums", "program": 0, "is_drum": True,
     "notes": [(0.0, 0.1, 36, 100), (3.5, 3.6, 38, 100)]},
]


def _read(path):
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)


def _rms_dbfs(pcm, start_s, end_s):
    span = pcm[round(start_s * RATE):round(end_s * RATE)].astype(float) / 32768
    return 20 * np.log10(max(np.sqrt(np.mean(span ** 2)), 1e-9))


@pytest.mark.parametrize("duration", [0.5, 1 / 3, 48 * 1001 / 24000, 4.0417])
def test_exact_sample_count_and_rate(tmp_path, duration):
    result = render_wav(PARTS, tmp_path / "mix.wav", duration, tempo_map=TEMPO_MAP)
    assert result["samples"] == round(duration * RATE)
    assert len(_read(result["path"])) == round(duration * RATE)
    assert result["synth"] == "tinysoundfont" and result["render_s"] >= 0


@needs_fluidsynth
@pytest.mark.parametrize("duration", [0.6, 4.25])
def test_fluidsynth_fallback_gives_the_exact_length_too(tmp_path, duration):
    result = render_wav(PARTS, tmp_path / "mix.wav", duration, synth="fluidsynth")
    assert result["synth"] == "fluidsynth"
    assert len(_read(result["path"])) == round(duration * RATE)


@pytest.mark.parametrize("synth", SYNTHS)
def test_notes_are_heard_and_the_tacet_is_silent(tmp_path, synth):
    pcm = _read(render_wav(PARTS, tmp_path / "mix.wav", 4.5, tempo_map=TEMPO_MAP,
                           synth=synth)["path"])
    for start, end in [(0.0, 0.1), (0.3, 0.5), (3.5, 3.6), (3.7, 3.9)]:
        assert _rms_dbfs(pcm, start, end) > -30, f"no music at {start}-{end} s"
    # the releases have died away well before the music comes back
    assert _rms_dbfs(pcm, 2.7, 3.5) < -60
    assert np.abs(pcm[round(3.3 * RATE):round(3.5 * RATE)]).max() <= 2


@pytest.mark.parametrize("synth", SYNTHS)
def test_the_same_input_gives_the_same_samples(tmp_path, synth):
    one = render_wav(PARTS, tmp_path / "a.wav", 2.0, tempo_map=TEMPO_MAP, synth=synth)
    two = render_wav(PARTS, tmp_path / "b.wav", 2.0, tempo_map=TEMPO_MAP, synth=synth)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert one["samples"] == two["samples"]


@needs_fluidsynth
def test_both_synths_place_the_notes_alike(tmp_path):
    """The fallback is no different cue: onsets agree to well within a frame."""
    parts = [{"name": "Drums", "program": 0, "is_drum": True,
              "notes": [(0.5, 0.6, 38, 110), (1.25, 1.35, 38, 110)]}]
    onsets = {}
    for synth in ("tinysoundfont", "fluidsynth"):
        pcm = np.abs(_read(render_wav(parts, tmp_path / f"{synth}.wav", 2.0,
                                      synth=synth)["path"])).max(axis=1)
        loud = pcm > 0.05 * pcm.max()
        onsets[synth] = [int(np.argmax(loud[round(t * RATE):])) + round(t * RATE)
                         for t in (0.4, 1.2)]
    for a, b in zip(onsets["tinysoundfont"], onsets["fluidsynth"]):
        assert abs(a - b) < 0.005 * RATE


def test_a_midi_file_renders_like_its_parts(tmp_path):
    midi = write_midi(tmp_path / "cue.mid", PARTS, TEMPO_MAP)
    render_wav(midi, tmp_path / "from_file.wav", 2.0)
    render_wav(PARTS, tmp_path / "from_parts.wav", 2.0, tempo_map=TEMPO_MAP)
    assert np.array_equal(_read(tmp_path / "from_file.wav"), _read(tmp_path / "from_parts.wav"))


def test_peak_normalised_without_clipping_and_faded_at_the_cut(tmp_path):
    loud = [{"name": f"P{i}", "program": 48, "notes": [(0.0, 2.0, 48 + i, 127)]}
            for i in range(8)]
    pcm = _read(render_wav(loud, tmp_path / "loud.wav", 1.0)["path"])
    assert np.abs(pcm).max() == round(audio.PEAK * 32767)
    assert np.abs(pcm[-1]).max() == 0  # cut while the chord still sounds, faded to zero
    assert np.abs(pcm[-round(0.002 * RATE):]).max() < np.abs(pcm).max() / 4


def test_gain_reaches_the_peak_but_never_lifts_near_silence_much():
    assert audio._gain([np.full((4, 2), 0.5, np.float32)]) == pytest.approx(audio.PEAK / 0.5)
    assert audio._gain([np.full((4, 2), 1e-4, np.float32)]) == audio.MAX_GAIN
    assert audio._gain([np.zeros((4, 2), np.float32)]) == 1.0


@pytest.mark.parametrize("synth", SYNTHS)
def test_presets_are_level_matched_and_velocity_still_sets_the_loudness(tmp_path, synth):
    """Two presets whose levels differ by several dB sound alike at one velocity once
    matched; the louder velocity stays louder by what the synthesizer gives it."""
    def part(program, start, velocity):
        return {"name": f"P{program}", "program": program, "is_drum": False,
                "notes": [(start, start + 1.5, p, velocity) for p in (48, 52, 55)]}

    def levels(parts, spans):
        pcm = _read(render_wav(parts, tmp_path / "levels.wav", 2.0 * len(spans), synth=synth)["path"])
        return [_rms_dbfs(pcm, a + 0.2, a + 1.5) for a in spans]

    def unmatched(program):
        x = audio._synthesize(synth, [part(program, 0.0, 90)], [(0, tb.bpm_to_tempo(120))],
                              find_soundfont(), RATE, 1.6)
        return 20 * np.log10(np.sqrt(np.mean(x[round(0.2 * RATE):round(1.5 * RATE)] ** 2)))

    # strings, slow strings, synth strings, horn: the synthesizers disagree on which is loudest
    raw = {program: unmatched(program) for program in (48, 49, 50, 60)}
    quiet, loud = min(raw, key=raw.get), max(raw, key=raw.get)
    assert raw[loud] - raw[quiet] > 4                    # unmatched, several dB apart
    low, high = levels([part(quiet, 0.0, 90), part(loud, 2.0, 90)], [0.0, 2.0])
    assert abs(high - low) < 2.0
    soft, hard = levels([part(quiet, 0.0, 50), part(quiet, 2.0, 110)], [0.0, 2.0])
    if synth == "fluidsynth" or not has_velocity_layers(find_soundfont()):
        # the SF2 default: amplitude follows the square of velocity, 13.7 dB from 50 to 110
        assert hard - soft == pytest.approx(40 * np.log10(110 / 50), abs=1.5)
    else:
        assert hard - soft > 4


def _sf2(generators):
    """A minimal SF2 file: just the RIFF frame and the pdta generator lists."""
    def chunk(kind, payload):
        return kind + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)
    igen = b"".join(struct.pack("<HBB", oper, low, high) for oper, low, high in generators)
    pdta = chunk(b"LIST", b"pdta" + chunk(b"pgen", struct.pack("<HBB", 0, 0, 0)) + chunk(b"igen", igen))
    return chunk(b"RIFF", b"sfbk" + chunk(b"LIST", b"INFO") + pdta)


def test_velocity_layers_are_read_from_the_soundfont(tmp_path):
    layered, plain, broken = tmp_path / "layered.sf2", tmp_path / "plain.sf2", tmp_path / "broken.sf2"
    # generator 43 is a zone's key range, 44 its velocity range
    layered.write_bytes(_sf2([(43, 0, 60), (44, 0, 63), (43, 0, 60), (44, 64, 127)]))
    plain.write_bytes(_sf2([(43, 0, 60), (44, 0, 127), (43, 61, 127)]))
    broken.write_bytes(b"RIFF\x10\0\0\0sfbk")
    assert has_velocity_layers(str(layered)) and not has_velocity_layers(str(plain))
    assert has_velocity_layers(str(broken))                # unreadable: pass velocities as they are
    assert has_velocity_layers(str(tmp_path / "missing.sf2"))


def test_stems_line_up_and_sum_to_the_mix(tmp_path):
    result = render_stems(PARTS, tmp_path / "stems", 2.0, tempo_map=TEMPO_MAP, prefix="1M1-")
    names = [os.path.basename(p) for p in result["paths"]]
    assert names == ["1M1-01-Strings.wav", "1M1-02-Horn.wav", "1M1-03-Drums.wav"]
    stems = [_read(p).astype(int) for p in result["paths"]]
    assert all(len(s) == round(2.0 * RATE) == result["samples"] for s in stems)
    mix = _read(render_wav(PARTS, tmp_path / "mix.wav", 2.0, tempo_map=TEMPO_MAP)["path"])
    # the synth steps its envelopes per block, and a mix has other block boundaries
    assert np.abs(sum(stems) - mix).max() < 0.01 * 32767


def test_no_soundfont_is_a_specific_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREBRIDGE_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(NoSynthesizer, match="missing.sf2 .SCOREBRIDGE_SOUNDFONT") as caught:
        render_wav(PARTS, tmp_path / "mix.wav", 1.0)
    assert "\n" not in str(caught.value)
    monkeypatch.delenv("SCOREBRIDGE_SOUNDFONT")
    monkeypatch.setattr(audio, "find_soundfont", lambda: None)
    with pytest.raises(NoSynthesizer, match="no General MIDI soundfont found"):
        render_wav(PARTS, tmp_path / "mix.wav", 1.0)
    with pytest.raises(NoSynthesizer, match="missing.sf2"):
        render_wav(PARTS, tmp_path / "mix.wav", 1.0, soundfont=tmp_path / "missing.sf2")
    assert not (tmp_path / "mix.wav").exists()


def test_no_synthesizer_is_a_specific_error(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "synthesizers", lambda: {"tinysoundfont": None, "fluidsynth": None})
    with pytest.raises(NoSynthesizer, match="no synthesizer"):
        render_wav(PARTS, tmp_path / "mix.wav", 1.0)
    monkeypatch.setattr(audio, "synthesizers",
                        lambda: {"tinysoundfont": "python module", "fluidsynth": None})
    with pytest.raises(NoSynthesizer, match="install fluidsynth"):
        render_wav(PARTS, tmp_path / "mix.wav", 1.0, synth="fluidsynth")
    assert not (tmp_path / "mix.wav").exists()


def test_a_failing_write_leaves_no_file(tmp_path, monkeypatch):
    def broken_disk(fd):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fsync", broken_disk)
    with pytest.raises(OSError, match="disk full"):
        render_wav(PARTS, tmp_path / "mix.wav", 1.0)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("duration", [0, -1.0, float("nan"), float("inf"), "2"])
def test_absurd_durations_are_refused(tmp_path, duration):
    with pytest.raises(ValueError, match="duration must be finite seconds > 0"):
        render_wav(PARTS, tmp_path / "mix.wav", duration)


def test_absurd_notes_are_refused_before_rendering(tmp_path):
    bad = [{"name": "Strings", "program": 48, "notes": [(0.0, 1.0, 200, 80)]}]
    with pytest.raises(ValueError, match="pitch must be a MIDI note"):
        render_wav(bad, tmp_path / "mix.wav", 1.0)
