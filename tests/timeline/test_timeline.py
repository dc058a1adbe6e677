"""Reading edits into the Timeline model: rates, start timecode, segments, hits, markers."""

import shutil
import subprocess
from fractions import Fraction

import opentimelineio as otio
import pytest

from bridge.errors import BadInput
from bridge.timeline import read_timeline

NTSC_FILM, NTSC = Fraction(24000, 1001), Fraction(30000, 1001)
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg/ffprobe not on the PATH"
)


# --- helpers: edits built with the OTIO API ---------------------------------------------------


def rt(value, rate=24):
    return otio.opentime.RationalTime(value, rate)


def tr(start, duration, rate=24):
    return otio.opentime.TimeRange(rt(start, rate), rt(duration, rate))


def clip(name, start, duration, rate=24, url=None, available=None, markers=()):
    ref = (
        otio.schema.ExternalReference(target_url=url, available_range=available)
        if url
        else otio.schema.MissingReference(available_range=available)
    )
    item = otio.schema.Clip(name=name, media_reference=ref, source_range=tr(start, duration, rate))
    for marker in markers:
        item.markers.append(marker)
    return item


def gap(duration, rate=24):
    return otio.schema.Gap(source_range=tr(0, duration, rate))


def marker(name, at, duration=0, rate=24, comment=""):
    return otio.schema.Marker(name=name, marked_range=tr(at, duration, rate), comment=comment)


def track(*items, kind=otio.schema.TrackKind.Video, enabled=True, name="V"):
    result = otio.schema.Track(name=name, kind=kind)
    result.enabled = enabled
    for item in items:
        result.append(item)
    return result


def save(tmp_path, *tracks, start=None, metadata=None, name="edit.otio", markers=()):
    timeline = otio.schema.Timeline(name="edit", global_start_time=start)
    timeline.metadata.update(metadata or {})
    for t in tracks:
        timeline.tracks.append(t)
    for m in markers:
        timeline.tracks.markers.append(m)
    path = tmp_path / name
    otio.adapters.write_to_file(timeline, str(path))
    return path


def spans(timeline):
    return [(s.kind, s.name, s.record_start, s.record_end) for s in timeline.segments]


def hits(timeline):
    return [(h.frame, h.source) for h in timeline.hits]


def assert_contiguous(timeline):
    assert timeline.segments[0].record_start == 0
    assert timeline.segments[-1].record_end == timeline.duration
    for left, right in zip(timeline.segments, timeline.segments[1:]):
        assert left.record_end == right.record_start
        assert left.record_end > left.record_start


# --- the sample timelines in ../shared --------------------------------------------------------


def test_sample_25fps_edl(shared_data):
    t = read_timeline(shared_data / "timelines/25fps.edl")
    # largest frame field is 24 (source out 01:00:01:24) -> 25 fps, inferred with a warning
    assert (t.rate, t.drop_frame) == (25, False)
    assert any("inferred 25.000 fps" in w and "--fps" in w for w in t.warnings)
    assert t.start_frame == 0  # first record in 00:00:00:00
    assert t.duration == 496  # record out 00:00:19:21 = 19*25+21
    # record outs 00:00:06:11 = 6*25+11 = 161; 00:00:14:11 = 14*25+11 = 361;
    # 00:00:17:22 = 17*25+22 = 447
    assert hits(t) == [(161, "cut"), (361, "cut"), (447, "cut")]
    assert_contiguous(t)


def test_sample_avid_edl(shared_data):
    t = read_timeline(shared_data / "timelines/avid_example.edl")
    # frame fields 05 12 11 18 13 15 18 20: largest 20 -> 24 fps
    assert (t.rate, t.drop_frame) == (24, False)
    assert t.start_frame == 59 * 60 * 24 + 53 * 24 + 11  # 00:59:53:11 = 86243
    # record 00:59:53:11 -> 00:59:54:18 is (54*24+18) - (53*24+11) = 1314 - 1283 = 31 frames,
    # then 00:59:54:18 -> 00:59:56:20 is (56*24+20) - 1314 = 50 frames
    assert t.duration == 31 + 50
    assert hits(t) == [(31, "cut")]
    # Windows paths from "* FROM CLIP:" are kept as given
    assert t.segments[0].media_path == r"S:\path\to\ZZ100_501.take_1.0001.exr"
    # no available range, file absent: the source timecode as is, 01:00:04:05 = 86501 frames
    assert t.segments[0].media_start == pytest.approx(86501 / 24)


def test_sample_dissolve_edl(shared_data):
    t = read_timeline(shared_data / "timelines/dissolve_test.edl")
    # frame fields up to 19 -> 24 fps; first record in 01:00:00:00 = 3600*24 = 86400
    assert (t.rate, t.drop_frame, t.start_frame) == (24, False, 86400)
    # clip_A record 00:00 -> 00:09 (9 frames); dissolve to clip_B 00:09 -> 00:19 (10);
    # clip_B again 00:19 -> 00:20 (1): 20 frames. The dissolve's edit point is where
    # clip_A ends (frame 9); the last event is a plain cut at 19.
    assert t.duration == 20
    assert hits(t) == [(9, "transition"), (19, "cut")]
    assert spans(t) == [("clip", "clip_A", 0, 9), ("clip", "clip_B", 9, 19), ("clip", "clip_B", 19, 20)]
    # the incoming clip's picture starts at the edit point: clip_B source in 01:00:08:08
    assert t.segments[1].media_start == pytest.approx((86400 + 8 * 24 + 8) / 24)


