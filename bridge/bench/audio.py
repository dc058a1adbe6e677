"""What the WAV costs and how loud it plays: `scorebridge bench audio`.

- render: the 3-minute benchmark edit of `bench score` is written once as MIDI; then its mix,
  stems and loudness report are rendered from that MIDI file, as `score` does, twice (the
  first run also measures the presets' levels when the cache has none); the second is the
  figure.
- staging: edits at three arousals (calm -0.8, mid 0, excited +0.8) and two valences, two
  edits each, scored with the shipped model; their integrated loudness, true peak and the
  limiter's deepest gain reduction. MUSIC.md asks for a mid-arousal cue near -23 LUFS and a
  calm one at least 8 LU under an excited one.
- presets: the bank's raw level of each palette program's reference note (velocity 100, no
  matching), to show what the level matching takes out.
"""

import statistics
import tempfile
import time
from pathlib import Path

from bridge import timebase as tb
from bridge.render import audio, loudness, synth
from bridge.score import load_model, score
from bridge.bench.score import bench_edit

AROUSALS = (-0.8, 0.0, 0.8)
VALENCES = (-0.5, 0.5)
EDITS = ((60.0, 14, 1), (45.0, 8, 2))  # seconds, cuts, seed


def run(seconds=180.0, cuts=40, device="auto") -> dict:
    """Everything it writes goes to a scratch folder that is removed afterwards (it holds gigabytes)."""
    with tempfile.TemporaryDirectory(prefix="scorebridge-audio-bench-") as folder:
        return _run(Path(folder), seconds, cuts, device)


def _run(work, seconds, cuts, device) -> dict:
    model, info = load_model(device)
    result = {
        "render": _render(model, info, work, seconds, cuts),
        "staging": _staging(model, info, work),
        "presets": _presets(),
    }
    return result


def _render(model, info, work, seconds, cuts):
    path = bench_edit(work / "bench.otio", seconds, cuts)
    manifest, _ = score(path, work / "midi", model=model, model_info=info, audio_out=False, use_cache=False)
    midi, duration = manifest["outputs"]["midi"], manifest["duration_seconds"]
    sections = [(s["start"], s["end"]) for s in manifest["plan"]["sections"]]
    tacet = [tuple(t) for t in manifest["plan"]["tacet"]]
    runs = []
    for attempt in range(2):
        started = time.perf_counter()
        m = audio.mix(midi, duration, tacet=tacet)
        mixed = time.perf_counter()
        out = audio.write(
            m, work / f"mix{attempt}.wav", stems_dir=work, stem_prefix=f"run{attempt}.", sections=sections
        )
        done = time.perf_counter()
        runs.append(
            {
                "mix_s": round(mixed - started, 3),
                "write_and_measure_s": round(done - mixed, 3),
                "total_s": round(done - started, 3),
            }
        )
    return {
        "edit_seconds": duration,
        "hits": len(manifest["hits"]),
        "stems": len(out["stems"]),
        "synth": m.synth,
        "soundfont": m.soundfont,
        "first": runs[0],
        "warm": runs[1],
        "integrated_lufs": out["loudness"]["integrated_lufs"],
        "true_peak_dbtp": out["loudness"]["true_peak_dbtp"],
    }


def _staging(model, info, work):
    rows = []
    for seconds, cuts, seed in EDITS:
        path = bench_edit(work / f"staging-{cuts}.otio", seconds, cuts, seed=seed)
        for valence in VALENCES:
            for arousal in AROUSALS:
                manifest, _ = score(
                    path,
                    work / f"staging-{cuts}-{valence}-{arousal}",
                    model=model,
                    model_info=info,
                    valence=valence,
                    arousal=arousal,
                    seed=seed,
                    use_cache=False,
                )
                level = manifest["audio"]["loudness"]
                rows.append(
                    {
                        "edit": f"{seconds:.0f} s, {cuts} cuts",
                        "valence": valence,
                        "arousal": arousal,
                        "integrated_lufs": level["integrated_lufs"],
                        "true_peak_dbtp": level["true_peak_dbtp"],
                        "limiter_max_db": level["limiter_max_db"],
                    }
                )
    by_arousal = {
        str(a): round(statistics.mean(r["integrated_lufs"] for r in rows if r["arousal"] == a), 2) for a in AROUSALS
    }
    return {
        "cues": rows,
        "mean_lufs_by_arousal": by_arousal,
        "excited_minus_calm_lu": round(by_arousal[str(AROUSALS[-1])] - by_arousal[str(AROUSALS[0])], 2),
        "max_true_peak_dbtp": max(r["true_peak_dbtp"] for r in rows),
    }


def _presets():
    soundfont, name = audio.pick_synth()
    rate, levels = 48000, {}
    for program, data in audio.seating()["programs"].items():
        note = {
            "name": "reference",
            "program": int(program),
            "is_drum": False,
            "notes": [(0.0, 2.0, data["pitch"], 100)],
        }
        heard = synth.play(name, soundfont, [note], rate, 0, tb.seconds_to_samples(2.0, rate))
        levels[data["name"]] = loudness.integrated(heard, rate)
    measured = [v for v in levels.values() if v is not None]
    return {"raw_lufs": levels, "raw_spread_db": round(max(measured) - min(measured), 2)}


def report(result) -> str:
    r, s = result["render"], result["staging"]
    lines = [
        f"audio benchmark: {r['edit_seconds']:.0f} s cue, {r['stems']} stems, {r['synth']} with "
        f"{Path(r['soundfont']).name}",
        f"  render (mix, stems, loudness report): {r['warm']['total_s']:.2f} s "
        f"(mix {r['warm']['mix_s']:.2f} s, write and measure {r['warm']['write_and_measure_s']:.2f} s); "
        f"first run {r['first']['total_s']:.2f} s",
        "  staging: mean integrated loudness by arousal "
        + ", ".join(f"{a}: {v:.1f} LUFS" for a, v in s["mean_lufs_by_arousal"].items())
        + f"; excited - calm {s['excited_minus_calm_lu']:.1f} LU; highest true peak {s['max_true_peak_dbtp']:.2f} dBTP",
        f"  presets: raw reference levels span {result['presets']['raw_spread_db']:.1f} dB before matching",
    ]
    return "\n".join(lines)
