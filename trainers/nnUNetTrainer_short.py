"""The budgets of nnunet_ext/budgets.py for nnU-Net's default trainer, so that it is compared at the same budget.

Usage: ``nnUNetv2_train 990 3d_fullres 0 -tr nnUNetTrainer_10epochs_20iters -device cpu``
(with ``nnUNet_extTrainer`` pointing at this folder).
"""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.budgets import add_budget_variants


add_budget_variants(globals(), [nnUNetTrainer])  # <Trainer>_1epoch_2iters, _10epochs_20iters, ...: nnunet_ext/budgets.py
