"""What the user sees: the console, or a window inside Resolve (UIManager)."""

import os
import sys
import time

from .paths import log_traceback

BMD = None  # Resolve's `bmd` (its UI toolkit), handed over by the menu entry ScoreBridge.py


class Console:
    """Progress and messages on Resolve's console (Workspace > Console), or stdout."""

    def __init__(self):
        self.last = (None, -1.0)

    def say(self, text):
        for line in str(text).splitlines():
            print("ScoreBridge: " + line)
        sys.stdout.flush()

    def progress(self, fraction, stage):
        stage_before, fraction_before = self.last
        if stage != stage_before or fraction - fraction_before >= 0.1 or fraction >= 1.0:
            self.last = (stage, fraction)
            self.say("%3d%% %s" % (round(100 * fraction), stage))

    def done(self, text):
        self.say(text)

    def error(self, text):
        self.say("ERROR: " + str(text))

    def hold(self):
        pass

    def run(self, session, stop=None):
        """Block until the single score is over, or (live mode) until stop(session) is true
        or Ctrl-C: a menu script must not return while it still has work."""
        try:
            while not session.finished:
                if stop is not None and stop(session):
                    break
                session.tick(0.2)
        except KeyboardInterrupt:
            self.say("Stopped.")


class Window(Console):
    """A small UIManager window: status, messages, Live and Stop buttons. A timer drives
    the session, because UIManager delivers clicks only inside RunLoop()."""

    def __init__(self, resolve, bmd):
        Console.__init__(self)
        fusion = resolve.Fusion()
        ui = fusion.UIManager
        self.disp = bmd.UIDispatcher(ui)
        self.lines = []
        self.session = None
        self.win = self.disp.AddWindow(
            {"ID": "ScoreBridgeWin", "WindowTitle": "ScoreBridge", "Geometry": [200, 200, 620, 340]},
            ui.VGroup([
                ui.Label({"ID": "Status", "Text": "Starting...", "WordWrap": True, "Weight": 0}),
                ui.TextEdit({"ID": "Log", "ReadOnly": True, "Weight": 1}),
                ui.HGroup({"Weight": 0}, [
                    ui.Button({"ID": "LiveButton", "Text": "Live: follow my edits"}),
                    ui.Button({"ID": "StopButton", "Text": "Stop"}),
                    ui.Button({"ID": "CloseButton", "Text": "Close"})])]))
        self.items = self.win.GetItems()
        self.timer = ui.Timer({"ID": "ScoreBridgeTick", "Interval": 200, "SingleShot": False})
        self.win.On.ScoreBridgeWin.Close = self._close
        self.win.On.CloseButton.Clicked = self._close
        self.win.On.StopButton.Clicked = self._stop
        self.win.On.LiveButton.Clicked = self._live
        self.win.On.ScoreBridgeTick.Timeout = self._tick
        try:   # some versions deliver timer events to the dispatcher instead
            self.disp.On.Timeout = self._tick
        except Exception:
            pass
        self.last_tick = 0.0
        self.win.Show()

    def _status(self, text):
        self.items["Status"].Text = text

    def say(self, text):
        Console.say(self, text)
        self.lines.extend(str(text).splitlines())
        self.items["Log"].PlainText = "\n".join(self.lines[-300:])

    def progress(self, fraction, stage):
        self._status("%d%%  %s" % (round(100 * fraction), stage))

    def done(self, text):
        self.say(text)
        self._status("Live: following the edit." if self.session and self.session.live
                     else "Done. Close this window, or press Live to follow your edits.")

    def error(self, text):
        Console.error(self, text)
        self._status("ERROR: %s" % text)

    def _tick(self, event=None):
        if time.monotonic() - self.last_tick < 0.1:   # delivered twice (see __init__)
            return
        self.last_tick = time.monotonic()
        try:
            session = self.session
            if session is not None:
                was_live = session.live
                session.tick(0.02)
                if was_live and not session.live:   # ended by itself (see Session._gone)
                    self._status("Live mode stopped.")
        except Exception as exc:   # never let an exception escape into Resolve's event loop
            self.error("unexpected problem: %s (details: %s)" % (exc, log_traceback()))
            self.session = None

    def _live(self, event=None):
        session = self.session
        if session is not None and not session.live:   # score now unless a result is placed or coming
            session.go_live(send_now=not session.ok and session.request_id not in session.pending)
            self._status("Live: following the edit.")

    def _stop(self, event=None):
        if self.session is None:
            return
        if self.session.live:
            self.session.stop_live()
            self._status("Live mode stopped.")
        elif not self.session.finished:
            self.session.cancel_all()
            self.session.finished = True
            self._status("Stopped.")

    def _close(self, event=None):
        if self.session is not None:
            self.session.live = False
            self.session.cancel_all()
        self.disp.ExitLoop()

    def hold(self):
        """Keep the window (and its message) up until the user closes it."""
        self.disp.RunLoop()
        self.win.Hide()

    def run(self, session, stop=None):
        self.session = session
        self.timer.Start()
        try:
            self.disp.RunLoop()
        finally:
            self.timer.Stop()
            self.win.Hide()


def open_view(resolve):
    """The window where UIManager works (inside Resolve), the console otherwise."""
    bmd = BMD
    if bmd is None or os.environ.get("SCOREBRIDGE_NO_WINDOW"):
        return Console()
    try:
        return Window(resolve, bmd)
    except Exception:
        return Console()
