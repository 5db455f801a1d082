"""The set loss on the last decoder layer: sigmoid focal loss over caption tokens, L1 and GIoU on boxes.

After Hungarian matching (:mod:`.matcher`), a matched query's token targets are its box's class
tokens and every other query's are all zero (background). The focal loss is summed over queries
and the caption's real tokens (padding and the ``-inf`` positions past the caption are left
out); it and the box losses are divided by the number of ground-truth boxes in the batch (at
least 1), as DINO and Grounding DINO normalise. Weights: class 1, L1 10, GIoU 1 by
default (the training config's ``loss_*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import TrainConfig
from .matcher import cxcywh_to_xyxy, hungarian_match


def set_loss(logits: Any, pred_boxes: Any, attention_mask: Any, targets: Sequence[dict[str, Any]],
             config: TrainConfig) -> dict[str, Any]:
    """``{"loss", "loss_class", "loss_l1", "loss_giou"}`` for one batch (``loss`` is weighted).

    ``logits``: ``(B, Q, max_text_len)`` (the model's ``logits``); ``pred_boxes``: ``(B, Q, 4)``;
    ``attention_mask``: ``(B, L)`` of the caption tokens; ``targets[b]``: ``boxes (T, 4)``
    normalised cxcywh and ``token_maps (T, L)``.
    """
    import torch
    from torchvision.ops import generalized_box_iou, sigmoid_focal_loss

    length = attention_mask.shape[1]
    logits = logits[..., :length].float()
    pred_boxes = pred_boxes.float()
    costs = {"cost_class": config.cost_class, "cost_l1": config.cost_l1, "cost_giou": config.cost_giou,
             "alpha": config.focal_alpha, "gamma": config.focal_gamma}
    n_boxes = max(1, sum(len(t["boxes"]) for t in targets))
    class_terms, matched_pred, matched_target = [], [], []
    for b, target in enumerate(targets):
        valid = attention_mask[b].bool()
        image_logits = logits[b][:, valid]  # (Q, tokens of this caption)
        maps = target["token_maps"][:, valid].to(image_logits.dtype)
        rows, cols = hungarian_match(image_logits, pred_boxes[b], maps, target["boxes"], **costs)
        wanted = torch.zeros_like(image_logits)
        wanted[rows] = maps[cols]
        focal = sigmoid_focal_loss(image_logits, wanted, alpha=config.focal_alpha, gamma=config.focal_gamma,
                                   reduction="none")
        class_terms.append(focal.sum())
        matched_pred.append(pred_boxes[b][rows])
        matched_target.append(target["boxes"][cols].to(pred_boxes.dtype))
    loss_class = torch.stack(class_terms).sum() / n_boxes
    pred = torch.cat(matched_pred)
    true = torch.cat(matched_target)
    if len(pred):
        loss_l1 = (pred - true).abs().sum() / n_boxes
        giou = torch.diag(generalized_box_iou(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(true)))
        loss_giou = (1 - giou).sum() / n_boxes
    else:  # negatives only: keep the graph connected, with zero box loss
        loss_l1 = loss_giou = pred_boxes.sum() * 0.0
    loss = config.loss_class * loss_class + config.loss_l1 * loss_l1 + config.loss_giou * loss_giou
    return {"loss": loss, "loss_class": loss_class, "loss_l1": loss_l1, "loss_giou": loss_giou}
