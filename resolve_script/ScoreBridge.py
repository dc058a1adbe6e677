"""ScoreBridge for DaVinci Resolve: Workspace > Scripts > ScoreBridge.

Scores the current timeline with the ScoreBridge daemon and puts the music under the edit:
the rendered WAV on a new stereo audio track from the timeline's first frame, a marker on
every hit, and the MIDI file (with the other deliverables) in a folder it names.
Live mode follows the edit: it re-scores whenever the cut changes and swaps the music in.

Resolve runs menu scripts with whichever Python 3.6+ it finds, so this file uses the
standard library only and speaks OSC itself. All the work (reading the edit, the picture,
the music) happens in the daemon; this script only exports, asks, waits and places.
Protocol: PROTOCOL.md (OSC), API facts: HOSTS.md.
"""

import glob
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import time
import traceback
import uuid
from fractions import Fraction

VERSION = "0.1.0"
TAG = "scorebridge"              # customData of every marker ScoreBridge places
TRACK_PREFIX = "ScoreBridge"     # our audio track is named "ScoreBridge <cue>"
STEM_PREFIX = "ScoreBridge stem"  # with SCOREBRIDGE_RESOLVE_STEMS=1, each stem on "ScoreBridge stem <role>"
BIN_NAME = "ScoreBridge"         # media pool bin for the WAVs
MARKER_COLOR = "Cream"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9451
INSTALLED_CLI = None             # `scorebridge install resolve` writes its own command here
RETRIES = 3                      # tries of a Resolve call that answers None/False
RETRY_SLEEP = 0.5                # seconds between them (dialogs and autosave pass)
POLL_SECONDS = 1.5               # live mode: how often the edit is looked at
SETTLE_SECONDS = 2.0             # live mode: how long an edit must rest before it is sent
START_TIMEOUT = 60.0             # seconds to wait for a daemon this script started
ACCEPT_TIMEOUT = 2.0             # resend a request not accepted within this
SILENCE_RESEND = 30.0            # ask again about a request nothing was heard of for this long
SILENCE_GIVE_UP = 180.0


class Failure(Exception):
    """Something the user must hear about in one sentence (never a traceback)."""


# --- OSC 1.0, the few types the protocol uses --------------------------------------------

def _osc_string(text):
    data = text.encode("utf-8") + b"\0"
    return data + b"\0" * (-len(data) % 4)


def osc_message(address, *args):
    """One OSC message: str -> s, bool -> T/F, int -> i (int32), float -> f (float32)."""
    tags, payload = ",", b""
    for arg in args:
        if isinstance(arg, bool):
            tags += "T" if arg else "F"
        elif isinstance(arg, int):
            tags += "i"
            payload += struct.pack(">i", arg)
        elif isinstance(arg, float):
            tags += "f"
            payload += struct.pack(">f", arg)
        else:
            tags += "s"
            payload += _osc_string(str(arg))
    return _osc_string(address) + _osc_string(tags) + payload


def _read_string(data, at):
    end = data.index(b"\0", at)
    return data[at:end].decode("utf-8", "replace"), end + 1 + (-(end + 1) % 4)


def osc_parse(data):
    """A packet as [(address, [args])], bundles flattened; ValueError when it is no OSC."""
    try:
        if data.startswith(b"#bundle\0"):
            out, at = [], 16
            while at + 4 <= len(data):
                size = struct.unpack(">i", data[at:at + 4])[0]
                out.extend(osc_parse(data[at + 4:at + 4 + size]))
                at += 4 + size
            return out
        address, at = _read_string(data, 0)
        tags, at = _read_string(data, at) if at < len(data) else (",", at)
        args = []
        for tag in tags[1:]:
            if tag == "s":
                value, at = _read_string(data, at)
            elif tag == "i":
                value, at = struct.unpack(">i", data[at:at + 4])[0], at + 4
            elif tag == "f":
                value, at = struct.unpack(">f", data[at:at + 4])[0], at + 4
            elif tag == "d":
                value, at = struct.unpack(">d", data[at:at + 8])[0], at + 8
            elif tag == "h":
                value, at = struct.unpack(">q", data[at:at + 8])[0], at + 8
            elif tag in "TFN":
                value = {"T": True, "F": False, "N": None}[tag]
            else:
                raise ValueError("OSC type %r not supported" % tag)
            args.append(value)
        if not address.startswith("/"):
            raise ValueError("not an OSC address: %r" % address)
        return [(address, args)]
    except (struct.error, IndexError) as exc:
        raise ValueError("malformed OSC packet: %s" % exc)


# --- where things are (the same rules as bridge/config.py) --------------------------------

def _home(*parts):
    return os.path.join(os.path.expanduser("~"), *parts)


def _user_dir(env_name, linux_xdg, linux_default):
    """Per-user folder of ScoreBridge: env override, else the OS's place for it."""
    if os.environ.get(env_name):
        return os.environ[env_name]
    system = platform.system()
    if system == "Windows":
        return os.path.join(os.environ.get("LOCALAPPDATA") or _home("AppData", "Local"), "scorebridge")
    if system == "Darwin":
        return _home("Library", "Application Support", "scorebridge")
    return os.path.join(os.environ.get(linux_xdg) or _home(*linux_default), "scorebridge")


def config_dir():
    return _user_dir("SCOREBRIDGE_CONFIG", "XDG_CONFIG_HOME", (".config",))


def state_dir():
    return _user_dir("SCOREBRIDGE_STATE", "XDG_STATE_HOME", (".local", "state"))


