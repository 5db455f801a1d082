"""Official Grounding DINO checkpoints -> transformers, and LoRA adapters merged into them.

Two name spaces meet here:

- **official**: the module names of the original ``groundingdino`` code, used by
  ``groundingdino_swint_ogc.pth`` (``{"model": state_dict}``) and by the published LoGSAM
  adapter (PEFT keys ``base_model.model.<official module>.lora_A.weight``);
- **hf**: the names of ``transformers.GroundingDinoForObjectDetection``, used by our own PEFT
  adapter folders (training) and by the converted model.

The mapping is a table of name templates, used in both directions; fused projections
(Swin ``attn.qkv``, ``nn.MultiheadAttention.in_proj_*``) are split into query/key/value.
The decoder box head is shared by every decoder layer in both codes, so one head has many
names (``bbox_embed.<i>`` and ``transformer.decoder.bbox_embed.<i>``): every alias gets the
same (merged or trained) tensor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

_SWIN = "model.backbone.conv_encoder.model."
_QKV = ("query", "key", "value")


@dataclass(frozen=True)
class _Rule:
    """``official`` <-> ``hf`` module-name templates; ``{a}``/``{b}`` match layer numbers.

    ``fused``: the official parameter is query/key/value stacked on dim 0, the hf side has
    one module per part (``{part}`` in ``hf``). ``stage_shift``: hf numbers ``{a}`` one higher.
    """

    official: str
    hf: str
    fused: bool = False
    stage_shift: bool = False


def _r(official: str, hf: str, **kw: bool) -> _Rule:
    return _Rule(official, hf, **kw)


# Order matters: fused and specific rules before the generic ones they overlap with.
RULES: tuple[_Rule, ...] = (
    # ---- Swin-T backbone
    _r("backbone.0.patch_embed.proj", _SWIN + "embeddings.patch_embeddings.projection"),
    _r("backbone.0.patch_embed.norm", _SWIN + "embeddings.norm"),
    _r("backbone.0.layers.{a}.blocks.{b}.attn.qkv", _SWIN + "encoder.layers.{a}.blocks.{b}.attention.self.{part}",
       fused=True),
    _r("backbone.0.layers.{a}.blocks.{b}.attn.proj", _SWIN + "encoder.layers.{a}.blocks.{b}.attention.output.dense"),
    _r("backbone.0.layers.{a}.blocks.{b}.attn", _SWIN + "encoder.layers.{a}.blocks.{b}.attention.self"),
    _r("backbone.0.layers.{a}.blocks.{b}.norm1", _SWIN + "encoder.layers.{a}.blocks.{b}.layernorm_before"),
    _r("backbone.0.layers.{a}.blocks.{b}.norm2", _SWIN + "encoder.layers.{a}.blocks.{b}.layernorm_after"),
    _r("backbone.0.layers.{a}.blocks.{b}.mlp.fc1", _SWIN + "encoder.layers.{a}.blocks.{b}.intermediate.dense"),
    _r("backbone.0.layers.{a}.blocks.{b}.mlp.fc2", _SWIN + "encoder.layers.{a}.blocks.{b}.output.dense"),
    _r("backbone.0.layers.{a}.downsample", _SWIN + "encoder.layers.{a}.downsample"),
    _r("backbone.0.norm{a}", _SWIN + "hidden_states_norms.stage{a}", stage_shift=True),
    # ---- BERT text encoder and its projection
    _r("bert.embeddings", "model.text_backbone.embeddings"),
    _r("bert.encoder", "model.text_backbone.encoder"),
    _r("feat_map", "model.text_projection"),
    _r("input_proj", "model.input_proj_vision"),
    # ---- encoder: deformable image layers, text enhancer layers, fusion layers
    _r("transformer.encoder.layers.{a}.self_attn", "model.encoder.layers.{a}.deformable_layer.self_attn"),
    _r("transformer.encoder.layers.{a}.norm1", "model.encoder.layers.{a}.deformable_layer.self_attn_layer_norm"),
    _r("transformer.encoder.layers.{a}.linear1", "model.encoder.layers.{a}.deformable_layer.fc1"),
    _r("transformer.encoder.layers.{a}.linear2", "model.encoder.layers.{a}.deformable_layer.fc2"),
    _r("transformer.encoder.layers.{a}.norm2", "model.encoder.layers.{a}.deformable_layer.final_layer_norm"),
    _r("transformer.encoder.text_layers.{a}.self_attn.in_proj",
       "model.encoder.layers.{a}.text_enhancer_layer.self_attn.{part}", fused=True),
    _r("transformer.encoder.text_layers.{a}.self_attn.out_proj",
       "model.encoder.layers.{a}.text_enhancer_layer.self_attn.out_proj"),
    _r("transformer.encoder.text_layers.{a}.linear1", "model.encoder.layers.{a}.text_enhancer_layer.fc1"),
    _r("transformer.encoder.text_layers.{a}.linear2", "model.encoder.layers.{a}.text_enhancer_layer.fc2"),
    _r("transformer.encoder.text_layers.{a}.norm1", "model.encoder.layers.{a}.text_enhancer_layer.layer_norm_before"),
    _r("transformer.encoder.text_layers.{a}.norm2", "model.encoder.layers.{a}.text_enhancer_layer.layer_norm_after"),
    _r("transformer.encoder.fusion_layers.{a}.gamma_v", "model.encoder.layers.{a}.fusion_layer.vision_param"),
    _r("transformer.encoder.fusion_layers.{a}.gamma_l", "model.encoder.layers.{a}.fusion_layer.text_param"),
    _r("transformer.encoder.fusion_layers.{a}.layer_norm_v", "model.encoder.layers.{a}.fusion_layer.layer_norm_vision"),
    _r("transformer.encoder.fusion_layers.{a}.layer_norm_l", "model.encoder.layers.{a}.fusion_layer.layer_norm_text"),
    _r("transformer.encoder.fusion_layers.{a}.attn.v_proj", "model.encoder.layers.{a}.fusion_layer.attn.vision_proj"),
    _r("transformer.encoder.fusion_layers.{a}.attn.l_proj", "model.encoder.layers.{a}.fusion_layer.attn.text_proj"),
    _r("transformer.encoder.fusion_layers.{a}.attn.values_v_proj",
       "model.encoder.layers.{a}.fusion_layer.attn.values_vision_proj"),
    _r("transformer.encoder.fusion_layers.{a}.attn.values_l_proj",
       "model.encoder.layers.{a}.fusion_layer.attn.values_text_proj"),
    _r("transformer.encoder.fusion_layers.{a}.attn.out_v_proj",
       "model.encoder.layers.{a}.fusion_layer.attn.out_vision_proj"),
    _r("transformer.encoder.fusion_layers.{a}.attn.out_l_proj",
       "model.encoder.layers.{a}.fusion_layer.attn.out_text_proj"),
    # ---- decoder layers
    _r("transformer.decoder.layers.{a}.cross_attn", "model.decoder.layers.{a}.encoder_attn"),
    _r("transformer.decoder.layers.{a}.norm1", "model.decoder.layers.{a}.encoder_attn_layer_norm"),
    _r("transformer.decoder.layers.{a}.ca_text.in_proj", "model.decoder.layers.{a}.encoder_attn_text.{part}",
       fused=True),
    _r("transformer.decoder.layers.{a}.ca_text.out_proj", "model.decoder.layers.{a}.encoder_attn_text.out_proj"),
    _r("transformer.decoder.layers.{a}.catext_norm", "model.decoder.layers.{a}.encoder_attn_text_layer_norm"),
    _r("transformer.decoder.layers.{a}.self_attn.in_proj", "model.decoder.layers.{a}.self_attn.{part}", fused=True),
    _r("transformer.decoder.layers.{a}.self_attn.out_proj", "model.decoder.layers.{a}.self_attn.out_proj"),
    _r("transformer.decoder.layers.{a}.norm2", "model.decoder.layers.{a}.self_attn_layer_norm"),
    _r("transformer.decoder.layers.{a}.linear1", "model.decoder.layers.{a}.fc1"),
    _r("transformer.decoder.layers.{a}.linear2", "model.decoder.layers.{a}.fc2"),
    _r("transformer.decoder.layers.{a}.norm3", "model.decoder.layers.{a}.final_layer_norm"),
    _r("transformer.decoder.norm", "model.decoder.layer_norm"),
    _r("transformer.decoder.ref_point_head", "model.decoder.reference_points_head"),
    _r("transformer.decoder.bbox_embed", "model.decoder.bbox_embed"),
    _r("bbox_embed", "bbox_embed"),
    # ---- two-stage heads and embeddings
    _r("transformer.enc_output", "model.enc_output"),
    _r("transformer.enc_output_norm", "model.enc_output_norm"),
    _r("transformer.enc_out_bbox_embed", "model.encoder_output_bbox_embed"),
    _r("transformer.level_embed", "model.level_embed"),
    _r("transformer.tgt_embed", "model.query_position_embeddings"),
)

# Official keys with no transformers counterpart: BERT's pooler (Grounding DINO never uses it)
# and position_ids (a constant buffer that older transformers versions saved).
IGNORED_OFFICIAL = re.compile(r"^bert\.(pooler\..*|embeddings\.position_ids)$")
def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name in ("a", "b"):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>\\d+)")
    pattern = pattern.replace(re.escape("{part}"), "(?P<part>query|key|value)")
    # the rest is a sub-module/parameter path; only "in_proj" continues with "_weight"/"_bias"
    sep = "[._]" if template.endswith("in_proj") else "[.]"
    return re.compile(f"^{pattern}(?P<rest>(?:{sep}.*)?)$")


_OFFICIAL_RX = [_compile(rule.official) for rule in RULES]
_HF_RX = [_compile(rule.hf) for rule in RULES]


def _fill(template: str, groups: dict[str, str], part: str | None = None) -> str:
    out = template
    for name in ("a", "b"):
        if groups.get(name) is not None:
            out = out.replace("{" + name + "}", groups[name])
    return out.replace("{part}", part) if part else out


def _find(name: str, official: bool) -> tuple[_Rule, dict[str, str]] | None:
    for rule, rx in zip(RULES, _OFFICIAL_RX if official else _HF_RX, strict=True):
        match = rx.match(name)
        if match:
            return rule, match.groupdict()
    return None


def _shift(groups: dict[str, str], rule: _Rule, step: int) -> dict[str, str]:
    if rule.stage_shift:
        groups = dict(groups, a=str(int(groups["a"]) + step))
    return groups


def official_to_hf_names(name: str) -> list[str]:
    """Every transformers name for an official module or parameter name.

    One name for most; three (query, key, value) for a fused projection. Raises ``KeyError``
    for a name outside the table.
    """
    found = _find(name, official=True)
    if found is None:
        raise KeyError(f"no transformers counterpart for official name {name!r}")
    rule, groups = found
    rest = groups["rest"]
    groups = _shift(groups, rule, +1)
    if not rule.fused:
        return [_fill(rule.hf, groups) + rest]
    leaf = {"_weight": ".weight", "_bias": ".bias"}.get(rest, rest)
    return [_fill(rule.hf, groups, part) + leaf for part in _QKV]


def official_to_hf_name(name: str) -> str:
    """The transformers name of an official module or parameter (e.g. a LoRA target).

    ``"transformer.decoder.layers.0.cross_attn.value_proj"`` ->
    ``"model.decoder.layers.0.encoder_attn.value_proj"``. Fused projections (Swin ``attn.qkv``,
    attention ``in_proj``) have three counterparts: use :func:`official_to_hf_names`.
    """
    names = official_to_hf_names(name)
    if len(names) != 1:
        raise KeyError(f"official {name!r} is a fused query/key/value projection: {names}")
    return names[0]


def hf_to_official_name(name: str) -> str:
    """The official name of a transformers module or parameter (inverse of the above).

    A query/key/value part of a fused projection maps to the fused official name.
    """
    found = _find(name, official=False)
    if found is None:
        raise KeyError(f"no official counterpart for transformers name {name!r}")
    rule, groups = found
    rest = groups["rest"]
    groups = _shift(groups, rule, -1)
    base = _fill(rule.official, groups)
    if rule.fused and base.endswith(".in_proj"):
        rest = {".weight": "_weight", ".bias": "_bias"}.get(rest, rest)
    return base + rest


# ------------------------------------------------------------------- tied box head


def tie_canonical(name: str, shared: bool = True) -> str:
    """One name per physical tensor: every alias of the decoder's shared box head -> ``bbox_embed.0``.

    Works in both name spaces (``transformer.decoder.bbox_embed.<i>`` / ``model.decoder...``).
    With ``shared=False`` (one head per layer) only the decoder alias is folded.
    """
    match = re.match(r"^(?:transformer\.decoder\.|model\.decoder\.)?bbox_embed\.(\d+)\.(.*)$", name)
    if not match:
        return name
    return f"bbox_embed.{0 if shared else match.group(1)}.{match.group(2)}"


# ------------------------------------------------------------------- checkpoint kind


def _describe_foreign(keys: Iterable[str]) -> str | None:
    keys = list(keys)
    joined = "\n".join(keys[:2000])
    if re.search(r"^(image_encoder|mask_decoder|prompt_encoder)\.", joined, re.M):
        return "a SAM/MedSAM segmentation checkpoint"
    if "lora_A" in joined or "lora_B" in joined:
        return "a LoRA adapter (pass it as the adapter, not as the base model)"
    if re.search(r"^model\.backbone\.conv_encoder\.", joined, re.M):
        return "a transformers-format Grounding DINO state dict, not the original checkpoint"
    if re.search(r"^(encoder\.blocks|decoder\.blocks|dims)", joined, re.M):
        return "a Whisper speech model"
    return None


def official_state_dict(checkpoint: Any) -> dict[str, Any]:
    """The ``model`` state dict of a loaded official checkpoint, checked to be Grounding DINO."""
    if isinstance(checkpoint, Mapping) and "model" in checkpoint and isinstance(checkpoint["model"], Mapping):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise CheckpointError("This file holds no state dict; expected groundingdino_swint_ogc.pth "
                              "({'model': state_dict}).")
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in checkpoint.items()}
    foreign = _describe_foreign(state)
    needed = ("backbone.0.patch_embed.proj.weight", "transformer.level_embed", "bert.embeddings.word_embeddings.weight")
    if foreign or not all(k in state for k in needed):
        what = foreign or f"not a Grounding DINO checkpoint (keys like {', '.join(list(state)[:3])})"
        raise CheckpointError(f"This file is {what}; expected the original Grounding DINO Swin-T "
                              "checkpoint groundingdino_swint_ogc.pth.")
    return state


def describe_official(state: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture numbers an official state dict implies (for wrong-size messages)."""
    def count(pattern: str) -> int:
        rx = re.compile(pattern)
        return len({m.group(1) for k in state if (m := rx.match(k))})

    stages = count(r"^backbone\.0\.layers\.(\d+)\.")
    depths = [count(rf"^backbone\.0\.layers\.{i}\.blocks\.(\d+)\.") for i in range(stages)]
    table = state.get("backbone.0.layers.0.blocks.0.attn.relative_position_bias_table")
    return {
        "swin_embed_dim": int(state["backbone.0.patch_embed.proj.weight"].shape[0]),
        "swin_depths": depths,
        "swin_window_size": int((round(table.shape[0] ** 0.5) + 1) // 2) if table is not None else None,
        "hidden_dim": int(state["transformer.level_embed"].shape[1]),
        "enc_layers": count(r"^transformer\.encoder\.layers\.(\d+)\."),
        "dec_layers": count(r"^transformer\.decoder\.layers\.(\d+)\."),
        "num_queries": int(state["transformer.tgt_embed.weight"].shape[0]) if "transformer.tgt_embed.weight" in state
        else None,
        "text_hidden": int(state["bert.embeddings.word_embeddings.weight"].shape[1]),
        "text_layers": count(r"^bert\.encoder\.layer\.(\d+)\."),
    }


def _swin_name(info: Mapping[str, Any]) -> str:
    names = {96: "Swin-T", 128: "Swin-B", 192: "Swin-L"}
    return names.get(info["swin_embed_dim"], f"Swin (embed_dim {info['swin_embed_dim']})")


# ------------------------------------------------------------------- conversion


def convert_official_state_dict(state: Mapping[str, Any], reference: Mapping[str, Any] | None = None,
                                shared_head: bool = True) -> dict[str, Any]:
    """An official Grounding DINO state dict -> the transformers state dict (complete).

    Every official key is mapped or is one of the known ignorable ones; an unknown key raises
    :class:`CheckpointError`. With ``reference`` (the target model's ``state_dict()`` or any
    name -> tensor/shape mapping) every expected key must be produced with the right shape.
    Box-head aliases are checked to agree and written under every transformers alias
    (``shared_head``: one head for all decoder layers, as in every released model).
    """

    state = official_state_dict(state)
    out: dict[str, Any] = {}
    unmapped: list[str] = []
    by_head: dict[str, Any] = {}
    for key, value in state.items():
        if IGNORED_OFFICIAL.match(key):
            continue
        canonical = tie_canonical(key, shared_head)
        if canonical != key or key.startswith("bbox_embed."):
            seen = by_head.setdefault(canonical, value)
            if not _same_tensor(seen, value):
                raise CheckpointError(f"Checkpoint box heads disagree at {key}; expected one shared head "
                                      "(dec_pred_bbox_embed_share).")
        try:
            names = official_to_hf_names(key)
        except KeyError:
            unmapped.append(key)
            continue
        parts = value.chunk(3, dim=0) if len(names) == 3 else (value,)
        for name, part in zip(names, parts, strict=True):
            out[name] = part.contiguous()
    if unmapped:
        raise CheckpointError(f"{len(unmapped)} checkpoint keys have no place in the model "
                              f"(e.g. {', '.join(unmapped[:4])}); is this the Swin-T OGC checkpoint?")
    if reference is not None:
        _check_against(out, reference, state, shared_head)
        # Aliases the checkpoint did not list (e.g. more decoder layers share one head).
        for name in reference:
            if name not in out and tie_canonical(name, shared_head) in by_head:
                out[name] = by_head[tie_canonical(name, shared_head)]
    return out


def _same_tensor(a: Any, b: Any) -> bool:
    """The same values: one shared tensor (as torch.save keeps tied weights), or equal copies."""
    import torch

    if a is b or (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()):
        return True
    return a.shape == b.shape and torch.equal(a, b)


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(getattr(value, "shape", value))


def _check_against(out: Mapping[str, Any], reference: Mapping[str, Any], official: Mapping[str, Any],
                   shared_head: bool) -> None:
    """Missing, unexpected or mis-shaped keys -> one actionable error."""
    produced = {tie_canonical(k, shared_head) for k in out}
    missing = [k for k in reference if k not in out and tie_canonical(k, shared_head) not in produced]
    unexpected = [k for k in out if k not in reference]
    wrong = [k for k in out if k in reference and _shape(out[k]) != _shape(reference[k])]
    if not (missing or unexpected or wrong):
        return
    info = describe_official(official)
    detail = []
    if wrong:
        k = wrong[0]
        detail.append(f"{len(wrong)} shape mismatches (e.g. {k}: file {_shape(out[k])}, model {_shape(reference[k])})")
    if missing:
        detail.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
    if unexpected:
        detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    raise CheckpointError(
        f"This checkpoint is Grounding DINO {_swin_name(info)} with {info['enc_layers']}/{info['dec_layers']} "
        f"encoder/decoder layers and does not fit the expected architecture: {'; '.join(detail)}. "
        "Use groundingdino_swint_ogc.pth or set the registry entry's architecture to match."
    )


def convert_hf_state_dict_to_official(state: Mapping[str, Any], dec_layers: int | None = None) -> dict[str, Any]:
    """A transformers state dict -> the official layout (inverse of the conversion).

    Query/key/value parts are stacked back into fused tensors, and the shared box head is
    written under both official aliases for ``dec_layers`` decoder layers (as the original
    model's ``state_dict()`` lists it). No pooler/position_ids are added.
    """
    import torch

    out: dict[str, Any] = {}
    fused: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        official = hf_to_official_name(key)
        match = re.search(r"\.(query|key|value)\.(weight|bias)$", key)
        rule = _find(key, official=False)
        if rule is not None and rule[0].fused and match:
            fused.setdefault(official, {})[match.group(1)] = value
        else:
            out[official] = value
    for name, parts in fused.items():
        if set(parts) != set(_QKV):
            raise CheckpointError(f"Incomplete query/key/value set for {name}: {sorted(parts)}")
        out[name] = torch.cat([parts[p] for p in _QKV], dim=0)
    head = {k: v for k, v in out.items() if tie_canonical(k) != k or k.startswith("bbox_embed.")}
    if dec_layers is not None and head:
        for key in head:
            canonical = tie_canonical(key)
            rest = canonical.split(".", 2)[2]
            for i in range(dec_layers):
                for prefix in ("bbox_embed", "transformer.decoder.bbox_embed"):
                    out[f"{prefix}.{i}.{rest}"] = head[key]
    return out


# ------------------------------------------------------------------- LoRA adapters


@dataclass
class Adapter:
    """A LoRA adapter: per target module its (A, B) pair, plus fully trained weights.

    ``lora``: module name -> (A ``[r, in]``, B ``[out, r]``); ``full``: parameter name ->
    tensor (PEFT ``modules_to_save``, e.g. the box head's last layer); ``scale``: alpha / r.
    Names are in one name space (``namespace`` "official" or "hf", or "unknown").
    """

    lora: dict[str, tuple[Any, Any]]
    full: dict[str, Any]
    scale: float = 1.0
    namespace: str = "unknown"
    source: str = ""

    @property
    def rank(self) -> int | None:
        ranks = {int(a.shape[0]) for a, _ in self.lora.values()}
        return ranks.pop() if len(ranks) == 1 else None


_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")


def parse_adapter_state_dict(state: Mapping[str, Any], scale: float = 1.0, source: str = "") -> Adapter:
    """Split a PEFT adapter state dict (published ``.pth`` entry or ``adapter_model``) into an Adapter.

    Accepts ``base_model.model.`` / ``module.`` prefixes and an adapter name between
    ``lora_A`` and ``weight``; ``modules_to_save`` copies become full weights, PEFT's frozen
    copies (``original_module``, ``base_layer``) are skipped.
    """
    pairs: dict[str, dict[str, Any]] = {}
    full: dict[str, Any] = {}
    for raw, value in state.items():
        key = raw
        for prefix in ("module.", "base_model.model."):
            key = key[len(prefix):] if key.startswith(prefix) else key
        if ".original_module." in key or ".base_layer." in key:
            continue
        if re.search(r"lora_(embedding_[AB]|magnitude_vector)|\.lora_[AB]\.[^.]+\.bias$|\.lora_[AB]\.bias$", key):
            raise CheckpointError(f"{source or 'Adapter'}: unsupported LoRA variant key {raw!r} "
                                  "(only plain linear LoRA A/B weights are supported).")
        match = _LORA_KEY.match(key)
        if match:
            pairs.setdefault(match.group("module"), {})[match.group("ab")] = value
            continue
        key = re.sub(r"\.modules_to_save\.[^.]+\.", ".", key)
        full[key] = value
    lora: dict[str, tuple[Any, Any]] = {}
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise CheckpointError(f"{source or 'Adapter'}: {module} has lora_{''.join(ab)} without its partner.")
        a, b = ab["A"], ab["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise CheckpointError(f"{source or 'Adapter'}: {module} has LoRA shapes A {tuple(a.shape)}, "
                                  f"B {tuple(b.shape)} that do not form a rank-r update.")
        lora[module] = (a, b)
    if not lora and not full:
        raise CheckpointError(f"{source or 'Adapter'} holds no LoRA weights.")
    return Adapter(lora=lora, full=full, scale=scale, source=source)


def load_published_adapter(path: str | Path, scale: float = 1.0) -> Adapter:
    """The published LoGSAM adapter: a ``.pth`` whose ``model`` entry is a PEFT state dict.

    ``scale`` is alpha / rank; the published adapter used alpha = rank, so 1.
    """
    import torch

    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have no common base class
        raise CheckpointError(f"Cannot read the adapter {path} safely (weights only): {error}. Re-save "
                              "its 'model' entry alone with torch.save.") from error
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} is not a LoRA adapter (expected {{'model': adapter_state_dict}}).")
    foreign = _describe_foreign(state)
    if foreign and "LoRA" not in foreign:
        raise CheckpointError(f"{path} is {foreign}, not a LoRA adapter.")
    return parse_adapter_state_dict(state, scale=scale, source=str(path))


