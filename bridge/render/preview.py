"""Previews for people: a video of the edit with the music, and a cue-sheet picture.

The video is rebuilt from the edit's own media with ffmpeg: each segment's source range
is cut at the timeline rate and joined with the concat filter (black where a segment has no
media), and the score's WAV is the sound. The cue sheet shows the cuts and hits, the
valence/arousal curve the music follows, and a piano roll of what was written.
"""

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bridge import atomic
from bridge.timebase import frames_to_seconds

SIZE = (640, 360)


class PreviewSkipped(Exception):
    """No preview video can be made here; the message says why (for the run's warnings)."""


def preview_video(timeline, wav_path, path, size=SIZE) -> Path:
    """Write an H.264/AAC MP4 of the edit with the score, exactly the timeline's frames."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise PreviewSkipped("ffmpeg not found: no preview video")
    if wav_path is None:
        raise PreviewSkipped("no audio rendered: no preview video")
    segments = timeline.segments
    if not any(s.media_path and os.path.isfile(s.media_path) for s in segments):
        raise PreviewSkipped("the edit's media are missing: no preview video")
    rate = timeline.rate
    fps = f"{rate.numerator}/{rate.denominator}"
    w, h = size
    inputs, chains, count = [], [], 0
    for i, seg in enumerate(segments):
        frames = seg.record_end - seg.record_start
        if seg.media_path and os.path.isfile(seg.media_path):
            inputs += [
                "-ss",
                f"{seg.media_start:.6f}",
                "-t",
                f"{frames_to_seconds(frames + 1, rate):.6f}",
                "-i",
                seg.media_path,
            ]
            source = f"[{count}:v]fps={fps},"
            count += 1
        else:
            source = f"color=c=black:s={w}x{h}:r={fps},"
        chains.append(
            f"{source}scale={w}:{h}:force_original_aspect_ratio=decrease,"
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,"
            f"trim=end_frame={frames},setpts=PTS-STARTPTS[v{i}]"
        )
    chains.append("".join(f"[v{i}]" for i in range(len(segments))) + f"concat=n={len(segments)}:v=1:a=0[v]")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent, prefix=f".{path.stem}.")
    os.close(fd)
    command = [
        ffmpeg,
        "-v",
        "error",
        "-y",
        *inputs,
        "-i",
        str(wav_path),
        "-filter_complex",
        ";".join(chains),
        "-map",
        "[v]",
        "-map",
        f"{count}:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-r",
        fps,
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-movflags",
        "+faststart",
        tmp,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise PreviewSkipped(f"ffmpeg could not build the preview video: {reason}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


FAMILY_COLOURS = {
    "drums": "#555555",
    "bass": "#1f77b4",
    "pad": "#2ca02c",
    "melody": "#d62728",
    "piano": "#9467bd",
    "timpani": "#8c564b",
    "taiko": "#e377c2",
}
HIT_COLOURS = {"marker": "#d62728", "cut": "#222222", "transition": "#ff7f0e", "detected": "#7f7f7f"}
PALETTE_COLOURS = {"warm": "#fde0b0", "dark": "#c8cde0", "bright": "#fff3a0", "tense": "#f4b6b6"}


def cue_sheet(path, plan, notes, title="") -> Path:
    """A PNG: sections (key, palette, tacet) with the hits, the valence/arousal curve, and
    a piano roll of the score with the hits drawn through it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = plan.duration_s
    fig, (top, curve, roll) = plt.subplots(
        3, 1, figsize=(14, 8), sharex=True, gridspec_kw={"height_ratios": [1, 1.4, 3]}
    )
    for s in plan.sections:
        top.axvspan(
            s.start,
            s.end,
            color=PALETTE_COLOURS[s.palette_name],
            alpha=0.8,
            hatch="//" if s.tacet else None,
            linewidth=0,
        )
        top.text(
            (s.start + s.end) / 2,
            0.5,
            "tacet" if s.tacet else f"{s.key}\n{s.palette_name}",
            ha="center",
            va="center",
            fontsize=7,
            clip_on=True,
        )
    for axis in (top, curve, roll):
        for h in plan.hits:
            axis.axvline(h.seconds, color=HIT_COLOURS.get(h.source, "#222222"), linewidth=0.8, alpha=0.7)
    top.set_yticks([])
    top.set_ylabel("sections")
    starts = [s.start for s in plan.sections] + [end]
    curve.step(
        starts,
        [s.valence for s in plan.sections] + [plan.sections[-1].valence],
        where="post",
        label="valence",
        color="#2ca02c",
    )
    curve.step(
        starts,
        [s.arousal for s in plan.sections] + [plan.sections[-1].arousal],
        where="post",
        label="arousal",
        color="#d62728",
    )
    curve.set_ylim(-1.05, 1.05)
    curve.axhline(0, color="#999999", linewidth=0.5)
    curve.legend(loc="upper right", fontsize=7)
    curve.set_ylabel("emotion")
    for family, colour in FAMILY_COLOURS.items():
        bars = [(n.start, n.end - n.start) for n in notes if n.family == family]
        for pitch in sorted({n.pitch for n in notes if n.family == family}):
            spans = [(n.start, n.end - n.start) for n in notes if n.family == family and n.pitch == pitch]
            roll.broken_barh(spans, (pitch - 0.4, 0.8), facecolors=colour)
        if bars:
            roll.plot([], [], color=colour, linewidth=6, label=family)
    roll.legend(loc="upper right", fontsize=7, ncol=5)
    roll.set_ylabel("pitch")
    roll.set_xlabel("seconds from the first frame")
    roll.set_xlim(0, end)
    tempo = plan.tempo
    fig.suptitle(
        f"{plan.name}  {title}  —  {tempo['bpm']:.2f} BPM ({tempo['mode']}), "
        f"{len(plan.hits)} hits, {tempo['hits_on_beat']} on a beat",
        fontsize=10,
    )
    fig.tight_layout()
    data = io.BytesIO()
    fig.savefig(data, format="png", dpi=100)
    plt.close(fig)
    return atomic.write_bytes(path, data.getvalue())
