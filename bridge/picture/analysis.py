"""Picture analysis of a timeline: sections with valence/arousal, and cuts found inside clips.

One pass per clip: each frame of the clip's source range is decoded once, scaled down once,
and handed to every consumer (cut finder, cue meter, and every 1/SAMPLES_PER_SECOND s the
face reader). The per-frame results of a clip are cached on disk by media identity and
source range; sections are then cut from them at edit points, detected cuts, mood markers
and tacet edges, and each gets its emotion from the estimators in emotion.py.
"""

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from bridge.picture import cache, faces
from bridge.picture.cues import AUDIO_BLOCKS, CueMeter, audio_energy, cut_rate, loudness_db, summarise
from bridge.picture.emotion import DefaultEstimator, FaceEstimator, MarkerEstimator, PictureEstimator, Span, combine
from bridge.picture.scenes import CutFinder
from bridge.picture.video import MediaError, RangeReader, probe, small_size
from bridge.timeline.markers import tacet_spans
from bridge.timebase import frames_to_seconds, seconds_to_frame
from bridge.timeline import Hit, Timeline

ANALYSIS_VERSION = 1
STAGES = ("decode", "detection", "cues", "faces", "audio")


@dataclass
class Section:
    start: int  # timeline frames, end exclusive
    end: int
    valence: float  # [-1, 1]
    arousal: float  # [-1, 1]
    emotion: dict = field(default_factory=dict)  # Ekman probabilities; {} when no face was read
    source: str = "default"  # "faces" | "picture" | "marker" | "default"
    tacet: bool = False
    features: dict = field(default_factory=dict)  # the cue values measured (see cues.py)
    segment: int = 0  # index into timeline.segments


def analyze_timeline(timeline: Timeline, progress=None, use_cache=True) -> dict:
    """Sections, detected cuts (as Hit(frame, "detected")) and warnings for a timeline.

    Also returns "timings" (seconds per stage) and "frames" (frames decoded), for the benchmark
    and the manifest. Clips whose media are missing (read_timeline reports those) or
    unreadable (one warning per file here) get sections estimated from the cuts alone.
    """
    report = progress or (lambda fraction, stage: None)
    warnings, timings = [], dict.fromkeys(STAGES, 0.0)
    clips = _clips_with_media(timeline, warnings)
    reader = None
    if clips and faces.available():
        reader = faces.FaceReader()
    elif clips:
        warnings.append("face expression model not installed: emotion from picture cues only")

    total = sum(seg.record_end - seg.record_start for seg, _ in clips.values()) or 1
    done = 0
    analysed, memo, frames = {}, {}, 0
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # frames are small: OpenCV's thread pool costs more than it saves
    try:
        for index, (seg, info) in clips.items():
            length = seg.record_end - seg.record_start
            start = seg.media_start
            duration = frames_to_seconds(length, timeline.rate)

            def tick(fraction, name=seg.name, base=done, length=length):
                report(min(1.0, (base + fraction * length) / total) * 0.95, f"picture: {name}")

            mkey = (info.path, round(start, 6), round(duration, 6))
            if mkey not in memo:
                try:
                    memo[mkey] = _analyze_clip(info, start, duration, reader, use_cache, tick, timings)
                    frames += int(memo[mkey].get("decoded", 0))
                except (MediaError, cv2.error) as exc:
                    memo[mkey] = None
                    warnings.append(
                        str(exc) if isinstance(exc, MediaError) else f"cannot decode media {info.path}: {exc}"
                    )
            result = memo[mkey]
            if result is not None:
                analysed[index] = result
                warnings.extend(str(w) for w in result["warnings"] if str(w) not in warnings)
            done += length
    finally:
        cv2.setNumThreads(threads)
    report(0.95, "sections")
    sections, detected = _sections(timeline, analysed)
    report(1.0, "done")
    return {"sections": sections, "detected_hits": detected, "warnings": warnings, "timings": timings, "frames": frames}


