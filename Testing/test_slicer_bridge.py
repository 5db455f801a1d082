"""The geometry the Slicer module relies on, checked against independent references.

- VTK's PyPI package: ``vtkImageData`` with spacing/origin/direction gives the same
  index-to-physical (RAS) matrix as a Slicer volume node's IJKToRAS, and the same
  ``[k, j, i]`` voxel order as ``slicer.util.arrayFromVolume``.
- SimpleITK + nibabel: one NIfTI file read by SimpleITK (LPS) and by nibabel (RAS affine):
  the bridge maps one onto the other with diag(-1, -1, 1).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from LoGSAMLib import slicer_bridge as sb
from LoGSAMLib.errors import Cancelled, InputError
from LoGSAMLib.types import Volume

vtk = pytest.importorskip("vtk")
from vtk.util import numpy_support  # noqa: E402

FLIP3 = np.diag([-1.0, -1.0, 1.0])


def _rotation(angle_deg: float, axis: tuple[float, float, float]) -> np.ndarray:
    transform = vtk.vtkTransform()
    transform.RotateWXYZ(angle_deg, *axis)
    return sb.matrix_from_vtk(transform.GetMatrix())[:3, :3]


# name -> (RAS direction columns, spacing, RAS origin)
GEOMETRIES = {
    "axis-aligned": (np.eye(3), (0.9375, 0.9375, 1.5), (-120.0, -110.5, -80.25)),
    "LPS-stored (as DICOM/ITK loads)": (FLIP3, (1.0, 1.0, 1.0), (90.0, 126.0, -72.0)),
    "flipped k": (np.diag([1.0, 1.0, -1.0]), (1.2, 1.2, 5.0), (10.0, -20.0, 30.0)),
    "oblique": (_rotation(23.0, (1.0, 2.0, 0.5)), (0.8, 1.1, 3.3), (-4.0, 17.0, 2.5)),
    "oblique + flipped": (_rotation(-37.0, (0.3, -1.0, 2.0)) @ np.diag([1.0, -1.0, 1.0]),
                          (2.0, 0.5, 1.0), (55.5, -3.0, 12.0)),
}


def _image_data(directions: np.ndarray, spacing, origin, array: np.ndarray):
    """A vtkImageData laid out like a Slicer volume node's image data plus its geometry."""
    k, j, i = array.shape
    image = vtk.vtkImageData()
    image.SetDimensions(i, j, k)
    image.SetSpacing(*spacing)
    image.SetOrigin(*origin)
    image.SetDirectionMatrix(*directions.ravel())
    scalars = numpy_support.numpy_to_vtk(array.ravel(), deep=True)
    image.GetPointData().SetScalars(scalars)
    return image


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_ijk_to_ras_matches_vtk(name):
    directions, spacing, origin = GEOMETRIES[name]
    rng = np.random.default_rng(0)
    array = rng.integers(0, 1000, size=(5, 6, 7)).astype(np.int16)  # [k, j, i]
    image = _image_data(directions, spacing, origin, array)

    vtk_matrix = sb.matrix_from_vtk(image.GetIndexToPhysicalMatrix())
    expected = sb.ijk_to_ras_from_geometry(spacing, origin, directions)
    np.testing.assert_allclose(vtk_matrix, expected, atol=1e-9)

    volume = sb.volume_from_ijk_to_ras(array, vtk_matrix)
    np.testing.assert_allclose(volume.spacing, spacing, atol=1e-9)
    np.testing.assert_allclose(volume.origin, FLIP3 @ np.asarray(origin), atol=1e-9)
    np.testing.assert_allclose(volume.direction, FLIP3 @ directions, atol=1e-9)
    np.testing.assert_allclose(volume.ijk_to_ras_matrix(), vtk_matrix, atol=1e-9)
    np.testing.assert_allclose(sb.ijk_to_ras_from_volume(volume), vtk_matrix, atol=1e-9)

    back_spacing, back_origin, back_dirs = sb.node_geometry_from_volume(volume)
    np.testing.assert_allclose(back_spacing, spacing, atol=1e-9)
    np.testing.assert_allclose(back_origin, origin, atol=1e-9)
    np.testing.assert_allclose(back_dirs, directions, atol=1e-9)

    for ijk in [(0, 0, 0), (6, 5, 4), (3, 1, 2), (1, 4, 0)]:
        i, j, k = ijk
        # [k, j, i] is VTK's memory order, the order arrayFromVolume gives.
        assert image.GetScalarComponentAsDouble(i, j, k, 0) == array[k, j, i] == volume.array[k, j, i]
        ras = [0.0, 0.0, 0.0]
        image.TransformIndexToPhysicalPoint(i, j, k, ras)
        ras = np.array(ras)
        lps = (volume.ijk_to_lps_matrix() @ np.array([*ijk, 1.0]))[:3]
        np.testing.assert_allclose(ras, FLIP3 @ lps, atol=1e-9)
        np.testing.assert_allclose(sb.transform_points(vtk_matrix, [ijk])[0], ras, atol=1e-9)


