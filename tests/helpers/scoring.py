"""Helpers for the scoring tests: a tiny untrained music model and small OTIO edits.

The model has random weights (the tests check the constraints, not the music), and a short
context so that a few seconds of music already slide the window.
"""

import opentimelineio as otio
import torch

from bridge.music.model import MusicConfig, MusicTransformer


def tiny_model(seed=0, block_size=96):
    torch.manual_seed(seed)
    # A random condition path (not the zero start of a training run), so the conditions
    # change what even this untrained model writes.
    cfg = MusicConfig(n_layer=1, n_head=2, n_embd=64, n_cond=16, block_size=block_size, cond_zero_init=False)
    return MusicTransformer(cfg).eval()


TINY_INFO = {"name": "tiny-untrained", "sha256": None}


def edit(
    path, rate=24, clips=(48, 72, 30), start_frame=None, markers=(), media=None, drop_frame=None, media_starts=None
):
    """Write a one-track OTIO edit with clips of the given lengths (frames); markers are
    (frame, name) or (frame, name, duration)."""
    tl = otio.schema.Timeline(name="scoring test")
    if drop_frame is not None:
        tl.metadata["drop_frame"] = drop_frame
    if start_frame is not None:
        tl.global_start_time = otio.opentime.RationalTime(start_frame, rate)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    offset = 0
    for i, n in enumerate(clips):
        start = media_starts[i] if media_starts else offset
        ref = otio.schema.ExternalReference(target_url=str(media)) if media else otio.schema.MissingReference()
        track.append(
            otio.schema.Clip(
                name=f"c{i}",
                media_reference=ref,
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(n, rate)
                ),
            )
        )
        offset += n
    for frame, name, *duration in markers:
        tl.tracks.markers.append(
            otio.schema.Marker(
                name=name,
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(frame, rate),
                    otio.opentime.RationalTime(duration[0] if duration else 0, rate),
                ),
            )
        )
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(path))
    return path
