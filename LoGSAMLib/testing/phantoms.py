"""MRI phantoms: the MNI152 brain that nilearn ships, a synthetic head around it, planted tumours.

Everything lives in one world frame, MNI space in LPS millimetres (``+x`` = patient's left).
:func:`make_phantom` resamples the template into any requested grid (spacing, origin, size,
direction cosines, oblique or flipped) with SimpleITK and plants lesions with class-like looks:

- **glioma**: intra-axial, irregular; a bright enhancing rim around a dark necrotic core, with
  darker oedema around it; the ground truth (rim + core) stays inside the brain mask.
- **meningioma**: extra-axial, homogeneous and bright, with a broad flat base on the dura
  (convexity or falx), growing inward; the ground truth stays inside the skull.
- **pituitary**: bright and homogeneous at the sella turcica, on the midline.

Only the template files bundled inside the nilearn package are read; nothing is downloaded.
The skull-stripped template gets a simple head around it (CSF, a dark skull, bright scalp)
built from a signed distance to the brain, so masks "inside the head" mean something.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import LoGSAMError
from ..outputs import CLASS_LABELS
from ..types import Segmentation, Volume

T1_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"

# Layers of the synthetic head, by signed distance to the brain surface (mm, + outside).
_CSF_MM, _SKULL_MM, _HEAD_MM = 4.0, 9.0, 14.0
_CSF, _SKULL, _SCALP = 45.0, 18.0, 150.0  # template intensity units (white matter ~ 222)
_WM = 222.0
_OUTPUT_SCALE = 4.0  # template units -> stored int16 values (white matter ~ 890)
_BRAIN_LEVEL = 36.0  # half the darkest in-brain template value: the brain's partial-volume edge
# Glioma looks: the necrotic core's relative radius and how ragged its border is, intensities
# relative to white matter. A thick rim around a small, moderately dark core: with a thin rim
# around a dark core, box-prompted SAM models outline the core alone (LiteMedSAM Dice ~0.4-0.7
# on such slices, 0.95-0.99 with these values).
_GLIOMA_CORE, _GLIOMA_CORE_WOBBLE = 0.4, 0.1
_GLIOMA_CORE_LEVEL, _GLIOMA_RIM_LEVEL, _OEDEMA_DROP = 0.8, 1.25, 0.25

# Region centres (LPS mm) in the LEFT hemisphere; the right one mirrors x.
REGION_CENTRES: dict[str, tuple[float, float, float]] = {
    "frontal": (28.0, -30.0, 30.0),
    "parietal": (30.0, 50.0, 42.0),
    "temporal": (44.0, 18.0, -12.0),
    "occipital": (24.0, 82.0, 10.0),
    "cerebellar": (24.0, 62.0, -34.0),
    "falx": (0.0, 10.0, 45.0),
    "sella": (0.0, 0.0, -30.0),
}
REGIONS = tuple(REGION_CENTRES)
_BRAIN_CENTRE = np.array([0.0, 18.0, 15.0])
_SELLA_POCKET = np.array([8.0, 8.0, 7.0])  # radii of the sella turcica (mm)
_DEFAULT_REGIONS = {
    "glioma": ("frontal", "parietal", "temporal"),
    "meningioma": ("frontal", "parietal", "falx"),
    "pituitary": ("sella",),
}


@dataclass(frozen=True)
class LesionSpec:
    """What to plant. ``region`` and ``side`` place it (random by seed when None);
    ``center_lps`` (mm) overrides both. ``radius_mm`` is the mean radius."""

    kind: str = "glioma"
    radius_mm: float = 12.0
    side: str | None = None
    region: str | None = None
    center_lps: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in CLASS_LABELS:
            raise ValueError(f"kind must be one of {sorted(CLASS_LABELS)}, not {self.kind!r}")
        if self.side not in (None, "left", "right"):
            raise ValueError(f"side must be 'left', 'right' or None, not {self.side!r}")
        if self.region is not None and self.region not in REGION_CENTRES:
            raise ValueError(f"region must be one of {REGIONS} or None, not {self.region!r}")
        if not self.radius_mm > 0:
            raise ValueError("radius_mm must be positive")


@dataclass
class PlantedLesion:
    kind: str
    label: int  # class value in Phantom.mask (CLASS_LABELS)
    instance: int  # value in Phantom.instances (1, 2, ...)
    center_lps: np.ndarray
    radius_mm: float
    side: str | None  # "left" | "right" | None (midline)
    region: str | None
    voxels: int = 0
    volume_ml: float = 0.0


@dataclass
class Phantom:
    volume: Volume  # int16 T1-like image
    mask: Volume  # uint8 ground truth, CLASS_LABELS values
    lesions: list[PlantedLesion]
    brain: Volume  # uint8 0/1, the template's brain
    head: Volume  # uint8 0/1, brain + CSF + skull + scalp
    instances: Volume  # uint8, one value per planted lesion (PlantedLesion.instance)
    seed: int = 0
    info: dict = field(default_factory=dict)

    def segmentation(self) -> Segmentation:
        kinds = {lesion.kind for lesion in self.lesions}
        return Segmentation(self.mask, {CLASS_LABELS[k]: k for k in sorted(kinds)})


# ---------------------------------------------------------------------------------- template


def _nilearn_data_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise LoGSAMError("The MNI152 phantoms need the nilearn package: pip install nilearn")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@functools.lru_cache(maxsize=1)
def _template_t1() -> sitk.Image:
    path = _nilearn_data_dir() / T1_FILE
    if not path.exists():
        raise LoGSAMError(f"{path} is missing; reinstall nilearn (it ships the MNI152 template).")
    return sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32)


def mni_template() -> Volume:
    """The MNI152 2009a T1 template (1 mm, skull-stripped, 0 outside the brain) from nilearn."""
    from ..volume import from_sitk

    return from_sitk(_template_t1())


def mni_brain_mask() -> Volume:
    """The template's brain mask (uint8 0/1): every voxel with signal in the skull-stripped T1."""
    t1 = mni_template()
    return t1.with_array((t1.array > 0).astype(np.uint8))


