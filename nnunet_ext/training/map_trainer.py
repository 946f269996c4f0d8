"""nnU-Net trainer base for losses that need precomputed per-case target maps (SiNG maps, SDMs, ...).

A subclass names its maps (:meth:`nnUNetTrainerWithTargetMaps.target_spec`) and its per-scale loss
(:meth:`nnUNetTrainerWithTargetMaps.build_map_loss`, called as ``loss(output, seg, maps)``); this base
does the rest without copying nnU-Net's training code:

- **maps before training**: missing, stale or corrupt maps are computed in ``check_before_training`` (logged,
  under a file lock so that five folds started together compute them once, with one worker per available
  core, :func:`nnunet_ext.precompute.available_cores`); ``nnUNetv2_precompute_targets`` does the same ahead
  of time. With every map up to date nothing is written (no lock either), so a dataset on read-only storage
  trains; maps missing there stop the run with one line naming the folder and the command to run where it
  is writable. The configuration (plans, dataset.json, channels) is the trainer's own
  (:meth:`nnunet_ext.preprocessed.PreprocessedConfiguration.from_trainer`), not re-read from disk. The precompute first checks every channel of every case for NaN / inf
  (once per case, :mod:`nnunet_ext.image_check`). Afterwards every case's maps are checked again
  (maps removed or re-written while they were computed, e.g. by a concurrent ``nnUNetv2_preprocess``
  or a deleted ``nnunet_ext_targets`` folder). Any of these problems stops the run before training
  with one line naming the fix (the precompute command), not an augmentation worker's traceback.
- **data path**: nnU-Net's own loader and augmentation pipelines; the maps ride on the image
  (:mod:`nnunet_ext.training.data`): cropped with the same bbox, spatially transformed with the image,
  padded with the kind's far value (:attr:`nnunet_ext.targets.TargetKind.far_value`), at full resolution.
- **steps**: nnU-Net's ``train_step`` / ``validation_step`` run unchanged on a batch whose ``'data'`` is
  the network input and whose ``'target'`` is the list ``[seg per scale..., maps]``; the loss splits it
  again. nnU-Net's validation step reads ``target[0]``, the full-resolution seg, for its online
  pseudo-Dice, so the checkpoint choice still works on masks.
- **online pseudo-Dice over the case**: nnU-Net counts every voxel of a validation patch, including the
  loader's padding beyond the case (seg -1, made background), which its predictor crops off. Where a
  trainer's maps tell those voxels apart (:meth:`nnUNetTrainerWithTargetMaps.outside_case`: RRW, whose
  loss sets no target there), the foreground predicted there is taken out of nnU-Net's false positives,
  so the logged pseudo-Dice, and the health guard and benchmarks that read it, measure the voxels
  nnU-Net's prediction has.
- **deep supervision**: nnU-Net's own scale weights (taken from the loss it would build); the maps of
  each scale are pooled on the training device (area mean, as the seg's scales are nnU-Net's).
- **training health**: the guard of :mod:`nnunet_ext.training.health` (non-finite loss, wrong-side saturation).
"""

from __future__ import annotations

import os
import shlex

import torch
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from torch import distributed as dist
from torch import nn
from torch.nn.functional import interpolate

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.preprocessed import PreprocessedConfiguration
from nnunet_ext.targets import TargetSpec, get_kind
from nnunet_ext.training.data.dataset import nnUNetDatasetBlosc2WithTargets
from nnunet_ext.training.health import full_resolution_outputs, nnUNetTrainerWithHealthGuard
from nnunet_ext.training.data.transforms import get_training_transforms_with_maps, get_validation_transforms_with_maps
from nnunet_ext.training.loss_adapters.seg_targets import ignore_mask


