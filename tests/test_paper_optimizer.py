"""PaperAdam: the SiNGR paper's optimiser (Sec. 4: Adam, lr 1e-4, weight decay 1e-5) as an nnU-Net trainer mixin."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from conftest import run_command
from nnunet_ext.schedules import ShortSchedule
from nnunet_ext.training.optimizers import PaperAdam

REPO = Path(__file__).resolve().parents[1]


class _StandInTrainer:
    """The attributes of nnUNetTrainer that configure_optimizers reads, with nnU-Net's defaults."""

    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        self.initial_lr, self.weight_decay, self.num_epochs = 1e-2, 3e-5, 10
        self.network = nn.Conv2d(1, 2, 3)


class _Trainer(ShortSchedule, PaperAdam, _StandInTrainer):
    schedule = (4, 2, 1)


def test_adam_with_the_papers_rate_and_weight_decay():
    trainer = _Trainer({}, "2d", 0, {}, torch.device("cpu"))
    assert (trainer.initial_lr, trainer.weight_decay) == (1e-4, 1e-5)  # what nnU-Net logs and saves
    optimizer, scheduler = trainer.configure_optimizers()
    assert type(optimizer) is torch.optim.Adam
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == 1e-5 and group["amsgrad"] is False
    # nnU-Net's poly decay over the (short) schedule's 4 epochs: lr_t = 1e-4 * (1 - t / 4) ** 0.9
    for epoch in range(4):
        scheduler.step(epoch)
        assert group["lr"] == pytest.approx(1e-4 * (1 - epoch / 4) ** 0.9)


def test_keeps_nnunets_init_signature():
    """nnU-Net rebuilds a trainer from the names of its __init__ parameters (checkpoints, --c)."""
    expected = list(inspect.signature(nnUNetTrainer.__init__).parameters)
    assert list(inspect.signature(PaperAdam.__init__).parameters) == expected


@pytest.mark.e2e
def test_singr_adam_trains_with_adam(nnunet_env, tiny_dataset, tmp_path):
    dataset_id, configuration, raw_folder = tiny_dataset("2d")
    trainer = "nnUNetTrainerSiNGR_Adam_1epoch_2iters"
    run_command(["nnUNetv2_train", str(dataset_id), configuration, "0", "-tr", trainer, "-device", "cpu"], nnunet_env)
    fold = Path(nnunet_env["nnUNet_results"]) / raw_folder.name / f"{trainer}__nnUNetPlans__{configuration}" / "fold_0"
    debug = json.loads((fold / "debug.json").read_text())
    assert debug["optimizer"].startswith("Adam (") and "lr: 0.0001" in debug["optimizer"]
    assert "Current learning rate: 0.0001" in next(fold.glob("training_log_*.txt")).read_text()
    assert (fold / "checkpoint_final.pth").is_file()

    # the saturation check of scripts/singr_saturation.py reads this fold's outputs on its validation cases
    report = tmp_path / "saturation.json"
    checked = subprocess.run([sys.executable, str(REPO / "scripts" / "singr_saturation.py"), "-d", str(dataset_id),
                              "-c", configuration, "-tr", trainer, "-f", "0", "--json", str(report)],
                             env=nnunet_env, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stderr[-2000:]
    result = json.loads(report.read_text())
    assert result["cases"] and set(result["maps"]) == {"1"}  # the synthetic 2d kind: one tumour class
    for stats in result["maps"].values():
        assert 0 <= stats["inside_saturated_below_0"] <= 1 and 0 <= stats["inside_above_0"] <= 1