def read_token():
    """The shared token (SCOREBRIDGE_TOKEN, else the daemon's token file), or None."""
    if os.environ.get("SCOREBRIDGE_TOKEN"):
        return os.environ["SCOREBRIDGE_TOKEN"]
    try:
        with open(os.path.join(config_dir(), "token")) as stream:
            return stream.read().strip() or None
    except (IOError, OSError):
        return None


def endpoint():
    host = os.environ.get("SCOREBRIDGE_HOST") or DEFAULT_HOST
    try:
        port = int(os.environ.get("SCOREBRIDGE_PORT") or DEFAULT_PORT)
    except ValueError:
        raise Failure("SCOREBRIDGE_PORT must be a port number, not %r" % os.environ["SCOREBRIDGE_PORT"])
    return host, port


def find_cli():
    """The command that runs `scorebridge`, as an argument list, or None."""
    if os.environ.get("SCOREBRIDGE_CLI"):
        return [os.environ["SCOREBRIDGE_CLI"]]
    if INSTALLED_CLI and os.path.exists(INSTALLED_CLI[0]):
        return list(INSTALLED_CLI)
    found = shutil.which("scorebridge")
    if found:
        return [found]
    exe = "scorebridge.exe" if platform.system() == "Windows" else "scorebridge"
    places = [_home(".local", "bin", exe), _home(".local", "pipx", "venvs", "scorebridge", "bin", exe),
              "/opt/homebrew/bin/" + exe, "/usr/local/bin/" + exe,
              _home("scorebridge", ".venv", "bin", exe), _home("ScoreBridge", ".venv", "bin", exe)]
    for root in (os.environ.get("APPDATA"), os.environ.get("LOCALAPPDATA")):
        if root:
            places += sorted(glob.glob(os.path.join(root, "Python", "Python3*", "Scripts", exe)))
            places += sorted(glob.glob(os.path.join(root, "Programs", "Python", "Python3*", "Scripts", exe)))
    for place in places:
        if os.path.isfile(place):
            return [place]
    return None


def out_base():
    """Where the takes go: SCOREBRIDGE_RESOLVE_OUT, else ~/Documents/ScoreBridge."""
    if os.environ.get("SCOREBRIDGE_RESOLVE_OUT"):
        return os.path.abspath(os.environ["SCOREBRIDGE_RESOLVE_OUT"])
    documents = _home("Documents")
    return os.path.join(documents if os.path.isdir(documents) else _home(), "ScoreBridge")


def _safe_name(text):
    name = "".join(c if c.isalnum() or c in "-_. " else "_" for c in str(text or "")).strip(" .")
    return name or "timeline"


# --- the daemon ---------------------------------------------------------------------------

class Link:
    """One UDP socket: requests go out from it and replies come back to it."""

    def __init__(self, host, port):
        try:
            family, _, _, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise Failure("cannot find the daemon's host %r: %s" % (host, exc))
        self.address = address
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        local = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self.sock.bind((local if _is_loopback(host) else "", 0))

    def send(self, address, *args):
        try:
            self.sock.sendto(osc_message(address, *args), self.address)
        except OSError:
            pass   # nobody listening (yet): the caller's timeout says so

    def receive(self, timeout):
        """Messages that arrive within timeout seconds (after the first, whatever is queued)."""
        out = []
        self.sock.settimeout(max(timeout, 0.001))
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                return out
            except OSError:      # Windows reports an unreachable port here
                return out
            try:
                out.extend(osc_parse(data))
            except ValueError:
                pass
            self.sock.settimeout(0.001)

    def ping(self, token, timeout=1.0):
        """(version, device) of a daemon that answers, None when none does."""
        self.send("/scorebridge/ping", token)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for address, args in self.receive(deadline - time.monotonic()):
                if address == "/scorebridge/pong":
                    return tuple(args[:2])
                if address == "/scorebridge/error" and len(args) > 1 and args[1] == "auth":
                    raise Failure("the ScoreBridge daemon at %s:%s does not accept this token: %s"
                                  % (self.address[0], self.address[1], args[2] if len(args) > 2 else ""))
        return None

    def close(self):
        self.sock.close()


def _is_loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


def start_daemon(cli, host, port):
    """`scorebridge serve` as a process of its own that outlives this script."""
    folder = state_dir()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        folder = os.path.expanduser("~")
    log_path = os.path.join(folder, "serve-from-resolve.log")
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONPATH"):   # Resolve's own Python must not leak into the daemon's
        env.pop(name, None)
    kwargs = {"stdin": subprocess.DEVNULL, "env": env, "close_fds": True}
    if platform.system() == "Windows":
        kwargs["creationflags"] = 0x00000008 | 0x00000200   # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(cli + ["serve", "--host", host, "--port", str(port)],
                                       stdout=log, stderr=subprocess.STDOUT, **kwargs)
        except OSError as exc:
            raise Failure("could not start the ScoreBridge daemon (%s serve): %s" % (" ".join(cli), exc))
    return process, log_path


