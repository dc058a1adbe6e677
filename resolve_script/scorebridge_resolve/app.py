"""main(): score the current timeline and place the music; in live mode keep following the
edit. Never raises: the user gets one message."""

import os

from .api import Context, FREE_HINT, edition
from .common import Failure, POLL_SECONDS, SETTLE_SECONDS
from .paths import find_cli, log_traceback
from .session import Session
from .ui import Window, open_view


def main(resolve, live=None, options=None, stop=None, view=None,
         poll_seconds=POLL_SECONDS, settle_seconds=SETTLE_SECONDS):
    """Score the current timeline and place the music; in live mode keep following the edit
    until stopped. Returns a report (dict); never raises: the user gets one message.

    live: None reads SCOREBRIDGE_LIVE=1. options: extra options_json keys (seed, candidates …).
    stop: called with the session on every turn of the console loop; True ends it (tests).
    """
    view = view or open_view(resolve)
    report = {"ok": False, "message": None}
    try:
        if live is None:
            live = os.environ.get("SCOREBRIDGE_LIVE", "").strip().lower() in ("1", "true", "yes", "on")
        if resolve is None:
            raise Failure("no Resolve scripting object: run ScoreBridge from Workspace > Scripts in Resolve")
        ctx = Context(resolve, view)
        cli = find_cli()
        if cli is None:
            raise Failure("the `scorebridge` command was not found (it scores the edit and starts "
                          "the ScoreBridge daemon when none runs): run `scorebridge install resolve` "
                          "in a terminal, or set SCOREBRIDGE_CLI to its path")
        session = Session(ctx, cli, options, poll_seconds, settle_seconds)
        if isinstance(view, Window):
            view.session = session
        if live:
            session.go_live(send_now=True)
        else:
            session.score_once()
        view.run(session, stop)
        session.live = False
        session.cancel_all()
        report.update(session.report())
    except Failure as exc:
        message = str(exc)
        if resolve is not None and message.startswith("Resolve did not") and not edition(resolve)[2]:
            message += " " + FREE_HINT
        view.error(message)
        report["message"] = message
        _hold(view)
    except KeyboardInterrupt:
        view.say("Stopped.")
        report["message"] = "stopped"
    except Exception as exc:
        message = "ScoreBridge hit an unexpected problem: %s: %s (details in %s)" % (
            type(exc).__name__, exc, log_traceback())
        view.error(message)
        report["message"] = message
        _hold(view)
    return report


def _hold(view):
    try:
        view.hold()
    except Exception:
        pass


def resolve_from_outside():
    """The Resolve object for a script started outside Resolve (Studio's external scripting)."""
    try:
        import DaVinciResolveScript   # noqa: F401 (on the path when Resolve's env vars are set)
        return DaVinciResolveScript.scriptapp("Resolve")
    except Exception:
        return None
