"""Metrics on hand-computable masks and the stated empty-mask convention."""

import math

import numpy as np
import pytest

from nnunet_ext.evaluation import binary_metrics, summarise_rows
from nnunet_ext.labels import region_definitions


def cube(shape, lo, hi):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return mask


def test_dice_iou_hand_computed():
    reference = cube((10, 10, 10), (2, 2, 2), (6, 6, 6))  # 64 voxels
    prediction = cube((10, 10, 10), (2, 2, 2), (6, 6, 4))  # 32 voxels, all inside the reference
    m = binary_metrics(prediction, reference, (1.0, 1.0, 1.0))
    assert m["dice"] == pytest.approx(2 * 32 / 96)
    assert m["iou"] == pytest.approx(32 / 64)


def test_shifted_cube_surface_distances_scale_with_spacing():
    reference = cube((20, 20, 20), (5, 5, 5), (12, 12, 12))
    prediction = cube((20, 20, 20), (7, 5, 5), (14, 12, 12))  # shifted by 2 voxels along axis 0
    iso = binary_metrics(prediction, reference, (1.0, 1.0, 1.0))
    assert iso["hd95"] == pytest.approx(2.0)
    aniso = binary_metrics(prediction, reference, (3.0, 1.0, 1.0))
    assert aniso["hd95"] == pytest.approx(6.0)
    assert 0 < iso["asd"] < iso["hd95"]


def test_identical_masks_are_perfect():
    mask = cube((12, 12, 12), (3, 3, 3), (9, 8, 7))
    m = binary_metrics(mask, mask, (1.0, 1.0, 2.0))
    assert m == {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "asd": 0.0}


def test_empty_mask_convention():
    empty = np.zeros((240, 240, 155), bool)
    assert binary_metrics(empty, empty, (1.0, 1.0, 1.0)) == {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "asd": 0.0}
    some = cube(empty.shape, (10, 10, 10), (20, 20, 20))
    for pred, ref in ((empty, some), (some, empty)):
        m = binary_metrics(pred, ref, (1.0, 1.0, 1.0))
        assert m["dice"] == 0.0 and m["iou"] == 0.0
        assert m["hd95"] == pytest.approx(373.13, abs=0.01) == m["asd"]


def test_2d_image_with_singleton_axis():
    reference = cube((1, 16, 16), (0, 4, 4), (1, 10, 10))
    prediction = cube((1, 16, 16), (0, 4, 5), (1, 10, 11))
    m = binary_metrics(prediction, reference, (999.0, 1.0, 1.0))
    assert m["hd95"] == pytest.approx(1.0)


def test_region_definitions_for_regions_and_labels():
    brats = {"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]},
             "regions_class_order": [1, 2, 3]}
    assert region_definitions(brats) == {"whole tumor": (1, 2, 3), "tumor core": (2, 3), "enhancing tumor": (3,)}
    labels = {"labels": {"background": 0, "liver": 1, "tumour": 2}}
    assert region_definitions(labels) == {"liver": (1,), "tumour": (2,)}


def test_summary_mean_and_se():
    # two cases: the standard error (ddof 1) equals half their difference
    rows = [{"trainer": "t", "fold": None, "case": c, "region": "wt", "dice": d, "iou": i, "hd95": h, "asd": a}
            for c, d, i, h, a in (("a", 1.0, 1.0, 0.0, 0.0), ("b", 0.5, 0.25, 2.0, 1.0))]
    summary = {s["metric"]: (s["mean"], s["se_cases"]) for s in summarise_rows(rows, None)}
    assert summary["dice"] == pytest.approx((0.75, 0.25))
    assert summary["hd95"][0] == 1.0 and math.isclose(summary["hd95"][1], 1.0)


