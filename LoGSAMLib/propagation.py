"""Box prompts that follow the lesion, and the guard against masks of a lesion's core alone.

A user's 3D box says where to look, not how big the lesion is on each slice: near the top and
bottom of a roughly ellipsoidal lesion the true cross-section is a fraction of the box, and a
box-prompted segmenter fills the box it is given. :func:`follow_lesion` therefore starts on the
box's middle slice (where the cross-section is largest) and carries the lesion outwards: the
next slice's prompt is the previous mask's box plus the measured margin (``box_margin``),
clipped to the user's box. It stops where the lesion ends inside the box: the mask vanishes,
leaves the previous mask's footprint, or its intensity jumps away from the lesion's.

The box's extent along the slice axis bounds the walk; the detector-driven pipeline has no such
bound (on normal brain the segmenter still returns a plausible mask), which is why its search
keeps a detector box on every slice (see benchmarks/README.md, "Phantom suite").

:func:`choose_mask` is the core-only guard used by both modes: a box-prompted segmenter sometimes
outlines only part of a lesion inside a correct box (a glioma's necrotic core, a patch of a
homogeneous meningioma; on the phantom suite LiteMedSAM does so mostly on small cross-sections).
Such a mask fills a small part of its box, where a lesion fills about three quarters of a tight
box. When the usual mask fills less than half of what the neighbouring slices' masks fill (their
median; 0.75 without evidence), the guard takes, among the other masks the segmenter offered (its
multimask outputs, the same for a 10 % larger box), the one whose fill is closest to the
neighbours'. It assumes boxes drawn about tight: a lesion filling under ~40 % of a user's box on the
box's middle slice may be taken for a core, and the mask then grows towards the box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .box_margin import MarginRule
from .types import Box

# image (H, W) uint8, boxes (K, 4) xyxy -> bool (K, C, H, W): C alternative masks per box, the
# segmenter's usual single-mask output first.
Candidates = Callable[[np.ndarray, np.ndarray], np.ndarray]

LARGER_BOX = 0.10  # the "slightly larger box" alternative: 10 % wider and taller
EXPECTED_FILL = 0.75  # a lesion's share of its tight box (an ellipse fills 0.785), when nothing better is known
CORE_SHARE = 0.5  # a mask filling less than this share of the expected fill may be a core alone
FULL_FILL = 1.3  # alternatives reaching this far past their box are not the lesion
MIN_PIXELS = 3  # a smaller mask means the lesion has ended
MIN_INSIDE = 0.5  # the share of a new mask inside the previous one (dilated) below which it jumped
INTENSITY_JUMP = 0.3  # relative change of the mask's mean intensity that ends the walk
PROMPT_KEEP = 0.85  # a prompt keeps at least this share of the previous prompt's size (before the ellipsoid's)
MIN_RADIUS = 0.2  # the ellipsoid prior never shrinks a prompt below this share at the box's last slice


def candidate_fn(segmenter: Any) -> Candidates:
    """The alternatives a segmenter offers: every decoder output where it has them, else its mask."""
    if hasattr(segmenter, "mask_candidates_many"):
        return lambda image, boxes: segmenter.mask_candidates_many([image], [boxes], batch_size=1)[0]
    return lambda image, boxes: segmenter.segment_many([image], [boxes], batch_size=1)[0][:, None]


def with_larger_box(box: Box, width: int, height: int) -> np.ndarray:
    """(2, 4) prompts: the box and the slightly larger alternative."""
    dx, dy = LARGER_BOX * (box.x1 - box.x0) / 2, LARGER_BOX * (box.y1 - box.y0) / 2
    larger = Box(max(0.0, box.x0 - dx), max(0.0, box.y0 - dy), min(float(width), box.x1 + dx),
                 min(float(height), box.y1 + dy))
    return np.array([box.as_array(), larger.as_array()], dtype=np.float64)


# ------------------------------------------------------------------------ core-only guard


def fill(mask: np.ndarray, box: Box) -> float:
    """The mask's area over its box's area (above 1 when the mask spills out of the box)."""
    return float(mask.sum()) / max(1.0, (box.x1 - box.x0) * (box.y1 - box.y0))


def choose_mask(options: np.ndarray, image: np.ndarray, box: Box, expected_fill: float = EXPECTED_FILL
                ) -> tuple[np.ndarray, bool]:
    """The segmenter's usual mask, or the alternative whose fill is closest to ``expected_fill``
    when the usual one fills less than ``CORE_SHARE`` of it (see module).

    ``options``: bool (K, C, H, W), the alternatives for ``box`` (and larger boxes); returns the
    mask and whether the guard replaced it."""
    first = options[0, 0]
    first_fill = fill(first, box)
    if first_fill >= CORE_SHARE * expected_fill:
        return first, False
    best, best_distance = first, _distance(first_fill, expected_fill)
    for mask in options.reshape(-1, *options.shape[-2:]):
        value = fill(mask, box)
        if 0 < value <= FULL_FILL and _distance(value, expected_fill) < best_distance:
            best, best_distance = mask, _distance(value, expected_fill)
    return best, best is not first


def _distance(value: float, expected: float) -> float:
    return abs(float(np.log(max(value, 1e-3) / expected)))


def typical_fill(fills: list[float]) -> float:
    """The neighbours' evidence: the median fill of the usual masks that look whole, else EXPECTED_FILL."""
    whole = [f for f in fills if CORE_SHARE * EXPECTED_FILL <= f <= 1.0]
    return float(np.median(whole)) if len(whole) >= 2 else EXPECTED_FILL


