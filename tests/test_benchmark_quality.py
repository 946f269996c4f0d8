"""scripts/benchmark_quality.py: argument errors, and its set-up stages on two real LGG patients (e2e)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "benchmark_quality.py"
KAGGLE_3M = REPO.parent / "shared" / "data" / "lgg_kaggle_3m_sample" / "kaggle_3m"
SMALLEST = ("TCGA_HT_7686_19950629", "TCGA_HT_8018_19970411")  # 20 slices each


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_missing_source_names_the_option(tmp_path):
    completed = _run("--dataset", "lgg", "--source", str(tmp_path / "absent"), "--device", "cpu")
    assert completed.returncode == 2
    assert "--source: folder not found" in completed.stderr.strip().splitlines()[-1]


def test_trainers_share_one_budget(tmp_path):
    completed = _run("--dataset", "lgg", "--source", str(tmp_path), "--device", "cpu", "--budget", "_10epochs_20iters",
                     "--trainers", "nnUNetTrainer", "nnUNetTrainerSiNGR_1epoch_2iters")
    assert completed.returncode == 2 and "all trainers share one budget" in completed.stderr


@pytest.mark.e2e
def test_lgg_two_patients_until_precompute_then_resume(tmp_path):
    if not all((KAGGLE_3M / p).is_dir() for p in SMALLEST):
        pytest.skip(f"LGG kaggle_3m sample not found at {KAGGLE_3M} (../shared/data beside the repository)")
    source = tmp_path / "kaggle_3m"
    source.mkdir()
    for patient in SMALLEST:
        (source / patient).symlink_to(KAGGLE_3M / patient, target_is_directory=True)
    out = tmp_path / "quality"
    args = ("--dataset", "lgg", "--source", str(source), "--out", str(out), "--budget", "_1epoch_2iters",
            "--folds", "0", "--device", "cpu", "--np", "1", "--stop-after", "precompute")
    completed = _run(*args)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record = json.loads((out / "quality.json").read_text())
    assert record["plans"]["configuration"] == "2d" and len(record["plans"]["patch_size"]) == 2
    assert record["split"]["n_folds"] == 2 and record["dataset"]["cases"] == list(SMALLEST)
    assert record["budget"]["training_iterations"] == 2 and record["trainers"] == [
        "nnUNetTrainer_1epoch_2iters", "nnUNetTrainerSiNGR_1epoch_2iters"]
    assert record["trainer_details"]["nnUNetTrainerSiNGR_1epoch_2iters"]["target_maps"]["kind"] == "sing"
    assert [s["stage"].split()[0] for s in record["stages"]] == ["convert", "plan_and_preprocess", "precompute"]
    assert all(s["seconds"] > 0 and "skipped" not in s for s in record["stages"])
    markdown = (out / "quality.md").read_text()
    assert "not a reproduction of the SiNGR paper" in markdown and "nnU-Net does not seed" in markdown

    # the same command again: every stage skipped, with the timings of the first run
    completed = _run(*args)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    again = json.loads((out / "quality.json").read_text())
    assert all(s.get("skipped") for s in again["stages"])
    assert [s["seconds"] for s in again["stages"]] == [s["seconds"] for s in record["stages"]]
