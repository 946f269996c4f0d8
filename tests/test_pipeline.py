"""nnunet_ext.workflow.pipeline: the journal of stages, the fold states, nnU-Net's training-log times, the
conversion stage and the trainer check (fast)."""

from __future__ import annotations

import json
import re
import sys

import pytest

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import fold_folder
from nnunet_ext.trainer_path import check_trainers
from nnunet_ext.workflow.pipeline import Pipeline, fold_state, link_raw_images, train_command, training_log_times


def test_journal_keeps_what_ran_and_reports_it_for_a_skipped_stage(tmp_path):
    pipeline = Pipeline("Dataset900_X", "2d", tmp_path / "logs", journal=tmp_path / "stages.jsonl")
    ran = pipeline.record({"stage": "train+validate", "trainer": "T", "fold": 0, "state_before": "new", "seconds": 12.5})
    assert ran["finished_utc"] and json.loads((tmp_path / "stages.jsonl").read_text())["seconds"] == 12.5
    with open(tmp_path / "stages.jsonl", "a") as handle:
        handle.write('{"stage": "train+vali')  # a line cut short by an interrupted write is passed over
    again = pipeline.record({"stage": "train+validate", "trainer": "T", "fold": 0, "state_before": "done",
                             "skipped": "finished earlier"})
    assert again["seconds"] == 12.5 and again["timings_from"] == ran["finished_utc"]
    assert again["skipped"] == "finished earlier" and again["state_before"] == "done"
    other = pipeline.record({"stage": "train+validate", "trainer": "T", "fold": 1, "skipped": "finished earlier"})
    assert "seconds" not in other  # no earlier run of that fold: nothing to report
    assert len((tmp_path / "stages.jsonl").read_text().splitlines()) == 2  # skipped stages are not journaled


def test_fold_states_choose_the_train_command(tmp_path):
    folder = fold_folder(tmp_path, "Dataset900_X", "T", "2d", 3)
    assert folder == tmp_path / "Dataset900_X" / "T__nnUNetPlans__2d" / "fold_3"
    folder.mkdir(parents=True)
    states = [fold_state(folder)]
    (folder / "checkpoint_latest.pth").touch()
    states.append(fold_state(folder))
    (folder / "checkpoint_final.pth").touch()
    states.append(fold_state(folder))
    (folder / "validation").mkdir()
    (folder / "validation" / "summary.json").touch()
    states.append(fold_state(folder))
    assert states == ["new", "resume", "validate", "done"]
    tails = [train_command("Dataset900_X", "2d", 3, "T", "nnUNetPlans", "cpu", s)[10:] for s in states[:3]]
    assert tails == [[], ["--c"], ["--val"]]


def test_a_finished_fold_is_skipped_without_running_nnunet(tmp_path, monkeypatch, capsys):
    folder = fold_folder(tmp_path, "Dataset900_X", "T", "2d", 0)
    (folder / "validation").mkdir(parents=True)
    for name in ("checkpoint_final.pth", "validation/summary.json"):
        (folder / name).touch()

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a finished fold must not start nnUNetv2_train")

    monkeypatch.setattr("nnunet_ext.workflow.pipeline.run_logged", no_subprocess)
    record = Pipeline("Dataset900_X", "2d", tmp_path / "logs").train("T", 0, tmp_path)
    assert record["skipped"] == "finished earlier" and record["state_before"] == "done"
    assert "T fold 0: finished, skipped" in capsys.readouterr().out


def test_training_log_times_are_read_from_nnunets_log(tmp_path):
    (tmp_path / "training_log_2026_12_2_10_00_00.txt").write_text("\n".join([
        "2026-12-02 10:00:00.000000: Using torch.compile...",
        "2026-12-02 10:00:04.000000: Epoch 0",
        "2026-12-02 10:00:10.000000: Epoch time: 6.0 s",
        "2026-12-02 10:00:10.000000: Epoch 1",
        "2026-12-02 10:00:15.500000: Epoch time: 5.5 s",
        "2026-12-02 10:00:16.000000: Training done.",
        "2026-12-02 10:00:30.000000: Validation complete",
    ]) + "\n")
    times = training_log_times(tmp_path)
    assert times["epoch_seconds"] == [6.0, 5.5]
    assert (times["setup_s"], times["training_s"], times["validation_s"]) == pytest.approx((4.0, 12.0, 14.0))