def test_sample_gap_edl(shared_data):
    t = read_timeline(shared_data / "timelines/gap_test.edl")
    # frame fields up to 16 -> 24 fps
    assert (t.rate, t.drop_frame, t.start_frame) == (24, False, 0)
    # shot1 rec 00:00:00:00-00:00:01:00 = 0-24; shot2 00:00:01:16-00:00:02:16 = 40-64;
    # shot3 00:00:04:06-00:00:05:06 = 4*24+6 = 102 - 126
    assert t.duration == 126
    assert spans(t) == [
        ("clip", "shot1", 0, 24),
        ("gap", "gap", 24, 40),
        ("clip", "shot2", 40, 64),
        ("gap", "gap", 64, 102),
        ("clip", "shot3", 102, 126),
    ]
    assert hits(t) == [(24, "cut"), (40, "cut"), (64, "cut"), (102, "cut")]


def test_sample_simple_cut_otio(shared_data):
    t = read_timeline(shared_data / "timelines/simple_cut.otio")
    assert (t.rate, t.drop_frame, t.start_frame) == (24, False, 0)
    # durations 3, 6, 4 and Clip-004's whole available range 6: 19 frames, cuts 3, 9, 13
    assert t.duration == 19
    assert hits(t) == [(3, "cut"), (9, "cut"), (13, "cut")]
    assert [s.media_path for s in t.segments] == [
        "/folder/titles.mov",
        "/folder/wind-up.mov",
        "/folder/punchline.mov",
        "/folder/credits.mov",
    ]
    # source start minus available start: 3/24, 2/24, 0, (100 - 100)/24
    assert [s.media_start for s in t.segments] == pytest.approx([3 / 24, 2 / 24, 0, 0])
    assert any("media not found" in w for w in t.warnings)


def test_sample_clip_example_otio(shared_data):
    t = read_timeline(shared_data / "timelines/clip_example.otio")
    # Gap A 8, Clip-001 3, a dissolve (in 2, out 1) into Gap B 8: 19 frames
    assert (t.rate, t.start_frame, t.duration) == (24, 0, 19)
    assert spans(t) == [("gap", "gap", 0, 8), ("clip", "Clip-001", 8, 11), ("gap", "gap", 11, 19)]
    # cut into the clip at 8; the dissolve's edit point is where Clip-001 ends, 8 + 3 = 11
    assert hits(t) == [(8, "cut"), (11, "transition")]
    assert t.segments[1].media_start == pytest.approx(3 / 24)  # source 3 - available 0


def test_sample_transition_otio(shared_data):
    t = read_timeline(shared_data / "timelines/transition_test.otio")
    # A, B, C of 50 frames each; the fades before A and after C add no picture: 150
    assert (t.rate, t.start_frame, t.duration) == (24, 0, 150)
    assert spans(t) == [("clip", "A", 0, 50), ("clip", "B", 50, 100), ("clip", "C", 100, 150)]
    # t1 between A and B: its edit point is A's end, 50; B -> C is a plain cut at 100;
    # t0 at frame 0 and t3 at 150 are no edit points inside the picture
    assert hits(t) == [(50, "transition"), (100, "cut")]


def test_sample_nested_otio(shared_data):
    t = read_timeline(shared_data / "timelines/nested_example.otio")
    # 238 + 31 + 33 + 29 + 63 + 4 + 238 = 636 frames
    assert (t.rate, t.start_frame, t.duration) == (24, 0, 636)
    assert spans(t) == [
        ("clip", "Normal Clip 1", 0, 238),
        ("clip", "Clip Inside A Stack 1", 238, 269),  # its 37 frames trimmed to the stack's 31
        ("clip", "Normal Clip 2", 269, 302),  # 269 + 33
        ("clip", "Clip Inside A Stack 2", 302, 326),  # 24 frames in a 29-frame stack ...
        ("gap", "gap", 326, 331),  # ... the other 5 are empty
        ("clip", "Normal Clip 3", 331, 394),  # 331 + 63
        ("clip", "Clip Inside A Track", 394, 395),  # 1 frame in a 4-frame track ...
        ("gap", "gap", 395, 398),  # ... then 3 empty
        ("clip", "Normal Clip 4", 398, 636),
    ]
    assert hits(t) == [(f, "cut") for f in (238, 269, 302, 326, 331, 394, 395, 398)]
    # the nested clip's source starts at 373: 373/24 s into its media (no available range)
    assert t.segments[1].media_start == pytest.approx(373 / 24)


