"""Grounding DINO detector: key mapping, LoRA merge, adapters, errors, caching and detect()."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from LoGSAMLib.detection import checkpoints as ck  # noqa: E402
from LoGSAMLib.detection import groundingdino as gd  # noqa: E402
from LoGSAMLib.detection.architecture import build_model  # noqa: E402
from LoGSAMLib.errors import CheckpointError, InputError, ModelMissingError  # noqa: E402
from LoGSAMLib.testing import tiny_gdino  # noqa: E402
from LoGSAMLib.types import Box  # noqa: E402

TINY_SPEC = {"architecture": tiny_gdino.TINY_ARCHITECTURE}
SMALL = dict(short_side=64, max_side=128)  # small inputs keep CPU tests fast


@pytest.fixture(scope="module")
def gdino_home(tmp_path_factory) -> Path:
    """A model cache with only the tiny Grounding DINO files (and its registry override)."""
    from LoGSAMLib.testing import tiny_models

    folder = tmp_path_factory.mktemp("gdino-home")
    tiny_models.build(folder, writers=("tiny_gdino",))
    return folder


@pytest.fixture
def home(gdino_home, monkeypatch) -> Path:
    monkeypatch.setenv("LOGSAM_HOME", str(gdino_home))
    return gdino_home


@pytest.fixture(scope="module")
def detector(gdino_home):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOGSAM_HOME", str(gdino_home))
        det = gd.load_detector(device="cpu")
    det.short_side, det.max_side = SMALL["short_side"], SMALL["max_side"]
    return det


def slices(n: int, shape=(48, 64), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def base_file(home: Path) -> Path:
    return home / tiny_gdino.MODEL_ID / tiny_gdino.CHECKPOINT_NAME


def adapter_file(home: Path) -> Path:
    return home / tiny_gdino.ADAPTER_ID / tiny_gdino.ADAPTER_NAME


# ----------------------------------------------------------------------------- names


def test_official_names_map_to_transformers_names():
    cases = {
        "transformer.decoder.layers.3.cross_attn.value_proj": "model.decoder.layers.3.encoder_attn.value_proj",
        "transformer.encoder.layers.0.linear1.weight": "model.encoder.layers.0.deformable_layer.fc1.weight",
        "transformer.encoder.text_layers.5.self_attn.out_proj":
            "model.encoder.layers.5.text_enhancer_layer.self_attn.out_proj",
        "transformer.encoder.fusion_layers.1.gamma_v": "model.encoder.layers.1.fusion_layer.vision_param",
        "bert.encoder.layer.11.intermediate.dense": "model.text_backbone.encoder.layer.11.intermediate.dense",
        "backbone.0.norm1.weight": "model.backbone.conv_encoder.model.hidden_states_norms.stage2.weight",
        "transformer.decoder.bbox_embed.4.layers.2": "model.decoder.bbox_embed.4.layers.2",
        "bbox_embed.0.layers.0": "bbox_embed.0.layers.0",
        "feat_map": "model.text_projection",
        "transformer.enc_output_norm.bias": "model.enc_output_norm.bias",
        "transformer.tgt_embed.weight": "model.query_position_embeddings.weight",
    }
    for official, hf in cases.items():
        assert ck.official_to_hf_name(official) == hf
        assert ck.hf_to_official_name(hf) == official


def test_fused_projections_split_into_query_key_value():
    names = ck.official_to_hf_names("transformer.decoder.layers.0.self_attn.in_proj_weight")
    assert names == [f"model.decoder.layers.0.self_attn.{p}.weight" for p in ("query", "key", "value")]
    swin = ck.official_to_hf_names("backbone.0.layers.1.blocks.0.attn.qkv.bias")
    assert swin[1] == "model.backbone.conv_encoder.model.encoder.layers.1.blocks.0.attention.self.key.bias"
    with pytest.raises(KeyError):
        ck.official_to_hf_name("backbone.0.layers.1.blocks.0.attn.qkv")
    with pytest.raises(KeyError):
        ck.official_to_hf_name("transformer.unknown_module.weight")


def test_conversion_round_trips_every_transformers_weight():
    model = build_model(TINY_SPEC, tiny_gdino_text_config(), init_weights=True)
    hf = model.state_dict()
    official = ck.convert_hf_state_dict_to_official(hf, dec_layers=2)
    assert "transformer.decoder.layers.1.self_attn.in_proj_weight" in official
    assert {"bbox_embed.1.layers.2.weight", "transformer.decoder.bbox_embed.0.layers.2.weight"} <= set(official)
    back = ck.convert_official_state_dict(official, reference=hf)
    assert set(back) == set(hf)
    for name, value in hf.items():
        torch.testing.assert_close(back[name], value, atol=0, rtol=0, msg=name)


def tiny_gdino_text_config() -> dict:
    return dict(tiny_gdino.TINY_BERT, vocab_size=len(tiny_gdino.tiny_vocab()))


# ----------------------------------------------------------------------------- LoRA merge


def head_state() -> dict:
    """A toy official state dict: one linear target and the shared box head under four aliases."""
    gen = torch.Generator().manual_seed(0)
    head = {f"layers.{i}.{p}": torch.randn((4, 6) if p == "weight" else (4,), generator=gen)
            for i in range(3) for p in ("weight", "bias")}
    state = {"transformer.encoder.layers.0.linear1.weight": torch.randn(5, 3, generator=gen)}
    for prefix in ("bbox_embed.0", "bbox_embed.1", "transformer.decoder.bbox_embed.0",
                   "transformer.decoder.bbox_embed.1"):
        state.update({f"{prefix}.{k}": v for k, v in head.items()})  # same tensors: tied
    return state


def test_merge_is_w_plus_scale_b_a_and_the_head_reaches_every_alias():
    state = head_state()
    before = {k: v.clone() for k, v in state.items()}
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 3, generator=gen), torch.randn(5, 2, generator=gen)
    ha, hb = torch.randn(2, 6, generator=gen), torch.randn(4, 2, generator=gen)
    trained_w, trained_b = torch.randn(4, 6, generator=gen), torch.randn(4, generator=gen)
    adapter = {
        "base_model.model.transformer.encoder.layers.0.linear1.lora_A.weight": a,
        "base_model.model.transformer.encoder.layers.0.linear1.lora_B.weight": b,
        # the head's first layer listed under two aliases (identical, as PEFT saves them)
        "base_model.model.transformer.decoder.bbox_embed.0.layers.0.lora_A.weight": ha,
        "base_model.model.transformer.decoder.bbox_embed.0.layers.0.lora_B.weight": hb,
        "base_model.model.bbox_embed.1.layers.0.lora_A.default.weight": ha,
        "base_model.model.bbox_embed.1.layers.0.lora_B.default.weight": hb,
        "base_model.model.bbox_embed.0.layers.2.weight": trained_w,
        "base_model.model.bbox_embed.0.layers.2.bias": trained_b,
    }
    merged = ck.merge_lora(state, adapter, scale=0.5)
    torch.testing.assert_close(merged["transformer.encoder.layers.0.linear1.weight"],
                               before["transformer.encoder.layers.0.linear1.weight"] + 0.5 * b @ a)
    expected_head0 = before["bbox_embed.0.layers.0.weight"] + 0.5 * hb @ ha
    for prefix in ("bbox_embed.0", "bbox_embed.1", "transformer.decoder.bbox_embed.0",
                   "transformer.decoder.bbox_embed.1"):
        torch.testing.assert_close(merged[f"{prefix}.layers.0.weight"], expected_head0)
        assert torch.equal(merged[f"{prefix}.layers.2.weight"], trained_w)
        assert torch.equal(merged[f"{prefix}.layers.2.bias"], trained_b)
        assert torch.equal(merged[f"{prefix}.layers.1.weight"], before["bbox_embed.0.layers.1.weight"])
    for key, value in state.items():  # the input is left alone
        assert torch.equal(value, before[key])


def test_inconsistent_aliases_and_mismatching_adapters_are_refused():
    state = head_state()
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(2, 6, generator=gen)
    clash = {"bbox_embed.0.layers.0.lora_A.weight": a, "bbox_embed.0.layers.0.lora_B.weight": torch.ones(4, 2),
             "bbox_embed.1.layers.0.lora_A.weight": a, "bbox_embed.1.layers.0.lora_B.weight": torch.zeros(4, 2)}
    with pytest.raises(CheckpointError, match="two different values"):
        ck.merge_lora(state, clash)
    foreign = {"base_model.model.model.decoder.layers.0.fc1.lora_A.weight": torch.zeros(2, 3),
               "base_model.model.model.decoder.layers.0.fc1.lora_B.weight": torch.zeros(5, 2)}
    with pytest.raises(CheckpointError, match="does not match this model"):
        ck.merge_lora(state, foreign)
    wrong_rank_shape = {"transformer.encoder.layers.0.linear1.lora_A.weight": torch.zeros(2, 7),
                        "transformer.encoder.layers.0.linear1.lora_B.weight": torch.zeros(5, 2)}
    with pytest.raises(CheckpointError, match="does not fit"):
        ck.merge_lora(state, wrong_rank_shape)
    with pytest.raises(CheckpointError, match="without its partner"):
        ck.parse_adapter_state_dict({"x.lora_A.weight": torch.zeros(2, 3)})


def test_merging_before_or_after_conversion_agrees_including_fused_qkv(home):
    """Published adapter merged in official names then converted == converted then merged in hf names."""
    official = torch.load(base_file(home), weights_only=True)["model"]
    adapter = ck.load_published_adapter(adapter_file(home))
    gen = torch.Generator().manual_seed(3)
    qkv = "backbone.0.layers.2.blocks.1.attn.qkv"  # one fused Swin projection: B splits by rows
    out_dim, in_dim = official[qkv + ".weight"].shape
    adapter.lora[qkv] = (torch.randn(4, in_dim, generator=gen), torch.randn(out_dim, 4, generator=gen))
    first = ck.convert_official_state_dict(ck.merge_lora(official, adapter))
    second = ck.merge_lora(ck.convert_official_state_dict(official), ck.official_lora_to_hf(adapter))
    assert set(first) == set(second)
    changed = 0
    base = ck.convert_official_state_dict(official)
    for name in first:
        torch.testing.assert_close(first[name], second[name], atol=1e-6, rtol=1e-6, msg=name)
        changed += not torch.equal(first[name], base[name])
    assert changed >= len(adapter.lora) + 2  # every target (and each q/k/v part) moved


def test_published_adapter_for_another_architecture_is_a_clear_error(home, tmp_path):
    """The tiny adapter against a model whose layers are wider: shapes do not fit."""
    adapter = torch.load(adapter_file(home), weights_only=True)["model"]
    grown = {k: torch.cat([v, v], dim=1) if k.endswith("lora_A.weight") else v for k, v in adapter.items()}
    path = tmp_path / "other.pth"
    torch.save({"model": grown}, path)
    model = build_model(TINY_SPEC, home / tiny_gdino.TEXT_ID, init_weights=False)
    with pytest.raises(CheckpointError, match="another model size"):
        gd.convert_and_merge(base_file(home), path, 1.0, model.state_dict())


# ----------------------------------------------------------------------------- wrong files


def test_wrong_checkpoint_kinds_are_named(tmp_path):
    sam = {"image_encoder.patch_embed.proj.weight": torch.zeros(1), "mask_decoder.x": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="SAM/MedSAM"):
        ck.official_state_dict(sam)
    lora = {"model": {"base_model.model.feat_map.lora_A.weight": torch.zeros(2, 2)}}
    with pytest.raises(CheckpointError, match="LoRA adapter"):
        ck.official_state_dict(lora)
    with pytest.raises(CheckpointError, match="not a Grounding DINO checkpoint"):
        ck.official_state_dict({"model": {"fc.weight": torch.zeros(1)}})
    path = tmp_path / "sam_vit_b.pth"
    torch.save(sam, path)
    with pytest.raises(CheckpointError, match="SAM/MedSAM"):
        gd.convert_and_merge(path, None, 1.0, {})


def test_checkpoint_of_another_size_is_reported_with_its_architecture(home):
    official = torch.load(base_file(home), weights_only=True)["model"]
    bigger = dict(tiny_gdino.TINY_ARCHITECTURE, swin=dict(tiny_gdino.TINY_ARCHITECTURE["swin"], embed_dim=32))
    with torch.device("meta"):
        reference = build_model({"architecture": bigger}, home / tiny_gdino.TEXT_ID).state_dict()
    with pytest.raises(CheckpointError, match=r"Swin \(embed_dim 16\).*shape mismatches"):
        ck.convert_official_state_dict(official, reference)
    extra = dict(official, **{"transformer.something_new.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="no place in the model"):
        ck.convert_official_state_dict(extra)
    with torch.device("meta"):
        same = build_model(TINY_SPEC, home / tiny_gdino.TEXT_ID).state_dict()
    lacking = {k: v for k, v in official.items() if k != "transformer.decoder.layers.1.linear2.bias"}
    with pytest.raises(CheckpointError, match="1 weights missing.*layers.1.fc2.bias"):
        ck.convert_official_state_dict(lacking, same)


def test_missing_adapter_path_and_unknown_id(home):
    with pytest.raises(ModelMissingError, match="adapter not found"):
        gd.load_detector(adapter="/nonexistent/adapter.pth")
    with pytest.raises(Exception, match="Unknown model id"):
        gd.load_detector(adapter="no-such-adapter")


def test_the_trained_head_layer_reaches_every_alias(detector, gdino_home):
    """The published loader loses the fully trained box-head layer on merge; ours must not."""
    written = torch.load(adapter_file(gdino_home), weights_only=True)["model"]
    model = detector.model
    heads = [head.layers[2] for head in model.bbox_embed] + [head.layers[2] for head in model.model.decoder.bbox_embed]
    for layer in heads:
        assert torch.equal(layer.weight, written["base_model.model.bbox_embed.0.layers.2.weight"])
        assert torch.equal(layer.bias, written["base_model.model.bbox_embed.0.layers.2.bias"])
    # the two-stage head is a separate module and keeps its base weights
    assert not torch.equal(model.model.encoder_output_bbox_embed.layers[2].weight, heads[0].weight)


# ----------------------------------------------------------------------------- PEFT folders


def test_peft_adapter_folder_from_our_transformers_model(home, tmp_path):
    """A standard PEFT folder (alpha != rank, trained head) merges into the same outputs PEFT gives."""
    from peft import LoraConfig, get_peft_model

    model = build_model(TINY_SPEC, home / tiny_gdino.TEXT_ID, init_weights=False).eval()
    gd.load_state_into(model, gd.convert_and_merge(base_file(home), None, 1.0, model.state_dict()))
    targets = [ck.official_to_hf_name(t) for t in ck.published_lora_targets(1, 2, 2)]
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets,
                        modules_to_save=["bbox_embed.0.layers.2"])
    peft_model = get_peft_model(model, config).eval()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    folder = tmp_path / "adapter"
    peft_model.save_pretrained(str(folder))
    loaded = ck.load_peft_folder(folder)
    assert loaded.scale == 2.0 and loaded.rank == 4 and loaded.full

    inputs = model_inputs(home)
    with torch.no_grad():
        expected = peft_model(**inputs)
    ours = build_model(TINY_SPEC, home / tiny_gdino.TEXT_ID, init_weights=False).eval()
    gd.load_state_into(ours, gd.convert_and_merge(base_file(home), folder, 1.0, ours.state_dict()))
    with torch.no_grad():
        got = ours(**inputs)
    torch.testing.assert_close(got.pred_boxes, expected.pred_boxes, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.logits[..., :5], expected.logits[..., :5], atol=1e-4, rtol=1e-4)


def model_inputs(home: Path) -> dict:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(home / tiny_gdino.TEXT_ID), local_files_only=True)
    tokens = tokenizer(["glioma . pituitary ."], return_tensors="pt")
    pixels = torch.from_numpy(gd.preprocess(slices(1)[0], 64, 128))[None]
    return dict(pixel_values=pixels, **tokens)


# ----------------------------------------------------------------------------- loading + cache


def test_tiny_files_load_from_logsam_home(tiny_home):
    """The tiny writer's files, through the registry, the model cache and the converter."""
    det = gd.load_detector(device="cpu")
    assert det.box_threshold == gd.DEFAULT_BOX_THRESHOLD and det.text_threshold == gd.DEFAULT_TEXT_THRESHOLD
    det.short_side, det.max_side = SMALL["short_side"], SMALL["max_side"]
    boxes = det.detect(slices(1), "glioma .", box_threshold=0.0, text_threshold=0.0)
    assert len(boxes) == 1 and boxes[0] and all(b.label == "glioma" for b in boxes[0])
    assert list((tiny_home / "converted").glob("groundingdino-*.safetensors"))


