"""Fitting a tempo to picture, the way film composers do it.

First try constant tempos: rank them by how many hits land on a beat (within a catch
window of frames) and by the mean frames off. Where no constant tempo serves, build a tempo
map that puts each important hit on a beat: between two consecutive anchors (the cue
start, the important hits, the end) choose a whole number of beats whose tempo is inside
the BPM bounds and nearest the target. The meter stays 4/4 throughout: a hit may fall on any
beat of the bar, as it does in a cue written to picture, rather than the bar lines bending
to put every hit on a downbeat.

Tempos are whole microseconds per quarter note (what MIDI stores) and are checked through
the same `timebase` conversions the MIDI writer uses, so "on the beat" here is on the beat
in the file.
"""

from fractions import Fraction

from bridge.timebase import beats_to_seconds, bpm_to_tempo, seconds_to_beats, tempo_to_bpm


def frames_off(hit_seconds, tempo_map, fps) -> list:
    """For each hit, the distance in frames to its nearest beat under the tempo map."""
    out = []
    for t in hit_seconds:
        beat = seconds_to_beats(Fraction(t), tempo_map)
        nearest = round(beat)
        out.append(abs(float(beats_to_seconds(nearest, tempo_map)) - t) * float(fps))
    return out


def rank_constant_tempos(hit_seconds, fps, lo=60.0, hi=180.0, step=0.05, window=1.0, target=None):
    """Every constant tempo in [lo, hi] scored: (hits on a beat, mean frames off, bpm).

    Best first: most hits within `window` frames of a beat, then fewest mean frames off,
    then nearest the target tempo. The beat grid starts at the cue start (second 0).
    """
    if not hit_seconds:
        return []
    target = target or (lo + hi) / 2
    ranked = []
    n = int(round((hi - lo) / step))
    for i in range(n + 1):
        bpm = lo + i * step
        beat = bpm_to_tempo(bpm) / 1_000_000  # seconds per beat as the file will hold it
        offs = []
        for t in hit_seconds:
            phase = (t / beat) % 1.0
            offs.append(min(phase, 1.0 - phase) * beat * fps)
        on = sum(1 for o in offs if o <= window)
        ranked.append((on, sum(offs) / len(offs), bpm))
    ranked.sort(key=lambda r: (-r[0], round(r[1], 3), abs(r[2] - target)))
    return ranked


def important_hits(hits, min_gap_s: float) -> list:
    """The hits a tempo map anchors to: at least `min_gap_s` apart, higher weight first.

    `hits` are (seconds, weight); among hits closer than the gap, the heavier (then the
    earlier) one is kept.
    """
    chosen = []
    for t, w in sorted(hits, key=lambda h: (-h[1], h[0])):
        if all(abs(t - c) >= min_gap_s for c in chosen):
            chosen.append(t)
    return sorted(chosen)


def tempo_map_through(anchors, duration_s, target_bpm, lo=60.0, hi=180.0):
    """A tempo map with a beat at every anchor (seconds > 0, ordered), in one 4/4 meter.

    Returns (tempo_map [(beat, µs per quarter)], time_signatures [(0, 4, 4)],
    downbeats {anchor seconds: its beat}).
    """
    points = [0.0] + [a for a in anchors if 0.0 < a < duration_s] + [duration_s]
    # One meter throughout: an anchor lands on a beat, not necessarily a downbeat, so the
    # bar lines stay regular (a new meter every bar reads as an error in a DAW).
    tempo_map, signatures, downbeats = [], [(0, 4, 4)], {}
    beat = 0
    for start, end in zip(points, points[1:]):
        span = end - start
        # whole beats at a tempo inside the bounds, nearest the target tempo
        best = None
        n_lo, n_hi = max(1, int(span * lo / 60.0)), int(span * hi / 60.0) + 1
        for n in range(n_lo, n_hi + 1):
            bpm = 60.0 * n / span
            if lo <= bpm <= hi:
                score = (abs(bpm - target_bpm) + (0 if n >= 2 else 50), n)
                best = min(best, (score, n, bpm)) if best else (score, n, bpm)
        if best is None:  # a span too short for one beat inside the bounds: one fast beat
            n, bpm = 1, 60.0 / span
        else:
            _, n, bpm = best
        tempo_map.append((beat, bpm_to_tempo(bpm)))
        beat += n
        downbeats[end] = beat
    downbeats.pop(duration_s, None)
    return tempo_map, signatures, downbeats


def fit(hits, duration_s, fps, target_bpm=100.0, lo=60.0, hi=180.0, window=1.0, min_gap_s=1.5):
    """The tempo plan for a cue.

    `hits` are (seconds, weight). A constant tempo is taken when it puts every important
    hit within `window` frames of a beat; otherwise a tempo map puts them on beats.
    Returns a plain dict: mode, tempo_map, time_signatures, bpm (first tempo), hits_on_beat,
    mean_frames_off, frames_off (per hit, in the order given).
    """
    seconds = [t for t, _ in hits]
    anchors = important_hits(hits, min_gap_s)
    result = None
    if anchors:
        for on, _, bpm in rank_constant_tempos(anchors, fps, lo, hi, window=window, target=target_bpm)[:50]:
            tempo_map = [(0, bpm_to_tempo(bpm))]
            if on == len(anchors) and max(frames_off(anchors, tempo_map, fps)) <= window:
                result = {"mode": "constant", "tempo_map": tempo_map, "time_signatures": [(0, 4, 4)]}
                break
    elif not seconds:
        result = {"mode": "constant", "tempo_map": [(0, bpm_to_tempo(target_bpm))], "time_signatures": [(0, 4, 4)]}
    if result is None:
        tempo_map, signatures, _ = tempo_map_through(anchors, duration_s, target_bpm, lo, hi)
        result = {"mode": "map", "tempo_map": tempo_map, "time_signatures": signatures}
    offs = frames_off(seconds, result["tempo_map"], fps)
    result.update(
        {
            "bpm": round(tempo_to_bpm(result["tempo_map"][0][1]), 3),
            "hits_on_beat": sum(1 for o in offs if o <= window),
            "mean_frames_off": round(sum(offs) / len(offs), 3) if offs else 0.0,
            "frames_off": [round(o, 3) for o in offs],
            "anchors": anchors,
        }
    )
    return result


def bars(duration_s, tempo_map, time_signatures) -> list:
    """[(start beat, beats in the bar)] that the time signatures lay out from beat 0 to the
    end of a cue of `duration_s` seconds (a signature is (beat, numerator, denominator))."""
    end = seconds_to_beats(Fraction(duration_s), tempo_map)
    signatures = sorted(time_signatures) or [(0, 4, 4)]
    out, beat, i = [], Fraction(0), 0
    while beat < end:
        while i + 1 < len(signatures) and signatures[i + 1][0] <= beat:
            i += 1
        length = Fraction(signatures[i][1] * 4, signatures[i][2])
        out.append((beat, length))
        beat += length
    return out
