"""Display-oriented 2D slices of a volume, without resampling.

The detector was trained on slices shown as a radiologist reads them (BRISC 2025 JPEGs):
axial and coronal in radiological convention (patient's right on the image's left, so
columns run towards the patient's left), anterior (axial) or superior (coronal,
sagittal) at the top, and sagittal with the face on the image's left. A volume's array
can hold its slices in any of the eight transposed/flipped variants of that picture,
so each slice is reoriented by a transpose and flips only (exact, lossless) before it
goes to the models, and boxes and masks are mapped back into the array's own slice grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Box, Volume

# Desired world directions (LPS) of image "down" (rows) and "right" (columns) per plane.
_DISPLAY_AXES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "axial": (np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])),  # down = posterior, right = left
    "coronal": (np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0])),  # down = inferior, right = left
    "sagittal": (np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])),  # down = inferior, right = posterior
}

# Array axis (of array[k, j, i]) -> ijk axis index (direction column).
_ARRAY_TO_IJK = {0: 2, 1: 1, 2: 0}


@dataclass(frozen=True)
class SliceView:
    """How the slices ``np.take(array, index, axis)`` map onto display images.

    ``transpose`` swaps the slice's rows and columns first; then ``flip_rows`` /
    ``flip_cols`` mirror the result.
    """

    axis: int
    transpose: bool
    flip_rows: bool
    flip_cols: bool
    slice_shape: tuple[int, int]  # (rows, cols) of the raw array slice

    @property
    def display_shape(self) -> tuple[int, int]:
        rows, cols = self.slice_shape
        return (cols, rows) if self.transpose else (rows, cols)

    def to_display(self, image: np.ndarray) -> np.ndarray:
        """Raw array slice (rows, cols[, channels]) -> display image."""
        out = np.swapaxes(image, 0, 1) if self.transpose else image
        if self.flip_rows:
            out = out[::-1]
        if self.flip_cols:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def from_display(self, image: np.ndarray) -> np.ndarray:
        """Display image or mask -> raw array slice grid (the inverse of to_display)."""
        out = image
        if self.flip_cols:
            out = out[:, ::-1]
        if self.flip_rows:
            out = out[::-1]
        if self.transpose:
            out = np.swapaxes(out, 0, 1)
        return np.ascontiguousarray(out)

    def box_to_display(self, box: Box) -> Box:
        return self._map_box(box, inverse=False)

    def box_from_display(self, box: Box) -> Box:
        return self._map_box(box, inverse=True)

    def _map_box(self, box: Box, inverse: bool) -> Box:
        x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
        # Pixel-corner coordinates: mirroring an axis of length n maps x -> n - x.
        if not inverse:
            if self.transpose:
                x0, y0, x1, y1 = y0, x0, y1, x1
            height, width = self.display_shape
            if self.flip_rows:
                y0, y1 = height - y1, height - y0
            if self.flip_cols:
                x0, x1 = width - x1, width - x0
        else:
            height, width = self.display_shape
            if self.flip_cols:
                x0, x1 = width - x1, width - x0
            if self.flip_rows:
                y0, y1 = height - y1, height - y0
            if self.transpose:
                x0, y0, x1, y1 = y0, x0, y1, x1
        return Box(float(x0), float(y0), float(x1), float(y1), box.score, box.label)


def slice_view(volume: Volume, axis: int, plane: str) -> SliceView:
    """The transpose/flips that show slices along ``axis`` in ``plane``'s display convention."""
    if plane not in _DISPLAY_AXES:
        raise ValueError(f"unknown plane {plane!r}")
    down, right = _DISPLAY_AXES[plane]
    in_plane = [a for a in range(3) if a != axis]  # raw slice rows axis, cols axis
    row_dir = volume.direction[:, _ARRAY_TO_IJK[in_plane[0]]]
    col_dir = volume.direction[:, _ARRAY_TO_IJK[in_plane[1]]]
    # Pick the assignment (rows stay rows, or swap) that best matches the display axes.
    keep = abs(row_dir @ down) + abs(col_dir @ right)
    swap = abs(col_dir @ down) + abs(row_dir @ right)
    transpose = swap > keep
    display_row_dir, display_col_dir = (col_dir, row_dir) if transpose else (row_dir, col_dir)
    shape = tuple(volume.array.shape[a] for a in in_plane)
    return SliceView(
        axis=axis,
        transpose=bool(transpose),
        flip_rows=bool(display_row_dir @ down < 0),
        flip_cols=bool(display_col_dir @ right < 0),
        slice_shape=(int(shape[0]), int(shape[1])),
    )
