"""End-to-end CPU runs (1 epoch x 2 iterations, train + predict) of the distance-loss trainers on a
region dataset (brats) and a label dataset (binary): GSL, RRW and Boundary each on one of them,
RRW on both (its region extension and its label form differ most)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_command


@pytest.mark.e2e
@pytest.mark.parametrize("trainer, kind", [
    ("nnUNetTrainerGSL_1epoch_2iters", "brats"),
    ("nnUNetTrainerRRW_1epoch_2iters", "binary"),
    ("nnUNetTrainerBoundary_1epoch_2iters", "binary"),
    ("nnUNetTrainerRRW_1epoch_2iters", "brats"),
])
def test_distance_trainer_train_predict(trainer, kind, nnunet_env, tiny_dataset, tmp_path):
    dataset_id, configuration, raw_folder = tiny_dataset(kind)
    trained = run_command(["nnUNetv2_train", str(dataset_id), configuration, "0", "-tr", trainer, "-device", "cpu"],
                          nnunet_env)
    assert "target maps" in trained.stdout  # the trainer computed its maps and said so
    fold = Path(nnunet_env["nnUNet_results"]) / raw_folder.name / f"{trainer}__nnUNetPlans__{configuration}" / "fold_0"
    checkpoint = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert all(np.isfinite(checkpoint["logging"]["train_losses"]))
    if "RRW" not in trainer:
        assert checkpoint["logging"]["alpha"] == [1.0]  # logged each epoch; alpha starts at 1
        assert (fold / "progress.png").is_file()
    if "GSL" in trainer:
        counts = Path(nnunet_env["nnUNet_preprocessed"]) / raw_folder.name / \
            f"nnunet_ext_gsl_counts__nnUNetPlans__{configuration}.json"
        assert sum(json.loads(counts.read_text())["weights"]) == pytest.approx(1.0)
    out = tmp_path / "pred"
    run_command(["nnUNetv2_predict", "-i", str(raw_folder / "imagesTs"), "-o", str(out), "-d", str(dataset_id),
                 "-c", configuration, "-tr", trainer, "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1"],
                nnunet_env)
    ending = json.loads((raw_folder / "dataset.json").read_text())["file_ending"]
    assert len(sorted(out.glob(f"*{ending}"))) == 2
