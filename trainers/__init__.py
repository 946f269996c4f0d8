"""The nnU-Net trainers of nnunet-ext, installed as ``nnunet_ext.trainers``: the folder to put on ``nnUNet_extTrainer``.

    export nnUNet_extTrainer="${nnUNet_extTrainer:+$nnUNet_extTrainer:}$(nnunet_ext_trainer_path)"

nnU-Net does not import this package: its trainer lookup adds this folder to ``sys.path`` and imports
each module under its bare file name (``nnUNetTrainerSiNGR``; this ``__init__`` is skipped), then
removes the folder and its modules again. Hence the rules for the modules here: named after their
trainer, importing only the installed ``nnunet_ext`` package (never each other), and nothing that
nnU-Net pickles to augmentation workers defined here (it would not re-import under spawn). This file
stays empty of code for the same reason.
"""
