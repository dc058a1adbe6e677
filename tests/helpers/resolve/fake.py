"""A fake of DaVinci Resolve's scripting API, as HOSTS.md describes it.

- Positions are absolute frames: the timeline starts at its start timecode (86400 at
  01:00:00:00 and 24 fps); `GetSetting("timelineFrameRate")` is a string ("29.97 DF").
- Marker frames count from the timeline start by default; `marker_frames="absolute"` makes
  them absolute (HOSTS.md marks this unverified).
- `AppendToTimeline` silently drops a clip whose range is occupied (it still answers with an
  item), and `end_inclusive` chooses how it reads `endFrame`.
- `resolve.faults.fail(name, times)` makes the next `times` calls of a method answer
  None/False (`times=None`: always), as modal dialogs and autosave do.
- `Export(..., EXPORT_OTIO, ...)` writes real OTIO (opentimelineio) from the fake's items;
  `export_otio=False` makes it answer False (old or restricted Resolves).
The fake runs on Python 3.6 too (OTIO is imported only to export), like the script.
"""

import functools
import itertools
import os
from fractions import Fraction

_ids = itertools.count(1)


class Faults:
    """Which calls answer None/False next, and a log of every call."""

    def __init__(self):
        self.plan = {}
        self.calls = []

    def fail(self, name, times=1):
        self.plan[name] = times

    def clear(self):
        self.plan.clear()

    def should_fail(self, name):
        left = self.plan.get(name, 0)
        if left is None:
            return True
        if left > 0:
            self.plan[name] = left - 1
            return True
        return False

    def count(self, name):
        return sum(1 for call in self.calls if call[0] == name)


def api(failure=None):
    """A fake API method: logged, and answering `failure` when a fault is planned for it."""

    def wrap(method):
        @functools.wraps(method)
        def call(self, *args):
            faults = self.host.faults
            faults.calls.append((method.__name__, args))
            if faults.should_fail(method.__name__):
                return failure
            return method(self, *args)

        return call

    return wrap


def rate_of(text):
    """'29.97 DF' -> (OTIO rate as Resolve writes it, exact rate, drop frame)."""
    raw = str(text).upper()
    drop = raw.endswith("DF") and not raw.endswith("NDF")
    value = float(raw.replace("NDF", "").replace("DF", "").strip())
    exact = Fraction(value).limit_denominator(1001)
    for ntsc in (24000, 30000, 48000, 60000):
        if abs(value - ntsc / 1001) < 0.006:
            exact = Fraction(ntsc, 1001)
    return value, exact, drop


class _Obj:
    def __init__(self, host):
        self.host = host
        self.uid = "id-%d" % next(_ids)

    @api()
    def GetUniqueId(self):
        return self.uid


class MediaPoolItem(_Obj):
    def __init__(self, host, path, frames):
        super().__init__(host)
        self.path, self.frames = path, frames

    @api()
    def GetName(self):
        return os.path.basename(self.path)

    @api()
    def GetClipProperty(self, name=None):
        props = {"File Path": self.path, "Clip Name": os.path.basename(self.path), "Frames": str(self.frames)}
        return props if name is None else props.get(name, "")

    @api()
    def GetMediaId(self):
        return self.uid


class TimelineItem(_Obj):
    def __init__(self, host, name, start, length, left_offset=0, pool_item=None, enabled=True):
        super().__init__(host)
        self.name, self.start, self.length = name, start, length
        self.left_offset, self.pool_item, self.enabled = left_offset, pool_item, enabled

    @api()
    def GetName(self):
        return self.name

    @api()
    def GetStart(self):
        return self.start

    @api()
    def GetEnd(self):
        return self.start + self.length

    @api()
    def GetDuration(self):
        return self.length

    @api()
    def GetLeftOffset(self):
        return self.left_offset

    @api()
    def GetRightOffset(self):
        return 0

    @api()
    def GetMediaPoolItem(self):
        return self.pool_item

    @api()
    def GetClipEnabled(self):
        return self.enabled


