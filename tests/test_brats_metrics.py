"""Official BraTS metrics (``--brats-config``): hand-computable lesion-wise values, labels, missing package."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.labels import BRATS_REGION_LABELS as REGION_LABELS
from nnunet_ext.errors import NnunetExtError

BRATS_JSON = {"labels": REGION_LABELS, "regions_class_order": [1, 2, 3], "file_ending": ".nii.gz"}
SHAPE = (20, 30, 40)  # numpy (z, y, x), 1 mm voxels


def package():
    return pytest.importorskip("brats_evaluation", reason="brats-evaluation is not installed (scripts/setup_env.sh "
                                                          "installs it)")


def hand_case() -> tuple[np.ndarray, np.ndarray]:
    """(reference, prediction) in nnU-Net's BraTS labels (1 edema, 2 core, 3 enhancing).

    Reference: enhancing lesions A and B and a core (NETC) lesion C, 4x4x4 voxels each, apart.
    Prediction: A moved by one voxel along x, B and C missed, an 8-voxel enhancing false positive.
    """
    reference, prediction = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    reference[2:6, 2:6, 2:6] = 3  # A
    reference[12:16, 20:24, 30:34] = 3  # B
    reference[12:16, 2:6, 2:6] = 2  # C
    prediction[2:6, 2:6, 3:7] = 3  # A, one voxel on
    prediction[14:16, 2:4, 30:32] = 3  # false positive
    return reference, prediction


def write_case(folder, case, labels, spacing=(1.0, 1.0, 1.0)):
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(folder / f"{case}.nii.gz"))


@pytest.fixture
def hand_folders(tmp_path):
    reference, prediction = hand_case()
    write_case(tmp_path / "ref", "case_000", reference)
    write_case(tmp_path / "pred", "case_000", prediction)
    return tmp_path / "pred", tmp_path / "ref"


def by_region(rows):
    return {r["region"]: r for r in rows}


def test_lesion_wise_values_equal_the_hand_values(hand_folders):
    package()
    from nnunet_ext.evaluation import official_folder_metrics

    # Lesion A: 64 voxels each, 4x4x3 = 48 overlap -> Dice 2*48/128 = 0.75. Every border voxel of one
    # cube lies on the other's border or 1 voxel from it, 20 of each cube's 56 at 1 (more than 5 %),
    # so the 95th percentile of the pooled distances is 1. Whole region (enhancing): 48 overlap,
    # 64 + 64 reference and 64 + 8 predicted voxels -> Dice 96/200 = 0.48.
    rows, summary = official_folder_metrics(*hand_folders, BRATS_JSON, "gli")
    regions = by_region(rows)
    assert list(regions) == ["whole tumor", "tumor core", "enhancing tumor", "snfh", "netc"]  # no rc: label 4 cannot occur
    et = regions["enhancing tumor"]
    # gli (parser "seg"): the mean over matched lesions; missed B and the false positive do not enter.
    assert (et["lw_dice"], et["lw_hd95"]) == (0.75, 1.0)
    assert (et["tp"], et["fp"], et["fn"]) == (1, 1, 1)
    assert et["global_dice"] == pytest.approx(0.48)
    for region in ("tumor core", "whole tumor"):  # C joins them as a third lesion, also missed
        assert (regions[region]["lw_dice"], regions[region]["lw_hd95"], regions[region]["fn"]) == (0.75, 1.0, 2)
    # netc: lesion C only, nothing predicted: Dice 0, lesion-wise HD95 infinite, whole-region HD95 373.
    netc = regions["netc"]
    assert (netc["lw_dice"], netc["lw_hd95"], netc["global_dice"], netc["global_hd95"]) == (0.0, math.inf, 0.0, 373.0)
    # snfh (edema): no lesion in either file -> no value.
    assert all(math.isnan(regions["snfh"][m]) for m in ("lw_dice", "lw_hd95", "global_dice", "global_hd95"))
    assert summary["missings"] == [] and summary["metrics"][0]["subject_name"] == "case_000"
    assert summary["metrics"][0]["et"]["tp"] == 1


def test_mets_penalises_missed_and_false_positive_lesions(hand_folders):
    package()
    from nnunet_ext.evaluation import official_folder_metrics

    rows, _ = official_folder_metrics(*hand_folders, BRATS_JSON, "mets")
    regions = by_region(rows)
    assert list(regions) == ["whole tumor", "tumor core", "enhancing tumor"]  # mets: et, tc, wt (and rc)
    # Lesions of at least 20 mm^3 (all three are 64) and every false positive; a missed or false
    # positive lesion counts Dice 0 and HD95 373: enhancing (A, B, FP) -> 0.75/3 and (1 + 2*373)/3.
    assert regions["enhancing tumor"]["lw_dice"] == pytest.approx(0.25)
    assert regions["enhancing tumor"]["lw_hd95"] == pytest.approx(249.0)
    # tumour core and whole tumour (A, B, C, FP) -> 0.75/4 and (1 + 3*373)/4.
    assert regions["tumor core"]["lw_dice"] == pytest.approx(0.1875)
    assert regions["whole tumor"]["lw_hd95"] == pytest.approx(280.0)


def test_label_groups_of_the_glioma_configurations_are_our_regions():
    brats_evaluation = package()
    from brats_evaluation.evaluation import BUNDLED_CONFIGS
    from panoptica import Panoptica_Evaluator

    from nnunet_ext.brats_metrics import CONFIGS, GLIOMA_LABEL_CONFIGS, _group_labels, dataset_labels

    assert set(CONFIGS) == set(BUNDLED_CONFIGS)
    for config in GLIOMA_LABEL_CONFIGS:
        groups = _group_labels(Panoptica_Evaluator.load_from_config(str(brats_evaluation.config_path(config))))
        names = dataset_labels(BRATS_JSON, config).names
        assert {names[groups[g]] for g in ("wt", "tc", "et")} == {"whole tumor", "tumor core", "enhancing tumor"}
        assert all(labels <= {1, 2, 3, 4} for labels in groups.values())


def test_configurations_with_other_labels():
    from nnunet_ext.brats_metrics import dataset_labels

    with pytest.raises(NnunetExtError, match=r"--brats-config ped expects BraTS-PEDs labels .* use one of gli, mets"):
        dataset_labels(BRATS_JSON, "ped")
    with pytest.raises(NnunetExtError, match="this region dataset is neither"):
        dataset_labels({"labels": {"background": 0, "a": [1, 2], "b": 2}, "regions_class_order": [1, 2]}, "gli")
    ped = {"labels": {"background": 0, "ET": 1, "NET": 2, "CC": 3, "ED": 4}, "file_ending": ".nii.gz"}
    labels = dataset_labels(ped, "ped")  # a label dataset already in the challenge's labels: as it is
    assert labels.lookup is None and labels.names[frozenset({1})] == "ET"


def test_label_dataset_is_evaluated_as_it_is(tmp_path):
    package()
    from nnunet_ext.evaluation import official_folder_metrics

    reference, prediction = hand_case()  # read as BraTS-PEDs labels: 3 = CC, 2 = NET
    write_case(tmp_path / "ref", "case_000", reference)
    write_case(tmp_path / "pred", "case_000", prediction)
    ped = {"labels": {"background": 0, "ET": 1, "NET": 2, "CC": 3, "ED": 4}, "file_ending": ".nii.gz"}
    regions = by_region(official_folder_metrics(tmp_path / "pred", tmp_path / "ref", ped, "ped")[0])
    assert (regions["CC"]["lw_dice"], regions["CC"]["tp"], regions["CC"]["fn"]) == (0.75, 1, 1)
    assert regions["NET"]["fn"] == 1 and math.isnan(regions["ET"]["lw_dice"])


def test_package_dice_equals_ours_on_a_synthetic_case(tmp_path):
    """The label mapping: where both are defined, the package's whole-region Dice is our Dice."""
    package()
    from nnunet_ext.evaluation import evaluate_folders, official_folder_metrics
    from nnunet_ext.synthetic import generate_dataset

    folder = generate_dataset("brats", 991, num_cases=2, num_test_cases=0, shape=(40, 40, 32), seed=3,
                              raw_root=tmp_path / "raw")
    dataset_json = json.loads((folder / "dataset.json").read_text())
    for path in (folder / "labelsTr").glob("*.nii.gz"):
        image = sitk.ReadImage(str(path))
        moved = np.roll(sitk.GetArrayFromImage(image), 1, axis=2)
        prediction = sitk.GetImageFromArray(moved)
        prediction.CopyInformation(image)
        (tmp_path / "pred").mkdir(exist_ok=True)
        sitk.WriteImage(prediction, str(tmp_path / "pred" / path.name))
    ours = {(m.case, m.region): m.dice for m in evaluate_folders(tmp_path / "pred", folder / "labelsTr", dataset_json)}
    official, _ = official_folder_metrics(tmp_path / "pred", folder / "labelsTr", dataset_json, "gli")
    compared = [(ours[(o["case"], o["region"])], o["global_dice"]) for o in official
                if (o["case"], o["region"]) in ours and not math.isnan(o["global_dice"])]
    assert len(compared) >= 5 and all(0 < a < 1 for a, _ in compared)
    assert [a for a, _ in compared] == pytest.approx([b for _, b in compared])


