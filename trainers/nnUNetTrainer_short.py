"""Short-schedule variants of nnU-Net's default trainer, for CPU demos and tests.

Usage: ``nnUNetv2_train 990 3d_fullres 0 -tr nnUNetTrainer_10epochs_20iters -device cpu``
(with ``nnUNet_extTrainer`` pointing at this folder).
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.schedules import ShortSchedule


class nnUNetTrainer_10epochs_20iters(ShortSchedule, nnUNetTrainer):
    """The README demo's budget: 10 epochs x 20 iterations (+ 5 validation iterations each)."""

    schedule = (10, 20, 5)


class nnUNetTrainer_1epoch_2iters(ShortSchedule, nnUNetTrainer):
    """Smoke-test budget used by the end-to-end tests."""

    schedule = (1, 2, 1)


class nnUNetTrainer_50epochs_100iters(ShortSchedule, nnUNetTrainer):
    """GPU quality-benchmark budget (scripts/benchmark_quality.py): 50 epochs x 100 iterations (+ 20 validation)."""

    schedule = (50, 100, 20)