def test_sample_multitrack_otio(shared_data):
    t = read_timeline(shared_data / "timelines/multitrack.otio")
    # V1: clip 0-720, gap -803, clip 803-1525, gap -1957, clip 1957-2677, gap -3282
    # V2: gap -482, clip 482-962;  V3: gap -1198, clip 1198-1838
    assert (t.rate, t.start_frame, t.duration) == (24, 0, 3282)
    assert [(k, a, b) for k, _, a, b in spans(t)] == [
        ("clip", 0, 482),
        ("clip", 482, 962),
        ("clip", 962, 1198),
        ("clip", 1198, 1838),
        ("gap", 1838, 1957),
        ("clip", 1957, 2677),
        ("gap", 2677, 3282),
    ]
    assert [s.track for s in t.segments if s.kind == "clip"] == [0, 1, 0, 2, 0]
    assert hits(t) == [(f, "cut") for f in (482, 962, 1198, 1838, 1957, 2677)]
    # out-b starts at 803 with source 0, seen from 962: (962 - 803)/24 s into it
    assert t.segments[2].media_start == pytest.approx((962 - 803) / 24)


def test_sample_premiere_xml(shared_data):
    t = read_timeline(shared_data / "timelines/premiere_example.xml")
    # sequence: timebase 30, ntsc FALSE, timecode 00:00:00:00 NDF
    assert (t.rate, t.drop_frame, t.start_frame) == (30, False, 0)
    # V4 ends last: 956 + 208 + 82 = 1246 (audio to 1271 does not count)
    assert t.duration == 1246
    # V2 clip 13-113, title slug on V3 15-956 is an overlay: it shows only over empty
    # picture (113-165, 636-956); V2 sh020 165-322, sh030 322-557 fading out (transition
    # cut point 538 + 19 = 557) onto V1's 15 fps clip 536-636; V4 956-1164 dissolving
    # (cut point 1152 + 12 = 1164) into sh010 to 1246
    assert [(k, a, b) for k, _, a, b in spans(t)] == [
        ("gap", 0, 13),
        ("clip", 13, 113),
        ("clip", 113, 165),
        ("clip", 165, 322),
        ("clip", 322, 557),
        ("clip", 557, 636),
        ("clip", 636, 956),
        ("clip", 956, 1164),
        ("clip", 1164, 1246),
    ]
    assert hits(t) == [
        (13, "cut"),
        (113, "cut"),
        (165, "cut"),
        (322, "cut"),
        (557, "transition"),
        (636, "cut"),
        (956, "cut"),
        (1164, "transition"),
    ]
    assert t.segments[1].media_path == "D:/media/sc01_sh010_anim.mov"  # file://localhost/D%3a/…
    assert t.segments[5].media_rate == 15
    assert t.segments[5].media_start == pytest.approx((557 - 536) / 30)
    assert t.segments[7].media_start == pytest.approx((133 - 99) / 30)  # in 133, file starts 99
    # sequence markers at 113, 298, 492; the clip marker at 73 on sh030 (placed at 322, in 0)
    assert [(m.frame, m.name) for m in t.markers] == [(113, "My MArker 1"), (298, ""), (395, ""), (492, "dsf")]
    assert t.markers[0].comment == "so, this happened"


def test_fcp7_xml_ntsc_drop_frame(shared_data, tmp_path):
    # the Premiere sample turned into 29.97 DF starting at 01:00:00;00
    text = (shared_data / "timelines/premiere_example.xml").read_text()
    text = text.replace("<ntsc>FALSE</ntsc>", "<ntsc>TRUE</ntsc>")
    head, _, tail = text.rpartition("<displayformat>NDF</displayformat>")  # the sequence's
    text = (head + "<displayformat>DF</displayformat>" + tail).replace(
        "<string>00:00:00:00</string>\n\t\t\t<frame>0</frame>",
        "<string>01:00:00;00</string>\n\t\t\t<frame>107892</frame>",
    )
    path = tmp_path / "df.xml"
    path.write_text(text)
    t = read_timeline(path)
    assert (t.rate, t.drop_frame) == (NTSC, True)
    assert t.start_frame == 107892  # 108000 - 9 x 12 dropped frame numbers
    assert [h.frame for h in t.hits] == [13, 113, 165, 322, 557, 636, 956, 1164]


# --- rates and start timecodes ----------------------------------------------------------------


def test_23976_with_hour_start(tmp_path):
    rate = 24000 / 1001
    path = save(
        tmp_path,
        track(clip("a", 0, 48, rate), clip("b", 0, 24, rate)),
        start=otio.opentime.from_timecode("01:00:00:00", rate),
    )
    t = read_timeline(path)
    assert t.rate == NTSC_FILM and not t.drop_frame
    assert t.start_frame == 86400  # 3600 s x 24 timecode frames
    assert (t.duration, hits(t)) == (72, [(48, "cut")])


def test_25fps_with_ten_hour_start(tmp_path):
    path = save(tmp_path, track(clip("a", 0, 25, 25), clip("b", 0, 50, 25), gap(10, 25)), start=rt(10 * 3600 * 25, 25))
    t = read_timeline(path)
    assert (t.rate, t.start_frame, t.duration) == (25, 900000, 85)
    assert hits(t) == [(25, "cut"), (75, "cut")]
    assert spans(t)[-1] == ("gap", "gap", 75, 85)


