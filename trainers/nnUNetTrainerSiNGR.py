"""SiNGR (Dang, Nguyen, Tiulpin, MICCAI 2024) as nnU-Net trainers, and the loss ablations of its Table 3.

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerSiNGR`` regresses the SiNG maps (Eqs. 1-5,
precomputed by ``nnUNetv2_precompute_targets``, or on first use) through tanh with the Focal-L1 loss
(Eq. 6, gamma 1, eps 0). ``nnUNetv2_predict -tr nnUNetTrainerSiNGR`` writes the 0-thresholded masks
(see nnunet_ext/training/loss_adapters/signed_map.py for why nnU-Net's own inference does exactly that).
Each variant is its own class, hence its own results folder.

Optimiser: Adam 1e-3 with poly decay (:class:`~nnunet_ext.training.optimizers.AdamWithPolyDecay`), not
nnU-Net's SGD, under which the tanh outputs of small regions saturate on the background side and the
region collapses (docs/results/quality_cpu.md). Every Table 3 variant inherits it.
``nnUNetTrainerSiNGR_PaperAdam`` is the paper's optimiser (Adam 1e-4), ``nnUNetTrainerSiNGR_nnUNetSGD``
nnU-Net's.
"""

from torch import nn

from nnunet_ext.budgets import add_budget_variants
from nnunet_ext.losses import FocalL1Loss, FocalL1SimpleLoss, OfficialSiNGRLoss, ProductLoss, TanhL1Loss, TanhL2Loss
from nnunet_ext.targets import SiNGOptions, TargetSpec
from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps
from nnunet_ext.training.optimizers import AdamWithPolyDecay, NnUNetSGD, PaperAdam
from nnunet_ext.training.loss_adapters.signed_map import SignedMapRegression


class nnUNetTrainerSiNGR(AdamWithPolyDecay, nnUNetTrainerWithTargetMaps):
    """SiNG maps with the default options (delta 0.5, lambda 0.5) and Focal-L1 (Eq. 6); Adam 1e-3."""

    sing_options = SiNGOptions()
    collapse_alternative = "nnUNetTrainerSiNGR_PaperAdam (Adam at 1e-4)"

    def regression_loss(self) -> nn.Module:
        return FocalL1Loss(gamma=1.0, eps=0.0)

    def target_spec(self) -> TargetSpec:
        return TargetSpec("sing", self.sing_options)

    def build_map_loss(self) -> nn.Module:
        return SignedMapRegression(self.regression_loss(), self.label_manager.has_regions,
                                   self.label_manager.ignore_label)


class nnUNetTrainerSiNGR_L1(nnUNetTrainerSiNGR):
    """Table 3: SiNG + L1."""

    def regression_loss(self) -> nn.Module:
        return TanhL1Loss()


class nnUNetTrainerSiNGR_L2(nnUNetTrainerSiNGR):
    """Table 3: SiNG + L2 (MSE)."""

    def regression_loss(self) -> nn.Module:
        return TanhL2Loss()


class nnUNetTrainerSiNGR_FocalL1Simple(nnUNetTrainerSiNGR):
    """Table 3, Focal-L1 with the weight simplified to |S - Z|^gamma."""

    def regression_loss(self) -> nn.Module:
        return FocalL1SimpleLoss(gamma=1.0)


class nnUNetTrainerSiNGR_Product(nnUNetTrainerSiNGR):
    """Table 3: SiNG + the product loss of Xue et al. (AAAI 2020)."""

    def regression_loss(self) -> nn.Module:
        return ProductLoss()


class nnUNetTrainerSiNGR_Margin0(nnUNetTrainerSiNGR):
    """Table 3: SiNG without margin (delta 0) + Focal-L1; trains on the delta-0 maps."""

    sing_options = SiNGOptions(delta=0.0)


class nnUNetTrainerSiNGR_Official(nnUNetTrainerSiNGR):
    """The loss setting of the authors' released BraTS configuration (not Eq. 6; see docs/methods/sing-and-singr.md)."""

    def regression_loss(self) -> nn.Module:
        return OfficialSiNGRLoss()


class nnUNetTrainerSiNGR_Euclidean(nnUNetTrainerSiNGR):
    """SiNG maps with lambda 0 (Eq. 2 without the image term: the spatial step alone, FastGeodis' raster scan
    of the Euclidean distance) + Focal-L1. The same maps as SiNGR without the image: does the geodesic part
    matter? (An ablation of ours; neither the paper nor the authors' code has it.)"""

    sing_options = SiNGOptions(lam=0.0)


class nnUNetTrainerSiNGR_PaperAdam(PaperAdam, nnUNetTrainerSiNGR):
    """The paper's optimiser (Sec. 4: Adam, learning rate 1e-4, weight decay 1e-5)."""


class nnUNetTrainerSiNGR_nnUNetSGD(NnUNetSGD, nnUNetTrainerSiNGR):
    """nnU-Net's SGD (1e-2, Nesterov momentum 0.99): its small regions collapse (docs/results/training-health.md)."""

    collapse_alternative = "nnUNetTrainerSiNGR (Adam 1e-3)"


add_budget_variants(globals())  # <Trainer>_1epoch_2iters, _10epochs_20iters, ...: nnunet_ext/budgets.py
