"""Build the clinical spaCy pipeline once per process, offline (no downloaded language model)."""

from __future__ import annotations

import functools
from typing import Any

from .vocabulary import CLASS_TERMS, OTHER_TERMS, STATUS_TERMS

# Entity labels set by the entity ruler; the class or canonical name is the entity id (``ent.ent_id_``).
TUMOR = "TUMOR"  # a supported class: glioma / meningioma / pituitary
FINDING = "FINDING"  # another finding: metastasis, hemorrhage, ...
STATUS = "STATUS"  # residual / recurrence: is a treated tumor still there?

NEGATED_EXT = "negex"
UNCERTAIN_EXT = "logsam_uncertain"
HISTORICAL_EXT = "logsam_historical"
TREATED_EXT = "logsam_treated"
FAMILY_EXT = "logsam_family"

# Components that annotate context; run on any entities (those of the ruler or of a query phrase).
CONTEXT_PIPES = ("negex", "uncertainty", "history", "treatment", "family")


@functools.lru_cache(maxsize=1)
def build_pipeline() -> Any:
    """The cached pipeline: blank English, sentencizer (. ! ? ; and new lines), entity ruler for the
    vocabulary, side/region spans, then five NegEx passes: negation (negspaCy ``en_clinical`` extended
    for radiology and German), uncertainty, history, treatment and family history (same scoping, their
    own triggers).

    Entities get ``ent._.negex``, ``ent._.logsam_uncertain``, ``ent._.logsam_historical`` and
    ``ent._.logsam_treated`` (resected / operated: a subset of historical), ``ent._.logsam_family`` (a
    relative's tumor, not the patient's) and ``ent._.logsam_cues`` (the trigger of each flag: the "why").
    """
    import spacy
    from spacy.pipeline import Sentencizer

    from . import context  # noqa: F401  (registers the components)
    from .termsets import (
        family_termset,
        history_termset,
        negation_termset,
        treatment_termset,
        uncertainty_termset,
    )

    nlp = spacy.blank("en")
    # German shares the pipeline: "im" is "in the" ("im Frontallappen"), not the English "I'm".
    nlp.tokenizer.rules = {k: v for k, v in nlp.tokenizer.rules.items() if k.lower() != "im"}
    nlp.add_pipe("sentencizer", config={"punct_chars": [*Sentencizer.default_punct_chars, ";"]})
    nlp.add_pipe("logsam_line_breaks")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER", "validate": False})
    patterns = [
        {"label": TUMOR, "pattern": form, "id": label} for label, forms in CLASS_TERMS.items() for form in forms
    ]
    patterns += [
        {"label": FINDING, "pattern": form, "id": name} for name, forms in OTHER_TERMS.items() for form in forms
    ]
    patterns += [{"label": STATUS, "pattern": form, "id": "status"} for form in STATUS_TERMS]
    ruler.add_patterns(patterns)
    nlp.add_pipe("logsam_location")
    nlp.add_pipe("logsam_negex", name="negex",
                 config={"neg_termset": negation_termset(), "extension_name": NEGATED_EXT})
    nlp.add_pipe("logsam_negex", name="uncertainty",
                 config={"neg_termset": uncertainty_termset(), "extension_name": UNCERTAIN_EXT})
    nlp.add_pipe("logsam_negex", name="history",
                 config={"neg_termset": history_termset(), "extension_name": HISTORICAL_EXT,
                         "max_following_gap": 6})
    nlp.add_pipe("logsam_negex", name="treatment",
                 config={"neg_termset": treatment_termset(), "extension_name": TREATED_EXT,
                         "max_following_gap": 6})
    nlp.add_pipe("logsam_negex", name="family",
                 config={"neg_termset": family_termset(), "extension_name": FAMILY_EXT,
                         "max_following_gap": 6})
    return nlp
