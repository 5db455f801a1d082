"""Typed values that pass between pipeline stages.

Conventions (used everywhere in LoGSAMLib):
- Image arrays are indexed ``[k, j, i]`` (slowest to fastest, as SimpleITK's
  ``GetArrayFromImage`` returns them); ``i`` is the fastest (column) index.
- Geometry is ITK/DICOM **LPS**: ``spacing``, ``origin`` and ``direction`` describe
  voxel index ``(i, j, k)`` -> physical point ``origin + direction @ (spacing * ijk)``.
  ``direction`` is a 3x3 matrix whose *columns* are the i, j, k axis directions.
  Slicer (RAS) converts at the edge: RAS = diag(-1, -1, 1) @ LPS.
- A 2D slice box is ``(x0, y0, x1, y1)`` in slice pixel coordinates: x along the
  slice's columns, y along its rows, corners of the pixel grid (x1, y1 exclusive edge).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- speech


@dataclass(frozen=True)
class TranscriptSegment:
    start: float  # seconds
    end: float
    text: str


@dataclass
class Transcript:
    """What Whisper heard. ``text`` is in the spoken language; ``translation`` is the
    English translation when the speech was not English (else ``None``)."""

    text: str
    language: str
    translation: str | None = None
    segments: list[TranscriptSegment] = field(default_factory=list)
    translated_segments: list[TranscriptSegment] = field(default_factory=list)
    model_id: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    no_speech_probability: float | None = None

    @property
    def english(self) -> str:
        """The English text the NLP stage reads."""
        return self.translation if self.translation is not None else self.text

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["english"] = self.english
        return d


# ---------------------------------------------------------------------------- NLP


@dataclass(frozen=True)
class Finding:
    """One mention of a tumor class (or another finding phrase) in the dictation."""

    label: str  # "glioma" | "meningioma" | "pituitary" (or the phrase for generic queries)
    text: str  # evidence text as written
    start: int  # character offsets in the analysed text
    end: int
    negated: bool = False
    uncertain: bool = False
    historical: bool = False
    side: str | None = None  # "left" | "right" | "bilateral" | None
    region: str | None = None  # "frontal", "sella", ...
    family: bool = False  # a relative's tumor ("mother had a meningioma"): not the patient's, counted negated
    cues: tuple[str, ...] = ()  # why each flag is set: "negex: 'no evidence of' (before)", ...

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cues"] = list(self.cues)
        return d


@dataclass
class Findings:
    """The NLP decision: which supported classes to segment, and why."""

    text: str
    findings: list[Finding] = field(default_factory=list)
    affirmed: list[str] = field(default_factory=list)  # classes to segment, order of first mention
    negated: list[str] = field(default_factory=list)  # classes mentioned only negated
    unsupported: list[str] = field(default_factory=list)  # e.g. "metastasis", "hemorrhage"
    prompts: dict[str, str] = field(default_factory=dict)  # class -> detector caption
    language: str = "en"  # ISO 639-1 code of the text, detected or given
    warnings: list[str] = field(default_factory=list)  # e.g. the text is in a language the rules do not read

    @property
    def prompt(self) -> str:
        """All affirmed classes as one Grounding DINO caption (``"glioma . meningioma ."``)."""
        return " ".join(self.prompts[c] for c in self.affirmed if c in self.prompts)

    def side_for(self, label: str) -> str | None:
        """The side the dictation gives for an affirmed class (None if none or mixed)."""
        sides = {f.side for f in self.findings if f.label == label and not f.negated and f.side}
        return sides.pop() if len(sides) == 1 else None

    def region_for(self, label: str) -> str | None:
        regions = {f.region for f in self.findings if f.label == label and not f.negated and f.region}
        return regions.pop() if len(regions) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "affirmed": list(self.affirmed),
            "negated": list(self.negated),
            "unsupported": list(self.unsupported),
            "findings": [f.to_dict() for f in self.findings],
            "prompt": self.prompt,
            "prompts": dict(self.prompts),
            "language": self.language,
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------------- 2D detection


@dataclass(frozen=True)
class Box:
    """A detection on one 2D slice, xyxy in slice pixel coordinates."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    label: str = ""

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float64)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- volume


@dataclass
class Volume:
    """A scalar image with its geometry (LPS, see module docstring)."""

    array: np.ndarray  # [k, j, i]
    spacing: tuple[float, float, float]  # (i, j, k) mm
    origin: tuple[float, float, float]  # LPS mm
    direction: np.ndarray  # 3x3, columns = i, j, k axis directions in LPS
    source_files: tuple[str, ...] = ()  # the DICOM files it was read from, slice k = file k (DICOM SEG needs them)

    def __post_init__(self) -> None:
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        k, j, i = self.array.shape
        return (i, j, k)

    def ijk_to_lps_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping (i, j, k, 1) to (L, P, S, 1)."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ijk_to_ras_matrix(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) to (R, A, S, 1), as Slicer's IJKToRAS."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.ijk_to_lps_matrix()

    def same_geometry(self, other: Volume, tol: float = 1e-6) -> bool:
        return (
            self.array.shape == other.array.shape
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def with_array(self, array: np.ndarray) -> Volume:
        """A new Volume with this geometry and another array of the same shape."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} != volume shape {self.array.shape}")
        return Volume(array, self.spacing, self.origin, self.direction.copy(), self.source_files)


@dataclass
class Segmentation:
    """A label map in the geometry of its source volume.

    ``labelmap`` is uint8 with ``0`` background and one value per class
    (see ``LoGSAMLib.outputs.CLASS_LABELS``).
    """

    labelmap: Volume
    classes: dict[int, str] = field(default_factory=dict)  # label value -> class name

    def mask(self, label: str) -> np.ndarray:
        for value, name in self.classes.items():
            if name == label:
                return self.labelmap.array == value
        return np.zeros(self.labelmap.array.shape, dtype=bool)