def guarded_masks(segmenter: Any, images: list[np.ndarray], prompts: list[list[Box]], groups: list[list[str]],
                  batch_size: int, seen: dict[str, list[float]] | None = None) -> tuple[list[np.ndarray], int]:
    """Per slice, bool (N, H, W) masks for its boxes with the core-only guard; and how often it acted.

    ``groups`` names each box's lesion group (its class): a box's expected fill is the typical fill
    of its group's usual masks on these slices and on those in ``seen`` (filled in here, so that a
    caller going through a volume in chunks keeps the earlier slices' evidence). One segmenter call
    per slice, as without the guard: the alternatives come from the same decoder pass."""
    if not hasattr(segmenter, "mask_candidates_many"):
        arrays = [np.array([b.as_array() for b in p]).reshape(-1, 4) for p in prompts]
        return segmenter.segment_many(images, arrays, batch_size=batch_size), 0
    arrays = [np.concatenate([with_larger_box(b, image.shape[1], image.shape[0]) for b in p]) if p
              else np.zeros((0, 4)) for image, p in zip(images, prompts, strict=True)]
    found = segmenter.mask_candidates_many(images, arrays, batch_size=batch_size)
    fills = seen if seen is not None else {}
    for slice_prompts, slice_groups, options in zip(prompts, groups, found, strict=True):
        for n, (box, group) in enumerate(zip(slice_prompts, slice_groups, strict=True)):
            fills.setdefault(group, []).append(fill(options[2 * n, 0], box))
    expected = {group: typical_fill(values) for group, values in fills.items()}
    out, replaced = [], 0
    for image, slice_prompts, slice_groups, options in zip(images, prompts, groups, found, strict=True):
        masks = np.zeros((len(slice_prompts), *image.shape[:2]), dtype=bool)
        for n, (box, group) in enumerate(zip(slice_prompts, slice_groups, strict=True)):
            masks[n], guarded = choose_mask(options[2 * n : 2 * n + 2], image, box, expected[group])
            replaced += guarded
        out.append(masks)
    return out, replaced


# ------------------------------------------------------------------------- following


@dataclass
class Followed:
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # slice -> bool mask (display)
    prompts: dict[int, Box] = field(default_factory=dict)  # slice -> the box the segmenter got
    stops: dict[str, str] = field(default_factory=dict)  # "before"/"after" the start -> why
    guarded: list[int] = field(default_factory=list)  # slices where the core-only guard acted
    start: int | None = None


