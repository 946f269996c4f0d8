"""nnUNetv2_precompute_targets: the preprocessing hook that writes SiNG maps next to nnU-Net's cases.

Most tests build a small preprocessed configuration by hand (plans, dataset.json, b2nd cases in
nnU-Net's layout), which keeps them fast; the e2e test runs on folders written by nnU-Net itself.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
import time
from pathlib import Path

import blosc2
import numpy as np
import pytest
import torch

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.precompute import channel_masks, precompute, precompute_argv, require_targets
from nnunet_ext.preprocessed import PreprocessedConfiguration
from nnunet_ext.preprocessing.precompute_targets import main
from nnunet_ext.target_store import case_identifiers, case_status, open_case, target_file, targets_folder
from nnunet_ext.targets import SiNGOptions, TargetSpec, sing_maps

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


def precompute_targets(dataset=951, configuration="3d_fullres", kind="sing", params=None, **options):
    """:func:`precompute` of the maps of ``kind`` / ``params`` for the configuration on disk."""
    return precompute(PreprocessedConfiguration.from_disk(dataset, configuration), TargetSpec(kind, params), **options)


def load_configuration(dataset=951, configuration="3d_fullres"):
    return PreprocessedConfiguration.from_disk(dataset, configuration)


def precompute_command(spec, dataset=951, configuration="3d_fullres"):
    return shlex.join(precompute_argv(load_configuration(dataset, configuration), spec))


@pytest.fixture
def preprocessed(nnunet_folders):
    return lambda **kwargs: make_preprocessed(nnunet_folders, **kwargs)


def _expected(folder: Path, case: str, channels, spacing, options=SiNGOptions()):
    data = np.asarray(blosc2.open(str(folder / f"{case}.b2nd"))[:])
    seg = np.asarray(blosc2.open(str(folder / f"{case}_seg.b2nd"))[:])[0]
    return sing_maps(data, channel_masks(seg, channels), seg >= 0, spacing, options)


def test_region_dataset_maps_match_the_transform_and_second_run_skips(preprocessed):
    folder = preprocessed()
    summary = precompute_targets(951, "3d_fullres", progress=False)
    assert (summary["cases"], summary["computed"], summary["skipped"], summary["previously_missing"]) == (3, 3, 0, 3)
    spec = TargetSpec("sing")
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


def test_spec_file_is_group_readable_and_not_rewritten_when_up_to_date(preprocessed):
    """spec.json of a shared dataset: readable by the other users (not mkstemp's 0600), and a precompute with
    every map up to date writes nothing, so a read-only dataset can be used (root ignores file modes, so the
    test checks that nothing was written rather than a permission error)."""
    folder = preprocessed()
    umask = os.umask(0o022)
    try:
        precompute_targets(951, "3d_fullres", progress=False)
    finally:
        os.umask(umask)
    spec_file = targets_folder(folder, TargetSpec("sing")) / "spec.json"
    assert spec_file.stat().st_mode & 0o777 == 0o644
    written = {p: p.stat().st_mtime_ns for p in spec_file.parent.iterdir()}
    time.sleep(0.01)
    assert precompute_targets(951, "3d_fullres", progress=False)["computed"] == 0
    assert {p: p.stat().st_mtime_ns for p in spec_file.parent.iterdir()} == written


def test_stale_maps_are_detected_and_recomputed(preprocessed):
    folder = preprocessed()
    precompute_targets(951, "3d_fullres", progress=False)
    spec = TargetSpec("sing")
    require_targets(load_configuration(), spec, "unused")
    # nnUNetv2_preprocess re-run: the case files are re-written
    seg_file = folder / "case_002_seg.b2nd"
    seg = np.asarray(blosc2.open(str(seg_file))[:])
    os.unlink(seg_file)
    _write_b2nd(seg_file, seg)
    os.utime(seg_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert case_status(folder, spec, "case_002") == "stale"
    hint = precompute_command(spec)
    assert hint == "nnUNetv2_precompute_targets -d Dataset951_Tiny -c 3d_fullres"
    with pytest.raises(NnunetExtError, match=r"^0 of 3 cases have no .* and 1 have stale .*run: nnUNetv2_precompute"):
        require_targets(load_configuration(), spec, hint)
    # another delta is another spec: missing, not silently reused
    delta0 = TargetSpec("sing", {"delta": 0.0})
    with pytest.raises(NnunetExtError, match="3 of 3 cases have no .*--delta 0.0"):
        require_targets(load_configuration(), delta0, precompute_command(delta0))
    summary = precompute_targets(951, "3d_fullres", progress=False)
    assert (summary["computed"], summary["previously_stale"]) == (1, 1)
    assert case_status(folder, spec, "case_002") == "ok"


def test_label_dataset_2d_configuration_is_slicewise(preprocessed):
    folder = preprocessed(regions=False, configuration="2d", shape=(4, 24, 20), spacing=(0.8, 0.8))
    summary = precompute_targets(951, "2d", progress=False)
    assert summary["computed"] == 3
    config = load_configuration(951, "2d")
    assert config.channels == [[1], [2]] and config.has_regions is False
    stored = np.asarray(open_case(folder, TargetSpec("sing"), "case_000")[:], dtype=np.float32)
    data = np.asarray(blosc2.open(str(folder / "case_000.b2nd"))[:])
    seg = np.asarray(blosc2.open(str(folder / "case_000_seg.b2nd"))[:])[0]
    masks = channel_masks(seg, [[1], [2]])
    for z in range(4):
        expected = sing_maps(data[:, z], masks[:, z], seg[z] >= 0, (0.8, 0.8), SiNGOptions())
        np.testing.assert_allclose(stored[:, z], expected, atol=1e-3)
    # kinds with more channels than masks (the background map of GSL's DTMs and RRW on label datasets):
    # a 2d configuration once failed on them ("could not broadcast (2, ...) into (1, ...)")
    from nnunet_ext.targets.dtm import DTMOptions, dtm_maps
    from nnunet_ext.targets.rrw import RRWOptions, rrw_maps

    for kind, options, function in (("dtm", DTMOptions(background=True), dtm_maps),
                                    ("rrw", RRWOptions(background=True), rrw_maps)):
        precompute_targets(951, "2d", kind=kind, params=options.as_params(), progress=False)
        stored = np.asarray(open_case(folder, TargetSpec(kind, options), "case_000")[:], dtype=np.float32)
        assert stored.shape == (3, 4, 24, 20)  # background + labels 1 and 2
        for z in range(4):
            expected = function(data[:, z], masks[:, z], seg[z] >= 0, (0.8, 0.8), options)
            np.testing.assert_allclose(stored[:, z], expected, rtol=1e-3, atol=2e-3)  # float16 storage


def test_cli_delta0_alongside_png_and_errors(preprocessed, tmp_path, capsys):
    folder = preprocessed()
    assert main(["-d", "951", "-c", "3d_fullres"]) == 0
    png = tmp_path / "case.png"
    assert main(["-d", "951", "-c", "3d_fullres", "--delta", "0", "--png", str(png), "--png-case", "case_001"]) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (folder / "nnunet_ext_targets").iterdir()) == sorted(
        [TargetSpec("sing").target_id, TargetSpec("sing", {"delta": 0}).target_id])
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
    spec = TargetSpec("sing")
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


@pytest.mark.parametrize("io_threads", [1, 2])
def test_device_path_computes_in_this_process_with_reader_and_writer_threads(preprocessed, monkeypatch, io_threads):
    """The GPU path (one process owns the device, -np threads read and write) run on the CPU: the same
    maps as the process path, an up-to-date case skipped, no worker process started."""
    from nnunet_ext import precompute as module

    folder = preprocessed(num_cases=5)
    spec = TargetSpec("sing")
    precompute_targets(951, "3d_fullres", progress=False, num_processes=2)
    reference = {case: np.asarray(open_case(folder, spec, case)[:]) for case in case_identifiers(folder)}
    target_file(folder, spec, "case_003").unlink()
    monkeypatch.setattr(module, "DEVICES_COMPUTED_IN_THIS_PROCESS", ("cuda", "cpu"))
    monkeypatch.setattr(module.multiprocessing, "get_context", lambda *a: pytest.fail("no worker process expected"))
    summary = precompute_targets(951, "3d_fullres", progress=False, num_processes=io_threads)
    assert (summary["computed"], summary["skipped"]) == (1, 4) and summary["median_seconds_per_case"] > 0
    summary = precompute_targets(951, "3d_fullres", progress=False, num_processes=io_threads, overwrite=True)
    assert summary["computed"] == 5
    for case, maps in reference.items():
        np.testing.assert_array_equal(np.asarray(open_case(folder, spec, case)[:]), maps)
    assert precompute_targets(951, "3d_fullres", progress=False)["computed"] == 0


def _cli(*args):
    return [sys.executable, "-m", "nnunet_ext.preprocessing.precompute_targets", "-d", "951", "-c", "3d_fullres", *args]


def test_resume_after_killed_run_and_concurrent_runs(preprocessed):
    # cases big enough (no crop, 40^3) that a case takes a noticeable time
    folder = preprocessed(shape=(40, 40, 40), spacing=(1.0, 1.0, 1.0), num_cases=6)
    spec = TargetSpec("sing", {"crop": False})
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
    delta_spec = TargetSpec("sing", {"delta": 0.25})
    require_targets(load_configuration(), delta_spec, "unused")
    assert not list(targets_folder(folder, delta_spec).glob(".*"))  # no temporary files left behind


@pytest.mark.e2e
def test_on_folders_written_by_nnunet(tiny_dataset, nnunet_env, monkeypatch):
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(variable, nnunet_env[variable])
    for kind in ("brats", "2d"):
        dataset_id, configuration, _ = tiny_dataset(kind)
        summary = precompute_targets(dataset_id, configuration, overwrite=True, progress=False)
        config = load_configuration(dataset_id, configuration)
        assert summary["computed"] == summary["cases"] == len(config.cases)
        assert len(config.channels) == (3 if kind == "brats" else 1)
        case = config.cases[0]
        maps = np.asarray(open_case(config.folder, TargetSpec("sing"), case)[:], dtype=np.float32)
        seg = np.asarray(blosc2.open(str(config.folder / f"{case}_seg.b2nd"))[:])[0]
        assert maps.shape == (len(config.channels), *seg.shape)
        masks = channel_masks(seg, config.channels)
        assert np.array_equal(maps > 0, masks) and maps.min() >= -1 and maps.max() <= 1


# ------------------------------------------------------------------------------------------------
# issue 14: ignore label, every channel finite, killed runs
# ------------------------------------------------------------------------------------------------
def test_ignore_label_reaches_every_kind_and_older_maps_are_stale(preprocessed):
    folder = preprocessed(regions=False)
    dataset_json = folder.parent / "dataset.json"
    content = json.loads(dataset_json.read_text())
    content["labels"] = {**LABELS, "ignore": 3}
    dataset_json.write_text(json.dumps(content))
    for case in case_identifiers(folder):  # an ignored slab through every case
        seg = np.asarray(blosc2.open(str(folder / f"{case}_seg.b2nd"))[:])
        seg[0, :, :, 8:11][seg[0, :, :, 8:11] >= 0] = 3
        os.unlink(folder / f"{case}_seg.b2nd")
        _write_b2nd(folder / f"{case}_seg.b2nd", seg)
    config = load_configuration(951, "3d_fullres")
    assert config.ignore_label == 3 and config.channels == [[1], [2]]
    spec = TargetSpec("sing")
    # maps written the old way (ignored voxels as background, no ignore label recorded) are stale
    from nnunet_ext.target_store import write_case
    data = np.asarray(blosc2.open(str(folder / "case_000.b2nd"))[:])
    seg = np.asarray(blosc2.open(str(folder / "case_000_seg.b2nd"))[:])[0]
    write_case(folder, spec, "case_000", sing_maps(data, channel_masks(seg, [[1], [2]]), seg >= 0, (2.0, 1.0, 1.0),
                                                   SiNGOptions()))
    assert case_status(folder, spec, "case_000") == "ok"  # the plain check cannot tell
    summary = precompute_targets(951, "3d_fullres", progress=False)
    assert summary["previously_stale"] == 1 and summary["computed"] == 3
    ignored = seg == 3
    expected = sing_maps(data, channel_masks(seg, [[1], [2]]), seg >= 0, (2.0, 1.0, 1.0), SiNGOptions(), ignored=ignored)
    np.testing.assert_allclose(np.asarray(open_case(folder, spec, "case_000")[:], np.float32), expected, atol=1e-3)
    require_targets(load_configuration(), spec, "unused")
    for kind in ("dtm", "rrw", "geols"):  # every kind gets the ignored voxels
        precompute_targets(951, "3d_fullres", kind=kind, progress=False)
        maps = np.asarray(open_case(folder, TargetSpec(kind), "case_000")[:], np.float32)
        compute = {"dtm": "dtm_maps", "rrw": "rrw_maps", "geols": "geols_maps"}[kind]
        module = __import__(f"nnunet_ext.targets.{kind}", fromlist=[compute])
        reference = getattr(module, compute)(data, channel_masks(seg, [[1], [2]]), seg >= 0, (2.0, 1.0, 1.0),
                                             __import__("nnunet_ext.targets", fromlist=["make_options"]).make_options(kind),
                                             ignored=ignored)
        np.testing.assert_allclose(maps, reference, atol=2e-2, rtol=1e-3)


def test_every_image_channel_is_checked_once(preprocessed, capsys):
    folder = preprocessed()
    # nnU-Net's normalisation of a channel with an inf voxel: the whole channel 1 becomes NaN, channel 0 is fine
    data = np.asarray(blosc2.open(str(folder / "case_002.b2nd"))[:])
    data[1] = np.nan
    os.unlink(folder / "case_002.b2nd")
    _write_b2nd(folder / "case_002.b2nd", data)
    with pytest.raises(NnunetExtError) as error:
        precompute_targets(951, "3d_fullres", progress=False)  # the default image_channel 0 never reads channel 1
    message = str(error.value)
    assert "\n" not in message and "case case_002" in message and "channel 1 (B)" in message
    assert "imagesTr/case_002_0001.nii.gz" in message and "nnUNetv2_plan_and_preprocess -d Dataset951_Tiny" in message
    assert main(["-d", "951", "-c", "3d_fullres", "--kind", "dtm"]) == 2  # kinds that read no image are stopped too
    assert "case_002" in capsys.readouterr().err
    assert not (folder / "nnunet_ext_targets").exists() or not list((folder / "nnunet_ext_targets").rglob("*.b2nd"))
    # fixed: checked again (the file changed), then remembered: a second run reads no case
    data[1] = 0.5
    os.unlink(folder / "case_002.b2nd")
    _write_b2nd(folder / "case_002.b2nd", data)
    from nnunet_ext.image_check import check_finite_images

    assert check_finite_images(folder) == 1  # only the re-written case; the other two were recorded
    assert check_finite_images(folder) == 0
    assert precompute_targets(951, "3d_fullres", progress=False)["computed"] == 3


def test_abandoned_temporary_maps_are_removed(preprocessed):
    import socket
    import hashlib

    folder = preprocessed()
    spec = TargetSpec("sing")
    maps_folder = targets_folder(folder, spec)
    maps_folder.mkdir(parents=True)
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    killed = maps_folder / f".case_000.{host}-{dead_pid}.abc123.tmp.b2nd"  # a writer killed mid-write
    live = maps_folder / f".case_001.{host}-{os.getpid()}.def456.tmp.b2nd"  # a writer still at work
    old = maps_folder / ".case_002.x1y2z3.tmp.b2nd"  # an older name without owner, left hours ago
    # a killed writer nobody reaped (a container whose PID 1 does not reap orphans): a zombie, which
    # os.kill(pid, 0) still finds; CI's clean clone once kept such a file
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while time.time() < deadline and Path("/proc/self/stat").exists() and _alive(zombie.pid):
        time.sleep(0.02)
    unreaped = maps_folder / f".case_000.{host}-{zombie.pid}.ghi789.tmp.b2nd"
    for path in (killed, live, old, unreaped):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    precompute_targets(951, "3d_fullres", progress=False)
    zombie.wait()
    assert not killed.exists() and not old.exists() and live.exists()
    assert not unreaped.exists() or not Path("/proc/self/stat").exists()
    live.unlink()


def _descendants(pid: int) -> list[int]:
    """Live (non-zombie) descendants of ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux) to list the workers")
