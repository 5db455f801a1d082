"""LoRA training of Grounding DINO (issue 7): recipe, targets, data, loss, real learning, adapters, resume, CLI.

The detector here is a small Grounding DINO written as an official-layout checkpoint with random
weights (its own fixed configuration, so that the tiny test model of the detector tests may change
freely), loaded through the detector's own loader; a few dozen CPU steps on MNI phantom slices
with planted lesions measurably teach it: loss down, recall up.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from LoGSAMLib.errors import InputError  # noqa: E402
from LoGSAMLib.training import TrainConfig, Trainer, load_config  # noqa: E402

CLASSES = ["glioma", "meningioma", "pituitary"]


# --------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# A small Grounding DINO (every module kind of Swin-T OGC; hidden size 256 as the original code
# fixes it), without stochastic depth or dropout so that a few dozen CPU steps measurably teach it.
ARCHITECTURE = {
    "swin": {"embed_dim": 16, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 4, 8], "window_size": 7,
             "drop_path_rate": 0.0},
    "enc_layers": 2, "dec_layers": 2, "dim_feedforward": 128, "num_queries": 20, "fusion_droppath": 0.0,
}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """LOGSAM_HOME with that detector as an official-layout checkpoint (random weights) and a tiny BERT."""
    from LoGSAMLib.detection.architecture import build_model
    from LoGSAMLib.detection.checkpoints import convert_hf_state_dict_to_official
    from LoGSAMLib.testing import tiny_gdino

    root = tmp_path_factory.mktemp("train-home")
    text = tiny_gdino.write_text_encoder(root / "bert-base-uncased")
    bert_config = json.loads((text / "config.json").read_text())
    bert_config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (text / "config.json").write_text(json.dumps(bert_config))
    torch.manual_seed(0)
    model = build_model({"architecture": ARCHITECTURE}, text)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # no all-zero layer (transformers' init has some) in the frozen base
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    detector = root / "groundingdino-swint-ogc"
    detector.mkdir()
    official = convert_hf_state_dict_to_official(model.state_dict(), dec_layers=ARCHITECTURE["dec_layers"])
    torch.save({"model": official}, detector / "groundingdino_swint_ogc.pth")

    def files(folder: Path, names) -> list[dict]:
        return [{"name": n, "size": (folder / n).stat().st_size, "url": None,
                 "sha256": hashlib.sha256((folder / n).read_bytes()).hexdigest()} for n in names]

    registry = {
        "groundingdino-swint-ogc": {"stage": "detection", "title": "small test Grounding DINO",
                                    "files": files(detector, ["groundingdino_swint_ogc.pth"]),
                                    "config": {"text_encoder": "bert-base-uncased", "architecture": ARCHITECTURE}},
        "bert-base-uncased": {"stage": "tokenizer", "title": "tiny BERT",
                              "files": files(text, tiny_gdino.TOKENIZER_FILES)},
    }
    (root / "registry.json").write_text(json.dumps(registry))
    return root


@pytest.fixture
def env(home, monkeypatch) -> Path:
    monkeypatch.setenv("LOGSAM_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> list[dict]:
    """Axial slices through planted lesions of two MNI phantoms (2 per lesion), boxes from the masks."""
    from PIL import Image

    from LoGSAMLib.datasets import DetectionSample, boxes_from_mask
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
    from LoGSAMLib.volume import intensity_window, to_uint8

    folder = tmp_path_factory.mktemp("phantom-slices")
    plans = ((1, [LesionSpec("glioma", 18, "left", "frontal"), LesionSpec("pituitary", 10)]),
             (2, [LesionSpec("meningioma", 18, "right", "parietal")]))
    out = []
    for seed, specs in plans:
        phantom = make_phantom(specs, spacing=(2.0, 2.0, 2.0), seed=seed)
        window = intensity_window(phantom.volume)
        for lesion in phantom.lesions:
            own = phantom.instances.array == lesion.instance
            ks = [k for k in range(own.shape[0]) if own[k].sum() > 20]
            for k in ks[len(ks) // 2 - 1: len(ks) // 2 + 1]:
                image = to_uint8(phantom.volume.array[k], window)
                boxes = np.array(boxes_from_mask(own[k]), dtype=float)
                path = folder / f"{lesion.kind}_{seed}_{k}.png"
                Image.fromarray(image).save(path)
                out.append({"image": image, "mask": own[k], "kind": lesion.kind,
                            "sample": DetectionSample(path, boxes, [lesion.kind] * len(boxes))})
    return out


def small_config(**changes) -> TrainConfig:
    """The recipe, sized for a CPU test: small images, a small rank, a higher learning rate."""
    base = dict(rank=16, epochs=50, batch_size=6, lr=2e-3, short_side=64, max_side=128, val_fraction=0.0)
    return TrainConfig(**{**base, **changes})


def _base_names(peft_name: str) -> str:
    """A PEFT parameter name -> the wrapped model's own name."""
    name = peft_name.removeprefix("base_model.model.")
    return name.replace(".base_layer.", ".").replace(".original_module.", ".")


