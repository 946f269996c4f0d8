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
