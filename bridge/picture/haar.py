"""A Viola-Jones Haar cascade detector in numpy, for OpenCV builds without CascadeClassifier.

OpenCV 5 moved the Haar cascades out of the main package, but the trained cascade
(haarcascade_frontalface_default.xml, old-style stump format) still ships with the face
expression wheel. This evaluates it the way OpenCV's detectMultiScale does: an image
pyramid scaled by `scaleFactor`, a fixed 24x24 window stepped over each level, each
feature's weighted rectangle sums divided by the window's area x standard deviation (on the
window less a 1 px border) and compared to the node threshold, a stage passed when its
summed leaf values reach the stage threshold; hits are grouped like groupRectangles.
All windows of a level are evaluated together, so the cost is a few numpy calls per stage.
"""

import xml.etree.ElementTree as ET

import cv2
import numpy as np


MIN_STD = 8.0


class HaarCascade:
    def __init__(self, path):
        root = ET.parse(path).getroot()
        cascade = next(iter(root))
        self.width, self.height = (int(v) for v in cascade.find("size").text.split())
        self.stages = [self._read_stage(stage) for stage in cascade.find("stages")]

    @staticmethod
    def _read_stage(stage):
        rects, owner, thresholds, left, right = [], [], [], [], []
        for index, tree in enumerate(stage.find("trees")):
            nodes = list(tree)
            if len(nodes) != 1 or nodes[0].find("left_val") is None:
                raise ValueError("only stump cascades are supported")
            node = nodes[0]
            feature = node.find("feature")
            if feature.findtext("tilted", "0").strip() != "0":
                raise ValueError("tilted Haar features are not supported")
            for r in feature.find("rects"):
                x, y, w, h, weight = (float(v) for v in r.text.split())
                rects.append((int(x), int(y), int(w), int(h), weight))
                owner.append(index)
            thresholds.append(float(node.findtext("threshold")))
            left.append(float(node.findtext("left_val")))
            right.append(float(node.findtext("right_val")))
        rects = np.array(rects)
        owner = np.array(owner)
        return {
            "x": rects[:, 0].astype(np.int64), "y": rects[:, 1].astype(np.int64),
            "w": rects[:, 2].astype(np.int64), "h": rects[:, 3].astype(np.int64),
            "weight": rects[:, 4],
            "starts": np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]),
            "threshold": np.array(thresholds), "left": np.array(left), "right": np.array(right),
            "pass": float(stage.findtext("stage_threshold")) - 1e-5,
        }

    def detectMultiScale(self, gray, scaleFactor=1.2, minNeighbors=5, minSize=(24, 24)):  # noqa: N803
        """Face boxes (x, y, w, h) in an 8-bit grey image; the same call and result as
        cv2.CascadeClassifier.detectMultiScale, so either serves the face reader."""
        hits = []
        factor = max(1.0, minSize[0] / self.width)
        while True:
            w = int(round(gray.shape[1] / factor))
            h = int(round(gray.shape[0] / factor))
            if w < self.width + 2 or h < self.height + 2:
                break
            level = cv2.resize(gray, (w, h), interpolation=cv2.INTER_LINEAR) if factor > 1 else gray
            for x, y in self._detect_level(level):
                hits.append((x * factor, y * factor, self.width * factor, self.height * factor))
            factor *= scaleFactor
        return group_rectangles(hits, minNeighbors)

    def _detect_level(self, img, step=2):
        s, sq = cv2.integral2(img, sdepth=cv2.CV_32S, sqdepth=cv2.CV_64F)
        stride = s.shape[1]
        flat, flat_sq = s.ravel(), sq.ravel()
        ys, xs = np.mgrid[0:img.shape[0] - self.height:step, 0:img.shape[1] - self.width:step]
        base = (ys * stride + xs).ravel()
        # Normalisation window: the detection window less a 1 px border.
        nw, nh = self.width - 2, self.height - 2
        tl = stride + 1
        corners = (tl + nh * stride + nw, tl + nw, tl + nh * stride, tl)
        area = nw * nh
        total = (flat[base + corners[0]] - flat[base + corners[1]]
                 - flat[base + corners[2]] + flat[base + corners[3]]).astype(np.float64)
        total_sq = (flat_sq[base + corners[0]] - flat_sq[base + corners[1]]
                    - flat_sq[base + corners[2]] + flat_sq[base + corners[3]])
        norm = area * total_sq - total * total
        norm = np.where(norm > 0, np.sqrt(np.maximum(norm, 0)), 1.0)
        # A window of nearly flat grey (std below MIN_STD levels) holds no face; skipping
        # them saves most of the work on plain backgrounds.
        textured = norm > MIN_STD * area
        base, norm = base[textured], norm[textured]
        for st in self.stages:
            if len(base) == 0:
                break
            r_tl = st["y"] * stride + st["x"]
            r_tr = r_tl + st["w"]
            r_bl = r_tl + st["h"] * stride
            r_br = r_bl + st["w"]
            b = base[:, None]
            sums = flat[b + r_br] - flat[b + r_tr] - flat[b + r_bl] + flat[b + r_tl]
            values = np.add.reduceat(sums * st["weight"], st["starts"], axis=1)
            leaves = np.where(values < st["threshold"] * norm[:, None], st["left"], st["right"])
            keep = leaves.sum(axis=1) >= st["pass"]
            base, norm = base[keep], norm[keep]
        return [(int(p % stride), int(p // stride)) for p in base]


def group_rectangles(rects, min_neighbors, eps=0.2):
    """Cluster similar boxes and keep the mean box of clusters with more than `min_neighbors`
    members, dropping a box that lies inside a stronger one (OpenCV's groupRectangles)."""
    n = len(rects)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            a, b = rects[i], rects[j]
            delta = eps * (min(a[2], b[2]) + min(a[3], b[3])) * 0.5
            if (abs(a[0] - b[0]) <= delta and abs(a[1] - b[1]) <= delta
                    and abs(a[0] + a[2] - b[0] - b[2]) <= delta and abs(a[1] + a[3] - b[1] - b[3]) <= delta):
                parent[find(i)] = find(j)
    clusters = {}
    for i in range(n):
        clusters.setdefault(find(i), []).append(rects[i])
    groups = [(len(m), np.mean(m, axis=0)) for m in clusters.values() if len(m) > min_neighbors]
    kept = []
    for count, box in groups:
        inside = False
        for other_count, other in groups:
            if other is box:
                continue
            dx, dy = other[2] * eps, other[3] * eps
            if (other_count > max(3, count) and box[0] >= other[0] - dx and box[1] >= other[1] - dy
                    and box[0] + box[2] <= other[0] + other[2] + dx
                    and box[1] + box[3] <= other[1] + other[3] + dy):
                inside = True
                break
        if not inside:
            kept.append(tuple(int(round(v)) for v in box))
    return kept
