"""GeoLS (Vasudeva, Dolz, Lombaert, MIDL 2024) as nnU-Net trainers, and GeoLS + JML, the SiNGR paper's
soft-label baseline (Dang, Nguyen, Tiulpin, MICCAI 2024, Table 3).

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerGeoLS`` trains on the soft labels
(1 - alpha) y + alpha g~ (Eq. 6, alpha 0.1) built from the GeoLS maps g_c (Eq. 5, precomputed by
``nnUNetv2_precompute_targets --kind geols``, or on first use) with cross-entropy (Eq. 1); region
datasets (BraTS) use the per-region (sigmoid) version. nnU-Net's network and inference are unchanged.
See nnunet_ext/training/loss_adapters/soft_label.py and nnunet_ext/targets/geols.py.
"""

from torch import nn

from nnunet_ext.budgets import add_budget_variants
from nnunet_ext.targets import TargetSpec
from nnunet_ext.targets.geols import GeoLSOptions
from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps
from nnunet_ext.training.loss_adapters.soft_label import SoftLabelLoss


class nnUNetTrainerGeoLS(nnUNetTrainerWithTargetMaps):
    """GeoLS soft labels (alpha 0.1, default maps) with soft cross-entropy (BCE per region for regions)."""

    geols_options = GeoLSOptions()
    smoothing_alpha = 0.1
    soft_label_criterion = "ce"

    def target_spec(self) -> TargetSpec:
        return TargetSpec("geols", self.geols_options)

    def build_map_loss(self) -> nn.Module:
        return SoftLabelLoss("geols", self.soft_label_criterion, self.label_manager.has_regions,
                             self.smoothing_alpha, self.label_manager.ignore_label,
                             batch_jml=self.configuration_manager.batch_dice)


class nnUNetTrainerGeoLS_JML(nnUNetTrainerGeoLS):
    """SiNGR paper, Table 3: GeoLS soft labels with the Jaccard metric loss (JML1)."""

    soft_label_criterion = "jml"
    collapse_alternative = "nnUNetTrainerGeoLS (soft cross-entropy)"


add_budget_variants(globals())  # <Trainer>_1epoch_2iters, _10epochs_20iters, ...: nnunet_ext/budgets.py
