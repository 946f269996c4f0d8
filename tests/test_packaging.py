"""Installed trainers: `nnunet_ext_trainer_path` (and its --check) in the editable install and from a wheel, and
nnU-Net's lookup there; what every console command shares (--version), the trainer line of the docs, the package
metadata and the files that ship with it."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from nnunet_ext.trainer_path import EXPORT_LINE, trainer_folder

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "nnunet_ext", "preprocessing", "trainers")  # what wheels build from
VARIANT = "nnUNetTrainerGSL_10epochs_20iters"  # a generated budget variant (nnunet_ext/budgets.py)


def _setuptools_config() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def source_files() -> dict[str, Path]:
    """Every module of the source tree by its path in an install (``nnunet_ext/trainers/x.py``), from the folders of
    pyproject's package-dir: what a wheel must hold."""
    files = {}
    for package, folder in _setuptools_config()["package-dir"].items():
        for path in (REPO / folder).rglob("*.py"):
            relative = path.relative_to(REPO / folder)
            if not any(part.startswith((".", "__pycache__")) for part in relative.parts):
                files.setdefault(str(Path(*package.split(".")) / relative), path)
    return files

LOOKUP = """
import inspect, sys
from pathlib import Path
from nnunet_ext.trainer_path import main
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
main([])
found = recursive_find_trainer_class_by_name(sys.argv[1])
files = {f.__code__.co_filename for k in found.__mro__ for f in vars(k).values() if inspect.isfunction(f)}
print("CLASS", found.__name__, found.budget)
print("NNUNET_EXT", Path(sys.modules["nnunet_ext"].__file__).resolve())
for f in sorted(files):
    print("FILE", Path(f).resolve())
"""


