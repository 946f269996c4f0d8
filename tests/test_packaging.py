"""Installed trainers: `nnunet_ext_trainer_path` in the editable install and from a wheel, and nnU-Net's lookup there."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nnunet_ext.trainer_path import trainer_folder

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SOURCES = ("pyproject.toml", "README.md", "nnunet_ext", "preprocessing", "trainers")  # what the wheel is built from
VARIANT = "nnUNetTrainerGSL_10epochs_20iters"  # a generated budget variant (nnunet_ext/schedules.py)

LOOKUP = """
import inspect, sys
from pathlib import Path
from nnunet_ext.trainer_path import main
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
main([])
found = recursive_find_trainer_class_by_name(sys.argv[1])
files = {f.__code__.co_filename for k in found.__mro__ for f in vars(k).values() if inspect.isfunction(f)}
print("CLASS", found.__name__, found.schedule)
print("NNUNET_EXT", Path(sys.modules["nnunet_ext"].__file__).resolve())
for f in sorted(files):
    print("FILE", Path(f).resolve())
"""


def test_editable_install_prints_the_repository_trainers():
    assert trainer_folder() == REPO / "trainers"
    printed = subprocess.run([str(VENV_BIN / "nnunet_ext_trainer_path")], capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == str(REPO / "trainers")
    # the package's __init__ is not a trainer module for nnU-Net's lookup (pkgutil skips it)
    assert "__init__" not in {m.name for m in pkgutil.iter_modules([str(REPO / "trainers")])}


@pytest.mark.e2e
def test_wheel_installs_the_trainers_and_nnunet_finds_a_budget_variant_there(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / name).is_dir() else {}))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, text=True)
    (wheel,) = (tmp_path / "dist").glob("nnunet_ext-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert {f"nnunet_ext/trainers/{p.name}" for p in (REPO / "trainers").glob("*.py")} <= names
    assert not any(n.startswith(("trainers/", "preprocessing/")) for n in names)  # no generic top-level names
    assert "nnunet_ext_trainer_path = nnunet_ext.trainer_path:main" in entry_points
    assert "nnunet_ext_benchmark = nnunet_ext.benchmarks.__main__:main" in entry_points
    assert "nnunet_ext/benchmarks/authors_recipes.py" in names  # the benchmarks ship with the package

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    installed = (site / "nnunet_ext" / "trainers").resolve()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("nnUNet_extTrainer", None)
    printed = subprocess.run([sys.executable, "-m", "nnunet_ext.trainer_path"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == str(installed)
    script = subprocess.run([str(site / "bin" / "nnunet_ext_trainer_path")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True).stdout.strip()
    assert script == str(installed)
    parts = subprocess.run([str(site / "bin" / "nnunet_ext_benchmark"), "--help"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert parts.returncode == 0 and "quality-cpu" in parts.stderr

    env["nnUNet_extTrainer"] = printed
    completed = subprocess.run([sys.executable, "-c", LOOKUP, VARIANT], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    assert f"Using trainer '{VARIANT}' from: {installed}" in lines
    assert f"CLASS {VARIANT} (10, 20, 5)" in lines
    assert f"NNUNET_EXT {site.resolve() / 'nnunet_ext' / '__init__.py'}" in lines
    files = [Path(line[len("FILE "):]) for line in lines if line.startswith("FILE ")]
    assert installed / "nnUNetTrainerGSL.py" in files  # the class comes from the installed copy
    assert not [f for f in files if any(f.is_relative_to(REPO / d) for d in ("nnunet_ext", "preprocessing", "trainers"))]
