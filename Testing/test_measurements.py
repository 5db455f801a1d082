"""Per-lesion measurements against analytic ellipsoids in oblique, anisotropic grids."""

from __future__ import annotations

import numpy as np
import pytest

from LoGSAMLib.measurements import measure_lesions
from LoGSAMLib.report_line import dictation_language, report_lines
from LoGSAMLib.testing.ellipsoids import Ellipsoid, voxelise
from LoGSAMLib.testing.phantoms import oblique_direction
from LoGSAMLib.types import Finding, Findings, Segmentation, Volume

GRIDS = {
    # direction, spacing (i, j, k) mm
    "oblique-anisotropic": (oblique_direction(18.0, "x") @ oblique_direction(24.0, "z"), (0.9, 1.2, 2.0)),
    "flipped-nonsquare": (oblique_direction(-12.0, "y", flip=(-1, 1, 1)), (0.7, 1.3, 1.6)),
}


def _grid_for(ellipsoid: Ellipsoid, direction: np.ndarray, spacing, margin: float = 6.0):
    """A grid (shape, origin) that holds the ellipsoid with a margin, in the given orientation."""
    reach = max(ellipsoid.semi_axes) + margin
    size = [int(np.ceil(2 * reach / s)) + 1 for s in spacing]  # i, j, k
    centre_index = (np.array(size) - 1) / 2.0
    origin = np.asarray(ellipsoid.centre_lps) - direction @ (np.asarray(spacing) * centre_index)
    return (size[2], size[1], size[0]), tuple(origin)


def _random_ellipsoid(seed: int) -> Ellipsoid:
    """Semi-axes 6-20 mm, any orientation, left of the midline (x > 10 mm)."""
    rng = np.random.default_rng(seed)
    rotation = oblique_direction(rng.uniform(0, 180), "y") @ oblique_direction(rng.uniform(0, 180), "z")
    centre = (rng.uniform(30, 50), rng.uniform(-30, 30), rng.uniform(-20, 40))
    return Ellipsoid(centre, tuple(rng.uniform(6, 20, 3)), rotation)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_ellipsoid_measurements_match_the_analytic_values(grid, seed):
    direction, spacing = GRIDS[grid]
    ellipsoid = _random_ellipsoid(seed)
    shape, origin = _grid_for(ellipsoid, direction, spacing)
    seg = voxelise([ellipsoid], shape, spacing, direction, origin)
    [lesion] = measure_lesions(seg, midline_x=0.0)

    assert lesion["id"] == "glioma 1" and lesion["class"] == "glioma" and lesion["side"] == "left"
    assert lesion["volume_ml"] == pytest.approx(ellipsoid.volume_ml, rel=0.02)
    np.testing.assert_allclose(lesion["centroid_lps"], ellipsoid.centre_lps, atol=0.25)

    # The measured slice's plane, cut analytically: diameters within one in-plane pixel.
    steps = seg.labelmap.ijk_to_lps_matrix()[:3, :3]
    axis = lesion["slicing_axis"]
    assert axis == 0  # these grids are closest to axial along k
    pixel = max(spacing[0], spacing[1])
    u, v = direction[:, 0], direction[:, 1]

    def section(k: int) -> tuple[float, float]:
        point = np.asarray(origin) + steps[:, 2] * k
        return ellipsoid.section(point, u, v)

    major, minor = section(lesion["axial_slice"])
    assert abs(lesion["diameter_long_mm"] - major) <= pixel
    assert abs(lesion["diameter_perpendicular_mm"] - minor) <= pixel
    assert lesion["bidimensional_product_mm2"] == pytest.approx(
        lesion["diameter_long_mm"] * lesion["diameter_perpendicular_mm"])
    # ... and it is the slice with (within a pixel) the longest analytic diameter.
    assert major >= max(section(k)[0] for k in range(shape[0])) - pixel
    first, last = lesion["slices"]
    assert first <= lesion["axial_slice"] <= last

    for key, axis_vector in (("lr", (1, 0, 0)), ("ap", (0, 1, 0)), ("si", (0, 0, 1))):
        e = np.asarray(axis_vector, dtype=float)
        voxel_width = float(np.abs(e @ steps).sum())
        assert abs(lesion[f"extent_{key}_mm"] - ellipsoid.extent(e)) <= voxel_width, key


def test_each_connected_piece_is_a_lesion_with_its_own_side():
    direction, spacing = GRIDS["flipped-nonsquare"]
    small = Ellipsoid((-40.0, 5.0, 10.0), (6.0, 5.0, 4.0), np.eye(3))
    big = Ellipsoid((35.0, 0.0, 12.0), (10.0, 8.0, 7.0), np.eye(3))
    meningioma = Ellipsoid((2.0, -30.0, 30.0), (7.0, 7.0, 7.0), np.eye(3), label=2)
    shape = (int(60 / spacing[2]), int(80 / spacing[1]), int(110 / spacing[0]))
    centre = np.array([0.0, -12.0, 20.0])
    origin = tuple(float(x) for x in centre - direction @ (np.array(spacing) * np.array(shape[::-1]) / 2))
    seg = voxelise([small, big, meningioma], shape, spacing, direction, origin,
                   classes={1: "glioma", 2: "meningioma"})
    lesions = measure_lesions(seg, midline_x=0.0)

    assert [x["id"] for x in lesions] == ["glioma 1", "glioma 2", "meningioma 1"]
    by_id = {x["id"]: x for x in lesions}
    assert by_id["glioma 1"]["side"] == "left" and by_id["glioma 2"]["side"] == "right"
    assert by_id["meningioma 1"]["side"] == "midline"
    for lesion, truth in ((by_id["glioma 1"], big), (by_id["glioma 2"], small), (by_id["meningioma 1"], meningioma)):
        assert lesion["volume_ml"] == pytest.approx(truth.volume_ml, rel=0.05)
        np.testing.assert_allclose(lesion["centroid_lps"], truth.centre_lps, atol=0.5)
    # Only the classes asked for, in that order.
    assert [x["id"] for x in measure_lesions(seg, classes=["meningioma"], midline_x=0.0)] == ["meningioma 1"]


