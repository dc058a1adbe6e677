"""The audio deliverables: a WAV mix and one stem per role, staged, in a hall, limited.

Resolve has no MIDI tracks, so its users judge a cue by this WAV alone. It is built as a
mixing engineer would:

- Gain staging, one for every cue. Each part is level-matched once per synthesizer, bank
  and program: its reference note (velocity 100 at the program's reference pitch, held two
  seconds, with its hall send and pan) is brought to PART_LUFS, so a bank's presets, which differ in level as much
  as its velocities span, no longer decide how loud a section is. After that only the
  velocities the arrangement gave the music (they follow arousal) and how many parts play
  set the level: a calm cue is quieter than a chase, as on a dub stage. `loudness` shifts
  the whole staging for another delivery spec (REFERENCE_LUFS is where a mid-arousal cue
  lands).
- Faders, seats and a hall. Each role has a fader, set so the tune leads (a dense arpeggio
  or drum pattern of notes each at the reference level would bury a melody line); each
  program is panned as an orchestra sits; each role sends to a hall reverb (pedalboard's)
  by its own amount. The data are in data/mix.json.
- Stems. Each role (percussion, bass, pad, rhythm, melody) is rendered on its own, with its
  own hall return, so the stems sum to the mix exactly; the mix is their sum through a
  limiter that only catches true peaks over the ceiling (render/loudness.py).
- Live splicing. A Mix keeps its parts and one raw buffer per role. Given the previous Mix,
  only the stretches where notes differ (from a changed note's start to its end plus the
  release and the hall's tail) are rendered again, from a block boundary before the first
  note still sounding there, and copied over the old buffers: the rest of the cue is the
  old audio, sample for sample. Tacets and the end fade are applied when writing, never to
  the kept buffers. A Mix handed over (a live session keeps only its newest) also gives its
  limited mix and packed samples, and only the changed spans of those are made again.

The mix is a 24-bit WAV (it is limited, so nothing clips); stems are 32-bit float WAVs,
since they are not limited and may pass 0 dBFS where the mix is loud. Both have exactly
round(duration × rate) samples, so they line up with the picture sample for sample.
"""

import dataclasses
import functools
import hashlib
import json
import math
import numbers
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np

from bridge import atomic, config
from bridge.settings import LOUDNESS_RANGE, check_loudness  # noqa: F401  (score.py reads them here)
from bridge import timebase as tb
from bridge.render import loudness as meter
from bridge.render import synth as synth_mod
from bridge.render.midi import DEFAULT_TEMPO, on_ticks, read_midi
from bridge.render.soundfont import find_soundfont, is_fallback_bank

REFERENCE_LUFS = -23.0  # where a mid-arousal cue lands (EBU R128's target)
PART_LUFS = -30.0  # a part's reference note at the reference staging (puts a mid-arousal cue near -23)
TRUE_PEAK_DB = -1.0  # the limiter's ceiling, dBTP
MATCH_MAX_DB = 24.0  # level matching moves a part by at most this either way
TAIL_S = 3.0  # after a note's end, its release and the hall still sound this long
FADE_SECONDS = 0.010  # the end is a cut: faded; so is the last moment before a tacet
MERGE_S = 1.0  # changed stretches closer than this are rendered as one
WORKERS = 2  # roles rendered at once (the synthesizer releases the GIL)
ROLE_ORDER = ("percussion", "bass", "pad", "rhythm", "melody")
_LEVELS = {}  # (synth, soundfont, rate, program, is_drum, send, pan) -> matching gain


class NoSynthesizer(Exception):
    """No soundfont or no synthesizer here; the caller can deliver MIDI only, with a warning."""


def preload():
    """Import the audio libraries (scipy.signal alone takes over half a second) so a render
    that follows does not wait for them; score() runs it in the background while it composes."""
    import pedalboard  # noqa: F401, PLC0415
    import scipy.ndimage  # noqa: F401, PLC0415
    import scipy.signal  # noqa: F401, PLC0415

    if synth_mod.available()["fluidsynth"]:
        synth_mod._import_fluidsynth()


