"""The music engine in layers: plan (key, tempo) -> harmony -> arrangement -> melody.

    draw(model, plan, seed) -> Draw

Each layer is a stage over plain data: harmony.progression gives chords on the tempo map,
arrangement.arrange realises pad, bass, rhythm and percussion from them, melody.write states
and develops the motifs the music model drew. Full scores and live updates both call `draw`
with the same plan and seed (a live update keeps the notes outside its changed spans and
takes this draw's notes inside them), so both hear the same conditions.
"""

from dataclasses import dataclass

from bridge.music import arrangement, harmony, melody
from bridge.music.arrangement import to_seconds
from bridge.music.harmony import _bpm_at
from bridge.plan import PART_FAMILIES
from bridge.timebase import seconds_to_beats

_MOTIFS = {}  # (model id, palette, mood, seed) -> (model, motifs): a live session draws each once


@dataclass(frozen=True)
class Draw:
    notes: list  # ScoreNote, sorted
    chords: list  # harmony.ChordSpan
    motif_sources: dict  # palette -> sources of its (A, B) motifs
    moods: dict  # palette -> (valence, arousal, tonic, mode, bpm) the motifs were drawn for
    expression: list = ()  # (seconds, family, CC11 value): swells into the important hits


def moods_of(plan) -> dict:
    """One mood per palette the cue uses: its sections' mean valence and arousal (by length,
    to 0.1), their key and the tempo around the first of them (to 4 BPM)."""

    tempo_map = plan.tempo["tempo_map"]
    out, weights = {}, {}
    for s in plan.sections:
        if s.tacet or s.end <= s.start:
            continue
        w = s.end - s.start
        if s.palette_name not in out:  # the key and tempo where the mood first sounds
            out[s.palette_name] = (0.0, 0.0, s.tonic, s.mode, _bpm_at(seconds_to_beats(s.start, tempo_map), tempo_map))
        v, a, t, m, bpm = out[s.palette_name]
        out[s.palette_name] = (v + s.valence * w, a + s.arousal * w, t, m, bpm)
        weights[s.palette_name] = weights.get(s.palette_name, 0.0) + w
    # coarse on purpose: a moved cut that nudges the tempo or a shot's estimate by a hair
    # keeps the cue's themes (and the motif draw is not repeated)
    return {
        k: (round(v / weights[k], 1), round(a / weights[k], 1), t, m, 4.0 * round(bpm / 4.0))
        for k, (v, a, t, m, bpm) in out.items()
    }


def motifs_for(model, plan, seed) -> dict:
    """{palette: (A, B)} for the cue's moods. Each mood's motifs are drawn on their own, so
    they depend on that mood (with its key and tempo), the model and the seed only: a theme
    comes back in every cue of a reel that has its mood, and a live edit that changes one
    mood draws that one again."""
    out = {}
    for name, mood in sorted(moods_of(plan).items()):
        key = (id(model), name, mood, seed)
        cached = _MOTIFS.get(key)
        if cached is None or cached[0] is not model:  # the entry holds its model: no id reused
            if len(_MOTIFS) > 256:
                _MOTIFS.clear()
            cached = _MOTIFS[key] = (model, melody.draw_motifs(model, {name: mood}, seed)[name])
        out[name] = cached[1]
    return out


def draw(model, plan, seed, chord_model=None) -> Draw:
    """The whole cue's music for `plan`: the same plan, seed and models give the same notes."""
    chords = harmony.progression(plan, seed, chord_model)
    beat_notes = arrangement.arrange(plan, chords, seed)
    motifs = motifs_for(model, plan, seed)
    line = melody.write(plan, chords, motifs, seed)
    notes = to_seconds(beat_notes + line.notes, plan, chords)
    notes.sort(key=lambda n: (n.start, PART_FAMILIES.index(n.family), n.pitch))
    return Draw(notes, chords, line.sources, moods_of(plan), arrangement.expression(plan, chords))


def compose(model, plan, seed=0, progress=None) -> dict:
    """A full score in the shape the renderer and the session state expect."""
    if progress is not None:
        progress(0.0)
    result = draw(model, plan, seed)
    if progress is not None:
        progress(1.0)
    return {
        "notes": result.notes,
        "chords": result.chords,
        "scores": [],
        "best": 0,
        "tokens": None,
        "reached_s": plan.duration_s,
        "motif_sources": result.motif_sources,
        "expression": result.expression,
    }
