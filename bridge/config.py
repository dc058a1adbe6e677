"""Where ScoreBridge keeps its per-user files, where the daemon listens, and the shared token.

Every path can be moved by the environment, so tests and studios can keep them apart:
SCOREBRIDGE_CONFIG (token), SCOREBRIDGE_STATE (daemon log), SCOREBRIDGE_CACHE (caches),
SCOREBRIDGE_HOST/PORT, SCOREBRIDGE_TOKEN (the token itself, overriding the file),
SCOREBRIDGE_SOUNDFONT (the General MIDI bank) and SCOREBRIDGE_CORPUS (training's corpus).
This module is the only reader of SCOREBRIDGE_* variables.
"""

import os
import secrets
from pathlib import Path

import platformdirs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9451


def config_dir() -> Path:
    """Linux ~/.config/scorebridge, macOS ~/Library/Application Support/scorebridge,
    Windows %LOCALAPPDATA%\\scorebridge."""
    return Path(os.environ.get("SCOREBRIDGE_CONFIG") or platformdirs.user_config_dir("scorebridge", appauthor=False))


def state_dir() -> Path:
    """Where the daemon's log lives (Linux ~/.local/state/scorebridge)."""
    return Path(os.environ.get("SCOREBRIDGE_STATE") or platformdirs.user_state_dir("scorebridge", appauthor=False))


def cache_dir() -> Path:
    """Caches that can be deleted at any time (picture analysis, preset levels):
    $SCOREBRIDGE_CACHE, else the user cache folder."""
    return Path(os.environ.get("SCOREBRIDGE_CACHE") or platformdirs.user_cache_dir("scorebridge"))


def corpus_dir() -> Path:
    """Where training keeps the corpus it builds (gigabytes, rebuilt on demand):
    $SCOREBRIDGE_CORPUS, else .corpus in a checkout, else the cache folder."""
    if os.environ.get("SCOREBRIDGE_CORPUS"):
        return Path(os.environ["SCOREBRIDGE_CORPUS"])
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".corpus"
    return cache_dir() / "corpus"


def soundfont_setting():
    """$SCOREBRIDGE_SOUNDFONT: the General MIDI bank the user chose, or None."""
    return os.environ.get("SCOREBRIDGE_SOUNDFONT") or None


def token_path() -> Path:
    return config_dir() / "token"


def endpoint() -> tuple:
    """(host, port) of the daemon: SCOREBRIDGE_HOST / SCOREBRIDGE_PORT, else 127.0.0.1:9451."""
    host = os.environ.get("SCOREBRIDGE_HOST") or DEFAULT_HOST
    port = os.environ.get("SCOREBRIDGE_PORT") or DEFAULT_PORT
    try:
        port = int(port)
    except ValueError:
        raise ValueError(f"SCOREBRIDGE_PORT must be a port number, got {port!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"SCOREBRIDGE_PORT must be 0..65535, got {port}")
    return host, port


def token_source() -> str:
    """Where the token comes from, for the log: the variable or the file."""
    return "SCOREBRIDGE_TOKEN" if os.environ.get("SCOREBRIDGE_TOKEN") else str(token_path())


def read_token():
    """The shared token, or None when the daemon has never run (and none is in the environment)."""
    if os.environ.get("SCOREBRIDGE_TOKEN"):
        return os.environ["SCOREBRIDGE_TOKEN"]
    try:
        return token_path().read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_token() -> str:
    """The token, created on first use as a file only its owner can read (mode 0600)."""
    token = read_token()
    if token:
        return token
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    tmp = path.with_name(f".token.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    try:  # two daemons starting at once: the first token written wins
        os.link(tmp, path)
    except FileExistsError:
        token = path.read_text().strip()
    finally:
        os.unlink(tmp)
    return token