@functools.lru_cache(maxsize=1)
def seating() -> dict:
    """data/mix.json: pans and reference pitches by program, sends by role, the hall."""
    return json.loads(resources.files("bridge.render").joinpath("data/mix.json").read_text())


def synthesizers() -> dict:
    """Which synthesizers are usable here: name -> how it is reached (None when absent)."""
    return synth_mod.available()


def pick_synth(soundfont=None, synth="auto"):
    """(soundfont path, synthesizer name) a render would use, or NoSynthesizer saying why not."""
    if synth != "auto" and synth not in synth_mod.SYNTHS:
        raise ValueError(f"unknown synthesizer {synth!r}; choose auto, {', '.join(synth_mod.SYNTHS)}")
    soundfont = soundfont or find_soundfont()
    if soundfont is None:
        configured = config.soundfont_setting()
        raise NoSynthesizer(
            f"soundfont not found: {configured} (SCOREBRIDGE_SOUNDFONT)"
            if configured
            else "no General MIDI soundfont found: install "
            "fluid-soundfont-gm or set SCOREBRIDGE_SOUNDFONT to an .sf2 file"
        )
    if not Path(soundfont).is_file():
        raise NoSynthesizer(f"soundfont not found: {soundfont}")
    available = synthesizers()
    for name in synth_mod.SYNTHS if synth == "auto" else (synth,):
        if available.get(name):
            return str(soundfont), name
    wanted = {"fluidsynth": "libfluidsynth and pyfluidsynth", "tinysoundfont": "tinysoundfont"}
    raise NoSynthesizer(
        "no synthesizer to render audio: install "
        + (" or ".join(wanted.values()) if synth == "auto" else wanted[synth])
    )


def bank_warning(soundfont):
    """A warning when the bank is the small fallback one, else None."""
    if is_fallback_bank(soundfont):
        return (
            f"the WAV uses the small fallback bank {Path(soundfont).name}, which sounds like a toy: "
            "install fluid-soundfont-gm (FluidR3_GM) or set SCOREBRIDGE_SOUNDFONT"
        )
    return None


@dataclasses.dataclass(frozen=True)
class Mix:
    """A cue's staged audio before the limiter: one raw stereo buffer per role (no tacet and
    no end fade yet; `envelope` applies them), and the parts it was played from."""

    rate: int
    samples: int
    roles: dict  # role -> float32 (samples, 2)
    parts: tuple  # the parts played, times in seconds on their MIDI ticks
    tacet: tuple  # (start_s, end_s) spans that must be silent
    synth: str
    soundfont: str
    loudness: float  # the staging's target, LUFS
    rendered_s: float  # seconds of audio this Mix had to render (all, or the changed stretches)
    changed: tuple = None  # sample spans that differ from the previous Mix (None: rendered whole)
    derived: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    # derived: what master() and write() made of it ("mix", "env", "pcm", "limiter_db"); a
    # Mix spliced from a handed-over one starts with that one's under "base" and re-makes
    # only its changed spans


def role_of(part) -> str:
    """The role a part plays: the "(role)" its track name ends with, percussion for a drum
    kit, otherwise its own name (a part from elsewhere gets a stem of its own)."""
    found = re.search(r"\(([^()]+)\)\s*$", part.get("name", ""))
    if found:
        return found.group(1).strip().lower()
    return "percussion" if part.get("is_drum") else (part.get("name") or "part").strip().lower()


def _ordered(roles):
    return sorted(roles, key=lambda r: (ROLE_ORDER.index(r) if r in ROLE_ORDER else len(ROLE_ORDER), r))


