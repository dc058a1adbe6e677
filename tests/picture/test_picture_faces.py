"""The face path: the cascade finds a face, the expression CNN reads it, analysis uses it."""

import numpy as np
import pytest
from helpers import videos

from bridge.picture import analyze_timeline, faces

pytestmark = pytest.mark.skipif(not faces.available(), reason="face expression model not installed")


@pytest.fixture(scope="module")
def reader():
    return faces.FaceReader()


def test_cascade_finds_the_face_and_nothing_in_a_plain_picture(reader):
    picture = np.full((180, 320), 90, np.uint8)
    picture[30:150, 100:220] = videos.face_image(40)
    boxes = reader.find(picture)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert abs(x + w / 2 - 160) < 10 and abs(y + h / 2 - 90) < 10  # centred on the face
    noise = np.random.default_rng(1).integers(0, 255, (180, 320)).astype(np.uint8)
    assert reader.find(np.full((180, 320), 90, np.uint8)) == [] and reader.find(noise) == []


def test_expression_network_gives_a_distribution_that_depends_on_the_face(reader):
    a = reader.classify(videos.face_image(40, mouth=1.0))
    b = reader.classify(videos.face_image(40, mouth=-1.0))
    c = reader.classify(np.full((48, 48), 128, np.uint8))
    for p in (a, b, c):
        assert p.shape == (len(faces.LABELS),) and p.sum() == pytest.approx(1.0) and (p >= 0).all()
    assert np.abs(a - b).sum() > 1e-3 and np.abs(a - c).sum() > 1e-3


def test_analysis_takes_emotion_from_faces_when_they_fill_the_shot(tmp_path_factory):
    path = videos.face_video(videos.video_folder(tmp_path_factory))
    result = analyze_timeline(videos.one_clip_timeline(path, 50), use_cache=False)
    (section,) = result["sections"]
    assert section.source == "faces"
    assert set(section.emotion) == set(faces.LABELS)
    assert sum(section.emotion.values()) == pytest.approx(1.0, abs=1e-3)
    assert section.features["face_coverage"] >= 0.5
