"""The detector interface: 2D slices and a caption in, boxes per slice out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..types import Box


@runtime_checkable
class Detector(Protocol):
    """A text-prompted 2D box detector (Grounding DINO and, later, others)."""

    box_threshold: float
    text_threshold: float

    def detect(
        self,
        images: Sequence[np.ndarray],
        caption: str,
        box_threshold: float | None = None,
        text_threshold: float | None = None,
    ) -> list[list[Box]]:
        """Boxes for every image, in that image's pixel coordinates (xyxy), best first.

        ``images``: uint8 (H, W) grayscale or (H, W, 3) RGB slices, any sizes. ``caption``:
        phrases separated by " . " (e.g. ``"glioma ."``). Each box carries its score and, as
        ``label``, the caption phrase it matched. ``None`` thresholds use the detector's defaults.
        """
        ...