def connect(view):
    """A Link to a daemon that answers (started here when none does), its token, and the
    process this script started (None when one was running)."""
    host, port = endpoint()
    link = Link(host, port)
    token = read_token()
    try:
        if token and link.ping(token):
            return link, token, None
        if not _is_loopback(host):
            raise Failure("no ScoreBridge daemon answers at %s:%d (SCOREBRIDGE_HOST): start "
                          "`scorebridge serve` there" % (host, port))
        cli = find_cli()
        if cli is None:
            raise Failure("the ScoreBridge daemon is not running and the `scorebridge` command was "
                          "not found: run `scorebridge serve` in a terminal, or set SCOREBRIDGE_CLI "
                          "to its path")
        process, log_path = start_daemon(cli, host, port)
        view.say("The ScoreBridge daemon was not answering at %s:%d: started `%s serve` "
                 "(log: %s). Waiting for it..." % (host, port, " ".join(cli), log_path))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            token = read_token()      # the daemon writes it on its first start
            if token and link.ping(token, 0.5):
                view.say("The daemon is up (pid %d)." % process.pid)
                return link, token, process
            if process.poll() is not None and not (token and link.ping(token, 0.5)):
                raise Failure("the ScoreBridge daemon stopped at once (exit code %s): %s"
                              % (process.returncode, _last_line(log_path)))
            time.sleep(0.3)
        raise Failure("started the ScoreBridge daemon but it did not answer within %d s; its log: %s"
                      % (START_TIMEOUT, log_path))
    except BaseException:
        link.close()
        raise


def _last_line(path):
    try:
        with open(path, errors="replace") as stream:
            lines = [line.strip() for line in stream if line.strip()]
        return lines[-1] if lines else "see " + path
    except (IOError, OSError):
        return "see " + path


# --- calling Resolve ----------------------------------------------------------------------

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
            time.sleep(RETRY_SLEEP)
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


# --- reading the edit ---------------------------------------------------------------------

def _ours(marker):
    return str((marker or {}).get("customData") or "").startswith(TAG)


def _markers(ctx):
    markers = api(ctx.timeline, "GetMarkers", what="list the timeline markers", ok=lambda r: isinstance(r, dict))
    return dict((int(round(float(frame))), info or {}) for frame, info in markers.items())


def _decide_marker_base(ctx, markers, start, end):
    """Marker frames count from the timeline start (the docs); one report says absolute.
    Absolute shows when every marker lies in [start, end) and the timeline is too short for
    a relative frame to get there."""
    if ctx.marker_base is None and markers and start > 0 and end - start <= start:
        if all(start <= f < end for f in markers):
            ctx.marker_base = start
    return ctx.marker_base or 0


def _frame(clip, name):
    """A timeline item's position or offset in frames (Resolve 19 may answer floats)."""
    return int(round(api(clip, name, what="tell a clip's %s" % name[3:].lower(), ok=_is_number)))


def _items(ctx, kind, index):
    return api(ctx.timeline, "GetItemListInTrack", kind, index,
               what="list the items of %s track %d" % (kind, index), ok=_is_list)


def build_otio(ctx):
    """The edit as OTIO JSON built from the timeline's items and markers, for Resolves whose
    Export() cannot write OTIO. Frames are those of the timeline, from its start frame."""
    rate, drop = ctx.rate()
    start, end = ctx.start_frame(), ctx.end_frame()
    fps = float(rate)

    def rt(value):
        return {"OTIO_SCHEMA": "RationalTime.1", "rate": fps, "value": float(value)}

    def span(first, length):
        return {"OTIO_SCHEMA": "TimeRange.1", "start_time": rt(first), "duration": rt(length)}

    def item(schema, name, length, first=0, **extra):
        out = {"OTIO_SCHEMA": schema, "name": name, "source_range": span(first, length),
               "effects": [], "markers": [], "metadata": {}, "enabled": True}
        out.update(extra)
        return out

    tracks = []
    count = int(api(ctx.timeline, "GetTrackCount", "video", what="count the video tracks", ok=_is_number))
    for index in range(1, count + 1):
        children, cursor = [], start
        placed = sorted((_frame(clip, "GetStart"), _frame(clip, "GetEnd"), n, clip)
                        for n, clip in enumerate(_items(ctx, "video", index)))
        for first, last, _, clip in placed:
            if last <= max(first, cursor):
                continue
            first = max(first, cursor)
            if first > cursor:
                children.append(item("Gap.1", "", first - cursor))
            offset = _frame(clip, "GetLeftOffset")
            pool_item = maybe(clip, "GetMediaPoolItem")
            path = maybe(pool_item, "GetClipProperty", "File Path") if pool_item is not None else None
            if path:
                reference = {"OTIO_SCHEMA": "ExternalReference.1", "name": "", "metadata": {},
                             "target_url": str(path), "available_range": span(0, offset + last - first)}
            elif pool_item is not None:
                reference = {"OTIO_SCHEMA": "MissingReference.1", "name": "", "metadata": {},
                             "available_range": None}
            else:   # titles and generators have no media pool item
                reference = {"OTIO_SCHEMA": "GeneratorReference.1", "name": "", "metadata": {},
                             "generator_kind": "resolve", "parameters": {}, "available_range": None}
            enabled = maybe(clip, "GetClipEnabled")
            children.append(item("Clip.1", str(maybe(clip, "GetName") or "clip"), last - first, offset,
                                 media_reference=reference, enabled=enabled is not False))
            cursor = last
        enabled = maybe(ctx.timeline, "GetIsTrackEnabled", "video", index)
        tracks.append({"OTIO_SCHEMA": "Track.1", "name": "V%d" % index, "kind": "Video",
                       "children": children, "source_range": None, "effects": [], "markers": [],
                       "metadata": {}, "enabled": enabled is not False})
    markers = _markers(ctx)
    base = _decide_marker_base(ctx, markers, start, end)
    stack_markers = [{"OTIO_SCHEMA": "Marker.2", "name": str(m.get("name") or ""),
                      "color": str(m.get("color") or "").upper() or "RED", "comment": str(m.get("note") or ""),
                      "metadata": {}, "marked_range": span(frame - base, int(m.get("duration") or 0))}
                     for frame, m in sorted(markers.items()) if not _ours(m)]
    return {"OTIO_SCHEMA": "Timeline.1", "name": ctx.timeline_name,
            "metadata": {"drop_frame": drop, "scorebridge": {"built_from": "Resolve scripting API"}},
            "global_start_time": rt(start),
            "tracks": {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "children": tracks,
                       "source_range": None, "effects": [], "markers": stack_markers,
                       "metadata": {}, "enabled": True}}


