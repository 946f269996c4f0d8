"""Training-length overrides for nnU-Net trainers (short CPU schedules for demos and tests).

nnU-Net's own ``nnUNetTrainer_Xepochs`` variants shorten the number of epochs but keep 250
iterations per epoch, which is still hours on a CPU. A variant that also shortens the epoch is a
two-line subclass with this mixin placed before the trainer it shortens::

    class nnUNetTrainer_10epochs_20iters(ShortSchedule, nnUNetTrainer):
        schedule = (10, 20, 5)  # epochs, training iterations per epoch, validation iterations

The learning-rate schedule (nnU-Net's poly decay) follows ``num_epochs``, so a short run still ends
at a small learning rate.
"""

from __future__ import annotations

import torch


class ShortSchedule:
    """Mixin that sets ``num_epochs`` / ``num_iterations_per_epoch`` / ``num_val_iterations_per_epoch``.

    Its ``__init__`` keeps nnU-Net's exact signature: the base trainer rebuilds its init arguments
    from the signature of ``self.__init__`` to re-create itself from a checkpoint.
    """

    schedule: tuple[int, int, int]

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = self.schedule
