"""Challenge export: nnU-Net labels -> BraTS labels and names, verified by a round trip through the converter."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.converters.brats import convert_brats
from nnunet_ext.errors import NnunetExtError
from nnunet_ext.workflow.export import export_brats, main as export_main
from test_converters import brats_labels, write_brats_case


def _read(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize("layout, values", [("2020", (1, 2, 4)), ("2023", (1, 2, 3))])
def test_round_trip_gives_the_original_labels(tmp_path, layout, values):
    source = tmp_path / "training"
    cases = [f"BraTS20_Training_{i:03d}" if layout == "2020" else f"BraTS-GLI-{i:05d}-000" for i in (1, 2, 3)]
    for i, case in enumerate(cases):
        write_brats_case(source, case, brats_labels(i, values), layout=layout)
    folder = convert_brats(source, 501, raw_root=tmp_path / "raw")
    # What nnUNetv2_predict writes: <case>.nii.gz label maps plus a copy of dataset.json.
    predictions = tmp_path / "predictions"
    shutil.copytree(folder / "labelsTr", predictions)
    shutil.copy(folder / "dataset.json", predictions / "dataset.json")

    files = export_brats(predictions, tmp_path / "submission")
    assert [f.name for f in files] == [f"{case}.nii.gz" for case in cases]
    for case in cases:
        suffix = "_seg" if layout == "2020" else "-seg"
        original = sitk.ReadImage(str(source / case / f"{case}{suffix}.nii.gz"))
        exported = sitk.ReadImage(str(tmp_path / "submission" / f"{case}.nii.gz"))
        assert np.array_equal(sitk.GetArrayFromImage(exported), sitk.GetArrayFromImage(original))
        assert exported.GetSpacing() == original.GetSpacing() and exported.GetOrigin() == original.GetOrigin()


def test_convention_option_and_errors(tmp_path, capsys):
    predictions = tmp_path / "ensemble"
    predictions.mkdir()
    labels = np.array([[[0, 1, 2, 3]]], np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(predictions / "BraTS20_Validation_001.nii.gz"))
    with pytest.raises(NnunetExtError, match="pass --convention 2020 or 2023"):
        export_brats(predictions, tmp_path / "out")
    export_brats(predictions, tmp_path / "out", convention="2020")
    assert _read(tmp_path / "out" / "BraTS20_Validation_001.nii.gz").tolist() == [[[0, 2, 1, 4]]]
    assert export_main(["-i", str(predictions), "-o", str(tmp_path / "out"), "--convention", "2023"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert export_main(["-i", str(predictions), "-o", str(tmp_path / "out"), "--convention", "2023",
                        "--overwrite"]) == 0
    assert _read(tmp_path / "out" / "BraTS20_Validation_001.nii.gz").tolist() == [[[0, 2, 1, 3]]]
    sitk.WriteImage(sitk.GetImageFromArray(labels + 4), str(predictions / "BraTS20_Validation_002.nii.gz"))
    with pytest.raises(NnunetExtError, match=r"BraTS20_Validation_002.nii.gz has label values \[4, 5, 6, 7\]"):
        export_brats(predictions, tmp_path / "out2", convention="2020")
    assert not (tmp_path / "out2").exists()


def _same_header(a, b) -> bool:
    """Every NIfTI-1 header field equal in value (NaN equal to NaN, -0.0 to 0.0)."""
    import nibabel

    a, b = nibabel.load(str(a)).header, nibabel.load(str(b)).header
    return list(a.keys()) == list(b.keys()) and all(
        np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a.keys())


def test_2023_round_trip_is_exact_header_included(tmp_path):
    """BraTS 2023+ labels in, nnU-Net, exported back: same voxels, dtype and NIfTI header (oblique geometry)."""
    source = tmp_path / "training"
    geometry = {"spacing": (0.9, 1.1, 1.3), "origin": (-90.5, 12.25, -3.0),
                "direction": (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)}
    cases = [f"BraTS-GLI-{i:05d}-000" for i in (7, 8)]
    for i, case in enumerate(cases):
        folder = write_brats_case(source, case, brats_labels(i, (1, 2, 3)), layout="2023")
        for path in folder.iterdir():  # the same oblique geometry for every file of the case
            image = sitk.ReadImage(str(path))
            image.SetSpacing(geometry["spacing"]), image.SetOrigin(geometry["origin"]), image.SetDirection(geometry["direction"])
            sitk.WriteImage(image, str(path))
    folder = convert_brats(source, 502, raw_root=tmp_path / "raw")
    predictions = tmp_path / "predictions"
    shutil.copytree(folder / "labelsTr", predictions)
    shutil.copy(folder / "dataset.json", predictions / "dataset.json")
    export_brats(predictions, tmp_path / "submission")  # convention 2023, recorded by the converter
    for case in cases:
        original, exported = source / case / f"{case}-seg.nii.gz", tmp_path / "submission" / f"{case}.nii.gz"
        assert np.array_equal(_read(exported), _read(original)) and _read(exported).dtype == _read(original).dtype
        assert _same_header(exported, original)
        image = sitk.ReadImage(str(exported))
        assert image.GetDirection() == geometry["direction"] and image.GetOrigin() == pytest.approx(geometry["origin"])


def test_export_is_scored_by_the_official_package(tmp_path, capsys):
    pytest.importorskip("brats_evaluation", reason="brats-evaluation is not installed (scripts/setup_env.sh installs it)")
    from nnunet_ext.evaluation import official_folder_metrics
    from test_brats_metrics import BRATS_JSON, hand_case, write_case

    reference, prediction = hand_case()
    for case, shift in (("BraTS-GLI-00001-000", 0), ("BraTS-GLI-00002-000", 1)):
        write_case(tmp_path / "refs", case, reference)
        write_case(tmp_path / "pred", case, np.roll(prediction, shift, axis=1))
    direct, _ = official_folder_metrics(tmp_path / "pred", tmp_path / "refs", BRATS_JSON, "gli")
    for convention in ("2020", "2023"):
        csv_file = tmp_path / f"official_{convention}.csv"
        assert export_main(["-i", str(tmp_path / "pred"), "-o", str(tmp_path / f"sub_{convention}"), "--convention",
                            convention, "--references", str(tmp_path / "refs"), "--brats-config", "gli",
                            "--evaluation-csv", str(csv_file)]) == 0
        assert f"| sub_{convention} | enhancing tumor | 2 | " in capsys.readouterr().out
        with open(csv_file) as handle:
            exported = list(__import__("csv").DictReader(handle))
        # the same numbers from either convention as from the nnU-Net files themselves
        def key(row):
            return [row["case"], row["region"]] + [str(float(row[m])) for m in ("lw_dice", "lw_hd95", "global_dice",
                                                                                  "global_hd95", "tp", "fp", "fn")]
        assert [key(r) for r in exported] == [key(r) for r in direct] and len(direct) == 2 * 5
        assert csv_file.with_suffix(".brats_gli.json").is_file()
    (tmp_path / "refs" / "BraTS-GLI-00002-000.nii.gz").unlink()
    assert export_main(["-i", str(tmp_path / "pred"), "-o", str(tmp_path / "sub3"), "--convention", "2023",
                        "--references", str(tmp_path / "refs"), "--brats-config", "gli"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "1 exported case(s) have no reference" in error and "BraTS-GLI-00002-000" in error


def test_export_evaluation_arguments(tmp_path, capsys):
    predictions = tmp_path / "pred"
    predictions.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 2, 2), np.uint8)), str(predictions / "c.nii.gz"))
    base = ["-i", str(predictions), "-o", str(tmp_path / "out"), "--convention", "2023"]
    assert export_main(base + ["--references", str(predictions)]) == 2
    assert "needs both --references FOLDER and --brats-config" in capsys.readouterr().err
    if __import__("importlib").util.find_spec("brats_evaluation") is not None:
        assert export_main(base + ["--references", str(tmp_path / "nope"), "--brats-config", "gli"]) == 2
        assert "reference folder" in capsys.readouterr().err and not (tmp_path / "out").exists()  # checked first
        assert export_main(base + ["--references", str(predictions), "--brats-config", "ped"]) == 2
        assert "--brats-config ped expects BraTS-PEDs labels" in capsys.readouterr().err