def export_edit(ctx, path):
    """Write the timeline as OTIO to path: Resolve's own export (18.5+), else built here.
    Returns how it was made ("export" or "built")."""
    kind = getattr(ctx.resolve, "EXPORT_OTIO", None)
    if kind is not None and (ctx.version == (0,) or ctx.version >= (18, 5)):
        try:
            if os.path.exists(path):
                os.remove(path)
            api(ctx.timeline, "Export", path, kind, getattr(ctx.resolve, "EXPORT_NONE", 0),
                what="export the timeline as OTIO")
            if os.path.isfile(path) and os.path.getsize(path) > 0:
                _mark_drop_frame(ctx, path)
                return "export"
        except Failure:
            pass
    with open(path, "w") as stream:
        json.dump(build_otio(ctx), stream, indent=1)
    return "built"


def _mark_drop_frame(ctx, path):
    """Resolve's OTIO says 29.97 but not whether the timecode drops frames: add it, so the
    manifest's timecodes read as Resolve shows them."""
    _, drop = ctx.rate()
    if not drop:
        return
    try:
        with open(path) as stream:
            data = json.load(stream)
        metadata = data.setdefault("metadata", {})
        if "drop_frame" not in metadata:
            metadata["drop_frame"] = True
            with open(path, "w") as stream:
                json.dump(data, stream)
    except (ValueError, OSError, AttributeError):
        pass


def edit_signature(ctx):
    """What the music depends on: video items, enabled tracks, user markers, start, rate.
    None when Resolve did not answer this time (live mode then just looks again)."""
    timeline = ctx.timeline
    try:
        parts = [maybe(timeline, "GetStartFrame"), maybe(timeline, "GetSetting", "timelineFrameRate")]
        count = maybe(timeline, "GetTrackCount", "video")
        markers = maybe(timeline, "GetMarkers")
        if not _is_number(count) or not isinstance(markers, dict) or None in parts:
            return None
        for index in range(1, int(count) + 1):
            items = maybe(timeline, "GetItemListInTrack", "video", index)
            if not _is_list(items):
                return None
            parts.append(("track", index, maybe(timeline, "GetIsTrackEnabled", "video", index)))
            for clip in items:
                parts.append(tuple(maybe(clip, name) for name in
                                   ("GetStart", "GetEnd", "GetLeftOffset", "GetName", "GetClipEnabled")))
        for frame in sorted(markers):
            m = markers[frame] or {}
            if not _ours(m):
                parts.append((frame, m.get("name"), m.get("note"), m.get("duration")))
        return repr(parts)
    except Exception:
        return None


# --- placing the result -------------------------------------------------------------------

def _our_track(ctx):
    """Index of the audio track ScoreBridge placed before, or None."""
    count = int(api(ctx.timeline, "GetTrackCount", "audio", what="count the audio tracks", ok=_is_number))
    for index in range(count, 0, -1):
        name = str(maybe(ctx.timeline, "GetTrackName", "audio", index) or "")
        if name.startswith(TRACK_PREFIX) and not name.startswith(STEM_PREFIX):
            return index
    return None


def stems_wanted():
    """The setting: SCOREBRIDGE_RESOLVE_STEMS=1 puts each stem on a track of its own."""
    return os.environ.get("SCOREBRIDGE_RESOLVE_STEMS", "").strip().lower() in ("1", "true", "yes", "on")


def _stem_track(ctx, role):
    """(index, old pool items) of the emptied track "ScoreBridge stem <role>", added if none."""
    name = "%s %s" % (STEM_PREFIX, role)
    count = int(api(ctx.timeline, "GetTrackCount", "audio", what="count the audio tracks", ok=_is_number))
    for index in range(1, count + 1):
        if maybe(ctx.timeline, "GetTrackName", "audio", index) == name:
            old = _clear_track(ctx, index)
            if old is not None:
                return index, old
    return _add_track(ctx, None, name=name), []


def place_stems(ctx, stems, start, frames):
    """Each stem WAV on its role's track from the same frame as the mix; role -> track."""
    placed = {}
    for role in sorted(stems):
        path = stems[role]
        if not (path and os.path.isfile(path)):
            ctx.view.say("The %s stem is missing (%s): not placed." % (role, path))
            continue
        pool_item = import_wav(ctx, path)
        index, old = _stem_track(ctx, role)
        if append_wav(ctx, pool_item, index, start, frames) is None:
            ctx.view.say("Resolve dropped the %s stem on audio track %d." % (role, index))
            continue
        placed[role] = index
        if old:
            maybe(ctx.media_pool, "DeleteClips", old)
    return placed


def _inside(path, folder):
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)
    except ValueError:
        return False


