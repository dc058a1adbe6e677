"""ScoreBridge for DaVinci Resolve, as a package: the menu entry ScoreBridge.py loads it and calls
main(resolve). Standard library only (Resolve runs its scripts with whatever Python 3.6+ it
finds); all the work happens in the daemon, and this only exports, asks, waits and places.

    common    names and timings every module shares; Failure, the one error the user hears
    paths     the state folder, where takes go, the `scorebridge` command
    request   a request through `scorebridge request`, polled through the files it writes
    api       calling Resolve (checked and retried), the rate, the edition, the Context of a run
    edit      the timeline as OTIO, its markers, the signature live mode polls
    place     the WAV (and stems) on fresh tracks, the hit markers, what the user is told
    session   one run: a single score, or live mode
    ui        the console, or a window inside Resolve
    app       main()
"""

from . import api, app, common, edit, paths, place, request, session, ui
from .api import Context, edition, parse_rate
from .app import main
from .common import Failure
from .edit import build_otio, edit_signature, export_edit
from .place import append_wav, describe, import_wav, place_result
from .ui import Console

__all__ = [
    "api", "app", "common", "edit", "paths", "place", "request", "session", "ui",
    "Console", "Context", "Failure", "append_wav", "build_otio", "describe", "edit_signature", "edition",
    "export_edit", "import_wav", "main", "parse_rate", "place_result",
]
