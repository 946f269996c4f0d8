"""The Kaggle LGG FLAIR set (``kaggle_3m``) -> an nnU-Net dataset usable with ``2d`` and ``3d_fullres``.

Input: ``kaggle_3m/TCGA_<inst>_<id>_<date>/`` per patient, slices ``<patient>_<n>.tif`` (256 x 256 x 3
uint8: pre-contrast, FLAIR, post-contrast) and ``<patient>_<n>_mask.tif`` (256 x 256, 0/255), ``n``
from 1, not zero-padded.

Output: one case per patient, the slices stacked in numeric order into a 3D volume (slice ``n`` at
index ``n - 1`` along the last axis of the NIfTI file, i.e. z), three channels ``_0000`` pre-contrast,
``_0001`` FLAIR, ``_0002`` post-contrast, label 1 = tumour (mask 255). nnU-Net plans both ``2d`` (it
trains on the slices of these volumes) and ``3d_fullres`` from it.

``--bin-in-plane N`` averages N x N pixel blocks of every slice (SimpleITK ``BinShrink``; a label
pixel is tumour where most of its block is), for training on a CPU; the in-plane spacing grows N-fold.

``--patients FILE`` converts only the patients named in FILE (one folder name per line, ``#``
comments allowed), e.g. the cross-validation patients of a study that keeps the others as a test set;
a listed patient without a folder is an error.

Spacing assumption: the TIF files store none. The default, ``--spacing 1 5``, assumes 1 mm pixels
(256 x 256 slices of a field of view of about 25 cm) and 5 mm between slices, the usual slice spacing
of the 2D axial FLAIR acquisitions of TCGA-LGG (20 to 88 slices per patient); pass ``--spacing INPLANE
SLICE`` (mm) when you know the acquisition (the TCIA headers). HD95 / ASD are in mm under this
assumption. The binned in-plane spacing must not exceed the slice spacing: nnU-Net's ``2d`` slices
along the axis of largest spacing, so a larger in-plane spacing would make it train on planes cut
across the acquired slices (the converter refuses that with one line).

Checks per patient: every slice has a mask and every mask a slice, slice numbers 1..N without
gaps, every file readable (a truncated or corrupt TIF is reported with its file name: tifffile
either raises or, when the file lost its directory, returns an empty array), images 256 x 256 x 3
uint8 of one size, masks with values 0/255 only.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from nnunet_ext.converters import check_problems, report_skipped
from nnunet_ext.raw_dataset import raw_dataset_target, write_atomically
from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli

CHANNELS = {0: "pre-contrast", 1: "FLAIR", 2: "post-contrast"}
_SLICE = re.compile(r"^(?P<patient>.+)_(?P<n>\d+)(?P<mask>_mask)?\.tif$")


def read_patient(folder: Path) -> tuple[np.ndarray, np.ndarray] | str:
    """(image (3, N, H, W) uint8, mask (N, H, W) uint8 0/1) of one patient, or what is wrong with it."""
    from tifffile import imread

    slices: dict[int, Path] = {}
    masks: dict[int, Path] = {}
    for path in folder.glob("*.tif"):
        match = _SLICE.match(path.name)
        if match is None or match["patient"] != folder.name:
            return f"unexpected file {path.name} (expected {folder.name}_<n>.tif and {folder.name}_<n>_mask.tif)"
        (masks if match["mask"] else slices)[int(match["n"])] = path
    if not slices:
        return "no slices (<patient>_<n>.tif)"
    if set(slices) != set(masks):
        without = sorted(set(slices) - set(masks))
        orphans = sorted(set(masks) - set(slices))
        parts = ([f"slice(s) {without[:5]} have no mask"] if without else []) + \
                ([f"mask(s) {orphans[:5]} have no slice"] if orphans else [])
        return "; ".join(parts)
    numbers = sorted(slices)
    if numbers != list(range(1, len(numbers) + 1)):
        gaps = sorted(set(range(1, numbers[-1] + 1)) - set(numbers))
        return f"slice numbers are not 1..{numbers[-1]} without gaps (missing {gaps[:5]})"
    images, labels = [], []
    for n in numbers:
        image, mask = _read_tif(imread, slices[n]), _read_tif(imread, masks[n])
        for array in (image, mask):
            if isinstance(array, str):  # the file's problem, naming it (hence the slice)
                return array
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            return f"{slices[n].name} is {image.shape} {image.dtype}, expected H x W x 3 uint8"
        if mask.shape != image.shape[:2]:
            return f"{masks[n].name} is {mask.shape}, its slice {image.shape[:2]}"
        if images and image.shape != images[0].shape:
            return f"{slices[n].name} is {image.shape}, slice 1 {images[0].shape}"
        values = np.unique(mask)
        if not set(values.tolist()) <= {0, 255}:
            return f"{masks[n].name} has values {values[:5].tolist()}, expected 0 and 255"
        images.append(image)
        labels.append(mask)
    return np.stack(images).transpose(3, 0, 1, 2), (np.stack(labels) == 255).astype(np.uint8)


def _read_tif(imread, path: Path) -> np.ndarray | str:
    """The array of one TIF, or what is wrong with the file (truncated, corrupt, empty)."""
    try:
        array = imread(path)
    except Exception as error:  # tifffile raises ValueError, TiffFileError, struct.error, ... on bad files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{path.name} cannot be read (truncated or corrupt: {first})"
    if array.size == 0:
        return f"{path.name} holds no image (truncated or corrupt: no readable image directory)"
    return array


def _write(array: np.ndarray, path: Path, spacing: tuple[float, float, float], bin_in_plane: int = 1,
           label: bool = False) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)  # array (N, H, W) -> image x = W, y = H, z = slice
    image.SetSpacing(spacing)
    if bin_in_plane > 1:  # block means (float32); a label pixel is 1 where most of its block is
        image = sitk.BinShrink(sitk.Cast(image, sitk.sitkFloat32), [bin_in_plane, bin_in_plane, 1])
        image = image >= 0.5 if label else image  # SimpleITK's comparison gives uint8 0 / 1
    sitk.WriteImage(image, str(path), useCompression=True)


DEFAULT_SPACING = (1.0, 5.0)  # (in-plane, between slices) in mm: the module docstring's assumption


def read_patient_list(path: str | Path) -> list[str]:
    """Patient folder names of a list file: one per line, blank lines and ``#`` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise NnunetExtError(f"patient list not found: {path}; pass a text file with one patient folder name per line")
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise NnunetExtError(f"patient list {path} names no patient")
    return names


