"""The cue's key and tempo target, from its mood and its edit.

The home key is chosen per cue: its mood picks a shortlist of keys that sit well for the
palette's instruments, its edit picks one of them, so the cues of a reel are not all in one
key (MUSIC.md §2). The tempo target follows arousal; tempo.fit then moves it so the hits
land on beats.
"""

import zlib

from bridge.plan.roles import palette_for

BPM_LO, BPM_HI = 60.0, 160.0

# Each mood's shortlist of home keys. Sections of the other valence sign take the parallel
# mode (same tonic): a dark turn in a major cue is the minor of its tonic, as a film composer
# writes it.
KEYS = {
    "bright": (2, 7, 9, 0, 4),  # D, G, A, C, E major: open strings, bright brass
    "warm": (5, 10, 3, 0, 7),  # F, Bb, Eb, C, G major: warm, flat keys
    "dark": (2, 9, 4, 0, 7),  # D, A, E, C, G minor
    "tense": (2, 4, 0, 7, 11),  # D, E, C, G, B minor
}
MODE_DEADBAND = 0.15  # |valence| below this keeps the cue's home mode


def target_bpm(arousal) -> float:
    """Calm music is slow, excited music fast: arousal -1..1 -> 60..160 BPM."""
    return BPM_LO + (BPM_HI - BPM_LO) * (max(-1.0, min(1.0, arousal)) + 1) / 2


def choose_key(mean_valence, mean_arousal, hit_frames, duration_frames, cue) -> int:
    """The home tonic for a cue: the mood's shortlist, one of it picked by the edit itself
    (its length, its hits, its cue number), so the same edit always gets the same key and
    the cues of a reel spread over several."""
    shortlist = KEYS[palette_for(mean_valence, mean_arousal)]
    fingerprint = f"{cue}|{duration_frames}|{','.join(str(f) for f in hit_frames)}".encode()
    return shortlist[zlib.crc32(fingerprint) % len(shortlist)]
