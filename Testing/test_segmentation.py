"""MedSAM and the common segmenter machinery, with a tiny random SAM checkpoint (CPU, seconds)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from LoGSAMLib.errors import CheckpointError, LoGSAMError, ModelMissingError
from LoGSAMLib.segmentation import MedSAM, Segmenter, load_segmenter
from LoGSAMLib.segmentation.base import as_boxes
from LoGSAMLib.segmentation.medsam import IMAGE_SIZE, cubic_resize, medsam_input
from LoGSAMLib.testing import tiny_models, tiny_sam

torch.set_num_threads(2)
DECISIVE = 1e-4  # masks are compared where the probability is this far from the 0.5 threshold


@pytest.fixture(scope="module")
def sam_home(tmp_path_factory) -> object:
    directory = tmp_path_factory.mktemp("tiny-sam")
    tiny_models.build(directory, writers=("tiny_sam",))
    return directory


@pytest.fixture(scope="module")
def checkpoint(sam_home) -> object:
    return sam_home / "medsam-vit-b" / "medsam_vit_b.pth"


@pytest.fixture(scope="module")
def medsam(checkpoint) -> MedSAM:
    return MedSAM.from_checkpoint(checkpoint, config=tiny_sam.TINY_CONFIG, device="cpu")


def slice_image(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth grayscale slice with a bright blob (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    blob = np.exp(-(((yy - height * 0.4) / 12) ** 2 + ((xx - width * 0.6) / 16) ** 2))
    image = 60 + 40 * np.sin(xx / 9.0) * np.cos(yy / 7.0) + 120 * blob + rng.normal(0, 4, (height, width))
    return np.clip(image, 0, 255).astype(np.uint8)


def assert_same_masks(a: np.ndarray, b: np.ndarray) -> None:
    """Probabilities equal up to float rounding, masks equal wherever the decision is not on the edge."""
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=2e-5)
    decisive = np.abs(a - 0.5) > DECISIVE
    assert np.array_equal((a > 0.5)[decisive], (b > 0.5)[decisive])


class Recorder:
    """Counts calls of a module and keeps its positional/keyword inputs."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: list[tuple[tuple, dict]] = []
        self.handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        self.calls.append((args, kwargs))

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


# ------------------------------------------------------------------------ preprocessing


def test_cubic_resize_is_skimage_resize():
    import skimage.transform as skimage  # test dependency: the reference implementation
    rng = np.random.default_rng(1)
    for shape in [(37, 53), (1100, 1300)]:  # upsampling and (anti-aliased) downsampling
        channel = rng.integers(0, 256, shape).astype(np.uint8)
        expected = skimage.resize(channel, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True)
        np.testing.assert_allclose(cubic_resize(channel, (1024, 1024)), expected, atol=1e-9)


def test_medsam_input_matches_reference_pipeline():
    """MedSAM_Inference.py: skimage resize of the 3-channel slice, uint8, min-max, nothing else."""
    import skimage.transform as skimage  # test dependency: the reference implementation
    image = np.repeat(slice_image(70, 90)[:, :, None], 3, axis=2)
    reference = skimage.resize(image, (1024, 1024, 3), order=3, preserve_range=True, anti_aliasing=True)
    reference = reference.astype(np.uint8).astype(np.float64)
    reference = (reference - reference.min()) / np.clip(reference.max() - reference.min(), 1e-8, None)
    ours = medsam_input(image)
    assert ours.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and ours.dtype == np.float32
    # uint8 truncation can flip a grey level where the two float paths differ by ~1e-13
    difference = np.abs(ours - reference.transpose(2, 0, 1))
    assert difference.max() <= 1 / 255 + 1e-6
    assert (difference < 1e-6).mean() > 0.999


