"""`scorebridge score`: read the edit, analyse its picture, plan the cue, compose, render.

The driver owns the I/O: every deliverable is written into a private folder inside `out`
and moved into place only when all of them are done (the manifest last), so a failed run
leaves nothing half-made behind.
"""

import glob
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from bridge import atomic
from bridge.score import live
from bridge import manifest as manifest_mod
from bridge.analyze import read_and_analyze
from bridge.score.compose import to_parts
from bridge.music import engine
from bridge.plan import describe, make_plan
from bridge.render import audio, midi, otio_out, preview
from bridge.timebase import beats_to_seconds, frames_to_timecode, tempo_to_bpm
from bridge.timeline import read_otio


def load_model(device="auto", path_stem=None):
    """(model, description) for the shipped music model; MissingModel when none is installed
    or it is corrupt."""
    from bridge.music.model import MODELS_DIR, SHIPPED_NAME, load_usable

    stem = Path(path_stem) if path_stem else MODELS_DIR / SHIPPED_NAME
    model = load_usable(device, stem, "music cannot be written until one is trained (`scorebridge train model --ship`)")
    meta = json.loads(stem.with_suffix(".json").read_text())
    return model, {"name": stem.name, "sha256": meta["sha256"], "params": model.num_params()}


def score(
    input_path,
    out_dir,
    *,
    seed=1,
    device="auto",
    audio_out=True,
    stems=True,
    media_root=None,
    fps=None,
    valence=None,
    arousal=None,
    candidates=4,
    model=None,
    model_info=None,
    cue="1M1",
    progress=None,
    use_cache=True,
    previous=None,
    keep=None,
    key=None,
    loudness=None,
    on_midi=None,
    on_wav=None,
):
    """Score one edit; returns (manifest dict, manifest path).

    model/model_info: a loaded MusicTransformer and how to name it in the manifest (the
    shipped model is loaded when model is None). valence/arousal override the picture's
    emotion for the whole cue. key: the cue's home key ("E minor", "Bb"); None lets the plan
    choose one from the cue's mood and edit. stems: one WAV per role beside the mix (a host
    that places only the mix, or only the MIDI, saves their writing). candidates: kept for the
    protocol; the layered engine draws one score. loudness: where a mid-arousal cue lands, in
    LUFS (default audio.REFERENCE_LUFS, -23): the whole gain staging moves with it.
    Live mode: `previous` is the session state an earlier revision left in `keep` (a dict
    filled on success); with it only the spans the edit changed are written again (see
    bridge.score.live), and the manifest's `update` says which.
    on_midi(path): called when the MIDI is written and a WAV is still to come, with the path
    of a MIDI-stage manifest (`"stage": "midi"`, no audio outputs) whose MIDI and notes files
    are already in place; the path lives only until this call returns its final manifest, so
    read it at once. Should the job then fail, the MIDI and notes files of before are put back.
    on_wav(path): the same for the WAV mix, once it is rendered and while the stems are still
    being written (`"stage": "wav"`; MIDI, notes and WAV in place).
    """
    started = time.perf_counter()
    report = progress or (lambda fraction, stage: None)
    if audio_out:  # the audio libraries load while the edit is read and the music composed
        threading.Thread(target=_quietly(audio.preload), name="scorebridge-audio-preload", daemon=True).start()
    loudness = audio.check_loudness(audio.REFERENCE_LUFS if loudness is None else loudness)
    options = {
        "seed": seed,
        "valence": valence,
        "arousal": arousal,
        "candidates": candidates,
        "cue": cue,
        "key": key,
        "loudness": loudness,
    }
    timeline, analysis, hits, timings = read_and_analyze(
        input_path, fps, media_root, lambda f, stage: report(0.3 * f, stage), use_cache
    )
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    if previous is not None and previous["options"] != options:
        update = {"mode": "full", "reason": "the scoring options changed since the last revision"}
        previous = None
    elif previous is None:
        update = {"mode": "full", "reason": "no earlier revision of this session is known"}
    sections = analysis["sections"]
    if previous is not None and valence is None and arousal is None:
        sections = live.hold_moods(previous["plan"], sections)
    plan = make_plan(
        hits,
        sections,
        timeline.rate,
        timeline.duration,
        valence=valence,
        arousal=arousal,
        cue=cue,
        key=key if key is not None else ((previous["plan"].tonic, previous["plan"].home) if previous else None),
    )
    lap("plan_s")
    if model is None:
        report(0.3, "loading the music model")
        model, model_info = load_model(device)
        lap("model_load_s")
    composed = None
    if previous is not None:
        report(0.35, "re-writing the changed spans")
        try:
            changed = live.update(
                model, previous, plan, seed, progress=lambda f: report(0.35 + 0.45 * f, "re-writing the changed spans")
            )
            plan = changed["plan"]
            composed = {
                "notes": changed["notes"],
                "best": 0,
                "scores": [],
                "tokens": None,
                "expression": changed.get("expression", ()),
                "reached_s": plan.duration_s,
            }
            update = {
                "mode": "partial",
                "previous_revision": previous["revision"],
                "spans": changed["spans"],
                "retimed": changed["retimed"],
                "kept_notes": changed["kept"],
                "written_notes": changed["written"],
            }
        except live.FullRescore as exc:
            update = {"mode": "full", "reason": str(exc)}
    if composed is None:
        composing = f"composing {plan.name} in {plan.key}: {len(plan.hits)} hits"
        report(0.35, composing)
        composed = engine.compose(model, plan, seed=seed, progress=lambda f: report(0.35 + 0.45 * f, composing))
    lap("generation_s")

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stem = manifest_mod.manifest_path(out, timeline).name[: -len(".manifest.json")]
    final = {
        "midi": out / f"{stem}.mid",
        "wav": out / f"{stem}.wav",
        "otio": out / f"{stem}.scored.otio",
        "notes": out / f"{stem}.notes.json",
        "preview": out / f"{stem}.preview.mp4",
        "cue_sheet": out / f"{stem}.cuesheet.png",
    }
    sweep_staging(out, stem)
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=out))
    atomic.write_json(staging / OWNER, {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    warnings = timeline.warnings + analysis["warnings"]
    if composed["reached_s"] < plan.duration_s - 0.5:
        warnings.append(
            f"the music model's token budget ran out at {composed['reached_s']:.1f} s of "
            f"{plan.duration_s:.1f} s: after that only the hit chords play"
        )
    # the last revision's audio is handed over to this render, which splices into it: if
    # this job fails, the session renders its next WAV whole
    sound = {
        "stems_out": stems,
        "loudness": loudness,
        "previous": previous.pop("mix", None) if previous is not None else None,
        "stem_prefix": f"{stem}.stem-",
    }
    tempo_map = plan.tempo["tempo_map"]

    def build(written):
        manifest = manifest_mod.build(
            timeline,
            hits,
            analysis["sections"],
            warnings,
            timings,
            tempo_map=[
                {
                    "seconds": round(float(beats_to_seconds(beat, tempo_map)), 6),
                    "bpm": round(tempo_to_bpm(tempo), 4),
                    "beat": float(beat),
                    "us_per_quarter": tempo,
                }
                for beat, tempo in tempo_map
            ],
            outputs={k: (str(final[k]) if k in written else None) for k in final},
            model=model_info,
            seed=seed,
            plan=describe(plan),
            candidates={
                "count": candidates,
                "best": composed["best"],
                "scores": composed["scores"],
                "tokens": composed["tokens"],
            },
        )
        manifest["outputs"]["stems"] = {
            role: str(out / Path(name).name) for role, name in sound.get("stems", {}).items()
        } or None
        if "audio" in sound:
            manifest["audio"] = sound["audio"]
        if valence is not None or arousal is not None:
            manifest["override"] = {"valence": valence, "arousal": arousal}
        # how the music was made: the cue's key, and where each mood's motifs came from
        # (the music model, or the arpeggio a too-sparse draw fell back to; none on a live update)
        manifest["music"] = {
            "engine": "layered",
            "key": plan.key,
            "chord_model": "scorebridge-harmony",
            "motifs": composed.get("motif_sources"),
        }
        if keep is not None:
            manifest["update"] = update
        return manifest

    early = {}  # final path -> the file it replaced, kept in staging (None: there was none)

    def place_early(keys, stage, tell):
        """These deliverables into place now, and the host told (`stage` manifest), while the
        rest renders; each replaced file is kept in staging, to be put back should the job fail."""
        for key in keys:
            backup = staging / f"replaced.{final[key].name}"
            try:
                os.replace(final[key], backup)
                early[final[key]] = backup
            except FileNotFoundError:
                early[final[key]] = None
            placing = staging / f"placing.{final[key].name}"  # a copy: the staged file is still read
            shutil.copyfile(staging / final[key].name, placing)
            os.replace(placing, final[key])
        manifest = build(["midi", "notes", *keys])
        manifest["stage"] = stage  # no stems nor `audio` report yet: sound has neither
        early_path = staging / f"{stem}.{stage}.manifest.json"
        manifest_mod.write(manifest, early_path)
        tell(early_path)

    if on_midi is not None and audio_out:
        sound["on_midi"] = lambda: place_early(["midi", "notes"], "midi", on_midi)
    if on_wav is not None and audio_out:
        sound["on_wav"] = lambda: place_early(["wav"], "wav", on_wav)
    try:
        light = keep is not None and update["mode"] == "partial"
        written = _render(
            timeline,
            plan,
            composed,
            final,
            staging,
            audio_out,
            warnings,
            timings,
            report,
            light=light,
            job_started=started,
            sound=sound,
        )
        manifest = build(written)
        path = manifest_mod.manifest_path(out, timeline)
        manifest_mod.write(manifest, staging / path.name)
        stems = {out / Path(name).name for name in sound.get("stems", {}).values()}
        for name in sound.get("stems", {}).values():
            os.replace(staging / Path(name).name, out / Path(name).name)
        for old in out.glob(f"{glob.escape(stem)}.stem-*.wav"):  # stems an earlier run left
            if old not in stems:
                old.unlink(missing_ok=True)
        for key in final:  # a file an earlier run left that this one did not make goes
            if final[key] in early:
                continue  # in place since the MIDI was ready
            if key in written:
                os.replace(staging / final[key].name, final[key])
            else:
                final[key].unlink(missing_ok=True)
        os.replace(staging / path.name, path)
    except BaseException:
        for placed, backup in early.items():  # nothing half-written: the earlier MIDI back
            if backup is None:
                placed.unlink(missing_ok=True)
            else:
                os.replace(backup, placed)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if keep is not None:
        keep.update(live.state(plan, composed["notes"], options, keep.get("revision"), composed.get("expression", ())))
        keep["mix"] = sound.get("mix")
    report(1.0, "done")
    return manifest, path


OWNER = ".owner"  # in a staging folder: which process is filling it
ABANDONED_S = 24 * 3600  # a staging folder of another machine this old is abandoned


def sweep_staging(out, stem):
    """Remove the staging folders (`.<stem>-XXXX`) a killed job left in `out`: those whose
    process is gone on this machine, or, from another machine (shared storage), a day old."""
    for folder in out.glob(f".{glob.escape(stem)}-*"):
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            owner = json.loads((folder / OWNER).read_text())
            pid, host, started = int(owner["pid"]), str(owner["host"]), float(owner["started"])
        except (OSError, ValueError, KeyError, TypeError):
            pid, host, started = None, None, folder.stat().st_mtime  # older layout: judge by age
        if host == socket.gethostname() and pid is not None:
            abandoned = pid != os.getpid() and not _alive(pid)
        else:
            abandoned = time.time() - started > ABANDONED_S
        if abandoned:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's
        return True
    return True


def _quietly(function):
    """`function` for a background thread: a failure there only means the render loads
    what it needs itself (and reports any real problem then)."""

    def run():
        try:
            function()
        except Exception:  # noqa: BLE001
            pass

    return run


def _render(
    timeline,
    plan,
    composed,
    final,
    staging,
    audio_out,
    warnings,
    timings,
    report,
    light=False,
    job_started=None,
    sound=None,
):
    """Write every deliverable into `staging` under its final name; returns the keys written.
    light: a live update, where speed matters: no cue sheet and no preview video.
    sound: {"loudness", "previous" (the last revision's Mix, or None), "stem_prefix",
    "stems_out" (whether to write the stems), "on_midi", "on_wav" (the early stages)}; filled
    with "mix" (this render's Mix), "stems" (role -> file name) and "audio" (the manifest's)."""
    sound = {} if sound is None else sound
    started = time.perf_counter()
    written = []
    parts = to_parts(composed["notes"], plan, composed.get("expression", ()))
    tempo_map = plan.tempo["tempo_map"]
    rate, drop = timeline.rate, timeline.drop_frame
    hit_marks = [(h.frame, h.source, frames_to_timecode(timeline.start_frame + h.frame, rate, drop)) for h in plan.hits]
    section_marks = [
        (
            s.frame_start,
            f"{plan.name} section {i + 1}: "
            + ("tacet" if s.tacet else f"{s.key}, valence {s.valence:+.2f} arousal {s.arousal:+.2f}"),
        )
        for i, s in enumerate(plan.sections)
    ]
    markers = [(0.0, f"SB: cue {plan.name}")]
    markers += [(s.start, f"SB: {text}") for s, (_, text) in zip(plan.sections, section_marks)]
    markers += [(h.seconds, f"SB: hit {source} {tc}") for h, (_, source, tc) in zip(plan.hits, hit_marks)]
    report(0.8, "writing the MIDI file")
    midi.write_midi(
        staging / final["midi"].name,
        parts,
        tempo_map,
        time_signatures=plan.tempo["time_signatures"],
        markers=markers,
        start_frame=timeline.start_frame,
        rate=rate,
        drop_frame=drop,
        title=f"{plan.name} {timeline.name}",
    )
    written.append("midi")
    midi.write_notes_json(staging / final["notes"].name, parts, tempo_map)
    written.append("notes")
    if job_started is not None:
        timings["midi_ready_s"] = time.perf_counter() - job_started
    if sound.get("on_midi") is not None:
        sound["on_midi"]()
    wav = None
    if not audio_out:
        warnings.append("--no-audio: MIDI only, no WAV preview")
    else:
        report(0.85, "rendering the WAV and stems")
        try:
            wav = staging / final["wav"].name
            mixed = audio.mix(
                staging / final["midi"].name,
                plan.duration_s,
                tacet=plan.tacet,
                loudness=sound.get("loudness", audio.REFERENCE_LUFS),
                previous=sound.get("previous"),
                handover=True,
            )

            def mix_ready(path):
                if job_started is not None:
                    timings["wav_ready_s"] = time.perf_counter() - job_started
                if sound.get("on_wav") is not None:
                    sound["on_wav"]()
                report(0.88, "the WAV is ready; writing the stems")

            done = audio.write(
                mixed,
                wav,
                stems_dir=staging if sound.get("stems_out", True) else None,
                stem_prefix=sound.get("stem_prefix", ""),
                on_mix=mix_ready,
                sections=[(s.start, s.end) for s in plan.sections],
            )
            written.append("wav")
            sound["mix"] = mixed
            sound["stems"] = {role: Path(path).name for role, path in done["stems"].items()}
            level = done["loudness"]
            for section, measured in zip(plan.sections, level["sections"]):
                if section.tacet:
                    measured["lufs"] = None
            sound["audio"] = {
                "synth": mixed.synth,
                "soundfont": mixed.soundfont,
                "sample_rate": mixed.rate,
                "mix_format": "WAV, 24-bit PCM",
                "stem_format": "WAV, 32-bit float" if sound.get("stems_out", True) else None,
                "loudness": {"staging_lufs": mixed.loudness, **level, "limiter_max_db": done["limiter_db"]},
                "rendered_seconds": mixed.rendered_s,
            }
            fallback = audio.bank_warning(mixed.soundfont)
            if fallback:
                warnings.append(fallback)
        except audio.NoSynthesizer as exc:
            wav = None
            warnings.append(f"no WAV preview: {exc}")
    timings["render_s"] = time.perf_counter() - started

    started = time.perf_counter()
    otio_out.write_scored_otio(
        read_otio(timeline.path),
        staging / final["otio"].name,
        rate=rate,
        duration_frames=timeline.duration,
        wav_path=final["wav"] if wav else None,
        hits=hit_marks,
        stems={role: final["wav"].parent / name for role, name in sound.get("stems", {}).items()},
        cue=plan.name,
        sections=section_marks,
        start_frame=timeline.start_frame,
        drop_frame=drop,
    )
    written.append("otio")
    timings["otio_s"] = time.perf_counter() - started

    if light:
        warnings.append("live update: no cue sheet and no preview video (a full score makes them)")
        return written
    started = time.perf_counter()
    report(0.9, "drawing the cue sheet")
    preview.cue_sheet(staging / final["cue_sheet"].name, plan, composed["notes"], timeline.name)
    written.append("cue_sheet")
    timings["cue_sheet_s"] = time.perf_counter() - started

    started = time.perf_counter()
    if wav is not None:
        report(0.93, "building the preview video")
        try:
            preview.preview_video(timeline, wav, staging / final["preview"].name)
            written.append("preview")
        except preview.PreviewSkipped as exc:
            warnings.append(str(exc))
    timings["preview_s"] = time.perf_counter() - started
    return written


def summary(manifest: dict) -> str:
    """What an editor wants to know after a run: the cue, its tempo, where the files are."""
    plan = manifest["plan"]
    lines = [
        f"{plan['cue']}: {manifest['duration_seconds']:.2f} s at {manifest['fps']:.3f} fps"
        f"{' DF' if manifest['drop_frame'] else ''}, starts {manifest['start_timecode']}, "
        f"{len(manifest['hits'])} hits, tempo {manifest['tempo_map'][0]['bpm']:.2f} BPM "
        f"({plan['tempo_mode']}, {plan['hits_on_beat']} hits on a beat)"
    ]
    for s in plan["sections"]:
        lines.append(
            f"  {s['start']:8.2f}–{s['end']:8.2f} s  " + ("tacet" if s["tacet"] else f"{s['key']:9s} {s['palette']}")
        )
    for key, value in manifest["outputs"].items():
        if isinstance(value, dict):  # the stems: one file per role
            lines += [f"  stem {role}: {path}" for role, path in value.items()]
        elif value:
            lines.append(f"  {key}: {value}")
    level = (manifest.get("audio") or {}).get("loudness")
    if level:
        lines.append(
            f"  loudness: {level['integrated_lufs']} LUFS integrated, true peak "
            f"{level['true_peak_dbtp']} dBTP ({manifest['audio']['synth']}, "
            f"{Path(manifest['audio']['soundfont']).name})"
        )
    for w in manifest["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)