def _outputs(model, batch) -> tuple:
    from LoGSAMLib.training.data import model_inputs

    model.eval()
    with torch.no_grad():
        out = model(**model_inputs(batch, torch.device("cpu")))
    length = batch["input_ids"].shape[1]
    return out.logits[..., :length].clone(), out.pred_boxes.clone()


# --------------------------------------------------------------------------- recipe and targets


def test_published_recipe_defaults_and_config_files(tmp_path):
    config = TrainConfig()
    assert (config.rank, config.lora_alpha, config.dropout, config.scale) == (64, 64.0, 0.0, 1.0)
    assert (config.lr, config.weight_decay, config.warmup_fraction, config.grad_clip, config.batch_size) == \
        (2e-4, 0.0, 0.1, 5.0, 8)
    assert (config.loss_class, config.loss_l1, config.loss_giou) == (1.0, 10.0, 1.0)
    assert config.full_layers == ["bbox_embed.0.layers.2"] and config.targets == "published"

    yaml_file = tmp_path / "cfg.yaml"  # sections are flattened; the authors' names are aliases
    yaml_file.write_text("lora: {rank: 8}\ntraining:\n  learning_rate: 1.0e-3\n  num_epochs: 3\n  max_grad_norm: 1\n")
    config = load_config(yaml_file, batch_size=2, seed=None)
    assert (config.rank, config.lora_alpha, config.lr, config.epochs, config.grad_clip, config.batch_size) == \
        (8, 8.0, 1e-3, 3, 1.0, 2)
    json_file = tmp_path / "cfg.json"
    json_file.write_text(json.dumps({"rank": 4, "typo_setting": 1}))
    with pytest.raises(InputError, match="typo_setting"):
        load_config(json_file)
    with pytest.raises(InputError, match="lr"):
        TrainConfig(lr=-1.0)


