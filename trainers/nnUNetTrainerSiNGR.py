"""SiNGR (Dang, Nguyen, Tiulpin, MICCAI 2024) as nnU-Net trainers, and the loss ablations of its Table 3.

``nnUNetv2_train 501 3d_fullres 0 -tr nnUNetTrainerSiNGR`` regresses the SiNG maps (Eqs. 1-5,
precomputed by ``nnUNetv2_precompute_targets``, or on first use) through tanh with the Focal-L1 loss
(Eq. 6, gamma 1, eps 0). ``nnUNetv2_predict -tr nnUNetTrainerSiNGR`` writes the 0-thresholded masks
(see nnunet_ext/training/signed_map_loss.py for why nnU-Net's own inference does exactly that).
Each variant is its own class, hence its own results folder.
"""

from torch import nn

from nnunet_ext.losses import FocalL1Loss, FocalL1SimpleLoss, L1Loss, L2Loss, OfficialSiNGRLoss, ProductLoss
from nnunet_ext.schedules import ShortSchedule
from nnunet_ext.target_store import TargetSpec
from nnunet_ext.targets import SiNGOptions, target_spec
from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps
from nnunet_ext.training.optimizers import PaperAdam
from nnunet_ext.training.signed_map_loss import SignedMapRegression


class nnUNetTrainerSiNGR(nnUNetTrainerWithTargetMaps):
    """SiNG maps with the default options (delta 0.5, lambda 0.5) and Focal-L1 (Eq. 6)."""

    sing_options = SiNGOptions()

    def regression_loss(self) -> nn.Module:
        return FocalL1Loss(gamma=1.0, eps=0.0)

    def target_spec(self) -> TargetSpec:
        return target_spec("sing", self.sing_options)

    def build_map_loss(self) -> nn.Module:
        return SignedMapRegression(self.regression_loss(), self.label_manager.has_regions,
                                   self.label_manager.ignore_label)


class nnUNetTrainerSiNGR_L1(nnUNetTrainerSiNGR):
    """Table 3: SiNG + L1."""

    def regression_loss(self) -> nn.Module:
        return L1Loss()


class nnUNetTrainerSiNGR_L2(nnUNetTrainerSiNGR):
    """Table 3: SiNG + L2 (MSE)."""

    def regression_loss(self) -> nn.Module:
        return L2Loss()


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
    """The loss setting of the authors' released BraTS configuration (not Eq. 6; see README)."""

    def regression_loss(self) -> nn.Module:
        return OfficialSiNGRLoss()


class nnUNetTrainerSiNGR_Adam(PaperAdam, nnUNetTrainerSiNGR):
    """The paper's optimiser (Sec. 4: Adam, learning rate 1e-4, weight decay 1e-5) instead of nnU-Net's SGD."""


class nnUNetTrainerSiNGR_10epochs_20iters(ShortSchedule, nnUNetTrainerSiNGR):
    """The README demo's budget, same as nnUNetTrainer_10epochs_20iters."""

    schedule = (10, 20, 5)


class nnUNetTrainerSiNGR_1epoch_2iters(ShortSchedule, nnUNetTrainerSiNGR):
    """Smoke-test budget used by the end-to-end tests."""

    schedule = (1, 2, 1)


class nnUNetTrainerSiNGR_50epochs_100iters(ShortSchedule, nnUNetTrainerSiNGR):
    """GPU quality-benchmark budget (scripts/benchmark_quality.py), same as nnUNetTrainer_50epochs_100iters."""

    schedule = (50, 100, 20)


class nnUNetTrainerSiNGR_Adam_10epochs_20iters(ShortSchedule, nnUNetTrainerSiNGR_Adam):
    """nnUNetTrainerSiNGR_Adam at the demo budget."""

    schedule = (10, 20, 5)


class nnUNetTrainerSiNGR_Adam_50epochs_100iters(ShortSchedule, nnUNetTrainerSiNGR_Adam):
    """nnUNetTrainerSiNGR_Adam at the GPU quality-benchmark budget."""

    schedule = (50, 100, 20)


class nnUNetTrainerSiNGR_Adam_1epoch_2iters(ShortSchedule, nnUNetTrainerSiNGR_Adam):
    """Smoke-test budget used by the end-to-end tests."""

    schedule = (1, 2, 1)