def load_peft_folder(folder: str | Path) -> Adapter:
    """A standard PEFT LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``/``.bin``)."""
    folder = Path(folder)
    config_path = folder / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{folder} is not a PEFT adapter folder ({config_path.name}: {error}).") from error
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise CheckpointError(f"{folder}: peft_type {config.get('peft_type')!r} is not LoRA.")
    for option in ("rank_pattern", "alpha_pattern"):
        if config.get(option):
            raise CheckpointError(f"{folder}: per-module {option} is not supported; use one rank and alpha.")
    if config.get("fan_in_fan_out") or config.get("use_dora"):
        raise CheckpointError(f"{folder}: fan_in_fan_out/DoRA adapters are not supported.")
    rank = int(config.get("r", 8))
    alpha = float(config.get("lora_alpha", rank))
    scale = alpha / (rank ** 0.5) if config.get("use_rslora") else alpha / rank
    weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file

        state = load_file(str(weights))
    elif (folder / "adapter_model.bin").is_file():
        import torch

        state = torch.load(folder / "adapter_model.bin", map_location="cpu", weights_only=True)
    else:
        raise CheckpointError(f"{folder} has no adapter_model.safetensors (or .bin).")
    adapter = parse_adapter_state_dict(state, scale=scale, source=str(folder))
    ranks = {int(a.shape[0]) for a, _ in adapter.lora.values()}
    if ranks and ranks != {rank}:
        raise CheckpointError(f"{folder}: adapter_config.json says r={rank} but the weights have rank {sorted(ranks)}.")
    return adapter


