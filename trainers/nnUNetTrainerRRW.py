"""Region-wise loss with rectified region-wise maps (Valverde and Tohka) as an nnU-Net trainer.

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerRRW`` trains with the RW loss alone (Eq. 1,
mean of softmax * Z, no extra loss or schedule, as in the paper) on the RRW maps of Eq. 4,
precomputed on whole cases by ``nnUNetv2_precompute_targets --kind rrw`` (or on first use).

- label datasets: softmax over the 1 + K classes, maps [background, label 1..K] (``--background``);
- region datasets (sigmoid outputs): each region r with its complement is a two-class problem,
  sigmoid(z_r) = softmax(0, z_r), with the RRW maps of r and of not-r (``--complements``).
"""

from torch import nn

from nnunet_ext.schedules import ShortSchedule
from nnunet_ext.target_store import TargetSpec
from nnunet_ext.targets import target_spec
from nnunet_ext.targets.rrw import RRWOptions
from nnunet_ext.training.distance_losses import RRWTerm
from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps


class nnUNetTrainerRRW(nnUNetTrainerWithTargetMaps):
    """RW loss (Eq. 1) with RRW maps (Eq. 4)."""

    # every component 1 where a patch leaves the case: equal components give zero gradient (Eq. 2)
    map_padding_value = 1.0

    def target_spec(self) -> TargetSpec:
        has_regions = self.label_manager.has_regions
        return target_spec("rrw", RRWOptions(background=not has_regions, complements=has_regions))

    def build_map_loss(self) -> nn.Module:
        return RRWTerm(self.label_manager.has_regions, self.label_manager.ignore_label)


class nnUNetTrainerRRW_1epoch_2iters(ShortSchedule, nnUNetTrainerRRW):
    """Smoke-test budget used by the end-to-end tests."""

    schedule = (1, 2, 1)


class nnUNetTrainerRRW_10epochs_20iters(ShortSchedule, nnUNetTrainerRRW):
    """CPU quality-benchmark budget (scripts/benchmark_quality.py), same as nnUNetTrainer_10epochs_20iters."""

    schedule = (10, 20, 5)


class nnUNetTrainerRRW_50epochs_100iters(ShortSchedule, nnUNetTrainerRRW):
    """GPU quality-benchmark budget (scripts/benchmark_quality.py), same as nnUNetTrainer_50epochs_100iters."""

    schedule = (50, 100, 20)
