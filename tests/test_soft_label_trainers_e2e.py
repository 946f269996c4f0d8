"""End-to-end CPU runs of the soft-label trainers: GeoLS on a region dataset (maps computed by the
trainer on first use; 1 epoch x 2 iterations), LS + JML on a 2D label dataset (no maps; long enough to learn,
so it must beat the Dice of a network that did not learn); train and validate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import blosc2
import numpy as np
import pytest

from conftest import LEARNING_BUDGET, assert_learned, run_command


@pytest.mark.e2e
@pytest.mark.parametrize("kind, trainer", [("brats", "nnUNetTrainerGeoLS_1epoch_2iters"),
                                           ("2d", f"nnUNetTrainerLS_JML{LEARNING_BUDGET}")])
def test_soft_label_trainer_trains(kind, trainer, nnunet_env, tiny_dataset):
    dataset_id, configuration, raw_folder = tiny_dataset(kind)
    trained = run_command(["nnUNetv2_train", str(dataset_id), configuration, "0", "-tr", trainer, "-device", "cpu"],
                          nnunet_env)
    losses = [float(v) for v in re.findall(r"train_loss (\S+)", trained.stdout)]
    assert losses and all(np.isfinite(losses))
    config_folder = Path(nnunet_env["nnUNet_preprocessed"]) / raw_folder.name / f"nnUNetPlans_{configuration}"
    geols_folders = sorted((config_folder / "nnunet_ext_targets").glob("geols_*"))
    if "GeoLS" in trainer:
        assert "target maps" in trained.stdout  # missing maps were computed by the trainer
        maps = np.asarray(blosc2.open(str(next(geols_folders[0].glob("*.b2nd"))), mode="r")[:], dtype=np.float32)
        assert maps.shape[0] == 3 and maps.min() >= 0 and maps.max() == 1  # WT, TC, ET maps in [0, 1]
    else:
        assert not geols_folders  # label smoothing needs no maps
    fold = Path(nnunet_env["nnUNet_results"]) / raw_folder.name / f"{trainer}__nnUNetPlans__{configuration}" / "fold_0"
    validation = json.loads((fold / "validation" / "summary.json").read_text())
    if trainer.endswith(LEARNING_BUDGET):
        assert_learned(validation)
