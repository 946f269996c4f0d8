"""Per-scale nnU-Net adapters of the distance losses (:mod:`nnunet_ext.losses.distance`), called by
:class:`~nnunet_ext.training.map_trainer.nnUNetTrainerWithTargetMaps` as ``loss(output, seg, maps)``.

What the network's outputs and nnU-Net's seg become, per dataset type:

- **region datasets** (sigmoid heads, seg = one-hot regions (B, R, *) [+ ignore channel]):
  P = sigmoid(output), T = the region channels, one map per region.
- **label datasets** (softmax heads, seg = labels (B, 1, *)): P = softmax(output) over the 1 + K
  classes, T = one-hot of seg; maps either cover all 1 + K classes (background map first) or the
  K foreground classes only (then P and T drop the background channel).

Voxels with nnU-Net's ignore label are masked out of the distance term (nnU-Net's own region loss
masks them itself). The maps' channel count must match; a mismatch names the fix.
"""

from __future__ import annotations

import torch
from torch import nn

from nnunet_ext.losses.distance import BoundaryLoss, GeneralizedSurfaceLoss, RegionWiseLoss
from nnunet_ext.training.loss_adapters.saturation import SaturatingActivation
from nnunet_ext.training.loss_adapters.seg_targets import ignore_mask, one_hot_target


def probabilities(output: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """P (B, C, *) at one scale: sigmoid per region, softmax over the classes."""
    return torch.sigmoid(output.float()) if has_regions else torch.softmax(output.float(), dim=1)


def foreground_probabilities(output: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """:func:`probabilities` of the regions, or of the foreground classes (B, K, *)."""
    probs = probabilities(output, has_regions)
    return probs if has_regions else probs[:, 1:]


#: losses linear in the sigmoid / softmax probabilities (the RW loss, JML)
PROBABILITIES = SaturatingActivation("probabilities", foreground_probabilities)


def _channel_check(maps: torch.Tensor, expected: int, what: str) -> None:
    if maps.shape[1] != expected:
        raise ValueError(f"the loss needs {expected} map channels ({what}) but the maps have {maps.shape[1]}; "
                         f"recompute them with nnUNetv2_precompute_targets --overwrite")


class GSLTerm(nn.Module):
    """GSL (Eq. 12) on nnU-Net outputs; ``with_background`` (label datasets): maps are [D_bg, D_1..D_K]."""

    def __init__(self, gsl: GeneralizedSurfaceLoss, has_regions: bool, ignore_label: int | None = None,
                 with_background: bool = True):
        super().__init__()
        self.gsl, self.has_regions, self.ignore_label = gsl, has_regions, ignore_label
        self.with_background = with_background

    def forward(self, output: torch.Tensor, seg: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        target, mask = one_hot_target(seg, output.shape[1], self.has_regions, self.ignore_label)
        probs = probabilities(output, self.has_regions)
        if not self.has_regions and not self.with_background:
            probs, target = probs[:, 1:], target[:, 1:]
        _channel_check(maps, probs.shape[1], "one per region" if self.has_regions else
                       ("background + one per label" if self.with_background else "one per foreground label"))
        return self.gsl(probs, target, maps, mask)


class BoundaryTerm(nn.Module):
    """Boundary loss on nnU-Net outputs: sigmoid per region, or softmax without the background; maps [D_1..D_K]."""

    def __init__(self, has_regions: bool, ignore_label: int | None = None):
        super().__init__()
        self.boundary, self.has_regions, self.ignore_label = BoundaryLoss(), has_regions, ignore_label

    def forward(self, output: torch.Tensor, seg: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        mask = ignore_mask(seg, self.has_regions, self.ignore_label)
        probs = probabilities(output, self.has_regions)
        if not self.has_regions:
            probs = probs[:, 1:]
        _channel_check(maps, probs.shape[1], "one per foreground region or label")
        return self.boundary(probs, maps, mask)


class RRWTerm(nn.Module):
    """RW loss (Eq. 1) with RRW maps on nnU-Net outputs.

    Label datasets: softmax over 1 + K classes, maps [Z_bg, Z_1..Z_K] (``RRWOptions(background=True)``).
    Region datasets: each sigmoid output is the two-class softmax over the logits (0, z_r), so P is
    [sigmoid(z_1..z_R), 1 - sigmoid(z_1..z_R)] and the maps are [Z_1..Z_R, Z_not1..Z_notR]
    (``RRWOptions(complements=True)``): RRW applied to each region-vs-rest problem.
    """

    #: the RW loss is linear in P (Eq. 1), so its gradient carries the probability's slope (Eq. 5)
    saturating_activation = PROBABILITIES

    def __init__(self, has_regions: bool, ignore_label: int | None = None):
        super().__init__()
        self.rw, self.has_regions, self.ignore_label = RegionWiseLoss(), has_regions, ignore_label

    def forward(self, output: torch.Tensor, seg: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        mask = ignore_mask(seg, self.has_regions, self.ignore_label)
        probs = probabilities(output, self.has_regions)
        if self.has_regions:
            probs = RegionWiseLoss.two_class_probabilities(probs)
        _channel_check(maps, probs.shape[1], "each region and its complement" if self.has_regions
                       else "background + one per label")
        return self.rw(probs, maps, mask)


class RegionAndDistanceLoss(nn.Module):
    """``alpha * region(output, seg) + (1 - alpha) * distance(output, seg, maps)`` (GSL Eq. 8 / Boundary loss).

    ``region`` is nnU-Net's own per-scale loss (Dice + CE, or Dice + BCE for regions); ``alpha`` is set by
    the trainer each epoch. Both terms are always evaluated, so a broken distance term shows even at alpha 1.
    """

    def __init__(self, region: nn.Module, distance: nn.Module, alpha: float = 1.0):
        super().__init__()
        self.region, self.distance, self.alpha = region, distance, alpha

    def forward(self, output: torch.Tensor, seg: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return self.alpha * self.region(output, seg) + (1.0 - self.alpha) * self.distance(output, seg, maps)
