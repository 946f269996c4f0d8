"""batchgeneratorsv2 transforms for continuous target maps under the key ``regression_target``.

(``regression_target`` is batchgeneratorsv2's name for any continuous per-voxel target, whatever the method.)

The maps reach the pipeline stacked on the image (:mod:`nnunet_ext.training.data.dataset`: nnU-Net's loader
carries only image and segmentation). :class:`SplitMapsFromImage`, first, moves them to ``regression_target``;
:class:`AppendMapsToImage`, last, stacks the augmented maps back onto the image, the one array nnU-Net's
loader keeps besides the segmentation; the trainer splits them off again before the network.

In between, nnU-Net's pipelines already move ``regression_target`` along with the image: ``SpatialTransform``
resamples it like the image (same grid, linear interpolation), ``MirrorTransform`` flips it, the pseudo-2D
conversions reshape it, and image-only / seg-only transforms pass it through. One thing is missing:
``SpatialTransform`` pads the regression target like the image, with 0. For a signed map 0 means "on the
boundary", while outside the image is far background, -1. :class:`ConstantPaddedRegressionTarget` fixes this
without touching the image. The maps stay at full resolution: their deep-supervision scales are pooled on
the training device, in the loss (:class:`~nnunet_ext.training.map_trainer.SplitTargets`).

:func:`with_target_maps` adapts any pipeline built by a trainer's ``get_training_transforms`` /
``get_validation_transforms``; the seg path is left exactly as nnU-Net built it.
"""

from __future__ import annotations

from typing import List, Tuple, Union

import numpy as np
import torch
from batchgeneratorsv2.helpers.scalar_type import RandomScalar
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.random import RandomTransform


class SplitMapsFromImage(BasicTransform):
    """Moves the channels after the first ``image_channels`` of ``image`` to ``regression_target``, plus ``far_value``.

    The inverse of the dataset's stacking (:class:`~nnunet_ext.training.data.dataset.ImageWithMaps`), where
    zero padding by the loader stands for the far value.
    """

    def __init__(self, image_channels: int, far_value: float):
        super().__init__()
        self.image_channels = image_channels
        self.far_value = far_value

    def apply(self, data_dict: dict, **params) -> dict:
        image = data_dict['image']
        if image.shape[0] <= self.image_channels:
            raise ValueError(f"expected {self.image_channels} image channels followed by target maps, got "
                             f"{image.shape[0]} channels: the dataset was built without a target_spec")
        data_dict['regression_target'] = image[self.image_channels:] + self.far_value
        data_dict['image'] = image[:self.image_channels]
        return data_dict


class AppendMapsToImage(BasicTransform):
    """Stacks ``regression_target`` (K, *patch) after the image's channels and removes the key."""

    def apply(self, data_dict: dict, **params) -> dict:
        maps = data_dict.pop('regression_target', None)
        if maps is None:
            raise ValueError("no 'regression_target' to append: the transforms dropped it; adapt the pipeline "
                             "with nnunet_ext.training.with_target_maps")
        data_dict['image'] = torch.cat((data_dict['image'], maps.to(data_dict['image'].dtype)))
        return data_dict


class ConstantPaddedRegressionTarget(BasicTransform):
    """Runs ``transform`` so that it pads ``regression_target`` with ``padding_value`` instead of 0.

    Valid for transforms that are linear in the regression target and pad it with zeros, such as
    batchgeneratorsv2's ``SpatialTransform`` with ``padding_mode_image='zeros'`` (bilinear ``grid_sample``
    with zero padding, or a zero-padded crop when no deformation is sampled). For such a transform T,
    ``T(S - v) + v`` equals T applied to S padded with the constant v: every output voxel is a convex
    combination of input voxels and zeros, and shifting turns each zero into v. The image and the
    segmentation go through ``transform`` unchanged, with the same random parameters as the map, since
    ``transform`` samples its parameters once per call.
    """

    def __init__(self, transform: BasicTransform, padding_value: float):
        super().__init__()
        self.transform = transform
        self.padding_value = padding_value

    def apply(self, data_dict: dict, **params) -> dict:
        shifted = data_dict.get('regression_target') is not None
        if shifted:
            data_dict['regression_target'] = data_dict['regression_target'] - self.padding_value
        data_dict = self.transform(**data_dict)
        if shifted:
            data_dict['regression_target'] = data_dict['regression_target'] + self.padding_value
        return data_dict


