"""Volume I/O, geometry, slicing, sides, RAS boxes and the intensity window."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from LoGSAMLib.errors import InputError
from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom, oblique_direction
from LoGSAMLib.types import Box, Volume
from LoGSAMLib.volume import (
    box_ras_to_ijk,
    from_sitk,
    get_slice,
    ijk_ranges_to_slice_boxes,
    intensity_window,
    midline_lps_x,
    patient_side,
    put_slice,
    ras_box_to_slice_boxes,
    read_volume,
    slice_point_to_lps,
    slicing_axis,
    to_sitk,
    to_uint8,
    write_volume,
)

ROTATED = oblique_direction(25.0, "x") @ oblique_direction(20.0, "z")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _volume(direction: np.ndarray, dtype=np.float32, shape=(6, 7, 8)) -> Volume:
    rng = np.random.default_rng(1)
    array = (rng.normal(300, 80, shape)).astype(dtype)
    return Volume(array, (0.8, 1.1, 2.5), (12.5, -30.25, 41.0), direction)


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize(
    "direction",
    [np.eye(3), np.diag([-1.0, 1.0, 1.0]), ROTATED, ROTATED @ np.diag([1.0, -1.0, 1.0])],
    ids=["identity", "flipped", "oblique", "oblique-flipped"],
)
def test_round_trip_keeps_pixels_and_geometry(tmp_path, suffix, direction):
    volume = _volume(direction, np.int16 if suffix == ".mha" else np.float32)
    path = write_volume(volume, tmp_path / f"image{suffix}")
    before = _sha(path)
    back = read_volume(path)
    assert _sha(path) == before  # reading never touches the input
    assert back.array.dtype == volume.array.dtype
    np.testing.assert_array_equal(back.array, volume.array)
    # NIfTI stores the affine in float32; the others keep doubles.
    tol = 1e-5 if suffix.startswith(".nii") else 1e-12
    np.testing.assert_allclose(back.spacing, volume.spacing, atol=tol)
    np.testing.assert_allclose(back.origin, volume.origin, atol=tol)
    np.testing.assert_allclose(back.direction, volume.direction, atol=tol)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def _write_dicom_series(volume: Volume, folder: Path, series_uid: str, description: str = "") -> list[Path]:
    """One MR slice per file, with the geometry tags a scanner would write."""
    folder.mkdir(parents=True, exist_ok=True)
    image = to_sitk(volume.with_array(volume.array.astype(np.int16)))
    direction = volume.direction
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k in range(image.GetDepth()):
        slice_ = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "MR",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.4",
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|000d": "1.2.826.0.1.3680043.8.498.1",
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{p:.6f}" for p in position),
            "0020|0037": "\\".join(f"{d:.8f}" for d in (*direction[:, 0], *direction[:, 1])),
            "0018|0050": str(volume.spacing[2]),
        }
        if description:
            tags["0008|103e"] = description
        for key, value in tags.items():
            slice_.SetMetaData(key, value)
        path = folder / f"{series_uid[-3:]}_{k:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(slice_)
        paths.append(path)
    return paths


def test_dicom_series_round_trip_oblique(tmp_path):
    volume = _volume(ROTATED, np.int16, shape=(5, 9, 10))
    files = _write_dicom_series(volume, tmp_path / "series", "1.2.826.0.1.3680043.8.498.101")
    hashes = [_sha(f) for f in files]
    for path in (tmp_path / "series", files[2]):  # the folder, or any one file of the series
        back = read_volume(path)
        np.testing.assert_array_equal(back.array, volume.array)
        np.testing.assert_allclose(back.spacing, volume.spacing, atol=1e-4)
        np.testing.assert_allclose(back.origin, volume.origin, atol=1e-4)
        np.testing.assert_allclose(back.direction, volume.direction, atol=1e-5)
    assert [_sha(f) for f in files] == hashes


def test_dicom_folder_with_two_series_lists_them(tmp_path):
    first, second = "1.2.826.0.1.3680043.8.498.201", "1.2.826.0.1.3680043.8.498.202"
    volume = _volume(np.eye(3), np.int16, shape=(3, 6, 6))
    _write_dicom_series(volume, tmp_path, first)
    _write_dicom_series(volume.with_array(volume.array[::-1].copy()), tmp_path, second)
    with pytest.raises(InputError, match="2 DICOM series") as caught:
        read_volume(tmp_path)
    assert first in str(caught.value) and second in str(caught.value)
    picked = read_volume(tmp_path, series_uid=second)
    np.testing.assert_array_equal(picked.array, volume.array[::-1])


def test_png_grey_and_rgb_are_one_slice_volumes(tmp_path):
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    volume = read_volume(tmp_path / "grey.png")
    assert volume.array.shape == (1, 20, 30)
    np.testing.assert_array_equal(volume.array[0], grey)
    assert slicing_axis(volume, "axial") == 0 and slicing_axis(volume, "sagittal") == 0

    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    luminance = read_volume(tmp_path / "rgb.png").array[0]
    expected = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    np.testing.assert_allclose(luminance, expected, atol=1e-3)

    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
    assert read_volume(tmp_path / "rgb.jpg").array.shape == (1, 20, 30)


# ------------------------------------------------------------------------------ bad inputs


def _write(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="No such file"):
        read_volume(tmp_path / "nope.nii.gz")
    (tmp_path / "notes.nii.gz").write_text("not an image")
    with pytest.raises(InputError, match="Cannot read notes.nii.gz"):
        read_volume(tmp_path / "notes.nii.gz")
    (tmp_path / "empty.nrrd").write_bytes(b"")
    with pytest.raises(InputError):
        read_volume(tmp_path / "empty.nrrd")
    with pytest.raises(InputError, match="No DICOM series"):
        read_volume(tmp_path)


def test_4d_volume_needs_an_index(tmp_path):
    frames = [sitk.GetImageFromArray(np.full((4, 5, 6), 10.0 * t, np.float32) + np.arange(6)) for t in range(3)]
    path = _write(sitk.JoinSeries(frames), tmp_path / "fmri.nii.gz")
    with pytest.raises(InputError, match=r"4D with 3 volumes.*--volume-index"):
        read_volume(path)
    second = read_volume(path, component=1)
    np.testing.assert_array_equal(second.array, sitk.GetArrayFromImage(frames[1]))
    with pytest.raises(InputError, match="out of range"):
        read_volume(path, component=3)


def test_multi_component_volume_needs_an_index(tmp_path):
    channels = [sitk.GetImageFromArray(np.random.default_rng(c).normal(size=(4, 5, 6)).astype(np.float32))
                for c in range(3)]
    path = _write(sitk.Compose(channels), tmp_path / "vector.nrrd")
    with pytest.raises(InputError, match="3 components per voxel"):
        read_volume(path)
    np.testing.assert_array_equal(read_volume(path, component=2).array, sitk.GetArrayFromImage(channels[2]))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((4, 5, 6), 7.0, np.float32), "constant"),
        (np.where(np.arange(120).reshape(4, 5, 6) == 3, np.nan, 1.0).astype(np.float32), "NaN"),
        (np.where(np.arange(120).reshape(4, 5, 6) == 3, np.inf, 1.0).astype(np.float32), "infinite"),
        ((np.arange(120).reshape(4, 5, 6) % 3).astype(np.uint8), "label map"),
    ],
    ids=["constant", "nan", "inf", "labelmap"],
)
def test_implausible_content(tmp_path, array, message):
    path = _write(sitk.GetImageFromArray(array), tmp_path / "bad.nrrd")
    with pytest.raises(InputError, match=message):
        read_volume(path)


def test_integer_image_with_many_values_is_not_a_label_map(tmp_path):
    array = (np.arange(120).reshape(4, 5, 6) % 9).astype(np.int16)
    assert read_volume(_write(sitk.GetImageFromArray(array), tmp_path / "ok.nrrd")).array.max() == 8


def test_write_volume_refuses_unknown_extensions(tmp_path):
    with pytest.raises(InputError, match=r"\.nii\.gz"):
        write_volume(_volume(np.eye(3)), tmp_path / "image.tif")


# ------------------------------------------------------------------------- planes and slices


def test_sitk_conversion_keeps_the_geometry():
    volume = _volume(ROTATED @ np.diag([1.0, 1.0, -1.0]))
    back = from_sitk(to_sitk(volume))
    assert back.same_geometry(volume, tol=1e-12)
    np.testing.assert_array_equal(back.array, volume.array)


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        # i, j, k directions (LPS) -> expected array axis for axial, coronal, sagittal
        (np.eye(3), {"axial": 0, "coronal": 1, "sagittal": 2}),
        (np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float).T, {"axial": 1, "coronal": 0, "sagittal": 2}),
        (np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0]], float).T, {"axial": 1, "coronal": 2, "sagittal": 0}),
        (oblique_direction(25.0, "x"), {"axial": 0, "coronal": 1, "sagittal": 2}),
        (oblique_direction(60.0, "x"), {"axial": 1, "coronal": 0, "sagittal": 2}),
        (np.diag([-1.0, -1.0, 1.0]), {"axial": 0, "coronal": 1, "sagittal": 2}),
    ],
    ids=["axial", "coronal", "sagittal", "oblique25", "oblique60", "ras"],
)
def test_slicing_axis_follows_the_direction_cosines(columns, expected):
    volume = Volume(np.zeros((5, 6, 7), np.float32), (1, 1, 1), (0, 0, 0), columns)
    assert {plane: slicing_axis(volume, plane) for plane in expected} == expected
    with pytest.raises(InputError, match="plane"):
        slicing_axis(volume, "oblique")


def test_slice_convention_matches_np_take():
    array = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    for axis in range(3):
        for index in (0, 2):
            np.testing.assert_array_equal(get_slice(array, axis, index), np.take(array, index, axis))
    # rows are the slower remaining axis, columns the faster: a slice across j is [k, i]
    assert get_slice(array, 1, 3).shape == (4, 6)
    target = np.zeros_like(array)
    put_slice(target, 2, 4, np.full((4, 5), 9))
    assert (target[:, :, 4] == 9).all() and target.sum() == 9 * 20
    with pytest.raises(ValueError):
        put_slice(target, 0, 0, np.zeros((3, 3)))


def test_slice_pixel_centre_maps_to_the_voxel_centre():
    volume = _volume(ROTATED)
    matrix = volume.ijk_to_lps_matrix()
    # axis 1 (j): rows are k, columns are i; pixel (row 3, column 5) of slice j = 2
    point = slice_point_to_lps(volume, 1, 2, 5 + 0.5, 3 + 0.5)
    np.testing.assert_allclose(point, (matrix @ [5, 2, 3, 1])[:3])
    # a pixel corner is half a voxel away from the centre
    corner = slice_point_to_lps(volume, 0, 1, 0.0, 0.0)
    np.testing.assert_allclose(corner, (matrix @ [-0.5, -0.5, 1, 1])[:3])


# ----------------------------------------------------------------------------------- sides


def _lesion_box(phantom, axis):
    """The slice through the lesion centre and the lesion's 2D box in it."""
    mask = phantom.instances.array == 1
    other = tuple(a for a in range(3) if a != axis)
    counts = mask.sum(axis=other)
    index = int(np.argmax(counts))
    rows, cols = np.nonzero(get_slice(mask, axis, index))
    return index, Box(cols.min(), rows.min(), cols.max() + 1.0, rows.max() + 1.0)


