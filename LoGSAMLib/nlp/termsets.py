"""Trigger terms for negation, uncertainty and history, in negspaCy's termset format.

Negation starts from negspaCy's ``en_clinical`` termset and adapts it to radiology:
- "rule out", "r/o", "evaluate for" and "versus" mark a *question or differential* in a radiology
  report, not an absent finding, so they move to the uncertainty triggers; "ruled out" is kept only
  after the finding ("glioma is ruled out").
- "cannot exclude", "not excluded", "cannot be ruled out" are pseudo-negations (uncertain, not absent).
- "no mass effect", "no midline shift", "no change in" and similar phrases are pseudo-negations:
  they describe the tumor, they do not deny it (and "no mass effect" is never a healthy scan).
- Radiology and Whisper-translated German phrasing is added: "is excluded", "not seen", "cannot be
  identified", "cannot be delimited", "no indication of", "no longer visible", "neither ... nor" ...

Uncertainty, history and treatment reuse the same NegEx scoping with their own triggers (a ConText-style
reading); treatment words ("status post resection") are the part of history after which "no residual
tumor" means the tumor is gone.
"""

from __future__ import annotations

from . import german

TermSet = dict[str, list[str]]

# Clause boundaries shared by every context (NegEx "termination" terms). Unpunctuated ASR output needs the
# clause openers ("there is", "impression") because the sentencizer finds no full stop.
_CLAUSE_BREAKS = [
    "although", "apart from", "aside from", "but", "except", "however", "nevertheless", "though",
    "whereas", "while", "yet", "still", "otherwise",
    "there is", "there are", "there's", "there was", "there were", "we see", "is seen", "are seen",
    "is noted", "are noted", "is present", "are present", "again seen", "again noted",
    "impression", "findings", "finding", "conclusion", "assessment", "summary", "comparison",
    "and a", "and an", "and the", ", and", "as well as",
    ", consistent with", ", compatible with", ", in keeping with", ", representing", ", most likely",
    ", likely", ", probably", ", suggestive of", ", suspicious for", ", concerning for",
    "rather", "instead", ", left", ", right", ", bilateral",
    "the known", "this known", "with known",
    "secondary to", "cause of", "source of", "due to",
    # A new clause with its own subject or an affirmation: "... and he is difficult to keep focused".
    "positive for", "and he", "and she", "and they", "and it", ", the patient", "who presents", "who presented",
    "presents with", "presented with",
]


_SEEN_VERBS = ("seen", "identified", "demonstrated", "detected", "found", "confirmed", "visualized",
               "appreciated", "shown", "observed")
_HEDGES = ("entirely", "completely", "definitely", "definitively", "fully", "reliably", "safely", "certainly",
           "with certainty")


# A denial of the ability to exclude is a hedged double negation: the finding is suspected, never denied.
_UNABLE = ("cannot", "can not", "can't", "could not", "couldn't", "unable to", "not able to", "not possible to",
           "impossible to", "difficult to", "hard to", "no way to", "not be able to", "do not", "don't",
           "we cannot", "i cannot", "i can't", "not safely", "not")


def _hedged_exclusions() -> list[str]:
    """"cannot be (entirely) excluded", "it is not possible to exclude" and their variants: uncertain,
    never negated."""
    out = []
    for verb in ("excluded", "ruled out"):
        for hedge in ("", *_HEDGES):
            middle = f"{hedge} " if hedge else ""
            out += [f"cannot be {middle}{verb}", f"can not be {middle}{verb}", f"not {middle}{verb}",
                    f"could not be {middle}{verb}", f"can't be {middle}{verb}", f"not be {middle}{verb}"]
    for verb in ("exclude", "rule out", "completely exclude", "entirely exclude", "definitely exclude",
                 "reliably exclude", "safely exclude", "confidently exclude", "definitively exclude",
                 "differentiate", "distinguish", "reliably differentiate", "reliably distinguish",
                 "be differentiated from", "be distinguished from"):
        out += [f"{unable} {verb}" for unable in _UNABLE]
    out += ["not without concern for", "not without concern", "not without suspicion of", "not unlikely",
            "not improbable", "not impossible", "not out of the question", "exclusion is not possible",
            "no certain exclusion of"]
    return out


