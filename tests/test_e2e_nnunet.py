"""End-to-end on CPU: nnU-Net finds our trainers through nnUNet_extTrainer, trains, predicts, evaluates."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import run_command

pytestmark = pytest.mark.e2e
SMOKE_TRAINER = "nnUNetTrainer_1epoch_2iters"


def results_fold(env, raw_folder: Path, trainer: str, configuration: str, fold) -> Path:
    return Path(env["nnUNet_results"]) / raw_folder.name / f"{trainer}__nnUNetPlans__{configuration}" / f"fold_{fold}"


def test_train_under_spawn_predict_evaluate(nnunet_env, tiny_dataset, tmp_path):
    """nnU-Net trains a trainer it finds through nnUNet_extTrainer with an augmentation worker under the spawn start
    method (macOS, Windows, Python >= 3.14), where everything sent to the worker must unpickle in a fresh interpreter:
    the trainer found in trainers/ must only hand installed classes to it. nnUNetv2_predict and our evaluation then
    read the fold. (``nnUNetv2_train -tr`` itself runs in every other e2e test.)"""
    from nnunet_ext.evaluation import evaluate_folders

    dataset_id, configuration, raw_folder = tiny_dataset("brats")
    script = textwrap.dedent(f"""
        import multiprocessing, torch
        multiprocessing.set_start_method("spawn", force=True)
        from nnunetv2.run.run_training import run_training
        run_training("{dataset_id}", "{configuration}", 0, "{SMOKE_TRAINER}", device=torch.device("cpu"))
    """)
    env = {**nnunet_env, "nnUNet_n_proc_DA": "1"}
    trained = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert f"Using trainer '{SMOKE_TRAINER}' from: {nnunet_env['nnUNet_extTrainer']}" in trained.stdout
    fold = results_fold(nnunet_env, raw_folder, SMOKE_TRAINER, configuration, 0)
    assert (fold / "checkpoint_final.pth").is_file()
    assert json.loads((fold / "validation" / "summary.json").read_text())["foreground_mean"]

    predictions = tmp_path / "predictions"
    run_command(["nnUNetv2_predict", "-i", str(raw_folder / "imagesTs"), "-o", str(predictions), "-d", str(dataset_id),
                 "-c", configuration, "-tr", SMOKE_TRAINER, "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1"],
                nnunet_env)
    dataset_json = json.loads((raw_folder / "dataset.json").read_text())
    metrics = evaluate_folders(predictions, raw_folder / "labelsTs", dataset_json)
    regions = {m.region for m in metrics}
    assert len(metrics) == 2 * len(regions)
    for values in metrics:  # per case, so the means are in range too
        assert 0.0 <= values.dice <= 1.0 and values.hd95 >= 0.0


def test_unknown_trainer_is_reported_by_nnunet(nnunet_env, monkeypatch):
    """nnU-Net's look-up (what ``nnUNetv2_train -tr`` and ``nnUNetv2_predict -tr`` call) searches our folder and
    reports a trainer that is in none with its own message."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    monkeypatch.setenv("nnUNet_extTrainer", nnunet_env["nnUNet_extTrainer"])
    with pytest.raises(RuntimeError, match="Could not find requested nnunet trainer nnUNetTrainerDoesNotExist"):
        recursive_find_trainer_class_by_name("nnUNetTrainerDoesNotExist")
