"""The converging benchmarks (quality-cpu, quality-real): plateau, claims, and quality-cpu's results rebuilt from
its committed records. The e2e smoke of the machinery: tests/test_quality_real.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnunet_ext.benchmarks.converging import Claim, check_claims, plateau

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def test_plateau_is_the_ema_rise_over_the_last_fifth():
    ema = [0.1 * i for i in range(8)] + [0.75, 0.755]  # 10 epochs: the last 20 % start at epoch 7
    result = plateau(ema)
    assert result["ema_first_of_last_20pct"] == pytest.approx(0.7) and result["rise"] == pytest.approx(0.055)
    assert not result["plateaued"]
    assert plateau([0.5] * 7 + [0.80, 0.805, 0.809])["plateaued"]


def test_claims_are_checked_per_region_by_direction_and_significance():
    claim = Claim("SiNGR", "T", "brats", "hd95", -1, None, "lower HD95")
    records = [{"trainer": "T", "dataset": "brats", "region": region, "hd95_difference_vs_default": d,
                "hd95_wilcoxon_p": p} for region, d, p in (("wt", -2.0, 0.01), ("tc", -1.0, 0.3), ("et", 0.5, 0.01))]
    records.append({"trainer": "T", "dataset": "lgg", "region": "tumor", "hd95_difference_vs_default": -9.0,
                    "hd95_wilcoxon_p": 0.001})
    verdicts = {c["region"]: c["verdict"] for c in check_claims((claim,), records)}
    assert verdicts == {"wt": "reproduced", "tc": "same direction, not significant", "et": "not reproduced"}
    only_tc = Claim("SiNGR", "T", "brats", "hd95", -1, "tc", "lower HD95")
    assert [c["region"] for c in check_claims((only_tc,), records)] == ["tc"]


def test_quality_cpu_results_are_rebuilt_from_the_committed_records(tmp_path):
    """--report-only on a copy of docs/results: the same records come back from the per-fold run files."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "quality_cpu", results / "quality_cpu")
    completed = subprocess.run([sys.executable, "-m", "nnunet_ext.benchmarks", "quality-cpu", "--report-only",
                                "--results", str(results), "--out", str(tmp_path / "work")],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rebuilt = json.loads((results / "quality_cpu.json").read_text())
    committed = json.loads((RESULTS / "quality_cpu.json").read_text())
    assert rebuilt["records"] == committed["records"] and rebuilt["budget"] == "_80epochs_20iters"
    assert "| nnUNetTrainerSiNGR | tumor core | 0, 1, 2 |" in (results / "quality_cpu.md").read_text()


def test_a_difference_without_a_defined_p_value_is_shown_as_such():
    from nnunet_ext.benchmarks.converging import _difference_cell

    record = {"trainer": "T", "dice_difference_vs_default": 0.1, "dice_wilcoxon_p": None}
    assert _difference_cell(record, "dice", 100) == "+10.0 (p undefined)"
    assert _difference_cell({**record, "dice_wilcoxon_p": 0.031}, "dice", 100) == "+10.0 (0.031)"
    assert _difference_cell({"trainer": "nnUNetTrainer", "dice_difference_vs_default": None}, "dice", 100) == "baseline"