@pytest.mark.parametrize(
    "direction",
    [np.eye(3), np.diag([-1.0, 1.0, 1.0]), oblique_direction(25.0, "z"), oblique_direction(25.0, "x"),
     oblique_direction(30.0, "y") @ np.diag([-1.0, 1.0, 1.0])],
    ids=["normal", "flipped", "oblique-z", "oblique-x", "oblique-flipped"],
)
def test_patient_side_of_a_left_lesion(direction):
    phantom = make_phantom([LesionSpec("glioma", 12.0, "left", "frontal")], spacing=(2.0, 2.0, 2.0),
                           direction=direction, seed=3)
    volume = phantom.volume
    axis = slicing_axis(volume, "axial")
    index, box = _lesion_box(phantom, axis)
    assert patient_side(volume, axis, index, box) == "left"
    assert patient_side(volume, axis, index, box.as_array().tolist()) == "left"


def test_flipped_columns_put_the_same_lesion_in_the_other_half():
    # Why sides must come from geometry: the array position of a left lesion depends on the grid.
    halves = []
    for direction in (np.eye(3), np.diag([-1.0, 1.0, 1.0])):
        phantom = make_phantom([LesionSpec("glioma", 12.0, "left", "frontal")], spacing=(2.0, 2.0, 2.0),
                               direction=direction, seed=3)
        _, box = _lesion_box(phantom, 0)
        halves.append((box.x0 + box.x1) / 2 > phantom.volume.array.shape[2] / 2)
    assert halves[0] != halves[1]


