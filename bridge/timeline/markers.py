"""ScoreBridge's marker syntax: what a marker name (or its comment) asks of the music.

    mood: tense        the emotion from here on, as a word (see MOODS)
    va: 0.4, -0.2      the emotion from here on, as valence and arousal in [-1, 1]
    hit / hit: boom    the music must mark this frame
    tacet              no music from here (for the marker's duration, else until `music`)
    music / end tacet  the music comes back
    anything else      a note: kept, no effect

Names are read case-insensitively and with any spacing; when the name is no instruction,
the comment is tried. Markers named `SB:…` are ScoreBridge's own output; the timeline
reader skips them before they get here.
"""

import re

# Word -> (valence, arousal) on the circumplex, both in [-1, 1]. The Ekman emotions use the
# means EMSYNC gives (REFERENCES.md); the film words are placed relative to them.
MOODS = {
    # Ekman-6 and neutral (EMSYNC means), with their everyday synonyms
    "anger": (-0.51, 0.59),
    "angry": (-0.51, 0.59),
    "rage": (-0.51, 0.59),
    "furious": (-0.51, 0.59),
    "disgust": (-0.60, 0.35),
    "disgusted": (-0.60, 0.35),
    "fear": (-0.64, 0.60),
    "afraid": (-0.64, 0.60),
    "scared": (-0.64, 0.60),
    "fearful": (-0.64, 0.60),
    "frightened": (-0.64, 0.60),
    "horror": (-0.64, 0.60),
    "joy": (0.76, 0.48),
    "happy": (0.76, 0.48),
    "joyful": (0.76, 0.48),
    "happiness": (0.76, 0.48),
    "cheerful": (0.76, 0.48),
    "sadness": (-0.63, -0.27),
    "sad": (-0.63, -0.27),
    "sorrow": (-0.63, -0.27),
    "surprise": (0.40, 0.67),
    "surprised": (0.40, 0.67),
    "neutral": (0.0, 0.0),
    # tension and danger
    "tense": (-0.40, 0.60),
    "tension": (-0.40, 0.60),
    "suspense": (-0.35, 0.55),
    "suspenseful": (-0.35, 0.55),
    "anxious": (-0.45, 0.55),
    "nervous": (-0.40, 0.50),
    "ominous": (-0.55, 0.35),
    "sinister": (-0.60, 0.40),
    "dread": (-0.65, 0.45),
    "dark": (-0.55, 0.20),
    "eerie": (-0.45, 0.30),
    "creepy": (-0.55, 0.40),
    "mysterious": (-0.15, 0.25),
    "mystery": (-0.15, 0.25),
    "aggressive": (-0.40, 0.80),
    # energy
    "action": (0.10, 0.85),
    "chase": (-0.10, 0.90),
    "energetic": (0.50, 0.80),
    "excited": (0.70, 0.75),
    "exciting": (0.70, 0.75),
    "heroic": (0.60, 0.65),
    "epic": (0.45, 0.75),
    "triumphant": (0.80, 0.70),
    "majestic": (0.60, 0.40),
    "uplifting": (0.70, 0.40),
    "inspiring": (0.65, 0.45),
    "playful": (0.60, 0.50),
    "whimsical": (0.50, 0.30),
    "funny": (0.65, 0.45),
    "comedic": (0.65, 0.45),
    # warmth and rest
    "hopeful": (0.55, 0.15),
    "romantic": (0.65, -0.10),
    "love": (0.70, 0.10),
    "tender": (0.60, -0.35),
    "warm": (0.60, -0.10),
    "calm": (0.40, -0.60),
    "peaceful": (0.50, -0.60),
    "serene": (0.50, -0.60),
    "relaxed": (0.50, -0.50),
    "dreamy": (0.40, -0.45),
    "nostalgic": (0.10, -0.30),
    "bittersweet": (0.00, -0.20),
    # loss
    "melancholy": (-0.50, -0.40),
    "melancholic": (-0.50, -0.40),
    "somber": (-0.50, -0.40),
    "sombre": (-0.50, -0.40),
    "lonely": (-0.55, -0.35),
    "desolate": (-0.60, -0.50),
    "grief": (-0.75, -0.20),
    "tragic": (-0.75, -0.10),
}

# `mood: auto` ends a mood/va marker's reach: from there the picture sets the emotion again.
AUTO_WORDS = {"auto", "picture", "off"}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_VA = re.compile(rf"^va\s*:\s*({_NUMBER})\s*[,;]?\s*({_NUMBER})$")


def _clean(text) -> str:
    """Lower case, spacing collapsed: 'Mood :  Tense ' -> 'mood : tense'."""
    return " ".join(str(text or "").lower().split())


def _result(kind, mood=None, valence=None, arousal=None, warning=None) -> dict:
    return {"kind": kind, "mood": mood, "valence": valence, "arousal": arousal, "warning": warning}


def _parse_one(text):
    """One text as an instruction, or None when it is none (then it is only a note)."""
    if text == "hit" or re.match(r"^hit\s*:", text):
        return _result("hit")
    if text == "tacet" or re.match(r"^tacet\s*:", text):
        return _result("tacet")
    if text in ("music", "end tacet", "endtacet") or re.match(r"^(music|end tacet)\s*:", text):
        return _result("music")
    mood = re.match(r"^mood\s*:\s*(.*)$", text)
    if mood:
        word = mood.group(1).strip(" .!")
        if word in AUTO_WORDS:  # the picture decides again from here
            return _result("mood", "auto")
        if word in MOODS:
            valence, arousal = MOODS[word]
            return _result("mood", word, valence, arousal)
        return _result(
            "note",
            warning=f"unknown mood word {word!r} (known: see the marker table "
            f"in docs/edits.md); the marker is kept as a note",
        )
    if re.match(r"^va\s*:", text):
        va = _VA.match(text)
        if not va:
            return _result(
                "note",
                warning=f"cannot read {text!r}: write 'va: V, A' with two "
                f"numbers in [-1, 1]; the marker is kept as a note",
            )
        valence, arousal = float(va.group(1)), float(va.group(2))
        if not (-1 <= valence <= 1 and -1 <= arousal <= 1):
            return _result(
                "note",
                warning=f"{text!r} is out of range: valence and arousal must "
                f"be in [-1, 1]; the marker is kept as a note",
            )
        return _result("va", None, valence, arousal)
    return None


def parse_marker(name, comment="") -> dict:
    """What a marker asks for: {kind, mood, valence, arousal, warning}.

    kind is "hit", "mood", "va", "tacet", "music" or "note". warning is None, or one line
    for the user when the marker looked like an instruction but could not be used (an
    unknown mood word, va numbers outside [-1, 1]); such a marker becomes a note, so a
    typo never stops a run. The name is tried first, then the comment.
    """
    for text in (_clean(name), _clean(comment)):
        parsed = _parse_one(text)
        if parsed is not None:
            return parsed
    return _result("note")


def tacet_spans(markers, duration) -> list:
    """[start, end) frames without music: a tacet marker's own duration when it has one,
    else up to the next `music` marker, else to the end of the timeline."""
    ordered = sorted(markers, key=lambda m: m.frame)
    spans = []
    for m in ordered:
        if m.kind != "tacet":
            continue
        if m.duration > 0:
            end = m.frame + m.duration
        else:
            end = next((n.frame for n in ordered if n.kind == "music" and n.frame > m.frame), duration)
        start, end = max(0, m.frame), min(duration, end)
        if end > start:
            spans.append((start, end))
    return spans
