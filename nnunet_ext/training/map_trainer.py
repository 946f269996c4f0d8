"""nnU-Net trainer base for losses that need precomputed per-case target maps (SiNG maps, SDMs, ...).

A subclass names its maps (:meth:`nnUNetTrainerWithTargetMaps.target_spec`) and its per-scale loss
(:meth:`nnUNetTrainerWithTargetMaps.build_map_loss`, called as ``loss(output, seg, maps)``); this base
does the rest without copying nnU-Net's training code:

- **maps before training**: missing or stale maps are computed in ``check_before_training`` (logged,
  under a file lock so that five folds started together compute them once); ``nnUNetv2_precompute_targets``
  does the same ahead of time. The precompute first checks every channel of every case for NaN / inf
  (once per case, :mod:`nnunet_ext.image_check`). Afterwards every case's maps are checked again
  (maps removed or re-written while they were computed, e.g. by a concurrent ``nnUNetv2_preprocess``
  or a deleted ``nnunet_ext_targets`` folder). Any of these problems stops the run before training
  with one line naming the fix (the precompute command), not an augmentation worker's traceback.
- **data path**: nnU-Net's dataset, loader and augmentation pipelines with the maps added
  (:mod:`nnunet_ext.training`): cropped with the same bbox, spatially transformed with the image,
  padded with ``map_padding_value`` (-1 by default), one map per deep-supervision scale.
- **steps**: nnU-Net's ``train_step`` / ``validation_step`` run unchanged on a batch whose
  ``'target'`` is the list ``[seg per scale..., maps per scale...]``; the loss splits it again. nnU-Net's
  validation step reads ``target[0]``, the full-resolution seg, for its online pseudo-Dice, so the
  checkpoint choice still works on masks.
- **deep supervision**: nnU-Net's own scale weights (taken from the loss it would build).
- **training health**: the guard of :mod:`nnunet_ext.training.health` (non-finite loss, wrong-side saturation).
"""

from __future__ import annotations

import os
from functools import partial
from unittest import mock

import torch
from filelock import FileLock
from nnunetv2.configuration import default_num_processes
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as nnunet_trainer_module
from torch import nn

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.target_store import TargetSpec, targets_folder
from nnunet_ext.training.data_loader import nnUNetDataLoaderWithTargets
from nnunet_ext.training.dataset import nnUNetDatasetBlosc2WithTargets
from nnunet_ext.training.health import nnUNetTrainerWithHealthGuard
from nnunet_ext.training.transforms import (
    FAR_BACKGROUND,
    get_regression_training_transforms,
    get_regression_validation_transforms,
)


class SplitTargets(nn.Module):
    """Calls a deep-supervised ``loss(outputs, segs, maps)`` on nnU-Net's ``loss(outputs, targets)``.

    ``targets`` is ``[seg_0, ..., seg_n-1, maps_0, ..., maps_n-1]`` for ``n`` network outputs.
    """

    def __init__(self, deep_supervised_loss: DeepSupervisionWrapper):
        super().__init__()
        self.loss = deep_supervised_loss

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        n = len(outputs)
        if len(targets) != 2 * n:
            raise ValueError(f"expected {2 * n} targets (seg and maps per scale) for {n} outputs, got {len(targets)}")
        return self.loss(outputs, targets[:n], targets[n:])