def test_patient_side_right_and_midline():
    phantom = make_phantom([LesionSpec("meningioma", 12.0, "right", "parietal"), LesionSpec("pituitary", 7.0)],
                           spacing=(2.0, 2.0, 2.0), direction=oblique_direction(20.0, "z"), seed=4)
    volume, axis = phantom.volume, 0
    for instance, expected in ((1, "right"), (2, "midline")):
        mask = phantom.instances.array == instance
        index = int(np.argmax(mask.sum(axis=(1, 2))))
        rows, cols = np.nonzero(mask[index])
        box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert patient_side(volume, axis, index, box) == expected


def test_midline_is_found_when_the_head_is_off_centre():
    # The field of view spans x = -95 .. 115 mm: the head (|x| < 90) sits well off its centre.
    phantom = make_phantom([], spacing=(2.0, 2.0, 2.0), origin=(-95.0, -110.0, -75.0), size=(106, 120, 95), seed=5)
    assert abs(midline_lps_x(phantom.volume)) < 3.0  # the MNI midline is x = 0


# -------------------------------------------------------------------------------- RAS boxes


def test_box_ras_to_ijk_hand_computed():
    volume = Volume(np.zeros((10, 10, 10), np.float32), (2.0, 2.0, 3.0), (10.0, 20.0, 30.0), np.eye(3))
    # RAS -> LPS flips x and y: R -20..-14 is L 14..20 (i = (x - 10) / 2 = 2..5),
    # A -30..-25 is P 25..30 (j = 2.5..5, centres 3..5), S 33..39 (k = 1..3).
    assert box_ras_to_ijk(volume, (-20, -30, 33), (-14, -25, 39)) == (2, 5, 3, 5, 1, 3)
    assert box_ras_to_ijk(volume, (-14, -25, 39), (-20, -30, 33)) == (2, 5, 3, 5, 1, 3)  # any corner order
    # partly outside: clipped to the image
    assert box_ras_to_ijk(volume, (0, 0, 0), (-1000, -1000, 1000)) == (0, 9, 0, 9, 0, 9)
    with pytest.raises(InputError, match="does not overlap"):
        box_ras_to_ijk(volume, (500, 500, 500), (510, 510, 510))
    boxes = ijk_ranges_to_slice_boxes((2, 5, 3, 5, 1, 3), axis=0)
    assert sorted(boxes) == [1, 2, 3] and boxes[2] == (2.0, 3.0, 6.0, 6.0)