def mix(
    parts_or_midi_path,
    duration_seconds,
    *,
    tempo_map=None,
    soundfont=None,
    synth="auto",
    sample_rate=48000,
    loudness=REFERENCE_LUFS,
    tacet=(),
    previous=None,
    handover=False,
) -> Mix:
    """Render the staged stems of the parts that write_midi takes (with their tempo map;
    120 bpm when none) or of a MIDI file. With `previous` (the Mix of an earlier revision,
    same rate, synth, bank and staging), only what changed is rendered again; with handover,
    `previous` is given up to this render, which splices into its buffers instead of copying
    them (a live session does so: it keeps only the newest Mix).
    Raises NoSynthesizer when nothing here can render."""
    samples = _sample_count(duration_seconds, sample_rate)
    loudness = check_loudness(loudness)
    soundfont, synth = pick_synth(soundfont, synth)
    parts, _ = _load(parts_or_midi_path, tempo_map)
    groups = {}
    for part in parts:
        groups.setdefault(role_of(part), []).append(part)
    shift = 10 ** ((loudness - REFERENCE_LUFS) / 20)
    staged = {
        role: (
            [_match(synth, soundfont, sample_rate, p, _send(role)) * shift * _fader(role) for p in group],
            [_pan(p) for p in group],
        )
        for role, group in groups.items()
    }

    reuse = previous is not None and (previous.rate, previous.synth, previous.soundfont, previous.loudness) == (
        sample_rate,
        synth,
        soundfont,
        loudness,
    )
    jobs = []  # (role, start sample, end sample)
    if reuse:
        dirty = _dirty(previous, groups, sample_rate, samples)
        jobs = [(role, a, b) for role, spans in dirty.items() for a, b in spans]
    else:
        jobs = [(role, 0, samples) for role in groups]

    def run(job):
        role, a, b = job
        return job, _render_role(synth, soundfont, sample_rate, groups[role], *staged[role], role, a, b)

    with ThreadPoolExecutor(max_workers=min(WORKERS, max(1, len(jobs)))) as pool:
        done = list(pool.map(run, jobs))
    roles = {}
    for role in _ordered(groups):
        whole = [audio for (r, a, b), audio in done if r == role and (a, b) == (0, samples)]
        if whole:  # rendered whole: the buffer is the render itself
            roles[role] = whole[0]
            continue
        if reuse and role in previous.roles and previous.samples == samples:
            old = previous.roles[role]
            # a role nothing changed in shares the old buffer; one that changed is spliced
            # into a copy, or, handed over, into the old buffer itself (the old Mix is spent)
            changed = any(r == role for r, _, _ in jobs)
            roles[role] = old.copy() if changed and not handover else old
            continue
        buffer = np.zeros((samples, 2), dtype=np.float32)
        if reuse and role in previous.roles:
            keep = min(samples, previous.samples)
            buffer[:keep] = previous.roles[role][:keep]
        roles[role] = buffer
    for (role, a, b), audio in done:
        if roles[role] is not audio:
            roles[role][a:b] = audio
    rendered = sum(b - a for _, a, b in jobs) / sample_rate
    changed = None
    if reuse:
        spans = [(a, b) for _, a, b in jobs]
        if set(previous.roles) - set(groups):  # a role that fell silent leaves the whole mix
            spans.append((0, samples))
        changed = tuple(_merge(spans, samples))
    return Mix(
        rate=sample_rate,
        samples=samples,
        roles=roles,
        parts=tuple(parts),
        tacet=tuple((float(a), float(b)) for a, b in tacet),
        synth=synth,
        soundfont=soundfont,
        loudness=loudness,
        rendered_s=round(rendered, 3),
        changed=changed,
        derived={"base": previous.derived} if reuse and handover and previous.samples == samples else {},
    )


