"""Per-case segmentation metrics (Dice, IoU, HD95, ASD) per region or class, as the papers report them.

Surface distances come from MONAI (``monai.metrics.compute_hausdorff_distance`` with
``percentile=95`` and ``compute_average_surface_distance(symmetric=True)``), in millimetres using the
image spacing. MONAI's HD95 is the larger of the two directed 95th-percentile distances; its
symmetric ASD is the mean over the distances from both surfaces.

Empty masks follow the BraTS challenge convention:

* reference and prediction both empty: Dice 1, IoU 1, HD95 0, ASD 0;
* exactly one empty: Dice 0, IoU 0, HD95 and ASD set to the image diagonal in mm (the largest
  possible distance, 373.13 mm for 240x240x155 at 1 mm).

Regions are read from ``dataset.json`` through nnU-Net's LabelManager: for region datasets
(BraTS-style, ``regions_class_order``) each declared region is evaluated as the union of its labels;
for label datasets each foreground label is evaluated on its own.

``--brats-config gli|mets|...`` adds the official BraTS challenge metrics (lesion-wise Dice and HD95,
and the package's own whole-region Dice and HD95) computed by the organisers' package
``brats-evaluation``: :mod:`nnunet_ext.brats_metrics`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli

METRICS = ("dice", "iou", "hd95", "asd")


@dataclass(frozen=True)
class CaseMetrics:
    case: str
    region: str
    dice: float
    iou: float
    hd95: float
    asd: float


def region_definitions(dataset_json: dict) -> dict[str, tuple[int, ...]]:
    """Evaluation regions of a dataset: name -> labels whose union forms the region."""
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    labels = dataset_json["labels"]
    manager = LabelManager(labels, dataset_json.get("regions_class_order"))
    names_by_value = {tuple(v) if isinstance(v, (list, tuple)) else (v,): k for k, v in labels.items()}
    if manager.has_regions:
        regions = [tuple(r) if isinstance(r, (list, tuple)) else (r,) for r in manager.foreground_regions]
    else:
        regions = [(label,) for label in manager.foreground_labels]
    return {names_by_value.get(r, "+".join(map(str, r))): r for r in regions}


def binary_metrics(prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """Dice, IoU, HD95 and ASD of two boolean masks on a grid with ``spacing`` (mm per axis)."""
    prediction = prediction.astype(bool)
    reference = reference.astype(bool)
    n_pred, n_ref = int(prediction.sum()), int(reference.sum())
    if n_pred == 0 and n_ref == 0:
        return {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "asd": 0.0}
    if n_pred == 0 or n_ref == 0:
        diagonal = float(math.sqrt(sum((n * s) ** 2 for n, s in zip(reference.shape, spacing))))
        return {"dice": 0.0, "iou": 0.0, "hd95": diagonal, "asd": diagonal}
    intersection = int(np.logical_and(prediction, reference).sum())
    dice = 2.0 * intersection / (n_pred + n_ref)
    iou = intersection / (n_pred + n_ref - intersection)
    hd95, asd = _surface_distances(prediction, reference, spacing)
    return {"dice": dice, "iou": iou, "hd95": hd95, "asd": asd}


def _surface_distances(prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...]) -> tuple[float, float]:
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    # Singleton axes (2D images stored as 1 x Y x X) carry no surface: drop them with their spacing.
    keep = [axis for axis, n in enumerate(reference.shape) if n > 1]
    spacing = [float(spacing[axis]) for axis in keep]
    pred = torch.from_numpy(prediction.reshape([prediction.shape[a] for a in keep]))[None, None]
    ref = torch.from_numpy(reference.reshape([reference.shape[a] for a in keep]))[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MONAI deprecation chatter inside its own utils
        hd95 = compute_hausdorff_distance(pred, ref, include_background=True, percentile=95, spacing=spacing)
        asd = compute_average_surface_distance(pred, ref, include_background=True, symmetric=True, spacing=spacing)
    return float(hd95.item()), float(asd.item())


def case_files(prediction_folder: str | Path, reference_folder: str | Path, dataset_json: dict,
               cases: list[str] | None = None) -> list[tuple[str, Path, Path]]:
    """(case id, prediction file, reference file) of every reference case (or only ``cases``).

    A folder that does not exist is an error naming it, a reference case without a prediction is an
    error (a silently smaller test set would bias the table), and so is a listed case without a reference.
    """
    prediction_folder, reference_folder = Path(prediction_folder), Path(reference_folder)
    for what, folder, fix in (("prediction", prediction_folder, "pass the -o folder of nnUNetv2_predict"),
                              ("reference", reference_folder, "pass the folder with the reference segmentations")):
        if not folder.is_dir():
            raise NnunetExtError(f"{what} folder {folder} does not exist; {fix}")
    ending = dataset_json["file_ending"]
    if cases is None:
        references = sorted(reference_folder.glob(f"*{ending}"))
    else:
        references = [reference_folder / f"{case}{ending}" for case in cases]
        absent = [r.name for r in references if not r.is_file()]
        if absent:
            raise NnunetExtError(f"{len(absent)} case(s) have no reference segmentation in {reference_folder} "
                                 f"(first: {absent[0]}); check the case list against that folder")
    if not references:
        raise NnunetExtError(f"no reference segmentations (*{ending}) in {reference_folder}")
    missing = [r.name for r in references if not (prediction_folder / r.name).is_file()]
    if missing:
        raise NnunetExtError(
            f"{len(missing)} reference case(s) have no prediction in {prediction_folder} (first: {missing[0]}); "
            f"run nnUNetv2_predict on all of them first"
        )
    return [(r.name[: -len(ending)], prediction_folder / r.name, r) for r in references]


def _geometry(segmentation: np.ndarray, properties: dict) -> tuple:
    """(shape, spacing, origin) of a segmentation as nnU-Net's reader returns it (origin: SimpleITK's reader only)."""
    origin = properties.get("sitk_stuff", {}).get("origin")
    return (tuple(segmentation.shape[1:]), tuple(round(float(v), 4) for v in properties["spacing"]),
            None if origin is None else tuple(round(float(v), 3) for v in origin))


def read_case_pair(reader, case: str, prediction_file: Path, reference_file: Path) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(prediction, reference, spacing) of one case, read with nnU-Net's ``reader``.

    An unreadable file, or a prediction on another grid than its reference (shape, spacing, origin), is an
    error naming the case and both geometries: a prediction that merely broadcasts would be scored wrongly."""
    read = {}
    for what, path in (("reference", reference_file), ("prediction", prediction_file)):
        try:
            read[what] = reader.read_seg(str(path))
        except Exception as error:  # SimpleITK / nibabel raise RuntimeError, OSError, ... for what they cannot read
            first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            raise NnunetExtError(f"case {case}: the {what} {path} cannot be read ({first}); "
                                 f"write it again ({'nnUNetv2_predict' if what == 'prediction' else 'the converter'})"
                                 ) from None
    (prediction, prediction_properties), (reference, reference_properties) = read["prediction"], read["reference"]
    got, expected = _geometry(prediction, prediction_properties), _geometry(reference, reference_properties)
    if got[:2] != expected[:2] or (None not in (got[2], expected[2]) and
                                   not np.allclose(got[2], expected[2], atol=1e-3)):
        describe = "shape {}, spacing {} in array order, origin {}".format
        raise NnunetExtError(f"case {case}: the prediction {prediction_file} ({describe(*got)}) is not on its "
                             f"reference's grid ({describe(*expected)}); predict it again from the raw images "
                             "with nnUNetv2_predict")
    return prediction[0], reference[0], tuple(reference_properties["spacing"])


