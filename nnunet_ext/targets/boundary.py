"""Boundary seed sets R_B for the SiNG transform (SiNGR, Sec. 2.1, the set R_B of Eq. 1 and Eq. 3).

Two extractors, selected by :attr:`nnunet_ext.targets.sing.SiNGOptions.boundary`:

``"3d"`` (default)
    Every voxel on either side of a face between the mask and its complement. The seed set
    straddles the boundary the way the authors' Canny contour does, but is exact, isotropic in
    its neighbourhood, covers the top and bottom faces of an object, and costs a few array
    comparisons. The border of the array is *not* a boundary: nnU-Net crops cases to the
    nonzero region, so an object touching the crop border continues (unseen) beyond it.

``"canny2d"`` (the authors' released code)
    ``skimage.feature.canny`` (defaults, sigma 1) on each 2D slice of the *background* mask.
    Slices are taken along :func:`slice_axis`. Slices parallel to the top and bottom faces of an
    object get contours, faces themselves get none. We pass ``mode="nearest"`` so that the border
    of a slice (or of the crop we run on) produces no spurious edges; the authors' call used
    skimage's default zero padding. That changes seeds within about 4 voxels of the array border
    (Canny's Gaussian, sigma 1, truncated at 4 sigma; rarely a few more through its hysteresis) on
    any slice where the mask comes that close to the border, touching it or not. Elsewhere the seeds
    agree but for rare single-seed tie-breaks of Canny's non-maximum suppression: the zero-padded call
    divides the smoothed slice by its padding weight plus machine epsilon, which changes its last bit.

**Ignored voxels** (nnU-Net's ignore label, ``ignored`` of :func:`boundary_seeds`): their class is
unknown, so a face between the mask and an ignored voxel is no boundary. A seed must be a boundary
voxel both when the ignored voxels are taken as background (``mask``) and when they are taken as
foreground (``mask | ignored``), and must not itself be ignored. For ``"3d"`` this is exactly the
set of voxels on either side of a face between the mask and *known* background; for ``"canny2d"``
it removes the contours along the mask's edge with an ignored area (near a point where mask,
ignored area and known background meet, Canny's smoothing may keep or drop a seed). Without
ignored voxels the seeds are unchanged.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from skimage import feature

BOUNDARY_MODES = ("3d", "canny2d")


def slice_axis(spacing: Sequence[float]) -> int:
    """Axis along which ``canny2d`` takes its 2D slices: the one with the largest spacing.

    For anisotropic data that is the through-plane axis, so each slice is an acquired plane.
    Ties resolve to the first such axis: nnU-Net's arrays keep SimpleITK's (z, y, x) order unless
    the plans transpose them, and its ``transpose_forward`` moves the lowest-resolution axis first,
    so for isotropic BraTS (1 mm) axis 0 is the axial axis the authors sliced along.
    """
    spacing = [float(s) for s in spacing]
    return int(np.argmax(spacing))


def boundary_3d(mask: np.ndarray) -> np.ndarray:
    """Voxels on either side of a face between ``mask`` and its complement (2D or 3D)."""
    mask = np.asarray(mask, dtype=bool)
    seeds = np.zeros_like(mask)
    for axis in range(mask.ndim):
        lower = [slice(None)] * mask.ndim
        upper = [slice(None)] * mask.ndim
        lower[axis] = slice(None, -1)
        upper[axis] = slice(1, None)
        change = mask[tuple(lower)] != mask[tuple(upper)]
        seeds[tuple(lower)] |= change
        seeds[tuple(upper)] |= change
    return seeds


def boundary_canny2d(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Canny contours of the background mask, slice by slice along :func:`slice_axis` (2D: one slice)."""
    background = ~np.asarray(mask, dtype=bool)
    if background.ndim == 2:
        return feature.canny(background.astype(np.float64), sigma=1.0, mode="nearest")
    axis = slice_axis(spacing)
    moved = np.moveaxis(background, axis, 0)
    seeds = np.zeros(moved.shape, dtype=bool)
    for index, plane in enumerate(moved):
        # a slice without both classes has no edge; skipping it saves most of the per-slice cost
        if plane.all() or not plane.any():
            continue
        seeds[index] = feature.canny(plane.astype(np.float64), sigma=1.0, mode="nearest")
    return np.moveaxis(seeds, 0, axis)


def boundary_seeds(mask: np.ndarray, spacing: Sequence[float], mode: str,
                   ignored: np.ndarray | None = None) -> np.ndarray:
    """The seed set R_B of ``mask`` for the named extractor; ``ignored`` (bool, same shape, or None):
    voxels of unknown class, which create no seeds (see module docstring)."""
    seeds = _extract(mask, spacing, mode)
    if ignored is None or not np.any(ignored):
        return seeds
    ignored = np.asarray(ignored, dtype=bool)
    return seeds & _extract(np.asarray(mask, dtype=bool) | ignored, spacing, mode) & ~ignored


def _extract(mask: np.ndarray, spacing: Sequence[float], mode: str) -> np.ndarray:
    if mode == "3d":
        return boundary_3d(mask)
    if mode == "canny2d":
        return boundary_canny2d(mask, spacing)
    raise ValueError(f"unknown boundary mode {mode!r}; choose one of {BOUNDARY_MODES}")


def seed_padding(mode: str) -> int:
    """Context (voxels) around the mask's bounding box an extractor needs to find every seed.

    ``3d`` seeds lie at most one voxel outside the box; Canny with sigma 1 places its contour
    within a pixel of the step, but its Gaussian (truncated at 4 sigma) needs 4 pixels of context
    to give the same contour as on the full slice.
    """
    return 1 if mode == "3d" else 4