def _render_role(synth, soundfont, rate, parts, gains, pans, role, a, b):
    """The role's audio (dry plus its hall return) over samples [a, b). The synthesizer
    starts on the block boundary at or before the first note still sounding at `a`, and
    only notes heard in [a, b) are played."""
    tail = tb.seconds_to_samples(TAIL_S, rate)
    heard = []
    first = a
    for part in parts:
        times = tb.seconds_to_samples_all([t for note in part["notes"] for t in note[:2]], rate).tolist()
        notes = []
        for note, on, off in zip(part["notes"], times[0::2], times[1::2]):
            if on < b and off + tail > a:
                notes.append(note)
                first = min(first, on)
        heard.append(dict(part, notes=notes))
    start = max(0, first) // synth_mod.BLOCK * synth_mod.BLOCK
    dry = synth_mod.play(synth, soundfont, heard, rate, start, b, gains=gains, pans=pans)
    wet = _hall(dry, rate, _send(role))
    return (dry + wet)[a - start :]


def _fader(role):
    """The role's fader (data/mix.json) as a linear gain."""
    faders = seating()["faders"]
    return 10 ** (faders.get(role, faders["other"]) / 20)


def _send(role):
    sends = seating()["sends"]
    return sends.get(role, sends["other"])


def _hall(dry, rate, send):
    """The hall's return for a send of `send` × dry: wet only, linear and time-invariant.
    (The send is the reverb's own wet level, so the dry buffer is never copied.)"""
    from pedalboard import Reverb  # noqa: PLC0415  (a large native library: loaded when rendering)

    hall = seating()["hall"]
    reverb = Reverb(
        room_size=hall["room_size"],
        damping=hall["damping"],
        width=hall["width"],
        wet_level=hall["wet_level"] * send,
        dry_level=0.0,
    )
    return reverb(dry, rate)


def _dirty(previous, groups, rate, samples) -> dict:
    """Per role, the merged sample spans [a, b) whose audio differs from `previous`: from each
    note or control change present in one version and not the other, to its end plus TAIL_S;
    past the old end when the cue grew; a role that is new is rendered whole."""
    tail = tb.seconds_to_samples(TAIL_S, rate)
    old_groups = {}
    for part in previous.parts:
        old_groups.setdefault(role_of(part), []).append(part)
    dirty = {}
    for role, parts in groups.items():
        if role not in previous.roles:
            dirty[role] = [(0, samples)]
            continue
        old, new = _events(old_groups.get(role, ()), rate), _events(parts, rate)
        spans = [(on, off + tail) for on, off in _changed(old, new, samples)]
        if samples > previous.samples:
            spans.append((max(0, previous.samples - tail), samples))
        merged = _merge(spans, samples, gap=tb.seconds_to_samples(MERGE_S, rate))
        if merged:
            dirty[role] = merged
    return dirty


def _events(parts, rate):
    """(notes, controls) of a role in samples, each keyed by its part."""
    notes, controls = set(), {}
    for part in parts:
        key = (part.get("name"), part["program"], bool(part.get("is_drum")))
        times = tb.seconds_to_samples_all([t for note in part["notes"] for t in note[:2]], rate).tolist()
        for (_, _, pitch, velocity), on, off in zip(part["notes"], times[0::2], times[1::2]):
            notes.add((key, on, max(on + 1, off), pitch, velocity))
        for seconds, controller, value in part.get("controls", ()):
            controls.setdefault((key, controller), []).append((tb.seconds_to_samples(seconds, rate), value))
    return notes, controls


def _changed(old, new, end):
    """(start, end) sample spans of the notes in one version only, and of the stretches where
    a controller's value differs between the versions (a swell changed at t sounds different
    until both versions set the same value again, or to `end`)."""
    (old_notes, old_controls), (new_notes, new_controls) = old, new
    spans = [(on, off) for _, on, off, _, _ in old_notes ^ new_notes]
    for key in set(old_controls) | set(new_controls):
        a, b = sorted(old_controls.get(key, ())), sorted(new_controls.get(key, ()))
        if a == b:
            continue
        times = sorted({t for t, _ in a} | {t for t, _ in b})
        start = None
        for t in times:
            differ = _value_at(a, t) != _value_at(b, t)
            if differ and start is None:
                start = t
            elif not differ and start is not None:
                spans.append((start, t))
                start = None
        if start is not None:
            spans.append((start, end))
    return spans


