"""batchgeneratorsv2 transforms for continuous target maps under the key ``regression_target``.

(``regression_target`` is batchgeneratorsv2's name for any continuous per-voxel target, whatever the method.)

The maps reach the pipeline stacked on the image and shifted by their far value, ``maps - far``
(:mod:`nnunet_ext.training.data.dataset`: nnU-Net's loader carries only image and segmentation).
:class:`SplitMapsFromImage`, first, moves them to ``regression_target``; :class:`AppendMapsToImage`, last,
stacks them back onto the image, the one array nnU-Net's loader keeps besides the segmentation. The trainer
splits them off the network input, and its loss adds the far value back on the training device and pools
the maps to each deep-supervision scale (:class:`~nnunet_ext.training.map_trainer.SplitTargets`).

In between, nnU-Net's pipelines already move ``regression_target`` along with the image: ``SpatialTransform``
resamples it like the image (same grid, linear interpolation, zero padding), ``MirrorTransform`` flips it,
the pseudo-2D conversions reshape it, and image-only / seg-only transforms pass it through. Keeping the maps
shifted is what makes every padding right: the loader's crop and ``SpatialTransform`` pad with 0, which is
the far value once it is added back. For a transform T that is linear and pads with zeros, ``T(S - v) + v``
equals T applied to S padded with the constant v (every output voxel is a convex combination of input
voxels and zeros; the shift turns each zero into v); mirroring and area pooling commute with the shift.
So the maps take no extra operation in the workers beyond the split and the append.

:func:`with_target_maps` adapts any pipeline built by a trainer's ``get_training_transforms`` /
``get_validation_transforms``; the seg path is left exactly as nnU-Net built it.
"""

from __future__ import annotations

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.random import RandomTransform


class SplitMapsFromImage(BasicTransform):
    """Moves the channels after the first ``image_channels`` of ``image`` to ``regression_target`` (views, no copy)."""

    def __init__(self, image_channels: int):
        super().__init__()
        self.image_channels = image_channels

    def apply(self, data_dict: dict, **params) -> dict:
        image = data_dict['image']
        if image.shape[0] <= self.image_channels:
            raise ValueError(f"expected {self.image_channels} image channels followed by target maps, got "
                             f"{image.shape[0]} channels: the dataset was built without a target_spec")
        data_dict['regression_target'] = image[self.image_channels:]
        data_dict['image'] = image[:self.image_channels]
        return data_dict


class AppendMapsToImage(BasicTransform):
    """Stacks ``regression_target`` (K, *patch) after the image's channels and removes the key."""

    def apply(self, data_dict: dict, **params) -> dict:
        maps = data_dict.pop('regression_target', None)
        if maps is None:
            raise ValueError("no 'regression_target' to append: the transforms dropped it; adapt the pipeline "
                             "with nnunet_ext.training.data.with_target_maps")
        data_dict['image'] = torch.cat((data_dict['image'], maps.to(data_dict['image'].dtype)))
        return data_dict


def _check_zero_padding(transform: BasicTransform) -> None:
    """Raises unless every ``SpatialTransform`` in ``transform`` pads the image, and so the maps, with zeros."""
    if isinstance(transform, SpatialTransform):
        pads_with_zero = transform.padding_mode_image == 'zeros' or (
            transform.padding_mode_image == 'constant' and transform.padding_value_image == 0)
        if not pads_with_zero:
            raise ValueError("SpatialTransform pads the image (and so the target maps) with "
                             f"{transform.padding_mode_image!r}/{transform.padding_value_image}; padding the maps "
                             "with their far value needs zero padding there")
    for child in getattr(transform, 'transforms', ()):  # ComposeTransforms
        _check_zero_padding(child)
    if isinstance(transform, RandomTransform):
        _check_zero_padding(transform.transform)


def with_target_maps(pipeline: BasicTransform, image_channels: int) -> ComposeTransforms:
    """Adapts an nnU-Net transform pipeline so that it also carries the maps stacked on the image.

    Returns a new pipeline (the input is not modified): :class:`SplitMapsFromImage` first, then the transforms
    of ``pipeline``, then :class:`AppendMapsToImage`. ``image_channels`` is the number of the case's image
    channels (the dataset's, before a cascade adds its one-hot channels). Raises if a ``SpatialTransform``
    would pad with anything but zeros. Adapting an adapted pipeline again returns an equivalent pipeline.
    """
    _check_zero_padding(pipeline)
    inner = pipeline.transforms if isinstance(pipeline, ComposeTransforms) else [pipeline]
    inner = [t for t in inner if not isinstance(t, (SplitMapsFromImage, AppendMapsToImage))]
    return ComposeTransforms([SplitMapsFromImage(image_channels), *inner, AppendMapsToImage()])


def get_training_transforms_with_maps(*args, image_channels: int, **kwargs) -> ComposeTransforms:
    """nnU-Net's training pipeline (``nnUNetTrainer.get_training_transforms``, whose arguments ``args`` and
    ``kwargs`` are) adapted by :func:`with_target_maps`."""
    # imported here: augmentation workers unpickle this module and need none of the trainer's imports
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    return with_target_maps(nnUNetTrainer.get_training_transforms(*args, **kwargs), image_channels)


def get_validation_transforms_with_maps(*args, image_channels: int, **kwargs) -> ComposeTransforms:
    """nnU-Net's validation pipeline (``nnUNetTrainer.get_validation_transforms``, whose arguments ``args`` and
    ``kwargs`` are) adapted by :func:`with_target_maps`."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    return with_target_maps(nnUNetTrainer.get_validation_transforms(*args, **kwargs), image_channels)
