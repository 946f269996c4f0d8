"""nnunet_ext_benchmark quality-real: its --quick smoke on a synthetic stand-in (e2e), which runs the converging
benchmarks' whole machinery: the quality part with a target spacing, per-fold records with the organisers'
lesion-wise metrics, the results, and a resume from the committed records alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PART = ["-m", "nnunet_ext.benchmarks", "quality-real"]


def test_real_data_benchmark_needs_its_folders(tmp_path):
    completed = subprocess.run([sys.executable, *PART, "--out", str(tmp_path / "work"), "--results",
                                str(tmp_path / "results"), "--lgg-patients", str(tmp_path / "absent.txt")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "[quality_real] brats skipped: no --brats-source" in completed.stdout
    assert "[quality_real] lgg skipped: no --lgg-source" in completed.stdout
    assert not (tmp_path / "work").exists()


@pytest.mark.e2e
def test_quick_run_writes_one_record_per_trainer_and_region(tmp_path):
    out, results = tmp_path / "work", tmp_path / "results"
    single_threaded = {**os.environ, "nnUNet_n_proc_DA": "0"}  # no augmentation workers to spawn on 2 cores
    completed = subprocess.run([sys.executable, *PART, "--quick", "--out", str(out), "--results", str(results)],
                               capture_output=True, text=True, timeout=1200, env=single_threaded)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record = json.loads((results / "quality_real.json").read_text())
    rows = record["records"]
    assert {(r["trainer"], r["region"]) for r in rows} == {
        (t, region) for t in ("nnUNetTrainer", "nnUNetTrainerSiNGR_Euclidean")
        for region in ("whole tumor", "tumor core", "enhancing tumor")}
    keys = {"dice_mean", "dice_se", "hd95_mean", "lw_dice_mean", "lw_hd95_mean", "folds", "collapsed_folds"}
    for row in rows:
        assert keys <= set(row) and row["dataset"] == "synthetic" and row["folds"] == [0]
        assert 0 <= row["dice_mean"] <= 1 and 0 <= row["lw_dice_mean"] <= 1 and row["lw_hd95_mean"] >= 0
    assert {r["dice_difference_vs_default"] is None for r in rows if r["trainer"] == "nnUNetTrainer"} == {True}
    data = record["datasets"]["synthetic"]
    assert data["plans"]["spacing"] == [1.5, 1.5, 1.5] and "0" in data["default_plateau"]
    run = json.loads((results / "quality_real" / "runs" / "synthetic" /
                      "nnUNetTrainerSiNGR_Euclidean_1epoch_2iters_fold0.json").read_text())
    cases = {c["case"] for c in run["cases"]}
    assert len(cases) == 2 and all("lw_dice" in c for c in run["cases"])  # fold 0 validates 2 of 10 cases
    assert record["budget"] == "_1epoch_2iters" and record["claims"] == []
    markdown = (results / "quality_real.md").read_text()
    assert "| nnUNetTrainerSiNGR_Euclidean | tumor core | 0 |" in markdown and "lesion-wise Dice %" in markdown

    # the committed per-fold records are the benchmark's state: on a machine without the work folder
    # nothing is retrained and the same results come back
    again = subprocess.run([sys.executable, *PART, "--quick", "--out", str(tmp_path / "new_machine"), "--results",
                            str(results)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "every trainer recorded" in again.stdout and not (tmp_path / "new_machine").exists()
    assert json.loads((results / "quality_real.json").read_text())["records"] == rows