def test_2997_drop_frame_from_metadata(tmp_path):
    rate = 30000 / 1001
    start = otio.opentime.from_timecode("01:00:00;00", rate)
    path = save(
        tmp_path,
        track(clip("a", 0, 30, rate), clip("b", 0, 30, rate)),
        start=start,
        metadata={"timecode": {"drop_frame": True}},
    )
    t = read_timeline(path)
    assert (t.rate, t.drop_frame) == (NTSC, True)
    # 01:00:00;00 DF = one hour less 2 frames per minute except every tenth: 108000 - 108
    assert t.start_frame == 107892
    assert hits(t) == [(30, "cut")]


def test_2997_without_drop_frame_metadata_is_non_drop(tmp_path):
    rate = 30000 / 1001
    t = read_timeline(save(tmp_path, track(clip("a", 0, 30, rate))))
    assert (t.rate, t.drop_frame) == (NTSC, False)


def test_fps_is_ignored_for_files_that_carry_a_rate(tmp_path):
    t = read_timeline(save(tmp_path, track(clip("a", 0, 30, 25))), fps=24)
    assert t.rate == 25
    assert any("--fps 24.000 ignored" in w for w in t.warnings)


@pytest.mark.parametrize("fps", [0, -24, 1001, "fast"])
def test_absurd_fps_is_bad_input(tmp_path, fps):
    with pytest.raises(BadInput, match="not a usable frame rate"):
        read_timeline(save(tmp_path, track(clip("a", 0, 30))), fps=fps)


def test_absurd_rate_in_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="absurd frame rate"):
        read_timeline(save(tmp_path, track(clip("a", 0, 30000, 5000))))


# --- flattening the picture -------------------------------------------------------------------


def test_topmost_enabled_track_wins(tmp_path):
    v1 = track(clip("low", 100, 100))
    v2 = track(gap(20), clip("high", 0, 30))
    audio = track(gap(5), clip("music", 0, 300), kind=otio.schema.TrackKind.Audio)
    t = read_timeline(save(tmp_path, v1, v2, audio))
    assert t.duration == 100  # the audio's 305 does not count
    assert spans(t) == [("clip", "low", 0, 20), ("clip", "high", 20, 50), ("clip", "low", 50, 100)]
    assert [s.track for s in t.segments] == [0, 1, 0]
    assert hits(t) == [(20, "cut"), (50, "cut")]
    # V1 seen again from 50: its source starts at 100, so (100 + 50)/24 s into the media
    assert t.segments[2].media_start == pytest.approx(150 / 24)


def test_disabled_top_track_does_not_win(tmp_path):
    v1 = track(clip("low", 0, 100))
    v2 = track(gap(20), clip("high", 0, 30), enabled=False)
    t = read_timeline(save(tmp_path, v1, v2))
    assert spans(t) == [("clip", "low", 0, 100)]
    assert hits(t) == []


def test_disabled_clip_shows_what_lies_below(tmp_path):
    hidden = clip("off", 0, 30)
    hidden.enabled = False
    t = read_timeline(save(tmp_path, track(clip("low", 0, 60)), track(gap(10), hidden)))
    assert spans(t) == [("clip", "low", 0, 60)]


def test_nested_stack_is_flattened_and_trimmed(tmp_path):
    inner = otio.schema.Stack(name="nest", source_range=tr(10, 40))
    inner.append(track(clip("inner-low", 0, 60)))
    inner.append(track(gap(30), clip("inner-high", 0, 10)))
    t = read_timeline(save(tmp_path, track(clip("a", 0, 20), inner, clip("b", 0, 20))))
    # the nest shows its frames 10-50: inner-low 10-30, inner-high 30-40, inner-low 40-50
    assert spans(t) == [
        ("clip", "a", 0, 20),
        ("clip", "inner-low", 20, 40),
        ("clip", "inner-high", 40, 50),
        ("clip", "inner-low", 50, 60),
        ("clip", "b", 60, 80),
    ]
    assert hits(t) == [(f, "cut") for f in (20, 40, 50, 60)]
    assert t.segments[1].media_start == pytest.approx(10 / 24)  # nest starts at its frame 10


def test_transition_hit_sits_at_the_edit_point(tmp_path):
    dissolve = otio.schema.Transition(in_offset=rt(6), out_offset=rt(6))
    t = read_timeline(save(tmp_path, track(clip("a", 0, 40), dissolve, clip("b", 100, 40), clip("c", 0, 20))))
    assert t.duration == 100
    assert spans(t) == [("clip", "a", 0, 40), ("clip", "b", 40, 80), ("clip", "c", 80, 100)]
    assert hits(t) == [(40, "transition"), (80, "cut")]
    assert t.segments[1].media_start == pytest.approx(100 / 24)  # b's picture from the cut


