"""What the Review and result sections show, from the engine's JSON (no widgets here except in
``fillFindingsTable``): findings notes with the detected language and warnings, a cross-check
disagreement between the original dictation and its translation, report lines and lesions.

The functions take plain dicts, so other engine features only have to add keys: ``language`` and
``warnings`` in the findings; ``cross_check``, ``report_lines`` and ``lesions`` in a report.
"""

from .common import _

FINDING_COLUMNS = ("label", "negated", "uncertain", "side", "region", "text")


def crossCheck(*sources) -> dict | None:
    """The first ``cross_check`` dict among the given JSON dicts (findings, transcript, report)."""
    for source in sources:
        if isinstance(source, dict) and isinstance(source.get("cross_check"), dict):
            return source["cross_check"]
    return None


def crossCheckDisagrees(check: dict | None) -> bool:
    return bool(check) and not check.get("agree", True)


def crossCheckText(check: dict | None) -> str:
    """A prominent warning when original and translation disagree, else ""."""
    if not crossCheckDisagrees(check):
        return ""
    lines = [_("The original dictation and its English translation disagree: check before segmenting.")]
    if check.get("message"):
        lines.append(str(check["message"]))
    for key, title in (("original_classes", _("original")), ("translation_classes", _("translation"))):
        if key in check:
            value = check[key]
            shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            lines.append(f"{title}: {shown or _('none')}")
    return "\n".join(lines)


def findingsNotes(findings: dict) -> str:
    """The sentence under the findings table: affirmed, negated, unsupported, language, warnings."""
    notes = []
    affirmed, negated, unsupported = (findings.get(k) or [] for k in ("affirmed", "negated", "unsupported"))
    if affirmed:
        notes.append(_("Affirmed: {classes}.").format(classes=", ".join(affirmed)))
    else:
        notes.append(_("No supported tumor class is affirmed. Correct the text, or tick a class yourself."))
    if negated:
        notes.append(_("Negated (not segmented): {classes}.").format(classes=", ".join(negated)))
    if unsupported:
        notes.append(_("Mentioned but not supported by LoGSAM: {names}.").format(names=", ".join(unsupported)))
    if findings.get("language"):
        notes.append(_("Analysed as: {language}.").format(language=findings["language"]))
    warnings = findings.get("warnings") or []
    if warnings:
        notes.append(_("Warnings: {warnings}").format(warnings=" ".join(str(w) for w in warnings)))
    return " ".join(notes)


def findingRows(findings: dict) -> list:
    """Table rows ``(values, negated, tooltip)`` for each finding."""
    rows = []
    for finding in findings.get("findings") or []:
        values = [str(finding.get("label", "")), _("yes") if finding.get("negated") else "",
                  _("yes") if finding.get("uncertain") else "", finding.get("side") or "",
                  finding.get("region") or "", str(finding.get("text", ""))]
        tooltip = _("characters {start}-{end} of the analysed text").format(start=finding.get("start", "?"),
                                                                             end=finding.get("end", "?"))
        rows.append((values, bool(finding.get("negated")), tooltip))
    return rows


def fillFindingsTable(table, findings: dict | None) -> None:
    import qt

    table.setRowCount(0)
    if not findings:
        return
    rows = findingRows(findings)
    table.setRowCount(len(rows))
    for row, (values, negated, tooltip) in enumerate(rows):
        for column, value in enumerate(values):
            item = qt.QTableWidgetItem(value)
            if negated:
                item.setForeground(qt.QBrush(qt.QColor("#b03030")))
            item.setToolTip(tooltip)
            table.setItem(row, column, item)


def _lesionLine(label: str, lesion: dict) -> str:
    parts = [f"{label}:"]
    for key, unit in (("volume_ml", "mL"), ("diameter_mm", "mm"), ("max_diameter_mm", "mm")):
        if isinstance(lesion.get(key), int | float):
            parts.append(f"{key.split('_')[0]} {lesion[key]:.1f} {unit}")
    if "slices" in lesion:
        parts.append(_("slices {first}-{last}").format(first=lesion["slices"][0], last=lesion["slices"][-1]))
    if len(parts) == 1:
        parts.append(", ".join(f"{k} {v}" for k, v in lesion.items() if not isinstance(v, dict | list)))
    return " ".join(parts)


def lesionLines(report: dict) -> list:
    """One line per lesion from ``report["lesions"]`` (a dict of class -> list, or a list of dicts)."""
    lesions = report.get("lesions")
    lines = []
    if isinstance(lesions, dict):
        for label, items in lesions.items():
            for lesion in items if isinstance(items, list) else [items]:
                if isinstance(lesion, dict):
                    lines.append(_lesionLine(label, lesion))
    elif isinstance(lesions, list):
        for lesion in lesions:
            if isinstance(lesion, dict):
                lines.append(_lesionLine(str(lesion.get("label", lesion.get("class", ""))), lesion))
    return lines


def reportText(report: dict | None) -> str:
    """The text of the result box: the engine's report lines, else its lesion measurements."""
    if not report:
        return ""
    lines = [str(line) for line in report.get("report_lines") or []]
    if not lines:
        lines = lesionLines(report)
    return "\n".join(lines)
