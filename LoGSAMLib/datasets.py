"""Data sets on disk: BRISC 2025 folders, COCO detection JSON, 3D volume/label pairs.

BRISC 2025 file names carry the split, the class and the plane::

    brisc2025_<split>_<index>_<gl|me|pi|no>_<ax|co|sa>_t1.jpg   (image)
    brisc2025_<split>_<index>_<gl|me|pi|no>_<ax|co|sa>_t1.png   (mask, same stem)

:func:`load_brisc` searches the given folder recursively, so all the layouts in which
the data set is distributed or commonly unpacked work:

- the Kaggle download ``brisc2025/[brisc2025/]segmentation_task/{train,test}/{images,masks}/``
  and its ``classification_task/{train,test}/<class>/`` folders (which add the
  no-tumor images, that have no masks);
- ``segmentation_task/{images,masks}/`` without split folders (the split is read from
  the file name);
- a flat folder of images next to a ``masks/`` folder.

An *image* is a ``.jpg``/``.jpeg``/``.png`` whose name matches the pattern and that
is not in a mask folder. A *mask* is a ``.png`` with the same stem (or the stem plus
``_mask``) inside a folder whose name contains ``mask``. An image that appears in
several folders (BRISC copies tumor images into both tasks) is one case. Other files
are ignored.

Mask pixels: a mask whose maximum is below 128 is read as ``value > 0`` (0/1 or label
masks), otherwise as ``value >= 128`` (0/255 masks, robust to resampling blur).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .models import sha256_file

log = logging.getLogger(__name__)

CLASS_CODES: dict[str, str | None] = {"gl": "glioma", "me": "meningioma", "pi": "pituitary", "no": None}
PLANE_CODES: dict[str, str] = {"ax": "axial", "co": "coronal", "sa": "sagittal"}
NO_TUMOR = "no_tumor"  # how a case without tumor is named in tables and splits

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
VOLUME_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha")
DEFAULT_MIN_BOX_AREA = 10  # pixels; smaller mask components are annotation specks, not lesions

_BRISC_RE = re.compile(
    r"^brisc2025_(?P<split>[a-z]+)_(?P<index>\d+)_(?P<code>gl|me|pi|no)_(?P<plane>ax|co|sa)_(?P<seq>[a-z0-9]+)$",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------- BRISC


@dataclass(frozen=True)
class BriscName:
    split: str  # "train" | "test"
    index: int
    label: str | None  # "glioma" | "meningioma" | "pituitary" | None (no tumor)
    plane: str  # "axial" | "coronal" | "sagittal"


@dataclass(frozen=True)
class BriscCase:
    image_path: Path
    mask_path: Path | None  # None for no-tumor images (and tumor images without a mask)
    label: str | None
    plane: str
    split: str
    index: int

    @property
    def name(self) -> str:
        return self.image_path.stem

    @property
    def class_name(self) -> str:
        """The class as shown in tables: the tumor class or ``"no_tumor"``."""
        return self.label or NO_TUMOR


def _stem(name: str) -> str:
    """File name without directory and without all extensions (``a.nii.gz`` -> ``a``)."""
    base = os.path.basename(str(name))
    for ext in VOLUME_EXTENSIONS + IMAGE_EXTENSIONS:
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base.rsplit(".", 1)[0] if "." in base else base


def parse_brisc_name(name: str | os.PathLike) -> BriscName:
    """Parse a BRISC 2025 file name (path and extension are ignored)."""
    stem = _stem(str(name))
    match = _BRISC_RE.match(stem)
    if match is None:
        raise InputError(
            f"{os.path.basename(str(name))!r} is not a BRISC 2025 file name; expected "
            "brisc2025_<split>_<index>_<gl|me|pi|no>_<ax|co|sa>_t1.jpg"
        )
    return BriscName(
        split=match["split"].lower(),
        index=int(match["index"]),
        label=CLASS_CODES[match["code"].lower()],
        plane=PLANE_CODES[match["plane"].lower()],
    )


def _is_brisc_name(stem: str) -> bool:
    return _BRISC_RE.match(stem) is not None


def _in_mask_folder(path: Path) -> bool:
    return "mask" in path.parent.name.lower()


def load_brisc(root: str | os.PathLike, split: str | None = None) -> list[BriscCase]:
    """All BRISC 2025 cases under ``root`` (see the module docstring for the layouts).

    ``split`` ("train" / "test") keeps the cases of that split (read from the file name);
    ``None`` or "all" keeps all. Cases are sorted by split and index.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"BRISC folder {str(root)!r} does not exist; pass the unpacked brisc2025 folder.")
    images: dict[str, list[Path]] = defaultdict(list)
    masks: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        stem = path.stem
        if _in_mask_folder(path):
            if suffix != ".png":
                continue
            if stem.lower().endswith("_mask"):
                stem = stem[: -len("_mask")]
            if _is_brisc_name(stem):
                masks.setdefault(stem, path)
        elif _is_brisc_name(stem):
            images[stem].append(path)
    if not images:
        raise InputError(
            f"No BRISC 2025 images (brisc2025_<split>_<index>_<class>_<plane>_t1.jpg) found under "
            f"{str(root)!r}; pass the folder that holds segmentation_task/."
        )
    for stem in sorted(set(masks) - set(images)):
        log.warning("mask %s has no image; ignored", masks[stem])

    wanted = None if split in (None, "all") else split.lower()
    cases: list[BriscCase] = []
    for stem, paths in images.items():
        info = parse_brisc_name(stem)
        if wanted is not None and info.split != wanted:
            continue
        mask = masks.get(stem)
        # Prefer the copy of the image that sits beside its mask (segmentation_task over classification_task).
        paths.sort(key=lambda p: (mask is None or p.parent.parent != mask.parent.parent, str(p)))
        cases.append(BriscCase(paths[0], mask, info.label, info.plane, info.split, info.index))
    if not cases:
        raise InputError(f"No BRISC 2025 images of split {split!r} under {str(root)!r}; try --split all.")
    cases.sort(key=lambda c: (c.split, c.index, c.name))
    return cases


