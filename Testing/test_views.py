"""Display-oriented slices: every array layout of the same anatomy shows the same picture."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from LoGSAMLib.types import Box, Volume
from LoGSAMLib.views import slice_view


def _reference_volume() -> Volume:
    """An LPS-aligned volume: i -> L, j -> P, k -> S, with a unique value per voxel."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, size=(4, 5, 6)).astype(np.float32)  # [k, j, i]
    return Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))


def _relayout(volume: Volume, perm: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> Volume:
    """The same anatomy stored with permuted and mirrored array axes (geometry adjusted)."""
    array = volume.array
    # array axis a holds ijk axis (2 - a); build the new array and its direction columns.
    new = np.transpose(array, perm)
    direction_cols = []
    for new_axis, old_axis in enumerate(perm):
        column = volume.direction[:, 2 - old_axis].copy()
        if flips[new_axis]:
            new = np.flip(new, axis=new_axis)
            column = -column
        direction_cols.append((2 - new_axis, column))
    direction = np.zeros((3, 3))
    for ijk_axis, column in direction_cols:
        direction[:, ijk_axis] = column
    return Volume(np.ascontiguousarray(new), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), direction)


def _axis_of(volume: Volume, world: np.ndarray) -> int:
    scores = [abs(volume.direction[:, 2 - a] @ world) for a in range(3)]
    return int(np.argmax(scores))


@pytest.mark.parametrize("plane,normal", [("axial", [0, 0, 1]), ("coronal", [0, 1, 0]), ("sagittal", [1, 0, 0])])
def test_every_layout_gives_the_same_display_image(plane, normal):
    reference = _reference_volume()
    ref_axis = _axis_of(reference, np.array(normal, float))
    ref_view = slice_view(reference, ref_axis, plane)
    ref_image = ref_view.to_display(np.take(reference.array, 1, axis=ref_axis))
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product([False, True], repeat=3):
            other = _relayout(reference, perm, flips)
            axis = _axis_of(other, np.array(normal, float))
            # the same physical slice: index 1 counted along the world normal
            n = other.array.shape[axis]
            flipped = other.direction[:, 2 - axis] @ np.array(normal, float) < 0
            index = n - 2 if flipped else 1
            view = slice_view(other, axis, plane)
            image = view.to_display(np.take(other.array, index, axis=axis))
            np.testing.assert_array_equal(image, ref_image, err_msg=f"{perm} {flips}")


def test_axial_display_is_radiological():
    """Patient left (+L) runs to the image's right; posterior runs down."""
    volume = _reference_volume()
    view = slice_view(volume, 0, "axial")
    assert (view.transpose, view.flip_rows, view.flip_cols) == (False, False, False)
    # A RAS-stored volume (i -> R, j -> A) must be mirrored in both in-plane axes.
    ras = Volume(volume.array, (1, 1, 1), (0, 0, 0), np.diag([-1.0, -1.0, 1.0]))
    view = slice_view(ras, 0, "axial")
    assert (view.flip_rows, view.flip_cols) == (True, True)


def test_box_and_mask_round_trip():
    volume = _relayout(_reference_volume(), (2, 0, 1), (True, False, True))
    for axis in range(3):
        view = slice_view(volume, axis, "axial")
        raw = np.zeros(view.slice_shape, dtype=bool)
        raw[1:3, 2:4] = True  # rows 1-2, cols 2-3
        box = Box(2.0, 1.0, 4.0, 3.0, 0.9, "glioma")
        shown = view.to_display(raw)
        shown_box = view.box_to_display(box)
        rows, cols = np.nonzero(shown)
        assert (shown_box.x0, shown_box.y0, shown_box.x1, shown_box.y1) == (
            cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert view.box_from_display(shown_box) == box
        np.testing.assert_array_equal(view.from_display(shown), raw)
