"""Installing the host scripts: one module per host (`reaper`, `resolve`), each with
`install(dest=None) -> list[Path]` that copies its scripts to where that host looks."""

import sys
from pathlib import Path


def own_command() -> list:
    """How this installation runs `scorebridge`: its console script, else `python -m bridge`."""
    folder = Path(sys.executable).parent
    for name in ("scorebridge.exe", "scorebridge"):
        if (folder / name).is_file():
            return [str(folder / name)]
    return [sys.executable, "-m", "bridge"]