def _value_at(events, t):
    """The value of a sorted (time, value) controller track at time t (None before any)."""
    value = None
    for at, v in events:
        if at > t:
            break
        value = v
    return value


def _sample_count(duration_seconds, sample_rate):
    if not (isinstance(duration_seconds, numbers.Real) and math.isfinite(duration_seconds) and duration_seconds > 0):
        raise ValueError(f"duration must be finite seconds > 0, got {duration_seconds!r}")
    if not (isinstance(sample_rate, numbers.Integral) and 8000 <= sample_rate <= 192000):
        raise ValueError(f"sample rate must be an integer 8000..192000 Hz, got {sample_rate!r}")
    return tb.seconds_to_samples(duration_seconds, sample_rate)


def _load(parts_or_midi_path, tempo_map):
    """(parts, tempo map) as the MIDI deliverable holds them: parts are checked and put on
    their ticks as write_midi would (midi.on_ticks), so the WAV plays what the DAW gets."""
    if isinstance(parts_or_midi_path, (str, os.PathLike)):
        parts, tempo_map, _ = read_midi(parts_or_midi_path)
        return parts, tempo_map
    tempo_map = tempo_map or [(0, DEFAULT_TEMPO)]
    return on_ticks(parts_or_midi_path, tempo_map), tempo_map


def _pan(part):
    data = seating()
    if part.get("is_drum"):
        pan = data["drum_kit"]["pan"]
    else:
        pan = data["programs"].get(str(part["program"]), data["default_program"])["pan"]
    return max(0, min(127, round(64 + 63 * pan)))


def _match(synth, soundfont, rate, part, send):
    """The gain that brings the part's reference (data/mix.json) to PART_LUFS as it is heard,
    dry plus its role's hall send, at its seat (a synthesizer's pan law need not keep the
    power): one note of its program at its reference pitch, velocity 100, held 2 s, or for
    a struck or plucked program struck every quarter second for 2 s (as it is played: one
    decaying note reads far quieter than a line of them); for a kit, its reference hits a
    quarter second apart. Measured once per synthesizer, bank,
    rate, program, send and pan, and kept in the user cache (levels.json) across runs."""
    drum = bool(part.get("is_drum"))
    key = (synth, soundfont, rate, 0 if drum else part["program"], drum, send, _pan(part))
    if key not in _LEVELS:
        stored = _level_cache()
        name = _level_key(key)
        if name in stored:
            _LEVELS[key] = stored[name]
            return _LEVELS[key]
        data = seating()
        if drum:
            notes = [(0.25 * i, 0.25 * i + 0.2, pitch, 100) for i, pitch in enumerate(data["drum_kit"]["hits"])]
        else:
            program = data["programs"].get(str(part["program"]), data["default_program"])
            pitch = program["pitch"]
            notes = (
                [(0.25 * i, 0.25 * i + 0.2, pitch, 100) for i in range(8)]
                if program.get("struck")
                else [(0.0, 2.0, pitch, 100)]
            )
        reference = {"name": "reference", "program": key[3], "is_drum": drum, "notes": notes}
        dry = synth_mod.play(synth, soundfont, [reference], rate, 0, tb.seconds_to_samples(2.0, rate), pans=[key[-1]])
        level = meter.integrated(dry + _hall(dry, rate, send), rate)
        gain = 1.0 if level is None else 10 ** (max(-MATCH_MAX_DB, min(MATCH_MAX_DB, PART_LUFS - level)) / 20)
        _LEVELS[key] = gain
        stored[name] = gain
        try:
            atomic.write_json(config.cache_dir() / "levels.json", stored)
        except OSError:
            pass  # a read-only cache only costs the measurement next time
    return _LEVELS[key]


@functools.lru_cache(maxsize=1)
def _level_cache() -> dict:
    try:
        stored = json.loads((config.cache_dir() / "levels.json").read_text())
        return stored if isinstance(stored, dict) else {}
    except (OSError, ValueError):
        return {}