@functools.lru_cache(maxsize=1)
def _brain_distance() -> sitk.Image:
    """Signed distance to the brain surface (mm, + outside) on a padded 2 mm grid."""
    t1 = _template_t1()
    pad = _HEAD_MM + 12.0
    spacing = 2.0
    extent = np.array(t1.GetSize()) * np.array(t1.GetSpacing()) + 2 * pad
    size = [int(np.ceil(e / spacing)) for e in extent]
    direction = np.array(t1.GetDirection()).reshape(3, 3)
    origin = np.array(t1.GetOrigin()) - direction @ np.full(3, pad)
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing((spacing,) * 3)
    reference.SetOrigin(tuple(origin))
    reference.SetDirection(t1.GetDirection())
    brain = sitk.Resample(sitk.Cast(t1 > 0, sitk.sitkFloat32), reference, sitk.Transform(), sitk.sitkLinear, 0.0)
    inside = sitk.GetArrayFromImage(brain) >= 0.5
    distance = (ndimage.distance_transform_edt(~inside, sampling=spacing)
                - ndimage.distance_transform_edt(inside, sampling=spacing))
    image = sitk.GetImageFromArray(distance.astype(np.float32))
    image.CopyInformation(reference)
    return image


def _sample(image: sitk.Image, points_lps: np.ndarray, outside: float) -> np.ndarray:
    """Trilinear samples of ``image`` at LPS points (n, 3)."""
    direction = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    ijk = np.linalg.solve(direction, (np.atleast_2d(points_lps) - np.array(image.GetOrigin())).T)
    array = sitk.GetArrayViewFromImage(image)
    return ndimage.map_coordinates(array, ijk[::-1], order=1, mode="constant", cval=outside)


@functools.lru_cache(maxsize=1)
def _head_box() -> tuple[np.ndarray, np.ndarray]:
    """The LPS bounding box of the synthetic head."""
    image = _brain_distance()
    k, j, i = np.nonzero(sitk.GetArrayViewFromImage(image) <= _HEAD_MM)
    direction = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    lps = direction @ np.array([i, j, k], dtype=float) + np.array(image.GetOrigin())[:, None]
    return lps.min(axis=1), lps.max(axis=1)


