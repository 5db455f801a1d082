"""spaCy components: NegEx scoping tuned for radiology, line-break sentences, side/region spans.

Imported only by :func:`LoGSAMLib.nlp.pipeline.build_pipeline` (it imports spaCy and negspaCy).
"""

from __future__ import annotations

from negspacy.negation import Negex
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from .termsets import DENIAL_NOUNS
from .vocabulary import REGIONS, SIDES, expand

SIDE_KEY = "logsam_side"
REGION_KEY = "logsam_region"
# Why each context flag was set: (pass, trigger start char, trigger end char, how) per pass that applied;
# rendered on the original text as "negation: 'no evidence of' (before)" (see :func:`render_cue`).
CUES_EXT = "logsam_cues"
if not Span.has_extension(CUES_EXT):
    Span.set_extension(CUES_EXT, default=())

# A finding introduced by one of these is where the negated thing is, not what is negated:
# "no hemorrhage within the glioma", "no invasion of the sinus by the adenoma". "of" is absent on purpose:
# "no recurrence of the glioma" does deny the glioma.
_REFERENCE_PREPOSITIONS = frozenset({
    "within", "in", "inside", "into", "around", "surrounding", "by", "from", "on", "at", "near", "along",
    "adjacent", "involving", "throughout", "beyond", "abutting", "about", "across",
    "im", "innerhalb", "durch", "entlang", "am", "um", "neben", "angrenzend",
})
_COPULAS = frozenset({"is", "was", "are", "were", "be", "been", "being", "remains", "remained", "ist", "war"})
# "in keeping with a glioma", "im Sinne eines Glioms": the preposition introduces the diagnosis itself.
_DIAGNOSTIC_PHRASES = frozenset({"keeping", "sinne", "favor", "favour", "terms", "form"})
_DETERMINERS = frozenset({"the", "this", "these", "that", "those", "its", "their"})
_LIST_WORDS = frozenset({"or", "and", "nor", "of", "to", "for", "with", "as"})
# "no <property> of the glioma" describes the glioma ("no enhancement of the glioma"); any other noun before
# "of the" ("no evidence / recurrence / residual of the glioma") keeps the denial.
_PROPERTIES = frozenset({
    "enhancement", "growth", "progression", "change", "changes", "invasion", "infiltration", "extension",
    "transformation", "compression", "edema", "oedema", "hemorrhage", "haemorrhage", "bleeding",
    "calcification", "calcifications", "necrosis", "restriction", "diffusion", "perfusion", "enlargement",
    "increase", "shift", "displacement", "effect", "spread", "dissemination", "cyst", "cysts", "rupture",
})
_MAX_MODIFIERS = 6
# A verb between the determiner phrase and the finding makes the finding the predicate, not a reference
# point: "I do not think this is a glioma", "no evidence that the lesion represents an adenoma".
_PREDICATE_VERBS = frozenset({
    "is", "are", "was", "were", "be", "been", "being", "represents", "represent", "representing", "reflects",
    "reflect", "indicates", "indicate", "corresponds", "constitutes", "has", "have", "had", "harbors",
    "harbours", "shows", "show", "contains", "suggest", "suggests", "suggesting", "would", "could", "may",
    "might", "ist", "sei", "sind", "hat", "entspricht", "darstellt",
})
_Trigger = tuple[int, int, "tuple[int, int] | None"]
# "Glioma is excluded, as is pituitary adenoma": the second finding echoes the first one's predicate.
_ECHOES = frozenset({("as", "is"), ("as", "are"), ("as", "was"), ("as", "were"), ("so", "is"), ("so", "are"),
                     ("nor", "is"), ("nor", "are"), ("nor", "was")})
_ARTICLES = frozenset({"a", "an", "the", "any"})  # start, end, covering pseudo-negation


