"""Region-wise loss with rectified region-wise maps (Valverde and Tohka) as an nnU-Net trainer.

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerRRW`` trains with the RW loss alone (Eq. 1,
mean of softmax * Z, no extra loss or schedule, as in the paper) on the RRW maps of Eq. 4,
precomputed on whole cases by ``nnUNetv2_precompute_targets --kind rrw`` (or on first use).

- label datasets: softmax over the 1 + K classes, maps [background, label 1..K] (``--background``);
- region datasets (sigmoid outputs): each region r with its complement is a two-class problem,
  sigmoid(z_r) = softmax(0, z_r), with the RRW maps of r and of not-r (``--complements``).

Optimiser: Adam 1e-3 with poly decay (:class:`~nnunet_ext.training.optimizers.AdamWithPolyDecay`), as
for SiNGR, whose loss is also linear in a saturating activation. Under nnU-Net's SGD RRW's small regions
collapsed. Under Adam they learn, but a small region can first sit at pseudo-Dice 0, unsaturated, for a
number of epochs that varies from run to run (the RW gradient carries the probability itself, Eq. 5;
docs/methods/distance-losses.md, docs/results/training-health.md). ``nnUNetTrainerRRW_AuthorsAdam`` is the
authors' optimiser (Adam 1e-4), ``nnUNetTrainerRRW_nnUNetSGD`` nnU-Net's.

Online pseudo-Dice: the maps are 1 in every channel beyond the case (their far value), where the RW loss has
no gradient and the output is arbitrary; nnU-Net's validation step would count foreground predicted in a
patch's padding as false positives, which its predictor never writes. :meth:`outside_case` marks those voxels
and the base leaves them out (:class:`~nnunet_ext.training.map_trainer.nnUNetTrainerWithTargetMaps`).
"""

import torch
from torch import nn

from nnunet_ext.budgets import add_budget_variants
from nnunet_ext.targets import TargetSpec
from nnunet_ext.targets.rrw import RRWOptions
from nnunet_ext.training.loss_adapters.distance import RRWTerm
from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps
from nnunet_ext.training.optimizers import AdamWithPolyDecay, NnUNetSGD, RRWAuthorsAdam


class nnUNetTrainerRRW(AdamWithPolyDecay, nnUNetTrainerWithTargetMaps):
    """RW loss (Eq. 1) with RRW maps (Eq. 4); Adam 1e-3."""

    collapse_alternative = "nnUNetTrainerRRW_AuthorsAdam (Adam at 1e-4)"

    def target_spec(self) -> TargetSpec:
        has_regions = self.label_manager.has_regions
        return TargetSpec("rrw", RRWOptions(background=not has_regions, complements=has_regions))

    def build_map_loss(self) -> nn.Module:
        return RRWTerm(self.label_manager.has_regions, self.label_manager.ignore_label)

    def outside_case(self, maps: torch.Tensor) -> torch.Tensor:
        # every map at the far value 1 (0 once shifted): a voxel of no class, outside the case or of nnU-Net's
        # ignore label (nnunet_ext/targets/rrw.py). The loss is constant there, so the output is arbitrary
        return (maps == 0).all(1, keepdim=True)


class nnUNetTrainerRRW_AuthorsAdam(RRWAuthorsAdam, nnUNetTrainerRRW):
    """The RRW authors' optimiser (their nnU-Net v1 trainer: Adam 1e-4)."""


class nnUNetTrainerRRW_nnUNetSGD(NnUNetSGD, nnUNetTrainerRRW):
    """nnU-Net's SGD (1e-2, Nesterov momentum 0.99): its small regions collapse (docs/results/training-health.md)."""

    collapse_alternative = "nnUNetTrainerRRW (Adam 1e-3)"


add_budget_variants(globals())  # <Trainer>_1epoch_2iters, _10epochs_20iters, ...: nnunet_ext/budgets.py
