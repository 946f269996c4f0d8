"""nnunet_ext_benchmark quality: argument errors, and its set-up stages on two real LGG patients (e2e)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PART = ["-m", "nnunet_ext.benchmarks", "quality"]
LGG_SAMPLE = "lgg_kaggle_3m_sample/kaggle_3m"
SMALLEST = ("TCGA_HT_7686_19950629", "TCGA_HT_8018_19970411")  # 20 slices each


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *PART, *args], capture_output=True, text=True, timeout=timeout)


def test_no_source_names_the_option_and_the_variable():
    env = {k: v for k, v in os.environ.items() if k != "NNUNET_EXT_DATA"}
    completed = subprocess.run([sys.executable, *PART, "--dataset", "lgg", "--device", "cpu"], capture_output=True,
                               text=True, timeout=300, env=env)
    assert completed.returncode == 2 and "set NNUNET_EXT_DATA" in completed.stderr.strip().splitlines()[-1]


def test_missing_source_names_the_option(tmp_path):
    completed = _run("--dataset", "lgg", "--source", str(tmp_path / "absent"), "--device", "cpu")
    assert completed.returncode == 2
    assert "--source: folder not found" in completed.stderr.strip().splitlines()[-1]


def test_trainers_share_one_budget(tmp_path):
    completed = _run("--dataset", "lgg", "--source", str(tmp_path), "--device", "cpu", "--budget", "_10epochs_20iters",
                     "--trainers", "nnUNetTrainer", "nnUNetTrainerSiNGR_1epoch_2iters")
    assert completed.returncode == 2 and "all trainers share one budget" in completed.stderr


@pytest.mark.e2e
def test_lgg_two_patients_convert_then_resume(tmp_path, sample_data):
    """The real-data path as far as a 60-s budget on 2 cores allows (planning alone takes longer): trainer
    look-up, conversion of two patients, the record, and a second run that skips the stage with its timings."""
    kaggle_3m = sample_data(LGG_SAMPLE)
    source = tmp_path / "kaggle_3m"
    source.mkdir()
    for patient in SMALLEST:
        (source / patient).symlink_to(kaggle_3m / patient, target_is_directory=True)
    out = tmp_path / "quality"
    args = ("--dataset", "lgg", "--source", str(source), "--out", str(out), "--budget", "_1epoch_2iters",
            "--folds", "0", "--device", "cpu", "--np", "1", "--stop-after", "convert")
    completed = _run(*args)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    record = json.loads((out / "quality.json").read_text())
    assert [s["stage"] for s in record["stages"]] == ["convert"] and record["stages"][0]["seconds"] > 0
    labels = out / "nnUNet_raw" / "Dataset971_LGGFlair" / "labelsTr"
    assert sorted(p.name for p in labels.iterdir()) == [f"{p}.nii.gz" for p in SMALLEST]

    completed = _run(*args)  # the same command again: conversion skipped, reported with the first run's timings
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    again = json.loads((out / "quality.json").read_text())["stages"][0]
    assert again["skipped"] == "raw dataset present" and again["seconds"] == record["stages"][0]["seconds"]

    completed = _run(*args[:-2], "--trainers", "nnUNetTrainerNoSuchMethod")
    assert completed.returncode == 1 and "nnUNetTrainerNoSuchMethod_1epoch_2iters not found" in completed.stderr


@pytest.mark.e2e
def test_lgg_shrink_bins_slices_in_plane(tmp_path, sample_data):
    """--shrink 4: the LGG volumes converted binned 4 x 4 in-plane (SimpleITK BinShrink), labels by majority."""
    kaggle_3m = sample_data(LGG_SAMPLE)
    import numpy as np
    import SimpleITK as sitk

    from nnunet_ext.converters.lgg import convert_lgg

    source = tmp_path / "kaggle_3m"
    source.mkdir()
    (source / SMALLEST[0]).symlink_to(kaggle_3m / SMALLEST[0])
    out = tmp_path / "work"
    completed = _run("--dataset", "lgg", "--source", str(source), "--out", str(out), "--budget", "_1epoch_2iters",
                     "--trainers", "nnUNetTrainer", "--shrink", "4", "--stop-after", "convert")
    assert completed.returncode == 0, completed.stderr[-2000:]
    full = convert_lgg(source, 971, raw_root=tmp_path / "full_resolution")
    small = out / "nnUNet_raw" / "Dataset971_LGGFlairShrink4"
    image = sitk.ReadImage(str(small / "imagesTr" / f"{SMALLEST[0]}_0001.nii.gz"))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(small / "labelsTr" / f"{SMALLEST[0]}.nii.gz")))
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(full / "labelsTr" / f"{SMALLEST[0]}.nii.gz")))
    assert image.GetSize()[:2] == (64, 64) and image.GetSpacing()[:2] == (4.0, 4.0)
    blocks = reference.reshape(reference.shape[0], 64, 4, 64, 4).mean((2, 4))
    assert np.array_equal(label, (blocks >= 0.5).astype(label.dtype))
    assert json.loads((small / "dataset.json").read_text())["shrunk_in_plane"] == 4
    assert json.loads((out / "quality.json").read_text())["stages"][0]["shrink_in_plane"] == 4


def test_plan_overrides_replace_the_planned_values_and_remember_them(tmp_path, monkeypatch):
    """--batch-size N / --patch-size: the plans' configuration trains with them; each planned value is kept
    beside it, so a second run (or another value) still reports what nnU-Net planned. A patch the planned
    network cannot pool is refused."""
    import argparse

    from nnunet_ext.benchmarks import quality as benchmark_quality
    from nnunet_ext.errors import NnunetExtError
    from nnunet_ext.workflow.pipeline import Pipeline

    dataset = tmp_path / "nnUNet_preprocessed" / "Dataset971_LGGFlairShrink4"
    dataset.mkdir(parents=True)
    strides = [[1, 1], [2, 2], [2, 2], [1, 2]]  # pools 4 x 8
    plans = {"configurations": {"2d": {"batch_size": 25, "patch_size": [32, 64],
                                       "architecture": {"arch_kwargs": {"strides": strides}}},
                                "3d_fullres": {"batch_size": 2}}}
    (dataset / "nnUNetPlans.json").write_text(json.dumps(plans))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "nnUNet_preprocessed"))
    out = tmp_path / "work"
    args = argparse.Namespace(configuration="2d", batch_size=8, patch_size=None, out=out,
                              pipeline=Pipeline(dataset.name, "2d", out / "logs", journal=out / "stages.jsonl"))
    args.out.mkdir()
    for batch_size in (8, 8, 12):
        args.batch_size = batch_size
        record = benchmark_quality.override_plans(args, dataset.name)
        written = json.loads((dataset / "nnUNetPlans.json").read_text())["configurations"]
        assert written["2d"]["batch_size"] == batch_size and written["2d"]["planned_batch_size"] == 25
        assert written["3d_fullres"] == {"batch_size": 2} and written["2d"]["patch_size"] == [32, 64]
        assert record["planned"] == {"batch_size": 25} and record["used"] == {"batch_size": batch_size}
    args.batch_size, args.patch_size = None, [16, 24]
    record = benchmark_quality.override_plans(args, dataset.name)
    written = json.loads((dataset / "nnUNetPlans.json").read_text())["configurations"]["2d"]
    assert written["patch_size"] == [16, 24] and written["planned_patch_size"] == [32, 64]
    assert written["batch_size"] == 12 and record["planned"] == {"patch_size": [32, 64]}
    for bad in ([16, 20], [16]):  # 20 is not divisible by 8; one size for a 2d network
        args.patch_size = bad
        with pytest.raises(NnunetExtError, match="divisible by"):
            benchmark_quality.override_plans(args, dataset.name)
    assert not list(dataset.glob(".*"))  # no temporary left
