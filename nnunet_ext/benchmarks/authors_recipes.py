"""The authors' recipes of the target maps (:data:`RECIPES`), written from the papers and their released code:
what the targets benchmark (:mod:`.targets`) times and compares ours with. The trainers use
:mod:`nnunet_ext.targets`, whose ``authors_code()`` options reproduce these where paper and code differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import ndimage
from skimage import feature

from nnunet_ext.targets.geols import GeoLSOptions, geols_maps
from nnunet_ext.targets.sing import SiNGOptions


def sing_authors_map(image: np.ndarray, mask: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """SiNGR's released ``get_SGC_distance`` and ``transform_geo_dist`` (delta 0.5) on the full volume: the
    map of one region, averaged over the modalities as their loader does, and its band (G^0 <= beta, Eq. 3).
    Seeds: Canny (sigma 1) per axial slice of the background; FastGeodis lambda 0.5 (G) and 0 (G^0), 4
    iterations; outside the band and where the image is 0, max_bg (the max of G over the band's background).
    """
    import FastGeodis  # the authors' own dependency; here only, so the benchmarks import without it

    if not mask.any():
        return np.full(mask.shape, -1.0, np.float32), np.zeros(mask.shape, bool)
    background = ~mask
    seeds = np.stack([feature.canny(plane, sigma=1) for plane in background.astype(np.float64)])
    softmask = torch.from_numpy((1.0 - seeds).astype(np.float32))[None, None]
    maps, band = [], None
    for channel in image:
        tensor = torch.from_numpy(np.ascontiguousarray(channel))[None, None]
        g = FastGeodis.generalised_geodesic3d(tensor, softmask, list(spacing), 1e10, 0.5, 4)[0, 0].numpy()
        g0 = FastGeodis.generalised_geodesic3d(tensor, softmask, list(spacing), 1e10, 0.0, 4)[0, 0].numpy()
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
    """GSL's code: the signed distance of one one-hot channel in voxels (ours: mm, the same at 1 mm), float64;
    outside the distance to the class, inside minus the distance to the outside. No boundary (empty or
    full): zeros, as ours, where SciPy's EDT is undefined (the GSL code once produced NaN there)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)


def rrw_authors_map(mask: np.ndarray) -> np.ndarray:
    """Valverde and Tohka's code: -EDT / max(EDT) inside the class (EDT: voxels to the outside), +1
    outside; an empty class is +1 everywhere. float64."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.ones(mask.shape)
    distance = ndimage.distance_transform_edt(mask)
    return np.where(mask, -distance / distance.max(), 1.0)


def sing_recipe(image, masks, spacing):
    results = [sing_authors_map(image, mask, spacing) for mask in masks]
    return np.stack([maps for maps, _ in results]), np.stack([band for _, band in results])


def edt_recipe(authors_map: Callable) -> Callable:
    """The recipe of a map computed from one mask alone, compared everywhere."""
    return lambda image, masks, spacing: (np.stack([authors_map(mask) for mask in masks]), None)


def geols_recipe(image, masks, spacing):
    """GeoLS' code, emulated: per class skeleton seeds, one geodesic map per modality on the whole volume,
    exp(-D / mean(D)) min-max scaled, the maps averaged, every voxel valid. GeodisTK's raster scan does not
    build with NumPy 2; ``GeoLSOptions.authors_code(crop=False)`` is its FastGeodis analogue (see
    nnunet_ext/targets/geols.py) and ``geols_maps`` with it does exactly these steps."""
    return geols_maps(image, masks, np.ones(masks.shape[1:], bool), spacing, GeoLSOptions.authors_code(crop=False)), None


@dataclass(frozen=True)
class Recipe:
    compute: Callable  # (image, masks, spacing) -> (maps, where they are compared, None: everywhere)
    channels: str  # the masks the authors compute maps of (a key of targets.CHANNEL_SETS)
    matched_setting: str  # our setting with the same channels, timed against the recipe
    matched_comparable: bool = True  # whether its maps are meant to equal the recipe's (GeoLS': exp(-D) by Eq. 5)
    authors_options: dict | None = None  # our options that reproduce the recipe, compared on the brain box


RECIPES = {
    "sing": Recipe(sing_recipe, "regions", "sing regions (SiNGR)", authors_options=SiNGOptions.authors_code().as_params()),
    "dtm": Recipe(edt_recipe(dtm_authors_map), "all labels", "dtm labels + background (GSL on labels)"),
    "rrw": Recipe(edt_recipe(rrw_authors_map), "all labels", "rrw labels + background (RRW on labels)"),
    "geols": Recipe(geols_recipe, "labels", "geols labels (GeoLS on labels)", matched_comparable=False,
                    authors_options=GeoLSOptions.authors_code().as_params()),
}
