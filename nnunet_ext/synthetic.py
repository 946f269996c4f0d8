"""Synthetic nnU-Net v2 raw datasets: the project's embedded default data.

Three kinds, each written as a complete raw dataset (``imagesTr``, ``labelsTr``, ``imagesTs``,
``labelsTs``, ``dataset.json``) that ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity``
accepts as it is:

- ``brats``: BraTS-like 3D MRI, four co-registered modalities (T1, T1ce, T2, FLAIR) as ``.nii.gz``
  with the spacing in the header, labels 1 edema / 2 non-enhancing or necrotic core / 3 enhancing
  and nnU-Net's BraTS regions (whole tumour, tumour core, enhancing tumour), exactly as nnU-Net's
  own BraTS conversion (``Dataset137_BraTS21``) defines them;
- ``binary``: the same kind of 3D head with one FLAIR-like channel and one lesion class, so that
  the label-based (softmax) path of nnU-Net is exercised;
- ``2d``: LGG-FLAIR-like axial slices (pre-contrast, FLAIR, post-contrast) as grayscale 8-bit
  ``.png`` files, read by nnU-Net's ``NaturalImage2DIO``; nnU-Net plans only its ``2d``
  configuration for them.

Why the images look the way they do: the methods this project implements (SiNGR, GeoLS, GSL, RRW)
are about boundaries, so boundaries must be genuinely uncertain. Every structure is an irregular
blob (a sphere whose radius is perturbed by smooth random fields at two scales), its intensity
ramps softly across the boundary (partial volume and infiltration) and is further blurred by a
point-spread function, the contrast differs per modality like real MRI (enhancing rim bright on
T1ce, edema bright on FLAIR/T2, core dark on T1), and every image carries a smooth multiplicative
bias field and Rician noise. Labels are the crisp ground truth (the 50 % level of each ramp).
Outside the brain the images are exactly zero, as in skull-stripped BraTS, so nnU-Net's
crop-to-nonzero applies.

Determinism: case ``k`` of a split draws everything from its own generator seeded with
``(seed, split, k)``, so the same seed gives byte-identical arrays, and adding cases never changes
the existing ones.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.special import expit

from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.labels import BRATS_REGION_LABELS, BRATS_REGIONS_CLASS_ORDER
from nnunet_ext.raw_dataset import raw_dataset_target, write_atomically

# Voxels per axis. Smaller images leave nnU-Net's planner almost no room to downsample and make
# tumour sub-regions only a voxel or two wide.
MIN_SIZE = 16
# In every block of 8 consecutive cases of a split, the case with this position has no enhancing
# tumour (about 1 in 8, like real BraTS), so methods meet empty regions in training and, with the
# default 4 test cases, in evaluation too.
NO_ENHANCING_POSITION = 3

Case = tuple[list[np.ndarray], np.ndarray]  # (one float32 image per channel, uint8 label), axes (X, Y[, Z])


# ----------------------------------------------------------------------------------------------
# Random geometry and image formation (dimension-independent: 2D and 3D)
# ----------------------------------------------------------------------------------------------


def _grid(shape: tuple[int, ...], spacing: tuple[float, ...]) -> list[np.ndarray]:
    """Physical coordinates (mm) of the voxel centres, relative to the volume centre.

    One open-grid array per axis (broadcastable, not full volumes), so expressions over them cost
    one pass over the volume.
    """
    ndim = len(shape)
    return [
        ((np.arange(n, dtype=np.float32) - (n - 1) / 2) * np.float32(s)).reshape(
            [-1 if axis == i else 1 for axis in range(ndim)]
        )
        for i, (n, s) in enumerate(zip(shape, spacing))
    ]


def _smooth_fields(rng: np.random.Generator, shape, spacing, correlations_mm) -> np.ndarray:
    """Independent zero-mean, unit-variance random fields, one per correlation length (mm).

    White noise filtered with a Gaussian of standard deviation ``correlation_mm`` in Fourier space:
    the cost does not grow with the correlation length (a spatial Gaussian filter with a wide kernel
    would), and anisotropic spacing is handled exactly. The fields wrap around the volume edges,
    which is harmless for textures and shape perturbations.
    """
    ndim = len(shape)
    axes = tuple(range(1, ndim + 1))
    noise = rng.standard_normal((len(correlations_mm), *shape), dtype=np.float32)
    spectrum = scipy.fft.rfftn(noise, axes=axes)
    frequencies = [np.fft.fftfreq(n, d=s) for n, s in zip(shape[:-1], spacing[:-1])]
    frequencies.append(np.fft.rfftfreq(shape[-1], d=spacing[-1]))
    squared = sum(f.reshape([-1 if a == i else 1 for a in range(ndim)]) ** 2 for i, f in enumerate(frequencies))
    for field, correlation in zip(spectrum, correlations_mm):
        # Fourier transform of a Gaussian kernel with standard deviation `correlation` (mm).
        field *= np.exp(-2 * np.pi**2 * correlation**2 * squared)
    fields = scipy.fft.irfftn(spectrum, s=shape, axes=axes).astype(np.float32)
    fields -= fields.mean(axis=axes, keepdims=True)
    fields /= fields.std(axis=axes, keepdims=True)
    return fields


def _bias_field(rng: np.random.Generator, grid: list[np.ndarray], half_extent: np.ndarray, strength: float):
    """Smooth multiplicative intensity inhomogeneity: ``exp`` of a random quadratic polynomial.

    MRI bias fields vary over the whole field of view with no sharp features; a low-order
    polynomial in normalised coordinates has exactly that behaviour and costs a few passes.
    """
    unit = [g / np.float32(h) for g, h in zip(grid, half_extent)]
    terms = unit + [a * b for i, a in enumerate(unit) for b in unit[i:]]
    log_field = sum(np.float32(rng.standard_normal()) * term for term in terms)
    return np.exp(np.float32(strength / np.sqrt(len(terms))) * log_field)


@dataclass
class _Brain:
    """A skull-stripped brain: crisp mask, soft (partial-volume) occupancy and tissue texture."""

    grid: list[np.ndarray]
    semi_axes: np.ndarray  # mm
    mask: np.ndarray  # bool; images are exactly zero outside
    occupancy: np.ndarray  # float32 in [0, 1]; darkens the brain's edge like partial volume
    texture: np.ndarray  # float32, unit variance; grey/white-matter-like heterogeneity


def _brain(rng: np.random.Generator, shape, spacing) -> _Brain:
    """An irregular ellipsoid filling most of the field of view, with a few-mm tissue texture."""
    grid = _grid(shape, spacing)
    extent = np.asarray(shape) * np.asarray(spacing)
    semi_axes = 0.42 * extent * rng.uniform(0.92, 1.0, len(shape))
    outline, texture = _smooth_fields(rng, shape, spacing, [0.3 * semi_axes.min(), 3.0])
    radial = np.sqrt(sum((g / np.float32(a)) ** 2 for g, a in zip(grid, semi_axes)))
    # Times the shortest semi-axis: roughly a distance in mm near the surface.
    level = (radial - 1 - 0.04 * outline) * np.float32(semi_axes.min())
    mask = level < 0
    return _Brain(grid, semi_axes, mask, expit(-level / np.float32(0.8)).astype(np.float32), texture)


def _blob_level(grid, centre, radius, stretch, lobes, ragged, irregularity) -> np.ndarray:
    """Level set of an irregular blob (negative inside, roughly mm).

    A stretched sphere whose radius is modulated by a coarse field (lobes, a few per blob) and a
    fine one (ragged edge). The modulation is floored at half the radius, so the voxel at the
    centre is always inside: a region placed at a voxel centre is never empty.
    """
    radial = np.sqrt(sum(((g - np.float32(c)) / np.float32(s)) ** 2 for g, c, s in zip(grid, centre, stretch)))
    modulation = np.maximum(1 + irregularity * lobes + 0.35 * irregularity * ragged, 0.5)
    return radial - np.float32(radius) * modulation


def _voxel_centre(rng: np.random.Generator, brain: _Brain, spacing, reach: np.ndarray) -> np.ndarray:
    """A random voxel centre (mm) within ``reach`` (mm, per axis) of the volume centre."""
    spacing = np.asarray(spacing)
    offset = rng.uniform(-1, 1, len(spacing)) * np.maximum(reach, 0)
    # Snap to the voxel grid (whose origin is offset by half a voxel for even sizes).
    origin = np.array([g.ravel()[0] for g in brain.grid])
    return origin + np.round((offset - origin) / spacing) * spacing


def _soft(level: np.ndarray, width_mm: float) -> np.ndarray:
    """Soft occupancy across a boundary: 0.5 on it, 0.88 / 0.12 at -/+ 2 widths (logistic ramp)."""
    return expit(-level / np.float32(width_mm)).astype(np.float32)


def _acquire(clean: np.ndarray, rng: np.random.Generator, brain: _Brain, spacing, scale: float,
             noise: float) -> np.ndarray:
    """What the scanner makes of a noise-free image: PSF blur, bias field, scaling, Rician noise, skull-strip.

    The blur has a standard deviation of half a voxel per axis, which mimics averaging over the
    voxel (thick slices blur more in mm). Rician noise is the magnitude of a complex signal with
    Gaussian noise in both parts, as in magnitude MR images.
    """
    half_extent = np.asarray(clean.shape) * np.asarray(spacing) / 2
    image = ndimage.gaussian_filter(clean, 0.5) * _bias_field(rng, brain.grid, half_extent, 0.25)
    image *= np.float32(scale)
    sigma = np.float32(noise * scale)
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    image = np.sqrt(real * real + imaginary * imaginary)
    image[~brain.mask] = 0
    return image


def _jitter(rng: np.random.Generator, value: float, spread: float = 0.25) -> float:
    """Per-case variation of a contrast: the deviation from normal tissue (1.0) scaled by 1 +/- spread."""
    return 1 + (value - 1) * rng.uniform(1 - spread, 1 + spread)


# ----------------------------------------------------------------------------------------------
# The three kinds
# ----------------------------------------------------------------------------------------------

# Relative intensity (normal brain = 1) per modality: texture gain (sign gives the grey/white
# matter contrast direction), edema, non-enhancing/necrotic core, enhancing rim; then the scanner
# scale, different per modality so that nnU-Net's per-channel z-scoring matters.
_BRATS_CONTRASTS = {
    "T1": (0.10, 0.80, 0.55, 0.85, 600.0),
    "T1ce": (0.08, 0.90, 0.50, 1.90, 800.0),
    "T2": (-0.10, 1.60, 1.90, 1.30, 1000.0),
    "FLAIR": (-0.06, 1.75, 1.15, 1.45, 450.0),
}


def _brats_case(rng: np.random.Generator, shape, spacing, position: int) -> Case:
    """One BraTS-like case: edema around a tumour core whose enhancing rim surrounds a necrotic centre.

    Nesting is built into the geometry, not only into the label encoding: the core is cut to the
    interior of the whole tumour (one-voxel erosion) and the necrosis to the interior of the core,
    so edema surrounds the core and, when present, the enhancing rim surrounds the necrosis.
    """
    brain = _brain(rng, shape, spacing)
    enhancing = position % 8 != NO_ENHANCING_POSITION
    size = float(np.exp(np.mean(np.log(brain.semi_axes))))
    r_wt = size * rng.uniform(0.30, 0.42)
    r_tc = r_wt * rng.uniform(0.6, 0.8)
    r_nec = r_tc * rng.uniform(0.6, 0.8)
    c_wt = _voxel_centre(rng, brain, spacing, 0.55 * brain.semi_axes - r_wt)
    # Core and necrosis off-centre (tumours are rarely concentric), by whole voxels so that their
    # centres stay on the grid.
    c_tc = c_wt + np.round(rng.uniform(-0.15, 0.15, len(shape)) * r_wt / np.asarray(spacing)) * spacing
    c_nec = c_tc + np.round(rng.uniform(-0.15, 0.15, len(shape)) * r_tc / np.asarray(spacing)) * spacing
    fields = _smooth_fields(rng, shape, spacing, [r_wt / 2, 1.5, r_tc / 2, 1.2, r_nec / 2, 4.0])
    wt_lobes, wt_ragged, tc_lobes, tc_ragged, nec_lobes, edema_pattern = fields
    level_wt = _blob_level(brain.grid, c_wt, r_wt, rng.uniform(0.8, 1.25, len(shape)), wt_lobes, wt_ragged, 0.30)
    level_tc = _blob_level(brain.grid, c_tc, r_tc, rng.uniform(0.85, 1.2, len(shape)), tc_lobes, tc_ragged, 0.25)
    level_nec = _blob_level(brain.grid, c_nec, r_nec, np.ones(len(shape)), nec_lobes, tc_ragged, 0.25)

    whole = (level_wt < 0) & ndimage.binary_erosion(brain.mask)
    core = (level_tc < 0) & ndimage.binary_erosion(whole)
    label = whole.astype(np.uint8)
    if enhancing:
        label[core] = 3
        label[(level_nec < 0) & ndimage.binary_erosion(core)] = 2
    else:
        label[core] = 2

    # Soft occupancies for the image; the edema ramp is widest (infiltration), the rim sharpest.
    m_wt = _soft(level_wt, 1.0) * brain.occupancy
    m_tc = _soft(level_tc, 0.6) * m_wt
    m_nec = _soft(level_nec, 0.5) * m_tc
    images = []
    for gain, edema, necrotic, enhancing_value, scale in _BRATS_CONTRASTS.values():
        edema_value = _jitter(rng, edema)
        edema_local = 1 + (edema_value - 1) * (1 + 0.3 * edema_pattern)  # edema fades unevenly
        necrotic_value = np.float32(_jitter(rng, necrotic))
        rim_value = np.float32(_jitter(rng, enhancing_value) if enhancing else necrotic_value)
        clean = 1 + np.float32(gain) * brain.texture
        clean += m_wt * (edema_local - clean)
        clean += m_tc * (rim_value - clean)
        clean += m_nec * (necrotic_value - clean)
        clean *= brain.occupancy
        images.append(_acquire(clean, rng, brain, spacing, scale, rng.uniform(0.03, 0.06)))
    return images, label


def _binary_case(rng: np.random.Generator, shape, spacing, position: int) -> Case:
    """One FLAIR-like 3D case with a single hyperintense, heterogeneous lesion (label 1)."""
    brain = _brain(rng, shape, spacing)
    size = float(np.exp(np.mean(np.log(brain.semi_axes))))
    radius = size * rng.uniform(0.25, 0.40)
    centre = _voxel_centre(rng, brain, spacing, 0.55 * brain.semi_axes - radius)
    lobes, ragged, pattern = _smooth_fields(rng, shape, spacing, [radius / 2, 1.5, 4.0])
    level = _blob_level(brain.grid, centre, radius, rng.uniform(0.8, 1.25, len(shape)), lobes, ragged, 0.30)
    label = ((level < 0) & ndimage.binary_erosion(brain.mask)).astype(np.uint8)
    lesion_value = _jitter(rng, 1.7)
    clean = 1 - np.float32(0.06) * brain.texture
    clean += _soft(level, 0.8) * brain.occupancy * (1 + (lesion_value - 1) * (1 + 0.3 * pattern) - clean)
    clean *= brain.occupancy
    return [_acquire(clean, rng, brain, spacing, 450.0, rng.uniform(0.03, 0.06))], label


# Pre-contrast, FLAIR, post-contrast: texture gain, tumour value, 8-bit scale of normal brain.
# Low-grade gliomas are FLAIR-hyperintense, slightly T1-hypointense and barely enhance.
_LGG_CONTRASTS = ((0.10, 0.85, 110.0), (-0.06, 1.70, 90.0), (0.08, 1.00, 100.0))


def _lgg_case(rng: np.random.Generator, shape, spacing, position: int) -> Case:
    """One LGG-like axial slice: an infiltrative FLAIR-hyperintense tumour (label 1), images in 0..255."""
    brain = _brain(rng, shape, spacing)
    size = float(np.exp(np.mean(np.log(brain.semi_axes))))
    radius = size * rng.uniform(0.20, 0.30)
    centre = _voxel_centre(rng, brain, spacing, 0.6 * brain.semi_axes - radius)
    lobes, ragged, pattern = _smooth_fields(rng, shape, spacing, [radius / 2, 1.5, 3.0])
    level = _blob_level(brain.grid, centre, radius, rng.uniform(0.8, 1.25, 2), lobes, ragged, 0.35)
    label = ((level < 0) & ndimage.binary_erosion(brain.mask)).astype(np.uint8)
    occupancy = _soft(level, 1.2) * brain.occupancy  # LGG margins are notoriously ill-defined
    images = []
    for channel, (gain, tumour, scale) in enumerate(_LGG_CONTRASTS):
        tumour_value = _jitter(rng, tumour)
        if channel == 2:
            # Faint patchy enhancement in part of the tumour.
            tumour_local = tumour_value + 0.25 * np.maximum(pattern, 0)
        else:
            tumour_local = 1 + (tumour_value - 1) * (1 + 0.3 * pattern)
        clean = 1 + np.float32(gain) * brain.texture
        clean += occupancy * (tumour_local - clean)
        clean *= brain.occupancy
        image = _acquire(clean, rng, brain, spacing, scale, rng.uniform(0.03, 0.05))
        images.append(np.clip(np.rint(image), 0, 255))
    return images, label


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _write_nifti(path: Path, array: np.ndarray, spacing) -> None:
    """Writes an (X, Y, Z) array with its spacing; SimpleITK's arrays are (Z, Y, X), hence the transpose."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose()))
    image.SetSpacing([float(s) for s in spacing])
    sitk.WriteImage(image, str(path), useCompression=True)


