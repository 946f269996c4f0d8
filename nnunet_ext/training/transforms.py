"""batchgeneratorsv2 transforms for continuous target maps under the key ``regression_target``.

nnU-Net's pipelines already move ``regression_target`` along with the image: ``SpatialTransform``
resamples it like the image (same grid, linear interpolation), ``MirrorTransform`` flips it, the pseudo-2D
conversions reshape it, and image-only / seg-only transforms pass it through. Two things are missing:

- padding: ``SpatialTransform`` pads the regression target like the image, with 0. For a signed map 0 means
  "on the boundary", while outside the image is far background, -1. :class:`ConstantPaddedRegressionTarget`
  fixes this without touching the image.
- deep supervision: ``DownsampleSegForDSTransform`` only handles the segmentation.
  :class:`DownsampleRegressionTargetForDSTransform` produces the per-scale list for the maps.

:func:`with_regression_target` applies both to any pipeline built by a trainer's
``get_training_transforms`` / ``get_validation_transforms``; the seg path is left exactly as nnU-Net built it.
"""

from __future__ import annotations

from typing import List, Tuple, Union

import numpy as np
import torch
from batchgeneratorsv2.helpers.scalar_type import RandomScalar
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from batchgeneratorsv2.transforms.utils.random import RandomTransform
from torch.nn.functional import interpolate

#: value of a signed target map outside the image: far background (SiNG, normalised SDMs)
FAR_BACKGROUND = -1.0


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

    def __init__(self, transform: BasicTransform, padding_value: float = FAR_BACKGROUND):
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


class DownsampleRegressionTargetForDSTransform(BasicTransform):
    """Turns ``regression_target`` (K, *spatial) into a list with one map per deep-supervision scale.

    Same scales and output shapes as nnU-Net's ``DownsampleSegForDSTransform`` (``round(shape * scale)``),
    so the lists line up with the segmentation's and the network's outputs. Interpolation is ``area``
    (adaptive average pooling): a low-resolution output voxel covers a block of full-resolution voxels and
    its target becomes the block's mean. That keeps values inside [-1, 1] (a convex combination, no
    overshoot as with cubic), uses every voxel of the block (trilinear sampling at factor 4 would skip half
    of them), and is the same operation at every scale. Image and segmentation are left untouched, which is
    why ``apply`` is overridden: BasicTransform's default would set them to None.
    """

    def __init__(self, ds_scales: Union[List, Tuple]):
        super().__init__()
        self.ds_scales = ds_scales

    def apply(self, data_dict: dict, **params) -> dict:
        if data_dict.get('regression_target') is not None:
            data_dict['regression_target'] = self._apply_to_regr_target(data_dict['regression_target'], **params)
        return data_dict

    def _apply_to_regr_target(self, regression_target: torch.Tensor, **params) -> List[torch.Tensor]:
        results = []
        for scale in self.ds_scales:
            if not isinstance(scale, (tuple, list)):
                scale = [scale] * (regression_target.ndim - 1)
            elif len(scale) != regression_target.ndim - 1:
                raise ValueError(f"scale {scale} does not match a map of shape {tuple(regression_target.shape)}")
            if all(s == 1 for s in scale):
                results.append(regression_target)
            else:
                new_shape = [round(size * s) for size, s in zip(regression_target.shape[1:], scale)]
                results.append(interpolate(regression_target[None].float(), new_shape, mode='area')[0])
        return results


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


def with_regression_target(pipeline: BasicTransform, padding_value: float = FAR_BACKGROUND) -> ComposeTransforms:
    """Adapts an nnU-Net transform pipeline so that it also carries ``regression_target``.

    Returns a new pipeline (the input is not modified) in which every ``SpatialTransform`` (also inside
    ``ComposeTransforms`` / ``RandomTransform``) pads the maps with ``padding_value`` and, right after each
    ``DownsampleSegForDSTransform``, a :class:`DownsampleRegressionTargetForDSTransform` with the same scales
    turns the maps into the per-scale list. Without deep supervision the maps stay a single tensor.
    Adapting an adapted pipeline again returns an equivalent pipeline.
    """
    adapted = _wrap_spatial_transforms(pipeline, padding_value)
    if not isinstance(adapted, ComposeTransforms):
        adapted = ComposeTransforms([adapted])
    transforms = []
    for transform in adapted.transforms:
        if isinstance(transform, DownsampleRegressionTargetForDSTransform):
            continue  # from an earlier adaptation; re-added below, so adapting twice changes nothing
        transforms.append(transform)
        if isinstance(transform, DownsampleSegForDSTransform):
            transforms.append(DownsampleRegressionTargetForDSTransform(transform.ds_scales))
    return ComposeTransforms(transforms)


def get_regression_training_transforms(
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
        padding_value: float = FAR_BACKGROUND,
) -> ComposeTransforms:
    """nnU-Net's training pipeline (``nnUNetTrainer.get_training_transforms``, same arguments) plus the maps,
    padded with ``padding_value`` by spatial augmentation."""
    # imported here: augmentation workers unpickle this module and need none of the trainer's imports
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    return with_regression_target(nnUNetTrainer.get_training_transforms(
        patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
        use_mask_for_norm=use_mask_for_norm, is_cascaded=is_cascaded, foreground_labels=foreground_labels,
        regions=regions, ignore_label=ignore_label), padding_value)


def get_regression_validation_transforms(
        deep_supervision_scales: Union[List, Tuple, None],
        is_cascaded: bool = False,
        foreground_labels: Union[Tuple[int, ...], List[int]] = None,
        regions: List[Union[List[int], Tuple[int, ...], int]] = None,
        ignore_label: int = None,
) -> ComposeTransforms:
    """nnU-Net's validation pipeline (``nnUNetTrainer.get_validation_transforms``, same arguments) plus the maps."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    return with_regression_target(nnUNetTrainer.get_validation_transforms(
        deep_supervision_scales, is_cascaded=is_cascaded, foreground_labels=foreground_labels,
        regions=regions, ignore_label=ignore_label))