class nnUNetTrainerWithTargetMaps(nnUNetTrainerWithHealthGuard):
    """Base trainer: precomputed maps through nnU-Net's data path into a ``loss(output, seg, maps)``."""

    #: value of the maps outside the case (loader crop and spatial augmentation): -1, the far background
    #: of signed maps; maps whose far value is 0 (GeoLS) set 0
    map_padding_value: float = FAR_BACKGROUND

    # nnU-Net's augmentation pipelines with the maps added (same arguments as nnU-Net's static methods)
    get_validation_transforms = staticmethod(get_regression_validation_transforms)

    def get_training_transforms(self, *args, **kwargs):
        return get_regression_training_transforms(*args, padding_value=self.map_padding_value, **kwargs)

    def target_spec(self) -> TargetSpec:
        """The maps this trainer trains on."""
        raise NotImplementedError

    def build_map_loss(self) -> nn.Module:
        """The loss at one scale, called as ``loss(output (B,C,*), seg (B,1 or R,*), maps (B,K,*))``."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------- maps
    def check_before_training(self) -> None:
        self.ensure_target_maps()  # which checks the images too (nnUNetv2_precompute_targets does)

    def ensure_target_maps(self) -> None:
        """Checks the images, computes the missing or stale maps of this configuration and checks that
        every case has up-to-date maps afterwards; raises a one-line :class:`NnunetExtError` otherwise."""
        from nnunet_ext.preprocessing.precompute_targets import precompute_command, precompute_targets, require_targets
        from nnunet_ext.target_store import case_identifiers

        spec = self.target_spec()
        folder = self.preprocessed_dataset_folder
        if not os.path.isdir(folder):
            raise NnunetExtError(
                f"{folder} does not exist; run: nnUNetv2_plan_and_preprocess -d {self.plans_manager.dataset_name} "
                f"-c {self.configuration_name}")
        command = precompute_command(self.plans_manager.dataset_name, self.configuration_name,
                                     self.plans_manager.plans_name, spec)
        lock_file = targets_folder(folder, spec).parent / f".{spec.target_id}.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_file)):
            summary = precompute_targets(self.plans_manager.dataset_name, self.configuration_name,
                                         self.plans_manager.plans_name, kind=spec.kind, params=dict(spec.params),
                                         num_processes=default_num_processes, progress=False)
        if summary["computed"]:
            self.print_to_log_file(
                f"computed {summary['computed']} missing or stale {spec.target_id} target maps "
                f"(median {summary['median_seconds_per_case']:.2f} s per case); to do this ahead of training: {command}")
        require_targets(folder, spec, case_identifiers(folder), command, ignore_label=self.label_manager.ignore_label,
                        cause="removed or re-written while this trainer computed them")

    # --------------------------------------------------------------------------------- data path
    def get_tr_and_val_datasets(self):
        if not issubclass(self.dataset_class, nnUNetDatasetBlosc2):
            raise NnunetExtError(
                f"{self.__class__.__name__} reads nnU-Net's blosc2 (.b2nd) preprocessed data, found "
                f"{self.dataset_class.__name__} in {self.preprocessed_dataset_folder}; re-run nnUNetv2_preprocess")
        tr_keys, val_keys = self.do_split()
        spec = self.target_spec()

        def dataset(keys):
            return nnUNetDatasetBlosc2WithTargets(
                self.preprocessed_dataset_folder, keys,
                folder_with_segs_from_previous_stage=self.folder_with_segs_from_previous_stage, target_spec=spec)

        return dataset(tr_keys), dataset(val_keys)

    def get_dataloaders(self):
        # nnU-Net's get_dataloaders hard-codes its loader class; swapping the name it looks up for the
        # duration of the call keeps the rest of nnU-Net's method (DA worker set-up included) in use.
        loader = partial(nnUNetDataLoaderWithTargets, map_padding_value=self.map_padding_value)
        with mock.patch.object(nnunet_trainer_module, "nnUNetDataLoader", loader):
            return super().get_dataloaders()

    # ------------------------------------------------------------------------------------- steps
    def train_step(self, batch: dict) -> dict:
        return super().train_step(self._seg_and_maps_as_target(batch))

    def validation_step(self, batch: dict) -> dict:
        return super().validation_step(self._seg_and_maps_as_target(batch))

    @staticmethod
    def _seg_and_maps_as_target(batch: dict) -> dict:
        return {**batch, "target": [*batch["target"], *batch["regression_target"]]}

    def _build_loss(self):
        if not self.enable_deep_supervision:
            # nnU-Net's validation_step reads target[0] as the seg only when deep supervision is on
            raise NnunetExtError(f"{self.__class__.__name__} needs deep supervision enabled (nnU-Net's default)")
        nnunet_loss = super()._build_loss()  # only for nnU-Net's deep-supervision weights
        return SplitTargets(DeepSupervisionWrapper(self.build_map_loss(), nnunet_loss.weight_factors))