# ----------------------------------------------------------------------- pixel reads


def read_image_uint8(path: str | os.PathLike) -> np.ndarray:
    """A 2D image file as a uint8 grayscale array ``[row, col]``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = image.convert("L")
            return np.asarray(gray, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"Cannot read image {str(path)!r}: {error}") from error


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A 2D mask file as a bool array (threshold rule in the module docstring)."""
    values = read_image_uint8(path)
    return values > 0 if values.max(initial=0) < 128 else values >= 128


def boxes_from_mask(mask2d: np.ndarray, min_area: int = DEFAULT_MIN_BOX_AREA) -> list[tuple[int, int, int, int]]:
    """One ``(x0, y0, x1, y1)`` box per 8-connected component of ``mask2d``.

    Pixel-corner convention: ``x1 = last column + 1``, ``y1 = last row + 1``.
    Components with fewer than ``min_area`` pixels are dropped. Boxes are ordered by the
    raster position of each component's first pixel.
    """
    from scipy import ndimage

    mask2d = np.asarray(mask2d, dtype=bool)
    if mask2d.ndim != 2:
        raise ValueError(f"boxes_from_mask expects a 2D mask, got shape {mask2d.shape}")
    labels, count = ndimage.label(mask2d, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    boxes = []
    for index, slices in enumerate(ndimage.find_objects(labels), start=1):
        if slices is None or areas[index] < min_area:
            continue
        rows, cols = slices
        boxes.append((cols.start, rows.start, cols.stop, rows.stop))
    return boxes


# ------------------------------------------------------------------------- detection


@dataclass(eq=False)
class DetectionSample:
    """One image with its ground-truth boxes (``(N, 4)`` xyxy pixels) and class names."""

    image_path: Path
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image_path = Path(self.image_path)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.labels = [str(label) for label in self.labels]
        if len(self.labels) != len(self.boxes):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.labels)} labels for {self.image_path}")

    @classmethod
    def from_brisc(cls, case: BriscCase, min_area: int = DEFAULT_MIN_BOX_AREA) -> DetectionSample:
        """Boxes from the case's mask (one per component); a no-tumor case has none."""
        if case.label is None:
            return cls(case.image_path)
        if case.mask_path is None:
            raise InputError(f"{case.name} is a {case.label} image without a mask; boxes cannot be derived.")
        boxes = boxes_from_mask(read_mask(case.mask_path), min_area=min_area)
        return cls(case.image_path, np.array(boxes, dtype=np.float64), [case.label] * len(boxes))