def test_published_targets_on_the_real_swin_t_config():
    """Every published target is one linear layer of the real model; PEFT wraps exactly those."""
    from transformers import BertConfig

    from LoGSAMLib.detection.architecture import build_model
    from LoGSAMLib.training.targets import add_lora, count_parameters, published_targets, resolve

    with torch.device("meta"):  # real sizes, no memory, no initialisation
        model = build_model(None, BertConfig().to_dict(), init_weights=False)
    base_total = count_parameters(model).total
    official = published_targets(model.config)
    names = resolve(model, official)
    assert len(official) == len(names) == 6 * 9 + 6 * 8 + 2 + 4 * 3  # per encoder layer 9, decoder layer 8
    modules = dict(model.named_modules())
    assert all(isinstance(modules[n], torch.nn.Linear) for n in names)
    for expected in ("model.encoder.layers.5.deformable_layer.self_attn.sampling_offsets",
                     "model.encoder.layers.0.text_enhancer_layer.self_attn.out_proj",
                     "model.encoder.layers.3.text_enhancer_layer.fc2",
                     "model.decoder.layers.5.encoder_attn.output_proj",
                     "model.decoder.layers.2.encoder_attn_text.out_proj",
                     "model.decoder.layers.4.self_attn.out_proj", "model.decoder.layers.1.fc1",
                     "model.decoder.bbox_embed.0.layers.1",
                     "model.text_backbone.encoder.layer.8.attention.output.dense",
                     "model.text_backbone.encoder.layer.11.intermediate.dense"):
        assert expected in names
    # nothing unintended: no backbone, fusion, text projection, early BERT layers or proposal head
    for name in names:
        assert "conv_encoder" not in name and "fusion_layer" not in name and "text_projection" not in name
        assert "encoder_output_bbox_embed" not in name and ".layer.7." not in name and ".layer.0." not in name

    peft_model = add_lora(model, TrainConfig())
    wrapped = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == set(names)
    count = count_parameters(peft_model)
    lora = sum(64 * (modules[n].in_features + modules[n].out_features) for n in names)
    head = 256 * 4 + 4  # bbox_embed.0.layers.2, trained fully
    assert count.trainable == lora + head
    assert count.total == base_total + lora + head  # PEFT keeps the original head layer beside its copy
    print(f"\nreal Swin-T OGC, rank 64, published targets: {count}")
    assert 0.045 < count.fraction < 0.055  # "about 5 %"


def test_unknown_or_misplaced_targets_are_user_errors(env):
    from LoGSAMLib.training.base import load_base
    from LoGSAMLib.training.targets import add_lora

    model = load_base().model
    with pytest.raises(InputError, match="does not exist"):
        add_lora(model, TrainConfig(targets=["transformer.decoder.layers.9.linear1"]))
    with pytest.raises(InputError, match="not a Grounding DINO module"):
        add_lora(model, TrainConfig(targets=["decoder.mystery"]))
    with pytest.raises(InputError, match="not a linear layer"):
        add_lora(model, TrainConfig(targets=["transformer.decoder.layers.0.norm1"]))


# --------------------------------------------------------------------------- data, matching, loss


def test_captions_boxes_and_flips(env, slices):
    from LoGSAMLib.detection import preprocess
    from LoGSAMLib.training.base import load_base
    from LoGSAMLib.training.data import CaptionBuilder, Collator, DetectionDataset, caption_text

    tokenizer = load_base().tokenizer
    caption = CaptionBuilder(tokenizer).build(CLASSES)
    assert caption.ids == tokenizer(caption_text(CLASSES))["input_ids"]  # what the detector is given
    for name, (start, end) in caption.spans.items():
        assert tokenizer.decode(caption.ids[start:end]) == name

    sample = slices[0]["sample"]
    height, width = slices[0]["image"].shape
    plain = DetectionDataset([sample], CLASSES, short_side=64, max_side=128)[0]
    x0, y0, x1, y1 = sample.boxes[0]
    np.testing.assert_allclose(plain["boxes"][0], [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height,
                                                   (x1 - x0) / width, (y1 - y0) / height], rtol=1e-6)
    np.testing.assert_allclose(plain["pixels"], preprocess(slices[0]["image"], 64, 128))  # the detector's input
    flipped = DetectionDataset([sample], CLASSES, short_side=64, max_side=128, hflip_prob=1.0)[0]
    np.testing.assert_allclose(flipped["boxes"][0, 0], 1 - plain["boxes"][0, 0], atol=1e-6)

    shuffled = DetectionDataset([s["sample"] for s in slices], CLASSES, 64, 128, shuffle_captions=True, seed=3)
    orders = {tuple(shuffled[i]["order"]) for i in range(len(shuffled))}
    assert len(orders) > 1 and all(sorted(o) == CLASSES for o in orders)
    batch = Collator(tokenizer)([shuffled[i] for i in range(3)])
    for row, target in enumerate(batch["targets"]):
        start, end = batch["captions"][row].spans[batch["labels"][row][0]]
        assert target["token_maps"][0].nonzero().flatten().tolist() == list(range(start, end))
    with pytest.raises(InputError, match="not in the caption classes"):
        DetectionDataset([sample], ["meningioma"])


