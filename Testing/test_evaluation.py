"""Metrics against hand-computed values, the runners, and `logsam evaluate`."""

from __future__ import annotations

import csv
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from LoGSAMLib.cli import main
from LoGSAMLib.cli.evaluate_cmd import class_of
from LoGSAMLib.datasets import DetectionSample, find_volume_pairs
from LoGSAMLib.errors import InputError
from LoGSAMLib.evaluation import (
    DetectionResult,
    average_precision,
    box_iou,
    dice,
    evaluate_brisc,
    evaluate_detector,
    evaluate_predictions,
    evaluate_volumes,
    hd95,
    iou,
    match_detections,
    mean_average_precision,
    recall_at_iou,
    score_detections,
    summary_table,
    volume_error,
    write_csv,
)
from LoGSAMLib.types import Box

# ---------------------------------------------------------------------- helpers


def _png(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, np.uint8) * 255 if mask.dtype == bool else mask.astype(np.uint8)).save(path)
    return path


def _rect(shape, r0, r1, c0, c1) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def _nifti(path: Path, array: np.ndarray, spacing=(0.5, 0.8, 3.0)) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((10.0, -5.0, 2.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


# ---------------------------------------------------------------------- overlap metrics


def test_dice_and_iou_by_hand():
    gt = np.zeros((4, 4), bool)
    gt[0, 0:4] = True  # 4 pixels
    pred = np.zeros((4, 4), bool)
    pred[0, 2:4] = True
    pred[1, 0] = True  # 3 pixels, 2 shared
    assert dice(pred, gt) == pytest.approx(4 / 7)
    assert iou(pred, gt) == pytest.approx(2 / 5)


def test_empty_mask_conventions():
    empty, full = np.zeros((3, 3), bool), np.ones((3, 3), bool)
    assert dice(empty, empty) == 1.0 and iou(empty, empty) == 1.0
    assert dice(full, empty) == 0.0 and iou(empty, full) == 0.0
    assert math.isnan(hd95(empty, empty))
    assert hd95(full, empty) == math.inf and hd95(empty, full) == math.inf
    assert math.isnan(volume_error(full, empty, (1, 1))[2])


def test_metrics_reject_mismatched_shapes_and_spacing():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="spacing"):
        hd95(np.ones((2, 2)), np.ones((2, 2)), spacing=(1, 1, 1))


def test_hd95_uses_spacing_in_x_y_order():
    # spacing (x, y) = (0.5, 2.0): a 3-column shift is 1.5 mm, a 2-row shift is 4 mm.
    gt = np.zeros((8, 8), bool)
    gt[2, 2] = True
    across = np.zeros((8, 8), bool)
    across[2, 5] = True
    down = np.zeros((8, 8), bool)
    down[4, 2] = True
    assert hd95(across, gt, spacing=(0.5, 2.0)) == pytest.approx(1.5)
    assert hd95(down, gt, spacing=(0.5, 2.0)) == pytest.approx(4.0)
    assert hd95(across, gt) == pytest.approx(3.0)  # no spacing: pixels


def test_hd95_nested_squares_by_hand():
    # A 3x3 square inside a 5x5 one: the outer ring's corners are sqrt(2) from the inner
    # ring (sqrt(5) with x spacing 2), its sides 1 (or 1 and 2 mm).
    outer = _rect((7, 7), 1, 6, 1, 6)
    inner = _rect((7, 7), 2, 5, 2, 5)
    assert hd95(inner, outer) == pytest.approx(math.sqrt(2))
    assert hd95(inner, outer, spacing=(2.0, 1.0)) == pytest.approx(math.sqrt(5))
    assert hd95(outer, outer, spacing=(2.0, 1.0)) == 0.0


def test_hd95_is_measured_between_surfaces_not_filled_masks():
    # A 20x20 square and the same without its last column. Between surfaces, the 20
    # pixels of the lost edge are 1 column (2 mm) away out of 76 ring pixels, above the
    # 95th percentile: 2 mm. Over the filled masks they would be 20 of 400 pixels: 0.1 mm.
    gt = _rect((22, 22), 1, 21, 1, 21)
    pred = _rect((22, 22), 1, 21, 1, 20)
    assert hd95(pred, gt, spacing=(2.0, 1.0)) == pytest.approx(2.0)


def test_hd95_is_the_95th_percentile_in_3d_with_anisotropic_z():
    gt = np.zeros((3, 3, 3), bool)
    gt[0, 0, 0] = True
    pred = np.zeros((3, 3, 3), bool)
    pred[0, 0, 1] = True  # 1 mm along x
    pred[1, 0, 0] = True  # 3 mm along z
    # pred -> gt distances [1, 3]: 95th percentile 1 + 0.95 * 2 = 2.9; gt -> pred: 1.
    assert hd95(pred, gt, spacing=(1.0, 1.0, 3.0)) == pytest.approx(2.9)


def test_volume_error_in_millilitres():
    gt = np.zeros((2, 4, 4), bool)
    gt[:, :2, :2] = True  # 8 voxels
    pred = np.zeros_like(gt)
    pred[0, :2, :2] = True
    pred[1, 0, :2] = True  # 6 voxels
    ml_pred, ml_gt, relative = volume_error(pred, gt, spacing=(1.0, 1.0, 2.0))  # 2 mm^3 per voxel
    assert (ml_pred, ml_gt) == (pytest.approx(0.012), pytest.approx(0.016))
    assert relative == pytest.approx(-0.25)


# ---------------------------------------------------------------------- detection metrics


def test_box_iou_matrix():
    ious = box_iou([[0, 0, 2, 2], [10, 10, 11, 11]], [[1, 1, 3, 3], [0, 0, 2, 2]])
    np.testing.assert_allclose(ious, [[1 / 7, 1.0], [0.0, 0.0]])


def test_matching_is_greedy_by_score_and_counts_duplicates_as_false_positives():
    gt = [[0, 0, 10, 10], [20, 20, 30, 30]]
    preds = [[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 30, 31], [50, 50, 60, 60]]
    m = match_detections(preds, [0.3, 0.9, 0.8, 0.95], gt, iou_threshold=0.5)
    np.testing.assert_allclose(m.scores, [0.95, 0.9, 0.8, 0.3])
    assert m.true_positive.tolist() == [False, True, True, False]  # the 0.3 duplicate comes too late
    assert m.gt_matched.tolist() == [True, True] and m.n_gt == 2
    strict = match_detections(preds, [0.3, 0.9, 0.8, 0.95], gt, iou_threshold=0.95)
    assert strict.true_positive.tolist() == [False, False, False, True]  # only the exact box (IoU 1)


def test_average_precision_and_recall_by_hand():
    # Two images, three ground-truth boxes. Ranked: TP, FP, TP, FP.
    # Precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3 -> AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    img1 = match_detections([[0, 0, 4, 4], [40, 40, 44, 44]], [0.9, 0.6], [[0, 0, 4, 4], [10, 10, 14, 14]])
    img2 = match_detections([[50, 50, 54, 54], [5, 5, 9, 9]], [0.8, 0.7], [[5, 5, 9, 9]])
    assert average_precision([img1, img2]) == pytest.approx(5 / 9)
    assert recall_at_iou([img1, img2]) == pytest.approx(2 / 3)
    no_preds = match_detections(np.zeros((0, 4)), [], [[0, 0, 1, 1]])
    assert average_precision([no_preds]) == 0.0
    assert math.isnan(average_precision([match_detections([[0, 0, 1, 1]], [0.5], np.zeros((0, 4)))]))


def test_mean_average_precision_over_classes_with_ground_truth():
    perfect = [match_detections([[0, 0, 4, 4]], [0.9], [[0, 0, 4, 4]])]
    half = [match_detections([[9, 9, 10, 10], [0, 0, 4, 4]], [0.9, 0.8], [[0, 0, 4, 4]])]  # AP 1/2
    nothing = [match_detections([[0, 0, 4, 4]], [0.9], np.zeros((0, 4)))]
    aps, mean = mean_average_precision({"glioma": perfect, "meningioma": half, "pituitary": nothing})
    assert aps["glioma"] == 1.0 and aps["meningioma"] == pytest.approx(0.5) and math.isnan(aps["pituitary"])
    assert mean == pytest.approx(0.75)


def test_score_detections_per_class(tmp_path):
    samples = [
        DetectionSample(tmp_path / "a.png", [[0, 0, 10, 10]], ["glioma"]),
        DetectionSample(tmp_path / "b.png", [[5, 5, 15, 15], [30, 30, 40, 40]], ["meningioma", "meningioma"]),
        DetectionSample(tmp_path / "c.png"),
    ]
    predictions = [
        [Box(0, 0, 10, 10, 0.9, "glioma")],
        [Box(5, 5, 15, 15, 0.8, "meningioma"), Box(0, 0, 3, 3, 0.95, "meningioma"), Box(0, 0, 1, 1, 0.99, "x")],
        [Box(1, 1, 5, 5, 0.5, "glioma")],
    ]
    result = score_detections(samples, predictions)
    glioma, meningioma = result.classes
    assert (glioma.label, glioma.n_gt, glioma.n_pred, glioma.recall, glioma.ap) == ("glioma", 1, 2, 1.0, 1.0)
    # meningioma: FP (0.95) then TP (0.8); recall 1/2; AP = 1/2 * 1/2.
    assert (meningioma.n_images, meningioma.n_gt, meningioma.n_pred) == (1, 2, 2)
    assert meningioma.recall == pytest.approx(0.5) and meningioma.ap == pytest.approx(0.25)
    assert result.map == pytest.approx(0.625) and result.mean_recall == pytest.approx(0.75)


# ---------------------------------------------------------------------- runners


def _brisc(root: Path) -> Path:
    """A small BRISC-style folder: bright lesions on dark images, masks beside them."""
    seg = root / "segmentation_task" / "test"
    lesions = {
        "brisc2025_test_00001_gl_ax_t1": (8, 24, 8, 24),
        "brisc2025_test_00002_gl_co_t1": (0, 16, 16, 32),
        "brisc2025_test_00500_me_sa_t1": (16, 32, 0, 16),
    }
    for stem, (r0, r1, c0, c1) in lesions.items():
        image = np.full((32, 32), 20, np.uint8)
        image[r0:r1, c0:c1] = 230
        _png(seg / "masks" / f"{stem}.png", _rect((32, 32), r0, r1, c0, c1))
        (seg / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(seg / "images" / f"{stem}.jpg", quality=95)
    negative = np.full((32, 32), 20, np.uint8)
    negative[0:8, 0:8] = 230  # a bright spot a threshold will wrongly call tumor
    path = root / "classification_task" / "test" / "no_tumor" / "brisc2025_test_00900_no_ax_t1.jpg"
    path.parent.mkdir(parents=True)
    Image.fromarray(negative).save(path, quality=95)
    return root


def test_evaluate_brisc_scores_each_case_with_its_file_name_prompt(tmp_path):
    root = _brisc(tmp_path)
    calls = []

    def predict(image, label, plane):
        calls.append((label, plane))
        return np.zeros_like(image, bool) if label == "meningioma" else image > 128  # misses meningioma

    result = evaluate_brisc(root, predict)
    assert sorted(calls) == [("glioma", "axial"), ("glioma", "coronal"), ("meningioma", "sagittal")]
    rows = {r.case: r for r in result.rows}
    assert rows["brisc2025_test_00001_gl_ax_t1"].dice == pytest.approx(1.0)
    assert rows["brisc2025_test_00500_me_sa_t1"].dice == 0.0
    assert rows["brisc2025_test_00500_me_sa_t1"].detected is False
    summary = result.summary
    assert list(summary) == ["glioma", "meningioma", "all"]
    assert summary["glioma"].dice == pytest.approx(1.0) and summary["glioma"].n == 2
    assert summary["all"].dice == pytest.approx(2 / 3) and summary["all"].detection_rate == pytest.approx(2 / 3)


def test_evaluate_brisc_negatives_and_limit_spread_over_classes(tmp_path):
    root = _brisc(tmp_path)
    result = evaluate_brisc(root, lambda image, label, plane: image > 128, include_negatives=True)
    negative = result.summary["no_tumor"]
    assert (negative.n, negative.n_positive, negative.false_positive_rate) == (1, 0, 1.0)
    assert math.isnan(negative.dice)
    assert result.summary["all"].dice == pytest.approx(1.0)  # Dice is over tumor cases only
    seen = []
    evaluate_brisc(root, lambda image, label, plane: seen.append(label) or image > 128, limit=2)
    assert sorted(seen) == ["glioma", "meningioma"]


def test_evaluate_brisc_reports_progress_and_checks_prediction_shape(tmp_path):
    root = _brisc(tmp_path)
    events = []
    evaluate_brisc(root, lambda image, label, plane: image > 128, progress=lambda s, f, m="": events.append((s, f)))
    assert events[0] == ("evaluate", 0.0) and events[-1] == ("evaluate", 1.0)
    with pytest.raises(ValueError, match="shape"):
        evaluate_brisc(root, lambda image, label, plane: np.zeros((3, 3), bool))


def test_evaluate_volumes_anisotropic_hd95_and_volume(tmp_path):
    spacing = (0.5, 0.8, 3.0)
    # Case "near": truth one voxel, the prediction (bright voxel) one slice above: 3 mm in z.
    image = np.zeros((6, 8, 8), np.int16)
    image[3, 4, 4] = 100
    label = np.zeros((6, 8, 8), np.uint8)
    label[2, 4, 4] = 1
    _nifti(tmp_path / "img" / "near.nii.gz", image, spacing)
    _nifti(tmp_path / "lab" / "near.nii.gz", label, spacing)
    # Case "same": a block found exactly (label value 2 also counts as tumor).
    image = np.zeros((6, 8, 8), np.int16)
    image[1:4, 2:6, 2:5] = 100
    _nifti(tmp_path / "img" / "same.nii.gz", image, spacing)
    _nifti(tmp_path / "lab" / "same.nii.gz", (image > 0).astype(np.uint8) * 2, spacing)

    seen_spacing = []

    def predict(volume):
        seen_spacing.append(volume.spacing)
        return volume.array > 50

    result = evaluate_volumes(find_volume_pairs(tmp_path / "img", tmp_path / "lab"), predict, label="glioma")
    rows = {r.case: r for r in result.rows}
    assert seen_spacing[0] == pytest.approx(spacing)
    assert rows["near"].hd95 == pytest.approx(3.0) and rows["near"].dice == 0.0 and rows["near"].detected is False
    assert rows["near"].volume_gt_ml == pytest.approx(0.5 * 0.8 * 3.0 / 1000)
    assert rows["same"].hd95 == 0.0 and rows["same"].dice == 1.0
    assert rows["same"].volume_gt_ml == pytest.approx(36 * 1.2 / 1000) and rows["same"].volume_error == 0.0
    summary = result.summary["glioma"]
    assert summary.hd95 == pytest.approx(1.5) and summary.dice == pytest.approx(0.5)
    assert summary.detection_rate == pytest.approx(0.5)


def test_evaluate_volumes_rejects_a_label_map_on_another_grid(tmp_path):
    _nifti(tmp_path / "img" / "a.nii.gz", np.zeros((4, 5, 6), np.int16))
    _nifti(tmp_path / "lab" / "a.nii.gz", np.zeros((4, 5, 5), np.uint8))
    with pytest.raises(InputError, match="grid"):
        evaluate_volumes(find_volume_pairs(tmp_path / "img", tmp_path / "lab"), lambda v: v.array > 0)


def test_evaluate_detector_calls_detect_with_all_classes(tmp_path):
    image = np.zeros((20, 20), np.uint8)
    paths = [_png(tmp_path / f"{i}.png", image) for i in range(3)]
    samples = [DetectionSample(paths[0], [[2, 2, 8, 8]], ["glioma"]),
               DetectionSample(paths[1], [[10, 10, 18, 18]], ["pituitary"]),
               DetectionSample(paths[2])]
    asked = []

    def detect(img, classes):
        asked.append(tuple(classes))
        # The same box on every image, more confident on each call: ranked FP, FP, TP.
        return [Box(2, 2, 8, 8, 0.5 + 0.1 * len(asked), "glioma")]

    result = evaluate_detector(samples, detect)
    assert asked == [("glioma", "pituitary")] * 3
    glioma, pituitary = result.classes
    assert glioma.recall == 1.0 and glioma.ap == pytest.approx(1 / 3)
    assert pituitary.recall == 0.0 and pituitary.ap == 0.0


# ---------------------------------------------------------------------- saved predictions and the CLI


def _predictions_2d(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    shape = (16, 16)
    _png(gt / "brisc2025_test_00001_gl_ax_t1.png", _rect(shape, 2, 6, 2, 6))  # 16 px
    _png(pred / "brisc2025_test_00001_gl_ax_t1.png", _rect(shape, 2, 6, 2, 6))
    _png(gt / "brisc2025_test_00002_gl_ax_t1.png", _rect(shape, 0, 4, 0, 4))  # 16 px
    _png(pred / "brisc2025_test_00002_gl_ax_t1_pred.png", _rect(shape, 0, 4, 2, 6))  # 8 shared
    _png(gt / "brisc2025_test_00600_pi_co_t1.png", _rect(shape, 8, 12, 8, 12))
    _png(pred / "brisc2025_test_00600_pi_co_t1.png", np.zeros(shape, bool))  # missed
    _png(gt / "brisc2025_test_00900_no_ax_t1.png", np.zeros(shape, bool))
    _png(pred / "brisc2025_test_00900_no_ax_t1.png", _rect(shape, 0, 1, 0, 1))  # false positive
    _png(gt / "brisc2025_test_00950_me_ax_t1.png", _rect(shape, 1, 3, 1, 3))  # no prediction
    return pred, gt


def test_evaluate_predictions_2d_matches_names_and_classes(tmp_path):
    pred, gt = _predictions_2d(tmp_path)
    result = evaluate_predictions(pred, gt)
    assert result.dimension == 2 and len(result.rows) == 4
    assert result.skipped == ["brisc2025_test_00950_me_ax_t1.png: no prediction"]
    summary = result.summary
    assert list(summary) == ["glioma", "pituitary", "no_tumor", "all"]
    assert summary["glioma"].dice == pytest.approx((1.0 + 0.5) / 2)
    assert summary["glioma"].iou == pytest.approx((1.0 + 1 / 3) / 2)
    assert summary["pituitary"].detection_rate == 0.0
    assert summary["no_tumor"].false_positive_rate == 1.0
    assert summary["all"].dice == pytest.approx(1.5 / 3)


def test_evaluate_predictions_reads_the_masks_folder_of_a_brisc_split(tmp_path):
    pred, gt = _predictions_2d(tmp_path)
    split = tmp_path / "segmentation_task" / "test"
    split.mkdir(parents=True)
    gt.rename(split / "masks")
    (split / "images").mkdir()
    assert len(evaluate_predictions(pred, split).rows) == 4


def test_cli_predictions_writes_csv_and_summary_atomically(tmp_path, capsys):
    pred, gt = _predictions_2d(tmp_path)
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    out.write_text("old contents\n")
    assert main(["evaluate", "--predictions", str(pred), "--ground-truth", str(gt), "--csv", str(out)]) == 0
    table = capsys.readouterr().out
    assert "glioma" in table and "75.00" in table  # mean glioma Dice, percent
    rows = _read_csv(out)
    assert [r["case"] for r in rows] == ["brisc2025_test_00001_gl_ax_t1", "brisc2025_test_00002_gl_ax_t1",
                                         "brisc2025_test_00600_pi_co_t1", "brisc2025_test_00900_no_ax_t1"]
    assert float(rows[1]["dice"]) == pytest.approx(0.5) and rows[1]["detected"] == "1"
    assert rows[2]["detected"] == "0" and rows[3]["false_positive"] == "1" and rows[3]["detected"] == ""
    summary = {r["class"]: r for r in _read_csv(out.with_name("scores_summary.csv"))}
    assert float(summary["all"]["dice"]) == pytest.approx(0.5) and summary["all"]["n"] == "4"
    assert float(summary["glioma"]["iou"]) == pytest.approx(2 / 3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.csv", "scores_summary.csv"]  # no temp files


def test_cli_predictions_3d_json(tmp_path, capsys):
    label = np.zeros((5, 6, 6), np.uint8)
    label[1:3, 1:4, 1:4] = 1  # 18 voxels of 0.5*0.8*3 = 1.2 mm^3
    pred = np.zeros_like(label)
    pred[1:2, 1:4, 1:4] = 3  # half of it
    _nifti(tmp_path / "gt" / "case1.nii.gz", label)
    _nifti(tmp_path / "pred" / "case1_seg.nrrd", pred)
    assert main(["evaluate", "--predictions", str(tmp_path / "pred"), "--ground-truth", str(tmp_path / "gt"),
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (case,) = data["cases"]
    assert data["dimension"] == 3 and case["case"] == "case1"
    assert case["dice"] == pytest.approx(2 / 3) and case["hd95"] == pytest.approx(3.0)
    assert case["volume_gt_ml"] == pytest.approx(18 * 1.2 / 1000) and case["volume_error"] == pytest.approx(-0.5)
    assert data["summary"]["all"]["abs_volume_error"] == pytest.approx(0.5)


def test_cli_predictions_size_mismatch_is_a_user_error_and_writes_nothing(tmp_path, capsys):
    _png(tmp_path / "gt" / "a.png", np.zeros((8, 8), bool))
    _png(tmp_path / "pred" / "a.png", np.zeros((8, 9), bool))
    out = tmp_path / "scores.csv"
    code = main(["evaluate", "--predictions", str(tmp_path / "pred"), "--ground-truth", str(tmp_path / "gt"),
                 "--csv", str(out)])
    assert code == 2 and "image's size" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    ([], "Say what to evaluate"),
    (["--predictions", "p"], "--ground-truth"),
    (["--volumes", "v", "--labels", "l"], "--prompt"),
    (["--coco", "c.json", "--images", "i"], "--detector-only"),
    (["--detector-only", "--coco", "c.json"], "--images"),
])
def test_cli_flag_combinations_give_actionable_errors(argv, message, capsys):
    assert main(["evaluate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_class_of_maps_detector_phrases_to_classes():
    classes = ["glioma", "meningioma", "pituitary"]
    assert class_of("Glioma", classes) == "glioma"
    assert class_of("pituitary adenoma", classes) == "pituitary"
    assert class_of("tumor", classes) is None


class _FakeDetector:
    def __init__(self):
        self.captions = []

    def detect(self, images, caption, box_threshold=None, text_threshold=None):
        self.captions.append(caption)
        rows, cols = np.nonzero(images[0] > 128)
        score = 0.5 + 0.1 * len(self.captions)  # later images score higher
        return [[Box(cols.min(), rows.min(), cols.max() + 1, rows.max() + 1, score, "glioma")]]


def _fake_pipeline(monkeypatch) -> list:
    """Stand-ins for the agreed pipeline API: threshold segmentation and a threshold 'detector'."""
    created = []

    class PipelineOptions:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class Pipeline:
        def __init__(self, options):
            created.append(options.kwargs)
            self.detector = _FakeDetector()

        def segment_image2d(self, image, label):
            return image > 128

        def segment(self, volume, classes):
            mask = volume.array > 50
            return types.SimpleNamespace(segmentation=types.SimpleNamespace(
                mask=lambda label: mask if label in classes else np.zeros_like(mask)))

    monkeypatch.setitem(sys.modules, "LoGSAMLib.pipeline",
                        types.SimpleNamespace(Pipeline=Pipeline, PipelineOptions=PipelineOptions))
    monkeypatch.setitem(sys.modules, "LoGSAMLib.prompts", types.SimpleNamespace(caption_for=lambda c: f"{c} ."))
    return created


def test_cli_brisc_runs_the_pipeline_with_its_options(tmp_path, monkeypatch, capsys):
    created = _fake_pipeline(monkeypatch)
    root = _brisc(tmp_path / "data")
    assert main(["evaluate", "--brisc", str(root), "--segmenter", "litemedsam", "--box-threshold", "0.3",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert created == [{"segmenter": "litemedsam", "box_threshold": 0.3}]
    assert data["summary"]["all"]["n"] == 3 and data["summary"]["all"]["dice"] == pytest.approx(1.0)


def test_cli_volumes_runs_the_3d_pipeline_with_plane_and_prompt(tmp_path, monkeypatch, capsys):
    created = _fake_pipeline(monkeypatch)
    image = np.zeros((4, 6, 6), np.int16)
    image[1:3, 2:4, 2:4] = 100
    label = np.zeros((4, 6, 6), np.uint8)
    label[1:3, 2:4, 2:5] = 1  # 12 voxels; the prediction finds 8 of them
    _nifti(tmp_path / "img" / "p1_0000.nii.gz", image)
    _nifti(tmp_path / "lab" / "p1.nii.gz", label)
    assert main(["evaluate", "--volumes", str(tmp_path / "img"), "--labels", str(tmp_path / "lab"),
                 "--prompt", "meningioma", "--plane", "coronal", "--adapter", "none", "--json"]) == 0
    assert created == [{"adapter": None, "plane": "coronal"}]
    data = json.loads(capsys.readouterr().out)
    assert data["cases"][0]["label"] == "meningioma" and data["cases"][0]["dice"] == pytest.approx(0.8)
    assert list(data["summary"]) == ["meningioma", "all"]


def test_cli_detector_only_on_brisc(tmp_path, monkeypatch, capsys):
    _fake_pipeline(monkeypatch)
    root = _brisc(tmp_path / "data")
    out = tmp_path / "det.csv"
    assert main(["evaluate", "--detector-only", "--brisc", str(root), "--csv", str(out)]) == 0
    assert "recall@0.5" in capsys.readouterr().out
    rows = {r["class"]: r for r in _read_csv(out)}
    # The fake labels every box "glioma". Images run gl, gl, me, no-tumor with rising scores, so the
    # ranking is FP (no-tumor spot), FP (meningioma), TP, TP: precision 2/4 at full recall -> AP 1/2.
    assert float(rows["glioma"]["recall@0.5"]) == 1.0
    assert float(rows["glioma"]["ap@0.5"]) == pytest.approx(0.5)
    assert rows["mean"]["n_images"] == "4"
    assert float(rows["meningioma"]["recall@0.5"]) == 0.0
    assert float(rows["mean"]["recall@0.5"]) == pytest.approx(0.5)


def test_summary_table_is_aligned_and_marks_undefined_values(tmp_path):
    result = evaluate_brisc(_brisc(tmp_path), lambda image, label, plane: image > 128, include_negatives=True)
    lines = summary_table(result).splitlines()
    assert len({len(line) for line in lines}) == 1  # every line as wide as the header
    no_tumor = next(line for line in lines if line.startswith("no_tumor"))
    assert " - " in no_tumor and "100.00" in no_tumor  # no Dice; the one negative is a false positive


def test_write_csv_detection_result(tmp_path):
    result = DetectionResult([], n_images=0)
    (path,) = write_csv(result, tmp_path / "d.csv")
    assert _read_csv(path) == [{"class": "mean", "n_images": "0", "n_gt": "0", "n_pred": "0",
                                "recall@0.5": "nan", "ap@0.5": "nan"}]
