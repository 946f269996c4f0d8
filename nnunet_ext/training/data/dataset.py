"""nnU-Net's blosc2 dataset whose cases carry their target maps as extra image channels.

nnU-Net's own data loader crops ``data`` and ``seg`` of a case with one bbox, pads the image with 0 and
hands both to the augmentation pipeline; it has no place for a third array. So the maps ride in the image:
:meth:`nnUNetDatasetBlosc2WithTargets.load_case` returns an :class:`ImageWithMaps`, a lazy stack of the
image channels and the maps shifted by their far value (``map - far``), so that the loader's zero padding
is the far value once the loss adds it back (:mod:`nnunet_ext.training.data.transforms` says how the
shifted maps go through augmentation). The loader, its sampling and its random stream stay nnU-Net's,
uncopied.
"""

from __future__ import annotations

from typing import List

import blosc2
import numpy as np
import torch
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.target_store import open_case, target_file, verify_case
from nnunet_ext.targets.spec import TargetSpec


class ImageWithMaps:
    """The (C + K, *spatial) float32 stack of a case's image (C channels) and maps minus ``far_value`` (K).

    Enough of an array for nnU-Net's loader (``shape``, ``dtype``, slicing, as ``crop_and_pad_nd`` uses them):
    slicing reads only the sliced block of both blosc2 arrays, so a patch decompresses only the patch.
    The shift is exact for the far values -1, 0 and 1 of the float16 maps.
    """

    def __init__(self, image, maps, far_value: float):
        if tuple(maps.shape[1:]) != tuple(image.shape[1:]):
            raise ValueError(f"the target maps have spatial shape {tuple(maps.shape[1:])}, the case has "
                             f"{tuple(image.shape[1:])}")
        self.image, self.maps, self.far_value = image, maps, np.float32(far_value)
        self.shape = (image.shape[0] + maps.shape[0], *image.shape[1:])
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __getitem__(self, index) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        channels, spatial = (index[0], index[1:]) if index else (slice(None), ())
        image = self.image[(slice(None), *spatial)]
        maps = self.maps[(slice(None), *spatial)]
        # one output array, each part written into it once (this runs for every patch the loader draws); torch
        # converts float16 to float32 with SIMD, NumPy one value at a time (5x slower on a 3 x 128^3 patch)
        block = np.empty((image.shape[0] + maps.shape[0], *image.shape[1:]), dtype=np.float32)
        block[:image.shape[0]] = image
        torch.from_numpy(block[image.shape[0]:]).copy_(torch.from_numpy(maps)).sub_(float(self.far_value))
        return block[channels]


class nnUNetDatasetBlosc2WithTargets(nnUNetDatasetBlosc2):
    """:class:`nnUNetDatasetBlosc2` whose ``load_case`` returns the image with the case's maps stacked on it.

    Built without a ``target_spec`` (as nnU-Net's final validation and cascade code build the dataset
    class, with only the first three arguments), ``load_case`` is nnU-Net's, unchanged. The instance holds
    only paths and the spec, no open files, so it pickles cheaply to augmentation workers. Whether the maps
    are fresh (:func:`nnunet_ext.target_store.case_status`) is the trainer's check, done once for all cases
    before training rather than on every patch; the maps' checksum is checked again on the first read of
    each case in each process (:func:`nnunet_ext.target_store.verify_case`: compressed bytes only), so maps
    corrupted on disk during training stop it with one line naming the case and ``repair_command``.

    Args:
        folder, identifiers, folder_with_segs_from_previous_stage: as in nnU-Net.
        target_spec: which maps to stack on the image; ``None``: none.
        far_value: the maps' value outside the case; ``None``: their registered kind's
            (:attr:`nnunet_ext.targets.TargetKind.far_value`; an unregistered kind raises).
        repair_command: the command that rewrites corrupt maps, named in the error (the trainer's
            ``nnUNetv2_precompute_targets`` line).
    """

    def __init__(self, folder: str, identifiers: List[str] = None, folder_with_segs_from_previous_stage: str = None,
                 target_spec: TargetSpec | None = None, far_value: float | None = None,
                 repair_command: str = "nnUNetv2_precompute_targets (with the trainer's dataset and configuration)"):
        super().__init__(folder, identifiers, folder_with_segs_from_previous_stage)
        self.target_spec = target_spec
        self.repair_command = repair_command
        self._verified: set[str] = set()  # cases whose maps' checksum held in this process
        if far_value is None and target_spec is not None:
            from nnunet_ext.targets import get_kind  # here: the registry imports every kind's math

            far_value = get_kind(target_spec.kind).far_value
        self.far_value = far_value

    def load_case(self, identifier: str):
        data, seg, seg_prev, properties = super().load_case(identifier)
        if self.target_spec is None:
            return data, seg, seg_prev, properties
        try:
            stacked = ImageWithMaps(data, self.load_targets(identifier), self.far_value)
        except ValueError as error:
            raise NnunetExtError(f"case {identifier}: {error}; recompute the maps") from None
        return stacked, seg, seg_prev, properties

    def load_targets(self, identifier: str) -> blosc2.NDArray:
        """The (K, *spatial) float16 maps of a case, on the grid of its ``.b2nd``; slicing decompresses a patch only."""
        if self.target_spec is None:
            raise NnunetExtError("this dataset was built without a target_spec, so it has no target maps to load")
        if not target_file(self.source_folder, self.target_spec, identifier).is_file():
            raise NnunetExtError(
                f"no target maps for case {identifier} ({self.target_spec.target_id}) in {self.source_folder}; "
                f"compute them before training")
        if identifier not in self._verified:
            verify_case(self.source_folder, self.target_spec, identifier, self.repair_command)
            self._verified.add(identifier)
        return open_case(self.source_folder, self.target_spec, identifier)
