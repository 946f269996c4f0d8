"""``nnUNetv2_predict`` / ``nnUNetv2_ensemble`` output -> BraTS challenge labels and file names.

nnU-Net writes one ``<case id>.nii.gz`` label map per case with its own BraTS labels (1 edema,
2 necrotic / non-enhancing core, 3 enhancing tumour; ``Dataset137_BraTS21``), on the input's grid
and header. The challenge wants the case id as file name (``BraTS20_Validation_001.nii.gz``, which
the converter kept as nnU-Net case id) and its own labels:

- ``2020`` (BraTS 2017-2022): 1 necrotic / non-enhancing core, 2 edema, 4 enhancing tumour;
- ``2023`` (BraTS 2023+): 1 NETC, 2 SNFH, 3 ET.

The convention is ``--convention``, or else the one ``nnunet_ext_convert_brats`` recorded in the
dataset.json that nnU-Net copies into every prediction and ensemble folder. The header (spacing,
origin, direction) of each file is kept; labels are written as uint8. The output folder appears
complete or not at all.

With ``--references`` (nnU-Net label files of the same cases, e.g. ``gt_segmentations`` of a
validation fold) and ``--brats-config``, the exported files themselves are then scored by the official
BraTS package (:mod:`nnunet_ext.brats_metrics`): what the leaderboard would compute for them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnunet_ext.brats_metrics import CONFIGS
from nnunet_ext.raw_dataset import write_atomically
from nnunet_ext.converters.brats import relabelled
from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.evaluation import markdown, summarise_rows, write_csv
from nnunet_ext.labels import BRATS_EXPORT_LABELS, is_brats_region_dataset

ENDING = ".nii.gz"


def export_convention(prediction_folder: Path, convention: str | None) -> str:
    """The requested convention, or the one recorded in the prediction folder's dataset.json."""
    if convention is not None:
        if convention not in BRATS_EXPORT_LABELS:
            raise NnunetExtError(f"unknown convention '{convention}'; choose one of {', '.join(BRATS_EXPORT_LABELS)}")
        return convention
    dataset_json = prediction_folder / "dataset.json"
    if not dataset_json.is_file():
        raise NnunetExtError(f"{dataset_json} not found (nnUNetv2_predict writes it); pass --convention 2020 or 2023")
    info = json.loads(dataset_json.read_text())
    if not is_brats_region_dataset(info):
        raise NnunetExtError(f"{dataset_json} is not a BraTS region dataset of nnunet_ext_convert_brats "
                             f"(labels {info.get('labels')}); export needs nnU-Net's BraTS labels 1/2/3")
    recorded = info.get("brats_export_convention")
    if recorded is None:
        raise NnunetExtError(f"{dataset_json} records no BraTS convention (not converted by nnunet_ext_convert_brats); "
                             f"pass --convention 2020 or 2023")
    return recorded


def export_brats(prediction_folder: str | Path, output_folder: str | Path, convention: str | None = None,
                 overwrite: bool = False) -> list[Path]:
    """Writes every ``*.nii.gz`` of ``prediction_folder`` in BraTS labels into ``output_folder``; returns the files."""
    import SimpleITK as sitk

    prediction_folder, output_folder = Path(prediction_folder), Path(output_folder)
    if not prediction_folder.is_dir():
        raise NnunetExtError(f"prediction folder not found: {prediction_folder}")
    convention = export_convention(prediction_folder, convention)
    mapping = BRATS_EXPORT_LABELS[convention]
    files = sorted(prediction_folder.glob(f"*{ENDING}"))
    if not files:
        raise NnunetExtError(f"no predictions (*{ENDING}) in {prediction_folder}; run nnUNetv2_predict first")
    def write(folder: Path) -> None:
        for path in files:
            exported = relabelled(path, mapping, "pass the folder nnUNetv2_predict wrote (nnU-Net's BraTS labels)")
            sitk.WriteImage(exported, str(folder / path.name), useCompression=True)

    write_atomically(output_folder, overwrite, write)
    return [output_folder / f.name for f in files]