def test_transition_hidden_under_a_higher_track_is_no_hit(tmp_path):
    dissolve = otio.schema.Transition(in_offset=rt(6), out_offset=rt(6))
    v1 = track(clip("a", 0, 40), dissolve, clip("b", 0, 40))
    v2 = track(clip("cover", 0, 80))
    t = read_timeline(save(tmp_path, v1, v2))
    assert spans(t) == [("clip", "cover", 0, 80)]
    assert hits(t) == []


def test_gaps_become_gap_segments(tmp_path):
    t = read_timeline(save(tmp_path, track(gap(12), clip("a", 0, 12), gap(24), clip("b", 0, 12))))
    assert spans(t) == [("gap", "gap", 0, 12), ("clip", "a", 12, 24), ("gap", "gap", 24, 48), ("clip", "b", 48, 60)]
    assert hits(t) == [(12, "cut"), (24, "cut"), (48, "cut")]


def test_generated_clip_is_an_overlay(tmp_path):
    title = otio.schema.Clip(
        name="title", source_range=tr(0, 100), media_reference=otio.schema.GeneratorReference(generator_kind="Text")
    )
    t = read_timeline(save(tmp_path, track(clip("a", 0, 40), gap(20), clip("b", 0, 40)), track(title)))
    # the title shows only where nothing is beneath it
    assert spans(t) == [("clip", "a", 0, 40), ("clip", "title", 40, 60), ("clip", "b", 60, 100)]
    assert t.segments[1].media_path is None


def test_zero_length_clip_is_dropped_with_a_warning(tmp_path):
    t = read_timeline(save(tmp_path, track(clip("a", 0, 10), clip("flash", 0, 0), clip("b", 0, 10))))
    assert spans(t) == [("clip", "a", 0, 10), ("clip", "b", 10, 20)]
    assert any("zero-length" in w and "flash" in w for w in t.warnings)


# --- media paths ------------------------------------------------------------------------------


def test_media_paths_decode_file_urls_and_relink(tmp_path):
    root = tmp_path / "moved" / "deep"
    root.mkdir(parents=True)
    (root / "shot b.mov").write_bytes(b"")
    v = track(
        clip("a", 0, 10, url="file:///nowhere/shot%20b.mov", available=tr(0, 100)),
        clip("b", 0, 10, url="file:///nowhere/absent.mov"),
        clip("c", 0, 10, url="C:\\media\\win.mov"),
        clip("d", 0, 10),
    )
    path = save(tmp_path, v)
    t = read_timeline(path)
    assert [s.media_path for s in t.segments] == [
        "/nowhere/shot b.mov",
        "/nowhere/absent.mov",
        "C:\\media\\win.mov",
        None,
    ]
    t = read_timeline(path, media_root=tmp_path / "moved")
    assert t.segments[0].media_path == str(root / "shot b.mov")
    assert t.segments[1].media_path == "/nowhere/absent.mov"
    assert any("relinked" in w for w in t.warnings)
    assert any("media not found" in w and "absent.mov" in w for w in t.warnings)
    assert any("name no media file" in w for w in t.warnings)


@pytest.mark.parametrize("bundle", ["edit.otiod", "edit.otioz"])
def test_bundles(tmp_path, bundle):
    media = tmp_path / "shot.mov"
    media.write_bytes(b"\0")
    path = save(tmp_path, track(clip("a", 0, 10, url=media.as_uri(), available=tr(0, 10))), name=bundle)
    t = read_timeline(path)
    assert (t.duration, t.segments[0].name) == (10, "a")
    if bundle.endswith("otiod"):  # media copied into the bundle, named relative to it
        assert t.segments[0].media_path == str(path / "media" / "shot.mov")
        assert not any("not found" in w for w in t.warnings)
    else:  # media inside the zip: unpacking it is the user's step
        assert t.segments[0].media_path == str(tmp_path / "media" / "shot.mov")
        assert any("media not found" in w for w in t.warnings)


# --- markers ----------------------------------------------------------------------------------


def test_clip_markers_follow_the_trimmed_clip(tmp_path):
    # the clip shows source 100-150 at timeline 30-80
    trimmed = clip("a", 100, 50, markers=[marker("hit", 120), marker("in the handle", 90), marker("hit", 160)])
    t = read_timeline(save(tmp_path, track(clip("lead", 0, 30), trimmed)))
    assert [(m.frame, m.kind) for m in t.markers] == [(50, "hit")]  # 30 + (120 - 100)
    assert hits(t) == [(30, "cut"), (50, "marker")]


def test_markers_on_stack_track_and_nested_items(tmp_path):
    v = track(clip("a", 0, 50), clip("b", 0, 50))
    v.markers.append(marker("mood: tense", 10))
    audio = track(gap(70), clip("sfx", 0, 10, markers=[marker("hit: boom", 5)]), kind=otio.schema.TrackKind.Audio)
    t = read_timeline(save(tmp_path, v, audio, markers=[marker("va: 0.5, -0.5", 60)]))
    assert [(m.frame, m.kind) for m in t.markers] == [(10, "mood"), (60, "va"), (75, "hit")]
    assert (t.markers[0].valence, t.markers[0].arousal) == (-0.40, 0.60)
    assert (t.markers[1].valence, t.markers[1].arousal) == (0.5, -0.5)
    assert hits(t) == [(50, "cut"), (75, "marker")]