# The reader's own denial or low suspicion: "I do not think this is a glioma", "low suspicion for X".
_READER_DENIAL = [
    "do not think", "don't think", "does not think", "not think", "do not believe", "don't believe",
    "do not suspect", "don't suspect", "not suspect", "doubt", "i doubt", "doubtful", "doubtful for",
    "low suspicion for", "low suspicion of", "very low suspicion for", "low likelihood of", "low probability of",
    "no suspicion for", "no suspicion of", "no concern for", "no concern of", "not concerning for",
    "not worrisome for", "not suggestive of", "not suspicious of", "not suggestive for",
    "argues against", "argue against", "arguing against", "argued against", "speaks against",
    "speak against", "points against", "favors against", "against", "other than", "not a", "not an",
    "no features suggestive of", "no findings suggestive of", "no imaging features of",
    "no radiological evidence of", "no radiologic evidence of", "no mri evidence of", "no convincing",
    "no convincing evidence of", "no definite evidence of", "no features to suggest", "nothing to suggest",
    "no evidence that", "unlikely that", "very unlikely that", "highly unlikely that", "improbable that",
    "doubtful that", "not likely that", "no reason to suspect", "no reason to believe",
    "-ve for", "is -ve for", "was -ve for", "atypical for", "atypical of", "untypical for", "not typical for",
    "uncharacteristic of", "uncharacteristic for",
    # "no further" is a pseudo-negation ("no further growth"); with a sign or episode noun it denies.
    *[f"{lead} {noun}" for lead in ("no further", "without further", "without any further")
      for noun in ("episodes of", "episode of", "signs of", "signs or symptoms of", "symptoms of",
                   "evidence of", "evidence for")],
]
# After the concept: "screening for meningioma was negative", "the glioma has not recurred".
_AFTER_CONCEPT = [
    "was negative", "is negative", "were negative", "are negative", "proved negative", "came back negative",
    "has not recurred", "have not recurred", "not recurred", "did not recur", "does not recur",
    "has not returned", "not returned", "is not a consideration", "not a consideration",
    "is not considered", "not considered", "not favored", "not favoured", "is not favored",
    "is not the diagnosis", "not the diagnosis", "not supported", "is not supported", "is not likely",
    "seems unlikely", "appears unlikely", "is doubtful", "doubtful", "seems doubtful", "is improbable",
    "improbable", "not in question", "not a concern", "is not a concern", "no longer seen", "not there",
    "has disappeared", "disappeared", "gone", "is gone", "not the case", "none", "none seen",
    "none identified", "none found", "none detected",
]
# The quantified noun of a denial ("no findings suggestive of", "no imaging findings to suggest") is no
# clause opener, so these termination terms do not cut the scope of a denial right before them.
DENIAL_NOUNS = frozenset({"findings", "finding", "features", "feature", "imaging", "mri", "ct", "evidence",
                          "befund", "befunde", "hinweis"})


