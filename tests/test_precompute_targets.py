"""nnUNetv2_precompute_targets: the preprocessing hook that writes SiNG maps next to nnU-Net's cases.

Most tests build a small preprocessed configuration by hand (plans, dataset.json, b2nd cases in
nnU-Net's layout), which keeps them fast; the e2e test runs on folders written by nnU-Net itself.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import blosc2
import numpy as np
import pytest
import torch

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.preprocessing.precompute_targets import (
    channel_masks,
    load_configuration,
    main,
    precompute_command,
    precompute_targets,
    require_targets,
)
from nnunet_ext.target_store import case_identifiers, case_status, open_case, target_file, targets_folder
from nnunet_ext.targets import SiNGOptions, sing_maps, target_spec

REGIONS = {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3}
LABELS = {"background": 0, "lesion": 1, "cyst": 2}


def _write_b2nd(path: Path, array: np.ndarray) -> None:
    blosc2.asarray(np.ascontiguousarray(array), urlpath=str(path), mode="w")


def _case(rng, shape, labels: int, nan: bool = False):
    grid = np.indices(shape).astype(float)
    centre = np.array(shape)[:, None, None, None] / 2 + rng.uniform(-2, 2, (3, 1, 1, 1))
    radius = np.sqrt((((grid - centre) / (np.array(shape)[:, None, None, None] / 4)) ** 2).sum(0))
    seg = np.zeros(shape, np.int16)
    for label in range(1, labels + 1):  # nested blobs: label k inside label k-1
        seg[radius < 1.0 - 0.25 * (label - 1)] = label
    seg[radius > 1.9] = -1  # outside nnU-Net's nonzero mask
    data = (rng.standard_normal((2, *shape)) + seg).astype(np.float32)
    data[:, seg < 0] = 0
    if nan:
        data[0, shape[0] // 2, shape[1] // 2, shape[2] // 2] = np.nan
    return data, seg[None]


def make_preprocessed(root: Path, dataset_id: int = 951, regions: bool = True, configuration: str = "3d_fullres",
                      shape=(20, 22, 18), spacing=(2.0, 1.0, 1.0), num_cases: int = 3, nan_case: int | None = None):
    """A preprocessed configuration in nnU-Net's layout; returns its folder."""
    dataset_dir = root / f"Dataset{dataset_id}_Tiny"
    folder = dataset_dir / f"nnUNetPlans_{configuration}"
    folder.mkdir(parents=True)
    patch = [16, 16] if configuration == "2d" else [16, 16, 16]
    plans = {
        "dataset_name": dataset_dir.name, "plans_name": "nnUNetPlans", "label_manager": "LabelManager",
        "configurations": {configuration: {"data_identifier": folder.name, "spacing": list(spacing),
                                           "patch_size": patch, "architecture": {}}},
    }
    (dataset_dir / "nnUNetPlans.json").write_text(json.dumps(plans))
    dataset_json = {"labels": REGIONS if regions else LABELS, "channel_names": {"0": "A", "1": "B"},
                    "file_ending": ".nii.gz", "numTraining": num_cases}
    if regions:
        dataset_json["regions_class_order"] = [1, 2, 3]
    (dataset_dir / "dataset.json").write_text(json.dumps(dataset_json))
    rng = np.random.default_rng(dataset_id)
    for index in range(num_cases):
        data, seg = _case(rng, shape, 3 if regions else 2, nan=index == nan_case)
        case = f"case_{index:03d}"
        _write_b2nd(folder / f"{case}.b2nd", data)
        _write_b2nd(folder / f"{case}_seg.b2nd", seg)
        (folder / f"{case}.pkl").write_bytes(pickle.dumps({"spacing": list(spacing)}))
    return folder


@pytest.fixture
def preprocessed(tmp_path, monkeypatch):
    root = tmp_path / "nnUNet_preprocessed"
    monkeypatch.setenv("nnUNet_preprocessed", str(root))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    return lambda **kwargs: make_preprocessed(root, **kwargs)


def _expected(folder: Path, case: str, channels, spacing, options=SiNGOptions()):
    data = np.asarray(blosc2.open(str(folder / f"{case}.b2nd"))[:])
    seg = np.asarray(blosc2.open(str(folder / f"{case}_seg.b2nd"))[:])[0]
    return sing_maps(data, channel_masks(seg, channels), seg >= 0, spacing, options)