def test_matching_and_loss_prefer_the_right_query():
    from LoGSAMLib.training.losses import set_loss
    from LoGSAMLib.training.matcher import hungarian_match

    boxes = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.7, 0.6, 0.3, 0.2], [0.5, 0.5, 0.2, 0.2]])
    logits = torch.full((3, 6), -4.0)
    targets = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.7, 0.6, 0.3, 0.2]])
    maps = torch.zeros(2, 6)
    maps[0, 1] = maps[1, 3] = 1
    rows, cols = hungarian_match(logits, boxes, maps, targets)
    assert dict(zip(cols.tolist(), rows.tolist(), strict=True)) == {0: 2, 1: 1}

    config = TrainConfig()
    attention = torch.ones(1, 6, dtype=torch.long)
    target = [{"boxes": targets, "token_maps": maps}]
    good = logits.clone()
    good[2, 1] = good[1, 3] = 4.0
    padded = torch.full((1, 3, 256), float("-inf"))  # the model pads logits past the caption with -inf
    padded[0, :, :6] = logits
    bad = set_loss(padded, boxes[None], attention, target, config)
    padded[0, :, :6] = good
    better = set_loss(padded, boxes[None], attention, target, config)
    assert torch.isfinite(bad["loss"]) and better["loss_class"] < bad["loss_class"]
    assert float(better["loss_l1"]) == pytest.approx(0.0, abs=1e-6)
    assert float(better["loss_giou"]) == pytest.approx(0.0, abs=1e-5)
    negatives = set_loss(padded, boxes[None], attention, [{"boxes": torch.zeros(0, 4), "token_maps":
                                                           torch.zeros(0, 6)}], config)
    assert torch.isfinite(negatives["loss"]) and float(negatives["loss_l1"]) == 0.0


# --------------------------------------------------------------------------- learning and adapters


def _register_as_default_adapter(home: Path, pth: Path, new_home: Path, monkeypatch) -> None:
    """A model cache whose registry override makes ``pth`` the default adapter, logsam-lora-dino."""
    from LoGSAMLib import models

    new_home.mkdir()
    for model_id in ("groundingdino-swint-ogc", "bert-base-uncased"):
        shutil.copytree(home / model_id, new_home / model_id)  # a model folder linked outside the cache is refused
    registry = json.loads((home / "registry.json").read_text())
    registry["logsam-lora-dino"] = {"stage": "lora", "title": "own adapter", "files": [{"name": "brisc_lora.pth"}],
                                    "config": {"base_model": "groundingdino-swint-ogc"}}
    (new_home / "registry.json").write_text(json.dumps(registry))
    monkeypatch.setenv("LOGSAM_HOME", str(new_home))
    models.import_file("logsam-lora-dino", pth, name="brisc_lora.pth")  # the README's route for an own adapter


