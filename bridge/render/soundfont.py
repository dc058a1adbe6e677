"""Finding a General MIDI soundfont and a synthesizer to render with."""

import importlib.util
import os
import shutil
from pathlib import Path

# Debian/Ubuntu, Fedora, Arch and Homebrew locations of the common GM soundfonts.
SOUNDFONT_CANDIDATES = [
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
]


def find_soundfont():
    """The soundfont to use: $SCOREBRIDGE_SOUNDFONT when set, else the first one installed."""
    configured = os.environ.get("SCOREBRIDGE_SOUNDFONT")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


def synthesizers() -> dict:
    """Which synthesizers are usable here: name -> how it is reached (None when absent)."""
    return {
        "tinysoundfont": "python module" if importlib.util.find_spec("tinysoundfont") else None,
        "fluidsynth": shutil.which("fluidsynth"),
    }
