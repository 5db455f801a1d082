"""Render the LoGSAM panel from LoGSAM.ui with Qt (PySide6), without 3D Slicer.

    .venv/bin/python tools/render_panel.py   # writes Resources/Screenshots/LoGSAM-panel.png

The extension description (top-level CMakeLists.txt) points to this image until screenshots are
taken in Slicer itself. Slicer's own widgets (node selectors, collapsible buttons) are drawn as
their Qt base classes, so the image shows the panel's layout and texts, not Slicer's look.
``load_ui`` is also what Testing/test_slicer_module.py loads the .ui with.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_PATH = ROOT / "LoGSAM" / "Resources" / "UI" / "LoGSAM.ui"
OUTPUT = ROOT / "Resources" / "Screenshots" / "LoGSAM-panel.png"


def load_ui(path: Path = UI_PATH):
    """(widget, QtCore, QtWidgets): the .ui loaded by QUiLoader, Slicer/CTK classes as their Qt base."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtUiTools, QtWidgets

    extends = {c.findtext("class"): c.findtext("extends") for c in ET.parse(path).getroot().iter("customwidget")}

    class Loader(QtUiTools.QUiLoader):
        def createWidget(self, className, parent=None, name=""):
            base = extends.get(className)
            widget = super().createWidget(base or className, parent, name)
            if widget is not None and base:
                widget.setProperty("slicerClass", className)
            return widget

    QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    file = QtCore.QFile(str(path))
    if not file.open(QtCore.QIODevice.ReadOnly):
        raise OSError(f"cannot open {path}")
    loader = Loader()
    widget = loader.load(file)
    file.close()
    if widget is None:
        raise RuntimeError(loader.errorString())
    return widget, QtCore, QtWidgets


def render(output: Path = OUTPUT) -> Path:
    widget, QtCore, QtWidgets = load_ui()
    find = lambda cls, name: widget.findChild(cls, name)  # noqa: E731
    find(QtWidgets.QPlainTextEdit, "dictationTextEdit").setPlainText(
        "Large extra-axial enhancing mass with a dural tail, consistent with meningioma. No glioma.")
    table = find(QtWidgets.QTableWidget, "findingsTable")
    rows = [("meningioma", "", "", "", "", "consistent with meningioma"), ("glioma", "yes", "", "", "", "No glioma")]
    table.setRowCount(len(rows))
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            table.setItem(row, column, QtWidgets.QTableWidgetItem(value))
    find(QtWidgets.QCheckBox, "meningiomaCheckBox").setChecked(True)
    find(QtWidgets.QLabel, "reviewMessageLabel").setText(
        "Affirmed: meningioma. Negated (not segmented): glioma.")
    for name in ("crossCheckLabel", "crossCheckConfirmCheckBox"):
        find(QtWidgets.QWidget, name).setVisible(False)
    find(QtWidgets.QLabel, "stageLabel").setText("meningioma: 31.4 mL")
    find(QtWidgets.QPlainTextEdit, "reportTextEdit").setPlainText("meningioma: volume 31.4 mL slices 58-97")
    find(QtWidgets.QLabel, "engineStatusLabel").setText("LoGSAM engine ready (version 0.1.0, port 40231).")
    widget.resize(520, widget.sizeHint().height())
    widget.show()
    QtWidgets.QApplication.instance().processEvents()
    output.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(output), "PNG"):
        raise OSError(f"cannot write {output}")
    return output


if __name__ == "__main__":
    print(render(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
