"""Pure-numpy glue between 3D Slicer's MRML conventions and the engine's values.

The Slicer module (``LoGSAM/LoGSAMSlicer/mrml.py``) does only MRML work; everything that can be
computed without Slicer lives here so that it is tested with pytest (VTK's and SimpleITK's
PyPI packages serve as independent references):

- geometry: Slicer's ``IJKToRAS`` 4x4 matrix (RAS) <-> :class:`~LoGSAMLib.types.Volume` (LPS);
- boxes: an ROI's RAS bounds <-> the two LPS corners that ``Pipeline.segment_box`` takes;
- terminology: the string Slicer stores in a segment's terminology tag;
- :class:`BackgroundJob`: run engine work off the GUI thread and hand progress and the result
  back to whoever polls it (in Slicer: a ``qt.QTimer`` on the main thread).

No slicer, qt, vtk or MRML imports here. VTK matrices are handled by duck typing
(``GetElement`` / ``SetElement``), so Slicer's VTK and VTK's PyPI wheel both work.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .errors import InputError
from .progress import CancelToken, ProgressCallback
from .types import Volume

# RAS = LPS_TO_RAS @ LPS and LPS = LPS_TO_RAS @ RAS (the flip is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# --------------------------------------------------------------------------- matrices


def matrix_from_vtk(matrix: Any) -> np.ndarray:
    """A vtkMatrix4x4 (anything with ``GetElement(row, col)``) as a 4x4 float array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=np.float64)


def matrix_to_vtk(array: np.ndarray, matrix: Any) -> Any:
    """Copy a 4x4 array into a vtkMatrix4x4 (anything with ``SetElement``); returns ``matrix``."""
    array = np.asarray(array, dtype=np.float64).reshape(4, 4)
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def ijk_to_ras_from_geometry(spacing: Sequence[float], origin_ras: Sequence[float],
                             directions_ras: np.ndarray) -> np.ndarray:
    """The IJKToRAS matrix exactly as ``vtkMRMLVolumeNode::GetIJKToRASMatrix`` builds it.

    ``directions_ras`` is 3x3 with the unit i, j, k axis directions as columns (what
    ``GetIJKToRASDirections`` returns), ``spacing`` per axis, ``origin_ras`` the RAS
    position of voxel (0, 0, 0).
    """
    m = np.eye(4)
    m[:3, :3] = np.asarray(directions_ras, dtype=np.float64).reshape(3, 3) @ np.diag(
        np.asarray(spacing, dtype=np.float64))
    m[:3, 3] = np.asarray(origin_ras, dtype=np.float64)
    return m


def geometry_from_ijk_to_ras(ijk_to_ras: np.ndarray) -> tuple[tuple[float, float, float],
                                                              tuple[float, float, float], np.ndarray]:
    """Split an IJKToRAS matrix into ``(spacing, origin_ras, directions_ras)``.

    These are the three values a Slicer volume node stores (``SetSpacing``, ``SetOrigin``,
    ``SetIJKToRASDirections``). Raises :class:`InputError` for a degenerate matrix.
    """
    m = np.asarray(ijk_to_ras, dtype=np.float64).reshape(4, 4)
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0]) or not np.all(np.isfinite(m)):
        raise InputError("The volume's IJK-to-RAS matrix is not an affine transform.")
    columns = m[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing <= 1e-12):
        raise InputError("The volume has a zero voxel spacing; fix its geometry (Volumes module) first.")
    directions = columns / spacing
    if abs(np.linalg.det(directions)) < 1e-6:
        raise InputError("The volume's axis directions are degenerate (two axes are parallel).")
    return (tuple(float(s) for s in spacing), tuple(float(o) for o in m[:3, 3]),  # type: ignore[return-value]
            directions)


# --------------------------------------------------------------------------- volumes