@pytest.mark.slow  # ~20 s of CPU: 50 optimiser steps and four adapter loads
def test_lora_training_learns_and_adapters_round_trip(env, slices, tmp_path, monkeypatch):
    """A few dozen steps lower the loss and raise recall; only LoRA + head change; both files reload."""
    from peft import PeftModel

    from LoGSAMLib.detection import load_detector
    from LoGSAMLib.detection.checkpoints import load_published_adapter
    from LoGSAMLib.training import export_pth, published_state_dict, read_training_info
    from LoGSAMLib.training.base import load_base
    from LoGSAMLib.training.export import save_adapter

    samples = [s["sample"] for s in slices]
    base = load_base()
    before_weights = {k: v.clone() for k, v in base.model.named_parameters()}
    trainer = Trainer(small_config(), samples, [], tmp_path / "run", base=base)
    loss_before, scores_before = trainer.evaluate(trainer.train_set)
    result = trainer.run()
    loss_after, scores_after = trainer.evaluate(trainer.train_set)
    print(f"\nloss {loss_before['loss']:.3f} -> {loss_after['loss']:.3f}; recall@0.5 "
          f"{scores_before.mean_recall:.2f} -> {scores_after.mean_recall:.2f}; mAP@0.5 "
          f"{scores_before.map:.2f} -> {scores_after.map:.2f}")
    assert loss_after["loss"] < 0.2 * loss_before["loss"]
    assert result.history[-1].train["loss"] < 0.2 * result.history[0].train["loss"]
    assert scores_after.mean_recall >= 0.5 > scores_before.mean_recall
    assert scores_after.map > scores_before.map

    # only LoRA matrices and the fully trained head layer learn; the base weights are untouched
    model = trainer.model
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n or ".modules_to_save." in n for n in trainable)
    assert {n for n in trainable if ".modules_to_save." in n} == {
        "base_model.model.model.decoder.bbox_embed.0.layers.2.modules_to_save.default.weight",
        "base_model.model.model.decoder.bbox_embed.0.layers.2.modules_to_save.default.bias"}
    frozen = {_base_names(n): p for n, p in model.named_parameters() if not p.requires_grad}
    assert set(frozen) == set(before_weights)  # every base weight is still there, frozen
    for name, value in frozen.items():
        assert torch.equal(value, before_weights[name]), name
    batch = trainer.collate([trainer.train_set[i] for i in range(len(samples))])
    trainer._forward(batch)[1]["loss"].backward()
    assert all(p.grad is None for p in frozen.values())
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    model.zero_grad(set_to_none=True)

    # the saved adapter reproduces the trained model, through every loader
    folder = save_adapter(model, tmp_path / "adapter")
    logits, boxes = _outputs(model, batch)
    pth = export_pth(folder, tmp_path / "logsam_lora_dino.pth")
    for adapter in (folder, pth, "logsam-lora-dino"):
        if adapter == "logsam-lora-dino":  # the Slicer route of the README: a registry override
            _register_as_default_adapter(env, pth, tmp_path / "slicer-home", monkeypatch)
        detector = load_detector(adapter=adapter, device="cpu", cache=False)
        got_logits, got_boxes = _outputs(detector.model, batch)
        torch.testing.assert_close(got_logits, logits, atol=2e-4, rtol=1e-4)
        torch.testing.assert_close(got_boxes, boxes, atol=2e-5, rtol=1e-4)
    with warnings.catch_warnings():  # PEFT lists the shared box head's other aliases as "missing"
        warnings.simplefilter("ignore", UserWarning)
        fresh = PeftModel.from_pretrained(load_base().model, str(folder))  # a standard PEFT folder
    torch.testing.assert_close(_outputs(fresh, batch)[0], logits, atol=2e-4, rtol=1e-4)

    published = torch.load(pth, map_location="cpu", weights_only=True)
    keys = list(published["model"])
    assert all(k.startswith("base_model.model.") for k in keys)
    assert "base_model.model.transformer.decoder.layers.1.cross_attn.value_proj.lora_A.weight" in keys
    assert "base_model.model.bert.encoder.layer.1.output.dense.lora_B.weight" in keys
    assert "base_model.model.bbox_embed.0.layers.1.lora_A.weight" in keys
    assert {"base_model.model.bbox_embed.0.layers.2.weight", "base_model.model.bbox_embed.0.layers.2.bias"} <= set(keys)
    assert not any(".model.model." in k or "text_backbone" in k or "default" in k for k in keys)
    adapter = load_published_adapter(pth)
    assert adapter.rank == 16 and published_state_dict(folder).keys() == published["model"].keys()

    info = read_training_info(tmp_path / "run")
    assert info["data"]["hash"] and info["classes"] == CLASSES and info["adapter_epoch"] >= 1
    assert info["parameters"]["trainable"] == result.parameters.trainable
    assert info["config"]["rank"] == 16 and len(info["history"]) == 50