def namespace_of(adapter: Adapter, official: Mapping[str, Any], hf: Mapping[str, Any]) -> str:
    """Which model's names the adapter uses: ``"official"`` or ``"hf"`` (by its targets)."""
    names = [m + ".weight" for m in adapter.lora] + list(adapter.full)

    def hits(state: Mapping[str, Any]) -> int:
        keys = {tie_canonical(k) for k in state}
        return sum(tie_canonical(n) in keys for n in names)

    return "official" if hits(official) >= hits(hf) else "hf"


def merge_lora(state: Mapping[str, Any], adapter: Adapter | Mapping[str, Any], scale: float | None = None,
               canonical: Callable[[str], str] = tie_canonical) -> dict[str, Any]:
    """``state`` with the adapter merged: ``W + scale * B @ A`` per target; full weights replace.

    ``adapter``: an :class:`Adapter` or a raw PEFT state dict (then ``scale`` defaults to 1).
    Names of ``state`` and adapter must be in the same name space. Tied aliases (see
    :func:`tie_canonical`) are one tensor: it is updated once and written under every alias.
    Any target or trained weight the model lacks, or a shape that does not fit, raises
    :class:`CheckpointError`. ``state`` is not modified.
    """
    import torch

    if not isinstance(adapter, Adapter):
        adapter = parse_adapter_state_dict(adapter, scale=1.0 if scale is None else scale)
    scale = adapter.scale if scale is None else scale
    aliases: dict[str, list[str]] = {}
    for key in state:
        aliases.setdefault(canonical(key), []).append(key)
    # canonical parameter -> (kind, value); aliases listed twice in the adapter must agree
    updates: dict[str, tuple[str, Any]] = {}
    missing: list[str] = []

    def put(target: str, kind: str, value: Any) -> None:
        key = canonical(target)
        if key in updates:
            old_kind, old = updates[key]
            if old_kind != kind:
                raise CheckpointError(f"Adapter both trains {target} fully and adds LoRA to it.")
            if not torch.allclose(old, value):
                raise CheckpointError(f"Adapter gives two different values for the tied weight {target}.")
        updates[key] = (kind, value)

    for module, (a, b) in adapter.lora.items():
        names = aliases.get(canonical(module + ".weight"))
        if not names:
            missing.append(module)
            continue
        weight = state[names[0]]
        delta = (b.double() @ a.double()) * scale
        if tuple(delta.shape) != tuple(weight.shape):
            raise CheckpointError(f"Adapter target {module} does not fit: LoRA update {tuple(delta.shape)} vs "
                                  f"weight {tuple(weight.shape)}; the adapter was made for another model size.")
        put(module + ".weight", "lora", (weight.double() + delta).to(weight.dtype))
    for name, value in adapter.full.items():
        names = aliases.get(canonical(name))
        if not names:
            missing.append(name)
            continue
        if tuple(value.shape) != tuple(state[names[0]].shape):
            raise CheckpointError(f"Adapter weight {name} has shape {tuple(value.shape)}, the model "
                                  f"{tuple(state[names[0]].shape)}.")
        put(name, "full", value.to(state[names[0]].dtype))
    if missing:
        total = len(adapter.lora) + len(adapter.full)
        raise CheckpointError(f"The LoRA adapter does not match this model: {len(missing)} of {total} targets "
                              f"are missing (e.g. {', '.join(missing[:3])}). Use the adapter made for this base "
                              "model (LoGSAM: groundingdino-swint-ogc).")
    merged = dict(state)
    for key, (_, value) in updates.items():
        for alias in aliases[key]:
            merged[alias] = value
    return merged


