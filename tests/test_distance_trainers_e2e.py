"""End-to-end CPU runs (1 epoch x 2 iterations, train; RRW also predicts) of the distance-loss trainers on a
region dataset (brats) and a label dataset (binary): GSL, RRW and Boundary each on one of them. RRW's region
extension, which differs most from its label form, trains on the region dataset in tests/test_ddp_simulated.py;
nnU-Net's final validation and prediction of a map trainer on regions: tests/test_singr_trainer.py.

GSL's schedules give alpha = 1 in the first epoch, so a one-epoch run would weight the GSL term by 0:
the smoke test trains a test-only variant with alpha 0.5 (``GSL_SMOKE_TRAINER``, written to a temporary
trainer folder that ``nnUNet_extTrainer`` lists before ours), so the GSL term and its class weights
take part in the loss and its gradient."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, run_command

GSL_SMOKE_TRAINER = "nnUNetTrainerGSL_halfAlpha_1epoch_2iters"
GSL_SMOKE_ALPHA = 0.5
_GSL_SMOKE_MODULE = '''"""Test-only: nnUNetTrainerGSL_1epoch_2iters with alpha {alpha}, so that a one-epoch run trains the GSL term."""
import importlib.util

_spec = importlib.util.spec_from_file_location("_nnunet_ext_test_gsl_trainers", {path!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


class {name}(_module.nnUNetTrainerGSL_1epoch_2iters):
    def alpha(self, epoch: int) -> float:
        return {alpha}
'''


@pytest.fixture
def trainer_env(nnunet_env, tmp_path):
    """nnunet_env with a trainer folder holding the GSL smoke variant ahead of ours."""
    folder = tmp_path / "test_trainers"
    folder.mkdir()
    (folder / "nnUNetTrainerGSL_smoke.py").write_text(_GSL_SMOKE_MODULE.format(
        alpha=GSL_SMOKE_ALPHA, path=str(REPO / "trainers" / "nnUNetTrainerGSL.py"), name=GSL_SMOKE_TRAINER))
    return {**nnunet_env, "nnUNet_extTrainer": os.pathsep.join([str(folder), nnunet_env["nnUNet_extTrainer"]])}


@pytest.mark.e2e
@pytest.mark.parametrize("trainer, kind, predict", [  # their outputs are nnU-Net's probabilities: one prediction
    (GSL_SMOKE_TRAINER, "brats", False),                # run shows nnUNetv2_predict -tr finds and runs ours
    ("nnUNetTrainerRRW_1epoch_2iters", "binary", True),  # RRW on regions: tests/test_ddp_simulated.py
    ("nnUNetTrainerBoundary_1epoch_2iters", "binary", False),
])
def test_distance_trainer_train_predict(trainer, kind, predict, nnunet_env, trainer_env, tiny_dataset, tmp_path):
    dataset_id, configuration, raw_folder = tiny_dataset(kind)
    trained = run_command(["nnUNetv2_train", str(dataset_id), configuration, "0", "-tr", trainer, "-device", "cpu"],
                          trainer_env)
    assert "target maps" in trained.stdout  # the trainer computed its maps and said so
    fold = Path(nnunet_env["nnUNet_results"]) / raw_folder.name / f"{trainer}__nnUNetPlans__{configuration}" / "fold_0"
    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert all(np.isfinite(checkpoint["logging"]["train_losses"]))
    if "RRW" not in trainer:  # logged each epoch; alpha starts at 1 (the GSL smoke variant: 0.5)
        assert checkpoint["logging"]["alpha"] == [GSL_SMOKE_ALPHA if "GSL" in trainer else 1.0]
        assert (fold / "progress.png").is_file()
    if "GSL" in trainer:
        assert "alpha (weight of the region loss): 0.5000" in trained.stdout  # the GSL term weighs 0.5
        assert "GSL class weights (Eq. 13)" in trained.stdout
        counts = Path(nnunet_env["nnUNet_preprocessed"]) / raw_folder.name / \
            f"nnunet_ext_gsl_counts__nnUNetPlans__{configuration}.json"
        assert sum(json.loads(counts.read_text())["weights"]) == pytest.approx(1.0)
    if not predict:
        return
    out = tmp_path / "pred"
    run_command(["nnUNetv2_predict", "-i", str(raw_folder / "imagesTs"), "-o", str(out), "-d", str(dataset_id),
                 "-c", configuration, "-tr", trainer, "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1"],
                trainer_env)
    ending = json.loads((raw_folder / "dataset.json").read_text())["file_ending"]
    assert len(sorted(out.glob(f"*{ending}"))) == 2