class Folder(_Obj):
    def __init__(self, host, name):
        super().__init__(host)
        self.name, self.clips, self.subfolders = name, [], []

    @api()
    def GetName(self):
        return self.name

    @api()
    def GetClipList(self):
        return list(self.clips)

    @api()
    def GetSubFolderList(self):
        return list(self.subfolders)


class Timeline(_Obj):
    def __init__(self, host, name="Cut 1", rate="24", start=86400, marker_frames="relative", export_markers_on="stack"):
        super().__init__(host)
        self.name, self.rate, self.start = name, rate, start
        self.marker_frames, self.export_markers_on = marker_frames, export_markers_on
        self.video = [[]]  # tracks of TimelineItems
        self.audio = [{"name": "Audio 1", "subtype": "stereo", "items": []}]
        self.markers = {}  # relative frame -> info

    # -- test helpers --
    def add_clip(self, name, at, length, track=1, left_offset=0, path=None):
        """A video clip at relative frame `at`; path names its media (may not exist)."""
        while len(self.video) < track:
            self.video.append([])
        pool = MediaPoolItem(self.host, path, length + left_offset) if path else None
        item = TimelineItem(self.host, name, self.start + at, length, left_offset, pool)
        self.video[track - 1].append(item)
        self.video[track - 1].sort(key=lambda i: i.start)
        return item

    def user_marker(self, at, name, note="", color="Blue", duration=1, custom=""):
        self.markers[at] = {"color": color, "duration": duration, "note": note, "name": name, "customData": custom}

    def duration(self):
        ends = [i.start + i.length for t in self.video for i in t]
        ends += [i.start + i.length for t in self.audio for i in t["items"]]
        return max(ends, default=self.start) - self.start

    def _api_frame(self, relative):
        return relative + (self.start if self.marker_frames == "absolute" else 0)

    def _relative(self, frame):
        return int(frame) - (self.start if self.marker_frames == "absolute" else 0)

    def _tracks(self, kind):
        return self.video if kind == "video" else [t["items"] for t in self.audio]

    # -- the API --
    @api()
    def GetName(self):
        return self.name

    @api()
    def GetStartFrame(self):
        return self.start

    @api()
    def GetEndFrame(self):
        return self.start + self.duration()

    @api()
    def GetStartTimecode(self):
        return "01:00:00:00"

    @api()
    def GetSetting(self, name=None):
        _, exact, drop = rate_of(self.rate)
        settings = {"timelineFrameRate": self.rate, "timelineDropFrameTimecode": "1" if drop else "0"}
        return settings if name is None else settings.get(name, "")

    @api()
    def GetTrackCount(self, kind):
        return len(self._tracks(kind)) if kind in ("video", "audio") else 0

    @api()
    def GetItemListInTrack(self, kind, index):
        tracks = self._tracks(kind)
        if not 1 <= index <= len(tracks):
            return None
        return sorted(tracks[index - 1], key=lambda i: i.start)

    @api(False)
    def AddTrack(self, kind, subtype=None):
        if kind == "video":
            self.video.append([])
        elif kind == "audio":
            self.audio.append({"name": "Audio %d" % (len(self.audio) + 1), "subtype": subtype or "mono", "items": []})
        else:
            return False
        return True

    @api()
    def GetTrackName(self, kind, index):
        if kind == "audio" and 1 <= index <= len(self.audio):
            return self.audio[index - 1]["name"]
        if kind == "video" and 1 <= index <= len(self.video):
            return "Video %d" % index
        return None

    @api(False)
    def SetTrackName(self, kind, index, name):
        if kind != "audio" or not 1 <= index <= len(self.audio):
            return False
        self.audio[index - 1]["name"] = name
        return True

    @api()
    def GetTrackSubType(self, kind, index):
        return self.audio[index - 1]["subtype"] if kind == "audio" else ""

    @api()
    def GetIsTrackEnabled(self, kind, index):
        return True

    @api(False)
    def DeleteClips(self, items, ripple=False):
        for track in self._tracks("video") + self._tracks("audio"):
            for item in items:
                if item in track:
                    track.remove(item)
        return True

    @api(False)
    def AddMarker(self, frame, color, name, note, duration, custom_data=""):
        relative = self._relative(frame)
        if relative in self.markers or not 0 <= relative < self.duration():
            return False
        self.markers[relative] = {
            "color": color,
            "duration": duration,
            "note": note,
            "name": name,
            "customData": custom_data,
        }
        return True

    @api()
    def GetMarkers(self):
        return {self._api_frame(f): dict(m) for f, m in self.markers.items()}

    @api(False)
    def DeleteMarkerAtFrame(self, frame):
        return self.markers.pop(self._relative(frame), None) is not None

    @api(False)
    def DeleteMarkerByCustomData(self, custom_data):
        for frame in sorted(self.markers):
            if self.markers[frame].get("customData") == custom_data:
                del self.markers[frame]
                return True
        return False

    @api(False)
    def Export(self, path, kind, subtype=None):
        if kind != self.host.EXPORT_OTIO or not self.host.export_otio:
            return False
        import opentimelineio as otio  # here, so that the fake also runs on Python 3.6 without it

        otio.adapters.write_to_file(self.to_otio(), path, adapter_name="otio_json")
        return True

    def to_otio(self):
        """The timeline as Resolve's OTIO export writes it: float rate, start time, markers."""
        import opentimelineio as otio

        rate, _, _ = rate_of(self.rate)

        def rt(value):
            return otio.opentime.RationalTime(value, rate)

        tl = otio.schema.Timeline(name=self.name, global_start_time=rt(self.start))
        for kind, tracks in (
            (otio.schema.TrackKind.Video, self.video),
            (otio.schema.TrackKind.Audio, [t["items"] for t in self.audio]),
        ):
            for index, items in enumerate(tracks, 1):
                track = otio.schema.Track(name="%s %d" % (kind, index), kind=kind)
                cursor = self.start
                for item in sorted(items, key=lambda i: i.start):
                    if item.start > cursor:
                        track.append(
                            otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(item.start - cursor)))
                        )
                    ref = (
                        otio.schema.ExternalReference(target_url=item.pool_item.path)
                        if item.pool_item
                        else otio.schema.MissingReference()
                    )
                    track.append(
                        otio.schema.Clip(
                            name=item.name,
                            media_reference=ref,
                            source_range=otio.opentime.TimeRange(rt(item.left_offset), rt(item.length)),
                        )
                    )
                    cursor = item.start + item.length
                tl.tracks.append(track)
        holder = tl.tracks if self.export_markers_on == "stack" else tl.tracks[0]
        for frame, m in sorted(self.markers.items()):
            holder.markers.append(
                otio.schema.Marker(
                    name=m["name"],
                    marked_range=otio.opentime.TimeRange(rt(frame), rt(m["duration"])),
                    color=otio.schema.MarkerColor.RED,
                    metadata={"Resolve_OTIO": {"Keywords": [], "Note": m["note"]}},
                )
            )
        return tl


