"""The scored OTIO: the edit as it was, the score on an audio track from the first frame,
SB: markers on the hits, and nothing that a second read would take for the editor's own."""

from pathlib import Path

import opentimelineio as otio

from bridge.render.otio_out import write_scored_otio
from bridge.timebase import frames_to_timecode
from bridge.timeline import read_otio, read_timeline
from helpers.scoring import edit

EDL = """TITLE: scoring test
FCM: NON-DROP FRAME

001  A001     V     C        00:00:00:00 00:00:02:00 01:00:00:00 01:00:02:00
* FROM CLIP NAME: a.mov
002  A002     V     C        00:00:10:00 00:00:13:05 01:00:02:00 01:00:05:05
* FROM CLIP NAME: b.mov
003  A003     V     C        00:00:20:00 00:00:21:00 01:00:05:05 01:00:06:05
* FROM CLIP NAME: c.mov
"""


def _score_it(source, out, wav, fps=None):
    timeline = read_timeline(source, fps=fps)
    hits = [
        (h.frame, h.source, frames_to_timecode(timeline.start_frame + h.frame, timeline.rate, timeline.drop_frame))
        for h in timeline.hits
    ]
    write_scored_otio(
        read_otio(source, fps=fps),
        out,
        rate=timeline.rate,
        duration_frames=timeline.duration,
        wav_path=wav,
        hits=hits,
        cue="1M1",
        sections=[(0, "1M1 section 1: D minor")],
        start_frame=timeline.start_frame,
        drop_frame=timeline.drop_frame,
    )
    return timeline


def test_round_trip_audio_clip_and_markers(tmp_path):
    rate = 24000 / 1001
    source = edit(tmp_path / "cut.otio", rate=rate, clips=(48, 73, 31), start_frame=86400, markers=[(100, "hit")])
    wav = tmp_path / "cut.wav"
    timeline = _score_it(source, tmp_path / "cut.scored.otio", wav)
    scored = otio.adapters.read_from_file(str(tmp_path / "cut.scored.otio"))
    audio = [t for t in scored.tracks if t.kind == otio.schema.TrackKind.Audio]
    assert len(audio) == 1 and audio[0].name == "SB: 1M1 score"
    (clip,) = audio[0].find_clips()
    placed = clip.range_in_parent()
    assert placed.start_time.value == 0 and placed.duration.value == timeline.duration == 152
    assert abs(placed.duration.rate - rate) < 1e-9
    assert Path(clip.media_reference.target_url.replace("file://", "")) == wav.resolve()
    assert scored.global_start_time.value == 86400  # the start timecode is the edit's
    hits = [m for m in scored.tracks.markers if m.name.startswith("SB: hit")]
    assert [(m.marked_range.start_time.value, m.metadata["scorebridge"]["source"]) for m in hits] == [
        (48, "cut"),
        (100, "marker"),
        (121, "cut"),
    ]
    assert hits[0].name == "SB: hit cut 01:00:02:00"
    assert any(m.name == "SB: cue 1M1" for m in scored.tracks.markers)
    # read again: the same picture, cuts and markers; ScoreBridge's own markers are skipped
    again = read_timeline(tmp_path / "cut.scored.otio")
    assert (again.hits, again.markers, again.segments) == (timeline.hits, timeline.markers, timeline.segments)


def test_edl_comes_back_as_otio(tmp_path):
    source = tmp_path / "cut.edl"
    source.write_text(EDL)
    timeline = _score_it(source, tmp_path / "cut.scored.otio", tmp_path / "cut.wav", fps=25)
    again = read_timeline(tmp_path / "cut.scored.otio")
    assert [h.frame for h in again.hits] == [h.frame for h in timeline.hits] == [50, 130]
    assert again.duration == timeline.duration == 155 and again.start_frame == timeline.start_frame
    scored = otio.adapters.read_from_file(str(tmp_path / "cut.scored.otio"))
    assert [t.kind for t in scored.tracks].count(otio.schema.TrackKind.Audio) == 1


def test_without_audio_only_markers_are_added(tmp_path):
    source = edit(tmp_path / "cut.otio", clips=(24, 24))
    _score_it(source, tmp_path / "cut.scored.otio", None)
    scored = otio.adapters.read_from_file(str(tmp_path / "cut.scored.otio"))
    assert [t.kind for t in scored.tracks] == [otio.schema.TrackKind.Video]
    assert [m.name for m in scored.tracks.markers] == [
        "SB: cue 1M1",
        "SB: 1M1 section 1: D minor",
        "SB: hit cut 00:00:01:00",
    ]
