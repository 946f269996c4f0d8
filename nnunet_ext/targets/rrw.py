"""Rectified region-wise (RRW) maps of Valverde and Tohka, *Region-wise Loss for Biomedical Image
Segmentation*, Eq. 4::

    z_ik = -|i - b_ik| / max_{j in Omega_k} |j - b_jk|    if i in Omega_k
    z_ik = 1                                               otherwise

with b_ik the nearest boundary voxel of class k. As in the authors' code, |i - b_ik| is the
distance from a voxel of the class to the nearest voxel outside it (the exact EDT of the mask), here
in mm (the authors used voxel units: identical for isotropic data). Voxels of the class therefore
lie in [-1, 0), strictly below the 1 of every other class: each voxel has exactly one component
below the others, the rectification principle of Sec. 3.3.

Channels (:class:`RRWOptions`): one map per channel mask (region or foreground label); with
``background`` the map of the background (voxels in no mask, or outside nnU-Net's nonzero mask
``valid``) comes first: the 1 + K classes of a softmax network. With ``complements`` the maps of
each mask's complement follow, for the two-class (complement, region) reading of a sigmoid output
(see :class:`nnunet_ext.losses.distance.RegionWiseLoss`).

Degenerate masks: an empty mask gives all 1 (the class is pushed to 0 everywhere, as in the
authors' code); a mask with no voxel outside it in the array has no boundary there and gives all -1
(the array border is not a boundary, as for the other maps).

Ignore label (``ignored``: voxels of nnU-Net's ignore label, class unknown): they belong to no mask,
not even the background or a complement, and create no boundary: d is the distance to the nearest
voxel *known* to be outside the class, so a class next to an ignored area keeps its depth there. The
ignored voxels are 1 in every channel (equal components: no gradient even unmasked; the loss masks
them). A mask whose outside is entirely ignored has no known boundary: -1 on it.

Cost: only inside distances are needed, each on its mask's bounding box grown by one voxel
(exact); a background or complement mask usually spans the array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from nnunet_ext.targets.common import TargetOptions, channel_masks_within, ignored_voxels
from nnunet_ext.targets.dtm import inside_distance


@dataclass(frozen=True)
class RRWOptions(TargetOptions):
    """Which RRW maps to store; :meth:`as_params` is the ``TargetSpec.params`` of the maps."""

    background: bool = field(default=False, metadata={"help": "prepend the map of the background (softmax, label datasets)"})
    complements: bool = field(default=False, metadata={"help": "append the maps of each mask's complement (sigmoid, region datasets)"})


def rrw_maps(
    image: np.ndarray,
    channel_masks: np.ndarray,
    valid: np.ndarray,
    spacing: Sequence[float],
    options: RRWOptions,
    ignored: np.ndarray | None = None,
) -> np.ndarray:
    """RRW maps (Eq. 4), float32 ([1 +] K [+ K], *spatial), values in [-1, 0) inside, 1 elsewhere.

    Channel order: [background,] mask_1..mask_K[, not mask_1..not mask_K]. Arguments as
    :func:`nnunet_ext.targets.dtm.dtm_maps` (``image`` unused; ``ignored``: see the module docstring).
    """
    masks = channel_masks_within(image, channel_masks, valid, spacing)
    ignored = ignored_voxels(ignored, masks.shape[1:])
    known = None if ignored is None else ~ignored
    if known is not None:
        masks = masks & known
    stack = [masks]
    if options.background:
        stack.insert(0, ~masks.any(0, keepdims=True) if known is None else ~masks.any(0, keepdims=True) & known)
    if options.complements:
        stack.append(~masks if known is None else ~masks & known)
    masks = np.concatenate(stack)
    maps = np.empty(masks.shape, dtype=np.float32)
    for k, mask in enumerate(masks):
        maps[k] = rrw_map(mask, spacing, ignored)
    return maps


def rrw_map(mask: np.ndarray, spacing: Sequence[float], ignored: np.ndarray | None = None) -> np.ndarray:
    """Eq. 4 for one bool mask: float32, -distance / max distance inside, 1 elsewhere; ``ignored``
    (bool or None): voxels of unknown class (1, and no boundary)."""
    mask = np.asarray(mask, dtype=bool)
    out = np.ones(mask.shape, dtype=np.float32)
    if ignored is not None and np.any(ignored):
        ignored = np.asarray(ignored, dtype=bool)
        mask = mask & ~ignored
        if not mask.any():
            return out
        not_known_outside = mask | ignored
        if not_known_outside.all():
            out[mask] = -1.0
            return out
        distance = inside_distance(not_known_outside, spacing)  # to the nearest known voxel outside the class
        out[mask] = -distance[mask] / distance[mask].max()
        return out
    if not mask.any():
        return out
    if mask.all():
        out[:] = -1.0
        return out
    distance = inside_distance(mask, spacing)
    out[mask] = -distance[mask] / distance.max()
    return out
