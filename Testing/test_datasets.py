"""Data set loading: BRISC names and layouts, boxes from masks, COCO, splits, hashes, 3D pairs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from LoGSAMLib.datasets import (
    DetectionSample,
    boxes_from_mask,
    dataset_hash,
    detection_samples_from_brisc,
    find_volume_pairs,
    load_brisc,
    load_coco,
    parse_brisc_name,
    read_mask,
    split_cases,
)
from LoGSAMLib.errors import InputError


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def _slice(rect: tuple[int, int, int, int] | None, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """An image (dark background, bright lesion) and its 0/255 mask; rect = (row0, row1, col0, col1)."""
    image = np.full((size, size), 30, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    if rect is not None:
        r0, r1, c0, c1 = rect
        image[r0:r1, c0:c1] = 220
        mask[r0:r1, c0:c1] = 255
    return image, mask


def make_kaggle_brisc(root: Path) -> Path:
    """The Kaggle layout: segmentation_task/{train,test}/{images,masks} + classification_task copies."""
    base = root / "brisc2025" / "brisc2025"
    cases = {
        "brisc2025_train_00001_gl_ax_t1": (4, 12, 4, 12),
        "brisc2025_train_01201_me_co_t1": (8, 16, 16, 24),
        "brisc2025_test_00003_gl_sa_t1": (16, 24, 8, 16),
        "brisc2025_test_00400_pi_ax_t1": (12, 20, 12, 20),
    }
    for stem, rect in cases.items():
        split = stem.split("_")[1]
        image, mask = _slice(rect)
        _save(base / "segmentation_task" / split / "images" / f"{stem}.jpg", image)
        _save(base / "segmentation_task" / split / "masks" / f"{stem}.png", mask)
        label = {"gl": "glioma", "me": "meningioma", "pi": "pituitary"}[stem.split("_")[3]]
        _save(base / "classification_task" / split / label / f"{stem}.jpg", image)  # the same image again
    for stem in ("brisc2025_test_00900_no_ax_t1", "brisc2025_train_04001_no_co_t1"):
        _save(base / "classification_task" / stem.split("_")[1] / "no_tumor" / f"{stem}.jpg", _slice(None)[0])
    (base / "manifest.csv").write_text("not an image\n")
    return root / "brisc2025"


# ---------------------------------------------------------------------- names


def test_parse_brisc_name_reads_split_index_class_and_plane():
    name = parse_brisc_name("/data/x/brisc2025_test_00010_gl_ax_t1.jpg")
    assert (name.split, name.index, name.label, name.plane) == ("test", 10, "glioma", "axial")
    assert parse_brisc_name("brisc2025_train_02477_no_sa_t1.png").label is None
    assert parse_brisc_name("brisc2025_train_02477_no_sa_t1.png").plane == "sagittal"
    assert parse_brisc_name("brisc2025_train_01500_pi_co_t1").label == "pituitary"


@pytest.mark.parametrize("bad", ["Tr-gl_0010.jpg", "brisc2025_train_00001_xx_ax_t1.jpg",
                                 "brisc2025_train_00001_gl_zz_t1.jpg", "brisc2025_train_gl_ax_t1.jpg"])
def test_parse_brisc_name_rejects_other_names_with_the_expected_pattern(bad):
    with pytest.raises(InputError, match="brisc2025_<split>"):
        parse_brisc_name(bad)


# ---------------------------------------------------------------------- layouts


def test_load_brisc_kaggle_layout_pairs_masks_and_keeps_one_copy_per_image(tmp_path):
    root = make_kaggle_brisc(tmp_path)
    cases = load_brisc(root)
    names = [c.name for c in cases]
    assert names == [
        "brisc2025_test_00003_gl_sa_t1", "brisc2025_test_00400_pi_ax_t1", "brisc2025_test_00900_no_ax_t1",
        "brisc2025_train_00001_gl_ax_t1", "brisc2025_train_01201_me_co_t1", "brisc2025_train_04001_no_co_t1",
    ]
    by_name = {c.name: c for c in cases}
    tumor = by_name["brisc2025_train_01201_me_co_t1"]
    assert tumor.label == "meningioma" and tumor.plane == "coronal" and tumor.split == "train"
    assert tumor.mask_path.name == "brisc2025_train_01201_me_co_t1.png"
    assert "segmentation_task" in tumor.image_path.parts  # the copy beside its mask
    negative = by_name["brisc2025_test_00900_no_ax_t1"]
    assert negative.label is None and negative.mask_path is None and negative.class_name == "no_tumor"


def test_load_brisc_filters_by_split_from_the_file_name(tmp_path):
    root = make_kaggle_brisc(tmp_path)
    test = load_brisc(root, split="test")
    assert {c.split for c in test} == {"test"} and len(test) == 3
    assert len(load_brisc(root, split="all")) == 6


def test_load_brisc_flat_layout_with_mask_suffix(tmp_path):
    image, mask = _slice((2, 6, 2, 6))
    _save(tmp_path / "brisc2025_test_00007_me_ax_t1.jpg", image)
    _save(tmp_path / "masks" / "brisc2025_test_00007_me_ax_t1_mask.png", mask)
    _save(tmp_path / "holiday.jpg", image)  # not a BRISC name: ignored
    (case,) = load_brisc(tmp_path)
    assert case.mask_path == tmp_path / "masks" / "brisc2025_test_00007_me_ax_t1_mask.png"
    assert read_mask(case.mask_path).sum() == 16


def test_load_brisc_errors_are_actionable(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_brisc(tmp_path / "missing")
    _save(tmp_path / "other.jpg", _slice(None)[0])
    with pytest.raises(InputError, match="No BRISC 2025 images"):
        load_brisc(tmp_path)
    root = make_kaggle_brisc(tmp_path / "b")
    with pytest.raises(InputError, match="--split all"):
        load_brisc(root, split="val")


def test_read_mask_accepts_0_1_and_0_255_masks(tmp_path):
    ones = np.zeros((4, 4), np.uint8)
    ones[1, 1] = 1
    assert read_mask(_save(tmp_path / "a.png", ones)).sum() == 1
    blurred = np.array([[0, 100, 200, 255]], np.uint8)  # resampling blur below half is background
    assert read_mask(_save(tmp_path / "b.png", blurred)).tolist() == [[False, False, True, True]]


# ---------------------------------------------------------------------- boxes


def test_boxes_from_mask_one_box_per_component_with_exclusive_corners():
    mask = np.zeros((20, 30), bool)
    mask[2:5, 3:9] = True  # rows 2..4, cols 3..8
    mask[10:18, 20:22] = True  # rows 10..17, cols 20..21
    assert boxes_from_mask(mask) == [(3, 2, 9, 5), (20, 10, 22, 18)]


def test_boxes_from_mask_joins_diagonal_neighbours_and_drops_specks():
    mask = np.zeros((10, 10), bool)
    mask[1:4, 1:4] = True
    mask[4:6, 4:6] = True  # touches the first block only at a corner: same lesion
    mask[8, 8] = True  # a one-pixel speck
    assert boxes_from_mask(mask) == [(1, 1, 6, 6)]
    assert boxes_from_mask(mask, min_area=1) == [(1, 1, 6, 6), (8, 8, 9, 9)]
    assert boxes_from_mask(np.zeros((5, 5), bool)) == []


def test_detection_samples_from_brisc_cases(tmp_path):
    root = make_kaggle_brisc(tmp_path)
    samples = {s.image_path.stem: s for s in detection_samples_from_brisc(load_brisc(root))}
    glioma = samples["brisc2025_train_00001_gl_ax_t1"]
    assert glioma.labels == ["glioma"]
    np.testing.assert_array_equal(glioma.boxes, [[4, 4, 12, 12]])
    negative = samples["brisc2025_test_00900_no_ax_t1"]
    assert negative.boxes.shape == (0, 4) and negative.labels == []


# ---------------------------------------------------------------------- COCO


def test_load_coco_converts_xywh_to_xyxy_and_keeps_negatives(tmp_path):
    for name in ("a.png", "b.png"):
        _save(tmp_path / "img" / name, _slice(None)[0])
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
        "categories": [{"id": 7, "name": "Glioma"}, {"id": 8, "name": "meningioma"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5]},
            {"id": 2, "image_id": 1, "category_id": 8, "bbox": [0, 0, 4, 4], "iscrowd": 1},
            {"id": 3, "image_id": 1, "category_id": 8, "bbox": [20, 21, 1.5, 2]},
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    a, b = load_coco(path, tmp_path / "img")
    np.testing.assert_allclose(a.boxes, [[2, 3, 12, 8], [20, 21, 21.5, 23]])
    assert a.labels == ["glioma", "meningioma"]
    assert b.boxes.shape == (0, 4) and b.labels == []


def test_load_coco_reports_missing_images_and_bad_files(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "gone.png"}], "annotations": [],
                                "categories": []}))
    with pytest.raises(InputError, match="--images"):
        load_coco(path, tmp_path)
    path.write_text("[]")
    with pytest.raises(InputError, match="not a COCO"):
        load_coco(path, tmp_path)


# ---------------------------------------------------------------------- splits and hashes


def _fake_cases(tmp_path: Path, counts: dict[str, int]) -> list[DetectionSample]:
    cases = []
    for label, n in counts.items():
        for i in range(n):
            path = tmp_path / f"{label}_{i:03d}.png"
            cases.append(DetectionSample(path, [[0, 0, 1, 1]] if label != "none" else [],
                                         [label] if label != "none" else []))
    return cases


def test_split_cases_is_stratified_reproducible_and_order_independent(tmp_path):
    cases = _fake_cases(tmp_path, {"glioma": 20, "meningioma": 10, "pituitary": 5, "none": 1})
    train, val = split_cases(cases, val_fraction=0.2, seed=3)
    assert len(train) + len(val) == len(cases)
    assert not {id(c) for c in train} & {id(c) for c in val}
    per_class = {label: sum(1 for c in val if c.labels == [label]) for label in ("glioma", "meningioma", "pituitary")}
    assert per_class == {"glioma": 4, "meningioma": 2, "pituitary": 1}
    assert all(c.labels for c in val)  # the single negative stays in training
    again = split_cases(list(reversed(cases)), val_fraction=0.2, seed=3)[1]
    assert sorted(str(c.image_path) for c in again) == sorted(str(c.image_path) for c in val)
    other = split_cases(cases, val_fraction=0.2, seed=4)[1]
    assert {str(c.image_path) for c in other} != {str(c.image_path) for c in val}


def test_split_cases_one_class_does_not_reshuffle_another(tmp_path):
    base = _fake_cases(tmp_path, {"glioma": 20, "meningioma": 10})
    more = base + _fake_cases(tmp_path / "x", {"pituitary": 10})
    first = {str(c.image_path) for c in split_cases(base, seed=0)[1]}
    second = {str(c.image_path) for c in split_cases(more, seed=0)[1] if c.labels != ["pituitary"]}
    assert first == second


def test_dataset_hash_changes_with_content_not_location(tmp_path):
    root = make_kaggle_brisc(tmp_path / "one")
    digest = dataset_hash(load_brisc(root))
    assert len(digest) == 64 and digest == dataset_hash(load_brisc(root))
    copy = tmp_path / "two"
    shutil.copytree(tmp_path / "one", copy)
    assert dataset_hash(load_brisc(copy / "brisc2025")) == digest
    mask = next((copy / "brisc2025").rglob("brisc2025_train_00001_gl_ax_t1.png"))
    array = np.array(Image.open(mask))
    array[0, 0] = 255
    Image.fromarray(array).save(mask)
    assert dataset_hash(load_brisc(copy / "brisc2025")) != digest


def test_dataset_hash_of_detection_samples_covers_boxes(tmp_path):
    image = _save(tmp_path / "a.png", _slice(None)[0])
    one = dataset_hash([DetectionSample(image, [[0, 0, 5, 5]], ["glioma"])])
    assert one != dataset_hash([DetectionSample(image, [[0, 0, 5, 6]], ["glioma"])])
    assert one != dataset_hash([DetectionSample(image, [[0, 0, 5, 5]], ["meningioma"])])


# ---------------------------------------------------------------------- 3D pairs


def test_find_volume_pairs_matches_stems_and_common_variants(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for name in ("a.nii.gz", "b_0000.nii.gz", "c.mha", "lonely.nrrd", "notes.txt"):
        (images / name).write_bytes(b"x")
    for name in ("a.nrrd", "b.nii.gz", "c_seg.nii", "other.nii.gz"):
        (labels / name).write_bytes(b"x")
    pairs = find_volume_pairs(images, labels)
    assert [(i.name, lab.name) for i, lab in pairs] == [
        ("a.nii.gz", "a.nrrd"), ("b_0000.nii.gz", "b.nii.gz"), ("c.mha", "c_seg.nii")]


def test_find_volume_pairs_errors(tmp_path):
    (tmp_path / "i").mkdir()
    (tmp_path / "l").mkdir()
    (tmp_path / "i" / "a.nii.gz").write_bytes(b"x")
    (tmp_path / "l" / "z.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match="No image/label pairs"):
        find_volume_pairs(tmp_path / "i", tmp_path / "l")
    with pytest.raises(InputError, match="does not exist"):
        find_volume_pairs(tmp_path / "nope", tmp_path / "l")
