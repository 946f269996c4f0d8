"""Soft-label losses (LS, GeoLS; cross-entropy or JML) on nnU-Net's outputs and targets, one scale.

:class:`SoftLabelLoss` is called per deep-supervision scale as ``loss(output, seg)`` (label smoothing,
no maps: inside nnU-Net's ``DeepSupervisionWrapper``) or ``loss(output, seg, maps)`` (GeoLS, inside
:class:`~nnunet_ext.training.map_trainer.nnUNetTrainerWithTargetMaps`). It turns nnU-Net's target into
one-hot labels, builds the soft labels with :mod:`nnunet_ext.losses.soft_labels` and applies the
criterion; nnU-Net's network, inference and label handling stay unchanged:

- **label datasets** (softmax over 1 + K outputs): ``seg`` (B, 1, *) holds labels; one-hot over 1 + K
  classes; GeoLS maps (B, K, *) for the K foreground labels (GeoLS paper Eq. 6 with ``g_0 = 1 - mean g_k``);
  LS with C = 1 + K (Eq. 2). Criterion: softmax cross-entropy or softmax JML.
- **region datasets** (sigmoid per region, e.g. BraTS WT/TC/ET): ``seg`` (B, R[+1], *) holds nnU-Net's
  binary region masks (plus the ignore channel when the dataset has an ignore label); per region the
  binary soft label ``(1 - alpha) y_r + alpha g_r`` (GeoLS) or ``(1 - alpha) y_r + alpha / 2`` (LS);
  criterion: binary cross-entropy or sigmoid JML per region.

Voxels with nnU-Net's ignore label are excluded from the loss.
"""

from __future__ import annotations

import torch
from torch import nn

from nnunet_ext.losses.soft_labels import (
    JaccardMetricLoss,
    SoftBinaryCrossEntropyLoss,
    SoftCrossEntropyLoss,
    geols_region_soft_labels,
    geols_soft_labels,
    label_smoothing,
)
from nnunet_ext.training.loss_adapters.distance import PROBABILITIES
from nnunet_ext.training.loss_adapters.saturation import SaturatingActivation
from nnunet_ext.training.loss_adapters.seg_targets import one_hot_target

SOFT_LABELS = ("ls", "geols")
CRITERIA = ("ce", "jml")


class SoftLabelLoss(nn.Module):
    """``loss(output (B, C, *), seg (B, 1 or R[+1], *), maps (B, K, *) or None)`` for one scale.

    ``soft_labels``: ``"ls"`` (no maps) or ``"geols"`` (maps required); ``criterion``: ``"ce"`` (soft
    cross-entropy / BCE) or ``"jml"`` (:class:`~nnunet_ext.losses.soft_labels.JaccardMetricLoss`, JML1,
    per sample unless ``batch_jml``, as nnU-Net's ``batch_dice``); ``alpha`` the smoothing factor
    (0.1 in both papers); ``normalise`` GeoLS' g / sum_c g (paper) or not (authors' code), label
    datasets only.
    """

    def __init__(self, soft_labels: str, criterion: str, has_regions: bool, alpha: float = 0.1,
                 ignore_label: int | None = None, batch_jml: bool = False, normalise: bool = True):
        super().__init__()
        if soft_labels not in SOFT_LABELS:
            raise ValueError(f"soft_labels must be one of {SOFT_LABELS}, got {soft_labels!r}")
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.soft_labels = soft_labels
        self.has_regions = has_regions
        self.alpha = float(alpha)
        self.ignore_label = ignore_label
        self.normalise = normalise
        if criterion == "ce":
            self.criterion = SoftBinaryCrossEntropyLoss() if has_regions else SoftCrossEntropyLoss()
        else:
            self.criterion = JaccardMetricLoss("sigmoid" if has_regions else "softmax", batch=batch_jml)
        # JML has no log term: its gradient vanishes where a probability is confidently wrong (cross-entropy's does not)
        self.saturating_activation: SaturatingActivation | None = PROBABILITIES if criterion == "jml" else None

    def forward(self, output: torch.Tensor, seg: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
        y, mask = one_hot_target(seg, output.shape[1], self.has_regions, self.ignore_label)
        if self.soft_labels == "ls":
            target = label_smoothing(y, self.alpha, num_classes=2 if self.has_regions else None)
        else:
            expected = y.shape[1] if self.has_regions else y.shape[1] - 1
            if maps is None or maps.shape[1] != expected:
                got = None if maps is None else tuple(maps.shape)
                raise ValueError(f"GeoLS needs {expected} map channel(s), got {got}; recompute them with "
                                 f"nnUNetv2_precompute_targets --kind geols --overwrite")
            if self.has_regions:
                target = geols_region_soft_labels(y, maps, self.alpha)
            else:
                target = geols_soft_labels(y, maps, self.alpha, self.normalise)
        return self.criterion(output, target, mask)
