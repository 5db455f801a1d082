"""How well a segmenter does from boxes: tight boxes from the ground truth, then enlarged or
shifted ones. Used by the LiteMedSAM accuracy test and ``benchmarks/segmentation_bench.py``.

Slice cases come from the MNI152 phantoms (``LoGSAMLib.testing.phantoms``, imported lazily):
each planted lesion is cut through its centre and half a radius off it, axially and coronally;
slices are windowed to uint8 as the pipeline does it (one window per volume).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FRACTIONS = (0.1, 0.2, 0.3)
SHIFT_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1))  # diagonal, in units of (width, height)


@dataclass
class SliceCase:
    image: np.ndarray  # uint8 (H, W)
    mask: np.ndarray  # bool (H, W): the one lesion the box is about
    kind: str  # "glioma", "meningioma", "pituitary"
    name: str  # e.g. "glioma r15 left frontal, axial +0.0r"


def tight_box(mask: np.ndarray) -> np.ndarray:
    """The (4,) xyxy box around a mask, in pixel-corner coordinates (x1, y1 exclusive)."""
    rows, cols = np.nonzero(mask)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float64)


def enlarge_box(box: np.ndarray, fraction: float) -> np.ndarray:
    """Width and height grown by ``fraction`` about the same centre."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * fraction / 2, (y1 - y0) * fraction / 2
    return np.array([x0 - dx, y0 - dy, x1 + dx, y1 + dy])


def shift_box(box: np.ndarray, fraction: float, direction: tuple[int, int]) -> np.ndarray:
    """The box moved by ``fraction`` of its width and of its height along ``direction``."""
    x0, y0, x1, y1 = box
    dx, dy = direction[0] * (x1 - x0) * fraction, direction[1] * (y1 - y0) * fraction
    return np.array([x0 + dx, y0 + dy, x1 + dx, y1 + dy])


def box_conditions(
    box: np.ndarray,
    fractions: Sequence[float] = FRACTIONS,
    directions: Sequence[tuple[int, int]] = SHIFT_DIRECTIONS,
) -> dict[str, list[np.ndarray]]:
    """Condition name -> the boxes whose Dice is averaged for it ("tight", "enlarge 10%", ...)."""
    conditions = {"tight": [box]}
    for f in fractions:
        conditions[f"enlarge {f:.0%}"] = [enlarge_box(box, f)]
    for f in fractions:
        conditions[f"shift {f:.0%}"] = [shift_box(box, f, d) for d in directions]
    return conditions


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def box_sensitivity(
    segmenter,
    cases: Sequence[SliceCase],
    fractions: Sequence[float] = FRACTIONS,
    directions: Sequence[tuple[int, int]] = SHIFT_DIRECTIONS,
    batch_size: int = 4,
) -> dict[str, list[float]]:
    """Condition -> Dice per case. Every box of a case goes through one decoder batch."""
    plans = [box_conditions(tight_box(case.mask), fractions, directions) for case in cases]
    boxes = [np.stack([b for group in plan.values() for b in group]) for plan in plans]
    masks = segmenter.segment_many([case.image for case in cases], boxes, batch_size=batch_size)
    scores: dict[str, list[float]] = {name: [] for name in plans[0]} if plans else {}
    for case, plan, predicted in zip(cases, plans, masks, strict=True):
        row = 0
        for name, group in plan.items():
            values = [dice(predicted[row + i], case.mask) for i in range(len(group))]
            scores[name].append(float(np.mean(values)))
            row += len(group)
    return scores


# ----------------------------------------------------------------------- phantom slices


# (kind, radius mm, side, region) per lesion, one list per phantom.
Lesions = Sequence[Sequence[tuple[str, float, str | None, str | None]]]

# Two phantoms, three lesions each: every kind, radius 8-20 mm, both sides, six regions.
PHANTOMS: Lesions = [
    [("glioma", 15.0, "left", "frontal"), ("meningioma", 12.0, "right", "parietal"),
     ("pituitary", 8.0, None, "sella")],
    [("glioma", 10.0, "right", "temporal"), ("meningioma", 16.0, "left", "falx"),
     ("glioma", 20.0, "left", "occipital")],
]


# (plane, offset from the lesion centre in radii along the slicing axis)
CUTS = (("axial", 0.0), ("axial", 0.5), ("coronal", 0.0), ("coronal", 0.5))


def phantom_cases(
    phantoms: Lesions = PHANTOMS, cuts: Sequence[tuple[str, float]] = CUTS, min_pixels: int = 20
) -> list[SliceCase]:
    """One slice per planted lesion and cut (skipping cuts where the lesion has < ``min_pixels``)."""
    from ..testing.phantoms import LesionSpec, make_phantom
    from ..volume import get_slice, intensity_window, slicing_axis, to_uint8

    cases = []
    for seed, lesions in enumerate(phantoms):
        specs = [LesionSpec(kind, radius, side, region) for kind, radius, side, region in lesions]
        phantom = make_phantom(specs, seed=seed)
        volume, window = phantom.volume, intensity_window(phantom.volume)
        for lesion in phantom.lesions:
            instance = phantom.instances.array == lesion.instance
            for plane, offset in cuts:
                axis = slicing_axis(volume, plane)
                present = np.flatnonzero(instance.any(axis=tuple(a for a in range(3) if a != axis)))
                if present.size == 0:
                    continue
                centre, half = (present[0] + present[-1]) / 2, (present[-1] - present[0]) / 2
                index = int(round(centre + offset * half))
                mask = get_slice(instance, axis, index).copy()
                if mask.sum() < min_pixels:
                    continue
                image = to_uint8(get_slice(volume.array, axis, index), window)
                where = f"{lesion.side or 'midline'} {lesion.region}, {plane} {offset:+.1f}r"
                cases.append(SliceCase(image, mask, lesion.kind, f"{lesion.kind} r{lesion.radius_mm:g} {where}"))
    return cases
