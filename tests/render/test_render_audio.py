"""The audio deliverables: exact length, notes heard where they are, silence in a tacet,
determinism, one gain staging, the true-peak ceiling, stems that sum to the mix, the
spliced live render, the bank choice, and clear refusals when nothing can render."""

import os
import struct

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample

from bridge import atomic
from bridge import timebase as tb
from bridge.render import audio, loudness, soundfont, synth
from bridge.render.audio import NoSynthesizer, mix, read_wav, render_wav
from bridge.render.midi import write_midi
from bridge.render.soundfont import find_soundfont, has_velocity_layers

pytestmark = pytest.mark.skipif(find_soundfont() is None, reason="no GM soundfont installed")
needs_fluidsynth = pytest.mark.skipif(
    not synth.available()["fluidsynth"], reason="libfluidsynth or pyfluidsynth not installed"
)
needs_tsf = pytest.mark.skipif(not synth.available()["tinysoundfont"], reason="tinysoundfont not installed")
SYNTHS = [pytest.param("fluidsynth", marks=needs_fluidsynth), pytest.param("tinysoundfont", marks=needs_tsf)]
RATE = 48000
TEMPO_MAP = [(0, tb.bpm_to_tempo(96)), (4, tb.bpm_to_tempo(120))]

# Music from 0 to 0.75 s, a tacet from then until 3.5 s, music again from 3.5 s.
PARTS = [
    {
        "name": "Strings (pad)",
        "program": 48,
        "is_drum": False,
        "notes": [(0.0, 0.5, 60, 90), (0.0, 0.5, 64, 90), (3.5, 4.0, 67, 90)],
    },
    {"name": "French Horn (melody)", "program": 60, "is_drum": False, "notes": [(0.25, 0.75, 55, 90)]},
    {"name": "Drums (percussion)", "program": 0, "is_drum": True, "notes": [(0.0, 0.1, 36, 100), (3.5, 3.6, 38, 100)]},
]
TACET = [(0.75, 3.5)]


def _read(path, bits=24):
    data, rate = read_wav(path)
    assert rate == RATE and data.shape[1] == 2
    with open(path, "rb") as f:
        head = f.read(64)
    assert struct.unpack_from("<H", head, 34)[0] == bits
    return data


def _rms_db(x):
    return 20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-12))


def _held(program, velocity, seconds=2.0, pitch=None, start=0.0, name=None):
    pitch = pitch or audio.seating()["programs"][str(program)]["pitch"]
    return {
        "name": name or f"P{program} (pad)",
        "program": program,
        "is_drum": False,
        "notes": [(start, start + seconds, pitch, velocity)],
    }


@pytest.mark.parametrize("duration", [0.5, 1 / 3, 48 * 1001 / 24000, 4.0417])
def test_exact_sample_count_rate_and_depth(tmp_path, duration):
    result = render_wav(PARTS, tmp_path / "mix.wav", duration, tempo_map=TEMPO_MAP)
    assert result["samples"] == round(duration * RATE)
    assert len(_read(result["path"])) == round(duration * RATE)
    assert result["render_s"] >= 0


@pytest.mark.parametrize("name", SYNTHS)
def test_notes_are_heard_and_the_tacet_is_digital_silence(tmp_path, name):
    pcm = _read(render_wav(PARTS, tmp_path / "mix.wav", 4.5, tempo_map=TEMPO_MAP, synth=name, tacet=TACET)["path"])
    for start, end in [(0.0, 0.1), (0.3, 0.5), (3.5, 3.6), (3.7, 3.9)]:
        assert _rms_db(pcm[round(start * RATE) : round(end * RATE)]) > -45, f"no music at {start}-{end} s"
    assert not pcm[round(0.75 * RATE) : round(3.5 * RATE)].any()  # releases and the hall are cut
    assert pcm[-1].tolist() == [0.0, 0.0]  # the end is faded


