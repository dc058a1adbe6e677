"""Calling Resolve: every call checked and retried (dialogs and autosave make calls fail at
random), the timeline's rate and the edition, and the Context a run works in."""

import time
from fractions import Fraction

from . import common
from .common import Failure, RETRIES


def _ok(result):
    return result is not None and result is not False


def _is_list(result):
    return isinstance(result, (list, tuple))


def _is_number(result):
    return isinstance(result, (int, float)) and not isinstance(result, bool)


def api(obj, name, *args, **kw):
    """obj.name(*args), tried again when it answers None/False: modal dialogs and autosave
    make Resolve's calls fail now and then. Raises Failure saying what did not happen.
    Keywords: what (for the message), ok (accepts a result), tries."""
    accept = kw.get("ok") or _ok
    tries = kw.get("tries") or RETRIES
    method = getattr(obj, name, None) if obj is not None else None
    if not callable(method):
        raise Failure("this Resolve has no %s() (too old a version?)" % name)
    result, error = None, ""
    for attempt in range(tries):
        try:
            result = method(*args)
        except Exception as exc:   # a call into a dead object raises
            result, error = None, " (%s)" % exc
        if accept(result):
            return result
        if attempt + 1 < tries:
            time.sleep(common.RETRY_SLEEP)
    raise Failure("Resolve did not %s: %s() answered %r%s %d times. A dialog open in Resolve, or "
                  "an autosave, can block scripting: close it and run ScoreBridge again."
                  % (kw.get("what") or "answer", name, result, error, tries))


def maybe(obj, name, *args):
    """obj.name(*args) once, for calls that are optional or version-dependent; None on failure."""
    method = getattr(obj, name, None) if obj is not None else None
    if not callable(method):
        return None
    try:
        return method(*args)
    except Exception:
        return None


def parse_rate(text):
    """Resolve's timelineFrameRate ('24', '23.976', '29.97 DF') -> (exact rate, drop frame)."""
    raw = str(text or "").strip().upper()
    drop = raw.endswith("DF") and not raw.endswith("NDF")
    try:
        value = Fraction(raw.replace("NDF", "").replace("DF", "").strip())
    except (ValueError, ZeroDivisionError):
        raise Failure("cannot read the timeline frame rate %r" % text)
    for ntsc in (24000, 30000, 48000, 60000, 120000):
        if abs(float(value) - ntsc / 1001.0) < 0.006:
            return Fraction(ntsc, 1001), drop
    if value <= 0:
        raise Failure("the timeline frame rate %r is not usable" % text)
    return value.limit_denominator(1001), drop


def edition(resolve):
    """(product name, version tuple, is Studio): Free and Studio differ in what scripting may do."""
    product = str(maybe(resolve, "GetProductName") or "DaVinci Resolve")
    version = maybe(resolve, "GetVersion")
    version = tuple(v for v in (version if _is_list(version) else []) if isinstance(v, int))[:3] or (0,)
    return product, version, "studio" in product.lower()


FREE_HINT = ("On the free DaVinci Resolve some scripting calls answer False (and from 21.1 Python "
             "scripting needs Studio): the README shows how to export the timeline as OTIO or EDL "
             "and score it with `scorebridge score`.")


class Context:
    """The Resolve objects one run works on, and what it learns about their behaviour."""

    def __init__(self, resolve, view):
        self.resolve, self.view = resolve, view
        self.product, self.version, self.studio = edition(resolve)
        manager = api(resolve, "GetProjectManager", what="give the project manager")
        self.project = api(manager, "GetCurrentProject", what="tell the open project (open one first)")
        self.timeline = api(self.project, "GetCurrentTimeline",
                            what="tell the current timeline (open one on the Edit page first)")
        self.media_pool = api(self.project, "GetMediaPool", what="give the media pool")
        self.timeline_name = maybe(self.timeline, "GetName") or "timeline"
        self.timeline_id = maybe(self.timeline, "GetUniqueId")
        self.project_name = maybe(self.project, "GetName") or "project"
        self.marker_base = None   # 0: marker frames count from the timeline start; start: absolute

    def describe_edition(self):
        return "%s %s" % (self.product, ".".join(str(v) for v in self.version))

    def rate(self):
        text = api(self.timeline, "GetSetting", "timelineFrameRate", what="tell the timeline frame rate")
        rate, drop = parse_rate(text)
        if not drop and rate in (Fraction(30000, 1001), Fraction(60000, 1001)):
            drop = str(maybe(self.timeline, "GetSetting", "timelineDropFrameTimecode")) in ("1", "True", "true")
        return rate, drop

    def start_frame(self):
        return int(round(api(self.timeline, "GetStartFrame", what="tell the timeline start", ok=_is_number)))

    def end_frame(self):
        return int(round(api(self.timeline, "GetEndFrame", what="tell the timeline end", ok=_is_number)))

    def make_current(self):
        """AppendToTimeline works on the current timeline: make ours current again if the
        user switched (live mode)."""
        current = maybe(self.project, "GetCurrentTimeline")
        if current is not None and self.timeline_id and maybe(current, "GetUniqueId") == self.timeline_id:
            return
        api(self.project, "SetCurrentTimeline", self.timeline,
            what="switch back to timeline %r to place the music" % self.timeline_name)
