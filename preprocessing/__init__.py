"""nnU-Net preprocessing hook of nnunet-ext (installed as ``nnunet_ext.preprocessing``).

Commands here run after ``nnUNetv2_plan_and_preprocess`` and write per-case target maps next to
nnU-Net's preprocessed cases.
"""
