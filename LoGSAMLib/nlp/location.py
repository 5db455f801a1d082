"""Side (left/right/bilateral) and region for each finding, from its own sentence.

Each side or region phrase in a sentence attaches to the nearest finding (a supported class or another
finding), so "left frontal glioma and right convexity meningioma" gives each its own side, and
"left frontal metastasis and a meningioma" gives the meningioma none. A modifier before the noun wins a
tie, and crossing "and" / "," / "or" costs extra. When the finding's sentence names no side (or region)
and the sentence before describes an unnamed lesion ("Large mass in the left temporal lobe.
Impression: glioblastoma."), that sentence's side (or region) is used.
"""

from __future__ import annotations

from spacy.tokens import Doc, Span

from .context import REGION_KEY, SIDE_KEY
from .german import NEGATION_WORDS
from .vocabulary import LESION_NOUNS

_BARRIERS = frozenset({",", ";", "and", "or", "but", "while", "whereas", "versus", "vs", "vs.", "und", "oder", "sowie"})
_BARRIER_COST = 3.0
_NEGATIONS = frozenset({"no", "not", "without", "normal", "unremarkable", "free"}) | NEGATION_WORDS


def _cost(doc: Doc, phrase: Span, anchor: Span) -> float:
    if phrase.end <= anchor.start:  # modifier before the finding: "left frontal glioma"
        gap, between = anchor.start - phrase.end, doc[phrase.end:anchor.start]
    elif phrase.start >= anchor.end:  # after it: "glioma in the left frontal lobe"
        gap, between = phrase.start - anchor.end + 1, doc[anchor.end:phrase.start]
    else:  # overlapping: "diffuse intrinsic pontine glioma"
        return 0.0
    return gap + _BARRIER_COST * sum(t.lower_ in _BARRIERS for t in between)


def _nearest(doc: Doc, phrases: list[Span], anchors: list[Span]) -> dict[int, str]:
    """anchor start -> canonical label of the cheapest phrase attached to that anchor."""
    best: dict[int, tuple[float, str]] = {}
    for phrase in phrases:
        cost, anchor = min(((_cost(doc, phrase, a), a) for a in anchors), key=lambda c: (c[0], -c[1].start))
        if anchor.start not in best or cost < best[anchor.start][0]:
            best[anchor.start] = (cost, phrase.label_)
    return {start: label for start, (_, label) in best.items()}


def _in(spans, sent: Span) -> list[Span]:
    return [s for s in spans if sent.start <= s.start and s.end <= sent.end]


def _lesion_sentence(sent: Span, anchors: list[Span]) -> bool:
    """An unnamed, non-negated lesion description ("Mass in the left temporal lobe.")."""
    words = {t.lower_ for t in sent}
    return not _in(anchors, sent) and bool(words & LESION_NOUNS) and not words & _NEGATIONS


def locate(doc: Doc, anchors: list[Span]) -> dict[int, tuple[str | None, str | None]]:
    """anchor start token -> (side, region) for every anchor in ``doc``."""
    sides = list(doc.spans[SIDE_KEY]) if SIDE_KEY in doc.spans else []
    regions = list(doc.spans[REGION_KEY]) if REGION_KEY in doc.spans else []
    result: dict[int, tuple[str | None, str | None]] = {}
    sentences = list(doc.sents)
    for index, sent in enumerate(sentences):
        here = _in(anchors, sent)
        if not here:
            continue
        side = _nearest(doc, _in(sides, sent), here)
        region = _nearest(doc, _in(regions, sent), here)
        if len(here) == 1 and index > 0 and _lesion_sentence(sentences[index - 1], anchors):
            previous = sentences[index - 1]
            start = here[0].start
            if start not in side:
                side.update(_nearest(doc, _in(sides, previous), here))
            if start not in region:
                region.update(_nearest(doc, _in(regions, previous), here))
        for anchor in here:
            result[anchor.start] = (side.get(anchor.start), region.get(anchor.start))
    return result