def test_region_dataset_maps_match_the_transform_and_second_run_skips(preprocessed):
    folder = preprocessed()
    summary = precompute_targets(951, "3d_fullres", progress=False)
    assert (summary["cases"], summary["computed"], summary["skipped"], summary["previously_missing"]) == (3, 3, 0, 3)
    spec = target_spec("sing")
    assert summary["target_id"] == spec.target_id
    meta = json.loads((targets_folder(folder, spec) / "spec.json").read_text())
    assert meta["channels"] == [[1, 2, 3], [2, 3], [3]] and meta["has_regions"] is True
    assert meta["spacing"] == [2.0, 1.0, 1.0] and meta["params"] == SiNGOptions().as_params()
    assert {"nnunet-ext", "nnunetv2", "FastGeodis", "torch"} <= set(meta["versions"])
    stored = open_case(folder, spec, "case_001")
    assert stored.dtype == np.float16 and stored.shape == (3, 20, 22, 18)
    np.testing.assert_allclose(stored[:], _expected(folder, "case_001", meta["channels"], (2.0, 1.0, 1.0)), atol=1e-3)
    assert stored[0:1, 2:10, 3:11, 4:12].shape == (1, 8, 8, 8)  # patch reads
    # nnU-Net still sees exactly its own cases
    assert case_identifiers(folder) == ["case_000", "case_001", "case_002"] and not list(folder.glob("*.npy"))
    again = precompute_targets(951, "3d_fullres", progress=False)
    assert (again["computed"], again["skipped"]) == (0, 3)