def test_editable_install_prints_the_repository_trainers():
    assert trainer_folder() == REPO / "trainers"
    printed = subprocess.run([str(VENV_BIN / "nnunet_ext_trainer_path")], capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == str(REPO / "trainers")


def test_pyproject_lists_every_package_of_the_source_tree():
    """setuptools installs the packages pyproject lists, not the folders: a new subpackage must be listed."""
    packages = {str(Path(name).parent).replace("/", ".") for name in source_files() if name.endswith("/__init__.py")}
    assert sorted(_setuptools_config()["packages"]) == sorted(packages)


def test_every_module_imports_from_the_source_tree():
    """Each module imports (no stale import after a rename) and is the source tree's file (the install serves it)."""
    for name, path in sorted(source_files().items()):
        module = importlib.import_module(name[:-3].replace("/", ".").removesuffix(".__init__"))
        assert Path(module.__file__).resolve() == path.resolve(), name


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
    assert {n for n in names if n.endswith(".py")} == set(source_files())  # every module, nothing else
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
    assert parts.returncode == 0 and "quality-cpu" in parts.stdout
    assert "LICENSE" in {Path(n).name for n in names if ".dist-info/" in n}

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


# ------------------------------------------------------------------------------------ console commands
COMMANDS = {e.name: e for e in metadata.distribution("nnunet-ext").entry_points if e.group == "console_scripts"}


def test_the_installed_commands_are_pyprojects():
    scripts = re.search(r"\[project\.scripts\]\n(.*?)\n\n", (REPO / "pyproject.toml").read_text(), re.S)[1]
    assert set(COMMANDS) == {line.split(" = ")[0] for line in scripts.splitlines()}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_prints_the_one_version(command, capsys):
    from nnunet_ext.commands import version_text

    main = COMMANDS[command].load()
    try:
        status = main(["--version"])
    except SystemExit as stop:  # argparse's way out
        status = stop.code
    assert status in (0, None)
    printed = capsys.readouterr().out.strip()
    assert printed == version_text() and printed.startswith(f"nnunet-ext {metadata.version('nnunet-ext')} (nnunetv2 ")


def test_the_version_has_one_source():
    import nnunet_ext

    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
    assert metadata.version("nnunet-ext") == version == nnunet_ext.__version__
    assert re.search(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.M)[1] == version  # the newest entry first


def test_benchmark_help_is_plain_text():
    from nnunet_ext.benchmarks.__main__ import PARTS, main

    completed = subprocess.run([sys.executable, "-m", "nnunet_ext.benchmarks", "-h"], capture_output=True, text=True)
    assert completed.returncode == 0 and completed.stderr == ""
    assert all(f"\n{part} " in completed.stdout for part in PARTS)
    assert not re.search(r"``|:mod:|^=+ ", completed.stdout, re.M)  # no reST
    assert main(["no-such-part"]) == 2


def test_precompute_help_lists_every_kind_without_importing_torch():
    from nnunet_ext.preprocessing.precompute_targets import KINDS, PROG
    from nnunet_ext.precompute import COMMAND
    from nnunet_ext.targets import REGISTRY

    assert PROG == COMMAND and {k: d for k, (d, _) in KINDS.items()} == {k: v.description for k, v in REGISTRY.items()}
    script = ("import sys\nfrom nnunet_ext.preprocessing.precompute_targets import main\ntry:\n    main(['-h'])\n"
              "except SystemExit:\n    pass\nprint('torch imported:', 'torch' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("torch imported: False")
    assert all(f"  {kind} " in completed.stdout for kind in REGISTRY)


# ------------------------------------------------------------------------------- the trainer line and --check
@pytest.mark.parametrize("doc", ["README.md", "docs/getting-started.md", "nnunet_ext/trainer_path.py"])
def test_the_docs_append_to_nnunet_exttrainer(doc):
    lines = [line for line in (REPO / doc).read_text().splitlines() if "export nnUNet_extTrainer=" in line]
    assert lines and all(EXPORT_LINE in line for line in lines), lines


@pytest.mark.parametrize("before, after", [(None, "{ours}"), ("/other/ext", "/other/ext:{ours}"),
                                           ("/a:/b", "/a:/b:{ours}")])
def test_the_trainer_line_keeps_other_extensions(before, after):
    env = {k: v for k, v in os.environ.items() if k != "nnUNet_extTrainer"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    if before is not None:
        env["nnUNet_extTrainer"] = before
    completed = subprocess.run(["bash", "-c", f'{EXPORT_LINE}\nprintf %s "$nnUNet_extTrainer"'], env=env,
                               capture_output=True, text=True, check=True)
    assert completed.stdout == after.format(ours=REPO / "trainers")


def test_check_reports_what_nnunet_will_use(monkeypatch, capsys):
    from nnunet_ext.trainer_path import main

    monkeypatch.setenv("nnUNet_extTrainer", f"/no/such/folder{os.pathsep}{REPO / 'trainers'}")
    assert main(["--check"]) == 1
    captured = capsys.readouterr()
    assert f"nnUNet_extTrainer: '/no/such/folder{os.pathsep}{REPO / 'trainers'}'" in captured.out
    assert f"nnunetv2 {metadata.version('nnunetv2')}" in captured.out
    assert re.search(r"trainers found by nnU-Net's look-up \(as nnUNetv2_train -tr\): (\d+) of \1 ", captured.out)
    assert "nnUNetTrainerSiNGR, " in captured.out and "parameters as in the tested nnU-Net" in captured.out
    assert captured.err.splitlines() == ["problem: nnUNet_extTrainer names /no/such/folder, which does not exist "
                                         "(nnU-Net skips it)", "1 problem(s)"]
    monkeypatch.delenv("nnUNet_extTrainer")
    assert main(["--check"]) == 1
    assert f"run: {EXPORT_LINE}" in capsys.readouterr().err


def test_check_names_the_geodesic_backend(monkeypatch):
    from nnunet_ext.trainer_path import _geodesic_backend

    if importlib.util.find_spec("FastGeodis") is not None:
        assert _geodesic_backend() == (f"FastGeodis {metadata.version('FastGeodis')}", None)
    monkeypatch.setitem(sys.modules, "FastGeodis", None)  # as if not installed
    backend, problem = _geodesic_backend()
    assert backend.startswith("the PyTorch raster scan (FastGeodis is not installed") and problem is None


# ------------------------------------------------------------------------------------------- metadata, files
def test_metadata_is_complete_and_the_license_ships():
    meta = metadata.metadata("nnunet-ext")
    assert meta["License-Expression"] == "Apache-2.0" and meta["Author"] == "nnunet-ext contributors"
    assert meta.get_all("Classifier") and meta["Keywords"]
    assert "Apache License" in (REPO / "LICENSE").read_text()[:200] and "Version 2.0" in (REPO / "LICENSE").read_text()
    requires = metadata.requires("nnunet-ext")
    for name in ("batchgeneratorsv2>=0.3.0", "acvl-utils", "filelock", "threadpoolctl"):  # imported, so declared
        assert any(r.replace(" ", "").startswith(name) for r in requires), name
    # nothing a user's environment has is pinned or capped, except nnU-Net (README, "Compatibility")
    bounds = [r.split(";")[0] for r in requires]
    assert [r for r in bounds if ("==" in r or "<" in r) and not r.startswith("nnunetv2")] == []
    extras = {r.split(";")[0].strip(): r for r in requires if "extra ==" in r}
    assert {"FastGeodis>=1.0.5", "brats-evaluation>=0.0.10", "panoptica>=2.1.7"} <= set(extras)


def test_citation_file_names_the_software_and_the_papers():
    yaml = pytest.importorskip("yaml")
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["version"] == metadata.version("nnunet-ext")
    titles = " | ".join(r["title"] for r in citation["references"])
    for part in ("nnU-Net", "SiNGR", "Generalized Surface Loss", "Region-wise Loss", "GeoLS", "Jaccard Metric Losses"):
        assert part in titles, part


def test_build_outputs_are_ignored():
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "/build/" in ignored and "/dist/" in ignored