def official_lora_to_hf(adapter: Adapter) -> Adapter:
    """An official-namespace adapter renamed to transformers names (fused targets split by rows of B)."""
    lora: dict[str, tuple[Any, Any]] = {}
    for module, (a, b) in adapter.lora.items():
        names = [n.removesuffix(".weight") for n in official_to_hf_names(module + ".weight")]
        parts = b.chunk(3, dim=0) if len(names) == 3 else (b,)
        for name, part in zip(names, parts, strict=True):
            lora[name] = (a, part)
    full: dict[str, Any] = {}
    for name, value in adapter.full.items():
        names = official_to_hf_names(name)
        parts = value.chunk(3, dim=0) if len(names) == 3 else (value,)
        full.update(zip(names, parts, strict=True))
    return Adapter(lora=lora, full=full, scale=adapter.scale, namespace="hf", source=adapter.source)


# ------------------------------------------------------------------- published recipe

# The fully trained layer of the published adapter (PEFT ``modules_to_save``).
PUBLISHED_FULL_LAYER = "bbox_embed.0.layers.2"


def published_lora_targets(enc_layers: int = 6, dec_layers: int = 6, text_layers: int = 12) -> list[str]:
    """The LoGSAM LoRA targets as official module names (box head under its ``bbox_embed.0`` alias).

    Deformable attention projections of encoder and decoder, the decoder's text
    cross-attention and self-attention output projections, the text enhancer's self-attention
    output, the feed-forward layers of image, text and decoder layers, the first two box-head
    layers, and the attention-output/intermediate/output dense layers of BERT's last four layers.
    Map them with :func:`official_to_hf_name`.
    """
    deform = ("sampling_offsets", "attention_weights", "value_proj", "output_proj")
    names: list[str] = []
    for i in range(enc_layers):
        names += [f"transformer.encoder.layers.{i}.self_attn.{p}" for p in deform]
        names += [f"transformer.encoder.layers.{i}.linear{k}" for k in (1, 2)]
        names += [f"transformer.encoder.text_layers.{i}.self_attn.out_proj"]
        names += [f"transformer.encoder.text_layers.{i}.linear{k}" for k in (1, 2)]
    for i in range(dec_layers):
        names += [f"transformer.decoder.layers.{i}.cross_attn.{p}" for p in deform]
        names += [f"transformer.decoder.layers.{i}.{m}.out_proj" for m in ("ca_text", "self_attn")]
        names += [f"transformer.decoder.layers.{i}.linear{k}" for k in (1, 2)]
    names += ["bbox_embed.0.layers.0", "bbox_embed.0.layers.1"]
    for i in range(max(0, text_layers - 4), text_layers):
        names += [f"bert.encoder.layer.{i}.{m}.dense" for m in ("attention.output", "intermediate", "output")]
    return names