def _clear_track(ctx, index):
    """Empty our track. Returns the media pool items of the WAVs it held (ours to delete),
    or None when it could not be emptied (then a new track is used)."""
    items = _items(ctx, "audio", index)
    pool_items = []
    for clip in items:
        pool_item = maybe(clip, "GetMediaPoolItem")
        path = maybe(pool_item, "GetClipProperty", "File Path") if pool_item is not None else None
        if path and _inside(path, out_base()):
            pool_items.append(pool_item)
    if items:
        try:
            api(ctx.timeline, "DeleteClips", items, False, what="remove the previous music")
        except Failure as exc:
            ctx.view.say("Could not remove the previous music (%s); using a new track." % exc)
            return None
    return pool_items if not _items(ctx, "audio", index) else None


def _add_track(ctx, cue, name=None):
    """A new stereo audio track named for the cue (or `name`); its index."""
    before = int(api(ctx.timeline, "GetTrackCount", "audio", what="count the audio tracks", ok=_is_number))
    try:
        api(ctx.timeline, "AddTrack", "audio", "stereo", what="add a stereo audio track")
    except Failure:
        if maybe(ctx.timeline, "GetTrackCount", "audio") != before + 1:   # it may have worked anyway
            raise
    index = before + 1
    _name_track(ctx, index, cue, name)
    return index


def _name_track(ctx, index, cue, name=None):
    name = name or "%s %s" % (TRACK_PREFIX, cue)
    if maybe(ctx.timeline, "GetTrackName", "audio", index) != name:
        try:
            api(ctx.timeline, "SetTrackName", "audio", index, name, what="name the music track")
        except Failure:
            ctx.view.say("Could not name audio track %d %r; a re-run will add a new track." % (index, name))


def _bin(ctx):
    root = api(ctx.media_pool, "GetRootFolder", what="give the media pool's root bin")
    for folder in api(root, "GetSubFolderList", what="list the bins", ok=_is_list):
        if maybe(folder, "GetName") == BIN_NAME:
            return folder
    return api(ctx.media_pool, "AddSubFolder", root, BIN_NAME, what="add the %r bin" % BIN_NAME)


def import_wav(ctx, wav):
    """The WAV as a media pool item in the ScoreBridge bin."""
    folder = _bin(ctx)
    previous = maybe(ctx.media_pool, "GetCurrentFolder")
    api(ctx.media_pool, "SetCurrentFolder", folder, what="open the %r bin" % BIN_NAME)
    try:
        for attempt in range(RETRIES):
            items = maybe(ctx.media_pool, "ImportMedia", [wav])
            if _is_list(items) and items:
                return items[0]
            for clip in maybe(folder, "GetClipList") or []:   # imported after all?
                if maybe(clip, "GetClipProperty", "File Path") == wav:
                    return clip
            time.sleep(RETRY_SLEEP)
        raise Failure("Resolve did not import %s into the %r bin (is a dialog open?)" % (wav, BIN_NAME))
    finally:   # back to the bin the user had open; if that fails, ours stays open: harmless
        if previous is not None:
            maybe(ctx.media_pool, "SetCurrentFolder", previous)


def _length(clip):
    return _frame(clip, "GetDuration")


def _placed(ctx, index, start):
    for clip in _items(ctx, "audio", index):
        if _frame(clip, "GetStart") == start:
            return clip
    return None


def append_wav(ctx, pool_item, index, start, frames):
    """Put the WAV on audio track index at absolute frame start; the placed item, or None
    when Resolve dropped it (the range was occupied). endFrame is inclusive in Resolve's
    examples and was measured exclusive once: the re-listed duration decides."""
    for end_frame in (frames - 1, frames):
        info = {"mediaPoolItem": pool_item, "startFrame": 0, "endFrame": end_frame,
                "mediaType": 2, "trackIndex": index, "recordFrame": start}
        api(ctx.media_pool, "AppendToTimeline", [info], what="put the music on the timeline", ok=_is_list)
        clip = _placed(ctx, index, start)
        if clip is None:
            return None
        length = _length(clip)
        if length == frames:
            return clip
        if length == frames - 1 and end_frame == frames - 1:   # exclusive: place it again
            api(ctx.timeline, "DeleteClips", [clip], False, what="remove a short placement")
            continue
        ctx.view.say("Warning: the music was placed %d frames long, expected %d." % (length, frames))
        return clip
    return _placed(ctx, index, start)


def replace_markers(ctx, manifest, start, end):
    """Remove ScoreBridge's markers, then mark every hit (name `SB: hit …`, customData tag).
    User markers stay; a hit on a frame that already has one is not marked twice."""
    markers = _markers(ctx)
    for frame, info in sorted(markers.items()):
        if _ours(info):
            if not maybe(ctx.timeline, "DeleteMarkerAtFrame", frame):
                api(ctx.timeline, "DeleteMarkerByCustomData", info.get("customData"),
                    what="remove an old ScoreBridge marker")
    markers = _markers(ctx)
    left = [f for f, m in markers.items() if _ours(m)]
    if left:
        ctx.view.say("%d old ScoreBridge marker(s) could not be removed." % len(left))
    markers = dict((f, m) for f, m in markers.items() if not _ours(m))
    base = _decide_marker_base(ctx, markers, start, end)
    placed, skipped, failed = 0, 0, 0
    for hit in manifest.get("hits") or []:
        frame = int(hit["frame"])
        name = "SB: hit %s" % hit.get("source", "")
        note = "%s %s" % (hit.get("timecode", ""), hit.get("name", ""))
        if frame + base in markers:
            skipped += 1
            continue
        try:
            api(ctx.timeline, "AddMarker", frame + base, MARKER_COLOR, name, note.strip(), 1, TAG,
                what="add a hit marker")
            placed += 1
            if ctx.marker_base is None:   # relative frames work here
                ctx.marker_base = base
        except Failure:
            if ctx.marker_base is None and start > 0 and maybe(
                    ctx.timeline, "AddMarker", frame + start, MARKER_COLOR, name, note.strip(), 1, TAG):
                ctx.marker_base, base = start, start   # this Resolve counts marker frames absolutely
                placed += 1
            else:
                failed += 1
    return placed, skipped, failed


