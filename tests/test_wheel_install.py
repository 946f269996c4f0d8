"""The issue-30 acceptance: ``pip install`` of the built wheel into an existing nnU-Net environment just works.

A new virtual environment stands for the user's: it reuses this interpreter's installed packages (torch,
nnU-Net's dependencies; a ``.pth`` line with this environment's site-packages, so nothing is downloaded, and
plain path lines do not run that folder's own ``.pth`` files, which keeps the repository's editable install
invisible), gets its own ``nnunetv2`` (``pip install --no-deps --ignore-installed``, for nnU-Net's console
commands) and no FastGeodis (a ``sitecustomize`` makes it unimportable, the state of a machine without a
compiler). Then, as the README says: the wheel is installed, ``nnUNet_extTrainer`` is extended with the README's
line (a second extension already on it stays found), and ``nnunet_ext_trainer_path --check`` passes. pip
resolves the wheel's dependencies against the environment without downloading anything (its dry run would
install nothing else), no version changes and ``pip check`` is clean. Finally nnU-Net's own commands precompute,
train and predict with ``nnUNetTrainerSiNGR_1epoch_2iters`` on CPU, on the suite's tiny BraTS-like dataset (planned
once per test run, conftest.py).

NNUNET_EXT_TEST_NNUNET=2.8.0 runs it with that nnU-Net release instead of 2.8.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest

from nnunet_ext.trainer_path import EXPORT_LINE

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "nnunet_ext", "preprocessing", "trainers")
NNUNET = os.environ.get("NNUNET_EXT_TEST_NNUNET", "2.8.1")
TRAINER = "nnUNetTrainerSiNGR_1epoch_2iters"
OTHER_EXTENSION = '''
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainerOtherExtension(nnUNetTrainer):
    """A trainer of another extension, found through nnUNet_extTrainer before nnunet-ext was added."""
'''
FALLBACK_PROBE = """
import numpy as np
from nnunet_ext.targets.geodesic import geodesic_distance
seeds = np.zeros((4, 4, 4), bool)
seeds[0] = True
print(geodesic_distance(np.zeros((4, 4, 4), np.float32), seeds, (1.0, 1.0, 1.0), 0.5, 1e10, 2).max())
"""


TIMES: list[tuple[str, float]] = []  # (command, seconds), printed at the end (pytest -s)


def run(args: list, env: dict, cwd: Path, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    completed = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True,
                               timeout=timeout)
    TIMES.append((" ".join(Path(str(a)).name if i == 0 else str(a) for i, a in enumerate(args[:4])),
                  time.perf_counter() - started))
    if check:
        assert completed.returncode == 0, (f"{' '.join(map(str, args))} failed ({completed.returncode}):\n"
                                           f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    return completed


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q", "--no-deps",
         "--no-build-isolation", "-w", tmp_path / "dist", source], dict(os.environ), tmp_path)
    (wheel,) = (tmp_path / "dist").glob("nnunet_ext-*.whl")
    return wheel


def make_environment(tmp_path: Path) -> tuple[Path, dict]:
    """(python of a new venv that sees this environment's packages, not its editable nnunet-ext, nor FastGeodis;
    its environment variables)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site_packages / "reuse_existing_environment.pth").write_text("".join(f"{p}\n" for p in ours))
    (site_packages / "sitecustomize.py").write_text(
        "import sys\nsys.modules['FastGeodis'] = None  # as on a machine where FastGeodis could not be built\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "nnUNet_extTrainer", "nnUNet_compile")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PIP_DISABLE_PIP_VERSION_CHECK="1", nnUNet_def_n_proc="1", nnUNet_n_proc_DA="1")
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / name).mkdir()
        env[name] = str(tmp_path / name)
    return python, env


VERSIONS = """
import importlib.metadata, json, re
seen = {}
for dist in importlib.metadata.distributions():  # in sys.path order: the first of a name is the one imported
    seen.setdefault(re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(), (dist.version, str(dist.locate_file(""))))
print(json.dumps(seen))
"""


def versions(python: Path, env: dict, cwd: Path) -> dict[str, tuple[str, str]]:
    """Every installed distribution of the environment: name -> (version, folder)."""
    return {name: tuple(value) for name, value in json.loads(run([python, "-c", VERSIONS], env, cwd).stdout).items()}


