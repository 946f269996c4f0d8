"""End to end: nnunet_ext_cv trains 2 folds of a smoke-test trainer on a tiny dataset, re-running skips them,
and nnunet_ext_report writes the comparison table from the folds' validation predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_command

TRAINER = "nnUNetTrainer_1epoch_2iters"


@pytest.mark.e2e
def test_cv_runner_and_report(nnunet_env, tiny_dataset, tmp_path):
    dataset_id, configuration, _ = tiny_dataset("brats")
    # own results folder: other end-to-end tests train the same trainer's folds of this dataset
    nnunet_env = {**nnunet_env, "nnUNet_results": str(tmp_path / "nnUNet_results")}
    cv = ["nnunet_ext_cv", "-d", str(dataset_id), "-c", configuration, "-tr", TRAINER, "-f", "0", "1", "-device", "cpu"]
    first = run_command(cv, nnunet_env)
    assert first.stdout.count("$ nnUNetv2_train") == 2
    results = Path(nnunet_env["nnUNet_results"])
    folds = sorted(results.glob(f"*/{TRAINER}__nnUNetPlans__{configuration}/fold_*/checkpoint_final.pth"))
    assert len(folds) == 2

    again = run_command(cv, nnunet_env)  # finished folds are skipped, nothing is trained
    assert "$ nnUNetv2_train" not in again.stdout and again.stdout.count("finished, skipped") == 2

    out = tmp_path / "report"
    run_command(["nnunet_ext_report", "-d", str(dataset_id), "-c", configuration, "-tr", TRAINER, "-f", "0", "1",
                 "-b", TRAINER, "-o", str(out)], nnunet_env)
    with open(out / "summary.csv") as handle:
        summary = list(csv.DictReader(handle))
    assert {r["region"] for r in summary} == {"whole tumor", "tumor core", "enhancing tumor"}
    splits = json.loads(next(Path(nnunet_env["nnUNet_preprocessed"]).glob(f"Dataset{dataset_id}_*/splits_final.json"))
                        .read_text())
    n_cases = len(splits[0]["val"]) + len(splits[1]["val"])
    assert all(r["n_cases"] == str(n_cases) and r["n_folds"] == "2" for r in summary)
    assert "Mean ± standard error over folds" in (out / "report.md").read_text()
    assert (out / "boxplots.png").is_file()