def is_reference(doc: Doc, scope_start: int, ent_start: int) -> bool:
    """True when the entity at ``ent_start`` is a definite reference point, not the negated noun.

    ``scope_start`` is the first token after the trigger. "no hemorrhage within the glioma" and
    "no hemorrhage the known glioma is stable" (unpunctuated ASR) are references; "no evidence of the
    glioma", "no glioma, the meningioma", "no residual of the glioma" are not.
    """
    i = ent_start - 1
    steps = 0
    while i >= scope_start and steps <= _MAX_MODIFIERS:
        token = doc[i]
        low = token.lower_
        if low in _PREDICATE_VERBS:
            return False
        if low in _DETERMINERS:
            if i - 1 < scope_start:
                return False
            before = doc[i - 1]
            if before.lower_ == "of" and i - 2 >= scope_start:
                return doc[i - 2].lower_ in _PROPERTIES
            return not (before.is_punct or before.lower_ in _LIST_WORDS)
        if low in _REFERENCE_PREPOSITIONS:
            # Right after the trigger ("not in acute distress") or after a copula ("nor was she in atrial
            # fibrillation") the preposition states where the patient is, not what the negated thing is in.
            if i == scope_start or doc[i - 1].lower_ in _COPULAS:
                return False
            return not (i + 1 < len(doc) and doc[i + 1].lower_ in _DIAGNOSTIC_PHRASES)
        if token.is_punct or low in _LIST_WORDS:
            return False
        i -= 1
        steps += 1
    return False


@Language.factory(
    "logsam_negex",
    default_config={
        "neg_termset": None,
        "ent_types": None,
        "extension_name": "negex",
        "chunk_prefix": None,
        "span_keys": None,
        "max_following_gap": 8,
    },
)
class ScopedNegex(Negex):
    """negspaCy's NegEx with three radiology fixes.

    - A termination term inside a trigger does not cut that trigger's scope ("no findings to suggest
      glioma": "findings" is a clause opener elsewhere).
    - A pseudo-negation ("no mass effect") hides its trigger from every entity but its own words.
    - A preceding trigger skips definite reference points (see :func:`is_reference`).
    - A following trigger ("is excluded") reaches back at most ``max_following_gap`` tokens.
    """

    def __init__(self, nlp: Language, name: str, neg_termset: dict[str, list[str]] | None,
                 ent_types: list[str] | None = None, extension_name: str = "negex",
                 chunk_prefix: list[str] | None = None, span_keys: list[str] | None = None,
                 max_following_gap: int = 8):
        if neg_termset is None:
            from .termsets import negation_termset

            neg_termset = negation_termset()
        super().__init__(nlp, name, neg_termset, ent_types, extension_name, chunk_prefix, span_keys)
        self.max_following_gap = max_following_gap
        self.pass_name = {"negex": "negation"}.get(name, name)

    def negex(self, doc: Doc) -> Doc:
        kinds = {"Preceding": [], "Following": [], "Termination": []}
        found = [(self.nlp.vocab.strings[m], s, e) for m, s, e in self.matcher(doc)]
        pseudo = [(s, e) for kind, s, e in found if kind == "pseudo"]
        for kind, start, end in found:
            if kind != "pseudo":
                # A longer trigger wins over the pseudo-negation it starts with ("no further episodes of"
                # over "no further").
                cover = next(((ps, pe) for ps, pe in pseudo if ps <= start < pe and pe >= end), None)
                kinds[kind].append((start, end, cover))
        for kind in ("Preceding", "Following"):  # the longest trigger first: the cue quotes "kein Hinweis auf"
            kinds[kind].sort(key=lambda t: (t[0], t[0] - t[1]))
        triggers = kinds["Preceding"] + kinds["Following"]
        # A clause break inside a pseudo-negation or inside a trigger does not cut the scope, nor does the
        # noun a denial quantifies ("no imaging findings suggestive of a glioma": "findings" opens no clause).
        breaks = [(0, s, e) for s, e, cover in kinds["Termination"]
                  if cover is None and not any(ts < s < te for ts, te, _ in triggers)
                  and not self._quantified(doc, s, e, kinds["Preceding"])]
        predicates = [(s, e) for s, e, _ in triggers] + pseudo
        for first, stop in self.termination_boundaries(doc, breaks):
            preceding = [t for t in kinds["Preceding"] if first <= t[0] < stop]
            following = [t for t in kinds["Following"] if first <= t[0] < stop]
            for ent in doc[first:stop].ents:
                if self.ent_types and ent.label_ not in self.ent_types:
                    continue
                cue = self._applies(ent, preceding, following, predicates)
                if cue is not None:
                    ent._.set(self.extension_name, True)
                    ent._.set(CUES_EXT, (*ent._.get(CUES_EXT), (self.pass_name, *cue)))
        self._echo(doc)
        return doc

    def _echo(self, doc: Doc) -> None:
        """An entity introduced by "as is" / "nor is" takes the flag of the entity before it in its sentence."""
        ents = list(doc.ents)
        for previous, ent in zip(ents, ents[1:], strict=False):
            i = ent.start - 1
            while i > previous.end and doc[i].lower_ in _ARTICLES:
                i -= 1
            if (i - 1 < previous.end or (doc[i - 1].lower_, doc[i].lower_) not in _ECHOES
                    or not previous._.get(self.extension_name) or ent._.get(self.extension_name)
                    or previous.sent.start != ent.sent.start):
                continue
            ent._.set(self.extension_name, True)
            echo = doc[i - 1:i + 1]
            ent._.set(CUES_EXT, (*ent._.get(CUES_EXT), (self.pass_name, echo.start_char, echo.end_char,
                                                        f"echoes '{previous.text}'")))

    @staticmethod
    def _quantified(doc: Doc, start: int, end: int, preceding: list[_Trigger]) -> bool:
        """The termination term is the noun that a denial just before it quantifies ("no findings",
        "no suspicious imaging findings"): at most two words, no punctuation, in between."""
        words = [t.lower_ for t in doc[start:end]]
        if not words or any(w not in DENIAL_NOUNS for w in words):
            return False
        return any(t_end <= start <= t_end + 2 and not any(w.is_punct for w in doc[t_end:start])
                   for _s, t_end, cover in preceding if cover is None)

    def _applies(self, ent: Span, preceding: list[_Trigger], following: list[_Trigger],
                 predicates: list[tuple[int, int]]) -> tuple[int, int, str] | None:
        """The trigger that puts ``ent`` in this pass's scope (start char, end char, "before"/"after")."""
        doc = ent.doc
        for start, end, cover in preceding:
            if not _counts(cover, ent):
                continue
            if start < ent.start and not is_reference(doc, min(end, ent.start), ent.start):
                return doc[start:end].start_char, doc[start:end].end_char, "before"
        for start, end, cover in following:
            if not _counts(cover, ent) or not ent.end <= start <= ent.end + self.max_following_gap:
                continue
            # "Glioma not excluded, meningioma excluded": the glioma already has its own predicate.
            if not any(ent.end <= s and e <= start for s, e in predicates):
                return doc[start:end].start_char, doc[start:end].end_char, "after"
        return None