def _level_key(key):
    """The cache entry of a level: everything that decides it, the bank by size and date,
    and the staging and hall data, so a change to any of them measures again."""
    synth, soundfont, rate, program, drum, send, pan = key
    try:
        st = os.stat(soundfont)
        bank = f"{Path(soundfont).resolve()}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        bank = str(soundfont)
    version = synth_mod.version(synth)
    data = json.dumps(
        [
            PART_LUFS,
            seating()["hall"],
            seating()["drum_kit"],
            seating()["programs"].get(str(program), seating()["default_program"]),
        ],
        sort_keys=True,
    )
    return hashlib.sha1(f"{synth}:{version}|{bank}|{rate}|{program}|{drum}|{send}|{pan}|{data}".encode()).hexdigest()


def envelope(m: Mix):
    """The gain over time every stem and the mix get: silent in each tacet (faded just
    before it, where releases and the hall still ring) and faded at the end."""
    env = np.ones(m.samples, dtype=np.float32)
    fade = tb.seconds_to_samples(FADE_SECONDS, m.rate)
    for start, end in m.tacet:
        a = min(m.samples, tb.seconds_to_samples(start, m.rate))
        b = min(m.samples, tb.seconds_to_samples(end, m.rate))
        lead = max(0, a - fade)
        env[lead:a] = np.minimum(env[lead:a], np.linspace(1.0, 0.0, a - lead, dtype=np.float32))
        env[a:b] = 0.0
    n = min(fade, m.samples)
    if n:
        env[-n:] = np.minimum(env[-n:], np.linspace(1.0, 0.0, n, dtype=np.float32))
    return env


def _runs(env, mask=None):
    """(start, end) runs of samples where the envelope is not 1 (or where `mask` is true)."""
    changed = np.flatnonzero(env != 1.0 if mask is None else mask)
    if not len(changed):
        return []
    breaks = np.flatnonzero(np.diff(changed) > 1)
    starts = np.concatenate([[changed[0]], changed[breaks + 1]])
    ends = np.concatenate([changed[breaks] + 1, [changed[-1] + 1]])
    return list(zip(starts.tolist(), ends.tolist()))


def _pieces(buffer, env, runs):
    """`buffer` × env as contiguous pieces, copying only where the envelope is not 1 (the
    raw buffers stay as they are, for the next splice)."""
    pieces, done = [], 0
    for a, b in runs:
        if a > done:
            pieces.append(buffer[done:a])
        pieces.append(buffer[a:b] * env[a:b, None])
        done = b
    if done < len(buffer):
        pieces.append(buffer[done:])
    return pieces


def master(m: Mix):
    """(envelope, its runs, mix, the limiter's deepest gain reduction in dB): the sum of the
    roles through the envelope and the true-peak limiter.

    A spliced Mix handed its predecessor (live updates) re-makes only the changed spans of
    the predecessor's mix: the limiter's gain at a sample depends on the audio within
    LIMIT_REACH of it, so each changed span is limited with twice that around it and written
    back with once that, and everything else is the old mix as it was."""
    if "mix" in m.derived:
        d = m.derived
        return d["env"], d["runs"], d["mix"], d["limiter_db"]
    env = envelope(m)
    runs = _runs(env)
    old = m.derived.pop("base", {})
    pcm, base_meter = old.get("pcm"), old.get("meter")
    if m.changed is not None and "mix" in old and len(old["env"]) == m.samples:
        spans = list(m.changed) + _runs(None, env != old["env"])  # and where a tacet moved
        limited, reduction = old["mix"], old["limiter_db"]
        reach = meter.reach(m.rate)
        patched = []
        for a, b in _merge(spans, m.samples, 2 * reach):
            part = np.zeros((b - a, 2), dtype=np.float32)
            for buffer in m.roles.values():
                part += buffer[a:b]
            part *= env[a:b, None]
            part, dip = meter.limit(part, m.rate, TRUE_PEAK_DB)
            lo = a if a == 0 else a + reach
            hi = b if b == m.samples else b - reach
            limited[lo:hi] = part[lo - a : hi - a]
            reduction = max(reduction, dip)
            patched.append((lo, hi))
        old.clear()  # spent: its mix and PCM are now this one's
    else:
        total = np.zeros((m.samples, 2), dtype=np.float32)
        for buffer in m.roles.values():
            total += buffer
        for a, b in runs:
            total[a:b] *= env[a:b, None]
        limited, reduction = meter.limit(total, m.rate, TRUE_PEAK_DB)
        patched = None
    m.derived.update(
        env=env,
        runs=runs,
        mix=limited,
        limiter_db=reduction,
        patched=patched,
        pcm=pcm if patched is not None else None,
        meter_base=base_meter if patched is not None else None,
    )
    return env, runs, limited, reduction