def test_volume_copies_pixels_and_keeps_dtype():
    array = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    volume = sb.volume_from_ijk_to_ras(array, np.eye(4))
    array[0, 0, 0] = 999
    assert volume.array[0, 0, 0] == 0 and volume.array.dtype == np.uint16
    shared = sb.volume_from_ijk_to_ras(array, np.eye(4), copy=False)
    assert shared.array is array


def test_vtk_matrix_round_trip():
    m = sb.ijk_to_ras_from_geometry((1.0, 2.0, 3.0), (4.0, 5.0, 6.0), _rotation(40.0, (1.0, 0.0, 1.0)))
    vtk_matrix = sb.matrix_to_vtk(m, vtk.vtkMatrix4x4())
    np.testing.assert_allclose(sb.matrix_from_vtk(vtk_matrix), m)
    inverse = vtk.vtkMatrix4x4()
    vtk.vtkMatrix4x4.Invert(vtk_matrix, inverse)
    np.testing.assert_allclose(sb.matrix_from_vtk(inverse), np.linalg.inv(m), atol=1e-12)


@pytest.mark.parametrize("bad", [
    np.zeros((4, 4)),
    np.diag([1.0, 0.0, 1.0, 1.0]),
    np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=float),
    np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float) + np.diag([0, 1e-15, 0, 0]),
])
def test_degenerate_geometry_is_an_input_error(bad):
    with pytest.raises(InputError):
        sb.volume_from_ijk_to_ras(np.zeros((2, 2, 2)), bad)


def test_vector_volume_is_rejected():
    with pytest.raises(InputError, match="scalar"):
        sb.volume_from_ijk_to_ras(np.zeros((2, 3, 4, 3), dtype=np.uint8), np.eye(4))


# ----------------------------------------------------------------- SimpleITK + nibabel


def test_nifti_read_by_simpleitk_and_nibabel(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(1)
    array = rng.integers(0, 255, size=(6, 7, 8)).astype(np.int16)  # [k, j, i]
    direction_lps = _rotation(31.0, (1.0, -2.0, 0.7)) @ np.diag([1.0, 1.0, -1.0])
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 1.3, 2.9))
    image.SetOrigin((12.5, -40.0, 7.25))
    image.SetDirection(tuple(direction_lps.ravel()))
    path = tmp_path / "oblique.nii.gz"
    sitk.WriteImage(image, str(path))

    read = sitk.ReadImage(str(path))
    from_sitk = Volume(sitk.GetArrayFromImage(read), read.GetSpacing(), read.GetOrigin(),
                       np.array(read.GetDirection()).reshape(3, 3))
    nifti = nib.load(str(path))
    ras_affine = nifti.affine  # nibabel: voxel (i, j, k) -> RAS+
    np.testing.assert_allclose(sb.ijk_to_ras_from_volume(from_sitk), ras_affine, atol=1e-4)
    np.testing.assert_allclose(np.diag([-1, -1, 1, 1]) @ from_sitk.ijk_to_lps_matrix(), ras_affine, atol=1e-4)

    from_nibabel = sb.volume_from_ijk_to_ras(np.asarray(nifti.dataobj).transpose(2, 1, 0), ras_affine)
    np.testing.assert_array_equal(from_nibabel.array, from_sitk.array)
    assert from_nibabel.same_geometry(from_sitk, tol=1e-4)


# ----------------------------------------------------------------- boxes


def test_ras_bounds_to_lps_box_and_back():
    bounds = (10.0, 30.0, -50.0, -20.0, 5.0, 25.0)  # R0 R1 A0 A1 S0 S1
    box = sb.ras_bounds_to_lps_box(bounds)
    assert box == ((-30.0, 20.0, 5.0), (-10.0, 50.0, 25.0))
    assert all(lo < hi for lo, hi in zip(*box, strict=True))
    assert sb.lps_box_to_ras_bounds(box) == bounds
    # reversed bounds mean the same box
    assert sb.ras_bounds_to_lps_box((30.0, 10.0, -20.0, -50.0, 25.0, 5.0)) == box


@pytest.mark.parametrize("bounds", [(0, 0, 0, 1, 0, 1), (0, 1, 0, 1, 2, 2), (0, 1, 0, 1, 0), (0, 1, 0, 1, 0, np.nan)])
def test_bad_boxes(bounds):
    with pytest.raises(InputError):
        sb.ras_bounds_to_lps_box(bounds)


