"""A sentence per lesion to paste back into the report, in the dictation's language.

It says only what was measured (side from the direction cosines, diameters, slice, volume) and
the class the radiologist affirmed; the region is the dictated one, and only when the dictation
gives a single region for a class with a single lesion. English, or German when the dictation
was German (decimal comma, "ml"). Example::

    Left frontal glioma, 34 × 28 mm (axial, slice 82), volume 14.2 mL.
    Gliom links frontal, 34 × 28 mm (axial, Schicht 82), Volumen 14,2 ml.
"""

from __future__ import annotations

from typing import Any

from .types import Findings

LANGUAGES = ("en", "de")
_CLASS_NAMES = {
    "en": {"glioma": "glioma", "meningioma": "meningioma", "pituitary": "pituitary adenoma"},
    "de": {"glioma": "Gliom", "meningioma": "Meningeom", "pituitary": "Hypophysenadenom"},
}
_SIDES = {"en": {"left": "left", "right": "right", "midline": "midline"},
          "de": {"left": "links", "right": "rechts", "midline": "in der Mittellinie"}}
# Regions that read as an adjective before the class in English ("left frontal glioma").
_ADJECTIVE_REGIONS = {"frontal", "temporal", "parietal", "occipital", "frontotemporal", "frontoparietal",
                      "temporoparietal", "parieto-occipital", "temporo-occipital", "insula", "thalamus",
                      "hypothalamus", "cerebellum", "intraventricular", "periventricular", "sella",
                      "suprasellar", "parasellar", "parasagittal"}
_EN_ADJECTIVES = {"insula": "insular", "thalamus": "thalamic", "hypothalamus": "hypothalamic",
                  "cerebellum": "cerebellar", "sella": "sellar"}
_DE_REGIONS = {
    "frontal": "frontal", "temporal": "temporal", "parietal": "parietal", "occipital": "okzipital",
    "frontotemporal": "frontotemporal", "frontoparietal": "frontoparietal", "temporoparietal": "temporoparietal",
    "parieto-occipital": "parietookzipital", "temporo-occipital": "temporookzipital", "insula": "insulär",
    "thalamus": "thalamisch", "hypothalamus": "hypothalamisch", "basal ganglia": "in den Basalganglien",
    "corpus callosum": "im Balken", "cerebellum": "zerebellär", "brainstem": "im Hirnstamm",
    "posterior fossa": "in der hinteren Schädelgrube", "intraventricular": "intraventrikulär",
    "periventricular": "periventrikulär", "pineal": "in der Pinealisregion", "sella": "sellär",
    "suprasellar": "suprasellär", "parasellar": "parasellär", "cavernous sinus": "im Sinus cavernosus",
    "falx": "an der Falx", "parasagittal": "parasagittal", "convexity": "an der Konvexität",
    "tentorium": "am Tentorium", "sphenoid wing": "am Keilbeinflügel", "olfactory groove": "an der Olfaktoriusrinne",
    "planum sphenoidale": "am Planum sphenoidale", "tuberculum sellae": "am Tuberculum sellae",
    "petroclival": "petroklival", "clivus": "am Clivus", "cerebellopontine angle": "im Kleinhirnbrückenwinkel",
    "foramen magnum": "am Foramen magnum", "optic chiasm": "am Chiasma opticum",
}


def dictation_language(report: dict[str, Any]) -> str:
    """``"de"`` when the report's transcript (or findings) says the dictation was German, else ``"en"``."""
    for source in (report.get("transcript"), report.get("findings")):
        language = str((source or {}).get("language") or "").lower()
        if language:
            return "de" if language.startswith("de") else "en"
    return "en"


def report_lines(
    lesions: list[dict[str, Any]],
    findings: Findings | dict[str, Any] | None = None,
    language: str = "en",
) -> list[str]:
    """One sentence per lesion of an affirmed class (every lesion when there are no findings,
    i.e. the classes were chosen by hand), in ``lesions``' order."""
    language = language if language in LANGUAGES else "en"
    data = findings.to_dict() if isinstance(findings, Findings) else findings
    affirmed = None if data is None else set(data.get("affirmed") or [])
    kept = [x for x in lesions if affirmed is None or x["class"] in affirmed]
    counts: dict[str, int] = {}
    for lesion in kept:
        counts[lesion["class"]] = counts.get(lesion["class"], 0) + 1
    seen: dict[str, int] = {}
    lines = []
    for lesion in kept:
        name = lesion["class"]
        seen[name] = seen.get(name, 0) + 1
        region = _dictated_region(data, name) if counts[name] == 1 else None
        number = (seen[name], counts[name]) if counts[name] > 1 else None
        lines.append(_sentence(lesion, region, number, language))
    return lines


def _dictated_region(findings: dict[str, Any] | None, name: str) -> str | None:
    regions = {f.get("region") for f in (findings or {}).get("findings", [])
               if f.get("label") == name and not f.get("negated") and f.get("region")}
    return regions.pop() if len(regions) == 1 else None


def _number(value: float, language: str, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.replace(".", ",") if language == "de" else text


def _mm(value: float, language: str) -> str:
    return _number(value, language, 0 if value >= 10 else 1)


def _ml(value: float, language: str) -> str:
    return _number(value, language, 1 if value >= 1 else 2)


def _sentence(lesion: dict[str, Any], region: str | None, number: tuple[int, int] | None, language: str) -> str:
    cls = _CLASS_NAMES[language].get(lesion["class"], lesion["class"])
    side = _SIDES[language].get(lesion.get("side") or "", "")
    size = (f"{_mm(lesion['diameter_long_mm'], language)} × {_mm(lesion['diameter_perpendicular_mm'], language)} mm")
    which = f" ({number[0]} of {number[1]})" if number and language == "en" else (
        f" ({number[0]} von {number[1]})" if number else "")
    if language == "de":
        where = " ".join(x for x in (side, _DE_REGIONS.get(region or "", "")) if x)
        head = f"{cls} {where}".strip() + which
        return (f"{head}, {size} (axial, Schicht {lesion['axial_slice']}), "
                f"Volumen {_ml(lesion['volume_ml'], language)} ml.")
    if region in _ADJECTIVE_REGIONS:
        words, tail = [side, _EN_ADJECTIVES.get(region, region), cls], ""
    else:
        words, tail = [side, cls], f" ({region})" if region else ""
    head = " ".join(w for w in words if w)
    head = head[:1].upper() + head[1:]
    return (f"{head}{which}{tail}, {size} (axial, slice {lesion['axial_slice']}), "
            f"volume {_ml(lesion['volume_ml'], language)} mL.")


def describe_lesions(lesions: list[dict[str, Any]]) -> str:
    """The measurements as text lines for the terminal (one per lesion)."""
    lines = []
    for x in lesions:
        centroid = ", ".join(f"{c:.1f}" for c in x["centroid_lps"])
        lines.append(
            f"  {x['id']:<14} {x['side']:<8} {x['volume_ml']:7.2f} mL  "
            f"{x['diameter_long_mm']:.1f} x {x['diameter_perpendicular_mm']:.1f} mm "
            f"= {x['bidimensional_product_mm2']:.0f} mm² (slice {x['axial_slice']})  "
            f"LR/AP/SI {x['extent_lr_mm']:.0f}/{x['extent_ap_mm']:.0f}/{x['extent_si_mm']:.0f} mm  "
            f"centroid LPS ({centroid})")
    return "\n".join(lines)
