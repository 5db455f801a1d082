"""German as a first-class language: class vocabulary with inflections, compounds, sides, regions, and the
negation / uncertainty / history / family triggers German radiologists dictate.

The German lists join the English ones in one pipeline, so a German report, an English one and the mixed
German/English text common in German reading rooms are read by the same rules. Plain data except
:func:`split_compounds` (regular expressions used by :mod:`LoGSAMLib.nlp.normalize`).

Decisions: "vereinbar mit" / "passend zu" affirm (as "consistent with"); "am ehesten" / "a.e." and
"V.a." / "Verdacht auf" are suspicion (uncertain, still segmented); "nicht auszuschließen" is a hedged
double negation (uncertain, never negated); "Ausschluss" in a question ("zum Ausschluss eines Glioms")
is a question, not a denial.
"""

from __future__ import annotations

import functools
import re

_INFLECTIONS = ("", "s", "e", "en")


def _inflect(*stems: str) -> tuple[str, ...]:
    """"meningeom" -> meningeom, meningeoms, meningeome, meningeomen (German nouns on -om, -tumor)."""
    return tuple(stem + ending for stem in stems for ending in _INFLECTIONS)


# Class stems (German spelling); each is inflected. Compounds are split at these words (see below).
CLASS_STEMS: dict[str, tuple[str, ...]] = {
    "glioma": ("gliom", "glioblastom", "astrozytom", "astrocytom", "oligodendrogliom", "oligoastrozytom",
               "ependymom", "subependymom", "gangliogliom", "gliosarkom", "xanthoastrozytom"),
    "meningioma": ("meningeom", "meningiom"),
    "pituitary": ("hypophysenadenom", "hypophysenmakroadenom", "hypophysenmikroadenom", "makroadenom",
                  "mikroadenom", "adenom", "prolaktinom", "hypophysentumor", "hypophysentumour"),
}
# Multi-word German class phrases ("Adenom der Hypophyse" is the pituitary adenoma; "Adenom" alone is too).
CLASS_PHRASES: dict[str, tuple[str, ...]] = {
    "glioma": (*_inflect(*CLASS_STEMS["glioma"]), "gliale neoplasie", "glialer tumor", "glialen tumor",
               "gliale tumoren", "glialen tumors", "glialer neoplasie", "glialen neoplasie", "gliomatose",
               "gliomatosis cerebri", "pilozytisches astrozytom", "diffuses astrozytom"),
    "meningioma": _inflect(*CLASS_STEMS["meningioma"]),
    "pituitary": (*_inflect(*CLASS_STEMS["pituitary"]), "makro adenom", "mikro adenom",
                  "adenom der hypophyse", "tumor der hypophyse"),
}
OTHER_PHRASES: dict[str, tuple[str, ...]] = {
    "metastasis": ("metastase", "metastasen", "filia", "filiae", "hirnmetastase", "hirnmetastasen"),
    "hemorrhage": ("blutung", "blutungen", "einblutung", "einblutungen", "mikroblutung", "mikroblutungen"),
    "hematoma": ("hämatom", "hämatome"),
    "infarct": ("infarkt", "infarkte", "hirninfarkt", "ischämie", "schlaganfall"),
    "abscess": ("abszess", "abszesse", "hirnabszess"),
    "lymphoma": ("lymphom", "lymphome"),
    "schwannoma": ("schwannom", "schwannome", "akustikusneurinom", "vestibularisschwannom"),
    "cavernoma": ("kavernom", "kavernome"),
    "craniopharyngioma": ("kraniopharyngeom", "kraniopharyngeoms"),
}
STATUS_PHRASES: tuple[str, ...] = (
    "rezidiv", "rezidivs", "rezidive", "lokalrezidiv", "tumorrezidiv", "resttumor", "resttumors", "tumorrest",
    "tumorreste", "residuum", "residualtumor", "tumorresiduum", "rest",
)
SIDES: dict[str, tuple[str, ...]] = {
    "left": ("links", "linke", "linken", "linker", "linkes", "linksseitig", "linksseitige", "linksseitigen",
             "linksseitiger", "linksseitiges", "li"),
    "right": ("rechts", "rechte", "rechten", "rechter", "rechtes", "rechtsseitig", "rechtsseitige",
              "rechtsseitigen", "rechtsseitiger", "rechtsseitiges", "re"),
    "bilateral": ("beidseits", "beidseitig", "beidseitige", "beidseitigen", "beidseitiger", "bds",
                  "bilateral", "bilaterale", "bilateralen", "beide seiten"),
}