def test_wheel_into_an_existing_nnunet_environment(tmp_path, planned_tiny_dataset):
    wheel = build_wheel(tmp_path)
    python, env = make_environment(tmp_path)
    pip = [python, "-m", "pip"]
    cwd = tmp_path  # not the checkout: its nnunet_ext.egg-info must not count as installed

    assert run([python, "-c", "import FastGeodis"], env, cwd, check=False).returncode != 0
    installed = run([*pip, "install", "-q", "--no-deps", "--ignore-installed", f"nnunetv2=={NNUNET}"], env, cwd,
                    check=False)
    if installed.returncode != 0 and any(s in installed.stderr for s in ("No matching distribution", "Could not fetch",
                                                                         "NewConnectionError", "Network is unreachable")):
        pytest.skip(f"nnunetv2=={NNUNET} could not be downloaded for the test environment: "
                    f"{installed.stderr.strip().splitlines()[-1]}")
    assert installed.returncode == 0, installed.stderr[-3000:]
    before = versions(python, env, cwd)
    assert before["nnunetv2"][0] == NNUNET and Path(before["nnunetv2"][1]).is_relative_to(tmp_path)

    # what `pip install WHEEL` would do here: install nnunet-ext and no other version of anything. (pip 23 always
    # plans argparse again, the version installed: it skips that name when it lists what is installed.)
    report = tmp_path / "dry_run.json"
    run([*pip, "install", "-q", "--dry-run", "--report", report, wheel], env, cwd)
    planned = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"]
               for i in json.loads(report.read_text())["install"]}
    assert planned.pop("nnunet-ext") == metadata.version("nnunet-ext")  # the checkout's (tests/test_packaging.py)
    assert {n: (before.get(n, ("not installed",))[0], v) for n, v in planned.items() if before.get(n, ("",))[0] != v} \
        == {}, "pip would install these or change their versions"
    run([*pip, "install", "-q", "--no-deps", "--ignore-installed", wheel], env, cwd)
    after = versions(python, env, cwd)
    changed = {n: (before.get(n, ("-",))[0], v) for n, (v, _) in after.items() if before.get(n, ("-",))[0] != v}
    assert changed == {}, f"versions changed: {changed}"
    assert Path(after["nnunet-ext"][1]).is_relative_to(tmp_path)
    checked = run([*pip, "check"], env, cwd)
    assert "No broken requirements found" in checked.stdout

    probe = run([python, "-c", FALLBACK_PROBE], env, cwd, check=False)
    if probe.returncode != 0 and "FastGeodis" in probe.stderr:
        pytest.skip("the PyTorch fallback for FastGeodis (nnunet_ext/targets/geodesic_torch.py, used by "
                    f"nnunet_ext/targets/geodesic.py) is not in place: {probe.stderr.strip().splitlines()[-1]}")
    assert probe.returncode == 0, probe.stderr[-3000:]

    # the README's line, with another extension already on nnUNet_extTrainer
    other = tmp_path / "other_extension"
    other.mkdir()
    (other / "nnUNetTrainerOtherExtension.py").write_text(OTHER_EXTENSION)
    readme_lines = [line for line in (REPO / "README.md").read_text().splitlines() if "export nnUNet_extTrainer=" in line]
    assert readme_lines and all(line.startswith(EXPORT_LINE) for line in readme_lines)
    value = run(["bash", "-c", f'{EXPORT_LINE}\nprintf %s "$nnUNet_extTrainer"'],
                {**env, "nnUNet_extTrainer": str(other)}, cwd).stdout
    installed_trainers = Path(after["nnunet-ext"][1]) / "nnunet_ext" / "trainers"
    assert value == f"{other}{os.pathsep}{installed_trainers}"
    env["nnUNet_extTrainer"] = value

    check = run(["nnunet_ext_trainer_path", "--check"], env, cwd)
    assert f"nnunetv2 {NNUNET}, tested" in check.stdout and "the PyTorch raster scan" in check.stdout
    assert "another extension" in check.stdout and "(this installation)" in check.stdout
    assert "ok: nnU-Net will find and run nnunet-ext's trainers" in check.stdout

    # the suite's tiny BraTS-like dataset, planned by nnU-Net (once per test run) and copied into this environment
    dataset, _, raw = planned_tiny_dataset("brats", env["nnUNet_raw"], env["nnUNet_preprocessed"])
    precomputed = run(["nnUNetv2_precompute_targets", "-d", dataset, "-c", "3d_fullres"], env, cwd)
    assert "6 computed" in precomputed.stdout, precomputed.stdout
    assert "PyTorch" in precomputed.stderr, precomputed.stderr  # the backend it uses, said once on stderr
    trained = run(["nnUNetv2_train", dataset, "3d_fullres", 0, "-tr", TRAINER, "-device", "cpu"], env, cwd)
    assert f"Using trainer '{TRAINER}' from: {installed_trainers}" in trained.stdout
    results = Path(env["nnUNet_results"]) / raw.name / f"{TRAINER}__nnUNetPlans__3d_fullres"
    assert (results / "fold_0" / "checkpoint_final.pth").is_file()
    predictions = tmp_path / "predictions"
    run(["nnUNetv2_predict", "-i", raw / "imagesTs", "-o", predictions, "-d", dataset, "-c", "3d_fullres", "-tr",
         TRAINER, "-f", 0, "-device", "cpu", "-npp", 1, "-nps", 1], env, cwd)
    assert len(list(predictions.glob("*.nii.gz"))) == 2
    # the other extension's trainer is still found; what ran came from this environment, without FastGeodis
    imported = run([python, "-c", textwrap.dedent("""
        import contextlib, io, sys
        import nnunet_ext, nnunetv2
        from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
        with contextlib.redirect_stdout(io.StringIO()):
            other = recursive_find_trainer_class_by_name('nnUNetTrainerOtherExtension')
        print(other.__name__, nnunet_ext.__file__, nnunetv2.__file__, sys.modules['FastGeodis'])""")],
                   env, cwd).stdout.split()
    assert imported[0] == "nnUNetTrainerOtherExtension" and imported[3] == "None"
    assert all(Path(p).is_relative_to(tmp_path) for p in imported[1:3]), imported
    print("\n".join(f"{seconds:6.1f} s  {command}" for command, seconds in TIMES))