def evaluate_folders(prediction_folder: str | Path, reference_folder: str | Path, dataset_json: dict,
                     cases: list[str] | None = None, progress: str | None = None) -> list[CaseMetrics]:
    """Metrics for every reference case (or only ``cases``, given as case ids) against the prediction of the same file name.

    Files are read with the reader nnU-Net picks for the dataset's ``file_ending``; which files, and
    the errors for missing ones: :func:`case_files`. With ``progress`` (a label), one line per case
    goes to stderr: ``LABEL: case 3/16 NAME, 1.2 s``.
    """
    import sys
    import time

    files = case_files(prediction_folder, reference_folder, dataset_json, cases)
    if progress:
        print(f"{progress}: evaluating {len(files)} case(s)", file=sys.stderr, flush=True)
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    reader = determine_reader_writer_from_dataset_json(dataset_json, str(files[0][2]))()
    regions = region_definitions(dataset_json)
    results = []
    for index, (case, prediction_file, reference_file) in enumerate(files, 1):
        started = time.perf_counter()
        prediction, reference, spacing = read_case_pair(reader, case, prediction_file, reference_file)
        for name, labels in regions.items():
            values = binary_metrics(np.isin(prediction, labels), np.isin(reference, labels), spacing)
            results.append(CaseMetrics(case=case, region=name, **values))
        if progress:
            print(f"{progress}: case {index}/{len(files)} {case}, {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)
    return results


def official_folder_metrics(prediction_folder: str | Path, reference_folder: str | Path, dataset_json: dict,
                            config: str, cases: list[str] | None = None,
                            progress: str | None = None) -> tuple[list[dict], dict]:
    """The official BraTS metrics of the same cases as :func:`evaluate_folders`: (rows, package summary JSON).

    Rows and labels: :func:`nnunet_ext.brats_metrics.official_metrics` and ``dataset_labels``. With
    ``progress`` (a label), a line on stderr before and after (the package evaluates every case in one call).
    """
    import sys
    import time

    from nnunet_ext import brats_metrics

    labels = brats_metrics.dataset_labels(dataset_json, config)
    if dataset_json["file_ending"] not in (".nii.gz", ".nii"):
        raise NnunetExtError(f"--brats-config needs NIfTI label files; this dataset's are {dataset_json['file_ending']}")
    files = case_files(prediction_folder, reference_folder, dataset_json, cases)
    started = time.perf_counter()
    if progress:
        print(f"{progress}: official BraTS metrics ({config}) of {len(files)} case(s) ...", file=sys.stderr, flush=True)
    result = brats_metrics.official_metrics(files, config, labels.lookup, labels)
    if progress:
        print(f"{progress}: official BraTS metrics done, {time.perf_counter() - started:.1f} s", file=sys.stderr,
              flush=True)
    return result


def merge_rows(rows: list[dict], official: list[dict] | None = None) -> list[dict]:
    """``rows`` (dicts with ``case``, ``region`` and our metrics) with the official columns added.

    Every row gets the columns of ``official`` (:func:`official_folder_metrics`), empty where it has
    no such (case, region); its label groups that are none of our regions (``netc``, ``snfh`` of
    ``gli``) become rows of their own, after the case's other rows, with our metrics empty.
    """
    from nnunet_ext.brats_metrics import COUNTS, OFFICIAL_METRICS

    rows = [dict(r) for r in rows]
    if official is None:
        return rows
    extra = OFFICIAL_METRICS + COUNTS
    ours = [k for k in rows[0] if k not in ("case", "region")] if rows else list(METRICS)
    by_key = {(r["case"], r["region"]): r for r in rows}
    for row in rows:
        row.update({k: None for k in extra})
    own: dict[str, list[dict]] = {}
    for o in official:
        row = by_key.get((o["case"], o["region"]))
        if row is None:
            row = {"case": o["case"], "region": o["region"], **{k: None for k in ours}}
            own.setdefault(o["case"], []).append(row)
        row.update({k: o[k] for k in extra})
    merged = []
    for case in dict.fromkeys(r["case"] for r in rows + official):
        merged += [r for r in rows if r["case"] == case] + own.get(case, [])
    return merged


def summarise(results: list[CaseMetrics]) -> dict[str, dict[str, tuple[float, float]]]:
    """region -> metric -> (mean, standard deviation over cases)."""
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for region in dict.fromkeys(r.region for r in results):
        rows = [r for r in results if r.region == region]
        summary[region] = {
            m: (float(np.mean([getattr(r, m) for r in rows])), float(np.std([getattr(r, m) for r in rows])))
            for m in METRICS
        }
    return summary


def format_table(summaries: dict[str, dict[str, dict[str, tuple[float, float]]]]) -> str:
    """A Markdown table with one row per (method, region): mean ± SD of Dice (%), IoU (%), HD95 and ASD (mm)."""
    lines = [
        "| method | region | Dice % | IoU % | HD95 mm | ASD mm |",
        "|---|---|---|---|---|---|",
    ]
    for method, summary in summaries.items():
        for region, metrics in summary.items():
            cells = [
                f"{100 * metrics['dice'][0]:.1f} ± {100 * metrics['dice'][1]:.1f}",
                f"{100 * metrics['iou'][0]:.1f} ± {100 * metrics['iou'][1]:.1f}",
                f"{metrics['hd95'][0]:.2f} ± {metrics['hd95'][1]:.2f}",
                f"{metrics['asd'][0]:.2f} ± {metrics['asd'][1]:.2f}",
            ]
            lines.append(f"| {method} | {region} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_official_table(tables: dict[str, list[dict]], config: str) -> str:
    """Markdown: mean ± SD over cases of the official metrics per (method, region).

    NaN (no lesion in either file) is left out, and a cell says over how many cases when that is not
    all; an infinite lesion-wise HD95 (lesions, none matched) makes the mean infinite.
    """
    from nnunet_ext.brats_metrics import OFFICIAL_LABELS, OFFICIAL_METRICS, without_nan

    lines = [f"Official BraTS metrics (brats-evaluation, config {config}):", "",
             "| method | region | cases | " + " | ".join(OFFICIAL_LABELS[m][0] for m in OFFICIAL_METRICS) + " |",
             "|---|---|---|" + "---|" * len(OFFICIAL_METRICS)]
    for method, rows in tables.items():
        for region in dict.fromkeys(r["region"] for r in rows):
            mine = [r for r in rows if r["region"] == region]
            cells = []
            for metric in OFFICIAL_METRICS:
                values = np.asarray(without_nan(r[metric] for r in mine), float)
                scale = OFFICIAL_LABELS[metric][1]
                if not len(values):
                    cell = "n/a"
                elif not np.all(np.isfinite(values)):
                    cell = f"inf ({int(np.sum(~np.isfinite(values)))} of {len(values)} infinite)"
                else:
                    cell = f"{scale * values.mean():.2f} ± {scale * values.std():.2f}"
                cells.append(cell + ("" if len(values) in (0, len(mine)) else f" (n={len(values)})"))
            lines.append(f"| {method} | {region} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(results: list[CaseMetrics], path: str | Path, official: list[dict] | None = None) -> None:
    """Per-case metrics; with ``official`` rows (:func:`official_folder_metrics`) their columns too (:func:`merge_rows`)."""
    rows = merge_rows([asdict(r) for r in results], official)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _main(argv=None) -> None:
    from nnunet_ext.brats_metrics import CONFIGS

    parser = argparse.ArgumentParser(
        prog="nnunet_ext_evaluate",
        description="Dice, IoU, HD95 and ASD per region/class of predicted segmentations against references "
                    "(progress: one line per case on stderr)."
    )
    parser.add_argument("-p", "--predictions", required=True, help="folder written by nnUNetv2_predict")
    parser.add_argument("-r", "--references", required=True, help="folder with reference segmentations")
    parser.add_argument("-j", "--dataset-json", required=True, help="the dataset's dataset.json")
    parser.add_argument("-o", "--csv", help="also write per-case metrics to this CSV file")
    parser.add_argument("--brats-config", choices=CONFIGS,
                        help="also the official BraTS metrics (lesion-wise Dice and HD95) of this configuration of "
                             "the package brats-evaluation; with -o, its per-case JSON goes beside the CSV")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    if not Path(args.dataset_json).is_file():
        raise NnunetExtError(f"dataset.json not found: {args.dataset_json}")
    dataset_json = json.loads(Path(args.dataset_json).read_text())
    if args.brats_config:
        from nnunet_ext.brats_metrics import dataset_labels, require_package

        require_package()
        dataset_labels(dataset_json, args.brats_config)
    name = Path(args.predictions).name
    results = evaluate_folders(args.predictions, args.references, dataset_json, progress=name)
    print(format_table({name: summarise(results)}))
    official = None
    if args.brats_config:
        official, package_summary = official_folder_metrics(args.predictions, args.references, dataset_json,
                                                            args.brats_config, progress=name)
        print()
        print(format_official_table({name: official}, args.brats_config))
    if args.csv:
        write_csv(results, args.csv, official)
        print(f"per-case metrics: {args.csv}")
        if official is not None:
            summary_json = Path(args.csv).with_suffix(f".brats_{args.brats_config}.json")
            summary_json.write_text(json.dumps(package_summary, indent=1))
            print(f"the package's per-case results (the format of brats-evaluate --summary_json): {summary_json}")


def main(argv=None) -> int:
    return run_cli(_main, argv)
