"""Generalized Surface Loss (Celaya, Riviere, Fuentes) as nnU-Net trainers.

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerGSL`` trains with
``alpha * (nnU-Net's Dice + CE, or Dice + BCE for regions) + (1 - alpha) * GSL`` (Eq. 8 with Eq. 12),
class weights from Eq. 13 (voxel counts over the preprocessed cases, stored beside the plans),
on signed distance maps precomputed by ``nnUNetv2_precompute_targets --kind dtm`` (or on first use).
alpha follows Eq. 14 (linear), 15 (step, h = 5 / 25 / 50) or 16 (cosine) over nnU-Net's epochs
t = 0 .. T with T = num_epochs - 1, so alpha is 1 in the first epoch and 0 in the last.
Each variant is its own class, hence its own results folder.
"""

from torch import nn

from nnunet_ext.losses.distance import GeneralizedSurfaceLoss, alpha_cosine, alpha_linear, alpha_step
from nnunet_ext.budgets import add_budget_variants
from nnunet_ext.preprocessed import PreprocessedConfiguration
from nnunet_ext.targets import TargetSpec
from nnunet_ext.targets.dtm import DTMOptions
from nnunet_ext.training.loss_adapters.distance import GSLTerm
from nnunet_ext.training.distance_trainer import nnUNetTrainerRegionAndDistance
from nnunet_ext.training.gsl import class_weights


class nnUNetTrainerGSL(nnUNetTrainerRegionAndDistance):
    """GSL as in the paper: Eq. 12 over all classes (background included for label datasets; for
    region datasets the regions, whose complements add identical terms), Eq. 13 weights, linear alpha."""

    class_weighted = True
    with_background = True  # label datasets only
    normalise_maps = False

    def alpha(self, epoch: int) -> float:
        return alpha_linear(epoch, max(self.num_epochs - 1, 1))

    def _background(self) -> bool:
        return self.with_background and not self.label_manager.has_regions

    def target_spec(self) -> TargetSpec:
        return TargetSpec("dtm", DTMOptions(background=self._background(), normalise=self.normalise_maps))

    def distance_term(self) -> nn.Module:
        weights = None
        if self.class_weighted:
            config = PreprocessedConfiguration.from_trainer(self)
            weights, counts, counted = class_weights(self.preprocessed_dataset_folder, self.plans_manager.plans_name,
                                                     self.configuration_name, config.channels, self._background(),
                                                     self.label_manager.ignore_label)
            self.print_to_log_file(f"GSL class weights (Eq. 13) {[round(w, 6) for w in weights.tolist()]} from voxel "
                                   f"counts {counts} ({'counted now' if counted else 'stored'})")
        return GSLTerm(GeneralizedSurfaceLoss(weights), self.label_manager.has_regions,
                       self.label_manager.ignore_label, with_background=self._background())


class nnUNetTrainerGSL_step5(nnUNetTrainerGSL):
    """Eq. 15 with step length h = 5 epochs."""

    step_length = 5

    def alpha(self, epoch: int) -> float:
        return alpha_step(epoch, max(self.num_epochs - 1, 1), self.step_length)


class nnUNetTrainerGSL_step25(nnUNetTrainerGSL_step5):
    """Eq. 15 with h = 25."""

    step_length = 25


class nnUNetTrainerGSL_step50(nnUNetTrainerGSL_step5):
    """Eq. 15 with h = 50."""

    step_length = 50


class nnUNetTrainerGSL_cosine(nnUNetTrainerGSL):
    """Eq. 16."""

    def alpha(self, epoch: int) -> float:
        return alpha_cosine(epoch, max(self.num_epochs - 1, 1))


class nnUNetTrainerGSL_MIST(nnUNetTrainerGSL):
    """The authors' current code (MIST): no class weights, background excluded, each DTM divided by
    its max |D| over the case; linear alpha held at 1 for the first 5 epochs as in the authors' code."""

    class_weighted = False
    with_background = False
    normalise_maps = True
    hold_epochs = 5

    def alpha(self, epoch: int) -> float:
        return alpha_linear(epoch, max(self.num_epochs - 1, 1), hold=self.hold_epochs)


add_budget_variants(globals())  # <Trainer>_1epoch_2iters, _10epochs_20iters, ...: nnunet_ext/budgets.py