def test_killing_a_parallel_run_leaves_no_workers(preprocessed):
    """SIGKILL of ``-np 2``: its workers stop at once (before the fix each finished the case it was on, and on
    BraTS-size cases kept running for minutes after the command was gone), and the next run resumes."""
    import signal

    folder = preprocessed(shape=(56, 56, 56), spacing=(1.0, 1.0, 1.0), num_cases=6)  # about 1 s per case
    spec = TargetSpec("sing", {"crop": False})
    written = lambda: sum(target_file(folder, spec, case).exists() for case in case_identifiers(folder))  # noqa: E731
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_cli("--no-crop", "-np", "2"), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline and process.poll() is None and written() == 0:
            time.sleep(0.02)
        # a worker has just written a case and started the next one; the other is in the middle of one
        workers = _descendants(process.pid)
        assert process.poll() is None and len(workers) >= 2, "the run finished or never started its workers"
        process.send_signal(signal.SIGKILL)
        at_kill = written()
        process.wait()
        deadline = time.time() + 20
        while time.time() < deadline and [w for w in workers if _alive(w)]:
            time.sleep(0.05)
        assert not [w for w in workers if _alive(w)], "workers outlived the killed run"
        # (1 allows for a worker killed between computing a case and renaming its file into place)
        assert written() - at_kill <= 1, "workers went on computing cases after the run was killed"
    finally:
        for pid in [w for w in workers if _alive(w)]:
            os.kill(pid, signal.SIGKILL)  # only the processes this test started
        if process.poll() is None:
            process.kill()
    # the next run finishes the job and leaves no temporary file behind
    summary = precompute_targets(951, "3d_fullres", params={"crop": False}, progress=False)
    assert summary["computed"] + summary["skipped"] == 6 and summary["skipped"] >= 1
    assert not list(targets_folder(folder, spec).glob(".*"))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ------------------------------------------------------------------------------------------------