def check_evaluation(references: str | Path, config: str) -> Path:
    """The reference folder, once it exists and ``config`` takes the glioma labels an export holds."""
    from nnunet_ext.brats_metrics import GLIOMA_LABEL_CONFIGS, OTHER_LABELS

    references = Path(references)
    if not references.is_dir():
        raise NnunetExtError(f"reference folder {references} does not exist; pass nnU-Net label files of these cases "
                             f"(e.g. gt_segmentations of the dataset)")
    if config not in GLIOMA_LABEL_CONFIGS:
        raise NnunetExtError(f"--brats-config {config} expects {OTHER_LABELS.get(config, 'other labels')}, not the "
                             f"glioma labels of a BraTS export; use one of {', '.join(GLIOMA_LABEL_CONFIGS)}")
    return references


def evaluate_export(files: list[Path], references: str | Path, convention: str, config: str) -> tuple[list[dict], dict]:
    """Official BraTS metrics of exported ``files`` (labels of ``convention``) against ``references``.

    References are nnU-Net label files named like the exported ones; both reach the package in the
    configuration's labels through :func:`nnunet_ext.brats_metrics.export_labels` (a ``2023`` export as it
    was written). Returns (rows, package summary) as :func:`nnunet_ext.brats_metrics.official_metrics`.
    """
    from nnunet_ext.brats_metrics import export_labels, official_metrics

    references = check_evaluation(references, config)
    missing = [f.name for f in files if not (references / f.name).is_file()]
    if missing:
        raise NnunetExtError(f"{len(missing)} exported case(s) have no reference in {references} (first: {missing[0]}); "
                             f"pass the folder with the reference segmentations of these cases")
    prediction_lookup, reference_labels = export_labels(convention)
    pairs = [(f.name[: -len(ENDING)], f, references / f.name) for f in files]
    return official_metrics(pairs, config, prediction_lookup, reference_labels)


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="nnunet_ext_export_brats",
        description="Convert nnUNetv2_predict / nnUNetv2_ensemble output into BraTS challenge labels "
                    "(2020: 1 NCR, 2 ED, 4 ET; 2023: 1 NETC, 2 SNFH, 3 ET), one <case id>.nii.gz per case.",
    )
    parser.add_argument("-i", "--input", required=True, help="folder written by nnUNetv2_predict or nnUNetv2_ensemble")
    parser.add_argument("-o", "--output", required=True, help="new folder for the challenge submission")
    parser.add_argument("--convention", choices=sorted(BRATS_EXPORT_LABELS),
                        help="label convention (default: the one recorded by nnunet_ext_convert_brats)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--references", help="then score the exported files with the official BraTS package against "
                                             "these nnU-Net label files (e.g. gt_segmentations of a validation fold)")
    parser.add_argument("--brats-config", choices=CONFIGS, help="the package's configuration for --references")
    parser.add_argument("--evaluation-csv", help="with --references: per-case official metrics to this CSV, and the "
                                                 "package's per-case output beside it (.brats_<config>.json)")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    if args.references or args.brats_config or args.evaluation_csv:
        if not (args.references and args.brats_config):
            raise NnunetExtError("the official evaluation needs both --references FOLDER and --brats-config CONFIG")
        from nnunet_ext.brats_metrics import require_package

        require_package()
        check_evaluation(args.references, args.brats_config)
    files = export_brats(args.input, args.output, args.convention, args.overwrite)
    convention = export_convention(Path(args.input), args.convention)
    print(f"wrote {len(files)} case(s) to {args.output} ({convention} labels)")
    if args.references:
        official, summary = evaluate_export(files, args.references, convention, args.brats_config)
        name = Path(args.output).name
        rows = [{"trainer": name, "fold": None, **row} for row in official]
        print(markdown(summarise_rows(rows, None), f"{name} against {args.references}", None, args.brats_config))
        if args.evaluation_csv:
            write_csv(rows, args.evaluation_csv)
            summary_json = Path(args.evaluation_csv).with_suffix(f".brats_{args.brats_config}.json")
            summary_json.write_text(json.dumps(summary, indent=1))
            print(f"per-case official metrics: {args.evaluation_csv}, the package's output: {summary_json}")


def main(argv: list[str] | None = None) -> int:
    """Console entry ``nnunet_ext_export_brats``."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