def test_medsam_input_is_min_max_without_mean_std():
    image = np.repeat(slice_image()[:, :, None], 3, axis=2)
    dim = (image // 4 + 50).astype(np.uint8)  # values 50..113: min-max must stretch them to [0, 1]
    x = medsam_input(dim)
    assert x.min() == 0.0 and x.max() == 1.0
    flat = medsam_input(np.full((40, 50, 3), 77, dtype=np.uint8))  # zero range: no NaN, all zeros
    assert np.isfinite(flat).all() and not flat.any()


def test_encoder_sees_medsam_input_and_decoder_sees_per_axis_scaled_boxes(medsam):
    image = slice_image(100, 250)
    boxes = np.array([[20.0, 10.0, 120.0, 90.0], [150.0, 30.0, 240.0, 70.0]])
    with Recorder(medsam.model.image_encoder) as encoder, Recorder(medsam.model.prompt_encoder) as prompts:
        medsam.segment(image, boxes)
    (encoder_input,), _ = encoder.calls[0]
    rgb = np.repeat(image[:, :, None], 3, axis=2)
    # exactly MedSAM's [0, 1] input: SAM's pixel mean/std normalisation would change it
    assert torch.equal(encoder_input[0], torch.from_numpy(medsam_input(rgb)))
    sent = prompts.calls[0][1]["boxes"].reshape(-1, 4).numpy()
    np.testing.assert_allclose(sent, boxes * [1024 / 250, 1024 / 100, 1024 / 250, 1024 / 100], rtol=1e-6)


def test_logits_sigmoid_then_bilinear_upsampling(medsam):
    from LoGSAMLib.segmentation.base import Frame

    logits = torch.full((1, 1, 256, 256), -4.0)
    logits[..., 100] = 4.0  # one positive column of low-resolution logits
    probabilities = medsam.postprocess(logits, Frame(300, 512, IMAGE_SIZE, IMAGE_SIZE))
    assert probabilities.shape == (1, 300, 512)
    high, low = torch.sigmoid(torch.tensor(4.0)), torch.sigmoid(torch.tensor(-4.0))
    # 2x bilinear (align_corners=False): output column 201 is 3/4 of column 100 and 1/4 of 101,
    # averaged as probabilities (MedSAM) rather than as logits (that would give sigmoid(2))
    assert probabilities[0, 0, 201].item() == pytest.approx((0.75 * high + 0.25 * low).item(), abs=1e-5)
    assert probabilities[0, 0, 200].item() == pytest.approx((0.75 * high + 0.25 * low).item(), abs=1e-5)
    assert probabilities[0, 0, 150].item() == pytest.approx(low.item(), abs=1e-6)


def test_boxes_are_ordered_and_clipped():
    boxes = as_boxes(np.array([[50, 60, -10, 5], [3, 4, 500, 500]], dtype=float), height=80, width=100)
    np.testing.assert_array_equal(boxes, [[0, 5, 50, 60], [3, 4, 100, 80]])
    assert as_boxes(np.zeros((0, 4)), 10, 10).shape == (0, 4)
    with pytest.raises(ValueError):
        as_boxes(np.array([[0, 0, np.nan, 4]]), 10, 10)


# --------------------------------------------------------------------- model and calls


def test_tiny_checkpoint_is_official_sam_layout(checkpoint, medsam):
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert {key.split(".")[0] for key in state} == {"image_encoder", "prompt_encoder", "mask_decoder"}
    assert isinstance(medsam.model, Sam)
    assert isinstance(medsam.model.image_encoder, ImageEncoderViT)
    assert isinstance(medsam.model.prompt_encoder, PromptEncoder)
    assert isinstance(medsam.model.mask_decoder, MaskDecoder)
    loaded = medsam.model.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[key], state[key]) for key in state)
    assert state["image_encoder.pos_embed"].shape == (1, 64, 64, 32)  # the 1024 / 16 grid is kept


def test_load_segmenter_from_registry(sam_home, monkeypatch):
    monkeypatch.setenv("LOGSAM_HOME", str(sam_home))
    segmenter = load_segmenter("medsam", device="cpu")
    assert isinstance(segmenter, Segmenter) and segmenter.name == "medsam"
    assert segmenter.model.image_encoder.patch_embed.proj.out_channels == tiny_sam.TINY_CONFIG["encoder_embed_dim"]
    masks = segmenter.segment(slice_image(), np.array([[10, 10, 60, 50]]))
    assert masks.dtype == bool and masks.shape == (1, 96, 128)
    with pytest.raises(LoGSAMError, match="Unknown segmenter"):
        load_segmenter("sam3")


def test_missing_model_is_reported(empty_home):
    with pytest.raises(ModelMissingError):
        load_segmenter("medsam")


