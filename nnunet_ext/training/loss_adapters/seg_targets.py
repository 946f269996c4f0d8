"""nnU-Net's segmentation target at one deep-supervision scale, as the map losses need it.

nnU-Net hands a loss ``seg``: for label datasets (B, 1, *) label values; for region datasets (B, R, *)
binary region masks, plus a last channel marking nnU-Net's ignore label when the dataset has one.
"""

from __future__ import annotations

import torch


def ignore_mask(seg: torch.Tensor, has_regions: bool, ignore_label: int | None) -> torch.Tensor | None:
    """Bool (B, 1, *): True where the voxel counts (not nnU-Net's ignore label); None if there is none."""
    if ignore_label is None:
        return None
    return ~seg[:, -1:].bool() if has_regions else seg[:, :1] != ignore_label


def one_hot_target(seg: torch.Tensor, num_channels: int, has_regions: bool,
                   ignore_label: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Float (B, num_channels, *) one-hot labels or region masks, and :func:`ignore_mask`.

    Ignored voxels get the one-hot of label 0; the mask excludes them from any loss.
    """
    mask = ignore_mask(seg, has_regions, ignore_label)
    if has_regions:
        return seg[:, :num_channels].float(), mask
    labels = seg[:, :1].long()
    if mask is not None:
        labels = torch.where(mask, labels, 0)
    shape = (labels.shape[0], num_channels, *labels.shape[2:])
    return torch.zeros(shape, dtype=torch.float32, device=seg.device).scatter_(1, labels, 1.0), mask