# ---------------------------------------------------------------------------------- geometry


def _grid_geometry(spacing, direction, origin, size) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    spacing = np.asarray(spacing, dtype=float).reshape(3)
    if np.any(spacing <= 0):
        raise ValueError("spacing must be positive")
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float).reshape(3, 3)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise ValueError("direction must be orthonormal (columns = i, j, k axis directions)")
    low, high = _head_box()
    if size is None:
        corners = np.array([[(low, high)[u][0], (low, high)[v][1], (low, high)[w][2]]
                            for u in (0, 1) for v in (0, 1) for w in (0, 1)])
        along = corners @ direction  # head extent along each grid axis
        size = [int(np.ceil((along[:, a].max() - along[:, a].min()) / spacing[a])) + 1 for a in range(3)]
    size = [int(s) for s in size]
    if origin is None:  # centre the grid on the head
        origin = (low + high) / 2 - direction @ (spacing * (np.array(size) - 1) / 2)
    return spacing, direction, np.asarray(origin, dtype=float).reshape(3), size


def _reference(spacing, direction, origin, size) -> sitk.Image:
    image = sitk.Image(size, sitk.sitkFloat32)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    image.SetDirection(tuple(float(d) for d in direction.reshape(-1)))
    return image


class _Grid:
    """The output grid: index blocks around world points and their LPS coordinates."""

    def __init__(self, spacing: np.ndarray, direction: np.ndarray, origin: np.ndarray, size: list[int]):
        self.matrix = direction * spacing  # ijk steps in LPS
        self.origin = origin
        self.shape_kji = (size[2], size[1], size[0])

    def block(self, centre: np.ndarray, half_mm: float) -> tuple[slice, slice, slice] | None:
        """Array slices [k, j, i] covering a world cube of half side ``half_mm`` (None if outside)."""
        offsets = np.array([[u, v, w] for u in (-1, 1) for v in (-1, 1) for w in (-1, 1)]) * half_mm
        ijk = np.linalg.solve(self.matrix, (centre + offsets - self.origin).T)
        lo, hi = np.floor(ijk.min(axis=1)).astype(int), np.ceil(ijk.max(axis=1)).astype(int)
        slices = []
        for axis_ijk in (2, 1, 0):
            n = self.shape_kji[2 - axis_ijk]
            a, b = max(lo[axis_ijk], 0), min(hi[axis_ijk] + 1, n)
            if a >= b:
                return None
            slices.append(slice(a, b))
        return tuple(slices)  # type: ignore[return-value]

    def points(self, block: tuple[slice, slice, slice]) -> np.ndarray:
        """LPS coordinates of a block's voxel centres, shape (3, nk, nj, ni)."""
        k, j, i = np.meshgrid(*(np.arange(s.start, s.stop) for s in block), indexing="ij")
        ijk = np.stack([i, j, k]).reshape(3, -1).astype(np.float64)
        return (self.matrix @ ijk + self.origin[:, None]).reshape((3, *k.shape))


# ------------------------------------------------------------------------------- placement


def _resolve(spec: LesionSpec, rng: np.random.Generator) -> tuple[np.ndarray, str | None, str | None]:
    """World centre, side and region of a lesion."""
    if spec.center_lps is not None:
        centre = np.asarray(spec.center_lps, dtype=float).reshape(3)
        side = None if abs(centre[0]) < 1.0 else ("left" if centre[0] > 0 else "right")
        return centre, side, spec.region
    region = spec.region or str(rng.choice(_DEFAULT_REGIONS[spec.kind]))
    side = None if region == "sella" else spec.side or str(rng.choice(["left", "right"]))
    sign = 1.0 if side == "left" else -1.0
    anchor = np.array(REGION_CENTRES[region]) * np.array([sign, 1.0, 1.0])
    r = spec.radius_mm
    distance = _brain_distance()
    if region == "sella":
        return anchor, None, region
    if region == "falx":  # the flat base lies on the falx (x = 0), the body in one hemisphere
        return anchor + np.array([sign * 0.4 * r, 0.0, 0.0]), side, region
    if spec.kind == "meningioma":
        # Walk out from the brain centre through the region to the inner table of the skull.
        u = anchor - _BRAIN_CENTRE
        u /= np.linalg.norm(u)
        steps = np.arange(0.0, 120.0, 0.5)
        sdf = _sample(distance, _BRAIN_CENTRE + steps[:, None] * u, outside=1e3)
        dura = _BRAIN_CENTRE + steps[int(np.argmax(sdf > _CSF_MM))] * u
        return dura - 0.4 * r * u, side, region
    # Glioma: slide from the region towards the brain centre until the lesion fits in the brain.
    t = np.linspace(0.0, 1.0, 81)[:, None]
    path = anchor + t * (_BRAIN_CENTRE - anchor)
    depth = -_sample(distance, path, outside=1e3)
    fits = np.flatnonzero(depth >= 1.05 * r)
    return path[fits[0] if fits.size else int(np.argmax(depth))], side, region