def test_stale_maps_are_detected_and_recomputed(preprocessed):
    folder = preprocessed()
    precompute_targets(951, "3d_fullres", progress=False)
    spec = target_spec("sing")
    require_targets(folder, spec, case_identifiers(folder), "unused")
    # nnUNetv2_preprocess re-run: the case files are re-written
    seg_file = folder / "case_002_seg.b2nd"
    seg = np.asarray(blosc2.open(str(seg_file))[:])
    os.unlink(seg_file)
    _write_b2nd(seg_file, seg)
    os.utime(seg_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert case_status(folder, spec, "case_002") == "stale"
    hint = precompute_command("Dataset951_Tiny", "3d_fullres", "nnUNetPlans", spec)
    assert hint == "nnUNetv2_precompute_targets -d Dataset951_Tiny -c 3d_fullres"
    with pytest.raises(NnunetExtError, match=r"^0 of 3 cases have no .* and 1 have stale .*run: nnUNetv2_precompute"):
        require_targets(folder, spec, case_identifiers(folder), hint)
    # another delta is another spec: missing, not silently reused
    delta0 = target_spec("sing", {"delta": 0.0})
    with pytest.raises(NnunetExtError, match="3 of 3 cases have no .*--delta 0.0"):
        require_targets(folder, delta0, case_identifiers(folder),
                        precompute_command("Dataset951_Tiny", "3d_fullres", "nnUNetPlans", delta0))
    summary = precompute_targets(951, "3d_fullres", progress=False)
    assert (summary["computed"], summary["previously_stale"]) == (1, 1)
    assert case_status(folder, spec, "case_002") == "ok"


def test_label_dataset_2d_configuration_is_slicewise(preprocessed):
    folder = preprocessed(regions=False, configuration="2d", shape=(4, 24, 20), spacing=(0.8, 0.8))
    summary = precompute_targets(951, "2d", progress=False)
    assert summary["computed"] == 3
    config = load_configuration(951, "2d")
    assert config["channels"] == [[1], [2]] and config["has_regions"] is False
    stored = np.asarray(open_case(folder, target_spec("sing"), "case_000")[:], dtype=np.float32)
    data = np.asarray(blosc2.open(str(folder / "case_000.b2nd"))[:])
    seg = np.asarray(blosc2.open(str(folder / "case_000_seg.b2nd"))[:])[0]
    masks = channel_masks(seg, [[1], [2]])
    for z in range(4):
        expected = sing_maps(data[:, z], masks[:, z], seg[z] >= 0, (0.8, 0.8), SiNGOptions())
        np.testing.assert_allclose(stored[:, z], expected, atol=1e-3)


def test_cli_delta0_alongside_png_and_errors(preprocessed, tmp_path, capsys):
    folder = preprocessed()
    assert main(["-d", "951", "-c", "3d_fullres"]) == 0
    png = tmp_path / "case.png"
    assert main(["-d", "951", "-c", "3d_fullres", "--delta", "0", "--png", str(png), "--png-case", "case_001"]) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (folder / "nnunet_ext_targets").iterdir()) == sorted(
        [target_spec("sing").target_id, target_spec("sing", {"delta": 0}).target_id])
    capsys.readouterr()
    assert main(["-d", "951", "-c", "3d_lowres"]) == 2
    assert main(["-d", "951", "-c", "3d_fullres", "--delta", "1.5"]) == 2
    assert main(["-d", "952", "-c", "3d_fullres"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert "3d_lowres" in errors[0] and "delta" in errors[1] and "952" in errors[2]


def test_nan_in_image_names_the_case(preprocessed, capsys):
    preprocessed(nan_case=1)
    with pytest.raises(NnunetExtError, match="case case_001 .*NaN"):
        precompute_targets(951, "3d_fullres", progress=False)
    assert main(["-d", "951", "-c", "3d_fullres"]) == 2
    assert "case_001" in capsys.readouterr().err


def test_device_cuda_matches_cpu_or_fails_in_one_line(preprocessed, capsys):
    """FastGeodis on the GPU gives the CPU's maps (same spec, so the CPU run finds them up to date);
    without a GPU, --device cuda is a one-line error naming the fix."""
    folder = preprocessed()
    spec = target_spec("sing")
    if not torch.cuda.is_available():
        assert main(["-d", "951", "-c", "3d_fullres", "--device", "cuda"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and "no CUDA GPU" in error and "--device cpu" in error
        return
    precompute_targets(951, "3d_fullres", progress=False, device="cuda")
    gpu = {case: np.asarray(open_case(folder, spec, case)[:]) for case in case_identifiers(folder)}
    assert precompute_targets(951, "3d_fullres", progress=False)["computed"] == 0
    precompute_targets(951, "3d_fullres", progress=False, overwrite=True)
    for case, maps in gpu.items():  # float16 storage: a raster-scan rounding difference may flip one step
        np.testing.assert_allclose(np.asarray(open_case(folder, spec, case)[:]), maps, atol=1e-2)


def _cli(*args):
    return [sys.executable, "-m", "nnunet_ext.preprocessing.precompute_targets", "-d", "951", "-c", "3d_fullres", *args]


def test_resume_after_killed_run_and_concurrent_runs(preprocessed):
    # cases big enough (no crop, 40^3) that a case takes a noticeable time
    folder = preprocessed(shape=(40, 40, 40), spacing=(1.0, 1.0, 1.0), num_cases=6)
    spec = target_spec("sing", {"crop": False})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_cli("--no-crop"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not target_file(folder, spec, "case_000").exists():
        time.sleep(0.005)
    process.kill()
    process.wait()
    done = {case: target_file(folder, spec, case).stat().st_mtime_ns
            for case in case_identifiers(folder) if target_file(folder, spec, case).exists()}
    assert 1 <= len(done) < 6, "the run was not interrupted between cases"
    summary = precompute_targets(951, "3d_fullres", params={"crop": False}, progress=False)
    assert summary["computed"] == 6 - len(done) and summary["skipped"] == len(done)
    assert all(target_file(folder, spec, case).stat().st_mtime_ns == mtime for case, mtime in done.items())
    # five folds starting together: simultaneous runs (one with a worker pool) all succeed
    runs = [subprocess.Popen(_cli("--delta", "0.25", *extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for extra in ([], ["-np", "2"])]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    delta_spec = target_spec("sing", {"delta": 0.25})
    require_targets(folder, delta_spec, case_identifiers(folder), "unused")
    assert not list(targets_folder(folder, delta_spec).glob(".*"))  # no temporary files left behind


@pytest.mark.e2e
def test_on_folders_written_by_nnunet(tiny_dataset, nnunet_env, monkeypatch):
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(variable, nnunet_env[variable])
    for kind in ("brats", "2d"):
        dataset_id, configuration, _ = tiny_dataset(kind)
        summary = precompute_targets(dataset_id, configuration, overwrite=True, progress=False)
        config = load_configuration(dataset_id, configuration)
        assert summary["computed"] == summary["cases"] == len(config["cases"])
        assert len(config["channels"]) == (3 if kind == "brats" else 1)
        case = config["cases"][0]
        maps = np.asarray(open_case(config["folder"], target_spec("sing"), case)[:], dtype=np.float32)
        seg = np.asarray(blosc2.open(str(config["folder"] / f"{case}_seg.b2nd"))[:])[0]
        assert maps.shape == (len(config["channels"]), *seg.shape)
        masks = channel_masks(seg, config["channels"])
        assert np.array_equal(maps > 0, masks) and maps.min() >= -1 and maps.max() <= 1