def _negation() -> TermSet:
    from negspacy.termsets import termset

    base = termset("en_clinical").get_patterns()
    # Question / differential words are uncertainty in radiology, not negation (see module docstring).
    not_negation = {"versus", "rule out", "rules out", "r/o", "ro", "evaluate for", "ruled out",
                    "ruled him out", "ruled her out", "ruled patient out", "ruled the patient out",
                    "rule him out", "rule her out", "rule patient out", "rule the patient out"}
    preceding = [t for t in base["preceding_negations"] if t not in not_negation] + [
        "no evidence for", "no evidence of", "no imaging evidence of", "no findings of", "no findings to suggest",
        "no indication of", "no indication for", "no hint of", "no sign of", "no signs of",
        "no features of", "no suspicion of", "no definite", "not suspicious for", "neither", "nor",
        "rather than", "instead of", "negative for", "free of", "without evidence of", "no longer",
        "not consistent with", "not typical of", "not compatible with", "lack of",
        "unlikely to represent", "unlikely to be", *_READER_DENIAL,
    ] + german.NEGATION_PRECEDING
    following = [t for t in base["following_negations"] if t not in not_negation] + [
        "is ruled out", "was ruled out", "were ruled out", "are ruled out", "ruled out", "has been ruled out",
        "is excluded", "was excluded", "are excluded", "were excluded", "excluded", "has been excluded",
        "can be excluded", "can be ruled out",
        "not seen", "not identified", "not visualized", "not visualised", "not demonstrated",
        "not demonstrable", "not detected", "not detectable", "not present", "not evident", "not apparent",
        "not visible", "not confirmed", "not found", "not appreciated", "not delineable", "not delimitable",
        "not identifiable", "cannot be identified", "cannot be seen", "cannot be demonstrated",
        "cannot be delimited", "cannot be delineated", "cannot be detected", "cannot be visualized",
        "could not be identified", "no longer", "is absent", "are absent", "absent", "has resolved",
        "have resolved", "resolved", "unlikely", "is unlikely", "very unlikely", "not suspected",
        "not likely", "free", *_AFTER_CONCEPT,
    ] + [f"not been {verb}" for verb in _SEEN_VERBS] + [f"not {verb}" for verb in _SEEN_VERBS] + [
        f"not {hedge} {verb}" for hedge in ("clearly", "definitely", "convincingly") for verb in _SEEN_VERBS
    ] + [f"not be {verb}" for verb in _SEEN_VERBS] + german.NEGATION_FOLLOWING
    pseudo = base["pseudo_negations"] + [
        "no mass effect", "no significant mass effect", "no relevant mass effect", "without mass effect",
        "without significant mass effect", "no midline shift", "without midline shift",
        "no change in", "no change of", "no interval change", "no significant change", "not changed",
        "no growth", "no interval growth", "no further growth", "no significant growth", "no progression",
        "no increase", "no enlargement", "no new", "not progressed", "without growth", "without change",
        "without progression", "no relevant change", "not significantly changed",
        "without contrast", "with and without", "without and with", "non-contrast", "no doubt",
        "cannot exclude", "can not exclude", "cannot rule out", "can not rule out", "cannot be excluded",
        "can not be excluded", "cannot be ruled out", "can not be ruled out", "not excluded",
        "not be excluded", "not be ruled out", "not entirely excluded", "not definitely excluded",
        "not only", "not extend", "not invade", "not cause",
        "no evidence of progression", "no evidence of growth", "no evidence of change",
        "not only", "not rule out",
    ] + _hedged_exclusions() + german.NEGATION_PSEUDO
    termination = base["termination"] + [t for t in _CLAUSE_BREAKS + german.TERMINATION
                                         if t not in base["termination"]]
    return _termset(pseudo, preceding, following, termination)


def _uncertainty() -> TermSet:
    preceding = [
        "possible", "possibly", "probable", "probably", "likely", "most likely", "more likely", "less likely",
        "presumed", "presumably", "presumptive", "suspected", "suspect", "suspicious for", "suspicious of",
        "suspicion of", "suspicion for", "suggestive of", "suggesting", "suggests", "suggest",
        "may represent", "could represent", "might represent", "may be", "could be", "might be",
        "question of", "questionable", "query", "clinical question", "question", "differential diagnosis",
        "differential diagnoses", "differential", "ddx", "dd", "d/d", "versus", "vs", "vs.",
        "concerning for", "concern for", "worrisome for", "cannot exclude", "can not exclude",
        "cannot rule out", "rule out", "to rule out", "r/o", "evaluate for", "exclusion of", "to exclude",
        "either", "equivocal", "indeterminate", "favor", "favors", "favored", "favoured", "favour",
        "in the first place", "alternatively", "uncertain", "unclear", *_hedged_exclusions(),
        "not without concern for", "possibility of", "the possibility of", "raises the possibility of",
    ] + german.UNCERTAINTY_PRECEDING
    following = [
        "?", "versus", "vs", "vs.", "suspected", "is suspected", "cannot be excluded", "can not be excluded",
        "cannot be ruled out", "can not be ruled out", "not excluded", "not ruled out", "not be excluded",
        "is possible", "is likely", "is probable", "is questionable", "less likely", "is favored",
        "should be considered", "is considered", "remains possible", "is suspicious",
    ] + _hedged_exclusions() + german.UNCERTAINTY_FOLLOWING
    pseudo = ["no suspicion", "not suspicious", "no doubt", "without doubt", "low suspicion", "no concern",
              "not concerning", "not suggestive", "less likely than"]
    termination = _CLAUSE_BREAKS + german.TERMINATION
    return _termset(pseudo, preceding, following, termination)


