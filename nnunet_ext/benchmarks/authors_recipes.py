"""The authors' recipes for the target maps, written here from the papers and the authors' released code.

Each recipe computes, on the full volume, the maps one method's authors train on, so that the targets
benchmark (:mod:`nnunet_ext.benchmarks.targets`) can time ours against theirs and measure where the
two agree. They are references for comparison, not what the trainers use: those maps come from
:mod:`nnunet_ext.targets` (whose ``authors_code()`` options reproduce these recipes where a paper and
its code differ).

- :func:`sing_authors_map`: SiNGR (Dang et al., MICCAI 2024), the released ``get_SGC_distance`` /
  ``transform_geo_dist``;
- :func:`dtm_authors_map`: the signed distance maps of GSL's code (Celaya et al.);
- :func:`rrw_authors_map`: the region-wise maps of Valverde and Tohka's code;
- :func:`geols_recipe`: GeoLS (Vasudeva et al.), emulated with FastGeodis.

:data:`RECIPES` maps each map kind to its recipe, the masks it is computed of and our setting it is
compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import FastGeodis
import numpy as np
import torch
from scipy import ndimage
from skimage import feature

from nnunet_ext.targets.geodesic import geodesic_device
from nnunet_ext.targets.geols import GeoLSOptions, geols_maps

def sing_authors_map(image: np.ndarray, mask: np.ndarray, spacing, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """SiNGR's released code: the SiNG map of one region on the full volume and its band (G^0 <= beta).

    Per modality (``get_SGC_distance``): seeds from Canny (defaults, sigma 1) on each axial slice of the
    background mask; FastGeodis with lambda 0.5 (G) and lambda 0 (G^0, the band), 4 iterations;
    max_bg = max of G over the band's background; G, then max_bg outside the band, the background
    negated, -max_bg where the image is 0. Then ``transform_geo_dist`` (``fast_sgc_margin``, delta 0.5):
    foreground clamped at 0, background at -fg_max (fg_max = max over the foreground), both divided by
    fg_max + 1e-8, the margin added away from 0, clamped to [-1, 1]. The loader averages the modalities.
    """
    if not mask.any():
        return np.full(mask.shape, -1.0, np.float32), np.zeros(mask.shape, bool)
    background = ~mask
    seeds = np.stack([feature.canny(plane, sigma=1) for plane in background.astype(np.float64)])
    softmask = torch.from_numpy((1.0 - seeds).astype(np.float32))[None, None].to(device)
    maps, band = [], None
    for channel in image:  # one map per modality, averaged
        tensor = torch.from_numpy(np.ascontiguousarray(channel))[None, None].to(device)
        g = FastGeodis.generalised_geodesic3d(tensor, softmask, list(spacing), 1e10, 0.5, 4)[0, 0].cpu().numpy()
        g0 = FastGeodis.generalised_geodesic3d(tensor, softmask, list(spacing), 1e10, 0.0, 4)[0, 0].cpu().numpy()
        band = g0 <= g0[mask].max()
        max_bg = g[band & background].max()
        raw = np.where(band, g, max_bg).astype(np.float64)
        raw[background] = -raw[background]
        raw[channel == 0] = -max_bg
        raw[mask] = np.maximum(raw[mask], 0.0)
        fg_max = raw[mask].max()
        raw[background] = np.maximum(raw[background], -fg_max)
        raw /= fg_max + 1e-8
        raw = np.where(mask, raw * 0.5 + 0.5, raw * 0.5 - 0.5)
        maps.append(np.clip(raw, -1.0, 1.0).astype(np.float32))
    return np.mean(maps, axis=0), band


def dtm_authors_map(mask: np.ndarray) -> np.ndarray:
    """GSL's code: signed distance of one one-hot channel in voxel units, float64: inside, minus the
    distance to the nearest voxel outside; outside, the distance to the nearest voxel inside.

    An empty or full channel has no boundary (scipy's EDT is undefined there, and the GSL code once
    produced NaN): zeros, as our maps.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)


def rrw_authors_map(mask: np.ndarray) -> np.ndarray:
    """Valverde and Tohka's code: inside the class -EDT / max(EDT) (EDT: distance to the nearest voxel
    outside, voxel units), +1 outside; an empty class is +1 everywhere. float64."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.ones(mask.shape)
    distance = ndimage.distance_transform_edt(mask)
    return np.where(mask, -distance / distance.max(), 1.0)


def sing_recipe(image, masks, spacing, device="cpu"):
    results = [sing_authors_map(image, mask, spacing, device) for mask in masks]
    return np.stack([m for m, _ in results]), np.stack([band for _, band in results])


def dtm_recipe(image, masks, spacing, device="cpu"):
    return np.stack([dtm_authors_map(mask) for mask in masks]), None


def rrw_recipe(image, masks, spacing, device="cpu"):
    return np.stack([rrw_authors_map(mask) for mask in masks]), None


def geols_recipe(image, masks, spacing, device="cpu"):
    """GeoLS' code, emulated: skeleton seeds per class, one geodesic map per modality on the whole
    volume, exp(-D / mean(D)) min-max scaled, maps averaged. GeodisTK's raster scan (lambda 1) does
    not build with NumPy 2; ``GeoLSOptions.authors_code()`` is its closest FastGeodis analogue (see
    nnunet_ext/targets/geols.py), and ``geols_maps`` with those options does exactly these steps:
    scaling "mean" uses the whole array (no crop), "mean_of_maps" one map per image channel. No brain
    mask: every voxel is valid."""
    with geodesic_device(device):
        return geols_maps(image, masks, np.ones(masks.shape[1:], bool), spacing,
                          GeoLSOptions.authors_code(crop=False)), None


@dataclass(frozen=True)
class Recipe:
    compute: Callable  # (image, masks, spacing, device) -> (maps, where they are compared or None: everywhere)
    channels: str  # the masks the authors compute maps of
    matched_setting: str  # our setting with the same channels: the ratio compares to it
    description: str
    # whether our matched setting's maps are meant to equal the recipe's (GeoLS: exp(-D) vs exp(-D / mean D)
    # by definition, so only our code with the authors' options is compared)
    matched_comparable: bool = True
    # seconds per case: run on every case; the geodesic recipes (minutes) only on --authors-cases
    on_every_case: bool = False


RECIPES = {
    "sing": Recipe(sing_recipe, "regions", "sing regions (SiNGR)",
                   "SiNGR authors' released code: per-slice Canny seeds, per-modality FastGeodis lambda 0.5 and 0, "
                   "4 iterations, max_bg outside the band and where the image is 0, tau over the foreground, maps "
                   "averaged; compared inside both bands"),
    "dtm": Recipe(dtm_recipe, "all labels", "dtm labels + background (GSL on labels)",
                  "GSL authors' code: one-hot of labels 0..4 (background included), per channel "
                  "EDT(outside) - EDT(inside), float64, voxel units (ours: float32, mm; same at 1 mm)",
                  on_every_case=True),
    "rrw": Recipe(rrw_recipe, "all labels", "rrw labels + background (RRW on labels)",
                  "Valverde and Tohka's code: per class 0..4, -EDT/max(EDT) inside, +1 outside (voxel units)",
                  on_every_case=True),
    "geols": Recipe(geols_recipe, "labels", "geols labels (GeoLS on labels)",
                    "authors' recipe, emulated with FastGeodis (GeodisTK unavailable): per class 1..4, 3D "
                    "skeleton seeds, per-modality geodesic maps exp(-D/mean D) min-max scaled, averaged; "
                    "= our geols_maps with GeoLSOptions.authors_code(crop=False) on the full volume",
                    matched_comparable=False),
}
