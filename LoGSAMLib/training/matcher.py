"""Hungarian matching of predicted queries to ground-truth boxes (one image, last decoder layer).

The cost of giving query ``q`` target ``t`` is, as in DINO / Grounding DINO,
``cost_class * focal(q, t) + cost_l1 * |box_q - box_t|_1 + cost_giou * (-GIoU(box_q, box_t))``,
where ``focal(q, t)`` is the focal-loss difference between calling the target's tokens
positive and negative, averaged over the tokens of the target's class phrase. Boxes are
normalised ``(cx, cy, w, h)``.
"""

from __future__ import annotations

from typing import Any

_EPS = 1e-8


def cxcywh_to_xyxy(boxes: Any) -> Any:
    from torchvision.ops import box_convert

    return box_convert(boxes, in_fmt="cxcywh", out_fmt="xyxy")


def match_cost(logits: Any, boxes: Any, token_maps: Any, target_boxes: Any, cost_class: float = 1.0,
               cost_l1: float = 10.0, cost_giou: float = 1.0, alpha: float = 0.25, gamma: float = 2.0) -> Any:
    """The ``(queries, targets)`` cost matrix.

    ``logits``: ``(Q, L)`` token logits of the caption's real tokens; ``boxes``: ``(Q, 4)``;
    ``token_maps``: ``(T, L)`` 1 on each target's class tokens; ``target_boxes``: ``(T, 4)``.
    """
    import torch
    from torchvision.ops import generalized_box_iou

    prob = logits.float().sigmoid()
    positive = alpha * (1 - prob) ** gamma * -(prob + _EPS).log()
    negative = (1 - alpha) * prob**gamma * -(1 - prob + _EPS).log()
    weights = token_maps.float() / token_maps.float().sum(dim=1, keepdim=True).clamp(min=1.0)
    class_cost = (positive - negative) @ weights.T
    l1_cost = torch.cdist(boxes.float(), target_boxes.float(), p=1)
    giou_cost = -generalized_box_iou(cxcywh_to_xyxy(boxes.float()), cxcywh_to_xyxy(target_boxes.float()))
    cost = cost_class * class_cost + cost_l1 * l1_cost + cost_giou * giou_cost
    # a degenerate predicted box (w or h = 0) gives NaN GIoU: never prefer it
    return torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6)


def hungarian_match(logits: Any, boxes: Any, token_maps: Any, target_boxes: Any, **costs: float) -> tuple[Any, Any]:
    """``(query_indices, target_indices)``: the assignment of least total cost (one query per target)."""
    import torch
    from scipy.optimize import linear_sum_assignment

    if len(target_boxes) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=boxes.device)
        return empty, empty
    with torch.no_grad():
        cost = match_cost(logits, boxes, token_maps, target_boxes, **costs)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    return (torch.as_tensor(rows, dtype=torch.long, device=boxes.device),
            torch.as_tensor(cols, dtype=torch.long, device=boxes.device))