def _clips_with_media(timeline, warnings):
    """{segment index: (segment, MediaInfo)} for clips whose media can be read; one warning
    per unreadable file (clips that name no file are reported by the timeline reader)."""
    found, probed = {}, {}
    for index, seg in enumerate(timeline.segments):
        if seg.kind != "clip" or seg.record_end <= seg.record_start:
            continue
        if not seg.media_path:  # read_timeline reports these (the reader owns media warnings)
            continue
        if seg.media_path not in probed:
            try:
                # A missing file is no error here: read_timeline has relinked what it could
                # (--media-root) and reported the rest; its clips get default sections.
                probed[seg.media_path] = probe(seg.media_path) if os.path.isfile(seg.media_path) else None
            except MediaError as exc:
                probed[seg.media_path] = None
                warnings.append(str(exc))
        if probed[seg.media_path] is not None:
            found[index] = (seg, probed[seg.media_path])
    return found


def _analyze_clip(info, start, duration, reader, use_cache, tick, timings):
    """Per-frame analysis of one source range: from the cache, or decoded once and stored."""
    # Results without the face model must not stand in for results with it, and vice versa.
    version = f"{ANALYSIS_VERSION}" if reader is not None else f"{ANALYSIS_VERSION}-nofaces"
    name = cache.key(info.path, start, duration, version) if use_cache else None
    if name:
        hit = cache.load(name)
        if hit is not None and int(hit.get("version", -1)) == ANALYSIS_VERSION:
            tick(1.0)
            hit["decoded"] = 0
            return hit
    result = _decode_and_measure(info, start, duration, reader, tick, timings)
    if name:
        cache.store(name, result)
    result["decoded"] = len(result["times"])
    return result


def _decode_and_measure(info, start, duration, reader, tick, timings):
    """Decode the range once; every frame feeds the cut finder and the cue meter, a few per
    second the face reader. Returns the per-frame arrays the cache stores."""
    fps = info.fps
    size = small_size(info.width, info.height)
    finder, meter = CutFinder(fps), CueMeter(fps)
    times, face_times, face_probs = [], [], []
    next_sample = 0.0
    expected = max(1, int(round(duration * fps)))
    frames = RangeReader(info, start, duration)
    clock = time.perf_counter
    it = iter(frames)
    while True:
        t0 = clock()
        try:
            t, frame = next(it)
        except StopIteration:
            break
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        t1 = clock()
        finder.process(len(times), small)
        t2 = clock()
        meter.process(small)
        t3 = clock()
        timings["decode"] += t1 - t0
        timings["detection"] += t2 - t1
        timings["cues"] += t3 - t2
        if reader is not None and t >= next_sample:
            probs = reader.expression(frame)
            face_times.append(t)
            face_probs.append(probs if probs is not None else np.full(len(faces.LABELS), np.nan))
            next_sample = (np.floor(t * faces.SAMPLES_PER_SECOND) + 1) / faces.SAMPLES_PER_SECOND
            timings["faces"] += clock() - t3
        times.append(t)
        if len(times) % 50 == 0:
            tick(min(1.0, len(times) / expected))
    if not times:
        raise MediaError(f"no frames decoded from {info.path} between {start:.2f} s and {start + duration:.2f} s")
    t0 = clock()
    cuts = finder.cuts()
    t1 = clock()
    energy = audio_energy(info.path, start, duration)
    timings["detection"] += t1 - t0
    timings["audio"] += clock() - t1
    warnings = []
    if frames.vfr:
        warnings.append(f"variable frame rate in {info.path}: frames placed by their timestamps")
    if times[-1] < duration - 2.0 / fps:
        warnings.append(f"media {info.path} ends {duration - times[-1]:.2f} s before the clip's source range does")
    return {
        "version": np.array(ANALYSIS_VERSION),
        "fps": np.array(fps),
        "times": np.array(times, dtype=np.float64),
        "cues": meter.values(),
        "cuts": np.array(cuts, dtype=np.int64),
        "face_times": np.array(face_times, dtype=np.float64),
        "face_probs": np.array(face_probs, dtype=np.float64).reshape(len(face_times), len(faces.LABELS)),
        "audio": energy if energy is not None else np.zeros(0),
        "has_audio": np.array(energy is not None),
        "warnings": np.array(warnings, dtype=str),
    }