def test_many_boxes_in_one_call_equal_single_box_calls(medsam):
    image = slice_image()
    boxes = np.array([[10, 10, 60, 50], [40, 20, 120, 90], [0, 0, 128, 96]], dtype=float)
    together = medsam.probabilities(image, boxes)
    assert together.shape == (3, 96, 128) and together.dtype == np.float32
    for index, box in enumerate(boxes):
        assert_same_masks(together[index : index + 1], medsam.probabilities(image, box[None]))
    masks = medsam.segment(image, boxes)
    assert masks.dtype == bool and np.array_equal(masks, together > 0.5)
    assert masks.any() and not masks.all()  # the tiny model's masks are not trivially empty or full


def test_encoder_runs_once_per_slice_and_decoder_once_per_slice(medsam):
    images = [slice_image(seed=s) for s in range(5)]
    boxes = [np.array([[10, 10, 60, 50], [30, 30, 90, 80]])] * 5
    boxes[2] = np.zeros((0, 4))  # a slice with no boxes needs no encoder pass
    with Recorder(medsam.model.image_encoder) as encoder, Recorder(medsam.model.mask_decoder) as decoder:
        out = medsam.segment_many(images, boxes, batch_size=2)
    assert [args[0].shape[0] for args, _ in encoder.calls] == [2, 2]
    assert len(decoder.calls) == 4
    assert all(kwargs["sparse_prompt_embeddings"].shape[0] == 2 for _, kwargs in decoder.calls)
    assert out[2].shape == (0, 96, 128)
    with Recorder(medsam.model.image_encoder) as encoder:
        medsam.segment(images[0], np.array([[1, 2, 30, 40], [5, 5, 50, 50], [9, 9, 99, 90]]))
    assert len(encoder.calls) == 1


def test_segment_many_equals_slice_by_slice(medsam):
    images = [slice_image(96, 128, seed=0), slice_image(80, 64, seed=1), slice_image(120, 120, seed=2)]
    boxes = [np.array([[10, 10, 60, 50]]), np.array([[5, 5, 40, 70], [20, 10, 60, 40]]), np.array([[0, 0, 90, 90]])]
    batched = medsam.probabilities_many(images, boxes, batch_size=3)
    for image, box, result in zip(images, boxes, batched, strict=True):
        assert_same_masks(result, medsam.probabilities(image, box))
    many = medsam.segment_many(images, boxes, batch_size=2)
    assert [m.shape for m in many] == [(1, 96, 128), (2, 80, 64), (1, 120, 120)]


def test_grayscale_equals_replicated_rgb_and_cpu_is_deterministic(medsam):
    image = slice_image()
    box = np.array([[10, 10, 60, 50]])
    first = medsam.probabilities(image, box)
    assert np.array_equal(first, medsam.probabilities(np.repeat(image[:, :, None], 3, axis=2), box))
    assert np.array_equal(first, medsam.probabilities(image, box))  # bitwise, call after call


def test_bf16_autocast_runs_and_agrees(checkpoint):
    fp32 = MedSAM.from_checkpoint(checkpoint, config=tiny_sam.TINY_CONFIG, device="cpu")
    bf16 = MedSAM.from_checkpoint(checkpoint, config=tiny_sam.TINY_CONFIG, device="cpu", precision="bf16")
    assert bf16.dtype == torch.bfloat16
    image, box = slice_image(), np.array([[10, 10, 60, 50]])
    a, b = fp32.probabilities(image, box), bf16.probabilities(image, box)
    assert b.dtype == np.float32
    decisive = np.abs(a - 0.5) > 0.1
    assert ((a > 0.5) == (b > 0.5))[decisive].mean() > 0.98


def test_bad_inputs_are_rejected(medsam):
    with pytest.raises(ValueError, match="uint8"):
        medsam.segment(slice_image().astype(np.float32), np.array([[0, 0, 5, 5]]))
    with pytest.raises(ValueError, match="shape"):
        medsam.segment(np.zeros((4, 8, 8), dtype=np.uint8), np.array([[0, 0, 5, 5]]))
    with pytest.raises(ValueError, match="xyxy"):
        medsam.segment(slice_image(), np.array([[0, 0, 5]]))


# -------------------------------------------------------------------- wrong checkpoints