def volume_from_ijk_to_ras(array: np.ndarray, ijk_to_ras: np.ndarray, copy: bool = True) -> Volume:
    """A Slicer voxel array (``slicer.util.arrayFromVolume``: ``[k, j, i]``) plus the node's
    IJKToRAS matrix -> an engine :class:`Volume` in LPS.

    ``copy`` (default) detaches the pixels from the VTK buffer, so a worker thread can read
    them while the user keeps working in the scene.
    """
    array = np.asarray(array)
    if array.ndim == 4:
        raise InputError("The volume has several components per voxel (color or vector image); "
                         "LoGSAM needs a scalar MRI volume.")
    if array.ndim != 3 or min(array.shape) < 1:
        raise InputError(f"Expected a 3D scalar volume, got an array of shape {array.shape}.")
    spacing, origin_ras, directions_ras = geometry_from_ijk_to_ras(ijk_to_ras)
    flip = LPS_TO_RAS[:3, :3]
    return Volume(
        array=np.array(array, copy=True) if copy else array,
        spacing=spacing,
        origin=tuple(flip @ np.asarray(origin_ras)),  # type: ignore[arg-type]
        direction=flip @ directions_ras,
    )


def ijk_to_ras_from_volume(volume: Volume) -> np.ndarray:
    """The IJKToRAS matrix to give the Slicer node that holds ``volume.array``."""
    return LPS_TO_RAS @ volume.ijk_to_lps_matrix()


def node_geometry_from_volume(volume: Volume) -> tuple[tuple[float, float, float],
                                                       tuple[float, float, float], np.ndarray]:
    """``(spacing, origin_ras, directions_ras)`` to set on a Slicer volume node for ``volume``."""
    return geometry_from_ijk_to_ras(ijk_to_ras_from_volume(volume))


# --------------------------------------------------------------------------- points and boxes


def transform_points(matrix: np.ndarray, points: Iterable[Sequence[float]]) -> np.ndarray:
    """Apply a 4x4 homogeneous matrix to N points (N x 3 in, N x 3 out)."""
    pts = np.asarray(list(points), dtype=np.float64).reshape(-1, 3)
    homogeneous = np.c_[pts, np.ones(len(pts))]
    return (np.asarray(matrix, dtype=np.float64) @ homogeneous.T).T[:, :3]


def bounds_corners(bounds: Sequence[float]) -> np.ndarray:
    """The 8 corners of VTK-style bounds ``(x0, x1, y0, y1, z0, z1)`` as an 8 x 3 array."""
    x0, x1, y0, y1, z0, z1 = (float(b) for b in bounds)
    return np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])