def _sections(timeline, analysed):
    """Split every segment at detected cuts, mood/va markers and tacet edges; estimate each piece."""
    rate = timeline.rate
    detected = []
    for index, result in analysed.items():
        seg = timeline.segments[index]
        for c in result["cuts"]:
            frame = seg.record_start + seconds_to_frame(float(result["times"][c]), rate)
            if seg.record_start < frame < seg.record_end:
                detected.append(frame)
    edits = {seg.record_start for seg in timeline.segments} | set(detected)
    edit_seconds = sorted(frames_to_seconds(f, rate) for f in edits)
    total_seconds = frames_to_seconds(timeline.duration, rate)
    tacets = tacet_spans(timeline.markers, timeline.duration)
    splits = set(detected)
    splits |= {m.frame for m in timeline.markers if m.kind in ("mood", "va")}
    splits |= {f for span in tacets for f in span}

    estimators = [MarkerEstimator(timeline.markers), FaceEstimator(), PictureEstimator(), DefaultEstimator()]
    sections = []
    for index, seg in enumerate(timeline.segments):
        edges = sorted(
            {seg.record_start, seg.record_end} | {f for f in splits if seg.record_start < f < seg.record_end}
        )
        for start, end in zip(edges, edges[1:]):
            centre = frames_to_seconds(Fraction(start + end, 2), rate)
            features = {"cut_rate": cut_rate(edit_seconds, centre, total_seconds)}
            span = Span(start, end, kind=seg.kind, features=features)
            if index in analysed:
                _measure(span, seg, analysed[index], rate)
            est = combine(e.estimate(span) for e in estimators)
            sections.append(
                Section(
                    start=start,
                    end=end,
                    valence=float(round(est.valence, 4)),
                    arousal=float(round(est.arousal, 4)),
                    emotion={k: float(round(v, 4)) for k, v in est.emotion.items()},
                    source=est.source,
                    tacet=any(a <= start < b for a, b in tacets),
                    features={k: float(round(v, 5)) for k, v in span.features.items()},
                    segment=index,
                )
            )
    hits = [Hit(frame, "detected") for frame in sorted(set(detected))]
    return sections, hits


def _measure(span, seg, result, rate):
    """Fill a span's features and face samples from its clip's per-frame analysis."""
    times = result["times"]
    # Source time t lands on timeline frame record_start + round(t * rate), so frame k covers
    # source times from (k - 1/2) / rate to (k + 1/2) / rate.
    lo_t = frames_to_seconds(Fraction(2 * (span.start - seg.record_start) - 1, 2), rate)
    hi_t = frames_to_seconds(Fraction(2 * (span.end - seg.record_start) - 1, 2), rate)
    lo, hi = np.searchsorted(times, [lo_t, hi_t], side="left")
    if hi <= lo:  # shorter than a source frame: use the nearest one
        lo = min(int(lo), len(times) - 1)
        hi = lo + 1
    cuts = [int(c) - lo for c in result["cuts"] if lo <= c < hi]
    span.features.update(summarise(result["cues"][lo:hi], cut_frames=cuts))
    if bool(result["has_audio"]) and len(result["audio"]):
        blocks = result["audio"]
        b0 = int(max(0.0, lo_t) * AUDIO_BLOCKS)
        b1 = max(b0 + 1, int(np.ceil(max(0.0, hi_t) * AUDIO_BLOCKS)))
        span.features["loudness"] = loudness_db(blocks[min(b0, len(blocks) - 1) : b1])
    in_span = (result["face_times"] >= lo_t) & (result["face_times"] < hi_t)
    probs = result["face_probs"][in_span]
    span.samples = int(in_span.sum())
    span.faces = [dict(zip(faces.LABELS, (float(p) for p in row))) for row in probs if not np.isnan(row).any()]
    if span.samples:
        span.features["face_coverage"] = len(span.faces) / span.samples
