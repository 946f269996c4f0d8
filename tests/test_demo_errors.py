"""The demo's bad-input paths: one-line errors that name the fix, nothing overwritten."""

import re
from pathlib import Path

import pytest

from nnunet_ext.demo import main, run_demo
from nnunet_ext.errors import NnunetExtError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def nnunet_folders(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("nnUNet_extTrainer", str(REPO / "trainers"))
    return tmp_path


def test_missing_environment_variable_names_the_export(nnunet_folders, monkeypatch):
    monkeypatch.delenv("nnUNet_preprocessed")
    with pytest.raises(NnunetExtError, match="export nnUNet_preprocessed="):
        run_demo(output=nnunet_folders / "out")


def test_trainer_folder_not_on_nnunet_exttrainer(nnunet_folders, monkeypatch):
    monkeypatch.delenv("nnUNet_extTrainer")
    with pytest.raises(NnunetExtError, match=re.escape(f"nnUNet_extTrainer:}}{REPO / 'trainers'}\"")):
        run_demo(output=nnunet_folders / "out")


def test_dataset_id_taken_by_another_dataset(nnunet_folders):
    other = nnunet_folders / "nnUNet_raw" / "Dataset990_SomebodysData"
    other.mkdir()
    (other / "dataset.json").write_text("{}")
    with pytest.raises(NnunetExtError, match="Dataset990_SomebodysData.*--dataset-id"):
        run_demo(output=nnunet_folders / "out")
    assert (other / "dataset.json").read_text() == "{}"


def test_unknown_kind_via_cli(nnunet_folders, capsys):
    assert main(["--kind", "cardiac", "--output", str(nnunet_folders / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset kind 'cardiac'") and err.count("\n") == 1