def test_scorebridge_markers_are_ignored(tmp_path):
    t = read_timeline(
        save(
            tmp_path,
            track(clip("a", 0, 50)),
            markers=[marker("SB: hit 1", 10), marker("sb:section", 20), marker("hit", 30)],
        )
    )
    assert [(m.frame, m.name) for m in t.markers] == [(30, "hit")]
    assert hits(t) == [(30, "marker")]


def test_every_marker_syntax_on_a_timeline(tmp_path):
    ms = [
        marker("Mood: Calm", 0),
        marker("va: -0.2 0.9", 10),
        marker("hit", 20),
        marker("hit: on the cut", 50),
        marker("tacet", 60, 5),
        marker("tacet", 70),
        marker("end tacet", 80),
        marker("Marker 7", 85, comment="tacet"),
        marker("mood: blorp", 90),
        marker("va: 2, 0", 95),
        marker("a note", 96),
    ]
    t = read_timeline(save(tmp_path, track(clip("a", 0, 50), clip("b", 0, 50)), markers=ms))
    assert [(m.frame, m.kind, m.duration) for m in t.markers] == [
        (0, "mood", 0),
        (10, "va", 0),
        (20, "hit", 0),
        (50, "hit", 0),
        (60, "tacet", 5),  # its own duration
        (70, "tacet", 10),  # until the `end tacet` at 80
        (80, "music", 0),
        (85, "tacet", 15),  # from its comment; no `music` after: to the end, 100
        (90, "note", 0),
        (95, "note", 0),
        (96, "note", 0),
    ]
    assert t.markers[0].mood == "calm"
    assert t.markers[7].comment == "tacet"
    # a marker hit on a cut stays a cut; one hit per frame
    assert hits(t) == [(20, "marker"), (50, "cut")]
    assert any("blorp" in w for w in t.warnings)
    assert any("[-1, 1]" in w for w in t.warnings)


# --- bad input --------------------------------------------------------------------------------


def test_newer_otio_schema_says_so(tmp_path):
    path = save(tmp_path, track(clip("a", 0, 10)))
    path.write_text(path.read_text().replace('"Clip.2"', '"Clip.9"'))
    with pytest.raises(BadInput) as err:
        read_timeline(path)
    message = str(err.value)
    assert "newer OpenTimelineIO" in message and "Clip.9" in message
    assert otio.__version__ in message and "\n" not in message


@pytest.mark.parametrize(
    "name, text",
    [
        ("broken.otio", '{"OTIO_SCHEMA": "Timeline.1", "tracks": '),
        ("broken.xml", "<?xml version='1.0'?><xmeml version='4'><sequence><name>x</sequence>"),
        ("plain.xml", "<?xml version='1.0'?><project/>"),
        ("broken.edl", "TITLE: x\n001  AX V C 01:00:00:00 01:00:01:00\n"),
        ("clip.otio", '{"OTIO_SCHEMA": "Clip.2", "name": "c", "source_range": null}'),
    ],
)
def test_malformed_files_are_bad_input(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BadInput) as err:
        read_timeline(path)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        read_timeline(tmp_path / "nothing.otio")
    (tmp_path / "edit.aaf").write_bytes(b"\0")
    with pytest.raises(BadInput, match=r"unknown timeline format '\.aaf'; supported: .*\.edl"):
        read_timeline(tmp_path / "edit.aaf")


def test_no_video_and_zero_duration_are_bad_input(tmp_path):
    audio_only = save(tmp_path, track(clip("a", 0, 10), kind=otio.schema.TrackKind.Audio), name="audio.otio")
    with pytest.raises(BadInput, match="no video track"):
        read_timeline(audio_only)
    with pytest.raises(BadInput, match="no picture"):
        read_timeline(save(tmp_path, track(), name="empty.otio"))


# --- EDL frame rates --------------------------------------------------------------------------