def _wrap_spatial_transforms(transform: BasicTransform, padding_value: float) -> BasicTransform:
    if isinstance(transform, ConstantPaddedRegressionTarget):
        # already adapted: wrapping again would shift twice and pad with 2 * padding_value
        return transform
    if isinstance(transform, SpatialTransform):
        pads_with_zero = transform.padding_mode_image == 'zeros' or (
            transform.padding_mode_image == 'constant' and transform.padding_value_image == 0)
        if not pads_with_zero:
            raise ValueError("SpatialTransform pads the image (and so the regression target) with "
                             f"{transform.padding_mode_image!r}/{transform.padding_value_image}; constant padding "
                             "of the target maps needs zero padding there")
        return ConstantPaddedRegressionTarget(transform, padding_value)
    if isinstance(transform, RandomTransform):
        return RandomTransform(_wrap_spatial_transforms(transform.transform, padding_value), transform.apply_probability)
    if isinstance(transform, ComposeTransforms):
        return ComposeTransforms([_wrap_spatial_transforms(t, padding_value) for t in transform.transforms])
    return transform


def with_target_maps(pipeline: BasicTransform, image_channels: int, far_value: float) -> ComposeTransforms:
    """Adapts an nnU-Net transform pipeline so that it also carries the maps stacked on the image.

    Returns a new pipeline (the input is not modified): :class:`SplitMapsFromImage` first, then ``pipeline``
    with every ``SpatialTransform`` (also inside ``ComposeTransforms`` / ``RandomTransform``) padding the maps
    with ``far_value``, then :class:`AppendMapsToImage`. ``image_channels`` is the number of the case's image
    channels (the dataset's, before a cascade adds its one-hot channels). Adapting an adapted pipeline again
    returns an equivalent pipeline.
    """
    adapted = _wrap_spatial_transforms(pipeline, far_value)
    inner = adapted.transforms if isinstance(adapted, ComposeTransforms) else [adapted]
    inner = [t for t in inner if not isinstance(t, (SplitMapsFromImage, AppendMapsToImage))]
    return ComposeTransforms([SplitMapsFromImage(image_channels, far_value), *inner, AppendMapsToImage()])


def get_training_transforms_with_maps(
        patch_size: Union[np.ndarray, Tuple[int]],
        rotation_for_DA: RandomScalar,
        deep_supervision_scales: Union[List, Tuple, None],
        mirror_axes: Tuple[int, ...],
        do_dummy_2d_data_aug: bool,
        use_mask_for_norm: List[bool] = None,
        is_cascaded: bool = False,
        foreground_labels: Union[Tuple[int, ...], List[int]] = None,
        regions: List[Union[List[int], Tuple[int, ...], int]] = None,
        ignore_label: int = None,
        *,
        image_channels: int,
        far_value: float,
) -> ComposeTransforms:
    """nnU-Net's training pipeline (``nnUNetTrainer.get_training_transforms``, same arguments) plus the maps,
    padded with ``far_value`` by spatial augmentation."""
    # imported here: augmentation workers unpickle this module and need none of the trainer's imports
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    return with_target_maps(nnUNetTrainer.get_training_transforms(
        patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
        use_mask_for_norm=use_mask_for_norm, is_cascaded=is_cascaded, foreground_labels=foreground_labels,
        regions=regions, ignore_label=ignore_label), image_channels, far_value)


def get_validation_transforms_with_maps(
        deep_supervision_scales: Union[List, Tuple, None],
        is_cascaded: bool = False,
        foreground_labels: Union[Tuple[int, ...], List[int]] = None,
        regions: List[Union[List[int], Tuple[int, ...], int]] = None,
        ignore_label: int = None,
        *,
        image_channels: int,
        far_value: float,
) -> ComposeTransforms:
    """nnU-Net's validation pipeline (``nnUNetTrainer.get_validation_transforms``, same arguments) plus the maps."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    return with_target_maps(nnUNetTrainer.get_validation_transforms(
        deep_supervision_scales, is_cascaded=is_cascaded, foreground_labels=foreground_labels,
        regions=regions, ignore_label=ignore_label), image_channels, far_value)
