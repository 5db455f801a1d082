"""Tumor measurements per lesion: each 26-connected piece of a class is one lesion.

Definitions (all in mm, in the label map's own geometry, no resampling):

- **Voxel centres** go to patient LPS through the direction cosines and spacing; a voxel's
  **width along a direction** ``u`` is ``sum_c |u . step_c|`` (its parallelepiped's extent along ``u``).
- **volume_ml**: voxel count x voxel volume.
- **Longest axial diameter** (``diameter_long_mm``): on each slice of the acquisition's axis
  closest to axial (``slicing_axis(volume, "axial")``), the longest distance between two voxel
  centres of the lesion plus the pixel width along that line (edge to edge, as a caliper on the
  screen). The reported slice (``axial_slice``, counted from 0 like Slicer's IJK) is the slice
  with the longest such diameter (ties: the longer perpendicular).
- **Perpendicular diameter** (``diameter_perpendicular_mm``): on that slice, the longest chord of
  the lesion perpendicular to the longest diameter (every line perpendicular to it; a chord is
  the span of the pixels the line crosses, edge to edge). ``bidimensional_product_mm2`` is the
  product of the two (RANO's bidimensional measurement).
- **Extents** (``extent_lr_mm``, ``extent_ap_mm``, ``extent_si_mm``): the lesion's size along the
  patient's left-right, anterior-posterior and inferior-superior axes, edge to edge.
- **centroid_lps**: the mean voxel centre. **side**: ``left`` / ``right`` when the centroid lies
  more than 5 mm from the midline (LPS +x is the patient's left), else ``midline``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .types import Segmentation, Volume

SIDE_TOLERANCE_MM = 5.0
_PATIENT_AXES = {"lr": np.array([1.0, 0.0, 0.0]), "ap": np.array([0.0, 1.0, 0.0]), "si": np.array([0.0, 0.0, 1.0])}


def measure_lesions(
    seg: Segmentation,
    image: Volume | None = None,
    midline_x: float | None = None,
    classes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One dict per lesion (see the module docstring), largest first within each class.

    The midline for ``side`` is ``midline_x`` if given, else :func:`volume.midline_lps_x` of
    ``image``, else LPS x = 0. ``classes`` limits and orders the classes (default: all of ``seg``).
    Ids are ``"<class> <n>"``, n counting from 1 by decreasing volume.
    """
    from scipy import ndimage

    from .volume import midline_lps_x, slicing_axis

    labelmap = seg.labelmap
    if midline_x is None:
        midline_x = midline_lps_x(image) if image is not None else 0.0
    array = np.asarray(labelmap.array)
    axis = 0 if array.shape[0] == 1 else slicing_axis(labelmap, "axial")
    matrix = labelmap.ijk_to_lps_matrix()
    names = {name: value for value, name in seg.classes.items()}
    wanted = classes if classes is not None else [seg.classes[v] for v in sorted(seg.classes)]
    lesions: list[dict[str, Any]] = []
    for name in wanted:
        if name not in names:
            continue
        value = names[name]
        components, count = ndimage.label(array == value, structure=np.ones((3, 3, 3)))
        found = []
        for number, box in enumerate(ndimage.find_objects(components), start=1):
            kji = np.array(np.nonzero(components[box] == number)) + np.array([s.start for s in box])[:, None]
            found.append(_measure(kji, matrix, axis, midline_x))
        found.sort(key=lambda m: -m["voxels"])
        for n, entry in enumerate(found, start=1):
            lesions.append({"id": f"{name} {n}", "class": name, "label": int(value), **entry})
    return lesions


