"""Our transformers Grounding DINO against the ORIGINAL code (groundingdino-py, pure-PyTorch ops).

The original is built in the tiny architecture of ``LoGSAMLib.testing.tiny_gdino`` (same module
kinds as Swin-T OGC), loaded with the official-format file, and compared with our conversion:
plain mapping, the published LoRA adapter applied by PEFT on the original model, the
preprocessing transform, and the real Swin-T OGC key set (shapes only, not run).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("groundingdino", reason="groundingdino-py (test-only reference) is installed by make venv")

from LoGSAMLib.detection import checkpoints as ck  # noqa: E402
from LoGSAMLib.detection.architecture import build_model, resolve_architecture  # noqa: E402
from LoGSAMLib.detection.groundingdino import convert_and_merge, load_state_into, preprocess  # noqa: E402
from LoGSAMLib.testing import tiny_gdino  # noqa: E402

TINY_SPEC = {"architecture": tiny_gdino.TINY_ARCHITECTURE}
CAPTION = "glioma . meningioma ."
TOL = dict(atol=1e-4, rtol=1e-4)


@contextlib.contextmanager
def original_builders(arch: dict, real_bert: bool = False):
    """Let the original builder use our Swin sizes and a BERT built from config (no hub, no weights)."""
    import groundingdino.models.GroundingDINO.backbone.backbone as backbone_module
    import groundingdino.util.get_tokenlizer as tokenizer_module
    from groundingdino.models.GroundingDINO.backbone.swin_transformer import SwinTransformer
    from transformers import BertConfig, BertModel

    swin = arch["swin"]

    def build_swin(name, pretrain_img_size, **kw):
        return SwinTransformer(pretrain_img_size=pretrain_img_size, embed_dim=swin["embed_dim"],
                               depths=swin["depths"], num_heads=swin["num_heads"],
                               window_size=swin["window_size"], **kw)

    def build_bert(path):
        return BertModel(BertConfig() if real_bert else BertConfig.from_pretrained(path))

    saved = backbone_module.build_swin_transformer, tokenizer_module.get_pretrained_language_model
    backbone_module.build_swin_transformer = build_swin
    tokenizer_module.get_pretrained_language_model = build_bert
    try:
        yield
    finally:
        backbone_module.build_swin_transformer, tokenizer_module.get_pretrained_language_model = saved


def build_original(text_dir: Path, spec: dict = TINY_SPEC, real_bert: bool = False):
    import groundingdino
    from groundingdino.models import build_model as build_original_model
    from groundingdino.util.slconfig import SLConfig

    arch = resolve_architecture(spec)
    args = SLConfig.fromfile(str(Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"))
    for name in ("enc_layers", "dec_layers", "dim_feedforward", "num_queries", "nheads", "hidden_dim"):
        setattr(args, name, arch[name])
    args.text_encoder_type = str(text_dir)
    args.use_checkpoint = args.use_transformer_ckpt = False
    args.device = "cpu"
    with original_builders(arch, real_bert):
        return build_original_model(args).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The tiny official-format files (text encoder folder, checkpoint, published adapter)."""
    folder = tmp_path_factory.mktemp("gdino-equivalence")
    tiny_gdino.write(folder)
    return folder


def text_dir(files: Path) -> Path:
    return files / tiny_gdino.TEXT_ID


def base_path(files: Path) -> Path:
    return files / tiny_gdino.MODEL_ID / tiny_gdino.CHECKPOINT_NAME


def official_weights(files: Path) -> dict:
    state = torch.load(base_path(files), map_location="cpu", weights_only=True)["model"]
    # a constant buffer the released file carries; current transformers no longer saves it
    return {k: v for k, v in state.items() if k != "bert.embeddings.position_ids"}


def images():
    """Two slices of different sizes: a batch exercises padding and the pixel masks."""
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(3, 96, 128, generator=gen), torch.randn(3, 80, 112, generator=gen)]


def run_original(model, imgs):
    from groundingdino.util.misc import nested_tensor_from_tensor_list

    with torch.no_grad():
        out = model(nested_tensor_from_tensor_list(imgs), captions=[CAPTION] * len(imgs))
    return out["pred_logits"], out["pred_boxes"]


def run_ours(model, tokenizer, imgs):
    size = (max(i.shape[1] for i in imgs), max(i.shape[2] for i in imgs))
    pixels = torch.zeros(len(imgs), 3, *size)
    mask = torch.zeros(len(imgs), *size, dtype=torch.long)
    for n, img in enumerate(imgs):
        pixels[n, :, : img.shape[1], : img.shape[2]] = img
        mask[n, : img.shape[1], : img.shape[2]] = 1
    tokens = tokenizer([CAPTION] * len(imgs), return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=pixels, pixel_mask=mask, **tokens)
    return out.logits, out.pred_boxes, tokens["input_ids"].shape[1]


def our_model(files: Path, adapter: Path | None = None):
    from transformers import AutoTokenizer

    model = build_model(TINY_SPEC, text_dir(files), init_weights=False).eval()
    state = convert_and_merge(base_path(files), adapter, 1.0, model.state_dict())
    load_state_into(model, state)
    return model, AutoTokenizer.from_pretrained(str(text_dir(files)), local_files_only=True)