def detection_samples_from_brisc(
    cases: Sequence[BriscCase], min_area: int = DEFAULT_MIN_BOX_AREA
) -> list[DetectionSample]:
    """Detection samples for BRISC cases; tumor images without a mask are skipped (logged)."""
    samples = []
    for case in cases:
        if case.label is not None and case.mask_path is None:
            log.warning("%s has no mask; skipped", case.image_path)
            continue
        samples.append(DetectionSample.from_brisc(case, min_area=min_area))
    return samples


def load_coco(json_path: str | os.PathLike, image_root: str | os.PathLike) -> list[DetectionSample]:
    """Detection samples from a COCO-format JSON (``bbox`` is ``[x, y, w, h]`` -> xyxy).

    Class names are the category names, lower-cased. Crowd annotations (``iscrowd=1``)
    and boxes without area are skipped; images without annotations are kept (negatives).
    """
    import json

    json_path, image_root = Path(json_path), Path(image_root)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"Cannot read COCO file {str(json_path)!r}: {error}") from error
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise InputError(f"{str(json_path)!r} is not a COCO detection file (needs 'images' and 'annotations').")
    categories = {c["id"]: str(c["name"]).strip().lower() for c in data.get("categories", [])}
    per_image: dict[int, list[tuple[list[float], str]]] = defaultdict(list)
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w <= 0 or h <= 0:
            continue
        if ann["category_id"] not in categories:
            raise InputError(f"{str(json_path)!r}: annotation {ann.get('id')} has unknown category "
                             f"{ann['category_id']}; add it to 'categories'.")
        per_image[ann["image_id"]].append(([x, y, x + w, y + h], categories[ann["category_id"]]))
    samples = []
    for image in data["images"]:
        path = image_root / image["file_name"]
        if not path.is_file():
            raise InputError(f"COCO image {str(path)!r} not found; check --images (the folder of the file names).")
        anns = per_image.get(image["id"], [])
        samples.append(DetectionSample(path, np.array([a[0] for a in anns]).reshape(-1, 4), [a[1] for a in anns]))
    if not samples:
        raise InputError(f"{str(json_path)!r} lists no images.")
    return samples


# ------------------------------------------------------------------ splits and hashes


def stratum(case: BriscCase | DetectionSample) -> str:
    """The class key a case is stratified by (``no_tumor`` for empty samples)."""
    if isinstance(case, BriscCase):
        return case.class_name
    return "+".join(sorted(set(case.labels))) or NO_TUMOR


def _case_key(case: BriscCase | DetectionSample) -> str:
    return str(case.image_path)