def _merge(spans, end, pad=0, gap=0):
    """Sample spans widened by `pad` on both sides, clipped to [0, end), empty ones dropped,
    and merged where they overlap or lie within `gap` of each other."""
    merged = []
    for a, b in sorted((max(0, a - pad), min(end, b + pad)) for a, b in spans):
        if a >= b:
            continue
        if merged and a <= merged[-1][1] + gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def measure(audio, rate, spans=(), level=None):
    """The loudness report of a mix: integrated LUFS, true peak dBTP, and each span's
    integrated loudness (None where too short or silent). level: the mix's meter.Loudness,
    when the caller has made it."""
    level = level or meter.Loudness(audio, rate)
    return {
        "integrated_lufs": level.integrated(),
        "true_peak_dbtp": meter.true_peak(audio, rate),
        "sections": [
            {
                "start": round(a, 6),
                "end": round(b, 6),
                "lufs": level.integrated(tb.seconds_to_samples(a, rate), tb.seconds_to_samples(b, rate)),
            }
            for a, b in spans
        ],
    }


def write(m: Mix, wav_path, *, stems_dir=None, stem_prefix="", on_mix=None, sections=None) -> dict:
    """Write the mix (24-bit) and, with stems_dir, one float WAV per role named
    `<stem_prefix><role>.wav`, all atomically. on_mix(path) is called as soon as the mix is
    on disk (a live host can load it while the stems are written). With `sections`
    ((start_s, end_s) spans), the mix's loudness report is measured while the stems are
    written and returned as "loudness" (see `measure`).
    Returns {"path", "stems": {role: path}, "limiter_db", "synth", "soundfont", ...}."""
    started = time.perf_counter()
    env, runs, limited, reduction = master(m)
    pcm = m.derived.get("pcm")
    if pcm is not None and m.derived.get("patched") is not None:
        for lo, hi in m.derived["patched"]:  # a spliced mix: re-pack only what changed
            memoryview(pcm)[6 * lo : 6 * hi] = _pcm24(limited[lo:hi])
    else:
        pcm = bytearray(_pcm24(limited))
    m.derived["pcm"] = pcm
    path = atomic.write_bytes(wav_path, _header(1, limited.shape[1], m.rate, 24, len(limited)), pcm)
    if on_mix is not None:
        on_mix(path)
    paths = {}

    def write_stems():
        folder = Path(stems_dir)
        for role in _ordered(m.roles):
            name = re.sub(r"[^A-Za-z0-9_-]+", "_", role).strip("_") or "part"
            pieces = _pieces(m.roles[role], env, runs)
            paths[role] = str(write_float(folder / f"{stem_prefix}{name}.wav", pieces, m.rate).absolute())

    report = None
    with ThreadPoolExecutor(max_workers=1) as pool:  # disk writes and the meter side by side
        pending = pool.submit(write_stems) if stems_dir is not None else None
        if sections is not None:  # a spliced mix re-weighs only its changed spans
            level = meter.Loudness(
                limited, m.rate, base=m.derived.pop("meter_base", None), changed=m.derived.get("patched")
            )
            m.derived["meter"] = level
            report = measure(limited, m.rate, sections, level=level)
        if pending is not None:
            pending.result()
    return {
        "path": str(Path(path).absolute()),
        "stems": paths,
        "limiter_db": reduction,
        "synth": m.synth,
        "soundfont": m.soundfont,
        "samples": m.samples,
        "mix": limited,
        "loudness": report,
        "write_s": round(time.perf_counter() - started, 3),
    }