def _lobe(*stems: str) -> tuple[str, ...]:
    return tuple(f"{stem}{tail}" for stem in stems for tail in ("lappen", "lappens"))


def _adjective(*stems: str) -> tuple[str, ...]:
    """"frontal" -> frontale, frontalen, frontaler, frontales, frontalem ("linksfrontales Gliom")."""
    return tuple(stem + ending for stem in stems for ending in ("e", "en", "er", "es", "em"))


REGIONS: dict[str, tuple[str, ...]] = {
    "frontal": (*_lobe("frontal", "stirn"), *_adjective("frontal", "frontobasal", "präfrontal", "bifrontal"),
                "frontobasal", "präfrontal", "bifrontal"),
    "temporal": (*_lobe("temporal", "schläfen"), *_adjective("temporal", "mesiotemporal"), "mesiotemporal"),
    "parietal": (*_lobe("parietal", "scheitel"), *_adjective("parietal")),
    "occipital": (*_lobe("okzipital", "occipital", "hinterhaupt", "hinterhaupts"), "okzipital",
                  *_adjective("okzipital", "occipital")),
    "frontotemporal": _adjective("frontotemporal"),
    "frontoparietal": _adjective("frontoparietal"),
    "temporoparietal": _adjective("temporoparietal"),
    "insula": ("insel", "inselrinde", "insulär"),
    "basal ganglia": ("stammganglien", "basalganglien"),
    "corpus callosum": ("balken",),
    "cerebellum": ("kleinhirn", "kleinhirns", "zerebellär", "kleinhirnhemisphäre"),
    "brainstem": ("hirnstamm", "hirnstamms"),
    "sella": ("sellär", "intrasellär", "sellaregion", "hypophysenloge"),
    "suprasellar": ("suprasellär",),
    "parasellar": ("parasellär",),
    "cavernous sinus": ("sinus cavernosus",),
    "falx": ("falx cerebri", "parafalxial"),
    "convexity": ("konvexität", "konvexitäts"),
    "sphenoid wing": ("keilbeinflügel", "keilbeinflügels"),
    "olfactory groove": ("olfaktoriusrinne",),
    "cerebellopontine angle": ("kleinhirnbrückenwinkel", "kbw"),
}
LESION_NOUNS: frozenset[str] = frozenset({
    "raumforderung", "raumforderungen", "läsion", "läsionen", "herd", "herde", "herdbefund", "tumor",
    "tumoren", "neoplasie", "struktur",
})
NEGATION_WORDS: frozenset[str] = frozenset({"kein", "keine", "keinen", "keiner", "ohne", "unauffällig"})

# ------------------------------------------------------------------------------ triggers

_KEIN = ("kein", "keine", "keinen", "keinem", "keiner", "keines")
_NOUNS_OF_SIGN = ("hinweis", "hinweise", "anhalt", "anhaltspunkt", "anhaltspunkte", "nachweis", "zeichen",
                  "verdacht", "befund")
_LINKS = ("auf", "für", "fuer", "von", "eines", "einer", "eine", "einen", "ein")


def _phrases(heads: tuple[str, ...], nouns: tuple[str, ...], links: tuple[str, ...] = ()) -> list[str]:
    out = [f"{h} {n}" for h in heads for n in nouns]
    return out + [f"{h} {n} {link}" for h in heads for n in nouns for link in links]


_SEEN = ("nachweisbar", "abgrenzbar", "erkennbar", "sichtbar", "darstellbar", "nachzuweisen", "abzugrenzen",
         "zu sehen", "zu erkennen", "feststellbar", "nachgewiesen", "gesehen", "erkannt", "abgegrenzt")

