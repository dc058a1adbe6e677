"""Rhythm-section works from Debian's `mma` (Musical MIDI Accompaniment).

music21's corpus has no drums, so a model trained on it alone never learns them. mma's groove
library renders a chord chart into drums, bass and chord parts in a few hundred styles
(ballad, rock, bossa, swing, waltz, …), the only drum material that installs offline.
Each looping groove is rendered here over one major and one minor
chart into a work of the corpus:

    {"id": "mma/ballad/Ballad1/minor", "collection": "mma", "qpm": 100.0,
     "parts": [float32 (n, 3): onset_q, dur_q, pitch], "families": ["drums", "bass", ...],
     "split": split_of("mma/ballad")}

Unlike the scores, whose families data.augment assigns by register, a groove's families come
from mma's track roles (Drum, Bass, Chord …; family_of_track); and its split follows the
groove's library file, so the variants of one style (Ballad, Ballad1, BalladSus …) never straddle
train and test. mma writes no dynamics the corpus keeps: velocities come from augmentation,
as for every work. mma strums and humanises its chords, so their notes start up to ~60 ms
apart; they are lined up (line_up_chords), because a boundary is a chord whose notes start
together (labels.boundaries), and so is a hit in the eval.
"""

import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bridge.music.tokens import family_of

MMA_STDLIB = Path("/usr/share/mma/lib/stdlib")
# Intros, endings, fills and breaks are a bar or a few, written to start or stop a song,
# not to loop under one; "None" is the library's silence.
NOT_LOOPS = re.compile(r"intro|end|fill|break|^none$", re.IGNORECASE)
TEMPO = 100.0  # every chart's; augmentation scales it (0.7-1.4x), as for the scores
CHORD_SPREAD_Q = 0.1  # a strum: notes of one part starting within this (60 ms at TEMPO) of the first
# One chord a bar, 16 bars: common progressions, the minor ones with the raised leading note.
CHARTS = {
    "major": (
        "C Am F G C Am Dm7 G7 C Em F G C F G7 C",
        "C F C G7 C F G7 C Am Dm G7 C F G7 C C",
        "C C7 F Fm C A7 Dm7 G7 Em Am Dm7 G7 C F G7 C",
    ),
    "minor": (
        "Am Dm E7 Am F Dm E7 Am Am Dm G C F Dm E7 Am",
        "Am Am F G Am Am F E7 Dm Am E7 Am Dm Am E7 Am",
        "Am G F E7 Am G F E7 Dm G C F Dm Bm7b5 E7 Am",
    ),
}


def find_mma():
    exe = shutil.which("mma")
    if exe is None:
        raise RuntimeError("mma not found: install Debian's `mma` package (apt-get install mma)")
    return exe


def groove_names(lib=MMA_STDLIB) -> list:
    """(library file stem, groove) for every looping groove defined in mma's standard
    library, in a stable order, each name once."""
    seen, out = set(), []
    for f in sorted(Path(lib).glob("*.mma")):
        for line in f.read_text(errors="replace").splitlines():
            m = re.match(r"\s*DefGroove\s+(\S+)", line, re.IGNORECASE)
            if m and not NOT_LOOPS.search(m.group(1)) and m.group(1).lower() not in seen:
                seen.add(m.group(1).lower())
                out.append((f.stem, m.group(1)))
    return out


