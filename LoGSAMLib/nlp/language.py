"""Which language a dictation is in, from its function words (no model, microseconds).

The rules read English and German (and the mixed German/English of German reports). Any other language
gets a warning instead of silently applying English rules to it.
"""

from __future__ import annotations

import re

from .german import CLASS_PHRASES

SUPPORTED: dict[str, str] = {"en": "English", "de": "German"}

# Frequent function words and report words per language; a word that is common to two languages
# ("in", "so") is left out of both.
_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of is are was were with no not there this that for to be a an or on at by "
                    "left right evidence consistent suggestive likely seen lesion mass study which "
                    "without brain findings impression".split()),
    "de": frozenset("der die das den dem des und ist sind ein eine einer eines einem einen kein keine keinen "
                    "nicht mit auf im zum zur von bei nach links rechts hinweis anhalt nachweis ohne "
                    "vereinbar verdacht sich zeigt befund beurteilung raumforderung also wie auch "
                    "wird wurde am ehesten bekannt oder beidseits weder noch unauffällig unauffälliges "
                    "zustand".split()),
    "fr": frozenset("le la les des du est une un pas avec sans pour dans sur gauche droite aucun aucune "
                    "lésion présence absence et ou au aux".split()),
    "es": frozenset("el la los las del es una un con sin para por izquierdo derecho hay lesión ningún "
                    "ninguna y o se que evidencia".split()),
    "it": frozenset("il lo la gli le di è una un con senza per nel della sinistra destra nessun nessuna "
                    "lesione evidenza e o che".split()),
    "nl": frozenset("de het een geen niet met van op links rechts laesie bevinding en of zonder is".split()),
}
# German class words ("Meningeome") and report word endings ("differentialdiagnostisch", "Raumforderung").
_GERMAN_TERMS = frozenset(w for forms in CLASS_PHRASES.values() for form in forms for w in form.split()
                          if w.endswith(("om", "oms", "ome", "omen")) and w != "adenom")
_GERMAN_ENDINGS = ("isch", "ung", "ungen", "lich", "keit", "heit", "lappen")
_NAMES = {"fr": "French", "es": "Spanish", "it": "Italian", "nl": "Dutch"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_MIN_WORDS = 3


def language_name(code: str) -> str:
    return {**SUPPORTED, **_NAMES}.get(code, code)


def detect_language(text: str, default: str = "en") -> str:
    """ISO 639-1 code of ``text``: the language with the most function-word hits; ``default`` when the
    text is too short to tell. German umlauts and ß count for German."""
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {code: sum(w in vocab for w in words) for code, vocab in _WORDS.items()}
    scores["de"] += sum(any(c in w for c in "äöüß") or w in _GERMAN_TERMS or w.endswith(_GERMAN_ENDINGS)
                        or (w.endswith(("om", "oms", "ome", "omen")) and any(t in w for t in _GERMAN_TERMS))
                        for w in words)
    best = max(scores, key=lambda code: (scores[code], code == default))
    if scores[best] < min(_MIN_WORDS, max(1, len(words) // 3)):
        return default
    # Mixed German/English reports: German wins when it has a fair share of the function words.
    if best == "en" and scores["de"] >= max(2, scores["en"] // 2):
        return "de"
    return best


def language_warnings(code: str, given: bool) -> list[str]:
    """One clear line when the text's language is not one the rules read."""
    if code in SUPPORTED:
        return []
    how = "was given as" if given else "looks like"
    return [f"The dictation {how} {language_name(code)} ({code}); LoGSAM reads English and German only, so "
            f"its findings may be wrong. Check every class, or type the dictation in English or German."]
