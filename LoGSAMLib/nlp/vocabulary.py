"""Clinical vocabulary: the three supported tumor classes, other findings, status words, sides, regions.

Every list is plain data (no spaCy here) so that tests and the Slicer panel can read it cheaply.
Phrases are matched token by token, case-insensitively, after the same tokenizer as the text;
:func:`expand` adds the plural, British and hyphen/space variants so the lists below stay short.

Vocabulary decisions (documented because they change what gets segmented):
- glioma: the WHO glial family, i.e. all astrocytomas (pilocytic, diffuse, anaplastic, IDH-mutant),
  glioblastoma / GBM / gliosarcoma, oligodendroglioma, ependymoma and subependymoma, ganglioglioma,
  gliomatosis cerebri, diffuse midline glioma / DIPG, low/high-grade glioma (LGG/HGG).
- meningioma: every meningioma (location and grade words are read as region or ignored).
- pituitary: pituitary adenoma/tumor/neoplasm, micro-/macroadenoma, PitNET, prolactinoma, hypophyseal
  adenoma, and a bare "adenoma" (in a brain MRI dictation it is the pituitary one).
- Generic words (mass, lesion, tumor, space-occupying lesion, sellar mass) and anatomy (pituitary gland,
  sella) name no class; craniopharyngioma, Rathke cleft cyst, schwannoma, metastasis, lymphoma, DNET ...
  are other findings, reported as unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import german

CLASSES: tuple[str, ...] = ("glioma", "meningioma", "pituitary")

# Core forms per class (lowercase). ASR misspellings and German forms that Whisper sometimes leaves
# untranslated ("Meningeom", "Hypophysenadenom") are included on purpose.
_CLASS_PHRASES: dict[str, tuple[str, ...]] = {
    "glioma": (
        "glioma", "gliom", "glyoma", "gleoma", "gliomma",
        "glioblastoma", "glioblastom", "glioblastome", "gliobastoma", "glio blastoma", "glia blastoma",
        "glioblastoma multiforme", "glioblastoma multi forme", "glioblastoma multi form", "multiforme",
        "gbm", "g b m", "gliosarcoma",
        "astrocytoma", "astro cytoma", "astrocytom", "astrozytom", "xanthoastrocytoma", "sega",
        "oligodendroglioma", "oligo dendroglioma", "oligodendro glioma", "dendroglioma", "oligodendrogliom",
        "oligoastrocytoma",
        "glial tumor", "glial neoplasm", "glial neoplasia", "glial cell tumor", "glial neoplasia",
        "gliomatosis", "gliomatosis cerebri",
        "diffuse midline glioma", "diffuse intrinsic pontine glioma", "dipg", "butterfly glioma",
        "low-grade glioma", "high-grade glioma", "lgg", "hgg",
        "ependymoma", "subependymoma", "ependymom",
        "ganglioglioma",
    ),
    "meningioma": (
        "meningioma", "meningeoma", "meningeom", "meningiom", "menengioma", "meningoma", "meningiomma",
        "menin gioma", "meningi oma", "mening ioma", "meningiomatosis",
    ),
    "pituitary": (
        "pituitary adenoma", "pituitary adenom", "pituitary tumor", "pituitary neoplasm",
        "pituitary macroadenoma", "pituitary microadenoma",
        "macroadenoma", "microadenoma", "macro adenoma", "micro adenoma", "makroadenom", "mikroadenom",
        "adenoma",
        "pitnet", "pit net", "pit-net", "pituitary neuroendocrine tumor",
        "prolactinoma", "macroprolactinoma", "microprolactinoma",
        "hypophyseal adenoma", "hypophysial adenoma", "hypophysenadenom", "hypophyseal tumor",
    ),
}

# Findings that are not supported classes: canonical name -> phrases. Named in the result as "unsupported"
# so the user learns what the dictation describes instead.
_OTHER_PHRASES: dict[str, tuple[str, ...]] = {
    "metastasis": ("metastasis", "metastases", "metastatic disease", "metastatic lesion", "mets",
                   "metastatic deposit", "brain metastasis"),
    "lymphoma": ("lymphoma", "pcnsl", "cns lymphoma"),
    "abscess": ("abscess", "abscesses", "empyema"),
    "hemorrhage": ("hemorrhage", "haemorrhage", "bleed", "bleeding", "microbleed"),
    "hematoma": ("hematoma", "haematoma"),
    "infarct": ("infarct", "infarction", "stroke", "ischemia", "ischaemia"),
    "schwannoma": ("schwannoma", "vestibular schwannoma", "acoustic neuroma", "neurinoma", "neurinom",
                   "acoustic neurinoma"),
    "cavernoma": ("cavernoma", "cavernous malformation", "cavernous angioma", "cavernous hemangioma"),
    "craniopharyngioma": ("craniopharyngioma", "kraniopharyngeom"),
    "rathke cleft cyst": ("rathke cleft cyst", "rathke's cleft cyst", "rathke cyst", "rathke pouch cyst"),
    "arachnoid cyst": ("arachnoid cyst",),
    "colloid cyst": ("colloid cyst",),
    "epidermoid": ("epidermoid", "epidermoid cyst"),
    "dermoid": ("dermoid", "dermoid cyst"),
    "hemangioblastoma": ("hemangioblastoma", "haemangioblastoma"),
    "hemangiopericytoma": ("hemangiopericytoma", "solitary fibrous tumor"),
    "medulloblastoma": ("medulloblastoma",),
    "chordoma": ("chordoma",),
    "germinoma": ("germinoma",),
    "pineal tumor": ("pineoblastoma", "pineocytoma", "pinealoma"),
    "dnet": ("dnet", "dysembryoplastic neuroepithelial tumor"),
    "neurocytoma": ("neurocytoma", "central neurocytoma"),
    "arteriovenous malformation": ("arteriovenous malformation", "avm"),
    "aneurysm": ("aneurysm",),
    "demyelination": ("demyelination", "demyelinating lesion", "demyelinating plaque", "multiple sclerosis"),
    "encephalitis": ("encephalitis", "cerebritis"),
    "radiation necrosis": ("radiation necrosis", "pseudoprogression"),
    "contusion": ("contusion",),
    "inflammation": ("inflammation", "inflammatory lesion"),
}

# Words that say whether a treated tumor is still there; used to resolve "status post resection of X".
_STATUS_PHRASES: tuple[str, ...] = (
    "residual", "residual tumor", "residuum", "remnant", "tumor remnant", "rest tumor", "tumor residue",
    "recurrence", "recurrent", "recurrent tumor", "tumor recurrence", "regrowth", "re-growth", "relapse",
)

SIDES: dict[str, tuple[str, ...]] = {
    "left": ("left", "left-sided", "left sided", "sinistral"),
    "right": ("right", "right-sided", "right sided", "dextral"),
    "bilateral": ("bilateral", "bilaterally", "both sides", "both hemispheres", "bihemispheric",
                  "bihemispherical", "on both sides"),
}

# Canonical region -> phrases. Compound lobes keep their own name ("frontotemporal").
REGIONS: dict[str, tuple[str, ...]] = {
    "frontal": ("frontal", "frontally", "prefrontal", "frontobasal", "fronto-basal"),
    "temporal": ("temporal", "mesiotemporal", "mesial temporal"),
    "parietal": ("parietal",),
    "occipital": ("occipital",),
    "frontotemporal": ("frontotemporal", "fronto-temporal"),
    "frontoparietal": ("frontoparietal", "fronto-parietal"),
    "temporoparietal": ("temporoparietal", "temporo-parietal"),
    "parieto-occipital": ("parieto-occipital", "parietooccipital"),
    "temporo-occipital": ("temporo-occipital", "temporooccipital"),
    "insula": ("insula", "insular"),
    "thalamus": ("thalamus", "thalamic"),
    "hypothalamus": ("hypothalamus", "hypothalamic"),
    "basal ganglia": ("basal ganglia", "basal ganglion", "caudate", "putamen", "lentiform nucleus",
                      "globus pallidus"),
    "corpus callosum": ("corpus callosum", "callosal", "splenium", "genu of the corpus callosum"),
    "cerebellum": ("cerebellum", "cerebellar", "vermis", "cerebellar hemisphere"),
    "brainstem": ("brainstem", "brain stem", "pons", "pontine", "midbrain", "mesencephalon",
                  "medulla oblongata", "tectal", "tectum"),
    "posterior fossa": ("posterior fossa",),
    "intraventricular": ("intraventricular", "lateral ventricle", "third ventricle", "fourth ventricle"),
    "periventricular": ("periventricular",),
    "pineal": ("pineal",),
    "sella": ("sella", "sellar", "intrasellar", "sella turcica", "pituitary fossa", "hypophyseal fossa"),
    "suprasellar": ("suprasellar", "supra-sellar"),
    "parasellar": ("parasellar",),
    "cavernous sinus": ("cavernous sinus",),
    "falx": ("falx", "falcine", "parafalcine", "para-falcine"),
    "parasagittal": ("parasagittal",),
    "convexity": ("convexity", "convexities"),
    "tentorium": ("tentorium", "tentorial"),
    "sphenoid wing": ("sphenoid wing", "sphenoid ridge", "sphenoidal wing"),
    "olfactory groove": ("olfactory groove",),
    "planum sphenoidale": ("planum sphenoidale",),
    "tuberculum sellae": ("tuberculum sellae",),
    "petroclival": ("petroclival",),
    "clivus": ("clivus", "clival"),
    "cerebellopontine angle": ("cerebellopontine angle", "cerebello-pontine angle", "cp angle", "cpa"),
    "foramen magnum": ("foramen magnum",),
    "optic chiasm": ("optic chiasm", "chiasm"),
}

# Nouns that refer to a lesion without naming a class ("mass ... consistent with glioblastoma").
LESION_NOUNS: frozenset[str] = frozenset({
    "mass", "masses", "lesion", "lesions", "tumor", "tumour", "tumors", "neoplasm", "process", "focus",
    "space-occupying", "occupying", "nodule", "formation", "enhancement",
})

_BRITISH = (("tumor", "tumour"), ("edema", "oedema"), ("hemorrhag", "haemorrhag"), ("hematoma", "haematoma"))


def _plurals(phrase: str) -> list[str]:
    head, _, last = phrase.rpartition(" ")
    prefix = f"{head} " if head else ""
    if last.endswith("oma"):
        forms = [last + "s", last + "ta"]  # meningiomas, meningiomata
    elif last.endswith(("om", "is", "ia", "s")) or len(last) <= 4:
        forms = []  # German forms, "metastasis" (listed), abbreviations
    elif last.endswith("y"):
        forms = [last[:-1] + "ies"]
    else:
        forms = [last + "s"]
    return [prefix + form for form in forms]


def expand(phrases: Iterable[str]) -> tuple[str, ...]:
    """All spelling variants of ``phrases``: plurals, British spellings, hyphen <-> space."""
    out: list[str] = []
    for phrase in phrases:
        base = phrase.lower().strip()
        variants = {base}
        for us, uk in _BRITISH:
            variants |= {v.replace(us, uk) for v in variants if us in v}
        variants |= {v.replace("-", " ") for v in variants if "-" in v}
        variants |= {p for v in list(variants) for p in _plurals(v)}
        for v in sorted(variants):
            if v not in out:
                out.append(v)
    return tuple(out)


def _with(english: dict[str, tuple[str, ...]], other: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """English entries followed by the German ones (German as a first-class language, same rules)."""
    keys = list(dict.fromkeys([*english, *other]))
    return {key: (*english.get(key, ()), *other.get(key, ())) for key in keys}


SIDES = _with(SIDES, german.SIDES)
REGIONS = _with(REGIONS, german.REGIONS)
LESION_NOUNS = LESION_NOUNS | german.LESION_NOUNS
CLASS_TERMS: dict[str, tuple[str, ...]] = {
    label: expand(p) for label, p in _with(_CLASS_PHRASES, german.CLASS_PHRASES).items()}
OTHER_TERMS: dict[str, tuple[str, ...]] = {
    name: expand(p) for name, p in _with(_OTHER_PHRASES, german.OTHER_PHRASES).items()}
STATUS_TERMS: tuple[str, ...] = expand((*_STATUS_PHRASES, *german.STATUS_PHRASES))


def class_forms(label: str) -> tuple[str, ...]:
    """Every vocabulary form that names ``label`` (lowercase)."""
    return CLASS_TERMS[label]


def class_of(phrase: str) -> str | None:
    """The supported class a phrase names exactly (``"GBM"`` -> ``"glioma"``), else None."""
    key = re.sub(r"\s+", " ", phrase.lower().strip())
    if key in CLASS_TERMS:
        return key
    for label, forms in CLASS_TERMS.items():
        if key in forms:
            return label
    return None