def _radius_field(points: np.ndarray, centre: np.ndarray, spec: LesionSpec, rng: np.random.Generator):
    """Distance to the centre and the lesion's radius in each point's direction (mm)."""
    offset = points - centre[:, None, None, None]
    dist = np.sqrt((offset**2).sum(axis=0))
    if spec.kind == "pituitary":  # a little taller than wide, as adenomas grow upward
        scaled = offset / np.array([1.0, 1.0, 1.15])[:, None, None, None]
        return np.sqrt((scaled**2).sum(axis=0)), np.full(dist.shape, spec.radius_mm)
    if spec.kind == "meningioma":
        return dist, np.full(dist.shape, spec.radius_mm)
    # Glioma: lobulated by a few smooth bumps, normalised to the requested mean radius.
    bumps = rng.normal(size=(6, 3))
    bumps /= np.linalg.norm(bumps, axis=1, keepdims=True)
    amplitudes = rng.uniform(-0.25, 0.35, size=6)

    def shape(unit: np.ndarray) -> np.ndarray:
        cos = np.tensordot(bumps, unit, axes=(1, 0))
        return 1.0 + np.tensordot(amplitudes, np.exp((cos - 1.0) / 0.25), axes=(0, 0))

    probe = rng.normal(size=(3, 4000))
    mean = float(np.mean(shape(probe / np.linalg.norm(probe, axis=0)) ** 3)) ** (1 / 3)  # equal volume
    unit = offset / np.maximum(dist, 1e-9)
    return dist, spec.radius_mm * shape(unit) / mean


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float) -> np.ndarray:
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field_ / max(float(field_.std()), 1e-6)


# ----------------------------------------------------------------------------------- phantom


