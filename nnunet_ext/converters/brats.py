"""BraTS training folders -> an nnU-Net region dataset (whole tumour, tumour core, enhancing tumour).

The output is exactly nnU-Net's own BraTS conversion (``Dataset137_BraTS21``): channels
T1, T1ce, T2, FLAIR as ``_0000.._0003`` (images copied byte for byte), labels 1 edema, 2 necrotic /
non-enhancing core, 3 enhancing tumour, regions whole tumour (1, 2, 3), tumour core (2, 3),
enhancing tumour (3,), ``regions_class_order`` (1, 2, 3). Input layouts (recognised per case folder
from its file names; every case of one input must use the same layout):

=========  ===========================================================  ===========================
layout     case folder and files                                         source labels -> nnU-Net
=========  ===========================================================  ===========================
``2020``   ``BraTS20_Training_001/BraTS20_Training_001_{t1,t1ce,t2,      1 NCR/NET -> 2, 2 ED -> 1,
           flair,seg}.nii.gz``; also BraTS 2017-2021 (``BraTS2021_       4 ET -> 3
           00000``)
``2023``   ``BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,   1 NETC -> 2, 2 SNFH -> 1,
           seg}.nii.gz`` (BraTS 2023+, as nnU-Net's Dataset226)           3 ET -> 3
``2015``   ``<case>/{T1c,Flair}_subtrMeanDivStd.nii.gz, OTMultiClass,     1 necrosis -> 2, 2 edema -> 1,
           brainmask.nii.gz`` (a BraTS 2013/2015 sample layout)           3 non-enhancing -> 2, 4 ET -> 3
=========  ===========================================================  ===========================

So in every layout whole tumour = all tumour labels, tumour core = everything but edema, enhancing
tumour = ET, the BraTS evaluation regions. The ``2015`` adapter has only two channels (T1ce,
FLAIR) and sets the images to 0 outside ``brainmask`` (that redistribution puts a negative constant
there), so nnU-Net's crop-to-nonzero and nonzero-mask normalisation act as on other BraTS data; its
labels 1 and 3 both become core, so exporting it back gives BraTS 2017+ labels (1/2/4), not 2015's.
The BraTS 2024 resection-cavity label (4 in the 2023 naming) belongs to no region: such cases are
reported as bad.

Checks per case: all files present and readable, every ``.nii.gz`` decompressed completely (a
truncated download: SimpleITK reads what is there and fills the rest with zeros without an error,
so the gzip stream is read to its end and its CRC checked); every modality and the segmentation with
the same size, spacing, origin and direction; label values among the layout's. The layout and the labels
to export back (``nnunet_ext_export_brats``) are recorded in ``dataset.json``.

Other files in a case folder (a brain ``mask.nii.gz``, a model's ``*_pred*.nii.gz``, an ``.h5`` copy, as
public BraTS copies hold) are not read: none is ground truth. One line lists them and ``dataset.json``
records them (``ignored_files``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnunet_ext.converters import check_problems, report_skipped
from nnunet_ext.raw_dataset import raw_dataset_target, write_atomically
from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.labels import BRATS_REGION_LABELS, BRATS_REGIONS_CLASS_ORDER


@dataclass(frozen=True)
class Layout:
    description: str
    channels: tuple[tuple[str, str], ...]  # (nnU-Net channel name, file name template with {case})
    segmentation: str
    to_nnunet: dict[int, int]  # source label -> nnU-Net label
    export: str  # the label convention nnunet_ext_export_brats writes for this dataset (labels.BRATS_EXPORT_LABELS)
    brain_mask: str | None = None


LAYOUTS: dict[str, Layout] = {
    "2020": Layout(
        "BraTS 2017-2021 naming (<case>_t1/_t1ce/_t2/_flair/_seg.nii.gz, labels 0/1/2/4)",
        (("T1", "{case}_t1.nii.gz"), ("T1ce", "{case}_t1ce.nii.gz"), ("T2", "{case}_t2.nii.gz"),
         ("Flair", "{case}_flair.nii.gz")),
        "{case}_seg.nii.gz", {0: 0, 1: 2, 2: 1, 4: 3}, export="2020",
    ),
    "2023": Layout(
        "BraTS 2023+ naming (<case>-t1n/-t1c/-t2w/-t2f/-seg.nii.gz, labels 0/1/2/3)",
        (("T1", "{case}-t1n.nii.gz"), ("T1ce", "{case}-t1c.nii.gz"), ("T2", "{case}-t2w.nii.gz"),
         ("Flair", "{case}-t2f.nii.gz")),
        "{case}-seg.nii.gz", {0: 0, 1: 2, 2: 1, 3: 3}, export="2023",
    ),
    "2015": Layout(
        "BraTS 2015 sample (T1c/Flair_subtrMeanDivStd, OTMultiClass labels 0-4, brainmask)",
        (("T1ce", "T1c_subtrMeanDivStd.nii.gz"), ("Flair", "Flair_subtrMeanDivStd.nii.gz")),
        "OTMultiClass.nii.gz", {0: 0, 1: 2, 2: 1, 3: 2, 4: 3}, export="2020", brain_mask="brainmask.nii.gz",
    ),
}


def relabelled(path: Path, mapping: dict[int, int], expected: str):
    """The label file ``path`` as a SimpleITK image with every value v replaced by ``mapping[v]`` (uint8),
    header kept; a value outside ``mapping`` raises one line ending in ``expected`` (what to pass instead)."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    labels = sitk.GetArrayFromImage(image)
    unexpected = sorted(set(np.unique(labels).tolist()) - set(mapping))
    if unexpected:
        raise NnunetExtError(f"{path} has label values {unexpected}, expected only {sorted(mapping)}; {expected}")
    table = np.zeros(max(mapping) + 1, np.uint8)
    for value, label in mapping.items():
        table[value] = label
    converted = sitk.GetImageFromArray(table[labels.astype(np.int64)])
    converted.CopyInformation(image)
    return converted


