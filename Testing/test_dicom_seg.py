"""DICOM SEG: written with highdicom, read back with highdicom and pydicom, frame by frame on its
source (single- and multi-frame series, oblique, non-square pixels, a missing slice)."""

from __future__ import annotations

import hashlib
import json

import highdicom as hd
import numpy as np
import pydicom
import pytest

from LoGSAMLib import __version__
from LoGSAMLib.cli import main
from LoGSAMLib.dicom_seg import write_dicom_seg
from LoGSAMLib.errors import InputError
from LoGSAMLib.outputs import write_segmentation
from LoGSAMLib.testing.dicom_series import write_mr_series
from LoGSAMLib.testing.phantoms import oblique_direction
from LoGSAMLib.types import Segmentation, Volume
from LoGSAMLib.volume import read_volume, write_volume

DIRECTION = oblique_direction(17.0, "x") @ oblique_direction(-11.0, "z")
SPACING = (0.8, 1.1, 2.5)  # non-square pixels
MODELS = {"segmenter": {"id": "litemedsam", "files": {"lite_medsam.pth": "ab" * 32}}}


def _image(shape=(10, 22, 26)) -> Volume:
    rng = np.random.default_rng(5)
    k, j, i = np.indices(shape)
    array = 400 + 300 * np.exp(-((i - 12) ** 2 + (j - 10) ** 2) / 60.0) + rng.normal(0, 20, shape)
    return Volume(array.astype(np.float32), SPACING, (-20.5, 13.0, 40.25), DIRECTION)


def _labels(shape) -> np.ndarray:
    """A glioma ball and a meningioma block, each on several slices; some slices empty."""
    k, j, i = np.indices(shape)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[((i - 8) ** 2 + (j - 9) ** 2 + 4 * (k - 4) ** 2) <= 20] = 1
    labels[5:8, 14:19, 17:23] = 2
    return labels


def _sha(paths) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.mark.parametrize("layout", ["single-frame", "single-frame-missing-slice", "multi-frame",
                                    "multi-frame-missing-slice"])
def test_dicom_seg_round_trips_and_lines_up_with_its_source_frames(tmp_path, layout):
    image = _image()
    sources = write_mr_series(image, tmp_path / "series", multiframe=layout.startswith("multi-frame"),
                              missing=(6,) if "missing" in layout else ())
    before = _sha(sources)
    volume = read_volume(tmp_path / "series")
    assert len(volume.source_files) == len(sources)
    np.testing.assert_allclose(volume.direction[:, :2], DIRECTION[:, :2], atol=1e-6)
    np.testing.assert_allclose(volume.spacing[:2], SPACING[:2], atol=1e-6)  # multi-frame too
    if "missing" not in layout:  # each slice read is the written one, where it was (GDCM may flip the order)
        for k in range(volume.array.shape[0]):
            position = volume.ijk_to_lps_matrix() @ np.array([0.0, 0.0, k, 1.0])
            index = np.linalg.solve(image.ijk_to_lps_matrix(), position)
            np.testing.assert_allclose(index[:3], [0, 0, round(index[2])], atol=1e-3)
            np.testing.assert_array_equal(volume.array[k], np.rint(image.array[round(index[2])]))
    labels = _labels(volume.array.shape)
    seg = Segmentation(volume.with_array(labels), {1: "glioma", 2: "meningioma"})
    out = write_segmentation(seg, tmp_path / "out" / "result.dcm", models=MODELS)
    assert _sha(sources) == before  # the source is never modified
    assert [p.name for p in out.parent.iterdir()] == ["result.dcm"]  # no temporary file left

    # highdicom reads it back: segments, terminology, algorithm identification.
    back = hd.seg.segread(out)
    assert back.SegmentationType == "BINARY"
    assert back.get_segment_numbers() == [1, 2]
    glioma, meningioma = back.get_segment_description(1), back.get_segment_description(2)
    assert glioma.segment_label == "Glioma" and meningioma.segment_label == "Meningioma"
    assert glioma.segmented_property_type.value == "393564001"
    assert meningioma.segmented_property_type.value == "393566004"
    assert glioma.segmented_property_category.value == "49755003"
    assert glioma.anatomic_regions[0].value == "12738006"
    algorithm = glioma.algorithm_identification[0]
    assert algorithm.AlgorithmName == "LoGSAM" and algorithm.AlgorithmVersion == __version__
    assert "ab" * 32 in algorithm.AlgorithmParameters

    # pydicom: it references the source series and each source instance, in the source's frame.
    sources_ds = [pydicom.dcmread(p) for p in volume.source_files]
    ds = pydicom.dcmread(out)
    assert ds.FrameOfReferenceUID == sources_ds[0].FrameOfReferenceUID
    assert ds.StudyInstanceUID == sources_ds[0].StudyInstanceUID and ds.PatientID == sources_ds[0].PatientID
    [referenced] = ds.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == sources_ds[0].SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources_ds}

    # Voxel for voxel: each source image (or frame) gets exactly its label-map slice.
    if layout.startswith("multi-frame"):
        [source] = sources_ds
        frames = back.get_pixels_by_source_frame(source.SOPInstanceUID, list(range(1, labels.shape[0] + 1)),
                                                 combine_segments=True, assert_missing_frames_are_empty=True)
        # Slice k is the k-th frame along the volume's slice axis (gaps or not).
        positions = np.array([g.PlanePositionSequence[0].ImagePositionPatient
                              for g in source.PerFrameFunctionalGroupsSequence], float)
        rank = np.argsort(np.argsort(positions @ volume.direction[:, 2]))
        np.testing.assert_array_equal(frames, labels[rank])
    else:
        uids = [s.SOPInstanceUID for s in sources_ds]
        pixels = back.get_pixels_by_source_instance(uids, combine_segments=True,
                                                    assert_missing_frames_are_empty=True)
        np.testing.assert_array_equal(pixels, labels)
        # ... and each stored frame sits where its source image is.
        positions = {s.SOPInstanceUID: np.array(s.ImagePositionPatient, float) for s in sources_ds}
        for frame in ds.PerFrameFunctionalGroupsSequence:
            source_uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            np.testing.assert_allclose(frame.PlanePositionSequence[0].ImagePositionPatient, positions[source_uid],
                                       atol=1e-4)


