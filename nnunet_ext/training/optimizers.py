"""The SiNGR paper's optimiser as an nnU-Net trainer mixin.

Dang, Nguyen, Tiulpin (MICCAI 2024), Sec. 4, "Implementation details": "We utilized the Adam optimizer
with an initial learning rate of 10^-4, a weight decay of 10^-5". nnU-Net's default is SGD (Nesterov,
momentum 0.99) at 10^-2 with weight decay 3*10^-5. The paper names no learning-rate schedule, only an
*initial* rate, so the mixin keeps nnU-Net's poly decay (exponent 0.9 over ``num_epochs``), as
nnU-Net's own ``nnUNetTrainerVanillaAdam`` does. Plain ``torch.optim.Adam`` (L2 penalty added to the
gradient, no AMSGrad), as the paper says Adam; nnU-Net's ``nnUNetTrainerAdam`` is AdamW with AMSGrad.
"""

from __future__ import annotations

import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler


class PaperAdam:
    """Mixin placed before an nnU-Net trainer: Adam, initial learning rate 1e-4, weight decay 1e-5.

    Sets ``initial_lr`` / ``weight_decay`` in ``__init__`` (so nnU-Net's log and ``debug.json`` show
    them) with nnU-Net's exact signature, which the base trainer re-reads to restore from a checkpoint.
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.initial_lr, self.weight_decay = 1e-4, 1e-5

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay)
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)