def _measure(kji: np.ndarray, matrix: np.ndarray, axis: int, midline_x: float) -> dict[str, Any]:
    """Measurements of one lesion from its voxel indices (3 x N, array order k, j, i)."""
    steps = matrix[:3, :3]  # columns: the i, j, k voxel steps in LPS mm
    centres = steps @ kji[::-1].astype(np.float64) + matrix[:3, 3:4]  # 3 x N
    voxel_ml = abs(float(np.linalg.det(steps))) / 1000.0
    centroid = centres.mean(axis=1)
    extents = {f"extent_{key}_mm": _extent(centres, steps, direction) for key, direction in _PATIENT_AXES.items()}
    rows, cols = (a for a in range(3) if a != axis)
    in_plane = steps[:, [2 - rows, 2 - cols]]  # the row and column steps of a slice
    by_slice = {int(s): centres[:, kji[axis] == s].T for s in np.unique(kji[axis])}
    diameters = {s: _longest_diameter(points, in_plane) for s, points in by_slice.items()}
    longest = max(length for length, _ in diameters.values())
    # The slice with the longest diameter; on a tie, the one with the longer perpendicular.
    candidates = {s: _perpendicular_diameter(by_slice[s], in_plane, ends)
                  for s, (length, ends) in diameters.items() if length >= longest - 1e-9}
    slice_index = max(candidates, key=lambda s: (candidates[s], -s))
    length, perpendicular = diameters[slice_index][0], candidates[slice_index]
    offset = float(centroid[0]) - midline_x
    side = "midline" if abs(offset) <= SIDE_TOLERANCE_MM else ("left" if offset > 0 else "right")
    return {
        "voxels": int(kji.shape[1]),
        "volume_ml": kji.shape[1] * voxel_ml,
        "slicing_axis": int(axis),
        "axial_slice": slice_index,
        "slices": [min(by_slice), max(by_slice)],
        "diameter_long_mm": length,
        "diameter_perpendicular_mm": perpendicular,
        "bidimensional_product_mm2": length * perpendicular,
        **extents,
        "centroid_lps": [float(c) for c in centroid],
        "side": side,
    }


def _width(steps: np.ndarray, direction: np.ndarray) -> float:
    """A voxel's (or pixel's, with two steps) extent along a unit direction."""
    return float(np.abs(direction @ steps).sum())


def _extent(centres: np.ndarray, steps: np.ndarray, direction: np.ndarray) -> float:
    projected = direction @ centres
    return float(projected.max() - projected.min()) + _width(steps, direction)


def _hull_points(points: np.ndarray, in_plane: np.ndarray) -> np.ndarray:
    """The points on the 2D convex hull of one slice's pixel centres (all of them if degenerate)."""
    if len(points) < 4:
        return points
    from scipy.spatial import ConvexHull, QhullError

    basis = np.linalg.qr(in_plane)[0]  # orthonormal in-plane axes
    try:
        hull = ConvexHull((points - points[0]) @ basis)
    except QhullError:  # all on one line
        return points
    return points[hull.vertices]


def _longest_diameter(points: np.ndarray, in_plane: np.ndarray) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """Longest centre-to-centre distance plus the pixel width along it, and its two end points."""
    hull = _hull_points(points, in_plane)
    deltas = hull[:, None, :] - hull[None, :, :]
    distances = np.linalg.norm(deltas, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        units = np.nan_to_num(deltas / distances[..., None])
    widths = np.abs(units @ in_plane).sum(axis=2)
    widths[distances == 0] = _width(in_plane, _unit(in_plane[:, 0]))  # one pixel: its own width
    total = distances + widths
    a, b = np.unravel_index(int(np.argmax(total)), total.shape)
    return float(total[a, b]), (hull[a], hull[b])


def _perpendicular_diameter(points: np.ndarray, in_plane: np.ndarray,
                            ends: tuple[np.ndarray, np.ndarray]) -> float:
    """The longest chord perpendicular to the line through ``ends`` (edge to edge)."""
    normal = _unit(np.cross(in_plane[:, 0], in_plane[:, 1]))
    along = ends[1] - ends[0]
    u = _unit(along) if np.linalg.norm(along) > 0 else _unit(in_plane[:, 0])
    v = _unit(np.cross(normal, u))
    s, t = points @ u, points @ v
    half = _width(in_plane, u) / 2.0  # a line at s0 crosses the pixels whose centre is within this of it
    order = np.argsort(s)
    s, t = s[order], t[order]
    step = min(np.linalg.norm(in_plane, axis=0)) / 4.0
    best = 0.0
    for s0 in np.arange(s[0], s[-1] + step, step):
        lo, hi = np.searchsorted(s, s0 - half - 1e-9), np.searchsorted(s, s0 + half + 1e-9, side="right")
        if hi > lo:
            best = max(best, float(t[lo:hi].max() - t[lo:hi].min()))
    return best + _width(in_plane, v)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)
