"""Label maps, Slicer segmentations, the JSON report and lesion statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from LoGSAMLib import outputs
from LoGSAMLib.errors import InputError
from LoGSAMLib.outputs import CLASS_INFO, CLASS_LABELS, lesion_stats, write_report, write_segmentation
from LoGSAMLib.testing.phantoms import oblique_direction
from LoGSAMLib.types import Segmentation, Volume
from LoGSAMLib.volume import from_sitk

DIRECTION = oblique_direction(25.0, "x") @ np.diag([-1.0, 1.0, 1.0])  # oblique and flipped


@pytest.fixture
def segmentation() -> Segmentation:
    labels = np.zeros((12, 14, 16), np.uint8)
    labels[2:6, 3:8, 4:9] = CLASS_LABELS["glioma"]
    labels[7:10, 9:12, 10:14] = CLASS_LABELS["pituitary"]
    volume = Volume(labels, (0.9, 1.2, 3.0), (-15.5, 22.0, -40.25), DIRECTION)
    return Segmentation(volume, {1: "glioma", 2: "meningioma", 3: "pituitary"})


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_label_map_formats_keep_geometry_and_values(tmp_path, segmentation, suffix):
    path = write_segmentation(segmentation, tmp_path / f"seg{suffix}")
    back = from_sitk(sitk.ReadImage(str(path)))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, segmentation.labelmap.array)
    assert back.same_geometry(segmentation.labelmap, tol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_label_map_from_other_integer_types(tmp_path, segmentation):
    as_int64 = segmentation.labelmap.with_array(segmentation.labelmap.array.astype(np.int64))
    path = write_segmentation(Segmentation(as_int64, segmentation.classes), tmp_path / "seg.nii.gz")
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkUInt8
    bad = as_int64.with_array(as_int64.array * 100)
    with pytest.raises(ValueError):
        write_segmentation(Segmentation(bad, segmentation.classes), tmp_path / "bad.nii.gz")


def test_seg_nrrd_has_names_colors_terminology(tmp_path, segmentation):
    path = write_segmentation(segmentation, tmp_path / "tumors.seg.nrrd")
    seg = slicerio.read_segmentation(str(path))
    np.testing.assert_allclose(seg["ijkToLPS"], segmentation.labelmap.ijk_to_lps_matrix(), atol=1e-9)
    np.testing.assert_array_equal(seg["voxels"], segmentation.labelmap.array.transpose(2, 1, 0))
    by_name = {s["name"]: s for s in seg["segments"]}
    assert set(by_name) == {"Glioma", "Meningioma", "Pituitary adenoma"}
    for key, info in CLASS_INFO.items():
        segment = by_name[info.name]
        assert segment["labelValue"] == CLASS_LABELS[key]
        np.testing.assert_allclose(segment["color"], info.color)
        terminology = segment["terminology"]
        assert terminology["category"] == ["SCT", "49755003", "Morphologically Altered Structure"]
        assert terminology["type"] == list(info.type_code)
        assert terminology["anatomicRegion"] == list(info.region_code)
    # the extent (i0 i1 j0 j1 k0 k1) of the glioma segment matches its voxels
    assert by_name["Glioma"]["extent"] == [4, 8, 3, 7, 2, 5]
    # and the file is an ordinary NRRD in the same geometry for any other reader
    assert from_sitk(sitk.ReadImage(str(path))).same_geometry(segmentation.labelmap, tol=1e-9)


def test_seg_nrrd_keeps_unnamed_labels(tmp_path, segmentation):
    array = segmentation.labelmap.array.copy()
    array[0, 0, 0] = 7
    seg = Segmentation(segmentation.labelmap.with_array(array), {1: "glioma"})
    read = slicerio.read_segmentation(str(write_segmentation(seg, tmp_path / "x.seg.nrrd")))
    assert sorted(s["labelValue"] for s in read["segments"]) == [1, 3, 7]


def test_classes_have_distinct_colors_and_codes():
    colors = [info.color for info in CLASS_INFO.values()]
    codes = [info.type_code[1] for info in CLASS_INFO.values()]
    assert len(set(colors)) == 3 and len(set(codes)) == 3
    assert min(math.dist(a, b) for i, a in enumerate(colors) for b in colors[i + 1:]) > 0.5
    context = json.loads(json.dumps(outputs.terminology_context()))
    types = context["SegmentationCodes"]["Category"][0]["Type"]
    assert {t["CodeValue"] for t in types} == set(codes)


def test_unknown_extension_lists_the_supported_ones(tmp_path, segmentation):
    with pytest.raises(InputError, match=r"\.seg\.nrrd.*\.nii\.gz"):
        write_segmentation(segmentation, tmp_path / "seg.vtk")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("suffix", [".seg.nrrd", ".nii.gz"])
def test_failed_write_leaves_no_file(tmp_path, segmentation, monkeypatch, suffix):
    def broken(*args, **kwargs):
        Path(str(args[0] if suffix == ".seg.nrrd" else args[1])).write_bytes(b"half")
        raise OSError("disk full")

    if suffix == ".seg.nrrd":
        monkeypatch.setattr(slicerio, "write_segmentation", broken)
    else:
        monkeypatch.setattr(sitk, "WriteImage", broken)
    target = tmp_path / f"out{suffix}"
    with pytest.raises(OSError, match="disk full"):
        write_segmentation(segmentation, target)
    assert not list(tmp_path.iterdir())  # neither the target nor a temporary file

    target.write_bytes(b"previous result")  # an older output survives a failed overwrite
    with pytest.raises(OSError):
        write_segmentation(segmentation, target)
    assert target.read_bytes() == b"previous result" and len(list(tmp_path.iterdir())) == 1


def test_report_is_plain_json_and_atomic(tmp_path, monkeypatch):
    report = {
        "volume_ml": np.float32(4.5),
        "voxels": np.int64(12),
        "boxes": np.arange(4).reshape(2, 2),
        "nan": float("nan"),
        "path": tmp_path / "x.nii.gz",
        "nested": {"sides": ("left", "right"), "flag": np.bool_(True)},
    }
    path = write_report(report, tmp_path / "report.json")
    back = json.loads(path.read_text())
    assert back == {"volume_ml": 4.5, "voxels": 12, "boxes": [[0, 1], [2, 3]], "nan": None,
                    "path": str(tmp_path / "x.nii.gz"), "nested": {"sides": ["left", "right"], "flag": True}}
    with pytest.raises(TypeError):
        write_report({"bad": object()}, tmp_path / "bad.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def _sphere(spacing, radius, centres, direction=None, shape=(80, 80, 80)) -> Segmentation:
    """Balls of ``radius`` mm around voxel-index centres, in a grid of the given spacing."""
    k, j, i = np.indices(shape, dtype=np.float64)
    labels = np.zeros(shape, np.uint8)
    sp = np.asarray(spacing, float)
    for ci, cj, ck in centres:
        inside = ((i - ci) * sp[0]) ** 2 + ((j - cj) * sp[1]) ** 2 + ((k - ck) * sp[2]) ** 2 <= radius**2
        labels[inside] = 1
    direction = np.eye(3) if direction is None else direction
    return Segmentation(Volume(labels, spacing, (3.0, -2.0, 7.0), direction), {1: "glioma", 3: "pituitary"})


def test_lesion_stats_of_a_known_sphere():
    seg = _sphere((0.5, 0.5, 0.5), 10.0, [(40, 40, 40)], DIRECTION @ np.diag([1.0, 1.0, -1.0]))
    stats = lesion_stats(seg)
    glioma = stats["glioma"]
    assert glioma["volume_ml"] == pytest.approx(4 / 3 * math.pi * 10**3 / 1000, rel=0.01)
    assert glioma["voxels"] == int(seg.labelmap.array.sum())
    assert glioma["components"] == 1
    assert glioma["slices"] == [20, 60]  # 10 mm / 0.5 mm either side of slice 40
    # the LPS-aligned box around a ball is its diameter (+ a voxel) in every direction
    np.testing.assert_allclose(glioma["extent_mm"], [20.5, 20.5, 20.5], atol=0.6)
    assert stats["pituitary"] == {"label": 3, "voxels": 0, "volume_ml": 0.0, "slices": None,
                                  "extent_mm": [0.0, 0.0, 0.0], "components": 0}


def test_lesion_stats_anisotropic_two_lesions():
    seg = _sphere((1.0, 1.0, 3.0), 8.0, [(20, 20, 15), (60, 60, 15)], shape=(30, 80, 80))
    glioma = lesion_stats(seg, axis=0)["glioma"]
    assert glioma["components"] == 2
    assert glioma["volume_ml"] == pytest.approx(2 * 4 / 3 * math.pi * 8**3 / 1000, rel=0.05)
    assert glioma["slices"] == [13, 17]  # +-8 mm at 3 mm slices around 15
    assert lesion_stats(seg, axis=2)["glioma"]["slices"] == [12, 68]
