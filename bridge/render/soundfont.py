"""Finding a General MIDI soundfont and a synthesizer to render with."""

import functools
import struct
from pathlib import Path

from bridge import config

VEL_RANGE = 44  # the SF2 generator that gives a zone a velocity range (a velocity layer)

# Debian/Ubuntu, Fedora, Arch and Homebrew locations of the common GM soundfonts, best
# first: the full banks (FluidR3_GM, 141 MB; MuseScore General), then whatever the system
# calls its default, and the 6 MB TimGM6mb last, as a fallback that warns.
SOUNDFONT_CANDIDATES = [
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/soundfonts/MuseScore_General.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
]
FALLBACK_BANKS = ("timgm6mb",)  # small banks a render warns about


def find_soundfont():
    """The soundfont to use: $SCOREBRIDGE_SOUNDFONT when set, else the first one installed."""
    configured = config.soundfont_setting()
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


def is_fallback_bank(path) -> bool:
    """Whether `path` is (or links to) one of the small fallback banks."""
    try:
        name = Path(path).resolve().name.lower()
    except OSError:
        name = Path(path).name.lower()
    return any(bank in name for bank in FALLBACK_BANKS)


@functools.lru_cache(maxsize=8)
def has_velocity_layers(path) -> bool:
    """Whether any preset or instrument zone of the SF2 file at `path` is limited to part of
    the velocity range (its sound then depends on which velocity picks it). Read from the
    file's pdta generator lists; a file that cannot be read counts as having layers, the
    answer that changes nothing (see render/audio.py)."""
    try:
        data = Path(path).read_bytes()
        if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
            return True
        for kind, start, size in _chunks(data, 12, len(data)):
            if kind == b"LIST" and data[start : start + 4] == b"pdta":
                for sub, at, length in _chunks(data, start + 4, start + size):
                    if sub in (b"pgen", b"igen"):
                        for i in range(at, at + length - 3, 4):
                            oper, low, high = struct.unpack_from("<HBB", data, i)
                            if oper == VEL_RANGE and (low, high) != (0, 127):
                                return True
                return False
        return True
    except (OSError, struct.error):
        return True


def _chunks(data, start, end):
    """(id, payload start, payload size) of the RIFF chunks in data[start:end]."""
    while start + 8 <= end:
        kind = data[start : start + 4]
        size = struct.unpack_from("<I", data, start + 4)[0]
        yield kind, start + 8, size
        start += 8 + size + (size & 1)
