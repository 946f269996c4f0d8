"""Report (statistics, paired test, files) and the cross-validation runner's bookkeeping, on fake nnU-Net folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.labels import BRATS_REGION_LABELS as REGION_LABELS
from nnunet_ext.errors import NnunetExtError
from nnunet_ext.evaluation import paired_test, summarise_rows
from nnunet_ext.workflow.cv import SPLIT_RECORD, apply_split, dataset_paths, run_cv
from nnunet_ext.workflow.pipeline import fold_state
from nnunet_ext.workflow.report import main as report_main

NAME = "Dataset777_Fake"
CASES = [f"case_{i}" for i in range(6)]
SPLITS = [{"train": CASES[3:], "val": CASES[:3]}, {"train": CASES[:3], "val": CASES[3:]}]


def _labels(i: int, shift: int = 0) -> np.ndarray:
    labels = np.zeros((16, 16, 16), np.uint8)
    labels[4 + shift:12 + shift, 4:12, 3:11 + i % 3] = 1  # edema
    labels[6 + shift:10 + shift, 6:10, 5:9] = 2  # core
    labels[7 + shift:9 + shift, 7:9, 6:8] = 3  # enhancing
    return labels


def _write(labels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(path))


@pytest.fixture
def fake_nnunet(tmp_path, monkeypatch):
    """nnU-Net folders with 6 cases, a 2-fold split and validation predictions of trainers A (shifted) and B (exact)."""
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(variable, str(tmp_path / variable))
    dataset_json = {"channel_names": {"0": "FLAIR"}, "labels": REGION_LABELS, "regions_class_order": [1, 2, 3],
                    "numTraining": 6, "file_ending": ".nii.gz", "name": "Fake"}
    raw, pre, res = (tmp_path / v / NAME for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"))
    for folder in (raw, pre):
        folder.mkdir(parents=True)
        (folder / "dataset.json").write_text(json.dumps(dataset_json))
    (pre / "splits_final.json").write_text(json.dumps(SPLITS))
    for i, case in enumerate(CASES):
        _write(_labels(i), pre / "gt_segmentations" / f"{case}.nii.gz")
        _write(_labels(i), raw / "labelsTr" / f"{case}.nii.gz")
        _write(_labels(i).astype(np.float32), raw / "imagesTr" / f"{case}_0000.nii.gz")
        fold = 0 if case in SPLITS[0]["val"] else 1
        for trainer, prediction in (("A", _labels(i, shift=1 + i % 2)), ("B", _labels(i))):
            folder = res / f"{trainer}__nnUNetPlans__3d_fullres" / f"fold_{fold}"
            _write(prediction, folder / "validation" / f"{case}.nii.gz")
            (folder / "checkpoint_final.pth").write_bytes(b"")
            (folder / "validation" / "summary.json").write_text("{}")
    return tmp_path


def _summary(folder: Path) -> dict[tuple[str, str, str], dict]:
    with open(folder / "summary.csv") as handle:
        return {(r["trainer"], r["region"], r["metric"]): r for r in csv.DictReader(handle)}


def test_cross_validation_report(fake_nnunet, capsys):
    out = fake_nnunet / "report"
    assert report_main(["-d", "777", "-tr", "A", "B", "-f", "0", "1", "-b", "A", "-o", str(out)]) == 0
    summary = _summary(out)
    exact = summary[("B", "whole tumor", "dice")]
    assert float(exact["mean"]) == 1.0 and float(exact["se_cases"]) == 0.0 and exact["n_cases"] == "6"
    assert exact["n_folds"] == "2" and float(exact["mean_over_folds"]) == 1.0
    shifted = summary[("A", "whole tumor", "dice")]
    assert 0.5 < float(shifted["mean"]) < 1 and float(shifted["se_cases"]) > 0 and shifted["baseline"] == ""
    # B beats A on all 6 cases: the exact two-sided Wilcoxon p-value is 2 / 2^6.
    assert float(exact["wilcoxon_p"]) == pytest.approx(2 / 64)
    assert float(exact["mean_difference"]) == pytest.approx(1 - float(shifted["mean"]))
    assert float(summary[("B", "enhancing tumor", "hd95")]["mean_difference"]) < 0
    with open(out / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 6 * 3 and {r["fold"] for r in rows} == {"0", "1"}
    report = (out / "report.md").read_text()
    assert "both empty give Dice 1" in report and "MONAI" in report and "Wilcoxon" in report
    assert "over folds" in report and "| B | tumor core | 6 | 100.00 ± 0.00 |" in report
    assert (out / "boxplots.png").stat().st_size > 10_000


def test_report_errors_name_the_fix(fake_nnunet, capsys):
    (fake_nnunet / "nnUNet_results" / NAME / "A__nnUNetPlans__3d_fullres" / "fold_1" / "validation"
     / "case_4.nii.gz").unlink()
    assert report_main(["-d", "777", "-tr", "A", "-f", "0", "1", "-o", str(fake_nnunet / "r")]) == 2
    error = capsys.readouterr().err
    assert "prediction(s) missing" in error and "case_4.nii.gz" in error and "--val" in error
    assert report_main(["-d", "777", "-tr", "B", "-f", "0", "-b", "A", "-o", str(fake_nnunet / "r")]) == 2
    assert "baseline A is not among the trainers" in capsys.readouterr().err


def test_separate_test_set_mode(fake_nnunet):
    pre = fake_nnunet / "nnUNet_preprocessed" / NAME
    res = fake_nnunet / "nnUNet_results" / NAME
    out = fake_nnunet / "test_report"
    predictions = [f"{t}={res / f'{t}__nnUNetPlans__3d_fullres' / 'fold_1' / 'validation'}" for t in ("B", "A")]
    references = fake_nnunet / "refs"
    references.mkdir()
    for case in CASES[3:]:
        (references / f"{case}.nii.gz").write_bytes((pre / "gt_segmentations" / f"{case}.nii.gz").read_bytes())
    assert report_main(["--predictions", *predictions, "--references", str(references), "-j",
                        str(pre / "dataset.json"), "-b", "B", "-o", str(out)]) == 0
    summary = _summary(out)
    assert summary[("A", "whole tumor", "dice")]["n_cases"] == "3" and summary[("A", "whole tumor", "dice")]["n_folds"] == ""
    assert float(summary[("A", "whole tumor", "dice")]["wilcoxon_p"]) == pytest.approx(0.25)  # 3 cases, all worse


def test_paired_test_and_case_mismatch():
    assert paired_test([0.5, 0.7], [0.5, 0.7]) == (0.0, 1.0)
    rows = [{"trainer": t, "fold": None, "case": c, "region": "r", "dice": 1.0, "iou": 1.0, "hd95": 0.0, "asd": 0.0}
            for t, c in (("A", "x"), ("A", "y"), ("B", "x"), ("B", "z"))]
    with pytest.raises(NnunetExtError, match="evaluated on different cases"):
        summarise_rows(rows, "A")


@pytest.fixture
def checked_names(monkeypatch):
    """The trainer names nnunet_ext_cv checks (A-D are no trainers nnU-Net could find)."""
    import nnunet_ext.workflow.cv as cv

    names = []
    monkeypatch.setattr(cv, "check_trainers", names.extend)
    return names


def test_fold_states_and_print_commands(fake_nnunet, capsys, checked_names):
    res = fake_nnunet / "nnUNet_results" / NAME / "C__nnUNetPlans__3d_fullres"
    (res / "fold_1").mkdir(parents=True)
    (res / "fold_1" / "checkpoint_latest.pth").write_bytes(b"")
    (res / "fold_2").mkdir()
    (res / "fold_2" / "checkpoint_final.pth").write_bytes(b"")
    assert [fold_state(res / f"fold_{f}") for f in range(3)] == ["new", "resume", "validate"]
    commands = run_cv("777", "3d_fullres", ["B", "C"], [0, 1, 2], device="cpu", print_only=True)
    assert [" ".join(c) for c in commands] == [
        f"nnUNetv2_train {NAME} 3d_fullres 2 -tr B -p nnUNetPlans -device cpu",
        f"nnUNetv2_train {NAME} 3d_fullres 0 -tr C -p nnUNetPlans -device cpu",
        f"nnUNetv2_train {NAME} 3d_fullres 1 -tr C -p nnUNetPlans -device cpu --c",
        f"nnUNetv2_train {NAME} 3d_fullres 2 -tr C -p nnUNetPlans -device cpu --val",
    ]
    output = capsys.readouterr().out
    assert "B fold 0: finished, skipped" in output and output.strip().endswith("--val")
    assert checked_names == ["B", "C"]  # printed commands are checked too
    # without a device the printed commands leave it to nnU-Net (cuda), not to the machine that prints them
    commands = run_cv("777", "3d_fullres", ["C"], [0], device=None, print_only=True)
    assert [" ".join(c) for c in commands] == [f"nnUNetv2_train {NAME} 3d_fullres 0 -tr C -p nnUNetPlans"]
    with pytest.raises(ValueError, match="needs a device"):
        run_cv("777", "3d_fullres", ["C"], [0], device=None)


def test_print_commands_from_the_command_line_carry_no_device_unless_given(fake_nnunet, capsys, checked_names):
    from nnunet_ext.workflow.cv import main as cv_main

    assert cv_main(["-d", "777", "-tr", "C", "-f", "0", "--print-commands"]) == 0
    assert capsys.readouterr().out.strip() == f"nnUNetv2_train {NAME} 3d_fullres 0 -tr C -p nnUNetPlans"
    assert cv_main(["-d", "777", "-tr", "C", "-f", "0", "--print-commands", "-device", "cuda"]) == 0
    assert capsys.readouterr().out.strip().endswith("-device cuda")


def test_report_folds_default_to_the_validated_ones(fake_nnunet, capsys):
    res = fake_nnunet / "nnUNet_results" / NAME
    import shutil

    shutil.rmtree(res / "A__nnUNetPlans__3d_fullres" / "fold_1")  # A has only fold 0
    out = fake_nnunet / "report_fold0"
    assert report_main(["-d", "777", "-tr", "A", "B", "-b", "A", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "folds with validation predictions of every trainer: 0" in captured.out
    assert "cross-validation, fold 0" in (out / "report.md").read_text()
    assert "evaluating 3 case(s)" in captured.err and "case 3/3" in captured.err  # progress on stderr
    assert report_main(["-d", "777", "-tr", "A", "-f", "1", "-o", str(out)]) == 2
    assert "or report the folds it has: -f 0" in capsys.readouterr().err
    shutil.rmtree(res / "A__nnUNetPlans__3d_fullres" / "fold_0")
    assert report_main(["-d", "777", "-tr", "A", "B", "-o", str(out)]) == 2
    assert "then pass -f 0" in capsys.readouterr().err


def test_cv_checks_every_trainer_name_before_training(fake_nnunet, monkeypatch):
    monkeypatch.setenv("nnUNet_extTrainer", str(fake_nnunet / "no_trainers_here"))
    with pytest.raises(NnunetExtError, match="trainer B not found"):  # B has finished folds, nothing is started
        run_cv("777", "3d_fullres", ["B"], [0, 1], device="cpu")


def test_fixed_split_writes_nnunet_splits(fake_nnunet, capsys, checked_names):
    paths = dataset_paths("777")
    split_file = fake_nnunet / "split.json"
    split_file.write_text(json.dumps({"train": CASES[:3], "val": CASES[3:5], "test": [CASES[5]]}))
    with pytest.raises(NnunetExtError, match="holds a different split; pass --overwrite-split"):
        apply_split(paths, split_file)
    apply_split(paths, split_file, overwrite_split=True)
    assert json.loads((paths.preprocessed / "splits_final.json").read_text()) == [
        {"train": CASES[:3], "val": CASES[3:5]}]
    assert json.loads((paths.preprocessed / SPLIT_RECORD).read_text())["test"] == ["case_5"]
    apply_split(paths, split_file)  # the same split again is fine
    commands = run_cv("777", "3d_fullres", ["D"], split_file=split_file, device="cpu", print_only=True)
    assert commands[-1][:2] == ["nnUNetv2_predict", "-i"] and commands[-1][-4:] == ["-f", "0", "-device", "cpu"]
    assert (paths.preprocessed / "nnunet_ext_test_images" / "case_5_0000.nii.gz").is_file()
    split_file.write_text(json.dumps({"train": CASES[:3], "val": ["case_2", "nope"]}))
    with pytest.raises(NnunetExtError, match="'val' case\\(s\\) are not in Dataset777_Fake \\(first: nope\\)"):
        apply_split(paths, split_file, overwrite_split=True)
    split_file.write_text(json.dumps({"train": CASES[:3], "val": ["case_2"]}))
    with pytest.raises(NnunetExtError, match="case case_2 is in both 'train' and 'val'"):
        apply_split(paths, split_file, overwrite_split=True)


def test_report_with_the_official_brats_metrics(fake_nnunet, capsys):
    pytest.importorskip("brats_evaluation", reason="brats-evaluation is not installed (scripts/setup_env.sh installs it)")
    out = fake_nnunet / "report_brats"
    assert report_main(["-d", "777", "-tr", "A", "B", "-f", "0", "1", "-b", "A", "-o", str(out),
                        "--brats-config", "gli"]) == 0
    summary = _summary(out)
    # B predicts every case exactly: one lesion per region, matched, Dice 1, HD95 0.
    for region in ("whole tumor", "tumor core", "enhancing tumor", "netc", "snfh"):
        exact = summary[("B", region, "lw_dice")]
        assert float(exact["mean"]) == 1.0 and exact["n_cases"] == "6" and float(summary[("B", region, "lw_hd95")]["mean"]) == 0
    shifted = summary[("A", "whole tumor", "lw_dice")]
    assert 0.5 < float(shifted["mean"]) < 1 and float(shifted["se_cases"]) > 0
    assert float(summary[("B", "whole tumor", "lw_dice")]["wilcoxon_p"]) == pytest.approx(2 / 64)  # better on all 6
    assert summary[("B", "whole tumor", "global_dice")]["mean_over_folds"] == "1.0"
    assert ("B", "netc", "dice") not in summary  # label groups of the package only: no per-region metrics
    with open(out / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 6 * 5 and {r["region"] for r in rows if r["dice"] == ""} == {"netc", "snfh"}
    report = (out / "report.md").read_text()
    assert "## Official BraTS metrics" in report and "brats-parse-metrics seg" in report
    assert "| B | enhancing tumor | 6 | 100.00 ± 0.00 | 0.00 ± 0.00 | 100.00 ± 0.00 | 0.00 ± 0.00 |" in report
    assert "## Official: Paired comparison with A" in report
    package_output = json.loads((out / "brats_gli.json").read_text())
    assert sorted(package_output) == ["A fold 0", "A fold 1", "B fold 0", "B fold 1"]
    assert [m["subject_name"] for m in package_output["B fold 1"]["metrics"]] == CASES[3:]


def test_official_values_missing_or_infinite_in_the_statistics():
    nan, inf = float("nan"), float("inf")
    rows = [{"trainer": t, "fold": None, "case": c, "region": "et", "dice": 1.0, "iou": 1.0, "hd95": 0.0, "asd": 0.0,
             "lw_dice": d, "lw_hd95": h, "global_dice": d, "global_hd95": h}
            for t, c, d, h in (("A", "x", 0.5, 2.0), ("A", "y", nan, nan), ("A", "z", 0.0, inf),
                               ("B", "x", 1.0, 0.0), ("B", "y", 1.0, 0.0), ("B", "z", 0.0, inf))]
    summary = {(s["trainer"], s["metric"]): s for s in summarise_rows(rows, "B")}
    assert summary[("A", "lw_dice")]["n_cases"] == 2 and summary[("A", "lw_dice")]["mean"] == 0.25  # y left out
    assert summary[("A", "lw_hd95")]["mean"] == inf
    # paired on x and z only; z is infinite for both: difference 0
    assert summary[("A", "lw_hd95")]["mean_difference"] == 1.0 and summary[("A", "dice")]["n_cases"] == 3


def test_separate_test_set_folders_must_hold_the_same_cases(fake_nnunet, capsys):
    import shutil

    pre = fake_nnunet / "nnUNet_preprocessed" / NAME
    validation = fake_nnunet / "nnUNet_results" / NAME / "B__nnUNetPlans__3d_fullres" / "fold_1" / "validation"
    partial = fake_nnunet / "partial"
    shutil.copytree(validation, partial)
    (partial / "case_4.nii.gz").unlink()
    assert report_main(["--predictions", f"B={validation}", f"A={partial}", "--references",
                        str(pre / "gt_segmentations"), "-j", str(pre / "dataset.json"), "-o", str(fake_nnunet / "r")]) == 2
    error = capsys.readouterr().err.strip()  # before any evaluation
    assert error.count("\n") == 0 and "1 prediction(s) missing in" in error and "(first: case_4.nii.gz); run: " in error