def bounding_box(mask: np.ndarray) -> Box:
    rows, cols = np.nonzero(mask)
    return Box(float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def _clip(box: Box, limit: Box) -> Box | None:
    x0, y0 = max(box.x0, limit.x0), max(box.y0, limit.y0)
    x1, y1 = min(box.x1, limit.x1), min(box.y1, limit.y1)
    return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def follow_lesion(
    boxes: dict[int, Box],
    image_of: Callable[[int], np.ndarray],
    candidates: Candidates,
    rule: MarginRule,
    check: Callable[[], None] = lambda: None,
) -> Followed:
    """Segment the lesion inside a 3D box given as one display-space box per slice (see module)."""
    out = Followed()
    order = sorted(boxes)
    if not order:
        return out
    middle = order[len(order) // 2]
    image = image_of(middle)
    height, width = image.shape[:2]
    prompt = rule.pad(boxes[middle], width, height)
    options = candidates(image, with_larger_box(prompt, width, height))
    fills = [fill(options[0, 0], prompt)]  # the usual masks' fills: the evidence the guard compares with
    mask, guarded = choose_mask(options, image, prompt)
    if mask.sum() < MIN_PIXELS:
        out.stops = {"before": "no lesion on the middle slice", "after": "no lesion on the middle slice"}
        return out
    out.start = middle
    _keep(out, middle, mask, prompt, guarded)
    reference = _mean(image, mask)
    position = order.index(middle)
    radius = _ellipsoid(order[0], order[-1])
    for name, step in (("before", -1), ("after", 1)):
        previous, last_prompt, last_slice = mask, prompt, middle
        out.stops[name] = "end of the box"
        for s in order[position + step :: step] if step > 0 else order[position - 1 :: -1]:
            check()
            image = image_of(s)
            prompt = _clip(_next_prompt(previous, last_prompt, radius(s) / radius(last_slice)), boxes[s])
            if prompt is None:
                out.stops[name] = f"the lesion left the box at slice {s}"
                break
            options = candidates(image, with_larger_box(prompt, width, height))
            fills.append(fill(options[0, 0], prompt))
            found, guarded = choose_mask(options, image, prompt, typical_fill(fills))
            reason = _stop_reason(found, previous, image, reference)
            if reason:
                out.stops[name] = f"{reason} at slice {s}"
                break
            _keep(out, s, found, prompt, guarded)
            previous, last_prompt, last_slice = found, prompt, s
    return out


def _ellipsoid(first: int, last: int) -> Callable[[int], float]:
    """The relative radius of an ellipsoid filling the box's slices, at a slice (never 0)."""
    centre, half = (first + last) / 2, (last - first) / 2 + 0.5

    return lambda s: float(np.sqrt(max(MIN_RADIUS**2, 1.0 - ((s - centre) / half) ** 2)))


def _next_prompt(previous: np.ndarray, last_prompt: Box, shrink: float) -> Box:
    """The previous mask's box, scaled by the ellipsoid's change of radius (a lesion narrows
    towards its ends). Along an axis where the mask narrowed to less than PROMPT_KEEP of the
    previous prompt, the prompt keeps that share of the previous prompt and its centre instead: a
    mask that lost part of the lesion must not narrow every later prompt."""
    mask_box = bounding_box(previous)
    shrink = min(1.0, shrink)
    spans = []
    for low, high, prompt_low, prompt_high in ((mask_box.x0, mask_box.x1, last_prompt.x0, last_prompt.x1),
                                               (mask_box.y0, mask_box.y1, last_prompt.y0, last_prompt.y1)):
        if high - low < PROMPT_KEEP * (prompt_high - prompt_low):
            low, high = prompt_low, prompt_high
            centre, half = (low + high) / 2, PROMPT_KEEP * (high - low) / 2
        else:
            centre, half = (low + high) / 2, (high - low) / 2
        spans.append((centre - shrink * half, centre + shrink * half))
    (x0, x1), (y0, y1) = spans
    return Box(x0, y0, x1, y1)


def _keep(out: Followed, s: int, mask: np.ndarray, prompt: Box, guarded: bool) -> None:
    out.masks[s], out.prompts[s] = mask, prompt
    if guarded:
        out.guarded.append(s)


def _mean(image: np.ndarray, mask: np.ndarray) -> float:
    gray = image if image.ndim == 2 else image[..., 0]
    return float(gray[mask].mean())


def _stop_reason(mask: np.ndarray, previous: np.ndarray, image: np.ndarray, reference: float) -> str:
    from scipy import ndimage

    size = int(mask.sum())
    if size < MIN_PIXELS:
        return "the mask vanished"
    footprint = ndimage.binary_dilation(previous, iterations=2)
    if (mask & footprint).sum() < MIN_INSIDE * size:
        return "the mask left the previous slice's lesion"
    if abs(_mean(image, mask) - reference) > INTENSITY_JUMP * max(reference, 1.0):
        return "the intensity changed"
    return ""
