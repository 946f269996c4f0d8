"""nnU-Net's data loader plus the case's target maps, cropped with the same bbox as data and seg."""

from __future__ import annotations

import numpy as np
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from threadpoolctl import threadpool_limits

from nnunet_ext.training.transforms import FAR_BACKGROUND


class nnUNetDataLoaderWithTargets(nnUNetDataLoader):
    """:class:`nnUNetDataLoader` whose batches also hold the target maps under ``'regression_target'``.

    Needs a dataset with ``load_targets`` (:class:`~nnunet_ext.training.dataset.nnUNetDatasetBlosc2WithTargets`).
    ``generate_train_batch`` follows nnU-Net 2.8.1's step by step (same sampling calls in the same order,
    so foreground oversampling and the random stream are unchanged) and adds the maps:

    - cropped with the bbox used for data and seg, padded with ``map_padding_value`` (default -1, far
      background) where the bbox leaves the case, cast from the stored float16 to float32;
    - handed to the transforms as ``regression_target`` together with image and segmentation, so one set of
      random spatial parameters moves all three; use a pipeline from
      :func:`~nnunet_ext.training.transforms.with_regression_target` so that spatial augmentation pads the maps
      with -1 too and deep supervision gets one map per scale.

    The batch format is described in :mod:`nnunet_ext.training`.
    """

    def __init__(self, *args, map_padding_value: float = FAR_BACKGROUND, **kwargs):
        super().__init__(*args, **kwargs)
        self.map_padding_value = map_padding_value  # value of the maps where the bbox leaves the case

    def generate_train_batch(self):
        selected_keys = self.get_indices()
        batch = {'data': None, 'target': None, 'regression_target': None}

        with torch.no_grad():
            with threadpool_limits(limits=1, user_api=None):
                for j, key in enumerate(selected_keys):
                    force_fg = self.get_do_oversample(j)
                    data, seg, seg_prev, properties = self._data.load_case(key)
                    maps = self._data.load_targets(key)
                    shape = data.shape[1:]
                    if tuple(maps.shape[1:]) != tuple(shape):
                        raise ValueError(f"target maps of case {key} have spatial shape {tuple(maps.shape[1:])}, "
                                         f"the case has {tuple(shape)}: recompute the maps")

                    bbox_lbs, bbox_ubs = self.get_bbox(shape, force_fg, properties['class_locations'])
                    bbox = [[lb, ub] for lb, ub in zip(bbox_lbs, bbox_ubs)]

                    data_cropped = torch.from_numpy(crop_and_pad_nd(data, bbox, 0)).float()
                    seg_cropped = torch.from_numpy(
                        crop_and_pad_nd(seg, bbox, -1, cast_cropped_to=np.int16)).to(torch.int16)
                    if seg_prev is not None:
                        seg_prev_cropped = torch.from_numpy(
                            crop_and_pad_nd(seg_prev, bbox, -1, cast_cropped_to=np.int16)).to(torch.int16)
                        seg_cropped = torch.cat((seg_cropped, seg_prev_cropped[None]), dim=0)
                    maps_cropped = torch.from_numpy(
                        crop_and_pad_nd(maps, bbox, self.map_padding_value, cast_cropped_to=np.float32))

                    if self.patch_size_was_2d:
                        data_cropped = data_cropped[:, 0]
                        seg_cropped = seg_cropped[:, 0]
                        maps_cropped = maps_cropped[:, 0]

                    sample = {'data': data_cropped, 'target': seg_cropped, 'regression_target': maps_cropped}
                    if self.transforms is not None:
                        transformed = self.transforms(**{'image': data_cropped, 'segmentation': seg_cropped,
                                                         'regression_target': maps_cropped})
                        if transformed.get('regression_target') is None:
                            # a BasicTransform without _apply_to_regr_target silently sets the key to None
                            raise ValueError("the transforms dropped 'regression_target'; adapt the pipeline with "
                                             "nnunet_ext.training.with_regression_target")
                        sample = {'data': transformed['image'], 'target': transformed['segmentation'],
                                  'regression_target': transformed['regression_target']}

                    for name, value in sample.items():
                        dtype = torch.float32 if name == 'data' else None
                        batch[name] = self._write(batch[name], j, value, dtype)
        return {**batch, 'keys': selected_keys}

    def _write(self, buffer, index: int, sample, dtype=None):
        """Stores one sample (a tensor, or a list with one tensor per scale) in the batch buffer, allocated on first use."""
        if isinstance(sample, list):
            if buffer is None:
                buffer = [torch.empty((self.batch_size, *s.shape), dtype=dtype or s.dtype) for s in sample]
            for scale_buffer, s in zip(buffer, sample):
                scale_buffer[index] = s
            return buffer
        if buffer is None:
            buffer = torch.empty((self.batch_size, *sample.shape), dtype=dtype or sample.dtype)
        buffer[index] = sample
        return buffer
