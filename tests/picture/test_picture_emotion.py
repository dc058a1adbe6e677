"""Valence/arousal: the Ekman table, the cue formulas, the combination rule, and real footage."""

from fractions import Fraction

import pytest
from helpers import videos

from bridge.picture import analyze_timeline
from bridge.picture.emotion import (
    EKMAN_VA,
    Estimate,
    FaceEstimator,
    PictureEstimator,
    Span,
    combine,
    cut_arousal,
    ekman_to_va,
    loudness_arousal,
    motion_arousal,
    picture_arousal,
    picture_valence,
)
from bridge.timeline import Clip, Timeline


def test_ekman_table_is_emsyncs():
    assert EKMAN_VA["joy"] == (0.76, 0.48)
    assert EKMAN_VA["sadness"] == (-0.63, -0.27)
    assert EKMAN_VA["fear"] == (-0.64, 0.60)
    assert EKMAN_VA["neutral"] == (0.0, 0.0)


def test_ekman_to_va_is_the_probability_weighted_mean():
    assert ekman_to_va({"joy": 1.0}) == pytest.approx((0.76, 0.48))
    assert ekman_to_va({"neutral": 1.0}) == (0.0, 0.0)
    assert ekman_to_va({"anger": 0.5, "neutral": 0.5}) == pytest.approx((-0.255, 0.295))
    # Probabilities that do not sum to one are renormalised.
    assert ekman_to_va({"surprise": 2.0, "sadness": 2.0}) == pytest.approx((-0.115, 0.2))


DARK = {
    "brightness": 0.08,
    "saturation": 0.05,
    "colourfulness": 3.0,
    "colour_temperature": 8000.0,
    "motion": 0.001,
    "cut_rate": 3.0,
    "loudness": -60.0,
}
BRIGHT = {
    "brightness": 0.65,
    "saturation": 0.7,
    "colourfulness": 90.0,
    "colour_temperature": 5000.0,
    "motion": 0.09,
    "cut_rate": 40.0,
    "loudness": -16.0,
}


def test_cue_formulas_put_dark_still_low_and_bright_fast_high():
    assert picture_valence(DARK) < -0.8 and picture_valence(BRIGHT) > 0.8
    assert picture_arousal(DARK) < -0.8 and picture_arousal(BRIGHT) > 0.7
    assert motion_arousal(0.02) == pytest.approx(0.0) and motion_arousal(0.0) == -1.0
    assert cut_arousal(15.0) == pytest.approx(0.0) and cut_arousal(60.0) == pytest.approx(1.0)
    assert loudness_arousal(-28.0) == pytest.approx(0.0) and loudness_arousal(-90.0) == -1.0
    # Without sound, arousal comes from motion and cut rate alone.
    silent = dict(BRIGHT, loudness=None)
    assert picture_arousal(silent) == pytest.approx((0.5 * 1.0 + 0.3 * cut_arousal(40.0)) / 0.8)


def test_combine_marker_wins_then_faces_by_coverage_then_default():
    picture = Estimate(0.5, 0.5, "picture", 1.0)
    assert combine([picture, Estimate(-0.7, 0.9, "marker")]).source == "marker"
    span = Span(0, 10, features=dict(BRIGHT))
    sad = {"sadness": 1.0, "anger": 0, "disgust": 0, "fear": 0, "joy": 0, "surprise": 0, "neutral": 0}
    # Faces in 3 of 4 samples outweigh the picture; in 1 of 4 they only pull it.
    span.faces, span.samples = [sad] * 3, 4
    mostly = combine([FaceEstimator().estimate(span), PictureEstimator().estimate(span)])
    span.faces = [sad]
    rarely = combine([FaceEstimator().estimate(span), PictureEstimator().estimate(span)])
    assert mostly.source == "faces" and rarely.source == "picture"
    assert mostly.valence < rarely.valence < picture_valence(BRIGHT)
    assert mostly.emotion["sadness"] == 1.0
    marked = combine([Estimate(-0.7, 0.9, "marker"), FaceEstimator().estimate(span)])
    assert (marked.source, marked.valence, marked.emotion["sadness"]) == ("marker", -0.7, 1.0)
    fallback = combine([None, Estimate(0.0, 0.2, "default", 0.0)])
    assert (fallback.source, fallback.valence) == ("default", 0.0)


@pytest.fixture(scope="module")
def mood_result(tmp_path_factory):
    path = videos.mood_video(videos.video_folder(tmp_path_factory))
    segments = [
        Clip("dark", 0, 50, media_path=str(path), media_start=0.0, media_rate=25),
        Clip("bright", 50, 100, media_path=str(path), media_start=2.0, media_rate=25),
    ]
    tl = Timeline("mood", "/tmp/mood.otio", Fraction(25), False, 0, 100, segments)
    return analyze_timeline(tl, use_cache=False)


def test_dark_still_footage_scores_below_bright_fast_footage(mood_result):
    dark, bright = mood_result["sections"]
    assert (dark.source, bright.source) == ("picture", "picture")
    assert dark.valence < -0.3 < 0.3 < bright.valence
    assert dark.arousal < 0.0 < bright.arousal
    assert dark.features["motion"] < bright.features["motion"]
    assert dark.features["loudness"] < bright.features["loudness"]
    assert dark.emotion == {} and bright.emotion == {}