def test_resume_continues_where_the_run_stopped(env, slices, tmp_path):
    from LoGSAMLib.errors import Cancelled
    from LoGSAMLib.progress import CancelToken

    samples = [s["sample"] for s in slices[::2]]
    val = [s["sample"] for s in slices[1::2]]
    config = small_config(epochs=2, batch_size=2, lr=1e-3)

    straight = Trainer(config, samples, val, tmp_path / "straight")
    straight.run()

    token = CancelToken()

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/"):
            token.cancel()  # as Ctrl-C would: the epoch-1 checkpoint is already written

    with pytest.raises(Cancelled):
        Trainer(config, samples, val, tmp_path / "resumed", cancel=token, echo=stop_after_first_epoch).run()
    with pytest.raises(InputError, match="--resume"):
        Trainer(config, samples, val, tmp_path / "resumed")
    with pytest.raises(InputError, match="lr"):
        Trainer(config.replace(lr=5e-3), samples, val, tmp_path / "resumed", resume=True).run()
    resumed = Trainer(config, samples, val, tmp_path / "resumed", resume=True)
    result = resumed.run()

    assert [r.epoch for r in result.history] == [1, 2]
    assert result.history[0].val is not None and result.history[0].map is not None
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        if a.requires_grad:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    assert straight.history[1].train["loss"] == pytest.approx(result.history[1].train["loss"], rel=1e-5)
    assert (tmp_path / "resumed" / "adapter_config.json").is_file()


# --------------------------------------------------------------------------- command line


def _brisc_folder(root: Path, slices: list[dict]) -> Path:
    """BRISC 2025 layout: segmentation_task/train/{images,masks}/brisc2025_train_<i>_<cls>_ax_t1.*"""
    from PIL import Image

    codes = {"glioma": "gl", "meningioma": "me", "pituitary": "pi"}
    images, masks = root / "segmentation_task" / "train" / "images", root / "segmentation_task" / "train" / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i, item in enumerate(slices, start=1):
        stem = f"brisc2025_train_{i:05d}_{codes[item['kind']]}_ax_t1"
        Image.fromarray(item["image"]).save(images / f"{stem}.jpg", quality=95)
        Image.fromarray((item["mask"] * 255).astype(np.uint8)).save(masks / f"{stem}.png")
    return root


def test_cli_trains_on_a_brisc_folder_and_exports(env, slices, tmp_path, capsys):
    from LoGSAMLib.cli import main
    from LoGSAMLib.detection.checkpoints import load_peft_folder

    data = _brisc_folder(tmp_path / "brisc", slices)
    out, pth = tmp_path / "adapter", tmp_path / "exported.pth"
    args = ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "3",
            "--image-size", "64", "--rank", "4", "--val-fraction", "0.34", "--export-pth", str(pth), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["adapter_epoch"] == 1 and summary["classes"] == CLASSES
    assert summary["val_map"] is not None and 0 < summary["trainable_fraction"] < 1
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert load_peft_folder(out).rank == 4
    info = json.loads((out / "training.json").read_text())
    assert info["data"]["source"] == "brisc" and len(info["data"]["hash"]) == 64
    assert info["data"]["n_train"] + info["data"]["n_val"] == len(slices) and info["data"]["n_val"] == 3
    assert pth.is_file()

    assert main(["train", "--out", str(out), "--export-pth", str(tmp_path / "again.pth")]) == 0  # export only
    assert (tmp_path / "again.pth").is_file()
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "1"]) == 2  # would overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "none")]) == 2
    assert "needs data" in capsys.readouterr().err
