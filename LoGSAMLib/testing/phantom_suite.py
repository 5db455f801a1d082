"""The 3D phantom suite: where a lesion begins and ends decides the Dice (issue 15).

Each :class:`SuiteCase` is an MNI152 phantom (``phantoms.make_phantom``) with one or two lesions
on one grid. The real segmenter runs; true boxes stand in for the detector
(:class:`~LoGSAMLib.testing.doubles.TruthDetector`), and a tight RAS box around each lesion
stands in for the user's 3D box in box mode. Four methods are measured per case:

- ``box plain``: box mode as it was (the user's box on every slice it covers);
- ``box``: box mode now (prompts that follow the lesion inside the box, ``LoGSAMLib.propagation``);
- ``slices plain``: the pipeline's search as it was (true boxes on each slice, as given);
- ``slices``: the pipeline's search now (measured margin, core-only guard).

``slices plain`` is also the per-slice true-box result that box mode is compared with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import Box, Volume
from .doubles import TruthDetector
from .phantoms import LesionSpec, Phantom, make_phantom, oblique_direction

GRIDS: dict[str, dict[str, Any]] = {
    "1mm": dict(spacing=(1.0, 1.0, 1.0)),
    "0.9x0.9x1.3": dict(spacing=(0.9, 0.9, 1.3)),
    "oblique": dict(spacing=(1.0, 1.0, 1.5), direction=oblique_direction(18.0, "x", flip=(-1, 1, 1))),
    "5mm": dict(spacing=(1.0, 1.0, 5.0)),
}
METHODS = ("box plain", "box", "slices plain", "slices")
QUICK = ("g12-1mm", "m12-1mm", "g20-5mm")  # the cases the tests run


@dataclass(frozen=True)
class SuiteCase:
    name: str
    lesions: tuple[LesionSpec, ...]
    grid: str = "1mm"
    box_noise: bool = False  # boxes shifted by up to 3 px and grown by 10 % (user box and detector boxes)
    seed: int = 0

    @property
    def kind(self) -> str:
        return self.lesions[0].kind

    @property
    def size_mm(self) -> float:
        return 2.0 * min(lesion.radius_mm for lesion in self.lesions)


def _one(kind: str, size_mm: float, grid: str = "1mm", seed: int = 0, noise: bool = False, **where) -> SuiteCase:
    region = where.pop("region", "frontal" if kind == "glioma" else "parietal")
    tag = f"{kind[0]}{size_mm:g}-{grid}" + ("-noisy" if noise else "")
    return SuiteCase(tag, (LesionSpec(kind, size_mm / 2, where.pop("side", "left"), region),), grid, noise, seed)


def _touching(kind: str, size_mm: float, seed: int) -> SuiteCase:
    """Two lesions of ``size_mm`` whose surfaces meet (centres one diameter apart, front to back)."""
    centre = np.array([30.0, 10.0, 35.0]) if kind == "glioma" else np.array([45.0, 15.0, 40.0])
    shift = np.array([0.0, size_mm / 2, 0.0])
    specs = tuple(LesionSpec(kind, size_mm / 2, center_lps=tuple(centre + s * shift)) for s in (-1, 1))
    return SuiteCase(f"{kind[0]}{size_mm:g}x2-touching-1mm", specs, "1mm", False, seed)


def _separate(kind: str, seed: int) -> SuiteCase:
    specs = (LesionSpec(kind, 8.0, "left", "frontal"), LesionSpec(kind, 10.0, "right", "parietal"))
    return SuiteCase(f"{kind[0]}16+20-separate-1mm", specs, "1mm", False, seed)


def suite(quick: bool = False) -> list[SuiteCase]:
    """The full suite (``make bench``), or the few cases the tests run (``quick``)."""
    cases = [_one("glioma", size, seed=i) for i, size in enumerate((8, 12, 20, 40))]
    cases += [_one("meningioma", size, seed=10 + i) for i, size in enumerate((8, 12, 20, 40))]
    cases += [_one("glioma", 20, "0.9x0.9x1.3", seed=20), _one("meningioma", 20, "0.9x0.9x1.3", seed=21),
              _one("glioma", 20, "oblique", seed=22), _one("meningioma", 20, "oblique", seed=23),
              _one("glioma", 20, "5mm", seed=24), _one("meningioma", 40, "5mm", seed=25)]
    cases += [_separate("glioma", 30), _touching("glioma", 16, 31), _touching("meningioma", 16, 32)]
    cases += [_one("glioma", 20, seed=40, noise=True), _one("meningioma", 12, seed=41, noise=True),
              _one("glioma", 20, "oblique", seed=42, noise=True)]
    return [c for c in cases if c.name in QUICK] if quick else cases


def build(case: SuiteCase) -> Phantom:
    return make_phantom(list(case.lesions), seed=case.seed, **GRIDS[case.grid])


# ------------------------------------------------------------------------------ boxes


def user_box_lps(phantom: Phantom, instance: int, noise: bool = False, seed: int = 0):
    """The tight RAS box around one lesion's voxel centres, as two LPS corners (a user's ROI).

    With ``noise`` it grows by 10 % along each axis and moves by up to 3 voxels in-plane."""
    volume = phantom.volume
    kji = np.array(np.nonzero(phantom.instances.array == instance), dtype=float)
    ras = (volume.ijk_to_ras_matrix() @ np.vstack([kji[::-1], np.ones(kji.shape[1])]))[:3]
    low, high = ras.min(axis=1), ras.max(axis=1)
    if noise:
        rng = np.random.default_rng(seed + 1000 * instance)
        grow = 0.05 * (high - low)
        shift = rng.choice([-3.0, 3.0], size=3) * min(volume.spacing[:2])
        shift[2] = 0.0
        low, high = low - grow + shift, high + grow + shift
    return (-low[0], -low[1], low[2]), (-high[0], -high[1], high[2])


class NoisyTruthDetector(TruthDetector):
    """True boxes grown by 10 % and moved by up to 3 px, the same on every call for a slice."""

    def __init__(self, pipeline: Any, volume: Volume, instances: Volume, seed: int = 0) -> None:
        super().__init__(pipeline, volume, instances)
        for key, boxes in self.truth.items():
            rng = np.random.default_rng([seed, self.index[key]])
            self.truth[key] = [_jitter(b, rng) for b in boxes]


def _jitter(box: Box, rng: np.random.Generator) -> Box:
    dx, dy = rng.integers(-3, 4, size=2)
    gx, gy = 0.05 * (box.x1 - box.x0), 0.05 * (box.y1 - box.y0)
    return Box(box.x0 - gx + dx, box.y0 - gy + dy, box.x1 + gx + dx, box.y1 + gy + dy, box.score, box.label)


# ----------------------------------------------------------------------------- running


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


@dataclass
class Outcome:
    case: str
    method: str
    dice: float
    seconds: float
    segmenter_slices: int
    detector_slices: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _Counting:
    """Counts the slices a segmenter is called on (every call path the pipeline uses)."""

    def __init__(self, segmenter: Any) -> None:
        self.inner, self.slices = segmenter, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def segment_many(self, images, boxes, batch_size=4, **kwargs):
        self.slices += sum(1 for b in boxes if len(b))
        return self.inner.segment_many(images, boxes, batch_size=batch_size, **kwargs)

    def mask_candidates_many(self, images, boxes, batch_size=1):
        self.slices += sum(1 for b in boxes if len(b))
        return self.inner.mask_candidates_many(images, boxes, batch_size=batch_size)


def run_case(case: SuiteCase, segmenter: Any, methods: tuple[str, ...] = METHODS,
             phantom: Phantom | None = None) -> list[Outcome]:
    """Each method on one case with ``segmenter`` (the real LiteMedSAM in the suite)."""
    from ..pipeline import Pipeline, PipelineOptions

    phantom = phantom or build(case)
    truth = phantom.mask.array > 0
    label = case.kind
    outcomes = []
    for method in methods:
        plain = method.endswith("plain")
        pipe = Pipeline(PipelineOptions(segmenter="litemedsam", device="cpu", location_prior=False,
                                        box_prompts="plain" if plain else "measured"))
        counting = _Counting(segmenter)
        pipe._segmenter = counting
        started = time.perf_counter()
        if method.startswith("box"):
            predicted = np.zeros_like(truth)
            for lesion in phantom.lesions:
                box = user_box_lps(phantom, lesion.instance, case.box_noise, case.seed)
                result = pipe.segment_box(phantom.volume, box, label)
                predicted |= result.segmentation.mask(label)
            calls = 0
        else:
            cls = NoisyTruthDetector if case.box_noise else TruthDetector
            detector = cls(pipe, phantom.volume, phantom.instances, **({"seed": case.seed} if case.box_noise else {}))
            pipe._detector = detector
            result = pipe.segment(phantom.volume, [label])
            predicted = result.segmentation.mask(label)
            calls = detector.calls
        outcomes.append(Outcome(case.name, method, dice(predicted, truth), time.perf_counter() - started,
                                counting.slices, calls, {"prompts": result.report.get("box_prompts")}))
    return outcomes
