"""MNI152 phantoms: geometry as requested, masks where they belong, sides, looks, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from LoGSAMLib.outputs import CLASS_LABELS
from LoGSAMLib.testing.phantoms import (
    LesionSpec,
    make_phantom,
    mni_brain_mask,
    mni_template,
    oblique_direction,
    write_phantom,
)
from LoGSAMLib.volume import from_sitk, read_volume

GLIOMA, MENINGIOMA, PITUITARY = (CLASS_LABELS[k] for k in ("glioma", "meningioma", "pituitary"))
SPECS = [
    LesionSpec("glioma", 12.0, "left", "frontal"),
    LesionSpec("meningioma", 12.0, "right", "parietal"),
    LesionSpec("pituitary", 8.0),
]


def _world(volume, mask) -> np.ndarray:
    """LPS coordinates (3, n) of the voxels of a mask."""
    k, j, i = np.nonzero(mask)
    matrix = volume.ijk_to_lps_matrix()
    return matrix[:3, :3] @ np.array([i, j, k], float) + matrix[:3, 3:4]


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(SPECS, spacing=(1.5, 1.5, 1.5), seed=7)


def test_template_comes_from_nilearn():
    t1, brain = mni_template(), mni_brain_mask()
    assert t1.array.shape == (189, 233, 197) and t1.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(t1.direction, np.diag([-1.0, -1.0, 1.0]))
    assert brain.same_geometry(t1) and set(np.unique(brain.array)) == {0, 1}
    assert 1.2e6 < brain.array.sum() < 2.5e6  # a brain is 1.2-2 litres at 1 mm


def test_geometry_is_exactly_as_requested():
    direction = oblique_direction(25.0, "x") @ oblique_direction(15.0, "z") @ np.diag([1.0, -1.0, 1.0])
    spacing, size = (1.7, 2.1, 3.3), (90, 80, 55)
    # a field of view centred near the left parietal lobe, with an arbitrary origin
    centre = np.array([30.0, 50.0, 42.0]) - direction @ (np.array(spacing) * (np.array(size) - 1) / 2)
    origin = tuple(float(v) for v in np.round(centre, 2) + 0.37)
    ph = make_phantom([LesionSpec("glioma", 10.0, "left", "parietal")], spacing=spacing, direction=direction,
                      origin=origin, size=size, seed=1)
    for volume in (ph.volume, ph.mask, ph.brain, ph.head, ph.instances):
        assert volume.shape_ijk == size
        assert volume.spacing == spacing and volume.origin == origin
        np.testing.assert_array_equal(volume.direction, direction)
    assert ph.volume.array.dtype == np.int16 and ph.mask.array.dtype == np.uint8
    assert (ph.mask.array == GLIOMA).sum() > 50


def test_default_grid_covers_the_head(phantom):
    head = phantom.head.array.astype(bool)
    assert head.sum() > 0.25 * head.size
    for axis in range(3):  # no head voxel on the border: nothing cut off
        assert not np.take(head, 0, axis).any() and not np.take(head, -1, axis).any()


def test_masks_lie_where_they_belong(phantom):
    mask, brain, head = phantom.mask.array, phantom.brain.array.astype(bool), phantom.head.array.astype(bool)
    assert set(np.unique(mask)) == {0, GLIOMA, MENINGIOMA, PITUITARY}
    assert not (mask[~head]).any()  # everything inside the head
    assert brain[mask == GLIOMA].all()  # the glioma is intra-axial
    meningioma = mask == MENINGIOMA
    assert 0.05 < (~brain[meningioma]).mean() < 0.95  # extra-axial: between the skull and the brain
    assert (~brain[mask == PITUITARY]).mean() > 0.5  # under the brain, in the sella


def test_lesions_sit_on_the_requested_side(phantom):
    for lesion in phantom.lesions:
        x = _world(phantom.volume, phantom.instances.array == lesion.instance)[0]
        if lesion.kind == "glioma":
            assert lesion.side == "left" and lesion.center_lps[0] > 10 and (x > 0).all()
        elif lesion.kind == "meningioma":
            assert lesion.side == "right" and lesion.center_lps[0] < -10 and (x < 0).all()
        else:
            assert lesion.side is None and abs(x.mean()) < 1.5


@pytest.mark.parametrize("flip", [(1, 1, 1), (-1, 1, 1), (-1, -1, 1)])
def test_side_does_not_depend_on_the_grid(flip):
    direction = oblique_direction(20.0, "z") @ np.diag(np.asarray(flip, float))
    ph = make_phantom([LesionSpec("glioma", 10.0, "left", "temporal")], spacing=(2.0, 2.0, 2.0),
                      direction=direction, seed=2)
    x = _world(ph.volume, ph.mask.array == GLIOMA)[0]
    assert x.size > 100 and (x > 0).all()


def test_lesions_are_sized_as_requested(phantom):
    glioma = next(lesion for lesion in phantom.lesions if lesion.kind == "glioma")
    sphere_ml = 4 / 3 * np.pi * glioma.radius_mm**3 / 1000
    assert glioma.volume_ml == pytest.approx(sphere_ml, rel=0.2)
    assert glioma.voxels == int((phantom.instances.array == glioma.instance).sum())
    meningioma = next(lesion for lesion in phantom.lesions if lesion.kind == "meningioma")
    assert 0.4 * sphere_ml < meningioma.volume_ml < sphere_ml  # a dome on the dura
    big = make_phantom([LesionSpec("glioma", 18.0, "left", "frontal")], spacing=(2.0, 2.0, 2.0), seed=7)
    assert big.lesions[0].volume_ml > 2.5 * glioma.volume_ml


def test_deterministic_by_seed():
    a = make_phantom(SPECS[:1], spacing=(2.0, 2.0, 2.0), seed=11)
    b = make_phantom(SPECS[:1], spacing=(2.0, 2.0, 2.0), seed=11)
    c = make_phantom(SPECS[:1], spacing=(2.0, 2.0, 2.0), seed=12)
    np.testing.assert_array_equal(a.volume.array, b.volume.array)
    np.testing.assert_array_equal(a.mask.array, b.mask.array)
    assert not np.array_equal(a.volume.array, c.volume.array)
    assert not np.array_equal(a.mask.array, c.mask.array)  # the glioma's lobulation differs too


def test_each_kind_looks_like_itself():
    specs = [LesionSpec("glioma", 14.0, "left", "frontal"), LesionSpec("meningioma", 12.0, "right", "frontal"),
             LesionSpec("pituitary", 8.0)]
    ph = make_phantom(specs, spacing=(1.5, 1.5, 1.5), seed=3, noise=0.0)
    plain = make_phantom([], spacing=(1.5, 1.5, 1.5), seed=3, noise=0.0)
    image, reference = ph.volume.array.astype(float), plain.volume.array.astype(float)
    white_matter = ph.info["white_matter"]
    glioma, meningioma, pituitary = ph.lesions
    d = np.linalg.norm(_world(ph.volume, np.ones(image.shape, bool)) - glioma.center_lps[:, None], axis=0)
    d = d.reshape(image.shape) / glioma.radius_mm
    in_glioma = ph.instances.array == glioma.instance
    core = image[in_glioma & (d < 0.25)].mean()
    rim = image[in_glioma & (d > 0.6) & (d < 0.9)].mean()
    assert rim > 1.15 * white_matter and core < 0.9 * white_matter  # enhancing rim, necrotic core
    assert rim > 1.25 * core
    shell = (d > 1.15) & (d < 1.4) & ph.brain.array.astype(bool) & (ph.mask.array == 0)
    assert image[shell].mean() < 0.9 * reference[shell].mean()  # oedema darkens the brain around it
    for lesion in (meningioma, pituitary):  # away from the partial-volume border
        values = image[ndimage.binary_erosion(ph.instances.array == lesion.instance)]
        assert values.mean() > 1.1 * white_matter
        assert values.std() / values.mean() < 0.1  # homogeneous
    assert image[ph.instances.array == meningioma.instance].mean() > image[
        ph.instances.array == pituitary.instance].mean()


def test_write_phantom_round_trip(tmp_path):
    ph = make_phantom(SPECS[:1], spacing=(2.0, 2.0, 2.0), direction=oblique_direction(20, "y"), seed=4)
    for fmt in (".nii.gz", ".nrrd"):
        image_path, mask_path = write_phantom(ph, tmp_path, fmt)
        image = read_volume(image_path)  # a plausible MRI for the reader's checks
        np.testing.assert_array_equal(image.array, ph.volume.array)
        assert image.same_geometry(ph.volume, tol=1e-4)
        mask = from_sitk(sitk.ReadImage(str(mask_path)))
        np.testing.assert_array_equal(mask.array, ph.mask.array)
        assert mask.same_geometry(ph.volume, tol=1e-4)


def test_lesion_spec_validation():
    with pytest.raises(ValueError):
        LesionSpec("metastasis")
    with pytest.raises(ValueError):
        LesionSpec("glioma", side="up")
    with pytest.raises(ValueError):
        LesionSpec("glioma", region="nose")
    centred = make_phantom([LesionSpec("glioma", 8.0, center_lps=(-30.0, -10.0, 20.0))], spacing=(2, 2, 2))
    assert centred.lesions[0].side == "right"
    np.testing.assert_allclose(centred.lesions[0].center_lps, (-30.0, -10.0, 20.0))
