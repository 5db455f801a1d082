"""A detector test double that answers with a phantom's true lesion boxes.

It recognises each display image it is shown by its bytes, so it sees exactly what the real
detector would see (orientation included) and answers in display coordinates. Tests of the
search, the location prior and early detection use it where the subject is the pipeline
around the detector, not the detector.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..types import Box, Volume


def image_key(image: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest()


class TruthDetector:
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
