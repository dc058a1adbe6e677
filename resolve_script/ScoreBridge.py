"""ScoreBridge for DaVinci Resolve: Workspace > Scripts > ScoreBridge.

Scores the current timeline with the ScoreBridge daemon and puts the music under the edit:
the rendered WAV on a new stereo audio track from the timeline's first frame, a marker on
every hit, and the MIDI file (with the other deliverables) in a folder it names.
Live mode follows the edit: it re-scores whenever the cut changes and swaps the music in.

Resolve runs menu scripts with whichever Python 3.6+ it finds, so this file uses the
standard library only. All the work (reading the edit, the picture, the music) happens in
the daemon, reached through `scorebridge request` as the REAPER scripts reach it; this
script only exports, asks, waits and places. Protocol: docs/protocol.md.

This file is the menu entry. The script itself is the package scorebridge_resolve: beside this
file in a checkout, or in the installed ScoreBridge, whose folder `scorebridge install resolve`
writes into MODULES (only this file is copied into Resolve's Scripts folder, so the menu shows
one entry and the modules stay those of the ScoreBridge that installed it).
"""

import os
import sys

INSTALLED_CLI = None             # `scorebridge install resolve` writes its own command here
MODULES = None                   # and the folder that holds scorebridge_resolve


def _load():
    """The package scorebridge_resolve, from MODULES or from beside this file."""
    here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None
    for folder in (MODULES, here):
        if folder and os.path.isfile(os.path.join(folder, "scorebridge_resolve", "__init__.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            import scorebridge_resolve
            scorebridge_resolve.common.INSTALLED_CLI = INSTALLED_CLI
            return scorebridge_resolve
    raise ImportError("ScoreBridge's Resolve modules are not in %s: run `scorebridge install resolve` again"
                      % (MODULES or here))


scorebridge = _load()


if __name__ == "__main__":
    scorebridge.ui.BMD = globals().get("bmd")
    scorebridge.main(globals().get("resolve") or scorebridge.app.resolve_from_outside())
