"""Which slices to run the detector on, and which detections form a lesion in 3D.

Running Grounding DINO on every slice costs 5-7 s per slice on a CPU, while a tumor
spans a fraction of the slices. The coarse-to-fine search looks at every ``step``-th
slice first and then walks densely outwards from each hit until the lesion has ended on
both sides. Any lesion at least ``step`` slices thick is crossed by a coarse slice, so
the slice extent it finds is the one a dense search finds; the step comes from a
physical distance (``step_mm``) so that it means the same at 1 mm and at 5 mm slices.

3D consistency then links boxes on neighbouring slices into tracks: a box joins a track
when it overlaps the track's box on one of the previous ``max_gap + 1`` slices (by at
least ``min_overlap`` of the smaller box, so that the small boxes at a lesion's tips,
which lie inside their neighbour's, still join). Tracks
seen on a single slice (isolated false positives) and boxes that jump are dropped,
gaps of up to ``max_gap`` slices are filled by interpolating the boxes, and separate
lesions stay separate tracks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .progress import CancelToken, ProgressCallback, no_progress
from .types import Box

DetectFn = Callable[[list[int]], dict[int, list[Box]]]


@dataclass
class SearchResult:
    detections: dict[int, list[Box]]  # every evaluated slice -> its boxes (maybe empty)
    calls: int  # number of slice evaluations made by the detector

    @property
    def evaluated(self) -> list[int]:
        return sorted(self.detections)


@dataclass
class Track:
    """One lesion candidate: a box per slice over a run of neighbouring slices."""

    boxes: dict[int, Box] = field(default_factory=dict)
    interpolated: set[int] = field(default_factory=set)

    @property
    def first(self) -> int:
        return min(self.boxes)

    @property
    def last(self) -> int:
        return max(self.boxes)

    @property
    def detected_slices(self) -> int:
        return len(self.boxes) - len(self.interpolated)

    @property
    def peak(self) -> tuple[int, Box]:
        index = max(self.boxes, key=lambda s: self.boxes[s].score)
        return index, self.boxes[index]

    @property
    def score(self) -> float:
        return self.peak[1].score


def step_for_spacing(slice_spacing_mm: float, step_mm: float) -> int:
    """Coarse step in slices: ``step_mm`` of tissue, at least every slice."""
    if step_mm <= 0:
        return 1
    return max(1, int(math.floor(step_mm / max(slice_spacing_mm, 1e-6) + 1e-9)))


def dense_search(
    candidates: Sequence[int],
    detect: DetectFn,
    batch_size: int = 4,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> SearchResult:
    """Run the detector on every candidate slice (the reference behaviour)."""
    result = SearchResult({}, 0)
    _evaluate(list(candidates), detect, result, batch_size, cancel)
    progress("detect", 1.0, f"{result.calls} slices")
    return result


def coarse_to_fine_search(
    candidates: Sequence[int],
    detect: DetectFn,
    step: int,
    batch_size: int = 4,
    stop_after_empty: int = 2,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> SearchResult:
    """Every ``step``-th candidate slice first, then densely around the hits.

    A front walking away from a hit stops after ``stop_after_empty`` consecutive slices
    without any box (two, so that a single missed slice inside a lesion does not cut it).
    """
    ordered = sorted(set(int(c) for c in candidates))
    result = SearchResult({}, 0)
    if not ordered:
        return result
    step = max(1, int(step))
    coarse = ordered[::step]
    if coarse[-1] != ordered[-1]:
        coarse.append(ordered[-1])
    _evaluate(coarse, detect, result, batch_size, cancel)
    progress("detect", 0.3, f"coarse pass: {len(coarse)} slices")

    position = {s: p for p, s in enumerate(ordered)}
    hits = [position[s] for s in coarse if result.detections[s]]
    if not hits:
        return result

    # Slices between two neighbouring coarse hits lie inside the same lesion run.
    inside: list[int] = []
    for a, b in zip(hits, hits[1:], strict=False):
        if b - a <= step:
            inside.extend(ordered[a + 1 : b])
    _evaluate(inside, detect, result, batch_size, cancel)
    progress("detect", 0.6, "filling between hits")

    # Fronts walk outwards from the ends of each run of hits.
    hit_set = set(hits)
    fronts: list[tuple[int, int]] = []  # (current position, direction)
    for p in hits:
        if p - step not in hit_set or p - step < 0:
            fronts.append((p, -1))
        if p + step not in hit_set:
            fronts.append((p, +1))
    empty_run = {i: 0 for i in range(len(fronts))}
    active = set(range(len(fronts)))
    while active:
        wave: dict[int, int] = {}
        for i in sorted(active):
            p, direction = fronts[i]
            nxt = p + direction
            if nxt < 0 or nxt >= len(ordered):
                active.discard(i)
                continue
            fronts[i] = (nxt, direction)
            wave[i] = ordered[nxt]
        _evaluate(list(dict.fromkeys(wave.values())), detect, result, batch_size, cancel)
        for i, s in wave.items():
            empty_run[i] = 0 if result.detections[s] else empty_run[i] + 1
            if empty_run[i] >= stop_after_empty:
                active.discard(i)
    progress("detect", 1.0, f"{result.calls} slices")
    return result


def _evaluate(
    slices: list[int],
    detect: DetectFn,
    result: SearchResult,
    batch_size: int,
    cancel: CancelToken | None,
) -> None:
    todo = [s for s in slices if s not in result.detections]
    for start in range(0, len(todo), max(1, batch_size)):
        if cancel is not None:
            cancel.check()
        chunk = todo[start : start + max(1, batch_size)]
        found = detect(chunk)
        for s in chunk:
            result.detections[s] = list(found.get(s, []))
        result.calls += len(chunk)


def build_tracks(
    detections: dict[int, list[Box]],
    min_overlap: float = 0.3,
    max_gap: int = 1,
    min_slices: int = 2,
) -> list[Track]:
    """Link boxes on neighbouring slices into lesion tracks (see module docstring).

    Single-slice detections are kept only when the volume has a single slice (2D input).
    """
    tracks: list[Track] = []
    for s in sorted(detections):
        # Strongest boxes claim tracks first.
        for box in sorted(detections[s], key=lambda b: -b.score):
            best, best_overlap = None, min_overlap
            for track in tracks:
                gap = s - track.last
                if gap < 1 or gap > max_gap + 1:
                    continue
                overlap = _overlap_of_smaller(track.boxes[track.last], box)
                if overlap >= best_overlap:
                    best, best_overlap = track, overlap
            if best is None:
                tracks.append(Track({s: box}))
            else:
                _fill_gap(best, s, box)
                best.boxes[s] = box
    single_slice_volume = len(detections) <= 1
    needed = 1 if single_slice_volume else min_slices
    kept = [t for t in tracks if t.detected_slices >= needed]
    return sorted(kept, key=lambda t: -t.score)


def _overlap_of_smaller(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    smaller = min(a.area, b.area)
    return ix * iy / smaller if smaller > 0 else 0.0


def _fill_gap(track: Track, s: int, box: Box) -> None:
    last = track.last
    a = track.boxes[last]
    for g in range(last + 1, s):
        w = (g - last) / (s - last)
        track.boxes[g] = Box(
            a.x0 + w * (box.x0 - a.x0),
            a.y0 + w * (box.y0 - a.y0),
            a.x1 + w * (box.x1 - a.x1),
            a.y1 + w * (box.y1 - a.y1),
            score=min(a.score, box.score),
            label=box.label or a.label,
        )
        track.interpolated.add(g)