# the trainers' checks before training (nnunet_ext/training/health.py, nnunet_ext/training/map_trainer.py)
# ------------------------------------------------------------------------------------------------
class _FakeTrainer:
    """The attributes of an nnU-Net trainer that the checks before training use; the methods are the real ones."""

    dataloader_train = dataloader_val = None
    is_ddp = False

    def __init__(self, folder: Path, spec, dataset_json: dict | None = None):
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        self.preprocessed_dataset_folder = str(folder)
        self.plans_manager = PlansManager(str(folder.parent / "nnUNetPlans.json"))
        self.configuration_name = "3d_fullres"
        self.configuration_manager = self.plans_manager.get_configuration(self.configuration_name)
        self.dataset_json = dataset_json or json.loads((folder.parent / "dataset.json").read_text())
        self.label_manager = self.plans_manager.get_label_manager(self.dataset_json)
        self._spec = spec
        self.log: list[str] = []

    def target_spec(self):
        return self._spec

    def print_to_log_file(self, *args, also_print_to_console=True):
        self.log.append(" ".join(map(str, args)))


def _trainer_methods():
    from nnunet_ext.training.health import nnUNetTrainerWithHealthGuard
    from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps

    _FakeTrainer.ensure_target_maps = nnUNetTrainerWithTargetMaps.ensure_target_maps
    _FakeTrainer.check_before_training = nnUNetTrainerWithTargetMaps.check_before_training
    _FakeTrainer.on_train_start = nnUNetTrainerWithTargetMaps.on_train_start
    _FakeTrainer._stop = nnUNetTrainerWithHealthGuard._stop
    return _FakeTrainer


