"""Who plays: the orchestration of each mood (MUSIC.md §2), the role each family takes, the
families a score may hold and the General MIDI names tracks are named by."""

# Orchestration by quadrant of the circumplex: family -> General MIDI program (0-based),
# None where the family rests. Drums only play in excited sections.
# The "piano" family plays the rhythm role (arpeggio, ostinato, pulse); "drums" (the GM kit),
# "timpani" and "taiko" the percussion. ROLES names them in track names.
PALETTES = {
    "warm": {"pad": 48, "melody": 73, "bass": 43, "piano": 46, "drums": None, "timpani": None, "taiko": None},
    "dark": {"pad": 49, "melody": 71, "bass": 43, "piano": 0, "drums": None, "timpani": None, "taiko": None},
    "bright": {"pad": 48, "melody": 61, "bass": 32, "piano": 0, "drums": 0, "timpani": 47, "taiko": None},
    "tense": {"pad": 50, "melody": 40, "bass": 43, "piano": 45, "drums": 0, "timpani": 47, "taiko": 116},
}
ROLES = {
    "pad": "pad",
    "melody": "melody",
    "bass": "bass",
    "piano": "rhythm",
    "drums": "percussion",
    "timpani": "percussion",
    "taiko": "percussion",
}
# Every family a score may hold, in track order: the music model's five, then the orchestral
# percussion the arrangement adds (the model has no tokens for them).
PART_FAMILIES = ("drums", "bass", "pad", "melody", "piano", "timpani", "taiko")
PERCUSSION = ("drums", "timpani", "taiko")
PROGRAM_NAMES = {
    0: "Piano",
    32: "Acoustic Bass",
    40: "Violin",
    42: "Cello",
    43: "Contrabass",
    45: "Pizzicato Strings",
    46: "Harp",
    48: "Strings",
    49: "Slow Strings",
    47: "Timpani",
    50: "Synth Strings",
    60: "French Horn",
    61: "Brass",
    71: "Clarinet",
    73: "Flute",
    116: "Taiko Drum",
}


def palette_for(valence, arousal) -> str:
    """The mood's quadrant: bright, tense (excited), warm, dark (calm)."""
    if arousal > 0.15:
        return "bright" if valence >= 0 else "tense"
    return "warm" if valence >= 0 else "dark"
