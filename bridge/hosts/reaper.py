"""`scorebridge install reaper`: copy the REAPER scripts into REAPER's resource folder and
register them as actions.

The scripts go to <resource>/Scripts/ScoreBridge/ (their shared code under scorebridge/),
and each action gets an `SCR` line in <resource>/reaper-kb.ini, where REAPER keeps the
scripts it lists in its Actions window. The copy also learns the command that installed it
(scorebridge/cli.txt), so it finds this ScoreBridge even when REAPER's PATH does not.
"""

import hashlib
import os
import platform
from pathlib import Path

from bridge import atomic, resources
from bridge.errors import BadInput
from bridge.hosts import own_command

SCRIPTS = resources.folder("reaper")
FOLDER = "ScoreBridge"
ACTIONS = (
    ("scorebridge_score.lua", "ScoreBridge: Score picture"),
    ("scorebridge_live.lua", "ScoreBridge: Live score (toggle)"),
    ("scorebridge_settings.lua", "ScoreBridge: Settings"),
)


def resource_dir(system=None) -> Path:
    """REAPER's per-user resource folder on this OS (Options > Show REAPER resource path)."""
    system = system or platform.system()
    if system == "Windows":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "REAPER"
    if system == "Darwin":
        return Path.home() / "Library" / "Application Support" / "REAPER"
    return Path.home() / ".config" / "REAPER"


def command_id(relative: str) -> str:
    """A stable action id for a script (REAPER's own are RS + 40 hex digits as well)."""
    return "RS" + hashlib.sha1(relative.replace("\\", "/").encode("utf-8")).hexdigest()


def kb_lines(windows: bool) -> list:
    """The reaper-kb.ini lines that register the actions: SCR 4 0 ID "Custom: title" "path",
    the path relative to the Scripts folder."""
    sep = "\\" if windows else "/"
    return [
        f'SCR 4 0 {command_id(FOLDER + "/" + name)} "Custom: {title}" "{FOLDER}{sep}{name}"' for name, title in ACTIONS
    ]


def register(kb_path: Path, windows: bool) -> Path:
    """Adds the actions to reaper-kb.ini, replacing earlier ScoreBridge lines and keeping
    every other line as it was; written atomically."""
    try:
        data = kb_path.read_bytes()
    except FileNotFoundError:
        data = b""
    text = data.decode("utf-8", errors="surrogateescape")
    newline = "\r\n" if "\r\n" in text else "\n"
    ids = {command_id(FOLDER + "/" + name) for name, _ in ACTIONS}
    paths = {f"{FOLDER}{sep}{name}".lower() for name, _ in ACTIONS for sep in "/\\"}

    def ours(line):
        fields = line.split()
        return len(fields) >= 4 and fields[0] == "SCR" and (fields[3] in ids or any(p in line.lower() for p in paths))

    kept = [line for line in text.splitlines() if not ours(line)]
    while kept and not kept[-1].strip():
        kept.pop()
    out = newline.join(kept + kb_lines(windows)) + newline
    atomic.write_bytes(kb_path, out.encode("utf-8", errors="surrogateescape"))
    return kb_path


def install(dest=None) -> list:
    """Copy the scripts into REAPER's resource folder (or into dest, the resource folder to
    use, created when missing) and register the actions; returns the paths written."""
    if not (SCRIPTS / ACTIONS[0][0]).is_file():
        raise BadInput(
            f"the REAPER scripts are not part of this installation ({SCRIPTS} is "
            f"missing); install ScoreBridge from its source folder"
        )
    if dest:
        root = Path(dest).expanduser()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create {root}: {exc.strerror}") from None
    else:
        root = resource_dir()
        if not root.is_dir():
            raise BadInput(
                f"REAPER's resource folder {root} does not exist: start REAPER once, "
                f"or pass --dest with the folder Options > Show REAPER resource path shows"
            )
    target = root / "Scripts" / FOLDER
    written = []
    try:
        for source in sorted(SCRIPTS.rglob("*.lua")):
            written.append(atomic.write_bytes(target / source.relative_to(SCRIPTS), source.read_bytes()))
        # One argument per line: the command the scripts start for `scorebridge …`.
        written.append(atomic.write_text(target / "scorebridge" / "cli.txt", "\n".join(own_command()) + "\n"))
        written.append(register(root / "reaper-kb.ini", platform.system() == "Windows"))
    except OSError as exc:
        raise BadInput(f"cannot write into {root}: {exc.strerror or exc}") from None
    return written