def test_link_raw_images_links_every_channel_of_the_cases_and_names_a_missing_one(tmp_path):
    raw = tmp_path / "Dataset001_X"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1", "1": "FLAIR"}, "file_ending": ".nii.gz"}))
    for name in ("a_0000", "a_0001", "b_0000", "b_0001", "c_0000"):
        (raw / "imagesTr" / f"{name}.nii.gz").write_text(name)
    folder = link_raw_images(raw, ["a", "b"], tmp_path / "input")
    assert sorted(p.name for p in folder.iterdir()) == ["a_0000.nii.gz", "a_0001.nii.gz", "b_0000.nii.gz",
                                                        "b_0001.nii.gz"]
    assert (folder / "b_0001.nii.gz").read_text() == "b_0001"
    link_raw_images(raw, ["a"], folder)  # again: the links are there, nothing fails
    with pytest.raises(NnunetExtError, match="c_0001.nii.gz not found"):
        link_raw_images(raw, ["c"], folder)


def test_convert_runs_the_converter_once_and_a_rerun_reports_its_timings(tmp_path, monkeypatch, capsys):
    for tree in ("raw", "preprocessed", "results"):  # a pipeline runs in an nnU-Net environment: all three set
        monkeypatch.setenv(f"nnUNet_{tree}", str(tmp_path / tree))
    pipeline = Pipeline("Dataset900_X", "2d", tmp_path / "logs", journal=tmp_path / "stages.jsonl")
    # a converter that fails when its dataset exists, as nnunet_ext_synthetic does without --overwrite
    converter = [sys.executable, "-c", "import os, pathlib; folder = pathlib.Path(os.environ['nnUNet_raw'], "
                 "'Dataset900_X'); folder.mkdir(parents=True); (folder / 'dataset.json').write_text('{}')"]
    ran = pipeline.convert(converter)
    assert (tmp_path / "raw" / "Dataset900_X" / "dataset.json").is_file() and ran["stage"] == "convert"
    again = pipeline.convert(converter)
    assert again["skipped"] == "raw dataset present" and again["seconds"] == ran["seconds"]
    assert "convert: raw dataset present, skipped" in capsys.readouterr().out


def test_check_trainers_finds_ours_and_says_what_to_fix_for_an_unknown_one(monkeypatch):
    from nnunet_ext.trainer_path import trainer_folder

    monkeypatch.setenv("nnUNet_extTrainer", str(trainer_folder()))
    check_trainers(["nnUNetTrainer", "nnUNetTrainerSiNGR_1epoch_2iters"])
    with pytest.raises(NnunetExtError, match=r"^trainer nnUNetTrainerSiNGRR not found .*; check the name"):
        check_trainers(["nnUNetTrainerSiNGRR"])  # the folder is searched: the name is wrong
    monkeypatch.delenv("nnUNet_extTrainer")
    export = re.escape(f'export nnUNet_extTrainer="${{nnUNet_extTrainer:+$nnUNet_extTrainer:}}{trainer_folder()}"')
    with pytest.raises(NnunetExtError, match=rf"\(not set\); .*{export}$"):
        check_trainers(["nnUNetTrainerSiNGR"])


def test_atomic_writes_of_concurrent_writers_never_share_a_temporary_and_are_group_readable(tmp_path):
    """Two writers of one file (two folds writing the split, two benchmarks their record): each write lands whole,
    none fails on a temporary another writer renamed away, and the file is readable by the group as nnU-Net's."""
    import os
    import threading

    from nnunet_ext.nnunet_env import atomic_write_bytes

    path = tmp_path / "splits_final.json"
    errors = []

    def write(content: bytes) -> None:
        try:
            for _ in range(300):
                atomic_write_bytes(path, content)
        except OSError as error:  # a shared temporary name: FileNotFoundError on the rename
            errors.append(error)

    umask = os.umask(0o022)
    try:
        writers = [threading.Thread(target=write, args=(bytes([65 + i]) * 4096,)) for i in range(2)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
    finally:
        os.umask(umask)
    assert not errors and path.read_bytes() in (b"A" * 4096, b"B" * 4096)
    assert path.stat().st_mode & 0o777 == 0o644 and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_command_killed_by_the_kernel_is_named_out_of_memory(tmp_path):
    """SIGKILL is what the kernel's out-of-memory killer sends: the stage's one line says so, not only "exit -9"."""
    from nnunet_ext.commands import run_logged

    killed_itself = [sys.executable, "-c", "import os, signal; print('training'); os.kill(os.getpid(), signal.SIGKILL)"]
    with pytest.raises(NnunetExtError, match=r"failed \(exit -9, killed: out of memory\?\): training -- full log"):
        run_logged(killed_itself, tmp_path / "train.log")
    with pytest.raises(NnunetExtError, match=r"failed \(exit 3\): "):
        run_logged([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "other.log")