def test_trainer_stops_in_one_line_when_maps_vanish_while_it_computes_them(preprocessed, monkeypatch, capsys):
    import nnunet_ext.precompute as hook

    folder = preprocessed()
    spec = TargetSpec("sing")
    monkeypatch.setattr(hook, "available_cores", lambda: 1)
    real = hook.precompute

    def precompute_then_removed(*args, **kwargs):  # e.g. a concurrent nnUNetv2_preprocess or rm -r nnunet_ext_targets
        summary = real(*args, **kwargs)
        target_file(folder, spec, "case_001").unlink()
        return summary

    monkeypatch.setattr(hook, "precompute", precompute_then_removed)
    trainer = _trainer_methods()(folder, spec)
    with pytest.raises(NnunetExtError, match=r"1 of 3 cases have no .*first: case_001; removed or re-written while "
                                             r"this trainer computed them.*run: nnUNetv2_precompute_targets -d "
                                             r"Dataset951_Tiny -c 3d_fullres$"):
        trainer.ensure_target_maps()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # in nnUNetv2_train: one line and exit 1, before any data loader starts
        trainer.on_train_start()
    assert stop.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("error: _FakeTrainer: 1 of 3 cases") and "run: nnUNetv2_precompute_targets" in error
    monkeypatch.setattr(hook, "precompute", real)
    trainer.ensure_target_maps()  # complete again: no error