def place_result(ctx, manifest):
    """The daemon's result under the edit: WAV on our track, hit markers. Returns a summary."""
    start, end = ctx.start_frame(), ctx.end_frame()
    cue = (manifest.get("plan") or {}).get("cue") or "cue"
    outputs = manifest.get("outputs") or {}
    frames = manifest.get("duration_frames")
    if not isinstance(frames, int):
        frames = int(round(float(manifest.get("duration_seconds") or 0) * float(manifest.get("fps") or 0)))
    summary = {"cue": cue, "start": start, "frames": frames, "track": None}
    wav = outputs.get("wav")
    if wav and os.path.isfile(wav):
        pool_item = import_wav(ctx, wav)
        ctx.make_current()
        index = _our_track(ctx)
        old = _clear_track(ctx, index) if index is not None else None
        if old is None:
            index, old = _add_track(ctx, cue), []
        else:
            _name_track(ctx, index, cue)
        clip = append_wav(ctx, pool_item, index, start, frames)
        if clip is None:   # the track was not empty after all: a fresh one cannot be occupied
            index = _add_track(ctx, cue)
            clip = append_wav(ctx, pool_item, index, start, frames)
        if clip is None:
            raise Failure("Resolve dropped the music when placing it on audio track %d "
                          "(AppendToTimeline placed nothing)" % index)
        summary.update(track=index, placed_frames=_length(clip), wav=wav)
        if old and not maybe(ctx.media_pool, "DeleteClips", old):
            ctx.view.say("The previous take stays in the %r bin (Resolve did not delete it)." % BIN_NAME)
        if stems_wanted() and isinstance(outputs.get("stems"), dict):
            summary["stems"] = place_stems(ctx, outputs["stems"], start, frames)
    else:
        ctx.view.say("No WAV was rendered (%s): only the MIDI and the markers."
                     % ("; ".join(manifest.get("warnings") or []) or "audio off"))
    summary["markers"], summary["markers_skipped"], summary["markers_failed"] = replace_markers(
        ctx, manifest, start, end)
    return summary


def describe(manifest, summary):
    """What was done and where the files are, for the user."""
    outputs = manifest.get("outputs") or {}
    lines = []
    if summary.get("track"):
        lines.append("Placed cue %s (%.2f s, %d frames) on audio track %d \"%s %s\" at %s."
                     % (summary["cue"], float(manifest.get("duration_seconds") or 0), summary["frames"],
                        summary["track"], TRACK_PREFIX, summary["cue"],
                        manifest.get("start_timecode") or summary["start"]))
    line = "%d hit marker(s)" % summary["markers"]
    if summary["markers_skipped"]:
        line += ", %d hit(s) already marked by you" % summary["markers_skipped"]
    if summary["markers_failed"]:
        line += ", %d could not be placed" % summary["markers_failed"]
    lines.append(line + ".")
    if summary.get("stems"):
        lines.append("Stems on their own tracks: %s." % ", ".join(
            "%s on %d" % (role, index) for role, index in sorted(summary["stems"].items())))
    if outputs.get("midi"):
        lines.append("MIDI for the composer: %s" % outputs["midi"])
    if isinstance(outputs.get("stems"), dict) and not summary.get("stems"):
        lines.append("Stems (set SCOREBRIDGE_RESOLVE_STEMS=1 to place them): %s"
                     % "; ".join(sorted(outputs["stems"].values())))
    others = ["%s: %s" % (k.replace("_", " "), v) for k, v in sorted(outputs.items())
              if v and k not in ("midi", "wav", "stems")]
    if others:
        lines.append("Also in %s: %s" % (os.path.dirname(outputs.get("midi") or others[0]), "; ".join(others)))
    for warning in manifest.get("warnings") or []:
        lines.append("Note: %s" % warning)
    return "\n".join(lines)


# --- one run: a single score, or live mode ------------------------------------------------