def detect_layout(case_dir: Path) -> str | None:
    """The layout whose first image file exists in ``case_dir``, or None."""
    for name, layout in LAYOUTS.items():
        if (case_dir / layout.channels[-1][1].format(case=case_dir.name)).is_file():
            return name
    return None


def layout_files(case_dir: Path, layout_name: str) -> set[str]:
    """The file names the layout reads in ``case_dir`` (modalities, segmentation, brain mask)."""
    layout = LAYOUTS[layout_name]
    names = {template.format(case=case_dir.name) for _, template in layout.channels}
    names.add(layout.segmentation.format(case=case_dir.name))
    return names | ({layout.brain_mask} if layout.brain_mask else set())


def ignored_files(cases: list[Path], layout_name: str) -> dict[str, list[str]]:
    """Per case, the files of its folder that the layout does not read (sorted; cases without any left out)."""
    found = {c.name: sorted(p.name for p in c.iterdir() if p.name not in layout_files(c, layout_name)) for c in cases}
    return {case: names for case, names in found.items() if names}


def report_ignored(ignored: dict[str, list[str]]) -> None:
    """One line naming the files not read (the first few, then how many more)."""
    if ignored:
        listed = [f"{case}/{name}" for case, names in ignored.items() for name in names]
        more = f" and {len(listed) - 6} more" if len(listed) > 6 else ""
        print(f"ignored {len(listed)} file(s) that are not a modality or the segmentation: "
              f"{', '.join(listed[:6])}{more} (listed in dataset.json, ignored_files)")


def case_folders(source: Path) -> list[Path]:
    if not source.is_dir():
        raise NnunetExtError(f"input folder not found: {source}")
    cases = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))
    if not cases:
        raise NnunetExtError(f"no case folders in {source}; pass the folder holding BraTS20_Training_001/, ...")
    return cases


def _geometry(image) -> tuple:
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def _geometry_problem(name: str, image, reference_name: str, reference) -> str | None:
    size, spacing, origin, direction = _geometry(image)
    ref_size, ref_spacing, ref_origin, ref_direction = _geometry(reference)
    if size != ref_size:
        return f"{name} has size {size}, {reference_name} {ref_size}"
    for what, a, b in (("spacing", spacing, ref_spacing), ("origin", origin, ref_origin),
                       ("direction", direction, ref_direction)):
        if not np.allclose(a, b, rtol=0, atol=1e-3):
            return f"{name} has {what} {tuple(round(v, 4) for v in a)}, {reference_name} {tuple(round(v, 4) for v in b)}"
    return None


def gzip_problem(path: Path) -> str | None:
    """What is wrong with the compression of ``path`` (a truncated or corrupt ``.gz``), or None.

    Reads the whole stream (1 MiB at a time), so the end-of-stream marker and the CRC are checked.
    """
    if not path.name.endswith(".gz"):
        return None
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except EOFError:
        return f"{path.name} is truncated (its gzip stream ends early; download it again)"
    except (gzip.BadGzipFile, zlib.error, OSError) as error:
        return f"{path.name} is not a valid gzip file ({error}; download it again)"
    return None