class MediaPool(_Obj):
    def __init__(self, host):
        super().__init__(host)
        self.root = Folder(host, "Master")
        self.current = self.root
        self.end_inclusive = True

    def all_folders(self):
        out, todo = [], [self.root]
        while todo:
            folder = todo.pop()
            out.append(folder)
            todo.extend(folder.subfolders)
        return out

    def folder(self, name):
        return next((f for f in self.all_folders() if f.name == name), None)

    @api()
    def GetRootFolder(self):
        return self.root

    @api()
    def GetCurrentFolder(self):
        return self.current

    @api(False)
    def SetCurrentFolder(self, folder):
        self.current = folder
        return True

    @api()
    def AddSubFolder(self, parent, name):
        folder = Folder(self.host, name)
        parent.subfolders.append(folder)
        return folder

    @api()
    def ImportMedia(self, paths):
        timeline = self.host.project.timeline
        _, exact, _ = rate_of(timeline.rate)
        items = []
        for path in paths:
            if not os.path.isfile(path):
                continue
            seconds = _wav_seconds(path)
            item = MediaPoolItem(self.host, path, int(round(seconds * exact)))
            self.current.clips.append(item)
            items.append(item)
        return items

    @api()
    def AppendToTimeline(self, infos):
        timeline = self.host.project.timeline
        out = []
        for info in infos:
            pool = info["mediaPoolItem"]
            first, last = info.get("startFrame", 0), info.get("endFrame", pool.frames - 1)
            length = min(last - first + (1 if self.end_inclusive else 0), pool.frames - first)
            kind = "audio" if info.get("mediaType") == 2 else "video"
            tracks = timeline._tracks(kind)
            index = info.get("trackIndex", 1)
            record = info.get("recordFrame", timeline.start + timeline.duration())
            item = TimelineItem(self.host, pool.GetName(), record, length, first, pool)
            out.append(item)  # answered even when dropped below
            if not 1 <= index <= len(tracks):
                continue
            track = tracks[index - 1]
            if any(o.start < record + length and record < o.start + o.length for o in track):
                continue  # occupied: silently dropped
            track.append(item)
        return out

    @api(False)
    def DeleteClips(self, items):
        for folder in self.all_folders():
            folder.clips = [c for c in folder.clips if c not in items]
        return True


