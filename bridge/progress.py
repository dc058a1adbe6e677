"""Progress reporting for long work: one callback signature, `progress(fraction, stage)`."""

import sys
import time


def console(prefix: str = "scorebridge", stream=None, min_interval: float = 0.5):
    """A progress callback that prints to stderr: one rewritten line on a terminal,
    a line per stage change or every few seconds otherwise (logs stay readable)."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    state = {"t": 0.0, "stage": None}

    def report(fraction: float, stage: str) -> None:
        now = time.monotonic()
        changed = stage != state["stage"]
        if not changed and fraction < 1.0 and now - state["t"] < (min_interval if tty else 5.0):
            return
        state["t"], state["stage"] = now, stage
        text = f"{prefix}: {100 * max(0.0, min(1.0, fraction)):5.1f}%  {stage}"
        if tty:
            stream.write("\r" + text.ljust(72) + ("\n" if fraction >= 1.0 else ""))
        else:
            stream.write(text + "\n")
        stream.flush()

    return report
