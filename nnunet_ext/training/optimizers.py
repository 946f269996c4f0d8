"""Optimisers for losses that are linear in a saturating activation, as nnU-Net trainer mixins.

Why these trainers do not keep nnU-Net's SGD: SiNGR's Focal-L1 acts on ``tanh(z)`` and RRW's loss on
``sigmoid(z) x map``; neither has a log term, so a voxel whose output is confidently wrong gets the
gradient factor ``tanh'(z)`` (or ``sigmoid'(z)``), which vanishes there. nnU-Net's SGD (learning rate
1e-2, Nesterov momentum 0.99) drives SiNGR's outputs of small regions deep into the saturated background
side within the first epochs, and they never come back: the measured collapse is in
docs/results/training-health.md and the guard of
:mod:`nnunet_ext.training.health` reports it while training. Adam normalises each parameter's step by
its gradient's running magnitude, so a small (saturated) gradient still moves the weights.

- :class:`AdamWithPolyDecay`: ``torch.optim.Adam`` at 1e-3 with weight decay 1e-5 and nnU-Net's poly
  decay (exponent 0.9 over ``num_epochs``): the default of ``nnUNetTrainerSiNGR`` (chosen by measurement,
  docs/results/training-health.md) and of ``nnUNetTrainerRRW`` (where it does not yet make the small
  regions learn: same record);
- :class:`PaperAdam`: the SiNGR paper's optimiser (Dang, Nguyen, Tiulpin, MICCAI 2024, Sec. 4: "the Adam
  optimizer with an initial learning rate of 10^-4, a weight decay of 10^-5"). The paper names no
  schedule, so nnU-Net's poly decay is kept, as nnU-Net's own ``nnUNetTrainerVanillaAdam`` does;
- :class:`RRWAuthorsAdam`: the optimiser of the RRW authors' nnU-Net v1 trainer, Adam at 1e-4 (their
  trainer keeps nnU-Net's weight decay 3e-5 and gradient clipping at 12, which nnU-Net v2 also applies);
- :class:`NnUNetSGD`: nnU-Net's own optimiser back, for a trainer whose base chose Adam.

Plain ``torch.optim.Adam`` (L2 penalty added to the gradient, no AMSGrad), as the papers say Adam;
nnU-Net's ``nnUNetTrainerAdam`` is AdamW with AMSGrad.
"""

from __future__ import annotations

import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


#: devices on which Adam runs fused: the same update as the per-tensor loop in one kernel per step. In one
#: ad-hoc CPU measurement (2026-12-02, under load) the loop took about twice nnU-Net's SGD step and the fused
#: step about as long as SGD; nnunet_ext_benchmark training reports optimizer.step per trainer
FUSED_ADAM_DEVICES = ("cpu", "cuda")


class AdamWithPolyDecay:
    """Mixin placed before an nnU-Net trainer: Adam at ``adam_lr`` with weight decay ``adam_weight_decay``.

    ``__init__`` (nnU-Net's exact signature, which the base trainer re-reads to restore from a
    checkpoint) sets ``initial_lr`` / ``weight_decay``, so nnU-Net's log and ``debug.json`` show them.
    """

    adam_lr: float = 1e-3
    adam_weight_decay: float = 1e-5

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr, self.weight_decay = self.adam_lr, self.adam_weight_decay

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay,
                                     fused=self.device.type in FUSED_ADAM_DEVICES or None)
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)


class PaperAdam(AdamWithPolyDecay):
    """The SiNGR paper's optimiser (Sec. 4): Adam, initial learning rate 1e-4, weight decay 1e-5."""

    adam_lr = 1e-4


class RRWAuthorsAdam(AdamWithPolyDecay):
    """The RRW authors' nnU-Net v1 optimiser: Adam at 1e-4 with nnU-Net's weight decay 3e-5."""

    adam_lr = 1e-4
    adam_weight_decay = 3e-5


class NnUNetSGD:
    """Mixin placed before a trainer whose base uses Adam: nnU-Net's SGD (1e-2, Nesterov 0.99, poly decay)."""

    #: nnUNetTrainer.__init__'s values in nnU-Net 2.8.1 (a test holds them against the installed nnU-Net)
    nnunet_initial_lr, nnunet_weight_decay = 1e-2, 3e-5

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr, self.weight_decay = self.nnunet_initial_lr, self.nnunet_weight_decay

    def configure_optimizers(self):
        return nnUNetTrainer.configure_optimizers(self)
