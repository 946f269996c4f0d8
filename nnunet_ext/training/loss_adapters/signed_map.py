"""The per-scale loss of signed-map regression trainers (SiNGR and its ablations) on nnU-Net outputs.

Which output channels regress which map, so that nnU-Net's *unchanged* inference gives SiNGR's
0-threshold rule:

- **region datasets** (BraTS-style, sigmoid heads): channel k regresses region k's map,
  ``S_k ~ tanh(z_k)``. nnU-Net predicts region k where ``sigmoid(z_k) > 0.5``, i.e. ``z_k > 0``, i.e.
  ``tanh(z_k) > 0``: the paper's 0-threshold.
- **label datasets** (softmax heads, ``1 + K`` outputs): class k's map is regressed by the difference
  ``d_k = z_k - z_0`` to the background channel, ``S_k ~ tanh(d_k)``. nnU-Net predicts
  ``argmax(z_0, ..., z_K)``, which equals ``argmax(0, d_1, ..., d_K)``: background where every
  ``tanh(d_k) <= 0`` (no class above the 0-threshold), otherwise the class with the largest value. The
  network and nnU-Net's predictor stay untouched; ``z_0`` is a free offset that cancels out.

Ignored voxels (nnU-Net's ignore label) are masked out of the loss: for label datasets they are
``seg == ignore_label``; for region datasets nnU-Net's region conversion appends them as the last
seg channel.
"""

from __future__ import annotations

import torch
from torch import nn

from nnunet_ext.training.loss_adapters.saturation import SaturatingActivation
from nnunet_ext.training.loss_adapters.seg_targets import ignore_mask


def regressed_outputs(output: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """The values whose tanh regresses the maps, ``(B, C, *) -> (B, K, *)``: z_k (regions), z_k - z_0 (labels)."""
    return output if has_regions else output[:, 1:] - output[:, :1]


def tanh_scores(output: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """q = (1 + tanh v) / 2 = sigmoid(2 v) (B, K, *), v the :func:`regressed_outputs`: tanh scaled to (0, 1)."""
    return torch.sigmoid(2.0 * regressed_outputs(output.float(), has_regions))


class SignedMapRegression(nn.Module):
    """``loss(output (B, C, *), seg (B, 1 or R[+1], *), maps (B, K, *))`` for one deep-supervision scale."""

    #: the regression losses compare tanh(v) with the maps (nnunet_ext/losses/regression.py)
    saturating_activation = SaturatingActivation("tanh", tanh_scores)

    def __init__(self, regression_loss: nn.Module, has_regions: bool, ignore_label: int | None = None):
        super().__init__()
        self.regression_loss = regression_loss
        self.has_regions = has_regions
        self.ignore_label = ignore_label

    def forward(self, output: torch.Tensor, seg: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        z = regressed_outputs(output, self.has_regions)
        mask = ignore_mask(seg, self.has_regions, self.ignore_label)
        if z.shape[1] != maps.shape[1]:
            raise ValueError(f"the network regresses {z.shape[1]} maps but the targets have {maps.shape[1]} channels; "
                             f"recompute them with nnUNetv2_precompute_targets --overwrite")
        return self.regression_loss(z, maps, mask)