def edl(tmp_path, events, header="FCM: NON-DROP FRAME", name="cut.edl"):
    """An EDL of video cuts; events are (source in, source out, record in, record out)."""
    lines = ["TITLE: test", header]
    for number, (src_in, src_out, rec_in, rec_out) in enumerate(events, 1):
        lines.append(f"{number:03d}  AX       V     C        {src_in} {src_out} {rec_in} {rec_out}")
        lines.append(f"* FROM CLIP NAME:  shot{number}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_edl_drop_frame_header_means_2997_df(tmp_path):
    path = edl(
        tmp_path,
        [
            ("00:00:00:00", "00:00:02:00", "01:00:00:00", "01:00:02:00"),
            ("00:00:10:00", "00:00:11:00", "01:00:02:00", "01:00:03:00"),
        ],
        header="FCM: DROP FRAME",
    )
    t = read_timeline(path)
    assert (t.rate, t.drop_frame) == (NTSC, True)
    assert t.start_frame == 107892  # 01:00:00;00 drop frame
    assert (t.duration, hits(t)) == (90, [(60, "cut")])
    assert any("inferred 29.970 fps drop frame" in w and "--fps" in w for w in t.warnings)


def test_edl_semicolons_mean_drop_frame(tmp_path):
    path = edl(tmp_path, [("00:00:00;00", "00:00:01;00", "00:00:00;00", "00:00:01;00")], header="")
    t = read_timeline(path)
    assert (t.rate, t.drop_frame, t.duration) == (NTSC, True, 30)


@pytest.mark.parametrize(
    "frame, rate", [("05", 24), ("23", 24), ("24", 25), ("27", 30), ("29", 30), ("45", 50), ("59", 60)]
)
def test_edl_largest_frame_field_bounds_the_rate(tmp_path, frame, rate):
    path = edl(tmp_path, [("00:00:00:00", f"00:00:01:{frame}", "00:00:00:00", f"00:00:01:{frame}")])
    t = read_timeline(path)
    assert (t.rate, t.drop_frame) == (rate, False)
    assert t.duration == rate + int(frame)  # one second and FF frames
    assert any(f"inferred {rate:.3f} fps" in w for w in t.warnings)


def test_edl_without_evidence_asks_for_fps(tmp_path):
    path = edl(tmp_path, [("00:00:00:00", "00:00:01:00", "00:00:00:00", "00:00:01:00")])
    with pytest.raises(BadInput, match="pass --fps"):
        read_timeline(path)
    t = read_timeline(path, fps=25)
    assert (t.rate, t.duration) == (25, 25)
    assert not any("inferred" in w for w in t.warnings)


def test_edl_fps_overrides_inference(tmp_path):
    path = edl(
        tmp_path,
        [
            ("00:00:00:00", "00:00:01:10", "00:00:00:00", "00:00:01:10"),
            ("00:00:00:00", "00:00:01:00", "00:00:01:10", "00:00:02:10"),
        ],
    )
    t = read_timeline(path, fps="23.976")
    assert t.rate == NTSC_FILM
    assert (t.duration, hits(t)) == (34 + 24, [(34, "cut")])
    assert not any("inferred" in w for w in t.warnings)
    with pytest.raises(BadInput, match="frames beyond"):
        read_timeline(
            edl(tmp_path, [("00:00:00:00", "00:00:01:24", "00:00:00:00", "00:00:01:24")], name="b.edl"), fps=24
        )


def test_edl_markers_from_loc_lines(tmp_path):
    path = edl(
        tmp_path,
        [
            ("01:00:00:00", "01:00:04:00", "00:00:00:00", "00:00:04:00"),
            ("02:00:00:00", "02:00:02:12", "00:00:04:00", "00:00:06:12"),
        ],
    )
    text = path.read_text().replace(
        "* FROM CLIP NAME:  shot1\n",
        "* FROM CLIP NAME:  shot1\n* LOC: 01:00:01:00 RED     HIT\n* LOC: 01:00:02:00 YELLOW  MOOD: SAD\n",
    )
    path.write_text(text)
    t = read_timeline(path)
    assert t.rate == 24  # largest frame field 12
    # LOC timecodes are in shot1's source time: source 01:00:00:00 sits at record frame 0,
    # so 01:00:01:00 -> 24 and 01:00:02:00 -> 48
    assert [(m.frame, m.kind, m.mood) for m in t.markers] == [(24, "hit", None), (48, "mood", "sad")]
    assert hits(t) == [(24, "marker"), (96, "cut")]  # record 00:00:04:00 = 4*24


def test_edl_drop_frame_locators_and_minute_boundaries(tmp_path):
    # drop frame written with colons; the cut sits across 01:01:00 where DF skips ;00 and ;01
    path = edl(
        tmp_path,
        [
            ("00:00:00:00", "00:01:10:00", "01:00:00:00", "01:01:10:00"),
            ("00:10:00:00", "00:10:01:00", "01:01:10:00", "01:01:11:00"),
        ],
        header="FCM: DROP FRAME",
    )
    text = path.read_text().replace(
        "* FROM CLIP NAME:  shot2\n", "* FROM CLIP NAME:  shot2\n* LOC: 00:10:00:15 RED     hit\n"
    )
    path.write_text(text)
    t = read_timeline(path)
    assert (t.rate, t.drop_frame, t.start_frame) == (NTSC, True, 107892)
    # 70 s of DF timecode crossing one minute boundary: 70 * 30 - 2 = 2098 frames
    assert hits(t) == [(2098, "cut"), (2098 + 15, "marker")]
    assert t.duration == 2098 + 30


def test_edl_audio_and_video_tracks_share_the_start(tmp_path):
    path = tmp_path / "av.edl"
    path.write_text(
        "TITLE: av\n"
        "001  AX       V     C        00:00:00:00 00:00:02:00 01:00:01:00 01:00:03:00\n"
        "002  AX       A     C        00:00:00:00 00:00:03:00 01:00:00:00 01:00:03:00\n"
        "* LOC: 00:00:00:12 RED     hit\n"
        "003  BX       V     C        00:00:00:00 00:00:01:00 01:00:03:00 01:00:04:00\n"
    )
    t = read_timeline(path, fps=24)
    # the audio's 01:00:00:00 is the earliest record in; the picture starts a second later
    assert t.start_frame == 86400
    assert spans(t) == [("gap", "gap", 0, 24), ("clip", "001", 24, 72), ("clip", "003", 72, 96)]
    assert hits(t) == [(12, "marker"), (24, "cut"), (72, "cut")]


FCPX = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.9">
  <resources>
    <format id="r1" frameDuration="100/2500s" width="1920" height="1080"/>
    <asset id="r2" name="shot_a" start="0s" duration="10s" hasVideo="1" format="r1"/>
    <asset id="r3" name="shot_b" start="0s" duration="10s" hasVideo="1" format="r1"/>
  </resources>
  <library><event name="ev"><project name="proj">
    <sequence format="r1" duration="4s"><spine>
      <asset-clip ref="r2" offset="0s" name="shot_a" start="1s" duration="2s">
        <marker start="2s" duration="100/2500s" value="hit: boom"/>
      </asset-clip>
      <asset-clip ref="r3" offset="2s" name="shot_b" duration="2s"/>
    </spine></sequence>
  </project></event></library>
</fcpxml>
"""


@pytest.mark.parametrize("name", ["edit.fcpxml", "edit.xml"])
def test_fcpx_xml(tmp_path, name):
    path = tmp_path / name
    path.write_text(FCPX)
    t = read_timeline(path)
    # 25 fps (frameDuration 1/25 s); two 2 s clips: 100 frames, a cut at 50
    assert (t.rate, t.start_frame, t.duration) == (25, 0, 100)
    # the marker at shot_a's source 2 s, which starts at source 1 s: timeline 1 s = 25
    assert hits(t) == [(25, "marker"), (50, "cut")]
    assert t.segments[0].media_start == pytest.approx(1.0)


# --- bare video files -------------------------------------------------------------------------


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@needs_ffmpeg
def test_bare_video_is_a_one_clip_timeline(tmp_path):
    path = tmp_path / "take.mov"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=25:duration=2",
        "-timecode",
        "01:00:00:00",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(path),
    )
    t = read_timeline(path)
    assert (t.rate, t.drop_frame, t.duration) == (25, False, 50)
    assert t.start_frame == 90000  # its 01:00:00:00 timecode at 25 fps
    assert spans(t) == [("clip", "take", 0, 50)]
    assert (t.segments[0].media_path, t.segments[0].media_start) == (str(path), 0.0)
    assert hits(t) == [] and t.warnings == []


@needs_ffmpeg
def test_variable_frame_rate_video_warns(tmp_path):
    path = tmp_path / "phone.mp4"
    # keep 4 frames of every 10 with their original times: 20 frames over 1.76 s
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=25:duration=2",
        "-vf",
        "select='lt(mod(n\\,10)\\,4)'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(path),
    )
    t = read_timeline(path)
    assert t.rate == 25
    assert t.duration == 44  # 1.76 s at the nominal 25 fps
    assert any("variable frame rate" in w for w in t.warnings)


@needs_ffmpeg
def test_media_start_subtracts_the_files_timecode(tmp_path):
    media = tmp_path / "a001.mov"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=24:duration=3",
        "-timecode",
        "10:00:00:00",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(media),
    )
    path = edl(tmp_path, [("10:00:01:00", "10:00:02:00", "01:00:00:00", "01:00:01:00")])
    path.write_text(path.read_text() + f"* FROM CLIP: {media}\n")
    t = read_timeline(path, fps=24)
    assert t.segments[0].media_path == str(media)
    # source in 10:00:01:00 minus the file's own 10:00:00:00: one second into the file
    assert t.segments[0].media_start == pytest.approx(1.0)


@needs_ffmpeg
def test_broken_video_is_bad_input(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all")
    with pytest.raises(BadInput, match="broken.mp4"):
        read_timeline(path)


def test_a_track_trimmed_outside_its_clips_reads_as_flatten_does(tmp_path):
    """A converter wrote the video track's source range in record time (01:00:00:00): read
    literally it shows no clip. OpenTimelineIO's flatten shows the clips, and so do we, with
    a warning; a track trimmed inside its clips is still trimmed."""
    outside = track(clip("a", 0, 48), clip("b", 0, 72), clip("c", 0, 30))
    outside.source_range = tr(86400, 150)
    path = save(tmp_path, outside)
    flat = otio.algorithms.flatten_stack(otio.adapters.read_from_file(str(path)).tracks)
    assert [c.name for c in flat.find_clips()] == ["a", "b", "c"]
    timeline = read_timeline(path)
    assert hits(timeline) == [(48, "cut"), (120, "cut")]
    assert timeline.duration == 150
    assert any("outside its clips" in w and "flatten" in w for w in timeline.warnings)
    inside = track(clip("a", 0, 48), clip("b", 0, 72), clip("c", 0, 30))
    inside.source_range = tr(24, 100)
    trimmed = read_timeline(save(tmp_path, inside, name="inside.otio"))
    assert hits(trimmed) == [(24, "cut"), (96, "cut")] and trimmed.duration == 100
    assert not any("outside its clips" in w for w in trimmed.warnings)