def convert_lgg(source: str | Path, dataset_id: int, name: str = "LGGFlair",
                spacing: tuple[float, float] = DEFAULT_SPACING, overwrite: bool = False, skip_bad: bool = False,
                raw_root: str | Path | None = None, bin_in_plane: int = 1, patients: list[str] | None = None) -> Path:
    """Converts ``kaggle_3m`` into ``<raw_root or $nnUNet_raw>/DatasetXXX_<name>``; returns that folder.

    ``spacing`` is (in-plane, between slices) in mm, of the TIFs; ``bin_in_plane`` N > 1 bins every slice
    N x N; ``patients`` limits the conversion to those folder names (see the module docstring). Bad patients are reported by name (see
    :func:`nnunet_ext.converters.check_problems`).
    """
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    source = Path(source)
    if not source.is_dir():
        raise NnunetExtError(f"input folder not found: {source}")
    if len(spacing) != 2 or min(spacing) <= 0:
        raise NnunetExtError(f"spacing {tuple(spacing)} is invalid; pass two positive numbers in mm: --spacing INPLANE SLICE")
    if bin_in_plane < 1:
        raise NnunetExtError(f"bin_in_plane {bin_in_plane} is invalid; pass a whole number of at least 1")
    if spacing[0] * bin_in_plane > spacing[1]:
        raise NnunetExtError(
            f"--bin-in-plane {bin_in_plane} makes the in-plane spacing {spacing[0] * bin_in_plane:g} mm, more than the "
            f"{spacing[1]:g} mm between slices: nnU-Net would slice across the acquired slices; pass a smaller "
            f"--bin-in-plane or --spacing {spacing[0]:g} S with S >= {spacing[0] * bin_in_plane:g}")
    listed = patients
    patients = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))
    if listed is not None:
        absent = sorted(set(listed) - {p.name for p in patients})
        if absent:
            raise NnunetExtError(f"{len(absent)} listed patient(s) have no folder in {source} (first: {absent[0]}); "
                                 "check the list against the kaggle_3m folder")
        patients = [p for p in patients if p.name in set(listed)]
    if not patients:
        raise NnunetExtError(f"no patient folders in {source}; pass the kaggle_3m folder (holding TCGA_*/)")
    voxel_spacing = (float(spacing[0]), float(spacing[0]), float(spacing[1]))
    target = raw_dataset_target(dataset_id, name, raw_root)
    problems: dict[str, str] = {}

    def write(folder: Path) -> None:
        images_out, labels_out = folder / "imagesTr", folder / "labelsTr"
        images_out.mkdir()
        labels_out.mkdir()
        for patient in patients:
            result = read_patient(patient)
            if isinstance(result, str):
                problems[patient.name] = result
                continue
            image, mask = result
            for channel in CHANNELS:
                _write(image[channel], images_out / f"{patient.name}_{channel:04d}.nii.gz", voxel_spacing,
                       bin_in_plane)
            _write(mask, labels_out / f"{patient.name}.nii.gz", voxel_spacing, bin_in_plane, label=True)
        converted = len(patients) - len(problems)
        check_problems(problems, source, skip_bad, converted)
        generate_dataset_json(
            str(folder),
            channel_names=dict(CHANNELS),
            labels={"background": 0, "tumor": 1},
            num_training_cases=converted,
            file_ending=".nii.gz",
            dataset_name=name,
            description="LGG FLAIR (Kaggle lgg-mri-segmentation, kaggle_3m) converted by nnunet_ext_convert_lgg: one "
                        "3D volume per patient, slices stacked in numeric order; spacing assumed (TIF stores none)",
            reference="Buda, Saha, Mazurowski, Computers in Biology and Medicine 109 (2019); TCIA TCGA-LGG",
            license="CC BY-NC-SA 4.0",
            converted_by="nnunet_ext_convert_lgg",
            assumed_spacing_mm={"in_plane": voxel_spacing[0], "between_slices": voxel_spacing[2]},
            **({"converted_from_patient_list": True} if listed is not None else {}),
            skipped_cases=dict(sorted(problems.items())),
            **({"shrunk_in_plane": bin_in_plane} if bin_in_plane > 1 else {}),
        )

    write_atomically(target, overwrite, write)
    report_skipped(problems)
    return target


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="nnunet_ext_convert_lgg",
        description="Convert the Kaggle LGG FLAIR set (kaggle_3m) into an nnU-Net v2 dataset: one 3D volume per "
                    "patient (3 channels: pre-contrast, FLAIR, post-contrast; label 1 tumour), for the 2d and "
                    "3d_fullres configurations.",
    )
    parser.add_argument("-i", "--input", required=True, help="the kaggle_3m folder (holding TCGA_*/ patient folders)")
    parser.add_argument("-d", "--dataset-id", type=int, required=True, help="nnU-Net dataset id (e.g. 502)")
    parser.add_argument("-n", "--name", default="LGGFlair", help="dataset name (default LGGFlair)")
    parser.add_argument("--spacing", type=float, nargs=2, default=DEFAULT_SPACING, metavar=("INPLANE", "SLICE"),
                        help="assumed voxel spacing in mm (the TIFs store none; default 1 5, see the module docs)")
    parser.add_argument("--patients", metavar="FILE",
                        help="convert only the patients named in FILE (one folder name per line)")
    parser.add_argument("--bin-in-plane", type=int, default=1, metavar="N",
                        help="average N x N pixel blocks of every slice, labels by majority (default 1: none)")
    parser.add_argument("--skip-bad", action="store_true", help="leave out bad patients (listed) instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset of the same name")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    patients = read_patient_list(args.patients) if args.patients else None
    folder = convert_lgg(args.input, args.dataset_id, args.name, tuple(args.spacing), args.overwrite, args.skip_bad,
                         bin_in_plane=args.bin_in_plane, patients=patients)
    print(f"wrote {folder}")
    print(f"next: nnUNetv2_plan_and_preprocess -d {args.dataset_id} -c 2d 3d_fullres --verify_dataset_integrity")


def main(argv: list[str] | None = None) -> int:
    """Console entry ``nnunet_ext_convert_lgg``."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