class Session:
    """Sends requests, listens for replies, places the newest result. Driven by tick()."""

    def __init__(self, ctx, link, token, options, poll_seconds=POLL_SECONDS, settle_seconds=SETTLE_SECONDS):
        self.ctx, self.link, self.token = ctx, link, token
        self.view = ctx.view
        self.options = dict({"audio": True}, **(options or {}))
        self.poll_seconds, self.settle_seconds = poll_seconds, settle_seconds
        self.folder = os.path.join(out_base(), _safe_name(ctx.project_name), _safe_name(ctx.timeline_name))
        self.pending = {}          # request_id -> what was sent and heard
        self.request_id = None     # the single score's
        self.live = False
        self.session_id = None
        self.revision = 0          # newest revision sent
        self.placed_revision = 0
        self.sent = []             # revisions sent, in order
        self.ignored = []          # revisions whose late result was ignored
        self.finished = False      # nothing left to do: the single score is over, live mode ended
        self.ok = False
        self.manifest = None
        self.summary = None
        self.error = None
        self.signature = None      # of the edit last sent
        self.seen, self.seen_at, self.last_poll = None, 0.0, 0.0
        self.built_said = False

    # -- sending --
    def _export(self, folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise Failure("cannot create the output folder %s: %s" % (folder, exc))
        path = os.path.join(folder, _safe_name(self.ctx.timeline_name) + ".otio")
        signature = edit_signature(self.ctx)
        how = export_edit(self.ctx, path)
        if how == "built" and not self.built_said:
            self.built_said = True
            self.view.say("Timeline.Export(OTIO) did not work here (Resolve before 18.5, or the call "
                          "failed): built the edit from the timeline's items and markers instead.")
        return path, signature

    def _send(self, request_id, address, args, revision=None):
        self.link.send(address, self.token, *args)
        now = time.monotonic()
        self.pending[request_id] = {"address": address, "args": args, "sent": now, "heard": now,
                                    "accepted": False, "tries": 1, "revision": revision}

    def score_once(self):
        folder = os.path.join(self.folder, "take-" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4])
        path, self.signature = self._export(folder)
        self.request_id = "resolve-" + uuid.uuid4().hex[:12]
        self.view.say("Scoring %r (%s)..." % (self.ctx.timeline_name, self.ctx.describe_edition()))
        self._send(self.request_id, "/scorebridge/score",
                   [self.request_id, path, folder, json.dumps(self.options)])

    def go_live(self, send_now=True):
        """Follow the edit from now on; with send_now, score its present state at once
        (else from the first edit after the single score)."""
        self.live = True
        self.finished = False
        self.session_id = "resolve-" + uuid.uuid4().hex[:8]
        self.view.say("Live mode: following %r; edits are re-scored a moment after they stop. "
                      "Stop, close the window, switch to another timeline or delete the ScoreBridge "
                      "track to end it." % self.ctx.timeline_name)
        self.seen, self.seen_at = self.signature, time.monotonic()
        if send_now or self.signature is None:
            self._send_update()

    def stop_live(self, why=""):
        """End live mode; its requests are cancelled (a single score still running goes on)."""
        if not self.live:
            return
        self.live = False
        for request_id in [rid for rid, p in self.pending.items() if p["revision"] is not None]:
            self.link.send("/scorebridge/cancel", self.token, request_id)
            del self.pending[request_id]
        self.finished = self.request_id not in self.pending
        self.view.say("Live mode stopped%s." % (": " + why if why else ""))

    def _send_update(self):
        self.revision += 1
        folder = os.path.join(self.folder, "%s-r%d" % (self.session_id, self.revision))
        path, self.signature = self._export(folder)
        request_id = "%s:%d" % (self.session_id, self.revision)
        for old in [rid for rid, p in self.pending.items() if p["revision"] is not None]:
            del self.pending[old]   # the daemon drops them as stale; their replies are ignored
        self._send(request_id, "/scorebridge/update",
                   [self.session_id, self.revision, path, folder, json.dumps(self.options)], self.revision)
        self.sent.append(self.revision)
        self.view.say("Edit changed: sent revision %d." % self.revision if self.revision > 1
                      else "Sent revision 1.")

    def cancel_all(self):
        for request_id in list(self.pending):
            self.link.send("/scorebridge/cancel", self.token, request_id)
        self.pending.clear()

    # -- the loop --
    def tick(self, timeout=0.2):
        """Read replies for up to timeout seconds, resend what went unheard, and in live mode
        look at the edit. Failures in live mode are reported and the loop goes on."""
        try:
            for address, args in self.link.receive(timeout):
                self._handle(address, args)
            self._check_pending()
            if self.live:
                self._poll_edit()
        except Failure as exc:
            if not self.live:
                self._fail(str(exc))
            else:
                self.view.say("Problem: %s" % exc)

    def _fail(self, message):
        self.error = message
        self.finished = True
        self.cancel_all()
        self.view.error(message)

    def _check_pending(self):
        now = time.monotonic()
        for request_id, p in list(self.pending.items()):
            if not p["accepted"] and now - p["sent"] > ACCEPT_TIMEOUT:
                if p["tries"] >= 5:
                    del self.pending[request_id]
                    raise Failure("the ScoreBridge daemon stopped answering (request %s)" % request_id)
                p["tries"] += 1
                p["sent"] = now
                self.link.send(p["address"], self.token, *p["args"])
            elif p["accepted"] and now - p["heard"] > SILENCE_GIVE_UP:
                del self.pending[request_id]
                raise Failure("nothing heard from the ScoreBridge daemon about %s for %d s"
                              % (request_id, SILENCE_GIVE_UP))
            elif p["accepted"] and now - p["heard"] > SILENCE_RESEND and now - p["sent"] > SILENCE_RESEND:
                p["sent"] = now   # asking again is answered `accepted` again, or with the result
                self.link.send(p["address"], self.token, *p["args"])

    def _revision_of(self, request_id):
        if self.session_id and str(request_id).startswith(self.session_id + ":"):
            try:
                return int(str(request_id).rsplit(":", 1)[1])
            except ValueError:
                return None
        return None

    def _handle(self, address, args):
        if not args:
            return
        request_id = args[0]
        pending = self.pending.get(request_id)
        if pending is not None:
            pending["heard"] = time.monotonic()
        name = address.rsplit("/", 1)[-1]
        if name == "error" and len(args) > 1 and args[1] == "auth":
            self.live = False
            self._fail("the ScoreBridge daemon does not accept this token: %s" % (args[2:] or [""])[0])
        elif pending is None:
            revision = self._revision_of(request_id)
            if name == "done" and revision is not None and revision < self.revision:
                self.ignored.append(revision)
                self.view.say("Ignored the result of revision %d: revision %d is newer." % (revision, self.revision))
        elif name == "accepted":
            pending["accepted"] = True
        elif name == "progress" and len(args) >= 3:
            self.view.progress(float(args[1]), str(args[2]))
        elif name == "ready" and len(args) >= 3 and args[1] == "midi":
            # the .mid is in place; Resolve places the WAV, which follows
            self.view.say("The MIDI is ready; rendering the WAV.")
        elif name == "done" and len(args) >= 2:
            del self.pending[request_id]
            self._done(request_id, pending["revision"], args[1])
        elif name in ("error", "cancelled"):
            del self.pending[request_id]
            code = args[1] if len(args) > 1 else "cancelled"
            message = args[2] if len(args) > 2 else ""
            if code == "stale":
                self.view.say("Revision %s was superseded." % pending["revision"])
            elif self.live:
                self.view.say("Revision %s failed (%s): %s" % (pending["revision"], code, message))
            else:
                self._fail("scoring failed (%s): %s" % (code, message))

    def _done(self, request_id, revision, manifest_path):
        if revision is not None and revision != self.revision:
            self.ignored.append(revision)
            self.view.say("Ignored the result of revision %d: revision %d is newer." % (revision, self.revision))
            return
        try:
            with open(manifest_path) as stream:
                manifest = json.load(stream)
        except (IOError, OSError, ValueError) as exc:
            raise Failure("cannot read the daemon's manifest %s: %s" % (manifest_path, exc))
        self.view.progress(1.0, "placing the music")
        summary = place_result(self.ctx, manifest)
        self.manifest, self.summary = manifest, dict(summary, manifest=manifest_path)
        self.view.done(describe(manifest, summary))
        if revision is not None:
            self.placed_revision = revision
            self._forget_older_takes(revision)
        else:
            self.finished = True
        self.ok = True

    def _forget_older_takes(self, revision):
        """Live takes older than the placed one are no longer used anywhere."""
        for old in range(1, revision):
            shutil.rmtree(os.path.join(self.folder, "%s-r%d" % (self.session_id, old)), ignore_errors=True)

    def _gone(self):
        """Why live mode should end by itself, where no Stop button exists: the user went to
        another timeline, or deleted the music track it keeps up to date."""
        current = maybe(self.ctx.project, "GetCurrentTimeline")
        current_id = maybe(current, "GetUniqueId") if current is not None else None
        if current_id and self.ctx.timeline_id and current_id != self.ctx.timeline_id:
            return "you switched to another timeline"
        if self.placed_revision and _our_track(self.ctx) is None:
            return "the ScoreBridge track was deleted"
        return None

    def _poll_edit(self):
        now = time.monotonic()
        if now - self.last_poll < self.poll_seconds:
            return
        self.last_poll = now
        why = self._gone()
        if why:
            self.stop_live(why)
            return
        signature = edit_signature(self.ctx)
        if signature is None:
            return
        if signature != self.seen:
            self.seen, self.seen_at = signature, now
        elif signature != self.signature and now - self.seen_at >= self.settle_seconds:
            self._send_update()

    def report(self):
        return {"ok": self.ok and not self.error, "message": self.error, "manifest": (self.summary or {}).get("manifest"),
                "summary": self.summary, "revisions_sent": list(self.sent),
                "placed_revision": self.placed_revision, "ignored_revisions": list(self.ignored)}