def test_converted_weights_are_cached_and_never_stale(home, monkeypatch, tmp_path):
    from LoGSAMLib.detection import cache

    monkeypatch.setattr(cache, "cache_root", lambda: tmp_path / "converted")
    calls = []
    real = gd.convert_and_merge

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(gd, "convert_and_merge", counting)
    adapter = tmp_path / "adapter.pth"
    adapter.write_bytes(adapter_file(home).read_bytes())
    first = gd.load_detector(adapter=adapter, device="cpu")
    second = gd.load_detector(adapter=adapter, device="cpu")
    assert len(calls) == 1 and len(list((tmp_path / "converted").glob("*.safetensors"))) == 1
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    base_only = gd.load_detector(adapter=None, device="cpu")
    assert len(calls) == 2
    head = first.model.bbox_embed[0].layers[2].weight
    assert not torch.equal(base_only.model.bbox_embed[0].layers[2].weight, head)
    # the adapter file changes in place: a new key, converted again, never the stale entry
    state = torch.load(adapter, weights_only=True)
    state["model"] = {k: v * 2 for k, v in state["model"].items()}
    torch.save(state, adapter)
    third = gd.load_detector(adapter=adapter, device="cpu")
    assert len(calls) == 3
    torch.testing.assert_close(third.model.bbox_embed[1].layers[2].weight, 2 * head)
    # a new code version invalidates every entry
    monkeypatch.setattr(cache, "CODE_VERSION", "test-bump")
    gd.load_detector(adapter=None, device="cpu")
    assert len(calls) == 4