def bounds_of_points(points: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """Axis-aligned VTK-style bounds of N x 3 points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]), float(lo[2]), float(hi[2]))


def ras_bounds_to_lps_box(bounds_ras: Sequence[float]) -> tuple[tuple[float, float, float],
                                                                 tuple[float, float, float]]:
    """An ROI's RAS bounds ``(R0, R1, A0, A1, S0, S1)`` -> ``((L0, P0, S0), (L1, P1, S1))``,
    the minimum and maximum LPS corners that ``Pipeline.segment_box`` takes."""
    b = [float(v) for v in bounds_ras]
    if len(b) != 6 or not all(np.isfinite(b)):
        raise InputError("The box needs 6 finite bounds (R0, R1, A0, A1, S0, S1).")
    r0, r1, a0, a1, s0, s1 = min(b[0], b[1]), max(b[0], b[1]), min(b[2], b[3]), max(b[2], b[3]), \
        min(b[4], b[5]), max(b[4], b[5])
    if r1 - r0 <= 0 or a1 - a0 <= 0 or s1 - s0 <= 0:
        raise InputError("The box is flat in at least one direction; give it some size in R, A and S.")
    return ((-r1, -a1, s0), (-r0, -a0, s1))


def lps_box_to_ras_bounds(box_lps: Sequence[Sequence[float]]) -> tuple[float, float, float, float,
                                                                       float, float]:
    """Two LPS corners -> RAS bounds ``(R0, R1, A0, A1, S0, S1)`` (inverse of the above)."""
    corners = np.asarray(box_lps, dtype=np.float64).reshape(2, 3)
    ras = corners * np.array([-1.0, -1.0, 1.0])
    return bounds_of_points(ras)


# --------------------------------------------------------------------------- terminology

GENERAL_ANATOMY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

Code = Sequence[str]  # (coding scheme designator, code value, code meaning)


def _code(code: Code | None) -> str:
    if not code:
        return "^^"
    scheme, value, meaning = (str(part) for part in code)
    for part in (scheme, value, meaning):
        if "~" in part or "^" in part:
            raise ValueError(f"Terminology code parts may not contain '~' or '^': {part!r}")
    return f"{scheme}^{value}^{meaning}"


def terminology_entry_string(category: Code, type_: Code, type_modifier: Code | None = None,
                             context: str = GENERAL_ANATOMY_CONTEXT, region: Code | None = None,
                             region_modifier: Code | None = None,
                             region_context: str = ANATOMIC_CONTEXT) -> str:
    """A segment terminology entry in Slicer's serialized form
    (``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry``)::

        context~category~type~typeModifier~regionContext~region~regionModifier

    where each code is ``scheme^value^meaning`` (empty: ``^^``).
    """
    return "~".join([context, _code(category), _code(type_), _code(type_modifier), region_context,
                     _code(region), _code(region_modifier)])


def parse_terminology_entry(entry: str) -> dict[str, Any]:
    """Split a serialized terminology entry back into its parts (for checks and display)."""
    parts = entry.split("~")
    if len(parts) != 7:
        raise ValueError(f"Not a Slicer terminology entry (expected 7 '~' fields): {entry!r}")

    def code(text: str) -> tuple[str, str, str] | None:
        fields = text.split("^")
        if len(fields) != 3:
            raise ValueError(f"Not a code triple: {text!r}")
        return None if not any(fields) else (fields[0], fields[1], fields[2])

    return {"context": parts[0], "category": code(parts[1]), "type": code(parts[2]),
            "type_modifier": code(parts[3]), "region_context": parts[4], "region": code(parts[5]),
            "region_modifier": code(parts[6])}


# --------------------------------------------------------------------------- background work


class BackgroundJob:
    """Run ``fn(progress, cancel)`` in a daemon thread; the GUI thread calls :meth:`poll`.

    The worker never touches the GUI or the MRML scene: it only puts messages on a queue.
    :meth:`poll` (driven by a ``qt.QTimer`` in Slicer) drains the queue on the caller's
    thread and calls ``on_progress(stage, fraction, message)``, then exactly once either
    ``on_done(result)`` or ``on_error(exception, formatted_traceback)``.
    :meth:`cancel` sets the :class:`~LoGSAMLib.progress.CancelToken` the engine checks between
    units of work; a cancelled run ends through ``on_error`` with
    :class:`~LoGSAMLib.errors.Cancelled`.
    """

    def __init__(self, fn: Callable[[ProgressCallback, CancelToken], Any],
                 on_progress: ProgressCallback | None = None,
                 on_done: Callable[[Any], None] | None = None,
                 on_error: Callable[[BaseException, str], None] | None = None,
                 name: str = "LoGSAM job") -> None:
        self.name = name
        self.cancel_token = CancelToken()
        self._fn = fn
        self._on_progress = on_progress
        self._on_done = on_done
        self._on_error = on_error
        self._messages: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._finished = False

    # worker thread -------------------------------------------------------------
    def _progress(self, stage: str, fraction: float, message: str = "") -> None:
        self._messages.put(("progress", stage, float(fraction), message))

    def _run(self) -> None:
        try:
            result = self._fn(self._progress, self.cancel_token)
        except BaseException as error:  # noqa: BLE001 - every failure must reach the GUI thread
            self._messages.put(("error", error, traceback.format_exc()))
        else:
            self._messages.put(("done", result))

    # caller's thread -----------------------------------------------------------
    def start(self) -> BackgroundJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    @property
    def finished(self) -> bool:
        """True once :meth:`poll` has delivered the result or the error."""
        return self._finished

    def poll(self) -> bool:
        """Deliver queued progress and the outcome; returns True when the job is finished."""
        last_progress = None
        while True:
            try:
                message = self._messages.get_nowait()
            except queue.Empty:
                break
            if message[0] == "progress":
                last_progress = message[1:]  # only the newest matters for a progress bar
                continue
            if last_progress is not None and self._on_progress:
                self._on_progress(*last_progress)
                last_progress = None
            self._finished = True
            if message[0] == "done":
                if self._on_done:
                    self._on_done(message[1])
            elif self._on_error:
                self._on_error(message[1], message[2])
            return True
        if last_progress is not None and self._on_progress:
            self._on_progress(*last_progress)
        return self._finished

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ends (for scripts and tests); True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
