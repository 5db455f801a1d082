"""Coarse-to-fine slice search and 3D box consistency.

The detector here is a test double that reports the planted lesions' true boxes: these
tests check the search logic (which slices are looked at, what extent is found), not
the model.
"""

from __future__ import annotations

import numpy as np
import pytest

from LoGSAMLib.search import build_tracks, coarse_to_fine_search, dense_search, step_for_spacing
from LoGSAMLib.types import Box


def _sphere_mask(shape, center, radius) -> np.ndarray:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2 <= radius**2


class TrueBoxDetector:
    """Reports the bounding box of each labelled lesion on a slice; counts slice calls."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.calls = 0

    def __call__(self, indices: list[int]) -> dict[int, list[Box]]:
        self.calls += len(indices)
        out: dict[int, list[Box]] = {}
        for s in indices:
            boxes = []
            for value in np.unique(self.labels[s]):
                if value == 0:
                    continue
                rows, cols = np.nonzero(self.labels[s] == value)
                boxes.append(Box(cols.min(), rows.min(), cols.max() + 1.0, rows.max() + 1.0, 0.8, "glioma"))
            out[s] = boxes
        return out


def _extent(tracks) -> list[tuple[int, int]]:
    return sorted((t.first, t.last) for t in tracks)


def test_coarse_to_fine_finds_the_dense_extent_with_three_times_fewer_calls():
    shape = (155, 64, 64)
    labels = _sphere_mask(shape, (70, 32, 30), 11).astype(np.uint8)
    candidates = list(range(shape[0]))

    dense_detector = TrueBoxDetector(labels)
    dense = dense_search(candidates, dense_detector)
    coarse_detector = TrueBoxDetector(labels)
    coarse = coarse_to_fine_search(candidates, coarse_detector, step=step_for_spacing(1.0, 6.0))

    assert _extent(build_tracks(coarse.detections)) == _extent(build_tracks(dense.detections)) == [(59, 81)]
    assert coarse.calls == coarse_detector.calls
    assert dense_detector.calls == 155
    assert dense_detector.calls >= 3 * coarse_detector.calls, (dense_detector.calls, coarse_detector.calls)


def test_separate_lesions_stay_separate():
    shape = (120, 64, 64)
    labels = _sphere_mask(shape, (30, 20, 20), 7).astype(np.uint8)
    labels[_sphere_mask(shape, (85, 40, 44), 9)] = 2
    detector = TrueBoxDetector(labels)
    result = coarse_to_fine_search(list(range(shape[0])), detector, step=5)
    tracks = build_tracks(result.detections)
    assert _extent(tracks) == [(23, 37), (76, 94)]
    assert detector.calls < shape[0] / 2


def test_a_lesion_thinner_than_the_step_can_be_missed_but_never_invented():
    shape = (60, 32, 32)
    labels = _sphere_mask(shape, (31, 16, 16), 1).astype(np.uint8)  # 3 slices thick
    result = coarse_to_fine_search(list(range(60)), TrueBoxDetector(labels), step=10)
    tracks = build_tracks(result.detections)
    assert all(t.first >= 30 and t.last <= 32 for t in tracks)


def test_isolated_hits_and_jumping_boxes_are_dropped_and_gaps_filled():
    def box(x, score=0.5):
        return Box(x, 10, x + 10, 20, score, "glioma")

    detections = {s: [] for s in range(20)}
    for s in range(5, 12):
        detections[s] = [box(10)]
    detections[8] = []  # one missed slice inside the lesion
    detections[9] = [box(10), box(40, 0.9)]  # a strong box far away: jumps, single slice
    detections[16] = [box(10)]  # isolated single-slice hit after a 3-slice gap
    tracks = build_tracks(detections)
    assert len(tracks) == 1
    track = tracks[0]
    assert (track.first, track.last) == (5, 11)
    assert track.interpolated == {8}
    assert track.boxes[8].x0 == pytest.approx(10)
    assert all(b.x0 == 10 for b in track.boxes.values())


def test_two_slice_gap_is_not_bridged():
    detections = {s: [Box(0, 0, 10, 10, 0.5)] for s in (1, 2, 3, 6, 7, 8)}
    tracks = build_tracks(detections, max_gap=1)
    assert _extent(tracks) == [(1, 3), (6, 8)]


def test_single_slice_volume_keeps_its_detection():
    tracks = build_tracks({0: [Box(0, 0, 5, 5, 0.6)]})
    assert len(tracks) == 1


def test_step_for_spacing():
    assert step_for_spacing(1.0, 6.0) == 6
    assert step_for_spacing(5.0, 6.0) == 1
    assert step_for_spacing(2.0, 6.0) == 3
    assert step_for_spacing(1.0, 0.0) == 1


def test_cancel_stops_the_search():
    from LoGSAMLib.errors import Cancelled
    from LoGSAMLib.progress import CancelToken

    token = CancelToken()
    calls = []

    def detect(indices):
        calls.append(indices)
        token.cancel()
        return {s: [] for s in indices}

    with pytest.raises(Cancelled):
        dense_search(list(range(40)), detect, batch_size=4, cancel=token)
    assert len(calls) == 1