# ----------------------------------------------------------------------------- detect()


def test_batched_and_single_detection_agree(detector):
    images = slices(2)
    detector.batch_size = 2
    batched = detector.detect(images, "glioma .", box_threshold=0.3, text_threshold=0.0)
    detector.batch_size = 1
    single = detector.detect(images, "glioma .", box_threshold=0.3, text_threshold=0.0)
    detector.batch_size = 4
    assert sum(len(b) for b in batched) > 0
    for got, want in zip(batched, single, strict=True):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.as_array(), w.as_array(), atol=1e-3)
            assert abs(g.score - w.score) < 1e-4 and g.label == w.label


def test_boxes_are_in_each_slices_own_pixels_in_a_mixed_size_batch(detector):
    """Boxes are in each slice's own pixels: x scales with its width, y with its height."""
    images = [slices(1, (40, 100), seed=1)[0], slices(1, (64, 48), seed=2)[0]]
    probs, boxes, _ = detector.predict(images, "meningioma .")
    found = detector.detect(images, "meningioma .", box_threshold=0.0, text_threshold=0.0)
    for image, got, p, b in zip(images, found, probs, boxes, strict=True):
        height, width = image.shape
        assert len(got) == p.shape[0]
        best = int(p.max(dim=1).values.argmax())
        cx, cy, w, h = b[best].tolist()
        expected = np.clip([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                            (cy + h / 2) * height], 0, [width, height, width, height])
        np.testing.assert_allclose(got[0].as_array(), expected, atol=1e-4)
        assert all(0 <= bx.x0 <= bx.x1 <= width and 0 <= bx.y0 <= bx.y1 <= height for bx in got)