def test_a_bar_of_pixels_measures_edge_to_edge():
    array = np.zeros((3, 6, 20), dtype=np.uint8)
    array[1, 2, 3:13] = 1  # ten pixels in one row: 10 x 0.5 mm long, one 2 mm pixel wide
    seg = Segmentation(Volume(array, (0.5, 2.0, 3.0), (0.0, 0.0, 0.0), np.eye(3)), {1: "glioma"})
    [lesion] = measure_lesions(seg)
    assert lesion["diameter_long_mm"] == pytest.approx(5.0)
    assert lesion["diameter_perpendicular_mm"] == pytest.approx(2.0)
    assert lesion["bidimensional_product_mm2"] == pytest.approx(10.0)
    assert lesion["axial_slice"] == 1 and lesion["slices"] == [1, 1]
    assert lesion["volume_ml"] == pytest.approx(10 * 0.5 * 2.0 * 3.0 / 1000.0)
    assert [lesion["extent_lr_mm"], lesion["extent_ap_mm"], lesion["extent_si_mm"]] == pytest.approx([5.0, 2.0, 3.0])


def test_a_single_slice_image_and_an_empty_class():
    array = np.zeros((1, 30, 30), dtype=np.uint8)
    rr, cc = np.mgrid[:30, :30]
    array[0][(rr - 15) ** 2 + (cc - 14) ** 2 <= 70] = 3  # a disc of radius sqrt(70) px at 0.5 mm
    seg = Segmentation(Volume(array, (0.5, 0.5, 5.0), (0.0, 0.0, 0.0), np.eye(3)), {1: "glioma", 3: "pituitary"})
    [lesion] = measure_lesions(seg)
    assert lesion["id"] == "pituitary 1" and lesion["axial_slice"] == 0
    diameter = 2 * np.sqrt(70) * 0.5
    assert abs(lesion["diameter_long_mm"] - diameter) <= 0.5
    assert abs(lesion["diameter_perpendicular_mm"] - diameter) <= 0.5


# ------------------------------------------------------------------------------ report lines


def _lesion(cls="glioma", side="left", long=34.2, short=27.6, slice_=82, volume=14.23, n=1):
    return {"id": f"{cls} {n}", "class": cls, "side": side, "diameter_long_mm": long,
            "diameter_perpendicular_mm": short, "axial_slice": slice_, "volume_ml": volume}


def _findings():
    return Findings(
        text="Left frontal glioma. No meningioma.",
        findings=[Finding("glioma", "glioma", 13, 19, side="left", region="frontal"),
                  Finding("meningioma", "meningioma", 24, 34, negated=True, region="convexity")],
        affirmed=["glioma"], negated=["meningioma"])


def test_report_line_in_english_and_german_states_the_measurements():
    lesions = [_lesion(), _lesion("meningioma", "right", 12.0, 9.04, 40, 0.456)]
    assert report_lines(lesions, _findings()) == [
        "Left frontal glioma, 34 × 28 mm (axial, slice 82), volume 14.2 mL."]  # the negated class: no line
    assert report_lines(lesions, _findings(), language="de") == [
        "Gliom links frontal, 34 × 28 mm (axial, Schicht 82), Volumen 14,2 ml."]
    # Without findings (classes chosen by hand) every lesion gets a line; no region is invented.
    assert report_lines(lesions) == [
        "Left glioma, 34 × 28 mm (axial, slice 82), volume 14.2 mL.",
        "Right meningioma, 12 × 9.0 mm (axial, slice 40), volume 0.46 mL."]
    assert report_lines(lesions[1:], language="de") == [
        "Meningeom rechts, 12 × 9,0 mm (axial, Schicht 40), Volumen 0,46 ml."]


def test_report_lines_number_several_lesions_of_a_class_and_drop_an_ambiguous_region():
    lesions = [_lesion(), _lesion(side="right", long=20.0, short=15.0, slice_=60, volume=3.0, n=2)]
    assert report_lines(lesions, _findings()) == [
        "Left glioma (1 of 2), 34 × 28 mm (axial, slice 82), volume 14.2 mL.",
        "Right glioma (2 of 2), 20 × 15 mm (axial, slice 60), volume 3.0 mL."]
    assert report_lines(lesions, _findings(), "de")[1] == \
        "Gliom rechts (2 von 2), 20 × 15 mm (axial, Schicht 60), Volumen 3,0 ml."


def test_the_dictation_language_comes_from_the_transcript():
    assert dictation_language({"transcript": {"language": "de"}, "findings": {}}) == "de"
    assert dictation_language({"transcript": {"language": "en"}}) == "en"
    assert dictation_language({"transcript": None, "findings": {"text": "x"}}) == "en"


def test_report_lines_from_measured_lesions():
    direction, spacing = GRIDS["oblique-anisotropic"]
    ellipsoid = _random_ellipsoid(4)
    shape, origin = _grid_for(ellipsoid, direction, spacing)
    lesions = measure_lesions(voxelise([ellipsoid], shape, spacing, direction, origin), midline_x=0.0)
    [line] = report_lines(lesions, _findings())
    long, short = (round(lesions[0][k]) for k in ("diameter_long_mm", "diameter_perpendicular_mm"))
    assert line == (f"Left frontal glioma, {long} × {short} mm (axial, slice {lesions[0]['axial_slice']}), "
                    f"volume {lesions[0]['volume_ml']:.1f} mL.")