NEGATION_PRECEDING = [
    *_KEIN, "ohne", "ohne hinweis auf", "ohne anhalt für", "ohne nachweis", "ohne nachweis von",
    "ohne nachweis eines", "ohne nachweis einer", "ohne zeichen", "ohne zeichen eines", "weder",
    *_phrases(_KEIN, _NOUNS_OF_SIGN, _LINKS),
    "kein sicherer hinweis auf", "kein sicherer nachweis", "keine sicheren hinweise auf",
    "nicht vereinbar mit", "nicht passend zu", "nicht typisch für", "nicht verdächtig auf",
    "spricht gegen", "sprechen gegen", "gegen ein", "gegen eine", "anstatt", "statt", "eher als",
    "ausgeschlossen ist", "ausgeschlossen wurde", "unwahrscheinlich ist",
    "nicht mehr nachweisbar", "negativ für", "frei von", "geringer verdacht auf", "wenig wahrscheinlich",
    "ich denke nicht", "glaube nicht", "halte ich nicht für",
    "kein hinweis mehr auf", "kein anhalt mehr für",
]
NEGATION_FOLLOWING = [
    "ausgeschlossen", "ist ausgeschlossen", "wurde ausgeschlossen", "sicher ausgeschlossen",
    "unwahrscheinlich", "ist unwahrscheinlich", "eher unwahrscheinlich",
    "negativ", "war negativ", "ist negativ", "nicht vorhanden", "nicht mehr vorhanden", "fehlt",
    "nicht rezidiviert", "nicht wahrscheinlich",
    *[f"nicht {s}" for s in _SEEN], *[f"nicht mehr {s}" for s in _SEEN], *[f"ist nicht {s}" for s in _SEEN],
    *[f"nicht sicher {s}" for s in _SEEN], *[f"kein {s}" for s in ("nachweis",)],
    "nicht zu sehen", "nicht zu erkennen",
    # "lässt sich nicht nachweisen", "konnte nicht abgegrenzt werden": the infinitive after a modal verb.
    *[f"nicht {verb}" for verb in ("nachweisen", "abgrenzen", "erkennen", "darstellen", "feststellen", "sehen",
                                   "abgegrenzt", "dargestellt", "festgestellt")],
]
_HEDGED = ("nicht auszuschließen", "nicht auszuschliessen", "nicht sicher auszuschließen",
           "nicht sicher auszuschliessen", "nicht ausgeschlossen", "nicht sicher ausgeschlossen",
           "nicht mit sicherheit auszuschließen", "nicht mit sicherheit ausgeschlossen",
           "nicht sicher abzugrenzen von", "nicht ausschließbar", "nicht auszuschließendes")
NEGATION_PSEUDO = [
    *_HEDGED, "kein masseneffekt", "keine raumforderung mit masseneffekt", "keine mittellinienverlagerung",
    "keine befundänderung", "keine änderung", "keine relevante änderung", "keine größenzunahme",
    "keine grössenzunahme", "kein größenprogress", "kein progress", "keine progredienz", "kein wachstum",
    "keine zunahme", "keine größenprogredienz", "ohne kontrastmittel", "ohne km", "ohne masseneffekt",
    "ohne befundänderung", "ohne größenprogredienz", "ohne progress", "ohne wachstum", "kein zweifel",
    "nicht nur", "keine neuen",
]
UNCERTAINTY_PRECEDING = [
    "verdacht auf", "va", "v a", "dringender verdacht auf", "hochgradiger verdacht auf", "verdächtig auf",
    "suspekt auf", "suspekt für", "dd", "differentialdiagnostisch", "differenzialdiagnostisch",
    "differentialdiagnose", "differenzialdiagnose", "möglich", "mögliche", "möglicher", "mögliches",
    "möglichen", "möglicherweise", "wahrscheinlich", "wahrscheinliche", "wahrscheinlicher", "wahrscheinliches",
    "wahrscheinlichen", "vermutlich", "fraglich", "fragliche", "fraglicher", "fragliches", "fraglichen",
    "am ehesten", "ae", "eher", "a.e", "nicht auszuschließen ist", "nicht auszuschließen ist ein",
    "nicht auszuschließen ist eine", "fragestellung", "frage nach", "zum ausschluss", "ausschluss",
    "abklärung", "bei v a", "oder", "vs", "versus",
]
UNCERTAINTY_FOLLOWING = [*_HEDGED, "möglich", "ist möglich", "denkbar", "ist denkbar", "vermutet",
                         "wahrscheinlich", "fraglich", "?", "in betracht", "zu diskutieren", "zu erwägen"]
HISTORY_PRECEDING = [
    "bekannt", "bekannte", "bekannter", "bekanntes", "bekannten", "vorbekannt", "vorbekannte", "vorbekannter",
    "vorbekanntes", "vorbekannten", "anamnestisch", "zn", "z n", "zustand nach", "nach", "früher", "frühere",
    "früheren", "voroperiert", "voroperierte", "voroperierten", "reseziert", "resezierte", "resezierten",
    "operiert", "operierte", "operierten", "bestrahlt", "bestrahlte", "bestrahlten", "stp", "status nach",
    "nach resektion", "nach resektion eines", "nach resektion einer", "nach op",
]
TREATED_PRECEDING = [
    "zn", "z n", "zustand nach", "status nach", "stp", "voroperiert", "voroperierte", "voroperierten",
    "reseziert", "resezierte", "resezierten", "operiert", "operierte", "operierten", "nach resektion",
    "nach resektion eines", "nach resektion einer", "nach op", "nach operation", "postoperativ",
    "postoperativer", "postoperativen",
]
TREATED_FOLLOWING = ["reseziert", "wurde reseziert", "operiert", "wurde operiert", "entfernt", "wurde entfernt",
                     "resektion", "z n resektion", "nach resektion", "exstirpiert"]
