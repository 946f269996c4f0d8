"""Losses, pure torch, no nnU-Net imports: regression of signed maps (SiNGR and its ablations, :mod:`.regression`),
distance and region-wise losses (GSL, RRW, Boundary, :mod:`.distance`), soft labels (LS, GeoLS, JML,
:mod:`.soft_labels`); voxel masks for all of them in :mod:`.masking`."""

from nnunet_ext.losses.regression import (
    FocalL1Loss,
    FocalL1SimpleLoss,
    OfficialSiNGRLoss,
    ProductLoss,
    TanhL1Loss,
    TanhL2Loss,
)
from nnunet_ext.losses.distance import BoundaryLoss, GeneralizedSurfaceLoss, RegionWiseLoss
from nnunet_ext.losses.soft_labels import JaccardMetricLoss, SoftBinaryCrossEntropyLoss, SoftCrossEntropyLoss

__all__ = ["FocalL1Loss", "FocalL1SimpleLoss", "OfficialSiNGRLoss", "ProductLoss", "TanhL1Loss", "TanhL2Loss"]
__all__ += ["JaccardMetricLoss", "SoftBinaryCrossEntropyLoss", "SoftCrossEntropyLoss"]
__all__ += ["BoundaryLoss", "GeneralizedSurfaceLoss", "RegionWiseLoss"]
