"""Score options: one frozen type and one set of checks for the command line, the daemon and batch.

The same option arrives three ways: as a command-line flag (`--seed 3`), as a key of the
daemon's options_json ({"seed": 3}) and as a batch setting. Each used to check it itself, with
different ranges; now each builds a ScoreOptions, whose construction checks every field, and
the argparse types call the same checks.

    ScoreOptions.from_mapping({"seed": 3, "key": "E minor"})   # JSON-style values; ValueError
    options.score_kwargs()   -> keyword arguments of bridge.score.score
    options.to_json()        -> the options_json a client sends the daemon
"""

import dataclasses
import math
import numbers
from dataclasses import dataclass
from fractions import Fraction
from bridge.errors import BadInput
from bridge.timebase import parse_rate
from bridge.music.theory import parse_key

SEED_RANGE = (0, 2**32 - 1)
LOUDNESS_RANGE = (-40.0, -10.0)  # LUFS a mid-arousal cue may be staged to
CANDIDATES_RANGE = (1, 16)
FPS_RANGE = (1, 1000)
MAX_TEXT = 4096  # a path
MAX_KEY = 40  # a key name


def check_seed(value) -> int:
    low, high = SEED_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"seed must be a whole number 0..2^32-1, got {value!r}")
    return int(value)


def check_unit(value, what) -> float:
    """valence or arousal: a number in [-1, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not -1.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a number in [-1, 1], got {value!r}")
    return float(value)


def check_fps(value) -> Fraction:
    """A frame rate as editors write it (25, 23.976, 29.97, "30000/1001"), 1..1000."""

    try:
        rate, _ = parse_rate(str(value))
    except (ValueError, ZeroDivisionError, BadInput) as exc:
        raise ValueError(f"not a frame rate: {value!r} ({exc})") from None
    low, high = FPS_RANGE
    if not low <= rate <= high:
        raise ValueError(f"frame rate must be {low}..{high}, got {value!r}")
    return rate


def check_key(value) -> str:

    if not isinstance(value, str) or len(value) > MAX_KEY:
        raise ValueError(f"key must be a key name such as 'E minor', got {value!r}")
    parse_key(value)  # ValueError naming what is wrong
    return value


def check_loudness(value) -> float:
    """The loudness target in LUFS."""
    low, high = LOUDNESS_RANGE
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"loudness must be LUFS between {low:g} and {high:g}, got {value!r}")
    return float(value)


def check_candidates(value) -> int:
    low, high = CANDIDATES_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"candidates must be a whole number {low}..{high}, got {value!r}")
    return int(value)


def check_folder(value, what="media_root") -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise ValueError(f"{what} must be a folder path (1..{MAX_TEXT} characters)")
    return value


def check_flag(value, what) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class ScoreOptions:
    """What a request may set about the music and the deliverables; checked on construction."""

    seed: int = 1
    audio: bool = True
    stems: bool = True  # one WAV per role beside the mix (a host that places only the mix says no)
    valence: float | None = None
    arousal: float | None = None
    fps: Fraction | None = None
    media_root: str | None = None
    key: str | None = None
    loudness: float | None = None
    candidates: int = 4

    def __post_init__(self):
        checked = {
            "seed": check_seed(self.seed),
            "audio": check_flag(self.audio, "audio"),
            "stems": check_flag(self.stems, "stems"),
            "candidates": check_candidates(self.candidates),
        }
        for name in ("valence", "arousal"):
            if getattr(self, name) is not None:
                checked[name] = check_unit(getattr(self, name), name)
        optional = {"fps": check_fps, "media_root": check_folder, "key": check_key, "loudness": check_loudness}
        for name, check in optional.items():
            if getattr(self, name) is not None:
                checked[name] = check(getattr(self, name))
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def names(cls) -> set:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_mapping(cls, mapping) -> "ScoreOptions":
        """From JSON-style values (the daemon's options_json, a batch setting); ValueError on
        an unknown key or a value out of range. A null is the default."""
        if not isinstance(mapping, dict):
            raise ValueError("options must be a JSON object")
        unknown = sorted(set(map(str, mapping)) - cls.names())
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(cls.names()))}")
        return cls(**{k: v for k, v in mapping.items() if v is not None})

    def score_kwargs(self) -> dict:
        """Keyword arguments of bridge.score.score."""
        out = dataclasses.asdict(self)
        out["audio_out"] = out.pop("audio")
        return out

    def to_json(self) -> dict:
        """What a client puts in options_json: the fields set away from their defaults."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = str(value) if isinstance(value, Fraction) else value
        return out
