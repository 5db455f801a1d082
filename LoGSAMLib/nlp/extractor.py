"""Assertion of any finding phrase, and the tumor-class decision built on it.

Assertion values (``assertion(text, phrase)``), one per phrase and text:

- ``"affirmed"``   at least one plain present-tense mention ("left frontal glioma").
- ``"uncertain"``  only suspected / possible / differential / questioned mentions ("possible glioma").
- ``"historical"`` only known / previously treated mentions ("known meningioma", "status post resection
  of glioma") and, for treated ones, the text does not say that no residual or recurrent tumor is left.
- ``"negated"``    only denied mentions ("no glioma", "glioma is excluded"); also a treated (resected,
  operated) tumor when the text says there is no residual/recurrent tumor, while a merely "known" one stays
  historical; and a questioned-only finding that is later denied
  ("Question: pituitary adenoma? ... No pituitary adenoma.").
- ``"absent"``     the phrase does not occur in the text at all (not mentioned, which is not "negated").

The tumor decision: a class is segmented (``Findings.affirmed``) when its assertion is affirmed,
uncertain or historical (the radiologist names it as present or suspected); it is in
``Findings.negated`` when its assertion is negated.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from ..types import Finding, Findings
from . import ABSENT, AFFIRMED, HISTORICAL, NEGATED, UNCERTAIN
from .context import CUES_EXT
from .normalize import Normalized, normalize, normalize_phrase
from .pipeline import (
    CONTEXT_PIPES,
    FAMILY_EXT,
    FINDING,
    HISTORICAL_EXT,
    NEGATED_EXT,
    STATUS,
    TREATED_EXT,
    TUMOR,
    UNCERTAIN_EXT,
    build_pipeline,
)
from .vocabulary import class_of, expand

PRESENT: frozenset[str] = frozenset({AFFIRMED, UNCERTAIN, HISTORICAL})

_QUERY = "QUERY"
MAX_CHARS = 100_000  # one dictation; far below spaCy's limit, keeps the per-call cost bounded


def _check(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise InputError(f"The dictation is {len(text)} characters long; split it into reports of at most "
                         f"{MAX_CHARS} characters.")
    return text


def _flags(span: Any) -> tuple[bool, bool, bool]:
    return (bool(span._.get(NEGATED_EXT)), bool(span._.get(UNCERTAIN_EXT)), bool(span._.get(HISTORICAL_EXT)))


def _resolved(doc: Any) -> bool:
    """The text says no residual / recurrent tumor is left (and never that some is)."""
    status = [_flags(e)[0] for e in doc.ents if e.label_ == STATUS]
    return bool(status) and all(status)


def decide(mentions: Sequence[Finding]) -> str:
    """One assertion value for all mentions of one finding (see the module docstring)."""
    if not mentions:
        return ABSENT
    active = [m for m in mentions if not m.negated]
    if not active:
        return NEGATED
    if any(not m.uncertain and not m.historical for m in active):
        return AFFIRMED
    if any(not m.uncertain for m in active):
        return HISTORICAL
    # Only suspected mentions are left: a definite denial elsewhere in the text wins.
    return NEGATED if len(active) < len(mentions) else UNCERTAIN


def _run_until_context(nlp: Any, text: str) -> Any:
    doc = nlp.make_doc(text)
    for name, component in nlp.pipeline:
        if name in CONTEXT_PIPES:
            break
        doc = component(doc)
    return doc


def _run_context(nlp: Any, doc: Any) -> Any:
    for name in CONTEXT_PIPES:
        doc = nlp.get_pipe(name)(doc)
    return doc


def _render_cue(cue: tuple[str, int, int, str], norm: Normalized) -> str:
    """"negation: 'no evidence of' (before)", the trigger quoted from the original text."""
    name, start, end, how = cue
    start, end = norm.span(start, end)
    return f"{name}: '{norm.original[start:end]}' ({how})"


def _collect(doc: Any, anchor_labels: tuple[str, ...], norm: Normalized) -> dict[int, Finding]:
    """ent start token -> Finding for every anchor entity (label = class or canonical name); offsets and
    evidence text are those of the original (not normalised) text."""
    from .location import locate

    anchors = [e for e in doc.ents if e.label_ in anchor_labels]
    places = locate(doc, anchors)
    resolved = _resolved(doc)
    out: dict[int, Finding] = {}
    for ent in anchors:
        negated, uncertain, historical = _flags(ent)
        cues = tuple(_render_cue(cue, norm) for cue in ent._.get(CUES_EXT) or ())
        if resolved and ent._.get(TREATED_EXT):
            negated = True  # "status post resection of X ... no residual tumor": X is gone
            cues += ("treatment: the text says no residual or recurrent tumor is left",)
        family = bool(ent._.get(FAMILY_EXT))
        if family:
            negated = True  # a relative's tumor: the patient is not said to have it
        side, region = places.get(ent.start, (None, None))
        label = ent.ent_id_ or " ".join(ent.text.lower().split())
        start, end = norm.span(ent.start_char, ent.end_char)
        out[ent.start] = Finding(label=label, text=norm.original[start:end], start=start, end=end,
                                 negated=negated, uncertain=uncertain, historical=historical,
                                 side=side, region=region, family=family, cues=cues)
    return out


@functools.lru_cache(maxsize=256)
def _phrase_patterns(phrase: str) -> tuple[str, ...]:
    """The phrase's variants, each also upper-cased: the tokenizer splits "P.O." and "p.o." differently,
    and matching is on lower-cased tokens, so both tokenizations must be patterns."""
    forms = expand([phrase])
    return tuple(dict.fromkeys([*forms, *(f.upper() for f in forms)]))


def mentions(text: str, phrase: str) -> list[Finding]:
    """Every mention of ``phrase`` in ``text`` with its flags, side and region, in text order.

    A supported class name or any of its forms ("GBM") matches the class's whole vocabulary and the
    findings are labelled with the class; any other phrase matches case-insensitively with plural,
    British and hyphen variants ("mass effect") and is the label itself.
    """
    from spacy.matcher import PhraseMatcher
    from spacy.tokens import Span
    from spacy.util import filter_spans

    text = _check(text)
    query = normalize_phrase(phrase)
    if not query:
        raise InputError("Give a finding phrase to look for, e.g. 'glioma' or 'mass effect'.")
    nlp = build_pipeline()
    norm = normalize(text)
    doc = _run_until_context(nlp, norm.text)
    label = class_of(query)
    if label is None:  # the phrase's matches become the entities; other vocabulary stays as context
        matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        matcher.add(_QUERY, list(nlp.tokenizer.pipe(_phrase_patterns(query))))
        found = filter_spans([Span(doc, s, e, label=_QUERY, span_id=query) for _, s, e in matcher(doc)])
        taken = {i for span in found for i in range(span.start, span.end)}
        others = [e for e in doc.ents if not taken.intersection(range(e.start, e.end))]
        doc.ents = sorted(found + others, key=lambda span: span.start)
        label = query
    doc = _run_context(nlp, doc)
    collected = _collect(doc, (TUMOR, FINDING, _QUERY), norm)
    return [f for f in collected.values() if f.label == label]


def assertion(text: str, phrase: str) -> str:
    """Whether ``phrase`` is affirmed, uncertain, historical, negated or absent in ``text``.

    Works for any finding phrase ("mass effect", "hemorrhage", "glioma"); see the module docstring for the
    exact meaning of each value. Raises InputError for an empty phrase or an over-long text.
    """
    return decide(mentions(text, phrase))


def extract(text: str, prompts: dict[str, str] | None = None, *, style: str = "class",
            language: str | None = None) -> Findings:
    """Read a dictation: per-mention findings and the classes to segment.

    ``prompts`` optionally maps a class to its detector caption; affirmed classes without one get
    ``caption_for(label, style)`` (default: the class name, as in training). Empty text gives empty Findings.
    ``language`` (ISO code) is detected when not given; a language the rules do not read gets a warning.
    """
    from ..prompts import captions_for, normalize_caption
    from .language import detect_language, language_warnings

    text = _check(text)
    code = (language or "").strip().lower() or detect_language(text)
    findings = Findings(text=text, language=code, warnings=language_warnings(code, given=bool(language)))
    if not text.strip():
        return findings
    nlp = build_pipeline()
    norm = normalize(text)
    doc = nlp(norm.text)
    collected = _collect(doc, (TUMOR, FINDING), norm)
    by_class: dict[str, list[Finding]] = {}
    for ent in doc.ents:
        finding = collected.get(ent.start)
        if finding is None:
            continue
        if ent.label_ == TUMOR:
            findings.findings.append(finding)
            by_class.setdefault(finding.label, []).append(finding)
        elif not finding.negated and finding.label not in findings.unsupported:
            findings.unsupported.append(finding.label)

    for label, found in by_class.items():  # dict order = order of first mention
        (findings.affirmed if decide(found) in PRESENT else findings.negated).append(label)
    custom = {k: normalize_caption(v) for k, v in (prompts or {}).items() if v and v.strip()}
    defaults = captions_for([c for c in findings.affirmed if c not in custom], style)
    findings.prompts = {c: custom.get(c) or defaults[c] for c in findings.affirmed}
    return findings


def class_summary(findings: Findings) -> dict[str, dict[str, Any]]:
    """Per mentioned class, in order of first mention: its assertion value and the side / region the
    dictation gives for it (None when none or conflicting)."""
    by_class: dict[str, list[Finding]] = {}
    for finding in findings.findings:
        by_class.setdefault(finding.label, []).append(finding)
    return {
        label: {"assertion": decide(found), "side": findings.side_for(label), "region": findings.region_for(label)}
        for label, found in by_class.items()
    }
