"""Box prompts that follow the lesion and the core-only guard (LoGSAMLib.propagation), with a
segmenter double that answers the true cross-section inside the prompt, and the pipeline hooks
(report, options) with instant doubles. The real LiteMedSAM runs in test_phantom_suite.py."""

from __future__ import annotations

import numpy as np
import pytest

from LoGSAMLib.box_margin import MEASURED, MarginRule
from LoGSAMLib.errors import InputError
from LoGSAMLib.pipeline import Pipeline, PipelineOptions
from LoGSAMLib.propagation import (
    EXPECTED_FILL,
    MIN_PIXELS,
    bounding_box,
    choose_mask,
    fill,
    follow_lesion,
    guarded_masks,
)
from LoGSAMLib.testing.doubles import BoxSegmenter
from LoGSAMLib.types import Box

SIZE = 64


def ball(radius: float, centre=(20.0, 32.0, 32.0), shape=(40, SIZE, SIZE)) -> np.ndarray:
    z, y, x = np.indices(shape)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


class TruthInBox:
    """Candidates double: the true cross-section inside the prompt (a perfect box-prompted model);
    with ``core`` it answers only the lesion's inner half first, the whole as an alternative."""

    def __init__(self, lesion: np.ndarray, core: bool = False) -> None:
        self.lesion, self.core, self.calls, self.prompts = lesion, core, 0, []
        self.slice_of: dict[int, int] = {}

    def image_of(self, s: int) -> np.ndarray:
        image = np.full((SIZE, SIZE), 100, dtype=np.uint8)
        image[self.lesion[s]] = 200
        self.slice_of[id(image)] = s
        self.current = s
        return image

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(boxes), 4, SIZE, SIZE), dtype=bool)
        truth = self.lesion[self.current]
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            inside = np.zeros_like(truth)
            inside[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
            whole = truth & inside
            if self.core:
                from scipy import ndimage

                out[k, 0] = ndimage.binary_erosion(whole, iterations=5)
                out[k, 2] = whole
            else:
                out[k, 0] = whole
            out[k, 1] = inside  # the box filled: never the answer
        self.prompts.append(boxes[0].copy())
        return out


def box_of(mask2d: np.ndarray, grow: float = 0.0) -> Box:
    b = bounding_box(mask2d)
    return Box(b.x0 - grow, b.y0 - grow, b.x1 + grow, b.y1 + grow)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / max(1, a.sum() + b.sum())


def test_prompts_shrink_towards_the_ends_and_the_walk_stops_where_the_lesion_ends():
    lesion = ball(9.0)
    # A user box 3 slices beyond the lesion at each end and 2 px wider than its widest cut.
    slices = np.flatnonzero(lesion.any(axis=(1, 2)))
    user = box_of(lesion.any(axis=0), grow=2.0)
    boxes = {int(s): user for s in range(slices[0] - 3, slices[-1] + 4)}
    model = TruthInBox(lesion)
    followed = follow_lesion(boxes, model.image_of, model, MEASURED)

    assert followed.start == 20  # the box's middle slice
    got = np.zeros_like(lesion)
    for s, mask in followed.masks.items():
        got[s] = mask
    assert dice(got, lesion) > 0.97
    visible = [int(s) for s in slices if lesion[s].sum() >= MIN_PIXELS]  # the poles are single voxels
    assert sorted(followed.masks) == visible  # nothing segmented past the lesion's ends
    # it stopped on the first slice past each end (there, the guard's box-filling alternative is
    # refused by the intensity check), not at the end of the box
    assert followed.stops["before"].endswith(f"at slice {visible[0] - 1}")
    assert followed.stops["after"].endswith(f"at slice {visible[-1] + 1}")
    # Near the ends the prompt is a fraction of the user's box (box mode used to fill the whole box).
    end_prompt = followed.prompts[visible[-1]]
    assert end_prompt.area < 0.25 * user.area
    assert model.calls == len(visible) + 2  # one call per slice, plus the one that found nothing at each end


def test_a_mask_that_lost_part_of_the_lesion_does_not_narrow_every_later_prompt():
    lesion = ball(10.0)

    class LosesHalfOnce(TruthInBox):
        def __call__(self, image, boxes):
            out = super().__call__(image, boxes)
            if self.current == 23:  # one slice comes back as its left half only
                out[:, :, :, 32:] = False
            return out

    boxes = {s: box_of(lesion.any(axis=0)) for s in range(10, 31)}
    model = LosesHalfOnce(lesion)
    followed = follow_lesion(boxes, model.image_of, model, MEASURED)
    truth_width = bounding_box(lesion[25]).x1 - bounding_box(lesion[25]).x0
    prompt = followed.prompts[25]
    assert prompt.x1 - prompt.x0 >= 0.8 * truth_width  # recovered two slices later
    assert dice(followed.masks[26], lesion[26]) > 0.9


def test_core_only_masks_are_replaced_by_the_alternative_that_fits_the_neighbours():
    lesion = ball(10.0)
    model = TruthInBox(lesion, core=True)
    box = box_of(lesion[20])
    options = model(model.image_of(20), np.array([box.as_array()]))
    mask, replaced = choose_mask(options, model.image_of(20), box)
    assert replaced and dice(mask, lesion[20]) > 0.99
    # a whole lesion is kept as it is (no alternative is even looked at)
    whole_model = TruthInBox(lesion)
    image = whole_model.image_of(20)
    mask, replaced = choose_mask(whole_model(image, np.array([box.as_array()])), image, box)
    assert not replaced and dice(mask, lesion[20]) == 1.0
    # a genuinely small lesion in its own tight box is a whole lesion, not a core
    small = ball(3.0)
    tight = box_of(small[20])
    small_model = TruthInBox(small)
    image = small_model.image_of(20)
    mask, replaced = choose_mask(small_model(image, np.array([tight.as_array()])), image, tight)
    assert not replaced and mask.sum() == small[20].sum() and fill(mask, tight) < EXPECTED_FILL


def test_guarded_masks_falls_back_to_the_plain_masks_of_segmenters_without_alternatives():
    images = [np.zeros((SIZE, SIZE), dtype=np.uint8)]
    prompts = [[Box(10, 10, 20, 30)]]
    masks, replaced = guarded_masks(BoxSegmenter(), images, prompts, [["glioma"]], 1)
    assert replaced == 0 and masks[0].shape == (1, SIZE, SIZE) and masks[0].sum() == 200


def test_margin_rule_is_one_measured_place_and_the_report_records_it():
    rule = MarginRule(pixels=3.0, min_side_px=10.0)
    assert rule.pad(Box(5, 5, 25, 25), 30, 30) == Box(2, 2, 28, 28)
    assert rule.pad(Box(5, 5, 12, 25), 30, 30) == Box(5, 5, 12, 25)  # too small for a margin
    assert rule.pad(Box(1, 1, 29, 29), 30, 30) == Box(0, 0, 30, 30)  # kept inside the slice
    with pytest.raises(InputError, match="box_prompts"):
        Pipeline(PipelineOptions(box_prompts="loose"))
    assert MEASURED.describe()["pixels"] == MEASURED.pixels
