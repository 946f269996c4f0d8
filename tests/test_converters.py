"""BraTS and LGG converters: label remapping, bad-case reporting, atomic output, the real samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_ext.converters.brats import convert_brats, convert_brats_images, main as brats_main
from nnunet_ext.converters.lgg import convert_lgg, read_patient_list
from nnunet_ext.errors import NnunetExtError

BRATS2015 = "brats2015_sample"  # sample folders, found by conftest's sample_data fixture
KAGGLE_3M = "lgg_kaggle_3m_sample/kaggle_3m"
SHAPE = (12, 10, 8)  # numpy (z, y, x)


def _image(array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def brats_labels(seed: int, values=(1, 2, 4)) -> np.ndarray:
    """A label map using every value of ``values`` (BraTS 2020: 1 NCR, 2 ED, 4 ET)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:10, 2:8, 1:7] = values[1]  # edema
    labels[4:8, 3:7, 2:6] = rng.choice(values, size=(4, 4, 4))
    labels[5, 5, 4] = values[0]
    labels[6, 5, 4] = values[2]
    return labels


def write_brats_case(root: Path, case: str, labels: np.ndarray | None, layout: str = "2020",
                     seg_spacing=(1.0, 1.0, 1.0)) -> Path:
    """One case folder in BraTS 2020 (``_t1``...) or 2023 (``-t1n``...) naming with random images."""
    folder = root / case
    folder.mkdir(parents=True)
    suffixes = ("_t1", "_t1ce", "_t2", "_flair") if layout == "2020" else ("-t1n", "-t1c", "-t2w", "-t2f")
    rng = np.random.default_rng(len(case))
    for suffix in suffixes:
        sitk.WriteImage(_image(rng.random(SHAPE, dtype=np.float32)), str(folder / f"{case}{suffix}.nii.gz"))
    if labels is not None:
        sitk.WriteImage(_image(labels, seg_spacing), str(folder / f"{case}{'_seg' if layout == '2020' else '-seg'}.nii.gz"))
    return folder


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_brats2020_labels_remapped_as_nnunet_dataset137(tmp_path):
    source = tmp_path / "MICCAI_BraTS2020_TrainingData"
    originals = {f"BraTS20_Training_{i:03d}": brats_labels(i) for i in (1, 2, 3)}
    for case, labels in originals.items():
        write_brats_case(source, case, labels)
    (source / "name_mapping.csv").write_text("not a case\n")
    folder = convert_brats(source, 501, "BraTS2020", raw_root=tmp_path / "raw")

    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3],
                                 "enhancing tumor": [3]}
    assert dataset["regions_class_order"] == [1, 2, 3]
    assert dataset["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"}
    assert dataset["numTraining"] == 3 and dataset["brats_export_convention"] == "2020"
    for case, original in originals.items():
        converted = _read(folder / "labelsTr" / f"{case}.nii.gz")
        assert converted.dtype == np.uint8
        for brats, nnunet in ((0, 0), (1, 2), (2, 1), (4, 3)):
            assert np.array_equal(converted == nnunet, original == brats)
        # images are byte-for-byte copies, in nnU-Net's channel order
        source_t1ce = (source / case / f"{case}_t1ce.nii.gz").read_bytes()
        assert (folder / "imagesTr" / f"{case}_0001.nii.gz").read_bytes() == source_t1ce
    # BraTS regions: WT = labels > 0, TC = {1, 4}, ET = {4}
    original = originals["BraTS20_Training_001"]
    converted = _read(folder / "labelsTr" / "BraTS20_Training_001.nii.gz")
    assert np.array_equal(np.isin(converted, (2, 3)), np.isin(original, (1, 4)))


def test_brats2023_naming(tmp_path):
    source = tmp_path / "BraTS2023"
    originals = {f"BraTS-GLI-{i:05d}-000": brats_labels(i, values=(1, 2, 3)) for i in (0, 1)}
    for case, labels in originals.items():
        write_brats_case(source, case, labels, layout="2023")
    folder = convert_brats(source, 502, raw_root=tmp_path / "raw")
    assert json.loads((folder / "dataset.json").read_text())["brats_layout"] == "2023"
    for case, original in originals.items():
        converted = _read(folder / "labelsTr" / f"{case}.nii.gz")
        for brats, nnunet in ((1, 2), (2, 1), (3, 3)):
            assert np.array_equal(converted == nnunet, original == brats)