class SplitTargets(nn.Module):
    """Calls a deep-supervised ``loss(outputs, segs, maps)`` on nnU-Net's ``loss(outputs, targets)``.

    ``targets`` is ``[seg_0, ..., seg_n-1, maps - far_value]`` for ``n`` network outputs, the maps (B, K, *patch)
    at full resolution as the data path carries them (:mod:`nnunet_ext.training.data`). Here, on the training
    device rather than in the augmentation workers, the far value is added back and the maps of scale i become
    their area means on the grid of ``seg_i`` (adaptive average pooling: each coarse voxel's target is the mean
    of the block it covers, so values stay in the maps' range).
    """

    def __init__(self, deep_supervised_loss: DeepSupervisionWrapper, far_value: float):
        super().__init__()
        self.loss = deep_supervised_loss
        self.far_value = far_value

    def forward(self, outputs: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        n = len(outputs)
        if len(targets) != n + 1:
            raise ValueError(f"expected {n + 1} targets (seg per scale, then the maps) for {n} outputs, got {len(targets)}")
        segs, maps = targets[:n], (targets[n] + self.far_value if self.far_value else targets[n])
        scaled = [maps if seg.shape[2:] == maps.shape[2:] else interpolate(maps, seg.shape[2:], mode="area")
                  for seg in segs]
        return self.loss(outputs, segs, scaled)


def predicted_foreground(output: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """Bool (B, K, *): the foreground regions / classes of nnU-Net's hard prediction from ``output`` (B, C, *), made
    as its ``validation_step`` and its predictor make it: sigmoid > 0.5 per region, argmax over the 1 + K classes."""
    if has_regions:
        return torch.sigmoid(output) > 0.5
    labels = output.argmax(1, keepdim=True)
    return torch.cat([labels == k for k in range(1, output.shape[1])], dim=1)


class nnUNetTrainerWithTargetMaps(nnUNetTrainerWithHealthGuard):
    """Base trainer: precomputed maps through nnU-Net's data path into a ``loss(output, seg, maps)``."""

    @property
    def far_value(self) -> float:
        """The maps' value outside the case (loader crop and spatial augmentation), their kind's."""
        return get_kind(self.target_spec().kind).far_value

    @property
    def image_channels(self) -> int:
        """The case's image channels as stored (nnU-Net's count without a cascade's one-hot channels)."""
        return len(self.dataset_json.get("channel_names", self.dataset_json.get("modality", {})))

    # nnU-Net's augmentation pipelines with the maps added (same arguments as nnU-Net's static methods)
    def get_training_transforms(self, *args, **kwargs):
        return get_training_transforms_with_maps(*args, image_channels=self.image_channels, **kwargs)

    def get_validation_transforms(self, *args, **kwargs):
        return get_validation_transforms_with_maps(*args, image_channels=self.image_channels, **kwargs)

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
        """Checks the images, computes the missing, stale or corrupt maps of this configuration and checks that
        every case has up-to-date maps afterwards; raises a one-line :class:`NnunetExtError` otherwise."""
        from nnunet_ext.precompute import available_cores, precompute, precompute_argv, require_targets

        spec = self.target_spec()
        folder = self.preprocessed_dataset_folder
        if not os.path.isdir(folder):
            raise NnunetExtError(
                f"{folder} does not exist; run: nnUNetv2_plan_and_preprocess -d {self.plans_manager.dataset_name} "
                f"-c {self.configuration_name}")
        config = PreprocessedConfiguration.from_trainer(self)
        command = shlex.join(precompute_argv(config, spec))
        summary = precompute(config, spec, num_processes=available_cores(), progress=False, exclusive=True)
        if self.is_ddp:
            # nnU-Net's DDP: the rank that took the lock first computed, the others found the maps done; rank 0 writes
            # the training log, so it reports that rank's summary. Gathered after the lock, so no collective waits
            # through the computation (an NCCL collective times out after 10 minutes; the lock never does)
            summaries: list[dict | None] = [None] * dist.get_world_size()
            dist.all_gather_object(summaries, summary)
            summary = max(summaries, key=lambda done: done["computed"])
        if summary["computed"]:
            self.print_to_log_file(
                f"computed {summary['computed']} missing or stale {spec.target_id} target maps "
                f"(median {summary['median_seconds_per_case']:.2f} s per case); to do this ahead of training: {command}")
        require_targets(config, spec, command, cause="removed or re-written while this trainer computed them")

    # --------------------------------------------------------------------------------- data path
    def get_tr_and_val_datasets(self):
        if not issubclass(self.dataset_class, nnUNetDatasetBlosc2):
            raise NnunetExtError(
                f"{self.__class__.__name__} reads nnU-Net's blosc2 (.b2nd) preprocessed data, found "
                f"{self.dataset_class.__name__} in {self.preprocessed_dataset_folder}; re-run nnUNetv2_preprocess")
        from nnunet_ext.precompute import precompute_argv

        tr_keys, val_keys = self.do_split()
        spec = self.target_spec()
        repair = shlex.join(precompute_argv(PreprocessedConfiguration.from_trainer(self), spec))

        def dataset(keys):
            return nnUNetDatasetBlosc2WithTargets(
                self.preprocessed_dataset_folder, keys,
                folder_with_segs_from_previous_stage=self.folder_with_segs_from_previous_stage, target_spec=spec,
                far_value=self.far_value, repair_command=repair)

        return dataset(tr_keys), dataset(val_keys)

    # ------------------------------------------------------------------------------------- steps
    def train_step(self, batch: dict) -> dict:
        return super().train_step(self._maps_as_target(batch))

    def outside_case(self, maps: torch.Tensor) -> torch.Tensor | None:
        """Bool (B, 1, *): the voxels of a validation patch outside the case, told apart by its ``maps - far_value``
        (B, K, *); None: the maps cannot tell them apart (here: a kind's far value also occurs inside a case)."""
        return None

    def validation_step(self, batch: dict) -> dict:
        """nnU-Net's step, its false positives without the foreground predicted outside the case (:meth:`outside_case`).

        There the reference is background (nnU-Net's loader pads the seg with -1, its validation transforms make it
        0), so each such voxel is a false positive and nothing else, of a voxel nnU-Net's prediction does not have.
        """
        batch = self._maps_as_target(batch)
        outside = self.outside_case(batch["target"][-1])
        if outside is None:
            return super().validation_step(batch)
        lm = self.label_manager
        counted = ignore_mask(batch["target"][0], lm.has_regions, lm.ignore_label)
        if counted is not None:  # nnU-Net counts no ignored voxel (read first: on a CPU its step zeroes them in place)
            outside = outside & counted
        with full_resolution_outputs(self.network) as outputs:
            result = super().validation_step(batch)
        predicted = predicted_foreground(outputs[-1].detach(), lm.has_regions) & outside.to(outputs[-1].device)
        axes = [0, *range(2, predicted.ndim)]
        result["fp_hard"] = result["fp_hard"] - predicted.sum(axes, dtype=torch.float32).cpu().numpy()  # as nnU-Net's
        return result

    def _maps_as_target(self, batch: dict) -> dict:
        """The batch with the network input as ``'data'`` and the maps appended to ``'target'``."""
        data, channels = batch["data"], self.num_input_channels
        if data.shape[1] <= channels:
            raise NnunetExtError(f"{self.__class__.__name__}: the batch has {data.shape[1]} channels, no target "
                                 f"maps after the {channels} input channels; its loader must use this trainer's "
                                 "dataset and transforms")
        return {**batch, "data": data[:, :channels], "target": [*batch["target"], data[:, channels:]]}

    def _build_loss(self):
        if not self.enable_deep_supervision:
            # nnU-Net's validation_step reads target[0] as the seg only when deep supervision is on
            raise NnunetExtError(f"{self.__class__.__name__} needs deep supervision enabled (nnU-Net's default)")
        nnunet_loss = super()._build_loss()  # only for nnU-Net's deep-supervision weights
        return SplitTargets(DeepSupervisionWrapper(self.build_map_loss(), nnunet_loss.weight_factors), self.far_value)