HISTORY_TERMINATION = ["jetzt", "aktuell", "neu", "neue", "neuer", "neues", "neuen", "neu aufgetreten",
                       "rezidiv", "resttumor", "progredient", "progredienz", "größenprogredient"]
FAMILY_PRECEDING = [
    "mutter", "vater", "bruder", "schwester", "eltern", "geschwister", "sohn", "tochter", "onkel", "tante",
    "großmutter", "großvater", "grossmutter", "grossvater", "cousin", "cousine", "familienanamnese",
    "familiär", "familiäre", "familiärer", "familiären",
]
FAMILY_FOLLOWING = ["in der familie", "der mutter", "des vaters", "des bruders", "der schwester",
                    "in der familienanamnese", "familiär"]
TERMINATION = [
    "aber", "jedoch", "allerdings", "sondern", "hingegen", "dagegen", "während", "wohingegen", "außer",
    "es zeigt sich", "zeigt sich", "zeigen sich", "es findet sich", "findet sich", "finden sich",
    "beurteilung", "befund", "im übrigen", "ansonsten", "außerdem", "sowie", "und ein", "und eine",
    "und einem", "und einer", "weiterhin", "zudem", "dabei", "vereinbar mit", "passend zu",
]

# ------------------------------------------------------------------------------ compounds

# Heads that may follow a class word in a compound ("Glioblastomrezidiv", "Meningeomrest").
_TAILS = ("rezidiv", "rezidivs", "rest", "reste", "residuum", "anteil", "anteile", "anteils", "progress",
          "progredienz", "wachstum", "verdacht", "resektion", "operation", "patient", "patientin", "nachweis")


def _class_word_forms() -> frozenset[str]:
    return frozenset(form for forms in CLASS_PHRASES.values() for form in forms if " " not in form)


def _split_word(word: str, known: frozenset[str], stems: tuple[str, ...]) -> str:
    """"Konvexitätsmeningeom" -> "Konvexitäts meningeom", "Glioblastomrezidiv" -> "Glioblastom rezidiv";
    a word that is itself a class form, or holds no class stem, is returned as it is."""
    low = word.lower()
    if low in known:
        return word
    for stem in stems:  # longest first
        at = low.find(stem)
        if at < 0:
            continue
        rest = low[at + len(stem):]
        if at >= 3 and rest in _ENDINGS:  # ...+class word: split before the class word
            return f"{word[:at]} {word[at:]}"
        if at == 0:  # class word+tail: split after the class word (and its linking "s")
            for link in ("s", ""):
                if rest.startswith(link) and rest[len(link):] in _TAIL_FORMS:
                    cut = len(stem) + len(link)
                    return f"{word[:cut]} {word[cut:]}"
        return word
    return word


_ENDINGS = frozenset(_INFLECTIONS)
_TAIL_FORMS = frozenset(tail + ending for tail in _TAILS for ending in ("", "s", "e", "en", "n"))


@functools.lru_cache(maxsize=1)
def split_compounds() -> tuple[tuple[re.Pattern[str], object, tuple[str, ...]], ...]:
    """(pattern, replacement, needles) triples that put a space where a German compound meets a class word,
    side or lobe: "Konvexitätsmeningeom" -> "Konvexitäts meningeom", "Glioblastomrezidiv" -> "Glioblastom
    rezidiv", "linksfrontal" -> "links frontal". A word that is itself a class form is never split. The
    needles are lower-case strings one of which must occur for the pattern to match (a cheap pre-check)."""
    known = _class_word_forms()
    stems = tuple(sorted({s for group in CLASS_STEMS.values() for s in group}, key=len, reverse=True))
    long_word = re.compile(r"\b[A-Za-zÄÖÜäöüß]{7,}\b")
    side_compound = re.compile(
        r"\b(links|rechts)((?:frontal|temporal|parietal|okzipital|occipital|zerebellär|hemisphärisch|seitig|"
        r"lateral|parasagittal|thalamisch|insulär|fronto\w+|temporo\w+|parieto\w+|hirnig)\w*)\b",
        re.IGNORECASE)
    return ((long_word, lambda m: _split_word(m.group(0), known, stems), stems),
            (side_compound, lambda m: f"{m.group(1)} {m.group(2)}", ("links", "rechts")))
