"""Boundary loss (Kervadec et al., MIDL 2019) as an nnU-Net trainer: the baseline of GSL and RRW.

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerBoundary`` trains with
``alpha * (nnU-Net's Dice + CE, or Dice + BCE for regions) + (1 - alpha) * mean(P * D)`` over the
foreground channels (sigmoid per region, softmax without the background for labels), D the signed
distance maps in mm (``nnUNetv2_precompute_targets --kind dtm``, or on first use). alpha follows the
authors' rebalancing: 1 in the first epoch, 0.01 less each epoch, at least 0.01.
"""

from torch import nn

from nnunet_ext.losses.distance import alpha_rebalance
from nnunet_ext.budgets import add_budget_variants
from nnunet_ext.targets import TargetSpec
from nnunet_ext.targets.dtm import DTMOptions
from nnunet_ext.training.loss_adapters.distance import BoundaryTerm
from nnunet_ext.training.distance_trainer import nnUNetTrainerRegionAndDistance


class nnUNetTrainerBoundary(nnUNetTrainerRegionAndDistance):
    """Region loss + Boundary loss, alpha = max(1 - 0.01 t, 0.01)."""

    alpha_decrement = 0.01
    alpha_floor = 0.01

    def alpha(self, epoch: int) -> float:
        return alpha_rebalance(epoch, self.alpha_decrement, self.alpha_floor)

    def target_spec(self) -> TargetSpec:
        return TargetSpec("dtm", DTMOptions())

    def distance_term(self) -> nn.Module:
        return BoundaryTerm(self.label_manager.has_regions, self.label_manager.ignore_label)


add_budget_variants(globals())  # <Trainer>_1epoch_2iters, _10epochs_20iters, ...: nnunet_ext/budgets.py