def _write_png(path: Path, array: np.ndarray, spacing) -> None:
    """Writes a 2D array as an 8-bit grayscale PNG (rows, columns); PNG stores no spacing."""
    from skimage import io

    io.imsave(str(path), array.astype(np.uint8), check_contrast=False)


@dataclass(frozen=True)
class Kind:
    """How one kind of synthetic dataset looks: defaults, nnU-Net metadata, case generator, writer."""

    default_name: str
    default_shape: tuple[int, ...]
    default_spacing: tuple[float, ...]
    default_cases: int
    default_test_cases: int
    channel_names: dict[int, str]
    labels: dict[str, int | tuple[int, ...]]
    regions_class_order: tuple[int, ...] | None
    file_ending: str
    configuration: str  # the nnU-Net configuration to plan for it
    spacing_configurable: bool
    description: str
    # (rng, shape, spacing, position of the case in its split) -> images and label; the position
    # only matters to kinds with a schedule of absent sub-regions (brats).
    make_case: Callable[[np.random.Generator, tuple, tuple, int], Case]
    write: Callable[[Path, np.ndarray, tuple], None]


KINDS: dict[str, Kind] = {
    "brats": Kind(
        default_name="SyntheticBraTS",
        default_shape=(64, 64, 48),
        default_spacing=(1.0, 1.0, 1.0),
        default_cases=16,
        default_test_cases=4,
        channel_names={0: "T1", 1: "T1ce", 2: "T2", 3: "FLAIR"},
        labels=BRATS_REGION_LABELS,
        regions_class_order=BRATS_REGIONS_CLASS_ORDER,
        file_ending=".nii.gz",
        configuration="3d_fullres",
        spacing_configurable=True,
        description="Synthetic BraTS-like MRI (labels 1 edema, 2 non-enhancing/necrotic core, 3 enhancing "
        "tumour; regions as in nnU-Net's Dataset137_BraTS21)",
        make_case=_brats_case,
        write=_write_nifti,
    ),
    "binary": Kind(
        default_name="SyntheticBinary",
        default_shape=(64, 64, 48),
        default_spacing=(1.0, 1.0, 1.0),
        default_cases=16,
        default_test_cases=4,
        channel_names={0: "FLAIR"},
        labels={"background": 0, "lesion": 1},
        regions_class_order=None,
        file_ending=".nii.gz",
        configuration="3d_fullres",
        spacing_configurable=True,
        description="Synthetic FLAIR-like MRI with one lesion class",
        make_case=_binary_case,
        write=_write_nifti,
    ),
    "2d": Kind(
        default_name="SyntheticLGG2D",
        default_shape=(96, 96),
        default_spacing=(1.0, 1.0),
        default_cases=24,
        default_test_cases=6,
        channel_names={0: "pre-contrast", 1: "FLAIR", 2: "post-contrast"},
        labels={"background": 0, "tumor": 1},
        regions_class_order=None,
        file_ending=".png",
        configuration="2d",
        spacing_configurable=False,
        description="Synthetic LGG-FLAIR-like 2D slices, 8-bit grayscale PNG per channel",
        make_case=_lgg_case,
        write=_write_png,
    ),
}
DEFAULT_NAMES = {kind: spec.default_name for kind, spec in KINDS.items()}
_SPLITS = (("Tr", 0), ("Ts", 1))  # folder suffix, seed component


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise NnunetExtError(f"unknown dataset kind '{kind}'; choose one of {', '.join(KINDS)} (e.g. -k brats)")
    return KINDS[kind]


