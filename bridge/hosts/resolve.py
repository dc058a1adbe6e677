"""`scorebridge install resolve`: copy the menu entry ScoreBridge.py to where Resolve lists
menu scripts.

Scripts under Fusion/Scripts/Utility show in Workspace > Scripts on every page. Only the entry
is copied (a folder there would show as a menu of its modules); it learns the command that
installed it (INSTALLED_CLI), so it can start this ScoreBridge's daemon even when
`scorebridge` is not on the PATH Resolve gives its scripts, and the folder that holds the
script's package, scorebridge_resolve (MODULES), which stays that of this installation.
"""

import os
import platform
from pathlib import Path

from bridge import resources
from bridge.errors import BadInput
from bridge.hosts import own_command

SCRIPT = resources.folder("resolve") / "ScoreBridge.py"
PLACEHOLDER = "INSTALLED_CLI = None"
MODULES_PLACEHOLDER = "MODULES = None"


def default_dir(system=None) -> Path:
    """The per-user Utility scripts folder of Resolve on this OS (HOSTS.md)."""
    system = system or platform.system()
    if system == "Windows":
        appdata = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(appdata) / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts" / "Utility"
    if system == "Darwin":
        return (
            Path.home()
            / "Library"
            / "Application Support"
            / "Blackmagic Design"
            / "DaVinci Resolve"
            / "Fusion"
            / "Scripts"
            / "Utility"
        )
    return Path.home() / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Utility"


def install(dest=None) -> list:
    """Copy ScoreBridge.py into dest (default: Resolve's per-user Utility folder, created);
    returns the paths written."""
    if not SCRIPT.is_file():
        raise BadInput(
            f"the Resolve script is not part of this installation ({SCRIPT} is missing); "
            f"install ScoreBridge from its source folder"
        )
    folder = Path(dest).expanduser() if dest else default_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create {folder}: {exc.strerror}") from None
    package = SCRIPT.parent / "scorebridge_resolve" / "__init__.py"
    if not package.is_file():
        raise BadInput(f"the Resolve script's modules are not part of this installation ({package} is missing)")
    text = SCRIPT.read_text(encoding="utf-8")
    for placeholder in (PLACEHOLDER, MODULES_PLACEHOLDER):
        if text.count(placeholder) != 1:
            raise BadInput(f"{SCRIPT.name} has no single `{placeholder}` line to fill in")
    text = text.replace(PLACEHOLDER, f"INSTALLED_CLI = {own_command()!r}")
    text = text.replace(MODULES_PLACEHOLDER, f"MODULES = {str(SCRIPT.parent.resolve())!r}")
    target = folder / SCRIPT.name
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return [target]
