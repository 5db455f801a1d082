"""How much margin a box prompt gets: decided here, and only here, by measurement.

LiteMedSAM was trained on boxes a few pixels looser than the lesion, and a tight box makes it
cut off the lesion's border; a small lesion, on the other hand, loses more to the tissue a
margin lets in than it gains. The rule below was chosen on the phantom suite with true boxes
(``benchmarks/phantom_bench.py --margins``; the table is in benchmarks/README.md). Every run
records the rule it used in its report (``box_prompts``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .types import Box


@dataclass(frozen=True)
class MarginRule:
    """``pixels`` on every side of a box whose shorter side is at least ``min_side_px``; none below."""

    pixels: float = 0.0
    min_side_px: float = 0.0

    def margin(self, box: Box) -> float:
        return self.pixels if min(box.x1 - box.x0, box.y1 - box.y0) >= self.min_side_px else 0.0

    def pad(self, box: Box, width: int, height: int) -> Box:
        """``box`` with its margin, kept inside the ``width`` x ``height`` slice."""
        return grow(box, self.margin(box), width, height)

    def describe(self) -> dict[str, float | str]:
        return {**asdict(self), "measured_on": "phantom suite, true boxes (benchmarks/phantom_bench.py)"}


MEASURED = MarginRule()
NONE = MarginRule(0.0, 0.0)


def grow(box: Box, pixels: float, width: int, height: int) -> Box:
    """``box`` grown by ``pixels`` on every side, clipped to the slice."""
    return Box(max(0.0, box.x0 - pixels), max(0.0, box.y0 - pixels), min(float(width), box.x1 + pixels),
               min(float(height), box.y1 + pixels), box.score, box.label)