def assert_same_outputs(original, ours, tokenizer, imgs):
    ref_logits, ref_boxes = run_original(original, imgs)
    logits, boxes, length = run_ours(ours, tokenizer, imgs)
    assert logits.shape == ref_logits.shape and boxes.shape == ref_boxes.shape
    torch.testing.assert_close(logits[..., :length], ref_logits[..., :length], **TOL)
    assert torch.isinf(logits[..., length:]).all() and torch.isinf(ref_logits[..., length:]).all()
    torch.testing.assert_close(boxes, ref_boxes, **TOL)
    # a real comparison: outputs vary across queries and images
    assert ref_boxes.std() > 0.01 and ref_logits[..., :length].std() > 0.1


def test_tiny_file_is_exactly_the_original_layout(files):
    """The writer's checkpoint loads strictly into the original model (every key, every shape)."""
    original = build_original(text_dir(files))
    original.load_state_dict(official_weights(files), strict=True)
    raw = torch.load(base_path(files), map_location="cpu", weights_only=True)
    assert set(raw) == {"model"} and "bert.pooler.dense.weight" in raw["model"]


def test_plain_mapping_gives_the_original_outputs(files):
    original = build_original(text_dir(files))
    original.load_state_dict(official_weights(files), strict=True)
    ours, tokenizer = our_model(files)
    assert_same_outputs(original, ours, tokenizer, images())


def test_published_lora_adapter_gives_the_peft_outputs(files, tmp_path):
    """PEFT on the ORIGINAL model (as the authors trained) == our merged transformers model."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    arch = resolve_architecture(TINY_SPEC)
    original = build_original(text_dir(files))
    original.load_state_dict(official_weights(files), strict=True)
    targets = ck.published_lora_targets(arch["enc_layers"], arch["dec_layers"],
                                        tiny_gdino.TINY_BERT["num_hidden_layers"])
    config = LoraConfig(r=4, lora_alpha=4, lora_dropout=0.0, bias="none", target_modules=targets,
                        modules_to_save=[ck.PUBLISHED_FULL_LAYER])
    peft_model = get_peft_model(original, config).eval()
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    adapter_sd = get_peft_model_state_dict(peft_model)
    # The writer's random adapter targets the same modules. It lists the shared box head under
    # every alias, as older PEFT versions (model.state_dict() filtered) did; current PEFT lists one.
    written = torch.load(files / tiny_gdino.ADAPTER_ID / tiny_gdino.ADAPTER_NAME, weights_only=True)["model"]

    def modules(state):
        return {ck.tie_canonical(k.removeprefix("base_model.model.")) for k in state}

    assert modules(written) == modules(adapter_sd)
    assert "base_model.model.bbox_embed.0.layers.2.weight" in written
    assert any(k.endswith("bbox_embed.0.layers.2.weight") for k in adapter_sd)
    adapter_path = tmp_path / "adapter.pth"
    torch.save({"epoch": 3, "model": adapter_sd}, adapter_path)

    ours, tokenizer = our_model(files, adapter_path)
    # The published inference path merges (merge_and_unload). Unmerged, PEFT would skip the LoRA of
    # the out_proj inside nn.MultiheadAttention (it reads out_proj.weight directly), so compare merged.
    merged = peft_model.merge_and_unload().eval()
    assert_same_outputs(merged, ours, tokenizer, images())
    # and the adapter matters: the base model differs from the adapted one
    base, _ = our_model(files)
    _, boxes_base, _ = run_ours(base, tokenizer, images())
    _, boxes_adapted, _ = run_ours(ours, tokenizer, images())
    assert (boxes_base - boxes_adapted).abs().max() > 1e-3


def test_preprocessing_matches_the_original_transform():
    """Shorter side 800 (max 1333), PIL bilinear, ImageNet normalisation, as in the original."""
    import groundingdino.datasets.transforms as T
    from PIL import Image

    transform = T.Compose([T.RandomResize([800], max_size=1333), T.ToTensor(),
                           T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    rng = np.random.default_rng(5)
    for shape in [(61, 47), (300, 1200, 3), (800, 700)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        expected, _ = transform(Image.fromarray(image).convert("RGB"), None)
        ours = preprocess(image)
        assert ours.shape == tuple(expected.shape)
        np.testing.assert_allclose(ours, expected.numpy(), atol=1e-5)


def test_real_swint_ogc_checkpoint_layout_maps_completely(files):
    """The real-size original model's every key maps, with matching shapes (not run)."""
    from transformers.modeling_utils import no_init_weights

    with no_init_weights():  # allocation only: the shapes are what matter
        original = build_original(text_dir(files), spec={}, real_bert=True)
    official = dict(original.state_dict())
    official["bert.embeddings.position_ids"] = torch.arange(512)[None]  # as in the released file
    with torch.device("meta"):
        reference = build_model({}).state_dict()
    converted = ck.convert_official_state_dict(official, reference)
    assert set(converted) == set(reference)
    for name, tensor in converted.items():
        assert tuple(tensor.shape) == tuple(reference[name].shape), name
    info = ck.describe_official(official)
    assert (info["swin_embed_dim"], info["swin_depths"], info["swin_window_size"]) == (96, [2, 2, 6, 2], 7)
    assert (info["enc_layers"], info["dec_layers"], info["num_queries"], info["text_layers"]) == (6, 6, 900, 12)
    # every published LoRA target exists in both models
    hf_modules = {name.rsplit(".", 1)[0] for name in reference}
    for target in ck.published_lora_targets():
        assert target + ".weight" in official
        assert ck.official_to_hf_name(target) in hf_modules
