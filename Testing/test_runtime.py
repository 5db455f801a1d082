"""CPU runtimes (ONNX Runtime, OpenVINO) against PyTorch eager: the same boxes, scores and masks.

Equality is checked where top-k ties cannot hide a difference: the detector's raw outputs per
query (token probabilities and boxes of all queries, not only the kept ones), the image
encoders' embeddings, and the masks decoded from them. The tiny models have random weights;
LiteMedSAM has its real weights. The real-size models are compared in benchmarks/runtime_bench.py.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from LoGSAMLib.errors import InputError
from LoGSAMLib.runtime import AUTO_CHOICE, choose_runtime

CAPTION = "glioma ."
LONGER_CAPTION = "left glioma . brain mass ."


@pytest.fixture
def runtime_home(tiny_home, monkeypatch):
    monkeypatch.delenv("LOGSAM_RUNTIME", raising=False)  # conftest turns the runtimes off elsewhere
    return tiny_home


def slices(shape: tuple[int, int], count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def small_detector(runtime: str):
    from LoGSAMLib.detection import load_detector

    detector = load_detector(device="cpu", runtime=runtime, box_threshold=0.0, text_threshold=0.0)
    detector.short_side, detector.max_side = 128, 256  # keeps the tiny graphs small; equality is size-free
    return detector


def assert_same_boxes(expected, actual) -> None:
    """Boxes within 0.5 px, scores within 1e-3, the same labels, slice by slice."""
    assert [len(b) for b in expected] == [len(b) for b in actual]
    for ours, theirs in zip(expected, actual, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert a.label == b.label
            assert abs(a.score - b.score) <= 1e-3
            assert np.abs(a.as_array() - b.as_array()).max() <= 0.5


def test_choice_auto_uses_a_runtime_on_a_cpu_only_and_honours_the_environment(monkeypatch):
    import torch

    monkeypatch.delenv("LOGSAM_RUNTIME", raising=False)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    for model, runtime in AUTO_CHOICE.items():
        assert choose_runtime("auto", cpu, model) == runtime
        assert choose_runtime(None, cpu, model) == runtime
        assert choose_runtime("auto", gpu, model) == "torch"  # a GPU keeps PyTorch
        assert choose_runtime("openvino", gpu, model) == "torch"
        assert choose_runtime("auto", cpu, model, precision="bf16") == "torch"  # autocast stays PyTorch
    assert choose_runtime("openvino", cpu, "groundingdino") == "openvino"
    monkeypatch.setenv("LOGSAM_RUNTIME", "torch")
    assert choose_runtime("auto", cpu, "groundingdino") == "torch"
    assert choose_runtime("onnxruntime", cpu, "groundingdino") == "onnxruntime"  # explicit beats the default
    with pytest.raises(InputError, match="tensorrt"):
        choose_runtime("tensorrt", cpu, "groundingdino")


def test_detector_on_onnxruntime_equals_pytorch_per_query_and_reuses_one_graph_per_slice_size(runtime_home):
    reference, fast = small_detector("torch"), small_detector("onnxruntime")
    assert fast.run_model.runtime == "onnxruntime"
    groups = [slices((64, 80), 2), slices((48, 96), 1, seed=1)]  # two slice sizes (a batch pads to one)
    for images in groups:
        for caption in (CAPTION, LONGER_CAPTION):  # 4 and 8 tokens: both padded to one 16-token graph
            probs_ref, boxes_ref, _ = reference.predict(images, caption)
            probs, boxes, _ = fast.predict(images, caption)
            # every query, in order: no top-k tie can hide a difference here
            np.testing.assert_allclose(probs.numpy(), probs_ref.numpy(), atol=1e-4)
            np.testing.assert_allclose(boxes.numpy(), boxes_ref.numpy(), atol=1e-5)
            assert_same_boxes(reference.detect(images, caption), fast.detect(images, caption))
    assert fast.run_model.graph.conversions == 2  # one graph per slice size, whatever the caption
    images = groups[0]
    again = small_detector("onnxruntime")  # a new process would find the same cached graphs
    again.detect(images[:1], CAPTION)
    assert again.run_model.graph.conversions == 0
    assert (runtime_home / "runtime").is_dir()


def test_detector_on_openvino_equals_pytorch_per_query(runtime_home):
    reference, fast = small_detector("torch"), small_detector("openvino")
    images = slices((64, 80), 1, seed=2)
    probs_ref, boxes_ref, _ = reference.predict(images, LONGER_CAPTION)
    probs, boxes, _ = fast.predict(images, LONGER_CAPTION)
    assert fast.run_model.runtime == "openvino"
    np.testing.assert_allclose(probs.numpy(), probs_ref.numpy(), atol=1e-4)
    np.testing.assert_allclose(boxes.numpy(), boxes_ref.numpy(), atol=1e-5)


# LiteMedSAM's OpenVINO graph (its "auto" choice) takes ~30 s to convert: its equality with the same
# real weights is shown in benchmarks/runtime_bench.py; here it runs on ONNX Runtime (seconds).
@pytest.mark.parametrize("name, runtime", [("litemedsam", "onnxruntime"), ("medsam", AUTO_CHOICE["medsam"])])
def test_image_encoder_on_a_runtime_gives_the_same_embeddings_and_masks(runtime_home, name, runtime):
    import torch

    from LoGSAMLib.segmentation import load_segmenter

    reference = load_segmenter(name, device="cpu", runtime="torch")
    fast = load_segmenter(name, device="cpu", runtime=runtime)
    assert fast.encode.runtime == runtime
    images = slices((96, 120), 2, seed=3)
    boxes = [np.array([[20.0, 15.0, 70.0, 60.0], [5.0, 40.0, 50.0, 90.0]])] * 2
    inputs = torch.from_numpy(np.stack([reference.preprocess(np.repeat(i[..., None], 3, 2))[0] for i in images]))
    with torch.inference_mode():
        expected, actual = reference.model.image_encoder(inputs), fast.encode(inputs)
    scale = float(expected.abs().max())
    assert float((expected - actual).abs().max()) <= 1e-4 * max(scale, 1.0)
    for ours, theirs in zip(reference.probabilities_many(images, boxes), fast.probabilities_many(images, boxes),
                            strict=True):
        assert np.abs(ours - theirs).max() <= 1e-3
        masks_ref, masks = ours > 0.5, theirs > 0.5
        overlap = 2 * np.logical_and(masks_ref, masks).sum() / max(1, masks_ref.sum() + masks.sum())
        assert np.array_equal(masks_ref, masks) or overlap >= 0.999


def test_a_failed_conversion_falls_back_to_pytorch_with_one_warning(runtime_home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOGSAM_HOME", str(tmp_path))  # a fresh cache where no folder can be made
    for entry in runtime_home.iterdir():  # copies: a model folder linked outside the cache is refused
        if entry.name != "runtime":
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, tmp_path / entry.name)
    (tmp_path / "runtime").write_text("not a folder")
    from LoGSAMLib.segmentation import load_segmenter

    reference = load_segmenter("medsam", device="cpu", runtime="torch")
    fast = load_segmenter("medsam", device="cpu", runtime="onnxruntime")
    images = slices((40, 40), 2, seed=4)
    boxes = [np.array([[5.0, 5.0, 30.0, 30.0]])] * 2
    for _ in range(2):
        masks = fast.segment_many(images, boxes)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "using PyTorch instead" in warnings[0]
    assert fast.encode.runtime == "torch"
    for ours, theirs in zip(reference.segment_many(images, boxes), masks, strict=True):
        assert np.array_equal(ours, theirs)


def test_cli_runtime_option_reaches_the_pipeline_and_gives_the_same_segmentation(runtime_home, tmp_path):
    import SimpleITK as sitk

    from LoGSAMLib.cli import main
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
    from LoGSAMLib.volume import write_volume

    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=12.0, side="left", region="frontal")],
                           spacing=(8.0, 8.0, 16.0), seed=5)
    path = tmp_path / "t1.nii.gz"
    write_volume(phantom.volume, path)
    written = {}
    for runtime in ("torch", "auto"):
        out = tmp_path / f"{runtime}.nii.gz"
        assert main(["run", str(path), "--text", "Left frontal glioma.", "--segmenter", "medsam", "--device", "cpu",
                     "--box-threshold", "0.2", "--detector-size", "256", "--runtime", runtime,
                     "-o", str(out)]) == 0
        written[runtime] = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert written["torch"].any()  # the tiny detector's random boxes were segmented
    assert np.array_equal(written["torch"], written["auto"])