class Project(_Obj):
    def __init__(self, host, timeline):
        super().__init__(host)
        self.timeline = timeline
        self.media_pool = MediaPool(host)

    @api()
    def GetName(self):
        return "Fake Project"

    @api()
    def GetCurrentTimeline(self):
        return self.timeline

    @api(False)
    def SetCurrentTimeline(self, timeline):
        self.timeline = timeline
        return True

    @api()
    def GetMediaPool(self):
        return self.media_pool


class ProjectManager(_Obj):
    @api()
    def GetCurrentProject(self):
        return self.host.project


class Resolve:
    """The `resolve` object a menu script gets."""

    EXPORT_OTIO = 27
    EXPORT_NONE = 0

    def __init__(
        self,
        timeline=None,
        product="DaVinci Resolve Studio",
        version=(19, 1, 3, 7, ""),
        export_otio=True,
        **timeline_options,
    ):
        self.host = self
        self.faults = Faults()
        self.product, self.version, self.export_otio = product, list(version), export_otio
        self.project = Project(self, None)
        self.project.timeline = timeline or Timeline(self, **timeline_options)
        self.manager = ProjectManager(self)
        self.fusion = None  # a fake_ui.Fusion() gives the script its window

    @property
    def timeline(self):
        return self.project.timeline

    @property
    def media_pool(self):
        return self.project.media_pool

    @api()
    def GetProductName(self):
        return self.product

    @api()
    def GetVersion(self):
        return list(self.version)

    @api()
    def GetVersionString(self):
        return ".".join(str(v) for v in self.version[:3])

    @api()
    def GetProjectManager(self):
        return self.manager

    def Fusion(self):
        return self.fusion


def _wav_seconds(path):
    """A WAV's length, read from its chunks: Resolve imports the float stems too, which the
    wave module cannot open."""
    with open(path, "rb") as f:
        data = f.read()
    at, rate, block, frames = 12, None, None, None
    while at + 8 <= len(data):
        name, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if name == b"fmt ":
            rate = int.from_bytes(data[at + 12 : at + 16], "little")
            block = int.from_bytes(data[at + 20 : at + 22], "little")
        elif name == b"data":
            frames = size // block
        at += 8 + size + (size & 1)
    return Fraction(frames, rate)
