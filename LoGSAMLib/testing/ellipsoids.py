"""Analytic ellipsoid lesions in any grid, with their exact volume, cross-sections and extents.

Measurement tests compare what :mod:`LoGSAMLib.measurements` finds on the voxelised lesion with
the closed-form values of the ellipsoid ``(p - c)^T Q (p - c) <= 1``, ``Q = R diag(1/a^2) R^T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Segmentation, Volume


@dataclass(frozen=True)
class Ellipsoid:
    centre_lps: tuple[float, float, float]
    semi_axes: tuple[float, float, float]  # mm
    rotation: np.ndarray  # 3x3, columns: the axes' directions in LPS
    label: int = 1

    @property
    def quadric(self) -> np.ndarray:
        r = np.asarray(self.rotation, dtype=float)
        return r @ np.diag(1.0 / np.square(self.semi_axes)) @ r.T

    @property
    def volume_ml(self) -> float:
        a, b, c = self.semi_axes
        return 4.0 / 3.0 * np.pi * a * b * c / 1000.0

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which of the (3, N) LPS points lie inside."""
        d = points - np.asarray(self.centre_lps, dtype=float)[:, None]
        return np.einsum("in,ij,jn->n", d, self.quadric, d) <= 1.0

    def extent(self, direction: np.ndarray) -> float:
        """Full width along a unit direction."""
        e = np.asarray(direction, dtype=float)
        return 2.0 * float(np.sqrt(e @ np.linalg.inv(self.quadric) @ e))

    def section(self, point: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
        """(major, minor) full axes of the ellipse cut by the plane through ``point`` spanned by
        the orthonormal ``u``, ``v``; (0, 0) when the plane misses the ellipsoid."""
        basis = np.stack([u, v], axis=1)
        q = self.quadric
        d = np.asarray(point, dtype=float) - np.asarray(self.centre_lps, dtype=float)
        a = basis.T @ q @ basis
        b = basis.T @ q @ d
        level = 1.0 - (d @ q @ d - b @ np.linalg.solve(a, b))
        if level <= 0:
            return 0.0, 0.0
        eigen = np.linalg.eigvalsh(a)
        return 2.0 * float(np.sqrt(level / eigen[0])), 2.0 * float(np.sqrt(level / eigen[1]))


def voxelise(
    ellipsoids: list[Ellipsoid],
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    direction: np.ndarray,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    classes: dict[int, str] | None = None,
) -> Segmentation:
    """A label map (array ``shape`` = k, j, i) with each voxel whose centre lies inside an ellipsoid
    set to that ellipsoid's label (later ones win overlaps)."""
    volume = Volume(np.zeros(shape, dtype=np.uint8), spacing, origin, direction)
    matrix = volume.ijk_to_lps_matrix()
    k, j, i = np.indices(shape).reshape(3, -1)
    points = matrix[:3, :3] @ np.stack([i, j, k]).astype(float) + matrix[:3, 3:4]
    flat = volume.array.reshape(-1)
    for ellipsoid in ellipsoids:
        flat[ellipsoid.contains(points)] = ellipsoid.label
    return Segmentation(volume, classes or {1: "glioma"})
