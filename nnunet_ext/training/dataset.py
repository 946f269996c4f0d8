"""nnU-Net's blosc2 dataset plus the case's target maps from :mod:`nnunet_ext.target_store`."""

from __future__ import annotations

from typing import List

import blosc2
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.target_store import TargetSpec, open_case, target_file


class nnUNetDatasetBlosc2WithTargets(nnUNetDatasetBlosc2):
    """:class:`nnUNetDatasetBlosc2` that also opens a case's target maps, memory-mapped.

    ``load_case`` is nnU-Net's, unchanged (nnU-Net's final validation and cascade code build this class
    with only the first three arguments and call ``load_case``); the maps come from :meth:`load_targets`.
    The instance holds only paths and the spec, no open files, so it pickles cheaply to augmentation
    workers. Whether the maps are fresh (:func:`nnunet_ext.target_store.case_status`) is the trainer's
    check, done once for all cases before training rather than on every patch.

    Args:
        folder, identifiers, folder_with_segs_from_previous_stage: as in nnU-Net.
        target_spec: which maps to load; ``None`` is allowed for nnU-Net's own uses that never call
            :meth:`load_targets`.
    """

    def __init__(self, folder: str, identifiers: List[str] = None, folder_with_segs_from_previous_stage: str = None,
                 target_spec: TargetSpec | None = None):
        super().__init__(folder, identifiers, folder_with_segs_from_previous_stage)
        self.target_spec = target_spec

    def load_targets(self, identifier: str) -> blosc2.NDArray:
        """The (K, *spatial) float16 maps of a case, on the grid of its ``.b2nd``; slicing decompresses a patch only."""
        if self.target_spec is None:
            raise NnunetExtError("this dataset was built without a target_spec, so it has no target maps to load")
        if not target_file(self.source_folder, self.target_spec, identifier).is_file():
            raise NnunetExtError(
                f"no target maps for case {identifier} ({self.target_spec.target_id}) in {self.source_folder}; "
                f"compute them before training")
        return open_case(self.source_folder, self.target_spec, identifier)
