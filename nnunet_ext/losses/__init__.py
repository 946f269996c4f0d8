"""Regression losses for signed target maps (SiNGR and its ablations). Pure torch, no nnU-Net imports."""

from nnunet_ext.losses.regression import (
    FocalL1Loss,
    FocalL1SimpleLoss,
    L1Loss,
    L2Loss,
    OfficialSiNGRLoss,
    ProductLoss,
)
from nnunet_ext.losses.surface import BoundaryLoss, GeneralizedSurfaceLoss, RegionWiseLoss
from nnunet_ext.losses.soft_labels import JaccardMetricLoss, SoftBinaryCrossEntropyLoss, SoftCrossEntropyLoss

__all__ = ["FocalL1Loss", "FocalL1SimpleLoss", "L1Loss", "L2Loss", "OfficialSiNGRLoss", "ProductLoss"]
__all__ += ["JaccardMetricLoss", "SoftBinaryCrossEntropyLoss", "SoftCrossEntropyLoss"]
__all__ += ["BoundaryLoss", "GeneralizedSurfaceLoss", "RegionWiseLoss"]