def _bad_source(tmp_path: Path) -> Path:
    source = tmp_path / "in"
    write_brats_case(source, "BraTS20_Training_001", brats_labels(1))
    write_brats_case(source, "BraTS20_Training_002", brats_labels(2))
    write_brats_case(source, "BraTS20_Training_003", brats_labels(3, values=(1, 3, 4)))  # label 3 is not BraTS 2020
    write_brats_case(source, "BraTS20_Training_004", brats_labels(4), seg_spacing=(1.0, 1.0, 2.0))
    write_brats_case(source, "BraTS20_Training_005", None)  # no segmentation
    return source


def test_bad_cases_reported_by_name_in_one_error(tmp_path):
    source = _bad_source(tmp_path)
    with pytest.raises(NnunetExtError) as error:
        convert_brats(source, 501, raw_root=tmp_path / "raw")
    message = str(error.value)
    assert "3 bad case(s)" in message and "--skip-bad" in message and "\n" not in message
    assert "BraTS20_Training_003: BraTS20_Training_003_seg.nii.gz has label values 3" in message
    assert "BraTS20_Training_004: BraTS20_Training_004_seg.nii.gz has spacing (1.0, 1.0, 2.0)" in message
    assert "BraTS20_Training_005: missing BraTS20_Training_005_seg.nii.gz" in message
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())  # nothing left behind


def test_skip_bad_converts_the_rest_and_lists_them(tmp_path, capsys):
    source = _bad_source(tmp_path)
    folder = convert_brats(source, 501, skip_bad=True, raw_root=tmp_path / "raw")
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["BraTS20_Training_001.nii.gz",
                                                                      "BraTS20_Training_002.nii.gz"]
    assert len(list((folder / "imagesTr").iterdir())) == 8
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["numTraining"] == 2 and sorted(dataset["skipped_cases"]) == [
        "BraTS20_Training_003", "BraTS20_Training_004", "BraTS20_Training_005"]
    assert "skipped BraTS20_Training_005: missing" in capsys.readouterr().out


def test_overwrite_and_id_conflicts(tmp_path):
    source = tmp_path / "in"
    for i in (1, 2):
        write_brats_case(source, f"BraTS20_Training_{i:03d}", brats_labels(i))
    raw = tmp_path / "raw"
    convert_brats(source, 501, "BraTS2020", raw_root=raw)
    with pytest.raises(NnunetExtError, match="already exists; pass --overwrite"):
        convert_brats(source, 501, "BraTS2020", raw_root=raw)
    convert_brats(source, 501, "BraTS2020", overwrite=True, raw_root=raw)
    with pytest.raises(NnunetExtError, match="dataset id 501 is already used by Dataset501_BraTS2020"):
        convert_brats(source, 501, "Other", raw_root=raw)
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset501_BraTS2020"]  # no staging folders left


def test_images_only_for_prediction_and_cli_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    source = tmp_path / "MICCAI_BraTS2020_ValidationData"
    for i in (1, 2):
        write_brats_case(source, f"BraTS20_Validation_{i:03d}", None)
    out = convert_brats_images(source, tmp_path / "val_input")
    assert sorted(p.name for p in out.iterdir())[:4] == [f"BraTS20_Validation_001_{c:04d}.nii.gz" for c in range(4)]
    assert brats_main(["-i", str(tmp_path / "missing"), "-d", "501"]) == 2
    assert capsys.readouterr().err.startswith("error: input folder not found")


def _subset(tmp_path: Path, source: Path, count: int) -> Path:
    """A folder linking to the first ``count`` case folders of ``source`` (keeps the tests fast)."""
    subset = tmp_path / source.name
    subset.mkdir()
    for case in sorted(p for p in source.iterdir() if p.is_dir())[:count]:
        (subset / case.name).symlink_to(case, target_is_directory=True)
    return subset


