"""One place that cleans dictation text before any phrase or trigger is matched, with offsets mapped back.

Text pasted from a RIS or a PDF has runs of spaces and tabs; speech recognition writes "know" for "no",
splits a class word ("glio blastoma") and drops punctuation; German reports glue words together
("Konvexitätsmeningeom", "linksfrontal") and use dotted abbreviations ("V.a.", "Z.n.") whose full stop
would otherwise end the sentence. :func:`normalize` rewrites all of these once, for the text and for a
query phrase alike, and :class:`Normalized` maps every character back to the original, so evidence
offsets still point at the words the radiologist wrote.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from .german import split_compounds


@dataclass(frozen=True)
class Normalized:
    """``text`` after normalisation; ``starts[i]`` / ``ends[i]``: the original span of character ``i``."""

    original: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of the normalised characters ``[start, end)``."""
        if end <= start:
            at = self.starts[start] if start < len(self.starts) else len(self.original)
            return at, at
        return self.starts[start], self.ends[end - 1]


Replace = Callable[["re.Match[str]"], str]


def _align(old: str, new: str) -> list[int]:
    """For each character of ``new``, the index of the ``old`` character it stands for: kept characters map
    to themselves, inserted ones (a space splitting a compound) to their left neighbour, rewritten ones in
    order onto the rewritten run."""
    if len(old) == len(new):
        return list(range(len(new)))
    source: list[int] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            source.extend(range(i1, i2))
        elif op == "insert":
            source.extend([max(i1 - 1, 0)] * (j2 - j1))
        elif op == "replace":
            source.extend(i1 + min(k, i2 - i1 - 1) for k in range(j2 - j1))
    return source


def _substitute(norm: Normalized, pattern: re.Pattern[str], replace: Replace | str) -> Normalized:
    """``pattern.sub`` that keeps the character map (see :func:`_align`), so a shorter or longer
    replacement still spans exactly the original words."""
    text, starts, ends = norm.text, norm.starts, norm.ends
    out: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    last = 0
    for match in pattern.finditer(text):
        a, b = match.span()
        new = replace(match) if callable(replace) else match.expand(replace)
        if new == match.group(0) or a == b:
            continue
        out.append(text[last:a])
        new_starts.extend(starts[last:a])
        new_ends.extend(ends[last:a])
        source = _align(match.group(0), new)
        new_starts.extend(starts[a + k] for k in source)
        new_ends.extend(ends[a + k] for k in source)
        if source:  # a replacement spans exactly what it replaced: from its first to its last character
            new_starts[len(new_starts) - len(source)] = starts[a]
            new_ends[-1] = ends[b - 1]
        out.append(new)
        last = b
    if not out:
        return norm
    out.append(text[last:])
    new_starts.extend(starts[last:])
    new_ends.extend(ends[last:])
    return Normalized(norm.original, "".join(out), tuple(new_starts), tuple(new_ends))


# Runs of blanks and any blank other than one plain space (a single space is left as it is: no work).
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u3000\f\v]{2,}|[\t\u00a0\u2000-\u200b\u202f\u3000\f\v]")
_LINE_BREAKS = re.compile(r" ?(?:\r\n?|\n)(?:[ \r\n]*)")
# Speech recognition hears "know" for "no" before a finding; "I know", "you know", "to know" stay.
_KNOW = re.compile(r"(?<![A-Za-z'’])(?<!\bi )(?<!\bwe )(?<!\byou )(?<!\bthey )(?<!\bto )(?<!\bdon't )"
                   r"(?<!\bnot )(?<!\bdo )know(?=\s+(?:evidence|signs?|indication|definite|residual|recurren\w*|"
                   r"suspicious|suspicion|abnormal\w*|enhanc\w*|mass\w*|lesions?|tumou?rs?|neoplasm|\w*om\w*|"
                   r"pituitary|hypophys\w*|macro\w*|micro\w*|glio\w*|gbm|"
                   r"adenoma\w*|findings?|focal|new|pathologic\w*|hemorrhage|bleed\w*)\b)", re.IGNORECASE)
# German abbreviations whose full stop is not a sentence end: "V.a. Gliom", "Z.n. Resektion".
_ABBREVIATIONS = re.compile(r"(?<![\w.])(V\.\s?a|Z\.\s?n|a\.\s?e|St\.\s?p|DD|bzw|ca|ggf|z\.\s?B|v\.\s?a)\.(?=\s)",
                            re.IGNORECASE)
# "li." / "re." / "bds." before a lower-case word ("li. frontal"): side abbreviations, not sentence ends.
_SIDE_ABBREVIATIONS = re.compile(r"(?<![\w.])(li|re|bds)\.(?=\s+[a-zäöü])")


def _drop_dots(match: re.Match[str]) -> str:
    return re.sub(r"[.\s]", "", match.group(1))


def normalize(text: str) -> Normalized:
    """Whitespace runs -> one space (line breaks kept, they end a sentence), ASR "know" -> "no",
    German dotted abbreviations without their dots and German compounds split at the class word."""
    n = len(text)
    norm = Normalized(text, text, tuple(range(n)), tuple(range(1, n + 1)))
    if "\n" in text or "\r" in text:
        norm = _substitute(norm, _LINE_BREAKS, "\n")
    norm = _substitute(norm, _SPACES, " ")
    low = norm.text.lower()
    if "know" in low:
        norm = _substitute(norm, _KNOW, lambda m: "no" if m.group(0).islower() else "No")
    if "." in low:
        norm = _substitute(norm, _ABBREVIATIONS, _drop_dots)
        norm = _substitute(norm, _SIDE_ABBREVIATIONS, lambda m: m.group(1))
    for pattern, replace, needles in split_compounds():
        if any(needle in low for needle in needles):  # the regular expressions are costly; most texts skip
            norm = _substitute(norm, pattern, replace)
    return norm


def normalize_phrase(phrase: str) -> str:
    """A query phrase normalised the same way as the text (lower case, one space between words)."""
    return " ".join(normalize(str(phrase or "")).text.lower().split())
