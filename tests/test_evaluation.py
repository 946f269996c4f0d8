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
