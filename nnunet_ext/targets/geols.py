"""Geodesic maps of GeoLS (Vasudeva, Dolz, Lombaert, *GeoLS: Geodesic Label Smoothing for Image
Segmentation*, MIDL 2024, Eqs. 3-5): one map g_c in [0, 1] per class (or region) mask.

For one class mask M and image I:

- seeds S: the skeleton of M (``skimage.morphology.skeletonize``, 3D: Lee's thinning; 2D: Zhang's),
  as in the paper's experiments (Sec. 3, "target label skeleton as seed points");
- D_c (Eqs. 3-4): geodesic distance to S, computed with FastGeodis' raster scan (see below);
- g_c = exp(-D_c) (Eq. 5), "subsequently normalized to range [0, 1]" (min-max over the array), or,
  with ``scaling="mean"``, exp(-D_c / mean(D_c)) min-max scaled, as in the authors' code.

**Cropping** (``crop=True``, default; ``scaling="eq5"`` only): D is at least the Euclidean distance to
the seeds (every step costs at least its length), so beyond CUTOFF = 18 mm of the skeleton
exp(-D) < 1.6e-8, which is 0 in the float16 maps the hook stores. Each class is therefore computed on
its skeleton's bounding box grown by 18 mm (+1 voxel) and is 0 outside; inside, a geodesic path that
leaves the box is at least 18 long, so D is exact wherever exp(-D) is representable. The min-max
normalisation then uses min = 0 (the true minimum is below 1.6e-8). ``scaling="mean"`` needs D on
the whole array (its mean) and ignores ``crop``.

An empty class gives an all-zero map (as in the authors' code). Seeds are restricted to nnU-Net's
nonzero mask (``valid``); distances run over the whole array. The cross-class normalisation
g~ = g / sum_c g (Sec. 2.3), the background map and the soft label (1 - alpha) y + alpha g~ (Eq. 6)
depend only on (seg, maps) and alpha and are computed in the loss
(:mod:`nnunet_ext.losses.soft_labels`), so alpha is a loss parameter and one set of maps serves
every alpha.

**Ignore label** (``ignored``: voxels of nnU-Net's ignore label, class unknown): GeoLS' seeds are
not boundaries but the skeleton of each class, and ignored voxels belong to no class, so they are
never seeds and the skeleton is the one of the class's known voxels (the label is not guessed into
the ignored area). Distances run through ignored voxels; their map values are kept (the loss masks
them). Without ignored voxels the maps are unchanged.

**Distance: Eq. 4 vs GeodisTK vs FastGeodis.** Along a path, the three accumulate per step of
length s (mm) with intensity change dI:

=====================================  ==================================================
Eq. 4 (paper, gamma = 1)               sqrt(s^2 + gamma^2 dI^2)
GeodisTK raster scan, lambda 1         s * (|dI| + 1e-5): almost free in flat regions
(the authors' code)
FastGeodis raster scan, lambda l       (1 - l) * s + l * |dI|
=====================================  ==================================================

We use FastGeodis with l = gamma / (1 + gamma) and multiply by 1 + gamma, so that the step cost is
s + gamma |dI|: the L1 instead of the L2 combination of Eq. 4's two terms. It equals Eq. 4 where one
of them is zero and exceeds it by at most a factor sqrt(2) (when s = gamma |dI|). GeodisTK, which the
authors used, does not build with NumPy 2, and its raster scan does not compute Eq. 4 either (above).
``GeoLSOptions.authors_code()`` sets gamma = 1e5: the step cost is then proportional to
|dI| + 1e-5 s, the closest FastGeodis analogue of GeodisTK's lambda 1 (which multiplies the step
length in instead of adding it), with the authors' ``scaling="mean"`` and per-modality maps.
With ``scaling="mean"`` the scale of D cancels, so only the ratio of the two terms matters: when
gamma is large, D is nearly proportional to the summed |dI| and a per-channel intensity scaling
(nnU-Net's z-score instead of the authors' raw intensities) nearly cancels too. Differences that
remain: the mean of D is taken over nnU-Net's array (cropped to the nonzero region), not the full
image, and the image is nnU-Net's normalised one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from skimage.morphology import skeletonize

from nnunet_ext.targets.common import (
    IMAGE_MODES,
    TargetOptions,
    bounding_box,
    channel_masks_within,
    gradient_channels,
    ignored_voxels,
)
from nnunet_ext.targets.geodesic import geodesic_distance

SCALINGS = ("eq5", "mean")
#: distance beyond which exp(-D) (< 1.6e-8) is 0 in float16, the dtype of the stored maps
CUTOFF = 18.0


@dataclass(frozen=True)
class GeoLSOptions(TargetOptions):
    """Parameters of the GeoLS maps; :meth:`as_params` is the ``TargetSpec.params`` of the maps."""

    gamma: float = field(default=1.0, metadata={"help": "gamma of Eq. 4: weight of |dI| against the step length (mm)"})
    scaling: str = field(default="eq5", metadata={
        "choices": SCALINGS, "help": "eq5: exp(-D) (Eq. 5); mean: exp(-D / mean(D)) (authors' code); then min-max"})
    image: str = field(default="channel", metadata={"choices": IMAGE_MODES, "help": "image of the gradient term"})
    image_channel: int = field(default=0, metadata={"help": "channel used when image=channel"})
    v: float = field(default=1e10, metadata={"help": "FastGeodis' initial distance of non-seed voxels"})
    iterations: int = field(default=2, metadata={
        "help": "FastGeodis raster-scan iterations (2 agree with 4 to 1e-8 on BraTS with eq5; authors: 4)"})
    crop: bool = field(default=True, metadata={
        "help": "scaling=eq5: compute each class within 18 mm of its skeleton (exp(-D) is 0 in float16 beyond)"})

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.gamma < float("inf"):
            raise ValueError(f"gamma must be finite and >= 0, got {self.gamma}")
        if self.v <= 0 or self.iterations < 1 or self.image_channel < 0:
            raise ValueError("v must be > 0, iterations >= 1 and image_channel >= 0")

    @classmethod
    def authors_code(cls, **overrides: Any) -> "GeoLSOptions":
        """The authors' choices: D / mean(D), one map per modality averaged, intensity-dominated cost,
        4 raster-scan iterations."""
        settings = dict(gamma=1e5, scaling="mean", image="mean_of_maps", iterations=4)
        settings.update(overrides)
        return cls(**settings)


def geols_maps(
    image: np.ndarray,
    channel_masks: np.ndarray,
    valid: np.ndarray,
    spacing: Sequence[float],
    options: GeoLSOptions,
    ignored: np.ndarray | None = None,
) -> np.ndarray:
    """GeoLS maps g_c (Eq. 5, normalised to [0, 1]), one per channel mask: float32 (K, *spatial).

    ``image`` float32 (C, *spatial); ``channel_masks`` bool (K, *spatial), one per foreground label or
    region; ``valid`` bool (*spatial), nnU-Net's nonzero mask (voxels outside are background);
    ``spacing`` the voxel spacing (mm) per spatial axis. 2D and 3D inputs are supported.
    With ``image="mean_of_maps"`` each channel's map is computed on one image channel and the maps are
    averaged (the authors' per-modality maps). ``ignored`` bool (*spatial) or None: voxels of
    nnU-Net's ignore label, never seeds (module docstring).
    """
    masks = channel_masks_within(image, channel_masks, valid, spacing)
    ignored = ignored_voxels(ignored, masks.shape[1:])
    if ignored is not None:
        masks = masks & ~ignored
    channels = gradient_channels(image, options.image, options.image_channel)
    spacing = tuple(float(s) for s in spacing)
    spatial = masks.shape[1:]
    maps = np.zeros(masks.shape, dtype=np.float32)
    for k in range(masks.shape[0]):
        seeds = skeleton_seeds(masks[k])
        if seeds is None:
            continue  # empty class: zeros
        box = tuple(slice(0, n) for n in spatial)
        if options.crop and options.scaling == "eq5":
            reach = [int(np.ceil(CUTOFF / s)) + 1 for s in spacing]
            # the stop is left unclipped (slicing clips it): an axis the grown box overreaches counts as whole below
            box = tuple(slice(max(0, b.start - r), b.stop + r) for b, r in zip(bounding_box(seeds), reach))
        cropped = any(b.stop - b.start < n for b, n in zip(box, spatial))
        for channel in channels:
            maps[k][box] += geols_map(channel[box], seeds[box], spacing, options, cropped)
        maps[k] /= channels.shape[0]
    return maps


def skeleton_seeds(mask: np.ndarray) -> np.ndarray | None:
    """Seed set S: the skeleton of ``mask`` (computed on its bounding box plus one voxel), or the mask
    itself if thinning leaves nothing; None for an empty mask."""
    if not mask.any():
        return None
    box = bounding_box(mask, 1)
    seeds = np.zeros(mask.shape, dtype=bool)
    seeds[box] = skeletonize(mask[box])
    return seeds if seeds.any() else mask.copy()


def geols_distance(channel: np.ndarray, seeds: np.ndarray, spacing: Sequence[float], options: GeoLSOptions) -> np.ndarray:
    """D (Eqs. 3-4, FastGeodis version): float64 geodesic distance to ``seeds`` on one image channel, each
    step costing its length s (mm) plus gamma |dI| (FastGeodis lambda gamma / (1 + gamma), times 1 + gamma)."""
    lam = options.gamma / (1.0 + options.gamma)
    distance = geodesic_distance(channel, seeds, spacing, lam, options.v, options.iterations).astype(np.float64)
    return distance * (1.0 + options.gamma)


def geols_map(channel: np.ndarray, seeds: np.ndarray, spacing: Sequence[float], options: GeoLSOptions,
              cropped: bool = False) -> np.ndarray:
    """g = exp(-D) or exp(-D / mean(D)), min-max scaled to [0, 1] (Eq. 5), for one image channel;
    ``cropped``: the arrays are a box beyond which g < 1.6e-8, so the minimum is taken as 0."""
    distance = geols_distance(channel, seeds, spacing, options)
    if options.scaling == "mean":
        mean = distance.mean()
        g = np.exp(-distance / mean) if mean > 0 else np.ones_like(distance)
    else:
        g = np.exp(-distance)
    low, high = (0.0 if cropped else g.min()), g.max()  # high = 1 at the seeds
    return ((g - low) / (high - low) if high > low else np.ones_like(g)).astype(np.float32)