def test_rotated_roi_bounds_match_vtk():
    """An ROI rotated in the scene: the bridge's corner bounds equal VTK's transformed bounds."""
    transform = vtk.vtkTransform()
    transform.Translate(5.0, -3.0, 12.0)
    transform.RotateWXYZ(35.0, 0.0, 0.0, 1.0)
    local = (-10.0, 10.0, -5.0, 5.0, -2.0, 2.0)
    cube = vtk.vtkCubeSource()
    cube.SetBounds(local)
    moved = vtk.vtkTransformFilter()
    moved.SetInputConnection(cube.GetOutputPort())
    moved.SetTransform(transform)
    moved.Update()
    expected = moved.GetOutput().GetBounds()
    corners = sb.transform_points(sb.matrix_from_vtk(transform.GetMatrix()), sb.bounds_corners(local))
    np.testing.assert_allclose(sb.bounds_of_points(corners), expected, atol=1e-9)


def test_box_voxels_match_geometry():
    """The LPS box of an ROI around voxels lands on those voxels in an oblique volume."""
    directions, spacing, origin = GEOMETRIES["oblique + flipped"]
    m = sb.ijk_to_ras_from_geometry(spacing, origin, directions)
    volume = sb.volume_from_ijk_to_ras(np.zeros((10, 10, 10)), m)
    ras_corners = sb.transform_points(m, sb.bounds_corners((2, 5, 3, 6, 1, 4)))
    box = sb.ras_bounds_to_lps_box(sb.bounds_of_points(ras_corners))
    to_ijk = np.linalg.inv(volume.ijk_to_lps_matrix())
    center_lps = (np.asarray(box[0]) + np.asarray(box[1])) / 2
    center_ijk = sb.transform_points(to_ijk, [center_lps])[0]
    np.testing.assert_allclose(center_ijk, (3.5, 4.5, 2.5), atol=1e-9)


# ----------------------------------------------------------------- terminology


def test_terminology_entry_format():
    entry = sb.terminology_entry_string(("SCT", "49755003", "Morphologically Altered Structure"),
                                        ("SCT", "108369006", "Neoplasm"),
                                        region=("SCT", "12738006", "Brain"))
    assert entry == ("Segmentation category and type - 3D Slicer General Anatomy list"
                     "~SCT^49755003^Morphologically Altered Structure~SCT^108369006^Neoplasm~^^"
                     "~Anatomic codes - DICOM master list~SCT^12738006^Brain~^^")
    parsed = sb.parse_terminology_entry(entry)
    assert parsed["type"] == ("SCT", "108369006", "Neoplasm")
    assert parsed["type_modifier"] is None and parsed["region"][2] == "Brain"
    with pytest.raises(ValueError):
        sb.terminology_entry_string(("SCT", "1", "a~b"), ("SCT", "2", "c"))
    with pytest.raises(ValueError):
        sb.parse_terminology_entry("not~an~entry")


# ----------------------------------------------------------------- background jobs


def _poll_until_finished(job: sb.BackgroundJob, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not job.poll():
        assert time.monotonic() - started < timeout, "job did not finish"
        time.sleep(0.01)
    return time.monotonic() - started


def test_background_job_delivers_progress_and_result_on_the_polling_thread():
    seen: dict[str, object] = {"progress": []}
    caller = threading.get_ident()

    def work(progress, cancel):
        seen["worker"] = threading.get_ident()
        for n in range(5):
            progress("segment", (n + 1) / 5, f"slice {n}")
        return "result"

    def on_progress(stage, fraction, message):
        assert threading.get_ident() == caller
        seen["progress"].append((stage, fraction, message))

    def on_done(result):
        assert threading.get_ident() == caller
        seen["done"] = result

    job = sb.BackgroundJob(work, on_progress, on_done, lambda e, tb: seen.setdefault("error", e)).start()
    _poll_until_finished(job)
    assert seen["worker"] != caller
    assert seen["done"] == "result" and "error" not in seen
    assert seen["progress"][-1] == ("segment", 1.0, "slice 4")
    assert job.finished and job.poll()  # delivered once; polling again is harmless


def test_background_job_marshals_errors_with_traceback():
    errors = []

    def work(progress, cancel):
        raise InputError("The volume is empty.")

    job = sb.BackgroundJob(work, on_done=lambda r: pytest.fail("no result expected"),
                           on_error=lambda e, tb: errors.append((e, tb))).start()
    _poll_until_finished(job)
    assert isinstance(errors[0][0], InputError) and "work" in errors[0][1]


def test_background_job_cancels_within_seconds():
    errors = []

    def work(progress, cancel):
        for n in range(100_000):
            cancel.check()  # what the engine does between slices
            progress("detect", n / 100_000, "")
            time.sleep(0.005)
        return "finished without noticing"

    job = sb.BackgroundJob(work, on_done=lambda r: errors.append(r),
                           on_error=lambda e, tb: errors.append(e)).start()
    time.sleep(0.1)
    job.cancel()
    assert _poll_until_finished(job) < 2.0
    assert job.cancelled and isinstance(errors[0], Cancelled)
    assert job.wait(1.0)
