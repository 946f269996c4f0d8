"""The nnU-Net data path that carries per-case target maps (SiNG, distance, RRW, GeoLS maps).

These objects are pickled to nnU-Net's augmentation workers, so they live in this installed package
(not in the ``nnUNet_extTrainer`` folder) and pickle under the spawn start method.

nnU-Net's own ``nnUNetDataLoader`` (unchanged) with :class:`nnUNetDatasetBlosc2WithTargets` and the
pipelines of :func:`get_training_transforms_with_maps` / :func:`get_validation_transforms_with_maps`
gives batches::

    batch['data']    float32 (B, C + K, *patch): the C network input channels as in nnU-Net, then the K
                     maps at full resolution minus the kind's far value (0 wherever the patch leaves the image)
    batch['target']  nnU-Net's segmentation target, unchanged: a list with one int tensor
                     (B, 1 or n_regions, *scale_shape) per deep-supervision scale
    batch['keys']    case identifiers, as in nnU-Net

The map trainer (:class:`~nnunet_ext.training.map_trainer.nnUNetTrainerWithTargetMaps`) splits the maps off
before the network; its loss adds the far value back and pools them to each deep-supervision scale, on the
training device.
"""

from nnunet_ext.training.data.dataset import ImageWithMaps, nnUNetDatasetBlosc2WithTargets
from nnunet_ext.training.data.transforms import (
    AppendMapsToImage,
    SplitMapsFromImage,
    get_training_transforms_with_maps,
    get_validation_transforms_with_maps,
    with_target_maps,
)

__all__ = [
    "AppendMapsToImage",
    "ImageWithMaps",
    "SplitMapsFromImage",
    "get_training_transforms_with_maps",
    "get_validation_transforms_with_maps",
    "nnUNetDatasetBlosc2WithTargets",
    "with_target_maps",
]