def test_brats2015_sample(tmp_path, sample_data):
    sample = sample_data(BRATS2015)
    folder = convert_brats(_subset(tmp_path, sample, 2), 503, "BraTS2015", raw_root=tmp_path / "raw")
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "T1ce", "1": "Flair"} and dataset["brats_layout"] == "2015"
    case = "brats_2013_pat0003_1"
    original = _read(sample / case / "OTMultiClass.nii.gz")
    converted = _read(folder / "labelsTr" / f"{case}.nii.gz")
    assert np.array_equal(converted > 0, original > 0)  # whole tumour
    assert np.array_equal(np.isin(converted, (2, 3)), np.isin(original, (1, 3, 4)))  # tumour core
    assert np.array_equal(converted == 3, original == 4)  # enhancing
    flair = _read(folder / "imagesTr" / f"{case}_0001.nii.gz")
    brain = _read(sample / case / "brainmask.nii.gz") > 0
    assert np.all(flair[~brain] == 0)
    assert np.array_equal(flair[brain], _read(sample / case / "Flair_subtrMeanDivStd.nii.gz")[brain])


def test_lgg_sample_one_volume_per_patient(tmp_path, sample_data):
    kaggle_3m = sample_data(KAGGLE_3M)
    folder = convert_lgg(_subset(tmp_path, kaggle_3m, 2), 504, spacing=(0.5, 3.0), raw_root=tmp_path / "raw")
    patients = sorted(p.name for p in kaggle_3m.iterdir() if p.is_dir())[:2]
    assert sorted(p.name[: -len(".nii.gz")] for p in (folder / "labelsTr").iterdir()) == patients
    patient = patients[0]
    from tifffile import imread

    image = sitk.ReadImage(str(folder / "imagesTr" / f"{patient}_0001.nii.gz"))
    n = len(list((kaggle_3m / patient).glob("*_mask.tif")))
    assert image.GetSize() == (256, 256, n) and image.GetSpacing() == (0.5, 0.5, 3.0)
    flair = sitk.GetArrayFromImage(image)
    for k in (1, n // 2, n):
        assert np.array_equal(flair[k - 1], imread(kaggle_3m / patient / f"{patient}_{k}.tif")[..., 1])
    label = _read(folder / "labelsTr" / f"{patient}.nii.gz")
    assert label[n // 2 - 1].tolist() == (imread(kaggle_3m / patient / f"{patient}_{n // 2}_mask.tif") == 255).tolist()
    assert json.loads((folder / "dataset.json").read_text())["labels"] == {"background": 0, "tumor": 1}


def test_lgg_bad_patient_reported(tmp_path):
    from tifffile import imwrite

    source = tmp_path / "kaggle_3m"
    for patient, numbers in (("TCGA_AA_0001_20000101", (1, 2, 3)), ("TCGA_AA_0002_20000101", (1, 3))):
        (source / patient).mkdir(parents=True)
        for n in numbers:
            imwrite(source / patient / f"{patient}_{n}.tif", np.zeros((16, 16, 3), np.uint8))
            imwrite(source / patient / f"{patient}_{n}_mask.tif", np.full((16, 16), 255, np.uint8))
    with pytest.raises(NnunetExtError, match=r"TCGA_AA_0002_20000101: slice numbers are not 1..3 without gaps \(missing \[2\]\)"):
        convert_lgg(source, 504, raw_root=tmp_path / "raw")


def _truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data[: int(len(data) * fraction)])


def test_truncated_nii_gz_is_a_bad_case_and_skip_bad_skips_it(tmp_path, capsys):
    source = tmp_path / "in"
    for i in (1, 2, 3):
        write_brats_case(source, f"BraTS20_Training_{i:03d}", brats_labels(i))
    flair = source / "BraTS20_Training_002" / "BraTS20_Training_002_flair.nii.gz"
    _truncate(flair)  # an interrupted download: SimpleITK alone reads it (the rest as zeros)
    sitk.ReadImage(str(flair))
    with pytest.raises(NnunetExtError) as error:
        convert_brats(source, 501, raw_root=tmp_path / "raw")
    message = str(error.value)
    assert "\n" not in message and "1 bad case(s)" in message and "--skip-bad" in message
    assert "BraTS20_Training_002: BraTS20_Training_002_flair.nii.gz is truncated" in message
    folder = convert_brats(source, 501, skip_bad=True, raw_root=tmp_path / "raw")
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["BraTS20_Training_001.nii.gz",
                                                                      "BraTS20_Training_003.nii.gz"]
    assert "skipped BraTS20_Training_002: BraTS20_Training_002_flair.nii.gz is truncated" in capsys.readouterr().out
    # a corrupt (not truncated) gzip is reported the same way
    seg = source / "BraTS20_Training_003" / "BraTS20_Training_003_seg.nii.gz"
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    with pytest.raises(NnunetExtError, match="BraTS20_Training_003: BraTS20_Training_003_seg.nii.gz is"):
        convert_brats(source, 502, raw_root=tmp_path / "raw2")


def _lgg_source(root: Path) -> Path:
    from tifffile import imwrite

    source = root / "kaggle_3m"
    for patient in ("TCGA_AA_0001_20000101", "TCGA_AA_0002_20000101", "TCGA_AA_0003_20000101"):
        (source / patient).mkdir(parents=True)
        for n in (1, 2, 3):
            imwrite(source / patient / f"{patient}_{n}.tif", np.full((16, 16, 3), n, np.uint8))
            imwrite(source / patient / f"{patient}_{n}_mask.tif", np.full((16, 16), 255, np.uint8))
    return source


def test_lgg_bin_in_plane_averages_blocks_and_labels_by_majority(tmp_path):
    """--bin-in-plane 2 on 4 x 4 slices: image pixels are 2 x 2 block means, a label pixel is 1 where at
    least half its block is tumour, the in-plane spacing doubles and the slices stay."""
    from tifffile import imwrite

    patient = "TCGA_AA_0001_20000101"
    (tmp_path / "kaggle_3m" / patient).mkdir(parents=True)
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = mask[0, 1] = 255  # half of the top-left block: tumour
    mask[2, 2] = 255  # a quarter of the bottom-right block: background
    for n in (1, 2):
        imwrite(tmp_path / "kaggle_3m" / patient / f"{patient}_{n}.tif", np.stack([image] * 3, -1))
        imwrite(tmp_path / "kaggle_3m" / patient / f"{patient}_{n}_mask.tif", mask)
    folder = convert_lgg(tmp_path / "kaggle_3m", 504, spacing=(0.5, 3.0), raw_root=tmp_path / "raw", bin_in_plane=2)
    flair = sitk.ReadImage(str(folder / "imagesTr" / f"{patient}_0001.nii.gz"))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / f"{patient}.nii.gz")))
    assert flair.GetSpacing() == (1.0, 1.0, 3.0) and label.shape == (2, 2, 2)
    assert np.array_equal(sitk.GetArrayFromImage(flair)[0], [[2.5, 4.5], [10.5, 12.5]])
    assert np.array_equal(label[1], [[1, 0], [0, 0]])
    assert json.loads((folder / "dataset.json").read_text())["shrunk_in_plane"] == 2