def fake_sam_state(embed_dim: int, depth: int) -> dict[str, torch.Tensor]:
    """Enough of a SAM encoder's keys to identify it (no need for a real 2.5 GB ViT-H)."""
    state = {"image_encoder.patch_embed.proj.weight": torch.zeros(embed_dim, 3, 1, 1)}
    state.update({f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(depth)})
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 1)
    return state


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (fake_sam_state(1280, 32), "is SAM ViT-H, expected SAM ViT-B"),
        (fake_sam_state(1024, 24), "is SAM ViT-L, expected SAM ViT-B"),
        ({"image_encoder.patch_embed.seq.0.c.weight": torch.zeros(1)}, "LiteMedSAM .*expected MedSAM"),
        (
            {"model": {"backbone.0.patch_embed.proj.weight": torch.zeros(1), "bert.pooler.dense.bias": torch.zeros(1)}},
            "Grounding DINO checkpoint, expected MedSAM",
        ),
        ({"dims": {"n_mels": 80}, "model_state_dict": {"x": torch.zeros(1)}}, "Whisper"),
    ],
)
def test_wrong_checkpoint_kind_is_named(tmp_path, state, message):
    path = tmp_path / "medsam_vit_b.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=message):
        MedSAM.from_checkpoint(path)  # registry default: real ViT-B


def test_incomplete_or_mismatched_checkpoints(tmp_path, checkpoint):
    state = torch.load(checkpoint, weights_only=True)
    partial = {k: v for k, v in state.items() if not k.startswith("mask_decoder.output_upscaling")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="missing keys.*output_upscaling"):
        MedSAM.from_checkpoint(tmp_path / "partial.pth", config=tiny_sam.TINY_CONFIG)
    wider = dict(tiny_sam.TINY_CONFIG, decoder_mlp_dim=128)
    with pytest.raises(CheckpointError, match="does not fit.*size mismatch"):
        MedSAM.from_checkpoint(checkpoint, config=wider)
    # wrapped like a training checkpoint: still accepted
    torch.save({"model": state, "epoch": 3}, tmp_path / "wrapped.pth")
    MedSAM.from_checkpoint(tmp_path / "wrapped.pth", config=tiny_sam.TINY_CONFIG)


def test_unreadable_and_unsafe_files_are_refused(tmp_path, checkpoint):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file"):
        MedSAM.from_checkpoint(garbage)
    unsafe = tmp_path / "unsafe.pth"  # pickled Python objects are never unpickled (weights_only=True)
    torch.save({"model": torch.load(checkpoint, weights_only=True), "args": argparse.Namespace(a=1)}, unsafe)
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file"):
        MedSAM.from_checkpoint(unsafe, config=tiny_sam.TINY_CONFIG)


def test_medsam_file_is_not_litemedsam(checkpoint):
    from LoGSAMLib.segmentation import LiteMedSAM

    with pytest.raises(CheckpointError, match="expected LiteMedSAM"):
        LiteMedSAM.from_checkpoint(checkpoint)


# ----------------------------------------------------------------- accuracy-study boxes


def test_study_boxes():
    from LoGSAMLib.segmentation.study import box_conditions, enlarge_box, shift_box, tight_box

    mask = np.zeros((50, 60), dtype=bool)
    mask[10:20, 30:50] = True  # rows 10..19, columns 30..49
    box = tight_box(mask)
    np.testing.assert_array_equal(box, [30, 10, 50, 20])  # pixel corners, x1/y1 exclusive
    np.testing.assert_allclose(enlarge_box(box, 0.2), [28, 9, 52, 21])  # 20 % wider and taller, same centre
    np.testing.assert_allclose(shift_box(box, 0.1, (1, -1)), [32, 9, 52, 19])  # 10 % of width / height
    conditions = box_conditions(box, (0.1, 0.3))
    assert list(conditions) == ["tight", "enlarge 10%", "enlarge 30%", "shift 10%", "shift 30%"]
    assert len(conditions["shift 30%"]) == 4 and len(conditions["enlarge 30%"]) == 1


def test_progress_and_cancel(medsam):
    from LoGSAMLib.errors import Cancelled
    from LoGSAMLib.progress import CancelToken

    seen = []
    images, boxes = [slice_image(seed=s) for s in range(3)], [np.array([[10, 10, 60, 50]])] * 3
    medsam.segment_many(images, boxes, batch_size=2, progress=lambda stage, f, m: seen.append((stage, f)))
    assert seen == [("segment", 2 / 3), ("segment", 1.0)]
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        medsam.segment_many(images, boxes, cancel=token)
