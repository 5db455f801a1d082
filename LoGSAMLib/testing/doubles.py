"""Model doubles for tests and benchmarks whose subject is the pipeline around a model.

``TruthDetector`` answers with a phantom's true lesion boxes: it recognises each display image
it is shown by its bytes, so it sees exactly what the real detector would see (orientation
included) and answers in display coordinates. ``BoxSegmenter`` fills each box, instantly.
Tests of the search, the location prior and early detection, and the benchmark's measurement
of the pipeline's own overhead, use them; the models themselves are tested for real elsewhere.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..types import Box, Volume


def image_key(image: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest()


class TruthDetector:
    """Reports the planted lesions' true boxes on the slice it is shown; counts slices seen."""

    def __init__(self, pipeline: Any, volume: Volume, instances: Volume) -> None:
        from ..pipeline import _SliceFrame

        frame = _SliceFrame.build(volume, pipeline.options.plane)
        self.frame = frame
        self.calls = 0
        self.truth: dict[bytes, list[Box]] = {}
        self.index: dict[bytes, int] = {}
        for s in range(volume.array.shape[frame.axis]):
            shown = frame.display_image(s)
            lesions = frame.view.to_display(np.take(instances.array, s, axis=frame.axis))
            boxes = []
            for value in np.unique(lesions[lesions > 0]):
                rows, cols = np.nonzero(lesions == value)
                boxes.append(Box(cols.min(), rows.min(), cols.max() + 1.0, rows.max() + 1.0, 0.9, "glioma"))
            key = image_key(shown)
            self.truth[key] = boxes
            self.index.setdefault(key, s)

    def slice_of(self, image: np.ndarray) -> int:
        return self.index[image_key(image)]

    def detect(self, images, caption, box_threshold=None, text_threshold=None) -> list[list[Box]]:
        self.calls += len(images)
        return [list(self.truth[image_key(i)]) for i in images]


class BoxSegmenter:
    """An instant segmenter: each box filled (pixels the box covers, partly covered ones included)."""

    name = "box-double"

    def segment_many(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], batch_size: int = 4,
                     **_: Any) -> list[np.ndarray]:
        out = []
        for image, slice_boxes in zip(images, boxes, strict=True):
            masks = np.zeros((len(slice_boxes), *image.shape[:2]), dtype=bool)
            for m, (x0, y0, x1, y1) in enumerate(np.asarray(slice_boxes, dtype=float).reshape(-1, 4)):
                masks[m, int(y0):int(math.ceil(y1)), int(x0):int(math.ceil(x1))] = True
            out.append(masks)
        return out