def test_truncated_lgg_tif_is_reported_per_file_and_skip_bad_skips_it(tmp_path, capsys):
    source = _lgg_source(tmp_path)
    _truncate(source / "TCGA_AA_0002_20000101" / "TCGA_AA_0002_20000101_2.tif")  # image data cut: tifffile raises
    with pytest.raises(NnunetExtError) as error:
        convert_lgg(source, 504, raw_root=tmp_path / "raw")
    message = str(error.value)
    assert "\n" not in message and "1 bad case(s)" in message
    assert "TCGA_AA_0002_20000101: TCGA_AA_0002_20000101_2.tif cannot be read (truncated or corrupt" in message
    folder = convert_lgg(source, 504, skip_bad=True, raw_root=tmp_path / "raw")
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["TCGA_AA_0001_20000101.nii.gz",
                                                                      "TCGA_AA_0003_20000101.nii.gz"]
    assert "skipped TCGA_AA_0002_20000101: TCGA_AA_0002_20000101_2.tif" in capsys.readouterr().out


def test_lgg_tif_without_its_directory_is_reported(tmp_path, sample_data):
    """The kaggle_3m files keep their image directory at the end: truncated, tifffile returns an empty array."""
    patient = sorted(p for p in sample_data(KAGGLE_3M).iterdir() if p.is_dir())[0]
    source = tmp_path / "kaggle_3m"
    copy = source / patient.name
    copy.mkdir(parents=True)
    for path in patient.glob("*.tif"):
        (copy / path.name).write_bytes(path.read_bytes())
    _truncate(copy / f"{patient.name}_3_mask.tif", 0.9)
    with pytest.raises(NnunetExtError, match=rf"{patient.name}: {patient.name}_3_mask.tif holds no image \(truncated"):
        convert_lgg(source, 505, raw_root=tmp_path / "raw")