def test_the_envelope_silences_tacets_and_fades_the_end():
    m = audio.Mix(
        rate=RATE,
        samples=2 * RATE,
        roles={},
        parts=(),
        tacet=((0.5, 1.0),),
        synth="",
        soundfont="",
        loudness=-23.0,
        rendered_s=0.0,
    )
    env = audio.envelope(m)
    assert len(env) == 2 * RATE and not env[RATE // 2 : RATE].any()
    assert (env[:23000] == 1).all() and (env[RATE:-500] == 1).all()
    assert 0 < env[23800] < 1 and env[-1] == 0  # faded in the 10 ms before the span, and at the end


@pytest.mark.parametrize("name", SYNTHS)
def test_the_same_input_gives_the_same_file(tmp_path, name):
    render_wav(PARTS, tmp_path / "a.wav", 2.0, tempo_map=TEMPO_MAP, synth=name)
    render_wav(PARTS, tmp_path / "b.wav", 2.0, tempo_map=TEMPO_MAP, synth=name)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


@needs_fluidsynth
@needs_tsf
def test_both_synths_place_the_notes_alike(tmp_path):
    """The fallback is no different cue: onsets agree to well within a frame."""
    parts = [{"name": "Drums", "program": 0, "is_drum": True, "notes": [(0.5, 0.6, 38, 110), (1.25, 1.35, 38, 110)]}]
    onsets = {}
    for name in ("tinysoundfont", "fluidsynth"):
        pcm = np.abs(_read(render_wav(parts, tmp_path / f"{name}.wav", 2.0, synth=name)["path"])).max(axis=1)
        loud = pcm > 0.05 * pcm.max()
        onsets[name] = [int(np.argmax(loud[round(t * RATE) :])) + round(t * RATE) for t in (0.4, 1.2)]
    for a, b in zip(onsets["tinysoundfont"], onsets["fluidsynth"]):
        assert abs(a - b) < 0.005 * RATE


def test_a_midi_file_renders_like_its_parts(tmp_path):
    midi = write_midi(tmp_path / "cue.mid", PARTS, TEMPO_MAP)
    render_wav(midi, tmp_path / "from_file.wav", 2.0)
    render_wav(PARTS, tmp_path / "from_parts.wav", 2.0, tempo_map=TEMPO_MAP)
    assert np.array_equal(_read(tmp_path / "from_file.wav"), _read(tmp_path / "from_parts.wav"))


def test_loudness_reads_bs1770_on_a_known_tone():
    """A 997 Hz sine at -20 dBFS in both channels reads -20 LUFS (BS.1770's calibration:
    0 dBFS in one channel is -3.01 LUFS)."""
    t = np.arange(5 * RATE) / RATE
    tone = (0.1 * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    assert loudness.integrated(np.stack([tone, tone], axis=1), RATE) == pytest.approx(-20.0, abs=0.1)
    assert loudness.integrated(np.zeros((RATE, 2), np.float32), RATE) is None
    assert loudness.integrated(np.zeros((100, 2), np.float32), RATE) is None


def test_one_pass_loudness_reads_as_pyloudnorm_does():
    """The cue report's meter (one K-weighting pass, any span) agrees with pyloudnorm's
    meter run on the whole signal and on a slice of it."""
    rng = np.random.default_rng(0)
    t = np.arange(12 * RATE) / RATE
    signal = rng.standard_normal((len(t), 2)) * 0.05 * (1 + np.sin(2 * np.pi * 0.3 * t))[:, None]
    signal[4 * RATE : 5 * RATE] *= 0.001  # a quiet second the relative gate drops
    level = loudness.Loudness(signal, RATE)
    meter = pyloudnorm.Meter(RATE)
    assert level.integrated() == pytest.approx(meter.integrated_loudness(signal), abs=0.05)
    a, b = 3 * RATE + 1234, 9 * RATE
    assert level.integrated(a, b) == pytest.approx(meter.integrated_loudness(signal[a:b]), abs=0.1)
    assert level.integrated(0, RATE // 4) is None
    assert loudness.Loudness(np.zeros((RATE, 2)), RATE).integrated() is None


@pytest.mark.parametrize("name", SYNTHS)
@pytest.mark.parametrize("program", [48, 60, 73, 0, 32])
def test_a_reference_note_lands_on_the_staging_whatever_the_preset(program, name):
    """Strings, horn, flute, piano, bass: presets that differ by several dB in the bank all
    land within ±0.5 LU of the staging at velocity 100 (a sustained one held, a struck or
    plucked one struck every quarter second, as it is played), and a delivery spec moves them."""
    phrase = _held(program, 100)
    if audio.seating()["programs"][str(program)].get("struck"):
        pitch = phrase["notes"][0][2]
        phrase["notes"] = [(0.25 * i, 0.25 * i + 0.2, pitch, 100) for i in range(8)]
    for target in (audio.REFERENCE_LUFS, -16.0):
        m = mix([phrase], 2.0, synth=name, loudness=target)
        heard = sum(m.roles.values())
        expected = audio.PART_LUFS + target - audio.REFERENCE_LUFS + audio.seating()["faders"]["pad"]
        assert loudness.integrated(heard, RATE) == pytest.approx(expected, abs=0.5)


@needs_fluidsynth
def test_velocity_sets_the_level_as_the_sf2_standard_says():
    """Below the reference, the SF2 default: amplitude follows velocity squared (40 log10),
    within what the bank's velocity-to-brightness filter adds."""
    levels = {v: loudness.integrated(sum(mix([_held(48, v)], 2.0).roles.values()), RATE) for v in (50, 100, 127)}
    assert levels[100] - levels[50] == pytest.approx(40 * np.log10(100 / 50), abs=2.0)
    assert levels[127] > levels[100] > levels[50]


def test_the_same_velocity_gives_the_same_level_in_any_cue():
    """A phrase of strings keeps its stem's loudness whether it plays alone, later in a cue,
    or beside a busy orchestra: the staging does not depend on the rest of the cue."""

    def strings(start):
        return {
            "name": "Strings (pad)",
            "program": 48,
            "is_drum": False,
            "notes": [(start + t, start + t + 0.9, p, 80) for t in (0, 1, 2) for p in (55, 60, 64)],
        }

    busy = [
        {
            "name": "Trumpet (melody)",
            "program": 56,
            "is_drum": False,
            "notes": [(0.25 * i, 0.25 * i + 0.2, 67 + i % 5, 120) for i in range(40)],
        },
        {
            "name": "Drums (percussion)",
            "program": 0,
            "is_drum": True,
            "notes": [(0.25 * i, 0.3 * i + 0.1, 36 + i % 3, 127) for i in range(40)],
        },
    ]
    alone = mix([strings(0.0)], 4.0).roles["pad"]
    later = mix([strings(3.0)], 7.0).roles["pad"][3 * RATE :]
    crowded = mix([strings(0.0)] + busy, 4.0).roles["pad"]
    level = loudness.integrated(alone, RATE)
    assert loudness.integrated(later, RATE) == pytest.approx(level, abs=0.5)
    assert loudness.integrated(crowded, RATE) == pytest.approx(level, abs=0.5)


def _true_peak_db(x, factor=8):
    """An independent true-peak reading: FFT resampling, eight times."""
    return 20 * np.log10(np.abs(resample(x.astype(np.float64), len(x) * factor, axis=0)).max())


def test_the_true_peak_is_held_under_the_ceiling_and_only_peaks_are_caught(tmp_path):
    loud = [
        {"name": f"Brass {i} (melody)", "program": 61, "is_drum": False, "notes": [(0.0, 2.0, 48 + 3 * i, 127)]}
        for i in range(8)
    ]
    loud.append(
        {
            "name": "Drums (percussion)",
            "program": 0,
            "is_drum": True,
            "notes": [(0.25 * i, 0.25 * i + 0.1, 49 if i % 4 == 0 else 38, 127) for i in range(12)],
        }
    )
    m = mix(loud, 3.0, loudness=-10.0)
    before = sum(m.roles.values())
    assert _true_peak_db(before) > 0.0  # it would clip without the limiter
    out = audio.write(m, tmp_path / "loud.wav")
    pcm = _read(out["path"])
    assert _true_peak_db(pcm) <= audio.TRUE_PEAK_DB + 0.1
    assert out["limiter_db"] > 0
    quiet = mix([_held(48, 60)], 2.0)
    done = audio.write(quiet, tmp_path / "quiet.wav", stems_dir=tmp_path, stem_prefix="q.")
    assert done["limiter_db"] == 0.0  # nothing touched below the ceiling
    stems = sum(_read(p, bits=32) for p in done["stems"].values())
    assert np.abs(stems - _read(done["path"])).max() < 2 / 8388607


def test_limiter_leaves_a_signal_under_the_ceiling_untouched():
    x = np.full((RATE, 2), 0.5, np.float32)
    limited, reduction = loudness.limit(x.copy(), RATE, -1.0)
    assert reduction == 0.0 and np.array_equal(limited, x)
    burst = np.zeros((RATE, 2), np.float32)
    burst[RATE // 2 : RATE // 2 + 480] = 1.5
    limited, reduction = loudness.limit(burst.copy(), RATE, -1.0)
    assert np.abs(limited).max() <= 10 ** (-1 / 20) and reduction > 3
    assert np.array_equal(limited[: RATE // 4], burst[: RATE // 4])  # far from the peak: gain 1


def test_stems_line_up_and_sum_to_the_mix_before_the_limiter(tmp_path):
    m = mix(PARTS, 2.0, tempo_map=TEMPO_MAP)
    result = dict(
        audio.write(m, tmp_path / "stems" / "1M1-mix.wav", stems_dir=tmp_path / "stems", stem_prefix="1M1-"),
        samples=m.samples,
    )
    names = [os.path.basename(p) for p in result["stems"].values()]
    assert names == ["1M1-percussion.wav", "1M1-pad.wav", "1M1-melody.wav"]
    stems = [_read(p, bits=32) for p in result["stems"].values()]
    assert all(len(s) == round(2.0 * RATE) == result["samples"] for s in stems)
    mixed = _read(result["path"])
    error = sum(stems) - mixed
    assert _rms_db(error) < _rms_db(mixed) - 40


def _dirty_free(a, b, spans, rate, margin=0.02):
    """Samples of a and b outside the given (start, end) sample spans, widened by margin s."""
    keep = np.ones(len(a), bool)
    pad = int(margin * rate)
    for lo, hi in spans:
        keep[max(0, lo - pad) : hi + pad] = False
    return a[keep], b[keep]


@pytest.mark.slow
@pytest.mark.parametrize("name", SYNTHS)
def test_a_spliced_render_equals_a_full_render(name):
    """Change the notes of 6-8 s of a 20 s cue (and a swell there): the spliced render
    renders a few seconds, and equals a full render of the same notes within -40 dB."""
    # a swell that differs until the end of the cue makes everything after it change
    assert audio._changed((set(), {"k": [(0, 100), (10, 70)]}), (set(), {"k": [(0, 100), (10, 90)]}), 99) == [(10, 99)]
    assert audio._changed(
        (set(), {"k": [(0, 100), (10, 70), (20, 100)]}), (set(), {"k": [(0, 100), (20, 100)]}), 99
    ) == [(10, 20)]
    rng = np.random.default_rng(3)

    def cue(changed):
        parts = []
        for program, role, low in ((48, "pad", 55), (0, "rhythm", 60), (73, "melody", 72), (32, "bass", 36)):
            notes = []
            for i in range(40):
                start = 0.5 * i
                pitch = int(low + rng.integers(0, 12))
                if changed and 6.0 <= start < 8.0:
                    pitch += 2
                notes.append((start, start + (1.0 if role == "pad" else 0.4), pitch, int(rng.integers(60, 110))))
            parts.append(
                {
                    "name": f"P{program} ({role})",
                    "program": program,
                    "is_drum": False,
                    "notes": notes,
                    "controls": [(0.0, 11, 100), (6.5, 11, 70 if changed else 100), (8.0, 11, 100)],
                }
            )
        parts.append(
            {
                "name": "Drums (percussion)",
                "program": 0,
                "is_drum": True,
                "notes": [(0.5 * i, 0.5 * i + 0.1, 36 if i % 2 else 38, 100) for i in range(40)],
            }
        )
        return parts

    rng = np.random.default_rng(3)
    before = cue(False)
    rng = np.random.default_rng(3)
    after = cue(True)
    old = mix(before, 20.0, synth=name)
    spliced = mix(after, 20.0, synth=name, previous=old)
    full = mix(after, 20.0, synth=name)
    assert full.rendered_s == pytest.approx(20.0 * len(full.roles))
    assert 0 < spliced.rendered_s < 0.4 * full.rendered_s
    assert set(spliced.roles) == set(full.roles)
    for role in full.roles:
        a, b = spliced.roles[role], full.roles[role]
        assert _rms_db(a - b) < _rms_db(b) - 40, role
    assert np.array_equal(spliced.roles["percussion"], old.roles["percussion"])  # untouched role: kept
    # and a later revision that changes nothing renders nothing
    again = mix(after, 20.0, synth=name, previous=spliced)
    assert again.rendered_s == 0.0


def test_a_cue_that_grows_renders_its_new_end():
    part = [
        {"name": "Strings (pad)", "program": 48, "is_drum": False, "notes": [(0.0, 1.0, 60, 90), (1.0, 2.0, 62, 90)]}
    ]
    longer = [dict(part[0], notes=part[0]["notes"] + [(2.0, 3.5, 64, 90)])]
    old = mix(part, 2.0)
    spliced, full = mix(longer, 4.0, previous=old), mix(longer, 4.0)
    assert spliced.samples == full.samples == 4 * RATE
    assert _rms_db(spliced.roles["pad"] - full.roles["pad"]) < _rms_db(full.roles["pad"]) - 40


def test_roles_and_their_order():
    assert audio.role_of({"name": "Violin (melody)"}) == "melody"
    assert audio.role_of({"name": "Kit", "is_drum": True}) == "percussion"
    assert audio.role_of({"name": "Lead Synth"}) == "lead synth"
    assert audio._ordered(["melody", "zither", "bass", "percussion"]) == ["percussion", "bass", "melody", "zither"]


def test_the_full_bank_is_chosen_before_the_fallback(tmp_path, monkeypatch):
    small, full = tmp_path / "TimGM6mb.sf2", tmp_path / "FluidR3_GM.sf2"
    for path in (small, full):
        path.write_bytes(b"RIFF")
    monkeypatch.delenv("SCOREBRIDGE_SOUNDFONT", raising=False)
    monkeypatch.setattr(soundfont, "SOUNDFONT_CANDIDATES", [str(full), str(small)][::1])
    assert soundfont.find_soundfont() == str(full)
    monkeypatch.setattr(soundfont, "SOUNDFONT_CANDIDATES", [str(small)])
    assert soundfont.find_soundfont() == str(small)
    assert "fallback bank TimGM6mb.sf2" in audio.bank_warning(str(small))
    assert audio.bank_warning(str(full)) is None
    linked = tmp_path / "default-GM.sf2"
    linked.symlink_to(small)
    assert soundfont.is_fallback_bank(linked)  # a link to the small bank warns too
    assert soundfont.SOUNDFONT_CANDIDATES != []


def test_the_default_candidates_put_the_full_banks_first():
    names = [os.path.basename(p) for p in soundfont.SOUNDFONT_CANDIDATES]
    assert names.index("FluidR3_GM.sf2") < names.index("TimGM6mb.sf2")
    assert names[-1] == "TimGM6mb.sf2"


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
    assert has_velocity_layers(str(broken))  # unreadable: pass velocities as they are
    assert has_velocity_layers(str(tmp_path / "missing.sf2"))


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
    monkeypatch.setattr(audio, "synthesizers", lambda: {"fluidsynth": None, "tinysoundfont": None})
    with pytest.raises(NoSynthesizer, match="no synthesizer"):
        render_wav(PARTS, tmp_path / "mix.wav", 1.0)
    monkeypatch.setattr(audio, "synthesizers", lambda: {"fluidsynth": None, "tinysoundfont": "python module"})
    assert audio.pick_synth()[1] == "tinysoundfont"  # the fallback synthesizer
    with pytest.raises(NoSynthesizer, match="install libfluidsynth"):
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


@pytest.mark.parametrize("value", [-80, 0, float("nan"), True, "loud"])
def test_absurd_loudness_is_refused(tmp_path, value):
    with pytest.raises(ValueError, match="loudness must be LUFS between -40 and -10"):
        render_wav(PARTS, tmp_path / "mix.wav", 1.0, loudness=value)


def test_absurd_notes_are_refused_before_rendering(tmp_path):
    bad = [{"name": "Strings", "program": 48, "notes": [(0.0, 1.0, 200, 80)]}]
    with pytest.raises(ValueError, match="pitch must be a MIDI note"):
        render_wav(bad, tmp_path / "mix.wav", 1.0)


def test_a_handed_over_mix_patches_only_its_changed_spans_and_matches_a_whole_render(tmp_path):
    """Live revisions hand the last Mix over: the mix, its limiter and its 24-bit PCM are
    re-made only around the changed spans (and where a tacet moved), and the file equals
    writing the same notes whole, the limiter included."""

    def cue(shift):
        parts = [
            {
                "name": f"Brass {i} (melody)",
                "program": 61,
                "is_drum": False,
                "notes": [
                    (t, t + 0.45, 50 + 4 * i + (shift if 3.0 <= t < 4.0 else 0), 127) for t in np.arange(0.0, 9.5, 0.5)
                ],
            }
            for i in range(4)
        ]
        parts.append(
            {
                "name": "Drums (percussion)",
                "program": 0,
                "is_drum": True,
                "notes": [(t, t + 0.1, 49 if int(t * 2) % 4 == 0 else 38, 127) for t in np.arange(0.0, 9.5, 0.5)],
            }
        )
        return parts

    old = mix(cue(0), 10.0, loudness=-12.0, tacet=[(7.0, 8.0)])
    audio.write(old, tmp_path / "old.wav")
    parts, tacet = cue(3), [(6.5, 8.0)]
    spliced = mix(parts, 10.0, loudness=-12.0, tacet=tacet, previous=old, handover=True)
    assert spliced.changed and "base" in spliced.derived
    out = audio.write(spliced, tmp_path / "spliced.wav")
    assert set(spliced.derived["patched"]) and sum(b - a for a, b in spliced.derived["patched"]) < 0.8 * spliced.samples
    whole = audio.write(mix(parts, 10.0, loudness=-12.0, tacet=tacet), tmp_path / "whole.wav")
    a, b = _read(out["path"]), _read(whole["path"])
    assert whole["limiter_db"] > 0  # loud enough to be limited
    assert _rms_db(a - b) < _rms_db(b) - 40
    assert not a[round(6.5 * RATE) : 8 * RATE].any()  # the moved tacet is silent
    assert _true_peak_db(a) <= audio.TRUE_PEAK_DB + 0.1


def test_instruments_sit_where_an_orchestra_sits():
    """Violins and harp left, cellos and basses right, as seen from the hall."""

    def balance(program):
        m = mix([_held(program, 100, name=f"P{program} (melody)")], 2.0)
        heard = sum(m.roles.values())
        left, right = (float(np.sqrt(np.mean(np.square(heard[:, c], dtype=np.float64)))) for c in (0, 1))
        return 20 * np.log10(left / right)

    assert balance(40) > 2 and balance(46) > 2  # violin, harp
    assert balance(42) < -2 and balance(43) < -2  # cello, contrabass
    assert abs(balance(73)) < 2  # flute, near the middle


def test_a_role_that_falls_silent_leaves_the_patched_mix(tmp_path):
    strings = {"name": "Strings (pad)", "program": 48, "is_drum": False, "notes": [(0.0, 3.0, 60, 90)]}
    drums = {
        "name": "Drums (percussion)",
        "program": 0,
        "is_drum": True,
        "notes": [(0.5 * i, 0.5 * i + 0.1, 38, 110) for i in range(8)],
    }
    old = mix([strings, drums], 4.0)
    audio.write(old, tmp_path / "old.wav")
    spliced = mix([strings], 4.0, previous=old, handover=True)
    out = audio.write(spliced, tmp_path / "spliced.wav")
    whole = audio.write(mix([strings], 4.0), tmp_path / "whole.wav")
    a, b = _read(out["path"]), _read(whole["path"])
    assert list(spliced.roles) == ["pad"] and _rms_db(a - b) < _rms_db(b) - 40


def test_a_spliced_mix_is_metered_again_only_where_it_changed_and_reads_the_same():
    from bridge.render import loudness as meter

    rate = 48000
    rng = np.random.default_rng(3)
    t = np.arange(30 * rate) / rate
    before = (0.1 * np.sin(2 * np.pi * 220 * t)[:, None] * np.ones((1, 2))).astype(np.float32)
    before += (0.02 * rng.standard_normal(before.shape)).astype(np.float32)
    after = before.copy()
    after[10 * rate : 12 * rate] *= 3.0  # louder for two seconds
    after[25 * rate : 25 * rate + 100] = 0.0
    changed = [(10 * rate, 12 * rate), (25 * rate, 25 * rate + 100)]
    fresh = meter.Loudness(after, rate)
    spliced = meter.Loudness(after, rate, base=meter.Loudness(before, rate), changed=changed)
    assert np.allclose(spliced.energy, fresh.energy, rtol=1e-9, atol=1e-9)
    sections = [(0, 5 * rate), (9 * rate, 13 * rate), (0, 30 * rate)]
    assert [spliced.integrated(a, b) for a, b in sections] == [fresh.integrated(a, b) for a, b in sections]
    assert spliced.integrated() != meter.Loudness(before, rate).integrated()