def test_missing_folders_are_named(tmp_path, capsys):
    import SimpleITK as sitk

    from nnunet_ext.errors import NnunetExtError
    from nnunet_ext.evaluation import evaluate_folders, main

    references = tmp_path / "labelsTs"
    references.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.uint8)), str(references / "case_000.nii.gz"))
    dataset_json = {"labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz"}
    missing = tmp_path / "predictions_typo"
    with pytest.raises(NnunetExtError, match=r"^prediction folder .*predictions_typo does not exist; pass the -o folder"):
        evaluate_folders(missing, references, dataset_json)
    with pytest.raises(NnunetExtError, match=r"^reference folder .*no_refs does not exist"):
        evaluate_folders(references, tmp_path / "no_refs", dataset_json)
    (tmp_path / "dataset.json").write_text(__import__("json").dumps(dataset_json))
    assert main(["-p", str(missing), "-r", str(references), "-j", str(tmp_path / "dataset.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "does not exist" in error and "have no prediction" not in error


def test_a_prediction_off_its_references_grid_is_refused_not_scored(tmp_path):
    """A 1 x 32 x 24 prediction broadcasts against a 32 x 32 x 24 reference: scoring it would give a silent
    Dice 0; a shifted origin or another spacing is refused the same way, and so is an unreadable file."""
    import SimpleITK as sitk

    from nnunet_ext.errors import NnunetExtError
    from nnunet_ext.evaluation import evaluate_folders

    dataset_json = {"labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz"}
    references, predictions = tmp_path / "gt", tmp_path / "pred"
    references.mkdir()
    predictions.mkdir()
    labels = np.zeros((24, 32, 32), np.uint8)
    labels[8:16, 8:16, 8:16] = 1
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(references / "case_000.nii.gz"))

    def predict(array, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        sitk.WriteImage(image, str(predictions / "case_000.nii.gz"))

    predict(labels)
    assert evaluate_folders(predictions, references, dataset_json)[0].dice == 1.0
    for bad, what in ((dict(array=labels[:, :1]), r"shape \(24, 1, 32\)"),
                      (dict(array=labels, spacing=(1.0, 1.0, 2.0)), r"spacing \(2.0, 1.0, 1.0\) in array order"),
                      (dict(array=labels, origin=(0.0, 0.0, 5.0)), r"origin \(0.0, 0.0, 5.0\)")):
        predict(**bad)
        with pytest.raises(NnunetExtError, match=rf"^case case_000: the prediction .*{what}.*not on its reference's grid"):
            evaluate_folders(predictions, references, dataset_json)
    (predictions / "case_000.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(NnunetExtError, match=r"^case case_000: the prediction .* cannot be read") as error:
        evaluate_folders(predictions, references, dataset_json)
    assert "\n" not in str(error.value)


def _write(array, path, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))


def test_the_ignore_label_is_masked_as_nnunet_masks_it(tmp_path):
    """nnU-Net's compute_metrics leaves out the voxels where the reference holds the ignore label."""
    from nnunet_ext.evaluation import evaluate_folders

    dataset_json = {"labels": {"background": 0, "lesion": 1, "ignore": 2}, "file_ending": ".nii.gz"}
    reference = np.zeros((1, 4, 4), np.uint8)
    reference[0, 0:2] = 1  # 8 lesion voxels
    reference[0, 2] = 2  # 4 ignored voxels
    inside_ignored = reference.copy()
    inside_ignored[0, 2] = 1  # 4 more lesion voxels, all where the reference says "ignore"
    outside = reference.copy()
    outside[0, 3] = 1  # 4 more lesion voxels on the reference's background
    _write(reference, tmp_path / "gt" / "a.nii.gz")
    _write(reference, tmp_path / "gt" / "b.nii.gz")
    _write(inside_ignored, tmp_path / "pred" / "a.nii.gz")
    _write(outside, tmp_path / "pred" / "b.nii.gz")
    scores = {m.case: m for m in evaluate_folders(tmp_path / "pred", tmp_path / "gt", dataset_json)}
    assert [m.region for m in scores.values()] == ["lesion", "lesion"]  # the ignore label is no region
    assert (scores["a"].dice, scores["a"].iou, scores["a"].hd95) == (1.0, 1.0, 0.0)  # unmasked: Dice 16/20
    assert scores["b"].dice == pytest.approx(2 * 8 / (12 + 8)) and scores["b"].iou == pytest.approx(8 / 12)
    assert scores["b"].hd95 == pytest.approx(2.0)


def test_a_fold_validation_folder_against_all_references_scores_its_cases(tmp_path, capsys):
    """A fold's validation/ folder holds that fold's cases, gt_segmentations all of them: the predictions are scored;
    a prediction without a reference is still an error."""
    import json

    from nnunet_ext.errors import NnunetExtError
    from nnunet_ext.evaluation import evaluate_folders, main

    dataset_json = {"labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz"}
    (tmp_path / "dataset.json").write_text(json.dumps(dataset_json))
    gt, validation = tmp_path / "gt_segmentations", tmp_path / "fold_0" / "validation"
    for i in range(6):
        _write(cube((8, 8, 8), (2, 2, 2), (5, 5, 4 + i % 3)), gt / f"case_{i}.nii.gz")
    for i in (1, 4):
        _write(cube((8, 8, 8), (2, 2, 2), (5, 5, 4 + i % 3)), validation / f"case_{i}.nii.gz")
    (validation / "summary.json").write_text("{}")  # nnU-Net's own summary beside the predictions
    assert [(m.case, m.dice) for m in evaluate_folders(validation, gt, dataset_json)] == [("case_1", 1.0),
                                                                                          ("case_4", 1.0)]
    csv_file = tmp_path / "metrics.csv"
    assert main(["-p", str(validation), "-r", str(gt), "-j", str(tmp_path / "dataset.json"), "-o", str(csv_file)]) == 0
    captured = capsys.readouterr()
    assert "| validation | lesion | 2 | 100.00 ± 0.00 |" in captured.out
    assert "evaluating 2 case(s) of 6 in" in captured.err and "(those predicted)" in captured.err
    assert csv_file.read_text().splitlines()[0] == "trainer,fold,case,region,dice,iou,hd95,asd"
    _write(cube((8, 8, 8), (2, 2, 2), (5, 5, 5)), validation / "case_9.nii.gz")
    with pytest.raises(NnunetExtError, match=r"^1 case\(s\) have no reference segmentation in .*gt_segmentations "
                                             r"\(first: case_9.nii.gz\)"):
        evaluate_folders(validation, gt, dataset_json)


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_a_broadcastable_wrong_shape_or_an_unreadable_reference_is_one_line(tmp_path, capsys, command):
    """Both commands refuse a 1 x 32 x 24 prediction of a 32 x 32 x 24 reference (it would broadcast and score
    Dice 0), naming the case and both geometries, and a reference that is no NIfTI file, in one line."""
    import json

    from nnunet_ext.evaluation import main as evaluate_main
    from nnunet_ext.workflow.report import main as report_main

    dataset_json = {"labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz"}
    (tmp_path / "dataset.json").write_text(json.dumps(dataset_json))
    reference = cube((32, 32, 24), (8, 8, 8), (20, 20, 16))
    _write(reference, tmp_path / "gt" / "case_000.nii.gz")
    _write(reference[:1], tmp_path / "pred" / "case_000.nii.gz")

    def run() -> str:
        if command == "evaluate":
            status = evaluate_main(["-p", str(tmp_path / "pred"), "-r", str(tmp_path / "gt"),
                                    "-j", str(tmp_path / "dataset.json")])
        else:
            status = report_main(["--predictions", f"A={tmp_path / 'pred'}", "--references", str(tmp_path / "gt"),
                                  "-j", str(tmp_path / "dataset.json"), "-o", str(tmp_path / "report")])
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert status == 2 and error.startswith("error: case case_000: ")
        return error

    error = run()
    assert ("(shape (1, 32, 24), spacing (1.0, 1.0, 1.0) in array order, origin (0.0, 0.0, 0.0)) is not on its "
            "reference's grid (shape (32, 32, 24), spacing (1.0, 1.0, 1.0) in array order, origin (0.0, 0.0, 0.0))"
            in error)
    assert not (tmp_path / "report").exists()  # nothing scored, nothing written
    (tmp_path / "gt" / "case_000.nii.gz").write_bytes(b"P2\n2 2\n255\n0 0 0 0\n")  # a PGM image, not NIfTI
    error = run()
    assert f"the reference {tmp_path / 'gt' / 'case_000.nii.gz'} cannot be read" in error