def _checked_shape(kind: str, spec: Kind, shape) -> tuple[int, ...]:
    if shape is None:
        return spec.default_shape
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(spec.default_shape):
        raise NnunetExtError(
            f"kind '{kind}' needs a {len(spec.default_shape)}D shape, got {len(shape)} numbers; "
            f"pass e.g. --shape {' '.join(map(str, spec.default_shape))}"
        )
    if min(shape) < MIN_SIZE:
        raise NnunetExtError(f"shape {shape} is too small; every axis needs at least {MIN_SIZE} voxels")
    return shape


def _checked_spacing(kind: str, spec: Kind, spacing) -> tuple[float, ...]:
    if spacing is None:
        return spec.default_spacing
    if not spec.spacing_configurable:
        raise NnunetExtError(
            f"kind '{kind}' takes no spacing: PNG files store none and nnU-Net's NaturalImage2DIO always "
            f"assumes 1x1; leave out --spacing"
        )
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != len(spec.default_spacing) or min(spacing) <= 0:
        raise NnunetExtError(
            f"spacing {spacing} is invalid for kind '{kind}'; pass {len(spec.default_spacing)} positive numbers "
            f"in mm, e.g. --spacing {' '.join(map(str, spec.default_spacing))}"
        )
    return spacing


def _write_dataset(folder: Path, kind: str, spec: Kind, name: str, num_cases: int, num_test_cases: int,
                   shape: tuple[int, ...], spacing: tuple[float, ...], seed: int) -> None:
    """Writes every case and the dataset.json into ``folder`` (an empty, not yet published folder)."""
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    counts = {"Tr": num_cases, "Ts": num_test_cases}
    for suffix, split in _SPLITS:
        images_folder, labels_folder = folder / f"images{suffix}", folder / f"labels{suffix}"
        images_folder.mkdir()
        labels_folder.mkdir()
        for position in range(counts[suffix]):
            rng = np.random.default_rng(np.random.SeedSequence([seed, split, position]))
            images, label = spec.make_case(rng, shape, spacing, position)
            case_id = f"{name}_{position:03d}" if suffix == "Tr" else f"{name}_test{position:03d}"
            for channel, image in enumerate(images):
                spec.write(images_folder / f"{case_id}_{channel:04d}{spec.file_ending}", image, spacing)
            spec.write(labels_folder / f"{case_id}{spec.file_ending}", label, spacing)
    generate_dataset_json(
        str(folder),
        channel_names=dict(spec.channel_names),  # copies: generate_dataset_json edits its arguments
        labels=dict(spec.labels),
        num_training_cases=num_cases,
        file_ending=spec.file_ending,
        regions_class_order=spec.regions_class_order,
        dataset_name=name,
        description=spec.description,
        license="CC0-1.0 (synthetic data)",
        converted_by="nnunet_ext_synthetic",
        numTest=num_test_cases,
        synthetic={"kind": kind, "seed": seed, "shape": list(shape), "spacing": list(spacing)},
    )