def make_phantom(
    lesions: LesionSpec | list[LesionSpec] | tuple[LesionSpec, ...] = (),
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    direction: np.ndarray | None = None,
    origin: tuple[float, float, float] | None = None,
    size: tuple[int, int, int] | None = None,
    seed: int = 0,
    noise: float = 0.02,
) -> Phantom:
    """A T1-like head volume in exactly the requested geometry, with planted lesions.

    ``direction`` columns are the i, j, k axes in LPS (default identity; oblique and flipped are
    fine). ``size`` defaults to the head's extent along each axis and ``origin`` to centring the
    grid on the head. ``noise`` is the Rician noise sigma relative to white matter. The same
    arguments and ``seed`` give the same phantom.
    """
    specs = [lesions] if isinstance(lesions, LesionSpec) else list(lesions)
    rng = np.random.default_rng(seed)
    spacing_, direction_, origin_, size_ = _grid_geometry(spacing, direction, origin, size)
    reference = _reference(spacing_, direction_, origin_, size_)
    grid = _Grid(spacing_, direction_, origin_, size_)

    t1 = sitk.GetArrayFromImage(sitk.Resample(_template_t1(), reference, sitk.Transform(), sitk.sitkLinear, 0.0))
    sdf = sitk.GetArrayFromImage(
        sitk.Resample(_brain_distance(), reference, sitk.Transform(), sitk.sitkLinear, 1e3)
    )
    brain = t1 >= _BRAIN_LEVEL
    # The sella turcica: a pocket of "intracranial" space under the brain, on the midline.
    pocket = grid.block(np.array(REGION_CENTRES["sella"]), float(_SELLA_POCKET.max()) + _HEAD_MM)
    if pocket is not None:
        rel = (grid.points(pocket) - np.array(REGION_CENTRES["sella"])[:, None, None, None])
        ellipsoid = np.sqrt(((rel / _SELLA_POCKET[:, None, None, None]) ** 2).sum(axis=0))
        sdf[pocket] = np.minimum(sdf[pocket], (ellipsoid - 1.0) * _SELLA_POCKET.min() + _CSF_MM)

    image = _head_layers(t1, sdf)
    intracranial = sdf <= _CSF_MM
    head = sdf <= _HEAD_MM
    mask = np.zeros(t1.shape, dtype=np.uint8)
    instances = np.zeros(t1.shape, dtype=np.uint8)
    voxel_ml = float(np.prod(spacing_)) / 1000.0
    planted: list[PlantedLesion] = []
    for number, spec in enumerate(specs, start=1):
        centre, side, region = _resolve(spec, rng)
        lesion = PlantedLesion(spec.kind, CLASS_LABELS[spec.kind], number, centre, spec.radius_mm, side, region)
        allowed = {"glioma": brain, "meningioma": intracranial, "pituitary": head}[spec.kind]
        if region == "falx":
            allowed = allowed & _hemisphere(grid, t1.shape, side)
        inside = _plant(image, grid, spec, lesion, allowed, rng)
        if inside is not None:
            block, hit = inside
            mask[block][hit] = lesion.label
            instances[block][hit] = number
        planted.append(lesion)
    counts = np.bincount(instances.ravel(), minlength=len(planted) + 1)
    for lesion in planted:
        lesion.voxels = int(counts[lesion.instance])
        lesion.volume_ml = lesion.voxels * voxel_ml

    if noise > 0:  # Rician magnitude noise, as in MR magnitude images (in place: big arrays)
        sigma = np.float32(noise * _WM)
        real = rng.standard_normal(image.shape, dtype=np.float32)
        real *= sigma
        real += image
        imag = rng.standard_normal(image.shape, dtype=np.float32)
        imag *= sigma
        image = np.hypot(real, imag, out=real)
    image *= np.float32(_OUTPUT_SCALE)
    np.rint(image, out=image)
    pixels = np.clip(image, 0, np.iinfo(np.int16).max, out=image).astype(np.int16)

    def as_volume(array: np.ndarray) -> Volume:
        return Volume(array, tuple(spacing_), tuple(origin_), direction_.copy())

    return Phantom(
        volume=as_volume(pixels),
        mask=as_volume(mask),
        lesions=planted,
        brain=as_volume(brain.astype(np.uint8)),
        head=as_volume(head.astype(np.uint8)),
        instances=as_volume(instances),
        seed=seed,
        info={"white_matter": _WM * _OUTPUT_SCALE},
    )


def _head_layers(t1: np.ndarray, sdf: np.ndarray) -> np.ndarray:
    """Brain from the template; CSF, skull and scalp shells from the distance to the brain."""
    # One piecewise-linear lookup of the distance, with soft 1 mm edges between the shells.
    edges = [_CSF_MM - 0.5, _CSF_MM + 0.5, _SKULL_MM - 0.5, _SKULL_MM + 0.5, _HEAD_MM - 0.5, _HEAD_MM + 0.5]
    values = [_CSF, _SKULL, _SKULL, _SCALP, _SCALP, 0.0]
    layers = np.zeros(sdf.shape, np.float32)
    # Deep in the brain the template is brighter than CSF, far outside it is 0: skip both.
    shell = (sdf > -2.0) & (sdf < edges[-1])
    layers[shell] = np.interp(sdf[shell], edges, values)
    return np.maximum(t1, layers, out=layers)


def _hemisphere(grid: _Grid, shape: tuple[int, ...], side: str | None) -> np.ndarray:
    """Voxels on the given side of the x = 0 plane (the falx)."""
    k, j, i = np.indices(shape, sparse=True)
    x = grid.matrix[0, 0] * i + grid.matrix[0, 1] * j + grid.matrix[0, 2] * k + grid.origin[0]
    return np.broadcast_to(x > 0.5 if side == "left" else x < -0.5, shape)