def _counts(cover: tuple[int, int] | None, ent: Span) -> bool:
    """A trigger inside a pseudo-negation counts only for a finding that starts in the pseudo phrase's own
    words: "no mass effect" does not deny the meningioma next to it, but it does deny "mass effect", and
    "no change in vision" denies "change in vision"."""
    return cover is None or cover[0] <= ent.start < cover[1]


@Language.component("logsam_line_breaks")
def line_breaks(doc: Doc) -> Doc:
    """A new line starts a new sentence (report headings, one finding per dictated line)."""
    for token in doc[:-1]:
        if "\n" in token.text or "\n" in token.whitespace_:
            doc[token.i + 1].is_sent_start = True
    return doc


@Language.factory("logsam_location")
class LocationMatcher:
    """Store side and region phrases in ``doc.spans`` (label = canonical name); overlaps keep the longest."""

    def __init__(self, nlp: Language, name: str):
        self.side_matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.region_matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for table, matcher in ((SIDES, self.side_matcher), (REGIONS, self.region_matcher)):
            for canonical, phrases in table.items():
                matcher.add(canonical, list(nlp.tokenizer.pipe(expand(phrases))))

    def __call__(self, doc: Doc) -> Doc:
        for key, matcher in ((SIDE_KEY, self.side_matcher), (REGION_KEY, self.region_matcher)):
            spans = [Span(doc, s, e, label=m) for m, s, e in matcher(doc)]
            doc.spans[key] = filter_spans(spans)
        return doc