def generate_dataset(
    kind: str,
    dataset_id: int,
    name: str | None = None,
    num_cases: int | None = None,
    num_test_cases: int | None = None,
    shape: tuple[int, ...] | None = None,
    spacing: tuple[float, ...] | None = None,
    seed: int = 0,
    overwrite: bool = False,
    raw_root: str | Path | None = None,
) -> Path:
    """Writes a synthetic nnU-Net raw dataset ``<raw_root or $nnUNet_raw>/DatasetXXX_<name>/``; returns that folder.

    ``kind`` is one of :data:`KINDS` (``brats``, ``binary``, ``2d``); ``None`` arguments take that
    kind's defaults (name, case counts, shape as (X, Y, Z) or (rows, columns) for 2d, spacing in mm,
    3D kinds only). ``overwrite`` replaces an existing dataset of the same name; the new one is
    written into a hidden sibling folder first, so an interrupted run never leaves a partial dataset
    under the real name. Raises :class:`NnunetExtError` for invalid arguments, an unset
    ``$nnUNet_raw`` (without ``raw_root``), an id taken by another dataset, or an existing folder.
    """
    spec = _kind(kind)
    name = spec.default_name if name is None else name
    num_cases = spec.default_cases if num_cases is None else int(num_cases)
    num_test_cases = spec.default_test_cases if num_test_cases is None else int(num_test_cases)
    if num_cases < 2:
        raise NnunetExtError(f"{num_cases} training cases are too few; nnU-Net needs at least 2 (--cases 2)")
    if num_test_cases < 0:
        raise NnunetExtError(f"the number of test cases cannot be negative (got {num_test_cases}); use --test-cases 0")
    if int(seed) < 0:
        raise NnunetExtError(f"seed {seed} is negative; pass a seed >= 0")
    shape = _checked_shape(kind, spec, shape)
    spacing = _checked_spacing(kind, spec, spacing)
    target = raw_dataset_target(dataset_id, name, raw_root)
    return write_atomically(target, overwrite, lambda staging: _write_dataset(
        staging, kind, spec, name, num_cases, num_test_cases, shape, spacing, int(seed)))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnunet_ext_synthetic",
        description="Write a synthetic nnU-Net v2 raw dataset into $nnUNet_raw (kinds: "
        + "; ".join(f"{k}: {v.default_name}, {v.default_cases}+{v.default_test_cases} cases of "
                    f"{'x'.join(map(str, v.default_shape))}" for k, v in KINDS.items())
        + ").",
    )
    parser.add_argument("-d", "--dataset-id", type=int, required=True, help="nnU-Net dataset id (1-999)")
    parser.add_argument("-k", "--kind", default="brats", help=f"one of {', '.join(KINDS)} (default brats)")
    parser.add_argument("-n", "--name", help="dataset name (default per kind, e.g. SyntheticBraTS)")
    parser.add_argument("--cases", type=int, help="number of training cases (imagesTr/labelsTr)")
    parser.add_argument("--test-cases", type=int, help="number of held-out test cases (imagesTs/labelsTs)")
    parser.add_argument("--shape", type=int, nargs="+", help="image size: X Y Z (3D kinds) or rows columns (2d)")
    parser.add_argument("--spacing", type=float, nargs="+", help="voxel spacing in mm, X Y Z (3D kinds only)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset of the same name")
    return add_version_argument(parser)


def _main(argv) -> None:
    args = _parser().parse_args(argv)
    folder = generate_dataset(
        args.kind, args.dataset_id, name=args.name, num_cases=args.cases, num_test_cases=args.test_cases,
        shape=args.shape, spacing=args.spacing, seed=args.seed, overwrite=args.overwrite,
    )
    print(f"wrote {folder}")
    print(f"next: nnUNetv2_plan_and_preprocess -d {args.dataset_id} -c {KINDS[args.kind].configuration} "
          f"--verify_dataset_integrity")


def main(argv: list[str] | None = None) -> int:
    """Console entry ``nnunet_ext_synthetic``; returns the exit status (2 with a one-line error)."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
