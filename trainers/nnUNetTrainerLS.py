"""Label smoothing + the Jaccard metric loss, the SiNGR paper's LS baseline (Dang, Nguyen, Tiulpin,
MICCAI 2024, Table 3; LS: Szegedy et al. 2016, GeoLS paper Eq. 2; JML: Wang, Ning, Blaschko 2023).

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerLS_JML``: soft labels (1 - alpha) y + alpha / C
(alpha 0.1; per region C = 2 for region datasets) trained with JML1. No target maps: nnU-Net's own data
path, its loss replaced per deep-supervision scale (nnU-Net's DeepSupervisionWrapper and weights).

Optimiser: Adam 1e-3 with poly decay, as ``nnUNetTrainerSiNGR`` (the SiNGR paper trained its soft-label
baselines with Adam, Sec. 4). Under nnU-Net's SGD (``nnUNetTrainerLS_JML_nnUNetSGD``) the small regions'
probabilities saturate on the wrong side within three epochs and the enhancing tumour never recovers
(docs/results/training-health.md, 2026-12-02).
Before training, every channel of every preprocessed case is checked for NaN / inf once
(:mod:`nnunet_ext.image_check`); a bad case stops the run with one line naming it and the fix.
"""

from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from nnunet_ext.budgets import add_budget_variants
from nnunet_ext.training.health import nnUNetTrainerWithHealthGuard
from nnunet_ext.training.optimizers import AdamWithPolyDecay, NnUNetSGD
from nnunet_ext.training.loss_adapters.soft_label import SoftLabelLoss


class nnUNetTrainerLS_JML(AdamWithPolyDecay, nnUNetTrainerWithHealthGuard):
    """Label smoothing (alpha 0.1) with JML1 (sigmoid per region, softmax over classes for labels); Adam 1e-3."""

    smoothing_alpha = 0.1
    collapse_alternative = "nnUNetTrainer (Dice + cross-entropy)"

    def _build_loss(self):
        loss = SoftLabelLoss("ls", "jml", self.label_manager.has_regions, self.smoothing_alpha,
                             self.label_manager.ignore_label, batch_jml=self.configuration_manager.batch_dice)
        if not self.enable_deep_supervision:
            return loss
        return DeepSupervisionWrapper(loss, super()._build_loss().weight_factors)  # nnU-Net's scale weights


class nnUNetTrainerLS_JML_nnUNetSGD(NnUNetSGD, nnUNetTrainerLS_JML):
    """nnU-Net's SGD (1e-2, Nesterov momentum 0.99, poly decay): the configuration that collapses, for comparison."""

    collapse_alternative = "nnUNetTrainerLS_JML (Adam 1e-3)"


add_budget_variants(globals())  # <Trainer>_1epoch_2iters, _10epochs_20iters, ...: nnunet_ext/budgets.py