# Treatment words: a tumor mentioned with them may be gone ("status post resection of X"); the text's
# "no residual / recurrent tumor" then negates it. "Known X" is history too, but says X is still there.
_TREATED_PRECEDING = [
    "status post", "s/p", "condition after", "state after", "status after", "post-operative",
    "postoperative", "post operative", "postsurgical", "post-surgical", "previously resected",
    "previously treated", "previously operated", "resected", "treated", "operated", "after resection of",
    "after resection", "after surgery", "after removal of", "after treatment of", "following resection of",
    "post resection", *german.TREATED_PRECEDING,
]
_TREATED_FOLLOWING = [
    "resection", "resected", "was resected", "has been resected", "removed", "was removed",
    "has been removed", "completely removed", "post resection", "status post resection",
    "previously resected", "treated", "surgery", "operated", "excision", "excised", *german.TREATED_FOLLOWING,
]
_HISTORY_TERMINATION = [t for t in _CLAUSE_BREAKS if t not in ("the known", "this known", "with known")] + [
    "now", "new", "currently", "recurrent", "recurrence", "residual", "progression", "progressive",
    "enlarging", "increasing", *german.TERMINATION, *german.HISTORY_TERMINATION,
]


def _history() -> TermSet:
    preceding = [
        "known", "history of", "h/o", "hx of", "previously described", "previously seen", "previously known",
        "previous", "prior", "in the past", *_TREATED_PRECEDING, *german.HISTORY_PRECEDING,
    ]
    following = ["previously seen", "previously described", "known since", *_TREATED_FOLLOWING]
    return _termset(["unknown", "not known"], preceding, following, _HISTORY_TERMINATION)


# Family history: the relative has the tumor, not the patient ("mother had a meningioma").
_RELATIVES = ("mother", "father", "brother", "sister", "sibling", "siblings", "son", "daughter", "aunt", "uncle",
              "grandmother", "grandfather", "cousin", "parent", "parents", "twin", "niece", "nephew")


def _family() -> TermSet:
    owners = ("", "his ", "her ", "the patient's ", "patient's ", "a ", "maternal ", "paternal ")
    lineage = [f"{side} history{tail}" for side in ("maternal", "paternal") for tail in ("", " of")]
    preceding = [f"{owner}{relative}" for owner in owners for relative in _RELATIVES] + [
        "family history of", "family history", "fh of", "fhx of", "familial history of", "family member with",
        "relative with", "relatives with", "in the family", "runs in the family", *lineage,
        *german.FAMILY_PRECEDING,
    ]
    following = ["in the family", "in his family", "in her family", "in the mother", "in the father",
                 "in his mother", "in her mother", "in his father", "in her father", "in a sibling",
                 "in a relative", "runs in the family", *german.FAMILY_FOLLOWING]
    termination = _CLAUSE_BREAKS + german.TERMINATION + [
        "the patient", "patient", "he", "she", "now", "currently", "today", "this study", "current study",
        "normal study", "study", "der patient", "die patientin", "jetzt", "aktuell"]
    return _termset([], preceding, following, termination)


def _treatment() -> TermSet:
    return _termset([], _TREATED_PRECEDING, _TREATED_FOLLOWING, _HISTORY_TERMINATION)


def _termset(pseudo: list[str], preceding: list[str], following: list[str], termination: list[str]) -> TermSet:
    def unique(terms: list[str]) -> list[str]:
        return list(dict.fromkeys(terms))

    return {
        "pseudo_negations": unique(pseudo),
        "preceding_negations": unique(preceding),
        "following_negations": unique(following),
        "termination": unique(termination),
    }


def negation_termset() -> TermSet:
    return _negation()


def uncertainty_termset() -> TermSet:
    return _uncertainty()


def history_termset() -> TermSet:
    return _history()


def treatment_termset() -> TermSet:
    return _treatment()


def family_termset() -> TermSet:
    return _family()
