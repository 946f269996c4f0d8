"""Signed distance transform maps (DTMs) for the distance losses: GSL (Celaya, Riviere, Fuentes,
Eq. 12) and the Boundary loss (Kervadec et al., MIDL 2019; the RW-Boundary maps of Eq. 3 in
Valverde and Tohka).

For a binary mask M on a grid with voxel spacing s (mm), the signed distance of a voxel i is::

    D(i) = + min_{j in M}     |i - j|_s     if i is not in M   (distance to the nearest voxel of M)
    D(i) = - min_{j not in M} |i - j|_s     if i is in M       (distance to the nearest voxel outside M)

with |.|_s the Euclidean distance between voxel centres in mm. Negative inside, positive outside,
and antisymmetric under complement (the DTM of not-M is -D), so a region's complement adds nothing
a loss does not already see. The boundary lies between the two layers of voxels that touch each
other: both layers have |D| = the spacing across the face (never 0). Kervadec et al.'s code shifts
the inside by one voxel so that the inner layer is 0; GSL weights voxels by D^2, and with that shift
the inner layer would carry no weight.

Degenerate channels: an empty mask, or a mask without any voxel outside it in the array, has no
boundary in the array and gives an all-zero map (no distance information: zero weight in GSL and
the Boundary loss; the region loss still sees the class). As for the SiNG maps, the array border is
not a boundary (nnU-Net crops cases to their nonzero region) and voxels outside nnU-Net's nonzero
mask (``valid`` False) are background.

Ignore label (``ignored``: voxels of nnU-Net's ignore label, class unknown): they are on neither
side, so they create no boundary. |D| is the distance to the nearest voxel *known* to be on the other
side: outside voxels measure to the nearest voxel of M (as without ignored voxels), voxels of M to the
nearest known voxel outside M (ignored voxels do not count, so no false boundary appears where M
meets an ignored area); the ignored voxels themselves get 0 (no distance information; the losses mask
them anyway). The background channel (``background``) excludes ignored voxels like every mask. A mask
without any known voxel outside it has no boundary: all 0.

Cost: the inside distance of a mask only needs the mask's bounding box grown by one voxel (the
nearest outside voxel of a voxel in the box is never farther than the nearest voxel of that margin,
by projection onto the box), so it runs on the box; the outside distance needs the whole array
(the exact EDT of :mod:`~nnunet_ext.targets.euclidean`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from nnunet_ext.targets.common import TargetOptions, bounding_box, channel_masks_within, ignored_voxels
from nnunet_ext.targets.euclidean import distance_to_outside


@dataclass(frozen=True)
class DTMOptions(TargetOptions):
    """Parameters of the DTMs; :meth:`as_params` is the ``TargetSpec.params`` of the maps.

    ``background`` prepends the DTM of the background (voxels in no channel mask, or outside
    ``valid``): the 1 + K channels of a softmax network, as GSL's Eq. 12 sums over all classes.
    ``normalise`` divides each channel by its largest |D| over the case (values in [-1, 1]), as the
    GSL authors' current (MIST) code does.
    """

    background: bool = field(default=False, metadata={"help": "prepend the DTM of the background (label datasets)"})
    normalise: bool = field(default=False, metadata={"help": "divide each channel by its max |D| (GSL authors' MIST code)"})


def dtm_maps(
    image: np.ndarray,
    channel_masks: np.ndarray,
    valid: np.ndarray,
    spacing: Sequence[float],
    options: DTMOptions,
    ignored: np.ndarray | None = None,
) -> np.ndarray:
    """Signed distance maps in mm, float32 (K, *spatial), or (1 + K, *spatial) with ``background``.

    ``channel_masks`` bool (K, *spatial), one per region or foreground label; ``valid`` bool
    (*spatial), nnU-Net's nonzero mask; ``spacing`` the voxel spacing per spatial axis (2D or 3D);
    ``ignored`` bool (*spatial) or None, voxels of nnU-Net's ignore label (module docstring).
    ``image`` is not used (the maps depend on the masks only); it is part of the target-kind signature.
    """
    masks = channel_masks_within(image, channel_masks, valid, spacing)
    ignored = ignored_voxels(ignored, masks.shape[1:])
    if ignored is not None:
        masks = masks & ~ignored
    if options.background:
        background = ~masks.any(0, keepdims=True)
        if ignored is not None:
            background &= ~ignored
        masks = np.concatenate([background, masks])
    maps = np.empty(masks.shape, dtype=np.float32)
    for k, mask in enumerate(masks):
        maps[k] = signed_distance(mask, spacing, ignored)
        if options.normalise:
            scale = float(np.abs(maps[k]).max())
            if scale > 0:
                maps[k] /= scale
    return maps


def signed_distance(mask: np.ndarray, spacing: Sequence[float], ignored: np.ndarray | None = None) -> np.ndarray:
    """D of the module docstring for one bool mask: float32, negative inside, positive outside, mm;
    ``ignored`` (bool or None): voxels of unknown class, 0 in the result and no boundary."""
    mask = np.asarray(mask, dtype=bool)
    if ignored is not None and np.any(ignored):
        ignored = np.asarray(ignored, dtype=bool)
        mask = mask & ~ignored
        not_known_outside = mask | ignored
        if not mask.any() or not_known_outside.all():
            return np.zeros(mask.shape, dtype=np.float32)
        spacing = tuple(float(s) for s in spacing)
        outside = distance_to_outside(~mask, spacing)
        inside = inside_distance(not_known_outside, spacing)  # to the nearest known voxel outside the mask
        return np.where(mask, -inside, np.where(ignored, np.float32(0.0), outside)).astype(np.float32)
    if not mask.any() or mask.all():
        return np.zeros(mask.shape, dtype=np.float32)
    spacing = tuple(float(s) for s in spacing)
    outside = distance_to_outside(~mask, spacing)
    return outside - inside_distance(mask, spacing)


def inside_distance(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """float32: for each voxel of ``mask`` the distance (mm) to the nearest voxel outside it, 0 elsewhere.

    Computed on the mask's bounding box grown by one voxel (exact, see the module docstring). The
    mask must have at least one voxel and at least one voxel outside it.
    """
    box = bounding_box(mask, 1)
    out = np.zeros(mask.shape, dtype=np.float32)
    out[box] = distance_to_outside(mask[box], spacing)
    return out