def test_thresholds_filter_boxes_and_labels_are_caption_phrases(detector):
    image = slices(1, seed=4)
    caption = "glioma . pituitary tumor ."
    probs, boxes, tokens = detector.predict(image, caption)

    def keep(box_t: float, text_t: float) -> list[Box]:
        return detector._boxes(probs[0], boxes[0], tokens, image[0].shape, box_t, text_t)

    scores = probs[0].max(dim=1).values.sort(descending=True).values
    cut = float(scores[len(scores) // 2])
    kept = detector.detect(image, caption, box_threshold=cut, text_threshold=0.0)[0]
    assert kept == keep(cut, 0.0)  # detect() is predict() + this filter
    assert len(kept) == int((scores > cut).sum()) and all(b.score > cut for b in kept)
    assert [b.score for b in kept] == sorted((b.score for b in kept), reverse=True)
    assert {b.label for b in kept} <= {"glioma", "pituitary tumor"}
    assert len(keep(0.0, 0.0)) == probs.shape[1] > len(kept)
    # a text threshold above every phrase-token probability leaves no named box
    phrase_tokens = [i for start, end, _ in tokens.phrases for i in range(start, end)]
    top_token = float(probs[0][:, phrase_tokens].max())
    assert keep(0.0, top_token) == [] and len(keep(0.0, top_token * 0.99)) >= 1
    # a box is named after the phrase holding its best token
    for box in keep(0.0, 0.0)[:5]:
        q = int((probs[0].max(dim=1).values - box.score).abs().argmin())
        best_token = max(phrase_tokens, key=lambda i: float(probs[0][q, i]))
        assert box.label == next(text for start, end, text in tokens.phrases if start <= best_token < end)


def test_text_features_are_computed_once_per_caption(detector):
    detector.batch_size = 1
    start = detector.text_encoder_calls
    images = slices(3, seed=7)
    cached = detector.predict(images, "adenoma .")  # 3 batches
    assert detector.text_encoder_calls == start + 1
    detector.detect(images[:1], "adenoma .")
    assert detector.text_encoder_calls == start + 1
    detector.detect(images[:1], "lesion .")
    assert detector.text_encoder_calls == start + 2
    detector.batch_size = 4
    # the cached features give the same outputs as a plain forward (no cache outside inference mode)
    tokens = cached[2]
    pixels, mask = gd.pad_batch([gd.preprocess(images[2], 64, 128)])
    with torch.no_grad():
        plain = detector.model(pixel_values=torch.from_numpy(pixels), pixel_mask=torch.from_numpy(mask),
                               input_ids=tokens.input_ids, attention_mask=tokens.attention_mask,
                               token_type_ids=tokens.token_type_ids)
    torch.testing.assert_close(plain.pred_boxes[0], cached[1][2], atol=1e-5, rtol=1e-5)


def test_bf16_autocast_on_cpu_stays_close(detector, gdino_home):
    image = slices(1, seed=9)
    probs32, boxes32, _ = detector.predict(image, "glioma .")
    bf16 = gd.GroundingDinoDetector(detector.model, detector.tokenizer, device="cpu", precision="bf16",
                                    **SMALL)
    probs16, boxes16, _ = bf16.predict(image, "glioma .")
    assert bf16.dtype == torch.bfloat16 and probs16.dtype == torch.float32
    # same top query region; bf16 keeps boxes within a few percent of the image
    assert (boxes16 - boxes32).abs().median() < 0.05
    assert detector.predict(image, "glioma .")[0].equal(probs32)  # CPU fp32 is deterministic


def test_bad_inputs_are_user_errors(detector):
    with pytest.raises(InputError, match="uint8"):
        detector.detect([np.zeros((8, 8), dtype=np.float32)], "glioma .")
    with pytest.raises(InputError, match="shape"):
        detector.detect([np.zeros((8, 8, 4), dtype=np.uint8)], "glioma .")
    with pytest.raises(InputError, match="empty"):
        detector.detect(slices(1), "   ")
    assert detector.detect([], "glioma .") == []


def test_resize_rule_and_caption_normalisation():
    assert gd.resize_shape(512, 512) == (800, 800)
    assert gd.resize_shape(600, 800) == (800, 1066)
    assert gd.resize_shape(100, 1000) == (133, 1330)  # the longer side is capped (then truncated)
    assert gd.resize_shape(800, 700) == (914, 800)
    assert gd.normalize_caption("  Glioma ") == "glioma ."
    assert gd.normalize_caption("glioma . meningioma.") == "glioma . meningioma."
    rgb = gd.preprocess(np.full((10, 20, 3), 255, dtype=np.uint8), 20, 100)
    gray = gd.preprocess(np.full((10, 20), 255, dtype=np.uint8), 20, 100)
    assert rgb.shape == (3, 20, 40) and np.allclose(rgb, gray)
    np.testing.assert_allclose(rgb[:, 0, 0], (1 - gd.IMAGENET_MEAN) / gd.IMAGENET_STD, rtol=1e-6)


def test_detector_satisfies_the_protocol(detector):
    from LoGSAMLib.detection import Detector

    assert isinstance(detector, Detector)
    found = detector.detect(slices(2), "glioma .", 0.0, 0.0)
    assert all(isinstance(b, Box) for boxes in found for b in boxes)
