"""nnunet_ext_benchmark quality-cpu: the converging CPU benchmark's records, in its --quick smoke mode (e2e)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nnunet_ext.benchmarks.quality_cpu import plateau

PART = ["-m", "nnunet_ext.benchmarks", "quality-cpu"]


def test_plateau_is_the_ema_rise_over_the_last_fifth():
    ema = [0.1 * i for i in range(8)] + [0.75, 0.755]  # 10 epochs: the last 20 % start at epoch 7
    result = plateau(ema)
    assert result["ema_first_of_last_20pct"] == pytest.approx(0.7) and result["rise"] == pytest.approx(0.055)
    assert not result["plateaued"]
    assert plateau([0.5] * 7 + [0.80, 0.805, 0.809])["plateaued"]


@pytest.mark.e2e
def test_quick_run_writes_one_record_per_trainer_and_region(tmp_path):
    out, results = tmp_path / "work", tmp_path / "results"
    completed = subprocess.run([sys.executable, *PART, "--quick", "--out", str(out),
                                "--results", str(results)], capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record = json.loads((results / "quality_cpu.json").read_text())
    keys = {"trainer", "dataset", "region", "dice_mean", "dice_se", "hd95_mean", "folds", "collapsed_folds"}
    rows = record["records"]
    assert {(r["trainer"], r["region"]) for r in rows} == {
        (t, region) for t in ("nnUNetTrainer", "nnUNetTrainerSiNGR")
        for region in ("whole tumor", "tumor core", "enhancing tumor")}
    for row in rows:
        assert keys <= set(row) and row["dataset"] == "synthetic" and row["folds"] == [0]
        assert 0 <= row["dice_mean"] <= 1 and isinstance(row["collapsed_folds"], list)
    assert {r["dice_difference_vs_default"] is None for r in rows if r["trainer"] == "nnUNetTrainer"} == {True}
    assert "0" in record["datasets"]["synthetic"]["default_plateau"]
    assert record["hardware"]["logical_cpus"] >= 1 and record["budget"] == "_1epoch_2iters"
    assert "| nnUNetTrainerSiNGR | tumor core |" in (results / "quality_cpu.md").read_text()
    assert sorted(p.name for p in (results / "quality_cpu").glob("*.png")) == [
        "curves_nnUNetTrainer.png", "curves_nnUNetTrainerSiNGR.png"]

    # the committed per-fold records are the benchmark's state: on a machine without the work folder
    # nothing is retrained and the same results come back
    again = subprocess.run([sys.executable, *PART, "--quick", "--out",
                            str(tmp_path / "new_machine"), "--results", str(results)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "every trainer recorded" in again.stdout and not (tmp_path / "new_machine").exists()
    assert json.loads((results / "quality_cpu.json").read_text())["records"] == rows