def _plant(image, grid, spec, lesion, allowed, rng):
    """Paint one lesion into ``image``; return (block, ground-truth mask in the block)."""
    reach = spec.radius_mm * (2.0 if spec.kind == "glioma" else 1.5) + 2.0
    block = grid.block(lesion.center_lps, reach)
    if block is None:
        return None
    points = grid.points(block)
    dist, radius = _radius_field(points, lesion.center_lps, spec, rng)
    region = allowed[block]
    voxel = float(np.abs(grid.matrix).sum(axis=0).mean())  # a typical voxel size, for soft edges
    edge = np.clip(0.5 + (radius - dist) / voxel, 0.0, 1.0) * region  # partial volume at the border
    rel = dist / radius
    texture = _smooth_noise(dist.shape, rng, sigma=max(1.0, 2.0 / voxel))
    patch = image[block]
    if spec.kind == "glioma":
        # Oedema: darker tissue up to 1.6 radii, fading out; inside the brain only.
        oedema = np.clip((1.6 - rel) / 0.6, 0.0, 1.0) * region
        patch *= 1.0 - _OEDEMA_DROP * oedema
        core_edge = _GLIOMA_CORE + _GLIOMA_CORE_WOBBLE * texture  # a ragged inner border
        core = np.clip((core_edge - rel) / 0.08 + 0.5, 0.0, 1.0)  # necrotic core inside the rim
        value = ((1.0 - core) * _GLIOMA_RIM_LEVEL * _WM * (1 + 0.05 * texture)
                 + core * _GLIOMA_CORE_LEVEL * _WM * (1 + 0.08 * texture))
    elif spec.kind == "meningioma":
        value = 1.30 * _WM * (1 + 0.025 * texture)
    else:
        value = 1.20 * _WM * (1 + 0.025 * texture)
    image[block] = patch * (1.0 - edge) + value * edge
    return block, (dist <= radius) & region


def write_phantom(
    phantom: Phantom, directory: str | Path, fmt: str = ".nii.gz", stem: str = "phantom"
) -> tuple[Path, Path]:
    """Write the image and its ground-truth label map (``<stem><fmt>``, ``<stem>_mask<fmt>``)."""
    from ..volume import write_volume

    directory = Path(directory)
    image_path = write_volume(phantom.volume, directory / f"{stem}{fmt}")
    mask_path = write_volume(phantom.mask, directory / f"{stem}_mask{fmt}")
    return image_path, mask_path


def oblique_direction(degrees: float, axis: str = "x", flip: tuple[int, int, int] = (1, 1, 1)) -> np.ndarray:
    """A rotation by ``degrees`` about a world axis, with optional axis flips (for test grids)."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    rotations = {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }
    return rotations[axis] @ np.diag(np.asarray(flip, dtype=float))


def main(argv: list[str] | None = None) -> int:
    """``python -m LoGSAMLib.testing.phantoms DIR [--kind K --side S --region R ...]``"""
    import argparse

    parser = argparse.ArgumentParser(description="Write an MNI152 phantom with a planted tumour.")
    parser.add_argument("directory")
    parser.add_argument("--kind", default="glioma", choices=sorted(CLASS_LABELS))
    parser.add_argument("--side", choices=["left", "right"])
    parser.add_argument("--region", choices=REGIONS)
    parser.add_argument("--radius", type=float, default=12.0)
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 1.0))
    parser.add_argument("--oblique", type=float, default=0.0, help="rotate the grid (degrees about x)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default=".nii.gz", choices=[".nii.gz", ".nii", ".nrrd", ".mha"])
    args = parser.parse_args(argv)
    spec = LesionSpec(args.kind, args.radius, args.side, args.region)
    phantom = make_phantom([spec], spacing=tuple(args.spacing), seed=args.seed,
                           direction=oblique_direction(args.oblique) if args.oblique else None)
    image, mask = write_phantom(phantom, args.directory, args.format)
    lesion = phantom.lesions[0]
    print(f"{image}\n{mask}\n{lesion.kind} {lesion.side or 'midline'} {lesion.region} "
          f"at LPS {np.round(lesion.center_lps, 1).tolist()}, {lesion.volume_ml:.1f} mL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