def convert_case(case_dir: Path, layout_name: str, images_out: Path, labels_out: Path | None) -> str | None:
    """Checks one case and writes it in nnU-Net format; returns what is wrong with it (nothing written) or None.

    ``labels_out`` None converts the images only (validation / test data without segmentation).
    """
    import SimpleITK as sitk

    layout = LAYOUTS[layout_name]
    case = case_dir.name
    files = [case_dir / template.format(case=case) for _, template in layout.channels]
    needed = list(files)
    seg_file = case_dir / layout.segmentation.format(case=case)
    if labels_out is not None:
        needed.append(seg_file)
    if layout.brain_mask:
        needed.append(case_dir / layout.brain_mask)
    missing = [f.name for f in needed if not f.is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    for path in needed:
        problem = gzip_problem(path)
        if problem:
            return problem
    images = {}
    for path in needed:
        try:
            images[path.name] = sitk.ReadImage(str(path))
        except RuntimeError as error:
            return f"cannot read {path.name} ({str(error).strip().splitlines()[-1] if str(error).strip() else 'unknown'})"
    first = files[0].name
    for name, image in images.items():
        problem = _geometry_problem(name, image, first, images[first])
        if problem:
            return problem

    segmentation = None
    if labels_out is not None:
        source = sitk.GetArrayFromImage(images[seg_file.name])
        values = np.unique(source)
        unexpected = [v for v in values.tolist() if v not in layout.to_nnunet]
        if unexpected:
            shown = ", ".join(f"{v:g}" for v in unexpected[:5])
            return f"{seg_file.name} has label values {shown}, expected only {sorted(layout.to_nnunet)}"
        segmentation = np.zeros(source.shape, np.uint8)
        for value, label in layout.to_nnunet.items():
            segmentation[source == value] = label

    for channel, path in enumerate(files):
        target = images_out / f"{case}_{channel:04d}.nii.gz"
        if layout.brain_mask:
            image = images[path.name]
            array = sitk.GetArrayFromImage(image)
            array[sitk.GetArrayFromImage(images[layout.brain_mask]) == 0] = 0
            masked = sitk.GetImageFromArray(array)
            masked.CopyInformation(image)
            sitk.WriteImage(masked, str(target), useCompression=True)
        else:
            shutil.copyfile(path, target)
    if segmentation is not None:
        label_image = sitk.GetImageFromArray(segmentation)
        label_image.CopyInformation(images[seg_file.name])
        sitk.WriteImage(label_image, str(labels_out / f"{case}.nii.gz"), useCompression=True)
    return None


def _layout_of_all(cases: list[Path], problems: dict[str, str]) -> str:
    """The one layout of the input's cases; unrecognised folders go to ``problems``."""
    layouts: dict[str, list[str]] = {}
    for case_dir in cases:
        layout = detect_layout(case_dir)
        if layout is None:
            problems[case_dir.name] = "no BraTS image files recognised (see nnunet_ext_convert_brats --help for the layouts)"
        else:
            layouts.setdefault(layout, []).append(case_dir.name)
    if len(layouts) > 1:
        mixed = "; ".join(f"{n}: {len(c)} case(s), e.g. {c[0]}" for n, c in layouts.items())
        raise NnunetExtError(f"the input mixes BraTS layouts ({mixed}); convert each layout separately")
    if not layouts:
        raise NnunetExtError(f"no BraTS case recognised in {cases[0].parent} (first folder: {cases[0].name}); "
                             f"expected one of: " + "; ".join(l.description for l in LAYOUTS.values()))
    return next(iter(layouts))


def _convert_all(cases: list[Path], layout: str, images_out: Path, labels_out: Path | None,
                 num_processes: int) -> dict[str, str]:
    arguments = [(c, layout, images_out, labels_out) for c in cases]
    if num_processes > 1:
        with ProcessPoolExecutor(num_processes) as pool:
            outcomes = list(pool.map(convert_case, *zip(*arguments)))
    else:
        outcomes = [convert_case(*a) for a in arguments]
    return {case_dir.name: problem for case_dir, problem in zip(cases, outcomes) if problem}


def convert_brats(source: str | Path, dataset_id: int, name: str = "BraTS", overwrite: bool = False,
                  skip_bad: bool = False, num_processes: int = 1, raw_root: str | Path | None = None) -> Path:
    """Converts a BraTS training folder into ``<raw_root or $nnUNet_raw>/DatasetXXX_<name>``; returns that folder.

    Raises :class:`NnunetExtError` naming every bad case (unless ``skip_bad``, which leaves them out
    and prints them), for an id used by another dataset, or for an existing folder without ``overwrite``.
    """
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    source = Path(source)
    cases = case_folders(source)
    target = raw_dataset_target(dataset_id, name, raw_root)
    problems: dict[str, str] = {}
    layout_name = _layout_of_all(cases, problems)
    layout = LAYOUTS[layout_name]
    candidates = [c for c in cases if c.name not in problems]
    ignored = ignored_files(candidates, layout_name)

    def write(folder: Path) -> None:
        (folder / "imagesTr").mkdir()
        (folder / "labelsTr").mkdir()
        problems.update(_convert_all(candidates, layout_name, folder / "imagesTr", folder / "labelsTr", num_processes))
        converted = len(cases) - len(problems)
        check_problems(problems, source, skip_bad, converted)
        generate_dataset_json(
            str(folder),
            channel_names={i: channel for i, (channel, _) in enumerate(layout.channels)},
            labels=dict(BRATS_REGION_LABELS),
            num_training_cases=converted,
            file_ending=".nii.gz",
            regions_class_order=BRATS_REGIONS_CLASS_ORDER,
            dataset_name=name,
            description=f"BraTS converted by nnunet_ext_convert_brats from {layout.description}; labels 1 edema, "
                        f"2 necrotic/non-enhancing core, 3 enhancing tumour (nnU-Net's Dataset137 convention)",
            reference="https://www.med.upenn.edu/cbica/brats/",
            license="see the BraTS data use agreement of the release you downloaded",
            converted_by="nnunet_ext_convert_brats",
            brats_layout=layout_name,
            brats_export_convention=layout.export,
            skipped_cases=dict(sorted(problems.items())),
            ignored_files=ignored,
        )

    write_atomically(target, overwrite, write)
    report_ignored(ignored)
    report_skipped(problems)
    return target


def convert_brats_images(source: str | Path, output: str | Path, overwrite: bool = False, skip_bad: bool = False,
                         num_processes: int = 1) -> Path:
    """Converts BraTS cases without segmentation (validation / test data) into an ``nnUNetv2_predict -i`` folder."""
    source, output = Path(source), Path(output)
    cases = case_folders(source)
    problems: dict[str, str] = {}
    layout_name = _layout_of_all(cases, problems)
    candidates = [c for c in cases if c.name not in problems]

    def write(folder: Path) -> None:
        problems.update(_convert_all(candidates, layout_name, folder, None, num_processes))
        check_problems(problems, source, skip_bad, len(cases) - len(problems), minimum=1)

    write_atomically(output, overwrite, write)
    report_skipped(problems)
    return output


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="nnunet_ext_convert_brats",
        description="Convert a BraTS download into an nnU-Net v2 region dataset (whole tumour, tumour core, "
                    "enhancing tumour; nnU-Net's Dataset137 convention). Layouts: "
                    + "; ".join(f"{n}: {l.description}" for n, l in LAYOUTS.items()),
    )
    parser.add_argument("-i", "--input", required=True, help="folder holding the case folders "
                        "(e.g. MICCAI_BraTS2020_TrainingData, or BraTS 2018 / 2019 / 2021 case folders side by side)")
    parser.add_argument("-d", "--dataset-id", type=int, help="nnU-Net dataset id (e.g. 501)")
    parser.add_argument("-n", "--name", default="BraTS", help="dataset name (default BraTS -> Dataset501_BraTS)")
    parser.add_argument("--images-only", metavar="OUTPUT",
                        help="cases without segmentation (validation/test data): write only the images, "
                             "nnU-Net-named, into this folder for nnUNetv2_predict -i")
    parser.add_argument("--skip-bad", action="store_true", help="leave out bad cases (listed) instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset / output folder")
    parser.add_argument("-np", "--num-processes", type=int, default=1, help="cases converted in parallel")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    if args.images_only:
        folder = convert_brats_images(args.input, args.images_only, args.overwrite, args.skip_bad, args.num_processes)
        print(f"wrote {folder}\nnext: nnUNetv2_predict -i {folder} -o PREDICTIONS -d ID -c 3d_fullres -tr TRAINER")
        return
    if args.dataset_id is None:
        raise NnunetExtError("pass a dataset id with -d (e.g. -d 501), or --images-only OUTPUT for data without labels")
    folder = convert_brats(args.input, args.dataset_id, args.name, args.overwrite, args.skip_bad, args.num_processes)
    layout = json.loads((folder / "dataset.json").read_text())["brats_layout"]
    print(f"wrote {folder} (layout {layout})")
    print(f"next: nnUNetv2_plan_and_preprocess -d {args.dataset_id} -c 3d_fullres --verify_dataset_integrity")


def main(argv: list[str] | None = None) -> int:
    """Console entry ``nnunet_ext_convert_brats``."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