# --- what the user sees -------------------------------------------------------------------

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
    bmd = globals().get("bmd")
    if bmd is None or os.environ.get("SCOREBRIDGE_NO_WINDOW"):
        return Console()
    try:
        return Window(resolve, bmd)
    except Exception:
        return Console()


def log_traceback():
    """The current exception's traceback in ScoreBridge's state folder (for a bug report)."""
    path = os.path.join(state_dir(), "resolve-script.log")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as stream:
            stream.write("%s\n%s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), traceback.format_exc()))
        return path
    except (IOError, OSError):
        return "(no log: %s)" % path


def main(resolve, live=None, options=None, stop=None, view=None,
         poll_seconds=POLL_SECONDS, settle_seconds=SETTLE_SECONDS):
    """Score the current timeline and place the music; in live mode keep following the edit
    until stopped. Returns a report (dict); never raises: the user gets one message.

    live: None reads SCOREBRIDGE_LIVE=1. options: extra options_json keys (seed, candidates …).
    stop: called with the session on every turn of the console loop; True ends it (tests).
    """
    view = view or open_view(resolve)
    report = {"ok": False, "message": None, "daemon_pid": None}
    link = None
    try:
        if live is None:
            live = os.environ.get("SCOREBRIDGE_LIVE", "").strip().lower() in ("1", "true", "yes", "on")
        if resolve is None:
            raise Failure("no Resolve scripting object: run ScoreBridge from Workspace > Scripts in Resolve")
        ctx = Context(resolve, view)
        link, token, process = connect(view)
        report["daemon_pid"] = process.pid if process is not None else None
        session = Session(ctx, link, token, options, poll_seconds, settle_seconds)
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
    finally:
        if link is not None:
            link.close()
    return report


def _hold(view):
    try:
        view.hold()
    except Exception:
        pass


def _resolve_from_outside():
    """The Resolve object for a script started outside Resolve (Studio's external scripting)."""
    try:
        import DaVinciResolveScript   # noqa: F401 (on the path when Resolve's env vars are set)
        return DaVinciResolveScript.scriptapp("Resolve")
    except Exception:
        return None


if __name__ == "__main__":
    _resolve = globals().get("resolve") or _resolve_from_outside()
    main(_resolve)
