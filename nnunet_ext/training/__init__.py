"""nnU-Net adapters that carry per-case target maps (SiNG, distance, RRW, GeoLS maps) through nnU-Net's data path.

These objects are pickled to nnU-Net's augmentation workers, so they live in this installed package
(not in the ``nnUNet_extTrainer`` folder) and pickle under the spawn start method.

Batch format produced by :class:`nnUNetDataLoaderWithTargets` with the pipelines of
:func:`get_regression_training_transforms` / :func:`get_regression_validation_transforms`::

    batch['data']               float32 (B, C, *patch)                      as in nnU-Net
    batch['target']             nnU-Net's segmentation target, unchanged: a list with one int tensor
                                (B, 1 or n_regions, *scale_shape) per deep-supervision scale (a single
                                tensor without deep supervision); the trainer keeps using it for nnU-Net's
                                online pseudo-Dice
    batch['regression_target']  float32 maps, same structure as batch['target']: a list with one
                                (B, K, *scale_shape) tensor per deep-supervision scale (a single tensor
                                without deep supervision); the trainer's ``map_padding_value`` (-1, the far
                                background of SiNG maps, by default) wherever the patch leaves the image
    batch['keys']               case identifiers, as in nnU-Net
"""

from nnunet_ext.training.data_loader import nnUNetDataLoaderWithTargets
from nnunet_ext.training.dataset import nnUNetDatasetBlosc2WithTargets
from nnunet_ext.training.transforms import (
    FAR_BACKGROUND,
    ConstantPaddedRegressionTarget,
    DownsampleRegressionTargetForDSTransform,
    get_regression_training_transforms,
    get_regression_validation_transforms,
    with_regression_target,
)

__all__ = [
    "FAR_BACKGROUND",
    "ConstantPaddedRegressionTarget",
    "DownsampleRegressionTargetForDSTransform",
    "get_regression_training_transforms",
    "get_regression_validation_transforms",
    "nnUNetDataLoaderWithTargets",
    "nnUNetDatasetBlosc2WithTargets",
    "with_regression_target",
]
