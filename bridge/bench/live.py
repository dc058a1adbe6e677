"""How fast a live update is: `scorebridge bench live`.

The 3-minute benchmark edit of `bench score` (40 cuts, three mood markers, no media) is
scored once in full with the shipped model warm; then each edit below is applied to it and
scored as the next revision of the same session, exactly as the daemon runs an `update`:
- move: one cut moved 12 frames later (a roll: the neighbouring shot gets shorter);
- trim: one shot 12 frames shorter, everything after it moves up (a ripple);
- add: a cut added in the middle of a shot;
- remove: a cut removed (two shots joined);
- mood: a mood marker changed.
For each: seconds until the MIDI file is written, until it is in place and the host told
(`ready`, when a WAV follows), until every deliverable is, how much of the cue was
re-written, and a full re-score of the same edited timeline for comparison.
"""

import copy
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import opentimelineio as otio

from bridge.render import audio as audio_mod
from bridge.render.audio import read_wav
from bridge.score import load_model, score
from bridge.bench.score import RATE, bench_edit

EDITS = ("move", "trim", "add", "remove", "mood")


def edited(base, kind, path):
    """Write `base` (an OTIO timeline) with one edit of `kind` applied; returns path."""
    tl = copy.deepcopy(base)
    clips = list(tl.tracks[0])
    a, b = clips[20], clips[21]

    def frames(n):
        return otio.opentime.RationalTime(n, RATE)

    def resize(clip, delta):
        clip.source_range = otio.opentime.TimeRange(
            clip.source_range.start_time, clip.source_range.duration + frames(delta)
        )

    if kind == "move":
        resize(a, 12)
        resize(b, -12)
    elif kind == "trim":
        resize(a, -12)
    elif kind == "add":
        length = int(a.source_range.duration.value)
        second = a.clone()
        second.source_range = otio.opentime.TimeRange(
            a.source_range.start_time + frames(length // 2), frames(length - length // 2)
        )
        resize(a, length // 2 - length)
        tl.tracks[0].insert(21, second)
    elif kind == "remove":
        resize(a, int(b.source_range.duration.value))
        tl.tracks[0].remove(b)
    elif kind == "mood":
        tl.tracks.markers[1].name = "mood: joyful"
    otio.adapters.write_to_file(tl, str(path))
    return path


def run(seconds=180.0, cuts=40, device="auto", audio=True, stems=True) -> dict:
    """Everything it writes goes to a scratch folder that is removed afterwards (it holds gigabytes)."""
    with tempfile.TemporaryDirectory(prefix="scorebridge-live-bench-") as folder:
        return _run(Path(folder), seconds, cuts, device, audio, stems)


def _run(work, seconds, cuts, device, audio, stems) -> dict:
    model, info = load_model(device)
    base_path = bench_edit(work / "base.otio", seconds=seconds, cuts=cuts)
    base = otio.adapters.read_from_file(str(base_path))
    common = {"model": model, "model_info": info, "audio_out": audio, "stems": stems, "use_cache": False}
    print("bench: full score of the base edit", file=sys.stderr, flush=True)
    started = time.perf_counter()
    first = {"revision": 1}
    manifest, _ = score(base_path, work / "base", keep=first, **common)
    result = {
        "edit": {"seconds": seconds, "cuts": cuts},
        "audio": audio,
        "stems": stems,
        "base_full_s": round(time.perf_counter() - started, 3),
        "edits": {},
    }
    for kind in EDITS:
        path = edited(base, kind, work / f"{kind}.otio")
        print(f"bench: {kind}", file=sys.stderr, flush=True)
        previous = dict(first)  # each edit starts from the base (its audio is handed over, so copied)
        if first.get("mix") is not None:
            previous["mix"] = dataclasses.replace(
                first["mix"], roles={r: b.copy() for r, b in first["mix"].roles.items()}
            )
        started = time.perf_counter()
        placed = []  # when the MIDI was in place and the host would be told (`ready`), WAV still to come
        wav_placed = []  # and when the WAV was (`ready … wav`), the stems still to come
        manifest, _ = score(
            path,
            work / kind,
            previous=previous,
            keep={"revision": 2},
            on_midi=lambda early: placed.append(time.perf_counter() - started),
            on_wav=lambda early: wav_placed.append(time.perf_counter() - started),
            **common,
        )
        total = time.perf_counter() - started
        update = manifest["update"]
        started = time.perf_counter()
        score(path, work / f"{kind}-full", **common)
        full = time.perf_counter() - started
        spans = update.get("spans", [])
        sound = {}
        if audio and manifest["outputs"].get("wav"):
            # the update's own notes rendered whole: the spliced WAV must sound the same
            reference = audio_mod.mix(
                manifest["outputs"]["midi"],
                manifest["duration_seconds"],
                tacet=[tuple(t) for t in manifest["plan"]["tacet"]],
            )
            audio_mod.write(reference, work / f"{kind}-whole.wav")
            sound = {
                "wav_s": round(manifest["timings"]["wav_ready_s"], 3),
                "rendered_audio_s": manifest["audio"]["rendered_seconds"],
                "wav_vs_whole_render_db": _difference_db(manifest["outputs"]["wav"], work / f"{kind}-whole.wav"),
            }
        result["edits"][kind] = {
            "mode": update["mode"],
            "reason": update.get("reason"),
            "midi_s": round(manifest["timings"]["midi_ready_s"], 3),
            "total_s": round(total, 3),
            "midi_placed_s": round(placed[0], 3) if placed else None,
            "wav_placed_s": round(wav_placed[0], 3) if wav_placed else None,
            "full_rescore_s": round(full, 3),
            "rewritten_s": round(sum(s["end"] - s["start"] for s in spans), 3),
            "spans": [[s["start"], s["end"], s["what"]] for s in spans],
            "retimed": update.get("retimed", []),
            "kept_notes": update.get("kept_notes"),
            "written_notes": update.get("written_notes"),
            **sound,
        }
    return result


def _difference_db(spliced, full):
    """How far the live update's WAV is from its own MIDI rendered whole: the RMS of their difference
    relative to the full one's, in dB (-inf when identical)."""
    a, b = read_wav(spliced)[0], read_wav(full)[0]
    error = float(np.sqrt(np.mean(np.square(a - b, dtype=np.float64))))
    level = float(np.sqrt(np.mean(np.square(b, dtype=np.float64))))
    return round(20 * math.log10(error / level), 1) if error > 0 and level > 0 else float("-inf")


def report(result) -> str:
    lines = [
        f"live update benchmark ({result['edit']['seconds']:.0f} s edit, {result['edit']['cuts']} cuts, "
        f"WAV {'included' if result['audio'] else 'off'}{'' if result.get('stems', True) else ', no stems'}; full score of the base {result['base_full_s']:.2f} s)",
        f"  {'edit':8s} {'mode':8s} {'MIDI':>7s} {'placed':>7s} {'WAV in':>7s} {'all':>7s} {'full':>7s} {'re-written':>11s}"
        "  kept/new notes",
    ]
    for kind, r in result["edits"].items():
        placed = f"{r['midi_placed_s']:6.2f}s" if r.get("midi_placed_s") is not None else f"{'-':>7s}"
        wav_in = f"{r['wav_placed_s']:6.2f}s" if r.get("wav_placed_s") is not None else f"{'-':>7s}"
        lines.append(
            f"  {kind:8s} {r['mode']:8s} {r['midi_s']:6.2f}s {placed} {wav_in} {r['total_s']:6.2f}s {r['full_rescore_s']:6.2f}s "
            f"{r['rewritten_s']:9.2f} s  {r['kept_notes']}/{r['written_notes']}"
            + (
                f"  WAV {r['wav_s']:.2f}s ({r['rendered_audio_s']:.0f} s of audio rendered, "
                f"{r['wav_vs_whole_render_db']} dB from rendering its MIDI whole)"
                if "wav_s" in r
                else ""
            )
            + (f"  re-timed {r['retimed'][0]['was_bpm']:.1f}->{r['retimed'][0]['bpm']:.1f} BPM" if r["retimed"] else "")
        )
    return "\n".join(lines)
