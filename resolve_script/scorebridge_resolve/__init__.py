"""ScoreBridge for DaVinci Resolve, as a package: the menu entry ScoreBridge.py loads it and calls
main(resolve). Standard library only (Resolve runs its scripts with whatever Python 3.6+ it
finds); all the work happens in the daemon, and this only exports, asks, waits and places.

    common    names and timings every module shares; Failure, the one error the user hears
    osc       OSC 1.0, the few types the protocol uses (docs/protocol.md)
    paths     config and state folders, the token, the daemon's address, the `scorebridge` command
    link      the UDP link to the daemon; starting it
    api       calling Resolve (checked and retried), the rate, the edition, the Context of a run
    edit      the timeline as OTIO, its markers, the signature live mode polls
    place     the WAV (and stems) on fresh tracks, the hit markers, what the user is told
    session   one run: a single score, or live mode
    ui        the console, or a window inside Resolve
    app       main()
"""

from . import api, app, common, edit, link, osc, paths, place, session, ui
from .api import Context, edition, parse_rate
from .app import main
from .common import Failure
from .edit import build_otio, edit_signature, export_edit
from .osc import osc_message, osc_parse
from .place import append_wav, describe, import_wav, place_result
from .ui import Console

__all__ = [
    "api", "app", "common", "edit", "link", "osc", "paths", "place", "session", "ui",
    "Console", "Context", "Failure", "append_wav", "build_otio", "describe", "edit_signature", "edition",
    "export_edit", "import_wav", "main", "osc_message", "osc_parse", "parse_rate", "place_result",
]
