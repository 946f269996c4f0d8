"""Voxel masks for every loss of :mod:`nnunet_ext.losses`: which voxels count (ignore label, padding), and how much.

``mask`` is (B, 1 or K, *spatial), bool or float: 0 excludes a voxel, a float weights it; ``None`` counts
every voxel. Pure torch.
"""

from __future__ import annotations

import torch


def mask_weights(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """The mask as float weights broadcast to ``like`` (B, K, *spatial), or None for 'all voxels'."""
    if mask is None:
        return None
    if mask.ndim != like.ndim or mask.shape[0] != like.shape[0] or mask.shape[2:] != like.shape[2:] \
            or mask.shape[1] not in (1, like.shape[1]):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit (B, 1 or K, *spatial) = {tuple(like.shape)}")
    return mask.to(like.dtype).expand_as(like)


def masked_mean(per_voxel: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of ``per_voxel`` (B, K, *spatial) over the voxels of ``mask``, weighted by it.

    A mask that excludes every voxel gives 0, still attached to the graph, so ``backward`` works.
    """
    weights = mask_weights(mask, per_voxel)
    if weights is None:
        return per_voxel.mean()
    # where() first, so that whatever sits in excluded voxels (e.g. an inf from padding) cannot leak
    # into the sum as inf * 0 = nan
    numerator = (torch.where(weights > 0, per_voxel, 0.0) * weights).sum()
    denominator = weights.sum()
    # an all-excluded batch has numerator 0; returning it keeps the graph without dividing by 0
    return torch.where(denominator > 0, numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny), numerator)
