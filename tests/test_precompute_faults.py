"""Faults of the map precompute (issue 33): read-only storage, a full disk, Ctrl-C in a worker pool, seg values
that dataset.json does not define. The preprocessed configurations are the small hand-built ones of
test_precompute_targets.py (dataset 951)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import blosc2
import numpy as np
import pytest

from nnunet_ext import errors
from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import atomic_write_bytes, finite_images_record
from nnunet_ext.preprocessing.precompute_targets import main
from nnunet_ext.target_store import target_file, targets_folder, write_case
from nnunet_ext.targets import TargetSpec
from test_precompute_targets import _write_b2nd, make_preprocessed, precompute_targets

TESTS = Path(__file__).resolve().parent


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and mtime: what a write changes."""
    found = {}
    for folder, names, files in os.walk(root):
        for name in names + files:
            stat = os.stat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return found


# ------------------------------------------------------------------------------------------------ read-only storage
# Run on a read-only view of $nnUNet_preprocessed: precompute's library function, the map trainer's check before
# training and GSL's class weights on dataset 951 (every map up to date, no image-check record, no GSL counts), then
# the command and the trainer on dataset 952 (one map missing).
READ_ONLY_RUN = textwrap.dedent("""
    import contextlib, io, json, os, sys
    from pathlib import Path

    sys.path.insert(0, sys.argv[1])
    from test_precompute_targets import _trainer_methods
    from nnunet_ext.errors import NnunetExtError
    from nnunet_ext.precompute import precompute
    from nnunet_ext.preprocessed import PreprocessedConfiguration
    from nnunet_ext.preprocessing.precompute_targets import main
    from nnunet_ext.targets import TargetSpec
    from nnunet_ext.training.gsl import class_weights

    root, spec, report = Path(os.environ["nnUNet_preprocessed"]), TargetSpec("sing"), {}
    complete, incomplete = (root / f"Dataset{i}_Tiny" / "nnUNetPlans_3d_fullres" for i in (951, 952))
    try:
        (complete / "probe").touch()
    except OSError as error:
        report["probe"] = error.errno
    config = PreprocessedConfiguration.from_disk(951, "3d_fullres")
    report["computed"] = precompute(config, spec, progress=False)["computed"]
    trainer = _trainer_methods()(complete, spec)
    trainer.ensure_target_maps()
    report["trainer_log"] = trainer.log
    report["gsl_counted_now"] = class_weights(complete, "nnUNetPlans", "3d_fullres", config.channels, False)[2]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        report["command_status"] = main(["-d", "952", "-c", "3d_fullres"])
    report["command_stderr"] = stderr.getvalue()
    try:
        _trainer_methods()(incomplete, spec).ensure_target_maps()
    except NnunetExtError as error:
        report["trainer_error"] = str(error)
    print(json.dumps(report))
""")


def _read_only_view(root: Path) -> tuple[list[str], str] | None:
    """(command prefix that runs a command with ``root`` mounted read-only, the reason its writes fail), or None where
    this machine cannot: a private mount namespace (root, or a user namespace), else file modes where they bind."""
    mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    if shutil.which("unshare"):
        for prefix in (["unshare", "-m"], ["unshare", "-r", "-m"]):
            command = [*prefix, "--propagation", "private", "sh", "-c", mount, str(root)]
            if subprocess.run([*command, "true"], capture_output=True).returncode == 0:
                return command, "on read-only storage"
    if os.geteuid() != 0:  # root ignores file modes
        return [], "not writable by this user"
    return None


def test_a_read_only_dataset_with_every_map_up_to_date_trains_and_nothing_is_written(nnunet_folders):
    complete = make_preprocessed(nnunet_folders, 951)
    incomplete = make_preprocessed(nnunet_folders, 952)
    spec = TargetSpec("sing")
    precompute_targets(951, progress=False)
    precompute_targets(952, progress=False)
    target_file(incomplete, spec, "case_001").unlink()
    finite_images_record(complete).unlink()  # caches it cannot write: computed in memory
    view = _read_only_view(nnunet_folders)
    if view is None:
        pytest.skip("no read-only view here: neither a mount namespace nor file modes that stop this user")
    prefix, reason = view
    script = nnunet_folders.parent / "read_only_run.py"
    script.write_text(READ_ONLY_RUN)
    before = _listing(nnunet_folders)
    if not prefix:
        subprocess.run(["chmod", "-R", "a-w", str(nnunet_folders)], check=True)
    try:
        run = subprocess.run([*prefix, sys.executable, str(script), str(TESTS)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), *sys.path])},
                             timeout=300)
    finally:
        if not prefix:
            subprocess.run(["chmod", "-R", "u+w", str(nnunet_folders)], check=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["probe"] == (errno.EROFS if prefix else errno.EACCES)  # the view is read-only
    assert report["computed"] == 0 and report["trainer_log"] == [] and report["gsl_counted_now"] is True
    assert _listing(nnunet_folders) == before  # nothing written: no spec.json, lock, cache or temporary file
    command = "nnUNetv2_precompute_targets -d Dataset952_Tiny -c 3d_fullres"
    line = (f"1 of 3 cases need their {spec.target_id} target maps computed (missing or stale), but {incomplete} is "
            f"{reason}; run where it is writable: {command}")
    assert report["command_status"] == 2 and report["command_stderr"] == f"error: {line}\n"
    assert report["trainer_error"] == line


def test_a_writable_dataset_with_missing_maps_still_computes_them_under_the_trainers_lock(nnunet_folders, monkeypatch):
    """The lock is taken only when maps must be computed, and then still is (five folds compute a case once)."""
    import filelock

    import nnunet_ext.precompute as hook
    from test_precompute_targets import _trainer_methods

    folder = make_preprocessed(nnunet_folders, 951)
    spec = TargetSpec("sing")
    monkeypatch.setattr(hook, "available_cores", lambda: 1)
    locks = []
    real_lock = filelock.FileLock
    monkeypatch.setattr(hook, "FileLock", lambda path: locks.append(path) or real_lock(path))
    trainer = _trainer_methods()(folder, spec)
    trainer.ensure_target_maps()
    assert locks == [str(folder / "nnunet_ext_targets" / f".{spec.target_id}.lock")]
    assert "computed 3 missing or stale" in trainer.log[0]
    trainer.ensure_target_maps()
    assert len(locks) == 1


# ------------------------------------------------------------------------------------------------ a full disk
def _full_disk(monkeypatch, free: int):
    """blosc2 failing as on a full disk (a partial temporary file, then its RuntimeError) for the maps, with
    ``free`` bytes left; returns the paths it was asked to write."""
    real = blosc2.asarray
    attempted = []

    def asarray(array, **kwargs):
        if TARGETS_FOLDER_NAME not in str(kwargs.get("urlpath", "")):
            return real(array, **kwargs)
        attempted.append(kwargs["urlpath"])
        Path(kwargs["urlpath"]).write_bytes(b"b2frame partial")
        raise RuntimeError("Error while creating the NDArray")

    monkeypatch.setattr(blosc2, "asarray", asarray)
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: type(usage)(usage.total, usage.total - free, free))
    return attempted


