"""The scored edit: the input timeline with the score on an audio track and SB: hit markers.

Any input format comes back as OTIO (an EDL or an XML is written out as OTIO), so an
editor opens the picture and the music together. ScoreBridge's markers are named `SB: …`,
which the timeline reader skips, so scoring the scored edit again sees only the editor's.
"""

from pathlib import Path

import opentimelineio as otio

from bridge import atomic


def write_scored_otio(
    otio_timeline,
    path,
    *,
    rate,
    duration_frames,
    wav_path,
    hits,
    cue,
    sections=(),
    start_frame=0,
    drop_frame=False,
    stems=None,
) -> Path:
    """Add the score to `otio_timeline` (changed in place) and write it to `path` atomically.

    hits: (frame, source, timecode) from the timeline's first frame; sections: (frame, text).
    stems: {role: WAV path}, each put on an audio track of its own after the mix's
    ("SB: 1M1 stem percussion"), aligned with it, for ducking a role under dialogue.
    With no WAV (nothing could render audio) only the markers are added. The start timecode
    and drop-frame flag the edit was read with are written into the OTIO (an EDL's come
    from its record timecodes, which the OTIO does not otherwise keep).
    """
    r = float(rate)
    if otio_timeline.global_start_time is None and start_frame:
        otio_timeline.global_start_time = otio.opentime.RationalTime(start_frame, r)
    if drop_frame:
        otio_timeline.metadata["drop_frame"] = True
    stack = otio_timeline.tracks
    # frames of the stack's own time where the picture's first frame lies
    origin = stack.source_range.start_time.rescaled_to(r).value if stack.source_range else 0
    if wav_path is not None:
        tracks = [(f"SB: {cue} score", f"SB: {cue}", wav_path, "mix")]
        tracks += [(f"SB: {cue} stem {role}", f"SB: {cue} {role}", stem, role) for role, stem in (stems or {}).items()]
        length = otio.opentime.RationalTime(duration_frames, r)
        for track_name, clip_name, wav, role in tracks:
            reference = otio.schema.ExternalReference(
                target_url=Path(wav).resolve().as_uri(),
                available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, r), length),
            )
            track = otio.schema.Track(name=track_name, kind=otio.schema.TrackKind.Audio)
            track.metadata["scorebridge"] = {"kind": "stem" if role != "mix" else "mix", "role": role}
            if origin:
                track.append(otio.schema.Gap(duration=otio.opentime.RationalTime(origin, r)))
            track.append(
                otio.schema.Clip(
                    name=clip_name,
                    media_reference=reference,
                    source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, r), length),
                )
            )
            stack.append(track)
    marks = [(0, f"SB: cue {cue}", otio.schema.MarkerColor.PURPLE, {"kind": "cue", "cue": cue})]
    marks += [(frame, f"SB: {text}", otio.schema.MarkerColor.BLUE, {"kind": "section"}) for frame, text in sections]
    marks += [
        (
            frame,
            f"SB: hit {source} {timecode}",
            otio.schema.MarkerColor.RED,
            {"kind": "hit", "source": source, "frame": frame},
        )
        for frame, source, timecode in hits
    ]
    for frame, name, color, data in marks:
        marker = otio.schema.Marker(
            name=name,
            color=color,
            marked_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(origin + frame, r), otio.opentime.RationalTime(0, r)
            ),
        )
        marker.metadata["scorebridge"] = data
        stack.markers.append(marker)
    return atomic.write_text(path, otio.adapters.write_to_string(otio_timeline, "otio_json"))
