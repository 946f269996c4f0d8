"""Shared fixtures: isolated nnU-Net folders and tiny preprocessed synthetic datasets (session-cached)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# OpenMP threads that wait by sleeping instead of spinning, in this process and in every nnU-Net command it starts
# (they inherit the variable; it is read when torch loads, hence before any import of torch). The suite runs three
# processes on two cores, and nnU-Net gives each CPU training as many threads as there are cores: spinning threads
# of one training take the cores another training's threads need.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from nnunet_ext.nnunet_env import TARGETS_FOLDER  # noqa: E402  (after the variable above, before torch loads)

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
TINY = {  # kind -> (dataset id, configuration, generator arguments)
    "brats": (901, "3d_fullres", {"num_cases": 6, "num_test_cases": 2, "shape": (32, 32, 24)}),
    "binary": (902, "3d_fullres", {"num_cases": 6, "num_test_cases": 2, "shape": (32, 32, 24)}),
    "2d": (903, "2d", {"num_cases": 6, "num_test_cases": 2, "shape": (48, 48)}),
}


# Real MRI samples (brats2015_sample/, lgg_kaggle_3m_sample/): the folder named by NNUNET_EXT_DATA, else
# ../shared/data beside the checkout (where CI keeps them); tests that need one skip without it.
DATA_VARIABLE = "NNUNET_EXT_DATA"
CI_DATA = REPO.parent / "shared" / "data"


def sample_data_folder(relative: str) -> Path | None:
    """``<data>/<relative>`` if that folder exists (data: $NNUNET_EXT_DATA, else CI's folder), else None."""
    root = Path(os.environ[DATA_VARIABLE]) if os.environ.get(DATA_VARIABLE) else CI_DATA
    return root / relative if (root / relative).is_dir() else None


@pytest.fixture
def sample_data():
    """``sample_data("brats2015_sample")`` -> the sample folder, or the test skips with a one-line reason."""
    def get(relative: str) -> Path:
        folder = sample_data_folder(relative)
        if folder is None:
            pytest.skip(f"{relative} not found: set {DATA_VARIABLE} to a folder holding it")
        return folder

    return get


def run_command(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs a console script of this environment; on failure the assertion shows its output."""
    executable = VENV_BIN / args[0]
    completed = subprocess.run([str(executable if executable.exists() else args[0]), *args[1:]],
                               env=env, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, f"{' '.join(args)} failed:\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
    return completed


@pytest.fixture(scope="session")
def nnunet_env(tmp_path_factory) -> dict[str, str]:
    """Environment for nnU-Net subprocesses: fresh nnUNet_* folders, our trainers, CPU-sized pools."""
    root = tmp_path_factory.mktemp("nnunet")
    env = dict(os.environ)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir()
        env[name] = str(root / name)
    env["nnUNet_extTrainer"] = str(REPO / "trainers")
    env["nnUNet_def_n_proc"] = "1"
    # nnU-Net's single-threaded augmenter: each spawned worker costs seconds of imports per run on 2 cores (the
    # workers under spawn have their own test, tests/test_e2e_nnunet.py)
    env["nnUNet_n_proc_DA"] = "0"
    env.pop("nnUNet_compile", None)
    return env


# nnUNetv2_plan_and_preprocess -d ID -c CONFIGURATION -np 1, except that the fingerprint samples 10^5 foreground
# voxels in all for its intensity statistics instead of 10^8 (drawn with replacement: on six tiny cases, 30 s of
# drawing the same few thousand voxels again). The statistics are used by CT normalisation only; these datasets
# are MRI-like (per-case z-score), so the preprocessed arrays are nnU-Net's own either way.
PLAN_AND_PREPROCESS = """
import sys
from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import DatasetFingerprintExtractor
from nnunetv2.experiment_planning.plan_and_preprocess_entrypoints import plan_and_preprocess_entry

nnunet_init = DatasetFingerprintExtractor.__init__
def init(self, *args, **kwargs):
    nnunet_init(self, *args, **kwargs)
    self.num_foreground_voxels_for_intensitystats = 10**5
DatasetFingerprintExtractor.__init__ = init
sys.argv = ["nnUNetv2_plan_and_preprocess", "-d", sys.argv[1], "-c", sys.argv[2], "-np", "1"]
plan_and_preprocess_entry()
"""


@pytest.fixture(scope="session")
def planned_tiny_dataset(tmp_path_factory):
    """Factory: ``planned_tiny_dataset(kind, raw_root, preprocessed_root)`` copies the tiny dataset ``kind`` (raw and
    preprocessed) into those nnU-Net folders -> (dataset id, configuration, raw folder). Each kind is generated and
    planned once per test run, under a lock, in a folder that the suite's pytest-xdist processes share (the parent
    of each one's base temporary folder): planning costs tens of seconds, copying milliseconds."""
    from filelock import FileLock

    from nnunet_ext.synthetic import generate_dataset

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def copy(kind: str, raw_root: str | Path, preprocessed_root: str | Path) -> tuple[int, str, Path]:
        dataset_id, configuration, kwargs = TINY[kind]
        planned = shared / f"tiny_{kind}"
        with FileLock(str(planned) + ".lock"):
            if not (planned / "planned").is_file():
                shutil.rmtree(planned, ignore_errors=True)
                folders = {name: planned / name for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
                for folder in folders.values():
                    folder.mkdir(parents=True)
                generate_dataset(kind, dataset_id, seed=1, raw_root=folders["nnUNet_raw"], **kwargs)
                # nnU-Net's planner sets torch's threads to nnUNet_n_proc_DA, which must be positive there
                env = {**os.environ, **{name: str(folder) for name, folder in folders.items()},
                       "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": "1"}
                run_command([sys.executable, "-c", PLAN_AND_PREPROCESS, str(dataset_id), configuration], env)
                (planned / "planned").touch()
        (raw,) = (planned / "nnUNet_raw").iterdir()
        shutil.copytree(raw, Path(raw_root) / raw.name)
        shutil.copytree(planned / "nnUNet_preprocessed" / raw.name, Path(preprocessed_root) / raw.name)
        return dataset_id, configuration, Path(raw_root) / raw.name

    return copy


@pytest.fixture(scope="session")
def tiny_dataset(nnunet_env, planned_tiny_dataset):
    """Factory: ``tiny_dataset("brats")`` -> (dataset id, configuration, raw folder) in this process's nnU-Net
    folders (nnunet_env), planned and preprocessed."""
    cache: dict[str, tuple[int, str, Path]] = {}

    def make(kind: str):
        if kind not in cache:
            cache[kind] = planned_tiny_dataset(kind, nnunet_env["nnUNet_raw"], nnunet_env["nnUNet_preprocessed"])
        return cache[kind]

    return make


#: the budget of the e2e runs whose validation Dice is checked (80 iterations, on the 2D set, where both learning
#: checks passed the online pseudo-Dice of 0.5 within the first 20); the 2-iteration smoke budget's Dice means
#: nothing (0.01-0.25 on a BraTS case, docs/results/short-budget-cpu.md)
LEARNING_BUDGET = "_4epochs_20iters"
#: the mean validation Dice of every label / region a run of LEARNING_BUDGET must reach: at 80 iterations SiNGR and
#: LS+JML reached 0.83 and 0.82 on the 2D set (at 200: 0.82 and 0.85)
LEARNED_DICE = 0.5


def assert_learned(summary: dict) -> None:
    """Asserts that nnU-Net's validation ``summary`` (summary.json) shows a trained network: per label / region a
    mean Dice of at least LEARNED_DICE and above that of predicting foreground everywhere, 2 n_ref / (n_ref + N),
    which bounds (in expectation) every prediction that ignores the image, an untrained network's included."""
    everywhere: dict[str, list[float]] = {}
    for case in summary["metric_per_case"]:
        for label, metrics in case["metrics"].items():
            voxels = metrics["TP"] + metrics["FP"] + metrics["FN"] + metrics["TN"]
            everywhere.setdefault(label, []).append(2 * metrics["n_ref"] / (metrics["n_ref"] + voxels))
    reached = {label: summary["mean"][label]["Dice"] for label in everywhere}
    bars = {label: max(LEARNED_DICE, sum(values) / len(values)) for label, values in everywhere.items()}
    assert all(reached[label] >= bars[label] for label in bars), f"validation Dice {reached}, below {bars}"


@dataclass(frozen=True)
class TrainedFold:
    """Fold 0 of one ``nnUNetv2_train`` run on a tiny dataset: its folder, the dataset and what the run printed."""

    folder: Path
    dataset_id: int
    configuration: str
    raw_folder: Path
    stdout: str


@pytest.fixture(scope="session")
def trained_fold(nnunet_env, tiny_dataset):
    """Factory: ``trained_fold(trainer, kind)`` trains fold 0 once per session (the tests that read the same run
    share it). The configuration's maps are removed before, so that a map trainer computes its own."""
    cache: dict[tuple[str, str], TrainedFold] = {}

    def train(trainer: str, kind: str) -> TrainedFold:
        if (trainer, kind) not in cache:
            dataset_id, configuration, raw_folder = tiny_dataset(kind)
            preprocessed = Path(nnunet_env["nnUNet_preprocessed"]) / raw_folder.name / f"nnUNetPlans_{configuration}"
            shutil.rmtree(preprocessed / TARGETS_FOLDER, ignore_errors=True)
            completed = run_command(["nnUNetv2_train", str(dataset_id), configuration, "0", "-tr", trainer,
                                     "-device", "cpu"], nnunet_env)
            folder = (Path(nnunet_env["nnUNet_results"]) / raw_folder.name / f"{trainer}__nnUNetPlans__{configuration}"
                      / "fold_0")
            cache[(trainer, kind)] = TrainedFold(folder, dataset_id, configuration, raw_folder, completed.stdout)
        return cache[(trainer, kind)]

    return train


@pytest.fixture
def initialized_trainer(nnunet_env, tiny_dataset, monkeypatch, tmp_path):
    """Factory: ``initialized_trainer(trainer, kind)`` -> the trainer (a class, or a name that nnU-Net's look-up
    finds as ``nnUNetv2_train -tr`` does) on fold 0 of a tiny dataset, after nnU-Net's own ``initialize()``, in this
    process (CPU; results in the test's folder)."""
    import json

    import torch

    def make(trainer_class, kind: str):
        _, configuration, raw_folder = tiny_dataset(kind)
        monkeypatch.setenv("nnUNet_extTrainer", nnunet_env["nnUNet_extTrainer"])
        monkeypatch.setenv("nnUNet_preprocessed", nnunet_env["nnUNet_preprocessed"])
        monkeypatch.setenv("nnUNet_results", str(tmp_path))
        preprocessed = Path(nnunet_env["nnUNet_preprocessed"]) / raw_folder.name
        plans = {**json.loads((preprocessed / "nnUNetPlans.json").read_text()), "continue_training": False}
        dataset_json = json.loads((preprocessed / "dataset.json").read_text())
        if isinstance(trainer_class, str):
            from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

            trainer_class = recursive_find_trainer_class_by_name(trainer_class)
        trainer = trainer_class(plans, configuration, 0, dataset_json, torch.device("cpu"))
        trainer.initialize()
        return trainer

    return make


@pytest.fixture
def nnunet_folders(tmp_path, monkeypatch) -> Path:
    """nnU-Net's three folders under the test's folder, set in the environment; returns nnUNet_preprocessed."""
    root = tmp_path / "nnUNet_preprocessed"
    monkeypatch.setenv("nnUNet_preprocessed", str(root))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    return root
