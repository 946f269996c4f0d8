"""The synthetic dataset generator: nnU-Net validity, determinism, label geometry, image realism, errors.

Everything is written under pytest's tmp folders, with the nnU-Net environment variables pointed
there (a developer's own $nnUNet_raw is never read or written). Shapes are small so that the whole
file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from skimage import io

from nnunet_ext import synthetic
from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import NNUNET_FOLDER_VARIABLES
from nnunet_ext.synthetic import KINDS, NO_ENHANCING_POSITION, generate_dataset, main

SMALL = {"brats": (32, 32, 24), "binary": (32, 32, 24), "2d": (48, 48)}
ANISOTROPIC = (1.0, 1.2, 1.5)  # the module's brats dataset uses this spacing: headers must carry it
IDS = {"brats": 501, "binary": 502, "2d": 503}


def _point_env_at(monkeypatch, root: Path) -> dict[str, Path]:
    folders = {}
    for variable in NNUNET_FOLDER_VARIABLES:
        folders[variable] = root / variable
        folders[variable].mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(variable, str(folders[variable]))
    return folders


@pytest.fixture
def nnunet_dirs(tmp_path, monkeypatch) -> dict[str, Path]:
    """Empty nnU-Net folders for one test, with the environment variables pointing at them."""
    return _point_env_at(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """One small dataset per kind, generated once for the read-only checks (4 + 4 cases: position 3 in both splits)."""
    root = tmp_path_factory.mktemp("nnunet")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _point_env_at(monkeypatch, root)
        return {
            kind: generate_dataset(kind, IDS[kind], num_cases=4, num_test_cases=4, shape=SMALL[kind], seed=3,
                                   spacing=ANISOTROPIC if kind == "brats" else None)
            for kind in KINDS
        }


def _read(path: Path) -> np.ndarray:
    """A written image or label as an array in the generator's axis order ((X, Y, Z) or (rows, columns))."""
    if path.name.endswith(".png"):
        return io.imread(path)
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose()


def _all_arrays(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): _read(p) for p in sorted(folder.rglob("*")) if p.suffix in (".gz", ".png")}


