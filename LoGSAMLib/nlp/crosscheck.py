"""Cross-check: read the spoken-language transcript and Whisper's English translation, compare the classes.

A translation can lose a word that matters ("kein Hinweis auf ein Gliom" -> "evidence of a glioma"). When
Whisper gives both a German transcript and an English translation, the NLP reads both; if the classes to
segment differ, the reader must look before anything is segmented (``logsam run`` stops unless the
reader confirms; the JSON report and the Slicer review show :meth:`CrossCheck.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .language import SUPPORTED, detect_language, language_name


@dataclass(frozen=True)
class CrossCheck:
    """``agree``: both texts affirm the same classes (or there was nothing the rules can compare)."""

    agree: bool
    original_classes: list[str]  # classes the original-language transcript affirms
    translation_classes: list[str]  # classes the English translation affirms
    message: str
    language: str = "en"
    checked: bool = True  # False when the original's language is one the rules do not read
    details: dict[str, dict[str, str]] = field(default_factory=dict)  # class -> {"original", "translation"}

    def to_dict(self) -> dict[str, Any]:
        return {"agree": self.agree, "original_classes": list(self.original_classes),
                "translation_classes": list(self.translation_classes), "message": self.message,
                "language": self.language, "checked": self.checked, "details": dict(self.details)}


def _state(label: str, findings: Any) -> str:
    if label in findings.affirmed:
        return "affirmed"
    return "negated" if label in findings.negated else "not mentioned"


def cross_check(original_text: str, translation: str, language: str) -> CrossCheck:
    """Compare the classes ``original_text`` (in ``language``, "" to detect) and its English
    ``translation`` affirm. Disagreement names each class and what each text says about it."""
    from .extractor import extract

    code = (language or "").strip().lower() or detect_language(original_text)
    if code not in SUPPORTED:
        english = extract(translation, language="en")
        return CrossCheck(True, [], list(english.affirmed), language=code, checked=False,
                          message=f"Not cross-checked: the transcript is in {language_name(code)} ({code}), which "
                                  f"LoGSAM cannot read; only the English translation was read.")
    original = extract(original_text, language=code)
    english = extract(translation, language="en")
    labels = list(dict.fromkeys([*original.affirmed, *english.affirmed]))
    details = {label: {"original": _state(label, original), "translation": _state(label, english)}
               for label in labels}
    disagree = {label: d for label, d in details.items() if d["original"] != d["translation"]
                and "affirmed" in (d["original"], d["translation"])}
    name = language_name(code)
    if not disagree:
        classes = ", ".join(original.affirmed) or "no class"
        return CrossCheck(True, list(original.affirmed), list(english.affirmed), language=code, details=details,
                          message=f"The {name} transcript and the English translation agree: {classes}.")
    parts = [f"{label} is {d['translation']} in the English translation but {d['original']} in the {name} "
             f"transcript" for label, d in disagree.items()]
    return CrossCheck(False, list(original.affirmed), list(english.affirmed), language=code, details=details,
                      message="Transcript and translation disagree: " + "; ".join(parts) +
                              ". The translation may have lost or added a negation: read the transcript and "
                              "confirm the classes before segmenting.")