def split_cases(cases: Sequence, val_fraction: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """Split into ``(train, val)``, stratified by class and reproducible by ``seed``.

    Each class contributes ``round(n * val_fraction)`` cases to validation (a class with
    a single case stays in training). The result does not depend on the input order,
    and each class's draw depends only on that class's cases, so adding images of one
    class does not reshuffle the others. Both lists keep the input order.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"Validation fraction must be in [0, 1), got {val_fraction}.")
    groups: dict[str, list] = defaultdict(list)
    for case in cases:
        groups[stratum(case)].append(case)
    val_keys: set[str] = set()
    for name, members in groups.items():
        keys = sorted(_case_key(c) for c in members)
        n_val = round(len(keys) * val_fraction) if len(keys) > 1 else 0
        random.Random(f"{seed}:{name}").shuffle(keys)
        val_keys.update(keys[:n_val])
    train = [c for c in cases if _case_key(c) not in val_keys]
    val = [c for c in cases if _case_key(c) in val_keys]
    return train, val


def dataset_hash(cases: Sequence[BriscCase | DetectionSample]) -> str:
    """SHA-256 over each case's files (path relative to the data root + content hash).

    Detection samples also hash their boxes and labels (a COCO JSON can change them
    without touching an image). Moving the whole data set elsewhere keeps the hash.
    """
    files: set[Path] = set()
    for case in cases:
        files.add(Path(case.image_path).resolve())
        if isinstance(case, BriscCase) and case.mask_path is not None:
            files.add(Path(case.mask_path).resolve())
    if not files:
        raise InputError("Cannot hash an empty data set.")
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    for case in sorted((c for c in cases if isinstance(c, DetectionSample)), key=_case_key):
        rel = Path(case.image_path).resolve().relative_to(root).as_posix()
        boxes = ";".join(",".join(f"{v:.3f}" for v in box) for box in case.boxes)
        digest.update(f"{rel}\0{boxes}\0{'|'.join(case.labels)}\n".encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------ 3D volumes

_NNUNET_CHANNEL = re.compile(r"_\d{4}$")  # nnU-Net image names: case_0000.nii.gz
_LABEL_SUFFIXES = ("_seg", "_label", "_labels", "_mask", "_gt")


def _volume_files(directory: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        name = path.name.lower()
        if path.is_file() and name.endswith(VOLUME_EXTENSIONS) and not name.endswith(".seg.nrrd"):
            files.setdefault(_stem(path.name), path)
    return files


def find_volume_pairs(images_dir: str | os.PathLike, labels_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(image, label)`` pairs of 3D files (.nii, .nii.gz, .nrrd, .mha) matched by stem.

    Accepted name variants: the image stem may end in an nnU-Net channel suffix
    (``case_0000``) and the label stem in ``_seg``, ``_label(s)``, ``_mask`` or ``_gt``;
    formats may differ (``case.nrrd`` with ``case.nii.gz``). Images without a label are
    skipped (logged); an ambiguous match is an error.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for directory, what in ((images_dir, "images"), (labels_dir, "labels")):
        if not directory.is_dir():
            raise InputError(f"{what} folder {str(directory)!r} does not exist.")
    labels: dict[str, Path] = {}
    for stem, path in _volume_files(labels_dir).items():
        key = next((stem[: -len(s)] for s in _LABEL_SUFFIXES if stem.lower().endswith(s)), stem)
        if key in labels:
            raise InputError(f"Two label files for case {key!r}: {labels[key].name} and {path.name}; keep one.")
        labels[key] = path
    pairs: list[tuple[Path, Path]] = []
    used: dict[str, Path] = {}
    for stem, path in _volume_files(images_dir).items():
        key = stem if stem in labels else _NNUNET_CHANNEL.sub("", stem)
        if key not in labels:
            log.warning("no label for %s; skipped", path.name)
            continue
        if key in used:
            raise InputError(f"Two images for case {key!r} ({used[key].name}, {path.name}); "
                             "keep one channel per case in the images folder.")
        used[key] = path
        pairs.append((path, labels[key]))
    if not pairs:
        raise InputError(
            f"No image/label pairs with matching names in {str(images_dir)!r} and {str(labels_dir)!r} "
            f"(volumes: {', '.join(VOLUME_EXTENSIONS)})."
        )
    return pairs