def test_evaluate_cli_writes_the_official_columns(hand_folders, tmp_path, capsys):
    package()
    from nnunet_ext.evaluation import main

    (tmp_path / "dataset.json").write_text(json.dumps(BRATS_JSON))
    out = tmp_path / "metrics.csv"
    assert main(["-p", str(hand_folders[0]), "-r", str(hand_folders[1]), "-j", str(tmp_path / "dataset.json"),
                 "--brats-config", "gli", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Official BraTS metrics (brats-evaluation, config gli)" in printed
    # the report's table (mean ± standard error; one case has no standard error)
    assert "| pred | enhancing tumor | 1 | 75.00 | 1.00 | 48.00 |" in printed
    assert "| pred | netc | 1 | 0.00 | inf |" in printed
    with open(out) as handle:
        rows = {r["region"]: r for r in csv.DictReader(handle)}
    assert float(rows["enhancing tumor"]["dice"]) == pytest.approx(0.48) and rows["enhancing tumor"]["lw_dice"] == "0.75"
    assert rows["netc"]["dice"] == "" and rows["netc"]["lw_hd95"] == "inf"
    assert json.loads(out.with_suffix(".brats_gli.json").read_text())["metrics"][0]["subject_name"] == "case_000"
    # A missing prediction folder: one line naming it.
    assert main(["-p", str(tmp_path / "typo"), "-r", str(hand_folders[1]), "-j", str(tmp_path / "dataset.json"),
                 "--brats-config", "gli"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "prediction folder" in error and "typo does not exist" in error


def test_without_the_package_the_option_says_how_to_install_it(hand_folders, tmp_path, capsys, monkeypatch):
    from nnunet_ext.evaluation import main

    monkeypatch.setitem(sys.modules, "brats_evaluation", None)  # import fails as if not installed
    (tmp_path / "dataset.json").write_text(json.dumps(BRATS_JSON))
    args = ["-p", str(hand_folders[0]), "-r", str(hand_folders[1]), "-j", str(tmp_path / "dataset.json")]
    assert main(args + ["--brats-config", "gli"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "pip install brats-evaluation==0.0.10 panoptica==2.1.7" in error
    assert main(args) == 0  # everything else works
    assert "| pred | enhancing tumor | 1 | 48.00 |" in capsys.readouterr().out


def test_brats_sample_case(tmp_path, sample_data):
    """A real case: our Dice equals the package's, and identical files give lesion-wise Dice 1, HD95 0."""
    package()
    from nnunet_ext.converters.brats import convert_brats
    from nnunet_ext.evaluation import evaluate_folders, official_folder_metrics

    sample = sample_data("brats2015_sample")
    subset = tmp_path / "sample"
    subset.mkdir()
    case = "brats_2013_pat0003_1"
    (subset / case).symlink_to(sample / case, target_is_directory=True)
    folder = convert_brats(subset, 990, "Sample", raw_root=tmp_path / "raw")
    dataset_json = json.loads((folder / "dataset.json").read_text())
    reference = sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz"))
    moved = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(reference), 2, axis=0))
    moved.CopyInformation(reference)
    (tmp_path / "pred").mkdir()
    sitk.WriteImage(moved, str(tmp_path / "pred" / f"{case}.nii.gz"))
    ours = {m.region: m.dice for m in evaluate_folders(tmp_path / "pred", folder / "labelsTr", dataset_json)}
    official = by_region(official_folder_metrics(tmp_path / "pred", folder / "labelsTr", dataset_json, "gli")[0])
    assert [official[r]["global_dice"] for r in ours] == pytest.approx(list(ours.values()))
    same = by_region(official_folder_metrics(folder / "labelsTr", folder / "labelsTr", dataset_json, "gli")[0])
    assert all((r["lw_dice"], r["lw_hd95"], r["fp"], r["fn"]) == (1.0, 0.0, 0, 0) for r in same.values())


def test_no_overlap_and_anisotropic_spacing_as_the_package_measures_them(tmp_path, capsys):
    """What docs/how-to/brats-metrics.md states: no overlap -> HD95 373 whatever the distance; on
    anisotropic voxels global HD95 in voxels, lesion-wise HD95 with the spacing axes reversed."""
    package()
    from nnunet_ext.evaluation import evaluate_folders, official_folder_metrics

    reference = np.zeros(SHAPE, np.uint8)
    reference[4:10, 4:10, 4:10] = 1  # edema only
    apart = np.zeros(SHAPE, np.uint8)
    apart[4:10, 4:10, 11:17] = 1  # the same cube, one voxel beyond its edge
    write_case(tmp_path / "ref", "apart", reference)
    write_case(tmp_path / "pred", "apart", apart)
    snfh = by_region(official_folder_metrics(tmp_path / "pred", tmp_path / "ref", BRATS_JSON, "gli")[0])["snfh"]
    assert (snfh["tp"], snfh["fp"], snfh["fn"], snfh["lw_hd95"], snfh["global_hd95"]) == (0, 1, 1, math.inf, 373.0)
    ours = {m.region: m.hd95 for m in evaluate_folders(tmp_path / "pred", tmp_path / "ref", BRATS_JSON)}
    assert ours["whole tumor"] == pytest.approx(7.0)  # MONAI: the real distance

    spacing = (1.0, 1.0, 3.0)  # SimpleITK order (x, y, z); numpy axes are (z, y, x)
    for axis, name in ((0, "along_z"), (2, "along_x")):
        write_case(tmp_path / "ref3", name, reference, spacing)
        write_case(tmp_path / "pred3", name, np.roll(reference, 2, axis=axis), spacing)
    capsys.readouterr()
    official = official_folder_metrics(tmp_path / "pred3", tmp_path / "ref3", BRATS_JSON, "gli")[0]
    assert "spacing (1.0, 1.0, 3.0) is not isotropic" in capsys.readouterr().err
    wt = {r["case"]: r for r in official if r["region"] == "whole tumor"}
    ours = {m.case: m.hd95 for m in evaluate_folders(tmp_path / "pred3", tmp_path / "ref3", BRATS_JSON)
            if m.region == "whole tumor"}
    assert (ours["along_z"], wt["along_z"]["global_hd95"], wt["along_z"]["lw_hd95"]) == pytest.approx((6.0, 2.0, 2.0))
    assert (ours["along_x"], wt["along_x"]["global_hd95"], wt["along_x"]["lw_hd95"]) == pytest.approx((2.0, 2.0, 6.0))