def test_brats_extra_files_in_a_case_folder_are_not_read_and_listed(tmp_path, capsys):
    """Public BraTS copies hold a brain mask, a model's prediction or an .h5 copy beside the case's files:
    none is ground truth, none is converted, one line and dataset.json name them."""
    source = tmp_path / "in"
    for i in (1, 2):
        folder = write_brats_case(source, f"Brats18_CBICA_AA{i}_1", brats_labels(i))
        sitk.WriteImage(_image(np.ones(SHAPE, np.uint8)), str(folder / "mask.nii.gz"))
        sitk.WriteImage(_image(brats_labels(9)), str(folder / f"{folder.name}_pred.nii.gz"))
    (source / "Brats18_CBICA_AA1_1" / "Brats18_CBICA_AA1_1.h5").write_bytes(b"")
    folder = convert_brats(source, 501, "BraTS18", raw_root=tmp_path / "raw")
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["Brats18_CBICA_AA1_1.nii.gz",
                                                                      "Brats18_CBICA_AA2_1.nii.gz"]
    assert len(list((folder / "imagesTr").iterdir())) == 8
    converted = _read(folder / "labelsTr" / "Brats18_CBICA_AA1_1.nii.gz")
    assert np.array_equal(converted == 3, brats_labels(1) == 4)  # from _seg, not from the prediction
    ignored = json.loads((folder / "dataset.json").read_text())["ignored_files"]
    assert ignored == {"Brats18_CBICA_AA1_1": ["Brats18_CBICA_AA1_1.h5", "Brats18_CBICA_AA1_1_pred.nii.gz", "mask.nii.gz"],
                       "Brats18_CBICA_AA2_1": ["Brats18_CBICA_AA2_1_pred.nii.gz", "mask.nii.gz"]}
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ignored")]
    assert len(lines) == 1 and lines[0].startswith("ignored 5 file(s)") and "Brats18_CBICA_AA1_1/mask.nii.gz" in lines[0]


def test_lgg_patient_list_converts_only_the_listed_patients(tmp_path):
    source = _lgg_source(tmp_path)
    listing = tmp_path / "cv.txt"
    listing.write_text("# cross-validation patients\nTCGA_AA_0001_20000101\n\nTCGA_AA_0003_20000101  # last\n")
    folder = convert_lgg(source, 504, raw_root=tmp_path / "raw", patients=read_patient_list(listing))
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["TCGA_AA_0001_20000101.nii.gz",
                                                                      "TCGA_AA_0003_20000101.nii.gz"]
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["numTraining"] == 2 and dataset["converted_from_patient_list"] is True
    with pytest.raises(NnunetExtError, match=r"1 listed patient\(s\) have no folder .* \(first: TCGA_AA_0009_20000101\)"):
        convert_lgg(source, 505, raw_root=tmp_path / "raw", patients=["TCGA_AA_0001_20000101", "TCGA_AA_0009_20000101"])
    listing.write_text("# nobody\n")
    with pytest.raises(NnunetExtError, match="names no patient"):
        read_patient_list(listing)


def test_lgg_spacing_keeps_the_acquired_slices_the_axis_nnunet_slices(tmp_path):
    """The default assumes 1 mm pixels and 5 mm between slices; binning that would make the in-plane spacing
    larger than the slice spacing (nnU-Net's 2d would cut across the acquired slices) is refused."""
    source = _lgg_source(tmp_path)
    folder = convert_lgg(source, 504, raw_root=tmp_path / "raw", bin_in_plane=4)
    flair = sitk.ReadImage(str(folder / "imagesTr" / "TCGA_AA_0001_20000101_0001.nii.gz"))
    assert flair.GetSpacing() == (4.0, 4.0, 5.0)
    assert json.loads((folder / "dataset.json").read_text())["assumed_spacing_mm"] == {"in_plane": 1.0,
                                                                                      "between_slices": 5.0}
    with pytest.raises(NnunetExtError, match="in-plane spacing 6 mm, more than the 5 mm between slices"):
        convert_lgg(source, 505, raw_root=tmp_path / "raw", bin_in_plane=6)
