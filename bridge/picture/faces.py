"""Faces and their expressions: a Haar cascade finds faces, a small CNN reads them.

Faces are found with OpenCV's CascadeClassifier and its frontal-face cascade (OpenCV 4.x;
OpenCV 5 moved the cascades out, so the project pins opencv < 5).

The classifier is the 7-class FER2013 network shipped inside the `what_the_face_classification`
wheel (3 conv + 3 linear layers, 48x48 grey input, 4.3 M parameters). Its package imports
torchvision at the top of inference.py only to preprocess; we do that ourselves (crop the
face, scale to 48x48, grey, [0, 1]) and load its state_dict into the class from its model.py.
torch is imported only once a face has been found, so footage without faces never pays for it.
"""

import importlib.util
import os

import cv2
import numpy as np

# The network's class order, renamed to the Ekman words used everywhere else.
LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
FACE_WIDTH = 320  # frames sampled for faces are scaled down to at most this width
SAMPLES_PER_SECOND = 2.0


def _package_dir():
    spec = importlib.util.find_spec("what_the_face_classification")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _cascade_path():
    """The frontal-face cascade from OpenCV's data folder, else the one the face wheel ships."""
    name = "haarcascade_frontalface_default.xml"
    for folder in (getattr(getattr(cv2, "data", None), "haarcascades", None), _package_dir()):
        if folder and os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def available() -> bool:
    """Whether the expression model's weights and a face cascade are installed."""
    folder = _package_dir()
    return (
        folder is not None and os.path.isfile(os.path.join(folder, "active_model.pth")) and _cascade_path() is not None
    )


class FaceReader:
    """Finds faces in a BGR frame and returns the expression probabilities of the largest one."""

    def __init__(self):
        self.cascade = load_cascade()
        self.net = None

    def find(self, gray: np.ndarray):
        """Face boxes (x, y, w, h) in a grey image, searched at FACE_WIDTH for speed and
        returned in the image's own pixels. Faces under a sixth of the height are ignored:
        the 48x48 classifier cannot read them."""
        h, w = gray.shape[:2]
        scale = min(1.0, FACE_WIDTH / w)
        # No histogram equalisation: the cascade divides every window by its own contrast.
        small = cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        min_side = max(24, small.shape[0] // 6)
        boxes = self.cascade.detectMultiScale(small, scaleFactor=1.2, minNeighbors=5, minSize=(min_side, min_side))
        return [tuple(int(round(v / scale)) for v in b) for b in boxes]

    def expression(self, frame: np.ndarray):
        """Probabilities over LABELS for the largest face in a BGR frame, or None without a face."""
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        boxes = self.find(gray)
        if not boxes:
            return None
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        return self.classify(gray[y : y + h, x : x + w])

    def classify(self, face_gray: np.ndarray) -> np.ndarray:
        """Probabilities over LABELS for one grey face crop (any size)."""
        import torch

        if self.net is None:
            self.net = load_network()
        crop = cv2.resize(face_gray, (48, 48), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(crop.astype(np.float32) / 255.0).reshape(1, 1, 48, 48)
        with torch.no_grad():
            return torch.softmax(self.net(x), dim=1)[0].numpy().astype(np.float64)


def load_cascade():
    return cv2.CascadeClassifier(_cascade_path())


def load_network():
    """The expression CNN with its shipped weights, in eval mode."""
    import torch
    from what_the_face_classification.model import SimpleConvolutionalNetwork

    # Architecture as the package's inference.py builds it: 1->28->56->112 channels, 3x3
    # kernels, no padding; 48 -> 23 -> 10 -> 4 after conv+pool, so 4*4*112 features.
    net = SimpleConvolutionalNetwork(3, [[1, 28], [28, 56], [56, 112]], [3, 3, 3], [0, 0, 0], 304, 4 * 4 * 112)
    weights = os.path.join(_package_dir(), "active_model.pth")
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()
