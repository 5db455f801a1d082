"""Detector captions for the affirmed classes, in Grounding DINO's caption style.

Grounding DINO reads a lowercase caption whose phrases are separated by " . " and which ends with " ."
(``"glioma ."``, ``"glioma . meningioma ."``). The LoRA training recipe uses the bare class names as
captions, so the default style ``"class"`` is exactly that; other styles are for experiments.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InputError

# style -> class -> phrases (joined into one caption). A class missing from a style falls back to its name.
STYLES: dict[str, dict[str, tuple[str, ...]]] = {
    "class": {
        "glioma": ("glioma",),
        "meningioma": ("meningioma",),
        "pituitary": ("pituitary",),
    },
    "descriptive": {
        "glioma": ("glioma tumor",),
        "meningioma": ("meningioma tumor",),
        "pituitary": ("pituitary tumor",),
    },
    "synonyms": {
        "glioma": ("glioma", "glioblastoma"),
        "meningioma": ("meningioma",),
        "pituitary": ("pituitary", "pituitary adenoma"),
    },
}
DEFAULT_STYLE = "class"


def normalize_caption(text: str) -> str:
    """``"Glioma. Brain Tumor"`` -> ``"glioma . brain tumor ."`` (lowercase, " . "-separated, final " .")."""
    phrases = [" ".join(part.split()) for part in text.lower().split(".")]
    phrases = [p for p in phrases if p]
    if not phrases:
        raise InputError(f"Empty detector caption {text!r}: give at least one phrase, e.g. 'glioma .'.")
    return " . ".join(phrases) + " ."


def caption_for(label: str, style: str = DEFAULT_STYLE, styles: dict[str, dict[str, tuple[str, ...]]] | None = None
                ) -> str:
    """The caption for one class (``caption_for("meningioma") == "meningioma ."``).

    ``styles`` replaces the built-in :data:`STYLES` table (a configurable map style -> class -> phrases).
    """
    table = STYLES if styles is None else styles
    if style not in table:
        raise InputError(f"Unknown caption style {style!r}; choose one of: {', '.join(sorted(table))}.")
    label = " ".join(str(label).lower().split())
    if not label:
        raise InputError("Empty class name: give a class such as 'glioma'.")
    phrases = table[style].get(label) or (label,)
    return normalize_caption(" . ".join(phrases))


def captions_for(labels: Iterable[str], style: str = DEFAULT_STYLE,
                 styles: dict[str, dict[str, tuple[str, ...]]] | None = None) -> dict[str, str]:
    """``{label: caption}`` for each label, in the given order."""
    return {label: caption_for(label, style, styles) for label in labels}


def combined_caption(labels: Iterable[str], style: str = DEFAULT_STYLE) -> str:
    """All labels in one caption (``"glioma . meningioma ."``), as ``Findings.prompt`` builds it."""
    return " ".join(captions_for(labels, style).values())