def test_a_segmentation_of_another_series_or_no_dicom_is_refused(tmp_path):
    image = _image()
    sources = write_mr_series(image, tmp_path / "series")
    volume = read_volume(tmp_path / "series")
    seg = Segmentation(volume.with_array(_labels(volume.array.shape)), {1: "glioma", 2: "meningioma"})
    # Another in-plane size, another orientation, too few sources.
    cropped = Segmentation(Volume(seg.labelmap.array[:, :, :-1].copy(), volume.spacing, volume.origin,
                                  volume.direction), seg.classes)
    with pytest.raises(InputError, match="does not match"):
        write_dicom_seg(cropped, sources, tmp_path / "a.dcm")
    turned = Segmentation(Volume(seg.labelmap.array, volume.spacing, volume.origin, np.eye(3)), seg.classes)
    with pytest.raises(InputError, match="another orientation"):
        write_dicom_seg(turned, sources, tmp_path / "b.dcm")
    shifted = Segmentation(Volume(seg.labelmap.array, volume.spacing, np.add(volume.origin, (0.0, 3.0, 0.0)),
                                  volume.direction), seg.classes)
    with pytest.raises(InputError, match="elsewhere in space"):
        write_dicom_seg(shifted, sources, tmp_path / "s.dcm")
    with pytest.raises(InputError, match="9 source images for 10 slices"):
        write_dicom_seg(seg, sources[:-1], tmp_path / "c.dcm")
    # No DICOM behind the image: a clear message, no file.
    plain = Segmentation(image.with_array(seg.labelmap.array), seg.classes)
    with pytest.raises(InputError, match="needs the source DICOM series"):
        write_segmentation(plain, tmp_path / "d.dcm")
    nifti = write_volume(image, tmp_path / "t1.nii.gz")
    with pytest.raises(InputError, match="not DICOM"):
        write_dicom_seg(seg, nifti, tmp_path / "e.dcm")
    assert not list(tmp_path.glob("*.dcm"))


def test_cli_non_dicom_input_with_a_dicom_seg_output_fails_before_segmenting(tmp_path, capsys):
    nifti = write_volume(_image(), tmp_path / "t1.nii.gz")
    code = main(["segment", str(nifti), "--prompt", "glioma", "-o", str(tmp_path / "x.nii.gz"),
                 "--dicom-seg", str(tmp_path / "pacs")])
    err = capsys.readouterr().err
    assert code == 2 and "DICOM SEG needs the source DICOM series" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "pacs").exists()


def test_cli_dicom_in_dicom_seg_out_with_measurements_and_report_lines(tmp_path, capsys, monkeypatch):
    """`logsam segment DICOMDIR --box-ras ... --dicom-seg DIR`; the segmenter is the instant box
    double (the subject here is the output path, not the model)."""
    from LoGSAMLib.pipeline import Pipeline
    from LoGSAMLib.testing.doubles import BoxSegmenter

    monkeypatch.setattr(Pipeline, "segmenter", property(lambda self: BoxSegmenter()))
    image = _image()
    write_mr_series(image, tmp_path / "series")
    volume = read_volume(tmp_path / "series")
    ras = volume.ijk_to_ras_matrix() @ np.array([[6, 5, 3, 1], [14, 13, 6, 1]], float).T
    code = main(["segment", str(tmp_path / "series"), "--box-ras", *map(str, ras[:3, 0]), *map(str, ras[:3, 1]),
                 "--label", "meningioma", "-o", str(tmp_path / "seg.nii.gz"), "--dicom-seg", str(tmp_path / "pacs")])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((tmp_path / "seg.report.json").read_text())
    assert str(tmp_path / "pacs" / "seg.seg.dcm") in report["outputs"]
    [lesion] = report["lesions"]
    assert lesion["class"] == "meningioma" and lesion["voxels"] > 0
    [line] = report["report_lines"]
    assert line.startswith(("Left meningioma", "Right meningioma", "Midline meningioma"))
    assert f"slice {lesion['axial_slice']}" in line and line in printed and "Lesions:" in printed
    back = hd.seg.segread(tmp_path / "pacs" / "seg.seg.dcm")
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in volume.source_files]
    import SimpleITK as sitk

    nifti = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "seg.nii.gz")))
    pixels = back.get_pixels_by_source_instance(uids, combine_segments=True, assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels > 0, nifti > 0)