def test_box_ras_to_ijk_rotated_volume():
    volume = Volume(np.zeros((30, 40, 50), np.float32), (1.5, 1.0, 2.0), (-20.0, 15.0, -10.0),
                    oblique_direction(30.0, "z") @ np.diag([1.0, -1.0, 1.0]))
    image = to_sitk(volume)
    ras1, ras2 = np.array([-10.0, -30.0, 5.0]), np.array([8.0, -12.0, 25.0])
    corners = [np.array([(ras1, ras2)[u][0], (ras1, ras2)[v][1], (ras1, ras2)[w][2]])
               for u in (0, 1) for v in (0, 1) for w in (0, 1)]
    # Independent reference: ITK's own physical point -> continuous index.
    ijk = np.array([image.TransformPhysicalPointToContinuousIndex(tuple(c * [-1, -1, 1])) for c in corners])
    expected = []
    for axis, size in enumerate(volume.shape_ijk):  # the box sticks out of the image along j: clipped
        expected += [max(int(np.ceil(ijk[:, axis].min())), 0), min(int(np.floor(ijk[:, axis].max())), size - 1)]
    assert ijk[:, 1].min() < 0
    assert box_ras_to_ijk(volume, ras1, ras2) == tuple(expected)

    # Every voxel centre inside the RAS box is inside the ranges and in its slice's tight box.
    k, j, i = np.indices(volume.array.shape).reshape(3, -1)
    ras = (volume.ijk_to_ras_matrix() @ np.stack([i, j, k, np.ones_like(i)]))[:3]
    inside = np.all((ras >= np.minimum(ras1, ras2)[:, None]) & (ras <= np.maximum(ras1, ras2)[:, None]), axis=0)
    i0, i1, j0, j1, k0, k1 = expected
    assert inside.any()
    assert (i[inside] >= i0).all() and (i[inside] <= i1).all() and (k[inside] >= k0).all()
    boxes = ras_box_to_slice_boxes(volume, ras1, ras2, axis=0)
    loose = ijk_ranges_to_slice_boxes(expected, axis=0)
    for s in set(k[inside]):
        x0, y0, x1, y1 = boxes[s]
        sel = inside & (k == s)
        assert x0 <= i[sel].min() and i[sel].max() < x1 and y0 <= j[sel].min() and j[sel].max() < y1
        lx0, ly0, lx1, ly1 = loose[s]
        assert lx0 <= x0 and ly0 <= y0 and x1 <= lx1 and y1 <= ly1
    assert sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes.values()) < sum(
        (b[2] - b[0]) * (b[3] - b[1]) for b in loose.values())