def render_wav(
    parts_or_midi_path,
    wav_path,
    duration_seconds,
    *,
    tempo_map=None,
    soundfont=None,
    sample_rate=48000,
    synth="auto",
    loudness=REFERENCE_LUFS,
    tacet=(),
) -> dict:
    """Render the mix to a 24-bit WAV of exactly round(duration × rate) samples, written
    atomically. Takes the parts that write_midi takes or a MIDI file's path."""
    started = time.perf_counter()
    m = mix(
        parts_or_midi_path,
        duration_seconds,
        tempo_map=tempo_map,
        soundfont=soundfont,
        synth=synth,
        sample_rate=sample_rate,
        loudness=loudness,
        tacet=tacet,
    )
    out = write(m, wav_path)
    return {
        "path": out["path"],
        "synth": m.synth,
        "soundfont": m.soundfont,
        "samples": m.samples,
        "limiter_db": out["limiter_db"],
        "render_s": round(time.perf_counter() - started, 3),
    }


def _header(fmt_tag, channels, rate, bits, frames, extra=b""):
    """A RIFF/WAVE header for `frames` frames of data that follows it."""
    block = channels * bits // 8
    size = frames * block
    fmt = (
        fmt_tag.to_bytes(2, "little")
        + channels.to_bytes(2, "little")
        + rate.to_bytes(4, "little")
        + (rate * block).to_bytes(4, "little")
        + block.to_bytes(2, "little")
        + bits.to_bytes(2, "little")
    )
    body = 4 + 8 + len(fmt) + len(extra) + 8 + size
    if body + 8 > 0xFFFFFFFF:
        raise ValueError("the WAV would pass 4 GiB, the format's limit")
    return (
        b"RIFF"
        + body.to_bytes(4, "little")
        + b"WAVE"
        + b"fmt "
        + len(fmt).to_bytes(4, "little")
        + fmt
        + extra
        + b"data"
        + size.to_bytes(4, "little")
    )


def _pcm24(audio) -> np.ndarray:
    """Float stereo in [-1, 1] as packed little-endian 24-bit samples (bytes, contiguous);
    rounded, not dithered, so the same render gives the same file and silence stays
    digital silence."""
    scaled = np.rint(np.asarray(audio, dtype=np.float32) * np.float32(8388607.0))
    np.clip(scaled, -8388608, 8388607, out=scaled)
    return np.ascontiguousarray(scaled.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]).reshape(-1)


def write_float(path, audio, rate) -> Path:
    """Float stereo as a 32-bit float WAV (format 3, with its fact chunk), atomically.
    `audio`: one (n, channels) array, or a list of them written one after another."""
    pieces = [np.ascontiguousarray(p, dtype="<f4") for p in (audio if isinstance(audio, list) else [audio])]
    frames, channels = sum(len(p) for p in pieces), pieces[0].shape[1]
    fact = b"fact" + (4).to_bytes(4, "little") + frames.to_bytes(4, "little")
    return atomic.write_bytes(path, _header(3, channels, rate, 32, frames, fact), *pieces)


def read_wav(path):
    """(float array (n, channels), rate) of a 16/24-bit PCM or 32-bit float WAV."""
    from scipy.io import wavfile  # noqa: PLC0415

    rate, data = wavfile.read(str(path))
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:  # scipy gives 24-bit samples in the top bytes of int32
        data = data.astype(np.float32) / 2147483648.0
    return (data if data.ndim == 2 else data[:, None]), rate
