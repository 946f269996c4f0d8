"""Trainer machinery shared by the distance-loss trainers (GSL, Boundary loss, RRW).

- :class:`nnUNetTrainerRegionAndDistance`: ``alpha * nnU-Net's loss + (1 - alpha) * distance term`` at
  every deep-supervision scale, alpha from a per-epoch schedule (:meth:`alpha`), set at the start of
  each epoch, written to the training log and logged under ``'alpha'`` by
  :class:`AlphaLocalLogger`, which also draws it in ``progress.png``.
- map padding: distance maps are padded with 0 where a patch leaves the case. 0 carries no
  distance information, so padded voxels drop out of the GSL and Boundary terms (D^2 and P * D are 0
  there) while nnU-Net's region loss still trains them as background, as nnU-Net does. (No constant
  is "the" distance outside the case: the true value grows with the distance to the object.)
"""

from __future__ import annotations

from unittest import mock

import torch
from nnunetv2.training.logging import nnunet_logger
from nnunetv2.training.logging.nnunet_logger import LocalLogger
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_ext.training.distance_losses import RegionAndDistanceLoss
from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps


class AlphaLocalLogger(LocalLogger):
    """nnU-Net's :class:`LocalLogger` with one more per-epoch entry, ``'alpha'``, drawn on a second axis of
    the learning-rate panel of ``progress.png`` (nnU-Net's logger asserts on unknown keys)."""

    def __init__(self, verbose: bool = False):
        super().__init__(verbose)
        self.my_fantastic_logging["alpha"] = []

    def load_checkpoint(self, checkpoint: dict):
        super().load_checkpoint(checkpoint)
        if "alpha" not in self.my_fantastic_logging:  # a checkpoint of a trainer without alpha
            self.my_fantastic_logging["alpha"] = [float("nan")] * len(self.my_fantastic_logging["lrs"])

    def plot_progress_png(self, output_folder):
        tight_layout = nnunet_logger.plt.tight_layout

        def add_alpha_then_layout(*args, **kwargs):
            figure = nnunet_logger.plt.gcf()
            lr_axis = next(axis for axis in figure.axes if axis.get_ylabel() == "learning rate")
            epochs = min(len(values) for values in self.my_fantastic_logging.values())
            alpha_axis = lr_axis.twinx()
            alpha_axis.plot(range(epochs), self.my_fantastic_logging["alpha"][:epochs], color="r", ls="-",
                            label="alpha (region loss weight)", linewidth=4)
            alpha_axis.set(ylim=(-0.05, 1.05), ylabel="alpha")
            alpha_axis.legend(loc=(0.3, 1))
            return tight_layout(*args, **kwargs)

        with mock.patch.object(nnunet_logger.plt, "tight_layout", add_alpha_then_layout):
            super().plot_progress_png(output_folder)


class nnUNetTrainerRegionAndDistance(nnUNetTrainerWithTargetMaps):
    """Base: ``alpha(epoch) * nnU-Net's region loss + (1 - alpha(epoch)) * distance_term()`` per scale."""

    map_padding_value = 0.0

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.logger.local_logger = AlphaLocalLogger(self.logger.local_logger.verbose)
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
