"""Trainer machinery of the trainers that mix nnU-Net's loss with a distance term: GSL and the Boundary loss.

(RRW trains with the RW loss alone, directly on :class:`~nnunet_ext.training.map_trainer.nnUNetTrainerWithTargetMaps`.)

- :class:`nnUNetTrainerRegionAndDistance`: ``alpha * nnU-Net's loss + (1 - alpha) * distance term`` at
  every deep-supervision scale, alpha from a per-epoch schedule (:meth:`alpha`), set at the start of
  each epoch, written to the training log and logged under ``'alpha'``, which ``progress.png`` draws
  (:class:`~nnunet_ext.training.progress_logger.CurvesLocalLogger`).
- map padding: distance maps are padded with 0 where a patch leaves the case (the ``dtm`` kind's far
  value, :data:`nnunet_ext.targets.REGISTRY` says why).
"""

from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_ext.training.loss_adapters.distance import RegionAndDistanceLoss
from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps


class nnUNetTrainerRegionAndDistance(nnUNetTrainerWithTargetMaps):
    """Base: ``alpha(epoch) * nnU-Net's region loss + (1 - alpha(epoch)) * distance_term()`` per scale."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.logger.local_logger.add_curve("alpha", "alpha (region loss weight)")
        self.region_and_distance: RegionAndDistanceLoss | None = None

    def alpha(self, epoch: int) -> float:
        """Weight of the region loss in ``epoch`` (0-based)."""
        raise NotImplementedError

    def distance_term(self) -> nn.Module:
        """The distance loss at one scale, ``term(output, seg, maps)``."""
        raise NotImplementedError

    def build_map_loss(self) -> nn.Module:
        # nnU-Net's own loss for this dataset (Dice + CE, or Dice + BCE for regions), one scale of it
        region = nnUNetTrainer._build_loss(self).loss
        self.region_and_distance = RegionAndDistanceLoss(region, self.distance_term(), self.alpha(self.current_epoch))
        return self.region_and_distance

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        alpha = float(self.alpha(self.current_epoch))
        self.region_and_distance.alpha = alpha
        self.logger.log("alpha", alpha, self.current_epoch)
        self.print_to_log_file(f"alpha (weight of the region loss): {alpha:.4f}")
