"""Pitch classes, scales and chord qualities: the vocabulary every layer of the engine shares.

A chord is (root, quality): root a pitch class, quality a name in QUALITIES. Relative to a key
it is (interval of the root above the tonic, quality), which is what the chord model learns,
so one progression serves every key.
"""

import re

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}

# Intervals above the root. Sevenths and suspensions are part of the vocabulary because the
# chorales use them and the moods ask for them (MUSIC.md §2).
QUALITIES = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "dom7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "sus4": (0, 5, 7),
}
QUALITY_NAMES = tuple(QUALITIES)
TRIAD_OF = {
    "maj": "maj",
    "min": "min",
    "dim": "dim",
    "aug": "aug",
    "dom7": "maj",
    "maj7": "maj",
    "min7": "min",
    "hdim7": "dim",
    "dim7": "dim",
    "sus4": "maj",
}

# Krumhansl-Kessler key profiles (tonic first): how strongly each pitch class belongs to a
# major or a minor key, as listeners rated it. The measures hear a key's mode with them.
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

_NUMERALS = ("I", "bII", "II", "bIII", "III", "IV", "#IV", "V", "bVI", "VI", "bVII", "VII")
_SUFFIX = {
    "maj": "",
    "min": "",
    "dim": "o",
    "aug": "+",
    "dom7": "7",
    "maj7": "maj7",
    "min7": "7",
    "hdim7": "ø7",
    "dim7": "o7",
    "sus4": "sus4",
}


def numeral(interval: int, quality: str) -> str:
    """A Roman numeral for a chord relative to its key: 'V7', 'bVI', 'ii', 'viio'."""
    base = _NUMERALS[interval % 12]
    if TRIAD_OF[quality] in ("min", "dim"):
        base = base.lower()
    return base + _SUFFIX[quality]


def chord_pcs(root: int, quality: str) -> tuple:
    return tuple((root + i) % 12 for i in QUALITIES[quality])


def best_chord(pcs) -> tuple:
    """(root, quality) whose template best explains a set of pitch classes (with counts):
    covered weight minus weight outside it, minus half a missing template tone; ties to the
    simpler (triad) quality."""
    weights = {}
    for pc in pcs:
        weights[pc % 12] = weights.get(pc % 12, 0) + 1
    best, best_score = None, None
    for q_index, (quality, template) in enumerate(QUALITIES.items()):
        for root in range(12):
            tones = {(root + i) % 12 for i in template}
            inside = sum(w for pc, w in weights.items() if pc in tones)
            outside = sum(w for pc, w in weights.items() if pc not in tones)
            missing = sum(1 for t in tones if t not in weights)
            score = inside - outside - 0.5 * missing - 0.01 * q_index
            if best_score is None or score > best_score:
                best, best_score = (root, quality), score
    return best


_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|minor|maj|min|m)?\s*$")


def parse_key(text: str) -> tuple:
    """'E minor', 'Bb', 'f# min', 'Ebm' -> (tonic pitch class, 'major'|'minor'); ValueError otherwise."""
    match = _KEY.match(text or "")
    if not match:
        raise ValueError(f"not a key: {text!r} (expected e.g. 'D major', 'Bb', 'F# minor', 'Em')")
    letter, accidental, mode = match.groups()
    pc = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[letter.upper()]
    pc += {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    return pc % 12, "minor" if mode in ("minor", "min", "m") else "major"


def key_name(tonic: int, mode: str) -> str:
    return f"{PITCH_NAMES[tonic % 12]} {mode}"
