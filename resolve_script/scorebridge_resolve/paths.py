"""Where things are: the config and state folders, the token, the daemon's address and the
`scorebridge` command (the same rules as bridge/config.py)."""

import glob
import os
import platform
import shutil
import time
import traceback

from . import common
from .common import DEFAULT_HOST, DEFAULT_PORT, Failure


def _home(*parts):
    return os.path.join(os.path.expanduser("~"), *parts)


def _user_dir(env_name, linux_xdg, linux_default):
    """Per-user folder of ScoreBridge: env override, else the OS's place for it."""
    if os.environ.get(env_name):
        return os.environ[env_name]
    system = platform.system()
    if system == "Windows":
        return os.path.join(os.environ.get("LOCALAPPDATA") or _home("AppData", "Local"), "scorebridge")
    if system == "Darwin":
        return _home("Library", "Application Support", "scorebridge")
    return os.path.join(os.environ.get(linux_xdg) or _home(*linux_default), "scorebridge")


def config_dir():
    return _user_dir("SCOREBRIDGE_CONFIG", "XDG_CONFIG_HOME", (".config",))


def state_dir():
    return _user_dir("SCOREBRIDGE_STATE", "XDG_STATE_HOME", (".local", "state"))


def read_token():
    """The shared token (SCOREBRIDGE_TOKEN, else the daemon's token file), or None."""
    if os.environ.get("SCOREBRIDGE_TOKEN"):
        return os.environ["SCOREBRIDGE_TOKEN"]
    try:
        with open(os.path.join(config_dir(), "token")) as stream:
            return stream.read().strip() or None
    except (IOError, OSError):
        return None


def endpoint():
    host = os.environ.get("SCOREBRIDGE_HOST") or DEFAULT_HOST
    try:
        port = int(os.environ.get("SCOREBRIDGE_PORT") or DEFAULT_PORT)
    except ValueError:
        raise Failure("SCOREBRIDGE_PORT must be a port number, not %r" % os.environ["SCOREBRIDGE_PORT"])
    return host, port


def find_cli():
    """The command that runs `scorebridge`, as an argument list, or None."""
    if os.environ.get("SCOREBRIDGE_CLI"):
        return [os.environ["SCOREBRIDGE_CLI"]]
    if common.INSTALLED_CLI and os.path.exists(common.INSTALLED_CLI[0]):
        return list(common.INSTALLED_CLI)
    found = shutil.which("scorebridge")
    if found:
        return [found]
    exe = "scorebridge.exe" if platform.system() == "Windows" else "scorebridge"
    places = [_home(".local", "bin", exe), _home(".local", "pipx", "venvs", "scorebridge", "bin", exe),
              "/opt/homebrew/bin/" + exe, "/usr/local/bin/" + exe,
              _home("scorebridge", ".venv", "bin", exe), _home("ScoreBridge", ".venv", "bin", exe)]
    for root in (os.environ.get("APPDATA"), os.environ.get("LOCALAPPDATA")):
        if root:
            places += sorted(glob.glob(os.path.join(root, "Python", "Python3*", "Scripts", exe)))
            places += sorted(glob.glob(os.path.join(root, "Programs", "Python", "Python3*", "Scripts", exe)))
    for place in places:
        if os.path.isfile(place):
            return [place]
    return None


def out_base():
    """Where the takes go: SCOREBRIDGE_RESOLVE_OUT, else ~/Documents/ScoreBridge."""
    if os.environ.get("SCOREBRIDGE_RESOLVE_OUT"):
        return os.path.abspath(os.environ["SCOREBRIDGE_RESOLVE_OUT"])
    documents = _home("Documents")
    return os.path.join(documents if os.path.isdir(documents) else _home(), "ScoreBridge")


def _safe_name(text):
    name = "".join(c if c.isalnum() or c in "-_. " else "_" for c in str(text or "")).strip(" .")
    return name or "timeline"


def log_traceback():
    """The current exception's traceback in ScoreBridge's state folder (for a bug report)."""
    path = os.path.join(state_dir(), "resolve-script.log")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as stream:
            stream.write("%s\n%s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), traceback.format_exc()))
        return path
    except (IOError, OSError):
        return "(no log: %s)" % path
