"""Shipped files: the model weights, the REAPER scripts, the Resolve script.

One place finds them, so a wheel install works as a checkout does. The wheel carries them
inside the package (pyproject maps models/ to bridge/_models, reaper_scripts/ to
bridge/_reaper, resolve_script/ to bridge/_resolve), where importlib.resources finds them; a
checkout has them at the repository's top, beside bridge/. The package comes first: in a wheel
install the folder above bridge/ is site-packages, where another distribution's `models`
folder could sit.

    folder("models") -> Path        # exists, or the checkout's path for the error to name
"""

from importlib import resources
from pathlib import Path

# kind -> (the package a wheel carries it as, the folder at a checkout's top)
SHIPPED = {
    "models": ("bridge._models", "models"),
    "reaper": ("bridge._reaper", "reaper_scripts"),
    "resolve": ("bridge._resolve", "resolve_script"),
}
CHECKOUT = Path(__file__).resolve().parent.parent


def folder(kind: str) -> Path:
    """The folder holding the shipped `kind` ("models", "reaper" or "resolve"). When neither
    place has it, the checkout's path, so that the caller's error names where it looked."""
    package, top = SHIPPED[kind]
    return _installed(package) or CHECKOUT / top


def _installed(package):
    """The folder importlib.resources finds `package`'s files in, or None. The shipped folders
    have no __init__.py, so it hands back a namespace's multiplexed path: its files are real
    paths on disk, and their folder is the one wanted."""
    try:
        found = resources.files(package)
    except (ModuleNotFoundError, TypeError):  # a checkout or an editable install
        return None
    for child in found.iterdir():
        if isinstance(child, Path) and child.exists():
            return child.parent
    return None