def _labels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: _read(p) for p in sorted(folder.glob("labels*/*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------
# Layout and nnU-Net validity
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_layout_and_dataset_json(datasets, kind):
    folder = datasets[kind]
    spec = KINDS[kind]
    assert folder.name == f"Dataset{IDS[kind]}_{spec.default_name}"
    n_channels = len(spec.channel_names)
    for suffix in ("Tr", "Ts"):
        assert len(list((folder / f"images{suffix}").iterdir())) == 4 * n_channels
        assert len(list((folder / f"labels{suffix}").iterdir())) == 4
    dataset_json = json.loads((folder / "dataset.json").read_text())
    assert dataset_json["numTraining"] == 4
    assert dataset_json["file_ending"] == spec.file_ending
    assert dataset_json["channel_names"] == {str(k): v for k, v in spec.channel_names.items()}
    if kind == "brats":
        assert dataset_json["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
        assert dataset_json["labels"] == {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3],
                                          "enhancing tumor": [3]}
        assert dataset_json["regions_class_order"] == [1, 2, 3]
    else:
        assert set(dataset_json["labels"].values()) == {0, 1}
        assert "regions_class_order" not in dataset_json
    # No staging folder is left beside the dataset.
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("kind", list(KINDS))
def test_nnunet_verify_dataset_integrity_accepts_it(datasets, kind, monkeypatch):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    monkeypatch.setenv("nnUNet_raw", str(datasets[kind].parent))
    verify_dataset_integrity(str(datasets[kind]), num_processes=1)  # raises on any problem


def test_spacing_is_written_to_every_header(datasets):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    files = sorted(datasets["brats"].glob("*s*/*.nii.gz"))
    assert files
    for path in files:
        image = sitk.ReadImage(str(path))
        assert image.GetSpacing() == pytest.approx(ANISOTROPIC)
        assert image.GetSize() == SMALL["brats"]
    # nnU-Net sees the reversed (Z, Y, X) order.
    _, properties = SimpleITKIO().read_images([str(files[0])])
    assert properties["spacing"] == pytest.approx(ANISOTROPIC[::-1])


def test_2d_png_is_read_by_nnunet_natural_image_io(datasets):
    from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO

    folder = datasets["2d"]
    case = f"{KINDS['2d'].default_name}_000"
    channels = [str(folder / "imagesTr" / f"{case}_{c:04d}.png") for c in range(3)]
    for path in channels:
        raw = io.imread(path)
        assert raw.dtype == np.uint8 and raw.shape == SMALL["2d"]  # grayscale, not RGB
    images, properties = NaturalImage2DIO().read_images(channels)
    assert images.shape == (3, 1, *SMALL["2d"])
    assert properties["spacing"] == (999, 1, 1)
    seg, _ = NaturalImage2DIO().read_seg(str(folder / "labelsTr" / f"{case}.png"))
    assert seg.shape == (1, 1, *SMALL["2d"])
    assert set(np.unique(seg)) == {0, 1}


def test_2d_defaults(nnunet_dirs):
    folder = generate_dataset("2d", 503)
    assert folder == nnunet_dirs["nnUNet_raw"] / "Dataset503_SyntheticLGG2D"
    assert len(list((folder / "labelsTr").iterdir())) == 24
    assert len(list((folder / "labelsTs").iterdir())) == 6
    assert io.imread(folder / "labelsTr" / "SyntheticLGG2D_000.png").shape == (96, 96)


def test_documented_defaults():
    assert {k: (v.default_name, v.default_shape, v.default_cases, v.default_test_cases) for k, v in KINDS.items()} == {
        "brats": ("SyntheticBraTS", (64, 64, 48), 16, 4),
        "binary": ("SyntheticBinary", (64, 64, 48), 16, 4),
        "2d": ("SyntheticLGG2D", (96, 96), 24, 6),
    }
    assert synthetic.DEFAULT_NAMES == {k: v.default_name for k, v in KINDS.items()}


# ----------------------------------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_same_seed_same_arrays_other_seed_other_arrays(tmp_path, nnunet_dirs, kind):
    def make(root: str, seed: int) -> dict[str, np.ndarray]:
        folder = generate_dataset(kind, IDS[kind], num_cases=2, num_test_cases=1, shape=SMALL[kind], seed=seed,
                                  raw_root=tmp_path / root)
        return _all_arrays(folder)

    first, again, other = make("a", 7), make("b", 7), make("c", 8)
    assert first.keys() == again.keys() == other.keys()
    for key in first:
        assert first[key].dtype == again[key].dtype
        assert first[key].tobytes() == again[key].tobytes(), key
    assert all(not np.array_equal(first[key], other[key]) for key in first if "images" in key)


def test_adding_cases_keeps_existing_ones(tmp_path, nnunet_dirs):
    few = _all_arrays(generate_dataset("binary", 502, num_cases=2, num_test_cases=1, shape=SMALL["binary"],
                                       raw_root=tmp_path / "few"))
    more = _all_arrays(generate_dataset("binary", 502, num_cases=3, num_test_cases=2, shape=SMALL["binary"],
                                        raw_root=tmp_path / "more"))
    for key, array in few.items():
        assert np.array_equal(array, more[key]), key


# ----------------------------------------------------------------------------------------------
# Label geometry and image realism
# ----------------------------------------------------------------------------------------------


def test_brats_labels_are_nested_and_enhancing_is_sometimes_absent(datasets):
    for name, label in _labels(datasets["brats"]).items():
        assert set(np.unique(label)) <= {0, 1, 2, 3}, name
        whole, core, enhancing = label >= 1, label >= 2, label == 3
        assert whole.any(), f"{name}: whole tumour must always be present"
        # Geometric nesting, not only the label encoding: edema surrounds the core ...
        assert not (ndimage.binary_dilation(core) & ~whole).any(), name
        position = int(name.split(".")[0][-3:])
        if position % 8 == NO_ENHANCING_POSITION:
            assert not enhancing.any() and core.any(), name
        else:
            assert enhancing.any(), name
            # ... and the enhancing rim surrounds the necrotic centre.
            necrotic = label == 2
            assert not (ndimage.binary_dilation(necrotic) & ~core).any(), name


@pytest.mark.parametrize("kind", ["binary", "2d"])
def test_single_class_labels(datasets, kind):
    for name, label in _labels(datasets[kind]).items():
        assert label.dtype == np.uint8
        assert set(np.unique(label)) == {0, 1}, name


@pytest.mark.parametrize("kind", list(KINDS))
def test_images_are_zero_outside_the_brain_and_cover_the_labels(datasets, kind):
    folder = datasets[kind]
    for label_path in sorted((folder / "labelsTr").iterdir()):
        case = label_path.name[: -len(KINDS[kind].file_ending)]
        label = _read(label_path)
        images = [_read(p) for p in sorted((folder / "imagesTr").glob(f"{case}_*"))]
        nonzero = np.any([image != 0 for image in images], axis=0)
        assert 0.15 < nonzero.mean() < 0.8  # a head, with background around it for nnU-Net's crop
        assert nonzero[tuple(0 for _ in label.shape)] == 0
        assert nonzero[label > 0].all()


@pytest.mark.parametrize("kind, channel", [("brats", 3), ("binary", 0), ("2d", 1)])
def test_boundaries_are_blurred(datasets, kind, channel):
    """Voxels on the label boundary have intensities between those well inside and well outside."""
    folder = datasets[kind]
    for label_path in sorted((folder / "labelsTr").iterdir()):
        case = label_path.name[: -len(KINDS[kind].file_ending)]
        label = _read(label_path)
        image = _read(folder / "imagesTr" / f"{case}_{channel:04d}{KINDS[kind].file_ending}").astype(np.float64)
        region = label > 0
        brain = ndimage.binary_erosion(image > 0, iterations=2)
        deep_inside = ndimage.binary_erosion(region, iterations=2) & (label == 1)  # brats: edema only
        far_outside = brain & ~ndimage.binary_dilation(region, iterations=3)
        boundary = (region ^ ndimage.binary_erosion(region)) | (ndimage.binary_dilation(region) & ~region)
        if deep_inside.sum() < 5:
            continue  # a sliver of a region has no "well inside"
        inside, outside, edge = image[deep_inside].mean(), image[far_outside].mean(), image[boundary].mean()
        assert inside > outside
        assert outside + 0.1 * (inside - outside) < edge < inside - 0.1 * (inside - outside), case
        # Not a piecewise-constant image: noise and texture inside the region.
        assert image[deep_inside].std() > 0


# ----------------------------------------------------------------------------------------------
# Overwrite and interrupted runs
# ----------------------------------------------------------------------------------------------


def test_existing_folder_needs_overwrite_and_is_replaced(nnunet_dirs):
    kwargs = dict(num_cases=2, num_test_cases=1, shape=SMALL["binary"])
    folder = generate_dataset("binary", 502, **kwargs)
    (folder / "stale.txt").write_text("from an older run")
    with pytest.raises(NnunetExtError, match="--overwrite"):
        generate_dataset("binary", 502, **kwargs)
    assert generate_dataset("binary", 502, overwrite=True, **kwargs) == folder
    assert not (folder / "stale.txt").exists()
    assert len(list((folder / "labelsTr").iterdir())) == 2
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def _failing_on_second_case(monkeypatch):
    original = KINDS["binary"]

    def make_case(rng, shape, spacing, position):
        if position == 1:
            raise KeyboardInterrupt
        return original.make_case(rng, shape, spacing, position)

    monkeypatch.setitem(KINDS, "binary", dataclasses.replace(original, make_case=make_case))


def test_interrupted_run_leaves_no_partial_dataset(nnunet_dirs, monkeypatch):
    raw = nnunet_dirs["nnUNet_raw"]
    _failing_on_second_case(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset("binary", 502, num_cases=2, shape=SMALL["binary"])
    assert list(raw.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_dataset(nnunet_dirs, monkeypatch):
    folder = generate_dataset("binary", 502, num_cases=2, num_test_cases=1, shape=SMALL["binary"])
    before = _all_arrays(folder)
    _failing_on_second_case(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset("binary", 502, num_cases=3, shape=SMALL["binary"], seed=9, overwrite=True)
    after = _all_arrays(folder)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def test_unknown_kind_lists_the_valid_ones(nnunet_dirs):
    with pytest.raises(NnunetExtError, match="unknown dataset kind 'mri'.*brats, binary, 2d"):
        generate_dataset("mri", 501)


def test_unset_nnunet_raw_names_the_variable(nnunet_dirs, monkeypatch):
    monkeypatch.delenv("nnUNet_raw")
    with pytest.raises(NnunetExtError, match="export nnUNet_raw="):
        generate_dataset("binary", 502, num_cases=2, shape=SMALL["binary"])


@pytest.mark.parametrize("variable", NNUNET_FOLDER_VARIABLES)
def test_id_used_by_another_dataset(nnunet_dirs, variable):
    (nnunet_dirs[variable] / "Dataset502_Other").mkdir()
    (nnunet_dirs["nnUNet_raw"] / "Dataset503_Taken").mkdir()
    with pytest.raises(NnunetExtError, match=r"already used by Dataset502_Other.*-d 504"):
        generate_dataset("binary", 502, num_cases=2, shape=SMALL["binary"])
    # With overwrite too: overwrite only ever replaces a dataset of the same name.
    with pytest.raises(NnunetExtError, match="Dataset502_Other"):
        generate_dataset("binary", 502, num_cases=2, shape=SMALL["binary"], overwrite=True)


def test_id_used_in_an_explicit_raw_root(tmp_path, nnunet_dirs):
    other_root = tmp_path / "elsewhere"
    (other_root / "Dataset502_Other").mkdir(parents=True)
    with pytest.raises(NnunetExtError, match="Dataset502_Other"):
        generate_dataset("binary", 502, num_cases=2, shape=SMALL["binary"], raw_root=other_root)


def test_same_name_in_preprocessed_is_not_a_conflict(nnunet_dirs):
    (nnunet_dirs["nnUNet_preprocessed"] / "Dataset502_SyntheticBinary").mkdir()
    assert generate_dataset("binary", 502, num_cases=2, shape=SMALL["binary"]).is_dir()


@pytest.mark.parametrize(
    "kind, kwargs, message",
    [
        ("brats", {"shape": (32, 32)}, "needs a 3D shape"),
        ("2d", {"shape": (32, 32, 32)}, "needs a 2D shape"),
        ("brats", {"shape": (32, 8, 32)}, "too small"),
        ("binary", {"num_cases": 1}, "at least 2"),
        ("binary", {"num_test_cases": -1}, "cannot be negative"),
        ("2d", {"spacing": (0.5, 0.5)}, "takes no spacing"),
        ("brats", {"spacing": (1.0, 1.0)}, "spacing .* is invalid"),
        ("brats", {"spacing": (1.0, 0.0, 1.0)}, "spacing .* is invalid"),
        ("binary", {"name": "my data"}, "name 'my data' is invalid"),
        ("binary", {"seed": -1}, "negative"),
    ],
)
def test_invalid_arguments(nnunet_dirs, kind, kwargs, message):
    with pytest.raises(NnunetExtError, match=message):
        generate_dataset(kind, IDS[kind], **kwargs)
    assert list(nnunet_dirs["nnUNet_raw"].iterdir()) == []


def test_dataset_id_out_of_range(nnunet_dirs):
    with pytest.raises(NnunetExtError, match="1-999"):
        generate_dataset("binary", 1000)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def test_cli_success_prints_folder_and_next_command(nnunet_dirs, capsys):
    argv = ["-d", "503", "-k", "2d", "-n", "Slices", "--cases", "2", "--test-cases", "1", "--shape", "32", "40",
            "--seed", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    folder = nnunet_dirs["nnUNet_raw"] / "Dataset503_Slices"
    assert str(folder) in out
    assert "nnUNetv2_plan_and_preprocess -d 503 -c 2d --verify_dataset_integrity" in out
    assert io.imread(folder / "labelsTr" / "Slices_000.png").shape == (32, 40)


def test_cli_3d_options(nnunet_dirs, capsys):
    argv = ["-d", "501", "--cases", "2", "--test-cases", "0", "--shape", "24", "24", "16", "--spacing", "1", "1", "2.5"]
    assert main(argv) == 0
    assert "-c 3d_fullres" in capsys.readouterr().out
    label = next((nnunet_dirs["nnUNet_raw"] / "Dataset501_SyntheticBraTS" / "labelsTr").iterdir())
    assert sitk.ReadImage(str(label)).GetSpacing() == (1.0, 1.0, 2.5)
    assert main(argv) == 2  # exists: one-line error
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_cli_error_is_one_line_and_exit_2(nnunet_dirs, capsys):
    assert main(["-d", "501", "-k", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset kind 'nope'")
    assert err.count("\n") == 1