def _stable(text: str) -> int:
    """A number from a name, the same on every machine and run (unlike hash())."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def chart_for(groove: str, mode: str) -> list:
    """The chart a groove is rendered over in `mode`: one of CHARTS[mode], by the groove's name,
    so the corpus is the same on every machine."""
    charts = CHARTS[mode]
    return charts[_stable(f"{groove}/{mode}") % len(charts)].split()


def family_of_track(name: str, channel: int, program: int) -> str:
    """mma names its tracks by role (Drum, Bass, Walk, Chord, Arpeggio, Solo …). The role
    decides: a bass line is bass whatever plays it (a guitar in Bossanova), chords are piano
    on a piano's program and a pad on any other (a sax section in 50sRock); a track of no
    known role goes by its program."""
    role = name.split("-")[0].lower()
    if channel == 9 or role == "drum":
        return "drums"
    if role in ("bass", "walk"):
        return "bass"
    if role in ("chord", "arpeggio", "pluck", "scale", "aria"):
        return "piano" if program <= 15 else "pad"
    if role in ("solo", "melody"):
        return "melody"
    return family_of(channel, program)


def line_up_chords(parts, families, spread_q=CHORD_SPREAD_Q) -> list:
    """Each pitched part's strummed chords struck at once: a note starting within `spread_q`
    quarters of the first onset of its group starts with it and still ends where it ended (a
    pitch struck twice in one group sounds once, the longer). Drums keep their feel. Why: in
    the first 200 groove works 5,370 of 11,338 chords started together; the rest, spread,
    were no boundary to train on and no chord the eval counts."""
    out = []
    for part, family in zip(parts, families):
        if family == "drums" or len(part) < 2:
            out.append(part)
            continue
        part = part[np.lexsort((part[:, 2], part[:, 0]))]
        onset, end = part[:, 0].copy(), part[:, 0] + part[:, 1]
        first = onset[0]
        for i in range(1, len(onset)):
            if onset[i] - first <= spread_q:
                onset[i] = first
            else:
                first = onset[i]
        notes = {}
        for t, e, pitch in zip(onset.tolist(), end.tolist(), part[:, 2].tolist()):
            notes[t, pitch] = max(e, notes.get((t, pitch), e))
        rows = sorted((t, e - t, pitch) for (t, pitch), e in notes.items())
        out.append(np.array(rows, dtype=np.float32))
    return out


def render(groove: str, chords, tempo=TEMPO, seed=1, exe=None, timeout=60):
    """One chart (a chord a bar) in one groove -> (parts in quarter notes, families, qpm), the
    chords lined up (line_up_chords). mma humanises timing, volume and skipped notes at random;
    `seed` makes that repeatable."""
    from bridge.music.corpus import midi_to_parts

    exe = exe or find_mma()
    with tempfile.TemporaryDirectory(prefix="scorebridge-mma-") as tmp:
        Path(tmp, "chart.mma").write_text(
            f"RndSeed {int(seed)}\nTempo {tempo:g}\nGroove {groove}\n" + "\n".join(chords) + "\n"
        )
        proc = subprocess.run(
            [exe, "-f", "chart.mid", "chart.mma"], cwd=tmp, capture_output=True, text=True, timeout=timeout
        )
        out = Path(tmp, "chart.mid")
        if proc.returncode != 0 or not out.exists():
            said = [s for s in (proc.stdout + proc.stderr).splitlines() if s.strip()]
            raise RuntimeError(f"mma could not render groove {groove}: {said[-1] if said else proc.returncode}")
        parts, qpm, families = midi_to_parts(out, family=family_of_track)
    return line_up_chords(parts, families), families, qpm or float(tempo)


def parse_grooves(lib=MMA_STDLIB, log=print) -> list:
    """Every looping groove over a major and a minor chart -> works (see the module's
    docstring). A groove mma cannot render is left out and counted."""
    from bridge.music.corpus import split_of

    exe = find_mma()
    works, failed, start = [], [], time.time()
    names = groove_names(lib)
    for stem, groove in names:
        for mode in ("major", "minor"):
            try:
                parts, families, qpm = render(
                    groove, chart_for(groove, mode), exe=exe, seed=_stable(f"{groove}/{mode}/seed")
                )
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError):
                failed.append(groove)
                continue
            if parts:
                works.append(
                    {
                        "id": f"mma/{stem}/{groove}/{mode}",
                        "collection": "mma",
                        "qpm": qpm,
                        "parts": parts,
                        "families": families,
                        "split": split_of(f"mma/{stem}"),
                    }
                )
    log(
        f"mma: {len(works)} groove works from {len(names)} grooves in {time.time() - start:.0f} s"
        + (f"; {len(set(failed))} grooves could not be rendered" if failed else "")
    )
    return works