def test_thin_box_selects_the_nearest_voxel():
    volume = Volume(np.zeros((8, 8, 8), np.float32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), oblique_direction(10, "z"))
    centre = (volume.ijk_to_ras_matrix() @ [3, 4, 5, 1])[:3]
    assert box_ras_to_ijk(volume, centre - 0.1, centre + 0.1) == (3, 3, 4, 4, 5, 5)


# --------------------------------------------------------------------------- intensity window


def _window_volume(background_noise: float) -> tuple[Volume, np.ndarray]:
    rng = np.random.default_rng(6)
    array = np.abs(rng.normal(0.0, background_noise, (60, 60, 60))).astype(np.float32)
    k, j, i = np.indices(array.shape)
    tissue = (k - 30) ** 2 + (j - 30) ** 2 + (i - 30) ** 2 < 18**2  # ~11 % of the volume
    array[tissue] = rng.uniform(100, 500, tissue.sum())
    lesion = (k - 30) ** 2 + (j - 24) ** 2 + (i - 30) ** 2 < 5**2  # ~2 % of the tissue
    array[lesion] = 800.0
    array[tuple(rng.integers(0, 60, (3, 10)))] = 1e5  # a few spikes
    return Volume(array, (1, 1, 1), (0, 0, 0), np.eye(3)), array


@pytest.mark.parametrize("noise", [0.0, 5.0], ids=["zero-background", "noisy-background"])
def test_intensity_window_ignores_background_and_outliers(noise):
    volume, array = _window_volume(noise)
    lo, hi = intensity_window(volume)
    assert np.percentile(array, 99.5) < 790  # over all voxels the background pulls the top down ...
    assert 790 <= hi <= 800  # ... over the foreground it reaches the lesion, not the spikes
    if noise == 0.0:
        assert 100 <= lo <= 105  # the lowest tissue, not the zero background
    else:
        assert lo < 3 * noise  # the dark end of the noise: background maps to black


def test_to_uint8_clips_and_scales():
    values = np.array([-50.0, 100.0, 300.0, 500.0, 9000.0])
    out = to_uint8(values, (100.0, 500.0))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(ValueError):
        to_uint8(values, (5.0, 5.0))