def test_trainers_stop_on_a_nan_channel_before_training(preprocessed, monkeypatch, capsys):
    import importlib.util

    import nnunet_ext.precompute as hook

    folder = preprocessed(nan_case=1)
    data = np.asarray(blosc2.open(str(folder / "case_001.b2nd"))[:])
    data[0] = np.nan_to_num(data[0])  # the NaN is in channel 1 only, which the maps never read
    data[1, 0, 0, 0] = np.inf
    os.unlink(folder / "case_001.b2nd")
    _write_b2nd(folder / "case_001.b2nd", data)
    monkeypatch.setattr(hook, "available_cores", lambda: 1)
    trainer = _trainer_methods()(folder, TargetSpec("dtm"))
    with pytest.raises(SystemExit):
        trainer.on_train_start()
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "case case_001" in error and "channel 1 (B)" in error
    # the trainer without maps (LS + JML) runs the guard's own check of the images
    spec = importlib.util.spec_from_file_location("_ls_trainers", Path(__file__).resolve().parents[1] / "trainers" /
                                                  "nnUNetTrainerLS.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ls = _FakeTrainer(folder, None)
    with pytest.raises(NnunetExtError, match="case case_001 .*channel 1 .*NaN or inf"):
        module.nnUNetTrainerLS_JML.check_before_training(ls)


# ------------------------------------------------------------------------------------------------
# issue 33: the freshness key covers the configuration; checksummed maps
# ------------------------------------------------------------------------------------------------
def test_reordered_regions_recompute_the_maps_and_spec_json_follows_them(preprocessed, capsys, monkeypatch):
    """Map channel k must be region k of dataset.json: reordering the regions makes every map stale (the spec's
    digest alone does not change), and spec.json is written once the maps in the new order exist."""
    folder = preprocessed()
    spec = TargetSpec("sing")
    precompute_targets(progress=False)
    before = np.asarray(open_case(folder, spec, "case_000")[:], np.float32)
    dataset_json = folder.parent / "dataset.json"
    content = json.loads(dataset_json.read_text())
    content["labels"] = {"background": 0, "enhancing": 3, "core": [2, 3], "whole": [1, 2, 3]}
    dataset_json.write_text(json.dumps(content))
    config = load_configuration()
    assert config.channels == [[3], [2, 3], [1, 2, 3]]
    assert {config.case_status(spec, case) for case in config.cases} == {"stale"}
    with pytest.raises(NnunetExtError, match="0 of 3 cases have no .* and 3 have stale ones"):
        require_targets(config, spec, "unused")
    import nnunet_ext.precompute as hook

    def interrupted(*args, **kwargs):
        raise NnunetExtError("interrupted")

    with monkeypatch.context() as patch:  # a run stopped before the new maps exist leaves no spec.json of the old
        patch.setattr(hook, "case_maps", interrupted)
        with pytest.raises(NnunetExtError, match="interrupted"):
            precompute_targets(progress=False)
    assert not (targets_folder(folder, spec) / "spec.json").exists()
    assert main(["-d", "951", "-c", "3d_fullres"]) == 0  # the command: recomputed, not "0 computed"
    assert capsys.readouterr().out.startswith("3 computed, 0 up to date")
    after = np.asarray(open_case(folder, spec, "case_000")[:], np.float32)
    np.testing.assert_array_equal(after, before[::-1])  # the same maps, in the new channel order
    assert json.loads((targets_folder(folder, spec) / "spec.json").read_text())["channels"] == config.channels


def test_spacing_and_ignore_label_are_part_of_the_key(preprocessed):
    folder = preprocessed(regions=False)
    spec = TargetSpec("dtm")
    precompute_targets(kind="dtm", progress=False)
    plans_file = folder.parent / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["3d_fullres"]["spacing"] = [1.0, 1.0, 1.0]
    plans_file.write_text(json.dumps(plans))
    assert {load_configuration().case_status(spec, case) for case in case_identifiers(folder)} == {"stale"}
    assert precompute_targets(kind="dtm", progress=False)["previously_stale"] == 3
    dataset_json = folder.parent / "dataset.json"
    dataset_json.write_text(json.dumps({**json.loads(dataset_json.read_text()), "labels": {**LABELS, "ignore": 3}}))
    assert precompute_targets(kind="dtm", progress=False)["previously_stale"] == 3


def _flip_bytes_in_the_middle(path: Path) -> None:
    """Flips bytes in the middle of a file (the chunks' data), keeping its size and mtime."""
    stat = path.stat()
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    for offset in range(middle, middle + 8):
        content[offset] ^= 0xFF
    path.write_bytes(bytes(content))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_a_corrupted_map_is_recomputed_and_stops_the_loader_in_one_line(preprocessed, capsys):
    from nnunet_ext.training.data.dataset import nnUNetDatasetBlosc2WithTargets

    folder = preprocessed()
    spec = TargetSpec("sing")
    precompute_targets(progress=False)
    path = target_file(folder, spec, "case_001")
    clean = np.asarray(open_case(folder, spec, "case_001")[:])
    _flip_bytes_in_the_middle(path)
    assert case_status(folder, spec, "case_001") == "corrupt" and case_status(folder, spec, "case_000") == "ok"
    fix = precompute_command(spec)
    dataset = nnUNetDatasetBlosc2WithTargets(str(folder), target_spec=spec, repair_command=fix)
    dataset.load_case("case_000")
    with pytest.raises(NnunetExtError) as error:
        dataset.load_case("case_001")
    message = str(error.value)
    assert "\n" not in message and "case case_001" in message and "corrupt" in message
    assert message.endswith("run: nnUNetv2_precompute_targets -d Dataset951_Tiny -c 3d_fullres")
    with pytest.raises(NnunetExtError, match="1 have stale ones .*first: case_001"):
        require_targets(load_configuration(), spec, fix)
    capsys.readouterr()
    summary = precompute_targets(progress=False)
    assert (summary["computed"], summary["previously_corrupt"]) == (1, 1)
    assert capsys.readouterr().out.strip() == (f"the {spec.target_id} maps of case case_001 fail their checksum "
                                               "(changed on disk); recomputing them")
    np.testing.assert_array_equal(np.asarray(open_case(folder, spec, "case_001")[:]), clean)
    dataset.load_case("case_001")  # rewritten: the loader reads it


def test_pipeline_precompute_asks_the_same_freshness_rule(preprocessed, tmp_path, monkeypatch):
    """Pipeline.precompute skips exactly when the command would compute nothing: a dataset with an ignore label
    whose maps are up to date is skipped, and reordered regions make it run the command (an argv list)."""
    from nnunet_ext.workflow.pipeline import Pipeline

    folder = preprocessed()
    dataset_json = folder.parent / "dataset.json"
    dataset_json.write_text(json.dumps({**json.loads(dataset_json.read_text()),
                                        "labels": {**REGIONS, "ignore": 4}}))
    spec = TargetSpec("sing", {"delta": 0.25})
    precompute_targets(params={"delta": 0.25}, progress=False)
    ran = []
    monkeypatch.setattr(Pipeline, "run", lambda self, stage, command, log_name, env=None:
                        ran.append(command) or {**stage, "seconds": 1.0})
    pipeline = Pipeline("Dataset951_Tiny", "3d_fullres", tmp_path / "logs", num_processes=2)
    assert pipeline.precompute(spec, ["T"])["skipped"] == "maps up to date" and not ran
    content = json.loads(dataset_json.read_text())
    content["labels"] = {"background": 0, "core": [2, 3], "whole": [1, 2, 3], "enhancing": 3, "ignore": 4}
    dataset_json.write_text(json.dumps(content))
    record = pipeline.precompute(spec, ["T"])
    assert record["state_before"] == "0/3 up to date"
    assert ran == [["nnUNetv2_precompute_targets", "-d", "Dataset951_Tiny", "-c", "3d_fullres", "--delta", "0.25",
                    "-np", "2", "--device", "cpu"]]


def test_map_workers_default_to_the_available_cores(monkeypatch):
    from nnunet_ext.precompute import available_cores

    monkeypatch.delenv("nnUNet_def_n_proc", raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert available_cores() == 3  # the process's share, not the machine's count
    monkeypatch.setenv("nnUNet_def_n_proc", "2")
    assert available_cores() == 2
    monkeypatch.setenv("nnUNet_def_n_proc", "8")
    assert available_cores() == 3