TARGETS_FOLDER_NAME = "nnunet_ext_targets"


def test_a_full_disk_while_writing_maps_is_one_line_and_leaves_no_temporary_file(nnunet_folders, monkeypatch, capsys):
    folder = make_preprocessed(nnunet_folders, 951)
    attempted = _full_disk(monkeypatch, free=0)
    assert main(["-d", "951", "-c", "3d_fullres"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and err.rstrip("\n").splitlines()[-1] == lines[0] and len(lines) == 1
    assert lines[0].startswith(f"error: no space left on the device ({target_file(folder, TargetSpec('sing'), 'case_000')})")
    assert attempted and not any(Path(path).exists() for path in attempted)
    assert not [p for p in targets_folder(folder, TargetSpec("sing")).iterdir() if p.name != "spec.json"]


def test_a_blosc2_failure_with_room_left_is_not_called_a_full_disk(nnunet_folders, monkeypatch):
    make_preprocessed(nnunet_folders, 951)
    attempted = _full_disk(monkeypatch, free=10**12)
    with pytest.raises(RuntimeError, match="Error while creating the NDArray"):
        precompute_targets(951, progress=False)
    assert not any(Path(path).exists() for path in attempted)


# ------------------------------------------------------------------------------------------------ Ctrl-C
def test_pool_workers_leave_ctrl_c_to_the_parent():
    """precompute's pool initializer also installs errors.leave_interrupts_to_the_parent (test_errors.py shows that
    a pool with it stops in one line); here, in the main process, only the signal handlers can be seen."""
    from nnunet_ext.precompute import _init_worker

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, lambda *args: None)
    try:
        _init_worker()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, errors.Terminated])
def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch, stop):
    def interrupted(*args, **kwargs):
        raise stop()

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", interrupted)
        with pytest.raises(stop):
            atomic_write_bytes(tmp_path / "spec.json", b"{}")
    assert list(tmp_path.iterdir()) == []
    spec = TargetSpec("dtm")
    (tmp_path / "case_000.b2nd").touch()
    (tmp_path / "case_000_seg.b2nd").touch()
    real = blosc2.asarray

    def interrupted_write(array, **kwargs):
        real(array, **kwargs)  # the temporary file exists
        raise stop()

    monkeypatch.setattr(blosc2, "asarray", interrupted_write)
    with pytest.raises(stop):
        write_case(tmp_path, spec, "case_000", np.zeros((1, 4, 4, 4), np.float32))
    assert list(targets_folder(tmp_path, spec).iterdir()) == []


# ------------------------------------------------------------------------------------------------ unknown seg values
def test_a_seg_value_not_in_dataset_json_stops_precompute_naming_the_case(nnunet_folders, capsys):
    folder = make_preprocessed(nnunet_folders, 951)
    seg = np.asarray(blosc2.open(str(folder / "case_001_seg.b2nd"))[:])
    seg[0, 10, 11, 9] = 7
    seg[0, 10, 11, 10] = 5
    os.unlink(folder / "case_001_seg.b2nd")
    _write_b2nd(folder / "case_001_seg.b2nd", seg)
    with pytest.raises(NnunetExtError) as error:
        precompute_targets(951, progress=False)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"case case_001 in {folder}: its segmentation holds value(s) 5, 7")
    assert "labels of dataset.json" in message and message.endswith("nnUNetv2_plan_and_preprocess -d Dataset951_Tiny "
                                                                    "-c 3d_fullres")
    assert main(["-d", "951", "-c", "3d_fullres"]) == 2
    assert capsys.readouterr().err.rstrip("\n").splitlines()[-1] == f"error: {message}"
    dataset_json = folder.parent / "dataset.json"  # declared (here as labels of the regions): computed
    labels = json.loads(dataset_json.read_text())
    labels["labels"] = {**labels["labels"], "whole": [1, 2, 3, 5, 7]}
    dataset_json.write_text(json.dumps(labels))
    assert precompute_targets(951, progress=False)["computed"] == 3
