"""Clinical NLP: which tumor classes a dictation affirms or denies, and why.

Public API (spaCy is imported on first use, not here):

- :func:`build_pipeline` -> the cached spaCy pipeline (blank English + sentencizer + entity ruler +
  negspaCy negation extended for radiology + uncertainty and history passes).
- :func:`assertion` (text, phrase) -> ``"affirmed" | "uncertain" | "historical" | "negated" | "absent"``.
- :func:`mentions` (text, phrase) -> every mention of a phrase with its flags, side and region.
- :func:`extract` (text, prompts=None, style="class") -> :class:`LoGSAMLib.types.Findings`.
- :func:`class_summary` (findings) -> {class: {"assertion", "side", "region"}} for display.
- :func:`LoGSAMLib.nlp.crosscheck.cross_check` (original, translation, language) -> do a German
  transcript and its English translation name the same classes?

Text is normalised once (:mod:`.normalize`: whitespace, ASR artefacts, German abbreviations and compounds)
and evidence offsets are mapped back to the original. English and German (:mod:`.german`) share the rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .vocabulary import CLASS_TERMS, CLASSES, OTHER_TERMS, class_forms, class_of

if TYPE_CHECKING:
    from ..types import Finding, Findings

AFFIRMED, UNCERTAIN, HISTORICAL, NEGATED, ABSENT = "affirmed", "uncertain", "historical", "negated", "absent"
ASSERTIONS = (AFFIRMED, UNCERTAIN, HISTORICAL, NEGATED, ABSENT)

__all__ = [
    "ABSENT", "AFFIRMED", "ASSERTIONS", "CLASSES", "CLASS_TERMS", "HISTORICAL", "NEGATED", "OTHER_TERMS",
    "UNCERTAIN", "assertion", "build_pipeline", "class_forms", "class_of", "class_summary", "extract", "mentions",
]


def build_pipeline() -> Any:
    """The cached spaCy pipeline (built once per process)."""
    from .pipeline import build_pipeline as build

    return build()


def assertion(text: str, phrase: str) -> str:
    """``"affirmed" | "uncertain" | "historical" | "negated" | "absent"`` for ``phrase`` in ``text``."""
    from .extractor import assertion as run

    return run(text, phrase)


def mentions(text: str, phrase: str) -> list[Finding]:
    """Every mention of ``phrase`` in ``text`` (negated / uncertain / historical, side, region)."""
    from .extractor import mentions as run

    return run(text, phrase)


def extract(text: str, prompts: dict[str, str] | None = None, *, style: str = "class",
            language: str | None = None) -> Findings:
    """Tumor findings of a dictation: affirmed / negated classes, per-mention detail, detector prompts,
    the text's language (``language`` given or detected) and warnings."""
    from .extractor import extract as run

    return run(text, prompts, style=style, language=language)


def class_summary(findings: Findings) -> dict[str, dict[str, Any]]:
    """Per mentioned class: ``{"assertion": ..., "side": ..., "region": ...}``, order of first mention."""
    from .extractor import class_summary as run

    return run(findings)
