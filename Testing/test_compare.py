"""`logsam compare`: lesions matched by class and position across two reports of phantom pairs with
known growth (ellipsoids scaled about their centres, scanned in two different oblique grids)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from LoGSAMLib.cli import main
from LoGSAMLib.measurements import measure_lesions
from LoGSAMLib.outputs import write_report
from LoGSAMLib.report_line import report_lines
from LoGSAMLib.testing.ellipsoids import Ellipsoid, voxelise
from LoGSAMLib.testing.phantoms import oblique_direction

CLASSES = {1: "glioma", 2: "meningioma", 3: "pituitary"}
TILT = oblique_direction(20.0, "y")


def _lesions(scale_left: float, scale_right: float, new: bool, pituitary: bool) -> list[Ellipsoid]:
    found = [
        Ellipsoid((40.0, -10.0, 20.0), tuple(12.0 * scale_left * np.array([1.0, 0.8, 0.7])), TILT),
        Ellipsoid((-38.0, 5.0, 25.0), tuple(9.0 * scale_right * np.array([1.0, 0.9, 0.8])), TILT.T),
        Ellipsoid((5.0, -30.0, 30.0), (8.0, 7.0, 6.0), np.eye(3), label=2),
    ]
    if new:
        found.append(Ellipsoid((25.0, 40.0, 0.0), (4.0, 4.0, 4.0), np.eye(3)))
    if pituitary:
        found.append(Ellipsoid((0.0, 10.0, -10.0), (5.0, 4.0, 4.0), np.eye(3), label=3))
    return found


def _report(ellipsoids, direction, spacing, path):
    size = np.array([130.0, 120.0, 80.0])  # mm, around (0, 0, 17)
    shape_ijk = np.ceil(size / np.array(spacing)).astype(int)
    origin = np.array([0.0, 0.0, 17.0]) - direction @ (np.array(spacing) * (shape_ijk - 1) / 2)
    seg = voxelise(ellipsoids, tuple(shape_ijk[::-1]), spacing, direction, tuple(origin), CLASSES)
    lesions = measure_lesions(seg, midline_x=0.0)
    write_report({"lesions": lesions, "report_lines": report_lines(lesions)}, path)
    return lesions


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("followup")
    prior = _report(_lesions(1.0, 1.0, new=False, pituitary=True),
                    oblique_direction(12.0, "x"), (0.9, 1.1, 2.0), folder / "prior.json")
    # Left lesion shrinks to 0.8x, right grows 1.5x (so the two gliomas swap ids), one new glioma,
    # the pituitary lesion is gone; another grid.
    current = _report(_lesions(0.8, 1.5, new=True, pituitary=False),
                      oblique_direction(-8.0, "z") @ oblique_direction(5.0, "x"), (1.0, 0.8, 2.5),
                      folder / "current.json")
    return folder, prior, current


def test_compare_matches_by_class_and_position_and_measures_known_growth(reports, capsys):
    folder, prior, current = reports
    assert [x["id"] for x in prior if x["class"] == "glioma"] == ["glioma 1", "glioma 2"]
    code = main(["compare", str(folder / "prior.json"), str(folder / "current.json"), "--json",
                 "-o", str(folder / "change.json")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((folder / "change.json").read_text())
    rows = {(r["prior_id"], r["current_id"]): r for r in printed["lesions"]}

    # The left glioma (prior "glioma 1") is now the smaller one, "glioma 2": matched by position.
    left = rows[("glioma 1", "glioma 2")]
    right = rows[("glioma 2", "glioma 1")]
    assert left["status"] == right["status"] == "matched" and left["side"] == "left" and right["side"] == "right"
    # Volumes are measured within 2 %, so each ratio is within ~4 % of the scale cubed.
    assert left["relative_change_volume_ml"] == pytest.approx(0.8 ** 3 - 1, abs=0.04)
    assert right["relative_change_volume_ml"] == pytest.approx(1.5 ** 3 - 1, abs=0.04 * 1.5 ** 3)
    # The largest axial section scales with the square of the scale; diameters are within a voxel.
    assert left["relative_change_product_mm2"] == pytest.approx(0.8 ** 2 - 1, abs=0.12)
    assert right["relative_change_product_mm2"] == pytest.approx(1.5 ** 2 - 1, abs=0.12 * 1.5 ** 2)
    assert left["change_volume_ml"] == pytest.approx(left["current_volume_ml"] - left["prior_volume_ml"])

    unchanged = rows[("meningioma 1", "meningioma 1")]
    assert abs(unchanged["relative_change_volume_ml"]) < 0.04 and abs(unchanged["relative_change_product_mm2"]) < 0.12
    assert rows[(None, "glioma 3")]["status"] == "new"
    assert rows[("pituitary 1", None)]["status"] == "not found"
    assert len(rows) == 5


def test_compare_prints_a_line_per_lesion(reports, capsys):
    folder, _, _ = reports
    assert main(["compare", str(folder / "prior.json"), str(folder / "current.json")]) == 0
    out = capsys.readouterr().out
    assert "glioma 2" in out and "(prior glioma 1)" in out and "new" in out and "not found" in out
    assert "%" in out and "mm²" in out


def test_compare_refuses_files_that_are_not_reports(tmp_path, capsys, reports):
    folder, _, _ = reports
    (tmp_path / "notes.json").write_text("not json")
    (tmp_path / "old.json").write_text(json.dumps({"lesions": {"glioma": []}}))
    for bad, message in (("notes.json", "not JSON"), ("old.json", "no per-lesion measurements"),
                         ("missing.json", "No such report")):
        assert main(["compare", str(tmp_path / bad), str(folder / "current.json")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
