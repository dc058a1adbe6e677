"""Where things are: the state folder, the takes and the `scorebridge` command (the same rules
as bridge/config.py)."""

import glob
import os
import platform
import shutil
import time
import traceback

from . import common


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


def state_dir():
    return _user_dir("SCOREBRIDGE_STATE", "XDG_STATE_HOME", (".local", "state"))


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
