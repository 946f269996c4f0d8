"""One evaluation: per-case segmentation metrics per region or class, their summary, tables and CSV.

Dice and IoU by voxel counting; surface distances from MONAI (``monai.metrics.compute_hausdorff_distance``
with ``percentile=95`` and ``compute_average_surface_distance(symmetric=True)``), in millimetres using the
image spacing. MONAI's HD95 is the larger of the two directed 95th-percentile distances; its symmetric
ASD is the mean over the distances from both surfaces.

Empty masks follow the BraTS challenge convention:

* reference and prediction both empty: Dice 1, IoU 1, HD95 0, ASD 0;
* exactly one empty: Dice 0, IoU 0, HD95 and ASD set to the image diagonal in mm (the largest
  possible distance, 373.13 mm for 240x240x155 at 1 mm).

Regions: :func:`nnunet_ext.labels.region_definitions`. Voxels where the reference holds the dataset's
ignore label are left out, as nnU-Net's ``compute_metrics`` (``nnunetv2.evaluation.evaluate_predictions``)
leaves them out of its Dice and IoU; here they count as background in the prediction for every metric.

``--brats-config gli|mets|...`` adds the official BraTS challenge metrics (lesion-wise Dice and HD95,
and the package's own whole-region Dice and HD95) computed by the organisers' package
``brats-evaluation``: :mod:`nnunet_ext.brats_metrics`.

Summaries are means ± standard error over cases (and over folds), with a paired Wilcoxon test against
a baseline; :func:`markdown` and :func:`write_csv` are the one table format and the one CSV writer of
``nnunet_ext_evaluate`` (one prediction folder, :func:`main`) and ``nnunet_ext_report`` (several,
:mod:`nnunet_ext.workflow.report`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nnunet_ext import brats_metrics
from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.labels import ignore_label, region_definitions

METRICS = ("dice", "iou", "hd95", "asd")
CONVENTION = (
    "Empty masks (BraTS convention): reference and prediction both empty give Dice 1, IoU 1, HD95 0, ASD 0; "
    "exactly one empty gives Dice 0, IoU 0, and HD95 = ASD = the image diagonal in mm. HD95 is the larger of "
    "the two directed 95th-percentile surface distances (MONAI `compute_hausdorff_distance(percentile=95)`), "
    "ASD the symmetric average surface distance (MONAI `compute_average_surface_distance(symmetric=True)`), "
    "both in mm from the image spacing; Dice and IoU by voxel counting."
)
LABELS = {"dice": ("Dice %", 100.0), "iou": ("IoU %", 100.0), "hd95": ("HD95 mm", 1.0), "asd": ("ASD mm", 1.0),
          **brats_metrics.OFFICIAL_LABELS}


@dataclass(frozen=True)
class CaseMetrics:
    case: str
    region: str
    dice: float
    iou: float
    hd95: float
    asd: float


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
    """(case id, prediction file, reference file) of every prediction in ``prediction_folder``, or of ``cases``.

    Without ``cases`` the prediction folder decides which cases are scored: a fold's ``validation/``
    folder against all of ``gt_segmentations`` scores that fold's cases. A prediction without a
    reference is an error, and so is, with ``cases``, a listed case without a reference or a prediction
    (a silently smaller test set would bias the table); a folder that does not exist is an error naming it.
    """
    prediction_folder, reference_folder = Path(prediction_folder), Path(reference_folder)
    for what, folder, fix in (("prediction", prediction_folder, "pass the -o folder of nnUNetv2_predict"),
                              ("reference", reference_folder, "pass the folder with the reference segmentations")):
        if not folder.is_dir():
            raise NnunetExtError(f"{what} folder {folder} does not exist; {fix}")
    ending = dataset_json["file_ending"]
    if cases is None:
        cases = [p.name[: -len(ending)] for p in sorted(prediction_folder.glob(f"*{ending}"))]
        if not cases:
            raise NnunetExtError(f"no predictions (*{ending}) in {prediction_folder}; run nnUNetv2_predict first")
    absent = [f"{c}{ending}" for c in cases if not (reference_folder / f"{c}{ending}").is_file()]
    if absent:
        raise NnunetExtError(f"{len(absent)} case(s) have no reference segmentation in {reference_folder} (first: "
                             f"{absent[0]}); pass the folder with the reference segmentations of these cases")
    missing = [f"{c}{ending}" for c in cases if not (prediction_folder / f"{c}{ending}").is_file()]
    if missing:
        raise NnunetExtError(f"{len(missing)} case(s) have no prediction in {prediction_folder} (first: "
                             f"{missing[0]}); run nnUNetv2_predict on all of them first")
    return [(c, prediction_folder / f"{c}{ending}", reference_folder / f"{c}{ending}") for c in cases]


def case_reader(dataset_json: dict, example_file: Path):
    """nnU-Net's reader of the dataset's label files, chosen as nnU-Net's evaluation chooses it.

    That is the first reader for the file ending that reads ``example_file``; when none does, the first
    for the file ending, so that reading the case fails with :func:`read_case_pair`'s one-line error.
    """
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    with contextlib.redirect_stderr(io.StringIO()):  # nnU-Net prints the traceback of each reader that fails
        try:
            return determine_reader_writer_from_dataset_json(dataset_json, str(example_file), verbose=False)()
        except RuntimeError:
            pass
    try:
        return determine_reader_writer_from_dataset_json(dataset_json, verbose=False)()
    except RuntimeError:
        raise NnunetExtError(f"nnU-Net has no reader for the file ending {dataset_json['file_ending']} of "
                             f"{example_file}; check file_ending in dataset.json") from None


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
    """Metrics of every prediction (or only ``cases``, given as case ids) against the reference of the same file name.

    Which files, and the errors for missing ones: :func:`case_files`; reading and the grid check:
    :func:`read_case_pair`. Voxels where the reference holds the ignore label are masked (module
    docstring). With ``progress`` (a label), one line per case goes to stderr: ``LABEL: case 3/16 NAME, 1.2 s``.
    """
    files = case_files(prediction_folder, reference_folder, dataset_json, cases)
    if progress:
        subset = ""
        if cases is None:
            references = sum(1 for _ in Path(reference_folder).glob(f"*{dataset_json['file_ending']}"))
            subset = f" of {references} in {reference_folder} (those predicted)" if references > len(files) else ""
        print(f"{progress}: evaluating {len(files)} case(s){subset}", file=sys.stderr, flush=True)
    reader = case_reader(dataset_json, files[0][2])
    regions = region_definitions(dataset_json)
    ignored = ignore_label(dataset_json)
    results = []
    for index, (case, prediction_file, reference_file) in enumerate(files, 1):
        started = time.perf_counter()
        prediction, reference, spacing = read_case_pair(reader, case, prediction_file, reference_file)
        scored = np.ones(reference.shape, bool) if ignored is None else reference != ignored
        for name, labels in regions.items():
            values = binary_metrics(np.isin(prediction, labels) & scored, np.isin(reference, labels), spacing)
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
    rows = [dict(r) for r in rows]
    if official is None:
        return rows
    extra = brats_metrics.OFFICIAL_METRICS + brats_metrics.COUNTS
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


@dataclass(frozen=True)
class Source:
    """Predictions of one trainer (and fold) and the cases to evaluate in them."""

    trainer: str
    fold: int | None
    predictions: Path
    cases: list[str] | None  # None: every prediction in the folder


def evaluate_sources(sources: list[Source], references: Path, dataset_json: dict, brats_config: str | None = None,
                     package_summaries: dict | None = None) -> list[dict]:
    """One row per (trainer, fold, case, region) with the four metrics.

    With ``brats_config`` also the official metrics (:func:`merge_rows`: rows of
    their own for label groups that are none of our regions); ``package_summaries`` then receives the
    package's per-case output of each source under its label ("trainer" or "trainer fold k").
    """
    rows = []
    for source in sources:
        label = source.trainer + ("" if source.fold is None else f" fold {source.fold}")
        own = [asdict(m) for m in evaluate_folders(source.predictions, references, dataset_json, source.cases,
                                                   progress=label)]
        if brats_config is not None:
            official, summary = official_folder_metrics(source.predictions, references, dataset_json, brats_config,
                                                        source.cases, progress=label)
            own = merge_rows(own, official)
            if package_summaries is not None:
                package_summaries[label] = summary
        rows += [{"trainer": source.trainer, "fold": source.fold, **row} for row in own]
    return rows


def _present(value) -> bool:
    """A value to count: not None (no such metric for this region) and not NaN (no lesion in either file)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, float)
    with np.errstate(invalid="ignore"):  # infinite values: mean inf, SE NaN
        se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se


def paired_test(values: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """(mean difference, two-sided Wilcoxon signed-rank p-value); identical values give p = 1.

    Equal values (infinite ones too: both missed every lesion) differ by 0.
    """
    from scipy.stats import wilcoxon

    values, baseline = np.asarray(values, float), np.asarray(baseline, float)
    with np.errstate(invalid="ignore"):
        differences = np.where(values == baseline, 0.0, values - baseline)
    if not np.any(differences):
        return 0.0, 1.0
    return float(differences.mean()), float(wilcoxon(differences).pvalue)


def _metrics_of(rows: list[dict]) -> tuple[str, ...]:
    return METRICS + tuple(m for m in brats_metrics.OFFICIAL_METRICS if rows and m in rows[0])


def summarise_rows(rows: list[dict], baseline: str | None, metrics: tuple[str, ...] | None = None) -> list[dict]:
    """One row per (trainer, region, metric): means and standard errors over cases and folds, test vs baseline.

    ``metrics`` defaults to the four per-region metrics plus the official ones the rows have. Values
    that are None or NaN are left out (``n_cases`` counts the rest; the paired test uses the cases
    where both have a value); a (trainer, region, metric) without any value gets no row.
    """
    metrics = _metrics_of(rows) if metrics is None else metrics
    trainers = list(dict.fromkeys(r["trainer"] for r in rows))
    regions = list(dict.fromkeys(r["region"] for r in rows))
    by_key = {(r["trainer"], r["region"], r["fold"], r["case"]): r for r in rows}
    summary = []
    for trainer in trainers:
        for region in regions:
            mine = [r for r in rows if r["trainer"] == trainer and r["region"] == region]
            keys = [(r["fold"], r["case"]) for r in mine]
            folds = sorted({r["fold"] for r in mine if r["fold"] is not None})
            if baseline is not None and trainer != baseline:
                missing = [k for k in keys if (baseline, region, *k) not in by_key]
                if missing or len(keys) != sum(1 for r in rows if r["trainer"] == baseline and r["region"] == region):
                    raise NnunetExtError(f"{trainer} and baseline {baseline} were evaluated on different cases "
                                         f"(e.g. {missing[0][1] if missing else 'extra baseline cases'}); use the "
                                         f"same splits / test set for both")
            for metric in metrics:
                have = [r for r in mine if _present(r.get(metric))]
                if not have:
                    continue
                mean, se = _mean_se([r[metric] for r in have])
                entry = {"trainer": trainer, "region": region, "metric": metric, "n_cases": len(have),
                         "mean": mean, "se_cases": se, "n_folds": len(folds) or None,
                         "mean_over_folds": None, "se_over_folds": None,
                         "baseline": None, "mean_difference": None, "wilcoxon_p": None}
                fold_values = [[r[metric] for r in have if r["fold"] == f] for f in folds]
                if len(folds) > 1 and all(fold_values):
                    entry["mean_over_folds"], entry["se_over_folds"] = _mean_se([np.mean(v) for v in fold_values])
                if baseline is not None and trainer != baseline:
                    pairs = [(r[metric], by_key[(baseline, region, r["fold"], r["case"])].get(metric)) for r in have]
                    pairs = [(a, b) for a, b in pairs if _present(b)]
                    entry["baseline"] = baseline
                    if pairs:
                        entry["mean_difference"], entry["wilcoxon_p"] = paired_test(*zip(*pairs))
                summary.append(entry)
    return summary


def mean_se_cell(mean: float | None, se: float | None, scale: float, digits: int = 2) -> str:
    """``mean ± se`` times ``scale`` (100: Dice in points), ``digits`` decimals; no ``± ...`` without an SE."""
    if mean is None:
        return ""
    return f"{scale * mean:.{digits}f}" + ("" if se is None or math.isnan(se) else f" ± {scale * se:.{digits}f}")


def _table_rows(summary: list[dict], metrics: tuple[str, ...]) -> dict[tuple[str, str], dict[str, dict]]:
    rows_by: dict[tuple[str, str], dict[str, dict]] = {}
    for s in summary:
        if s["metric"] in metrics:
            rows_by.setdefault((s["trainer"], s["region"]), {})[s["metric"]] = s
    return rows_by


def _tables(summary: list[dict], metrics: tuple[str, ...], baseline: str | None, heading: str) -> list[str]:
    """The three tables (over cases, over folds, paired comparison) of ``metrics``."""
    rows_by = _table_rows(summary, metrics)
    if not rows_by:
        return []
    metrics_header = " | ".join(LABELS[m][0] for m in metrics)

    def n_of(cells: dict, metric: str, key: str) -> str:
        first = next(iter(cells.values()))[key]
        return "" if metric not in cells or cells[metric][key] == first else f" (n={cells[metric][key]})"

    def cell(cells: dict, metric: str, mean_key: str, se_key: str, n_key: str) -> str:
        if metric not in cells:
            return "n/a"
        values = cells[metric]
        return mean_se_cell(values[mean_key], values[se_key], LABELS[metric][1]) + n_of(cells, metric, n_key)

    lines = ["", f"## {heading}Mean ± standard error over cases", "",
             f"| trainer | region | cases | {metrics_header} |", "|---|---|---|" + "---|" * len(metrics)]
    for (trainer, region), cells in rows_by.items():
        n = next(iter(cells.values()))["n_cases"]
        lines.append(f"| {trainer} | {region} | {n} | "
                     + " | ".join(cell(cells, m, "mean", "se_cases", "n_cases") for m in metrics) + " |")
    if any(s["mean_over_folds"] is not None for c in rows_by.values() for s in c.values()):
        lines += ["", f"## {heading}Mean ± standard error over folds (of the per-fold means)", "",
                  f"| trainer | region | folds | {metrics_header} |", "|---|---|---|" + "---|" * len(metrics)]
        for (trainer, region), cells in rows_by.items():
            lines.append(f"| {trainer} | {region} | {next(iter(cells.values()))['n_folds']} | " + " | ".join(
                "n/a" if m not in cells else mean_se_cell(cells[m]["mean_over_folds"], cells[m]["se_over_folds"],
                                                          LABELS[m][1]) for m in metrics) + " |")
    if baseline is not None and any(s["baseline"] for c in rows_by.values() for s in c.values()):
        lines += ["", f"## {heading}Paired comparison with {baseline}", "",
                  "Mean per-case difference (trainer − baseline) and the two-sided Wilcoxon signed-rank p-value "
                  "(scipy.stats.wilcoxon), paired by case; no correction for multiple comparisons.", "",
                  "| trainer | region | " + " | ".join(f"Δ {LABELS[m][0]} | p" for m in metrics) + " |",
                  "|---|---|" + "---|---|" * len(metrics)]
        for (trainer, region), cells in rows_by.items():
            if next(iter(cells.values()))["baseline"] is None:
                continue
            lines.append(f"| {trainer} | {region} | " + " | ".join(
                "n/a | " if m not in cells or cells[m]["mean_difference"] is None else
                f"{LABELS[m][1] * cells[m]['mean_difference']:+.2f} | {cells[m]['wilcoxon_p']:.3g}" for m in metrics) + " |")
    return lines


def markdown(summary: list[dict], title: str, baseline: str | None, brats_config: str | None = None) -> str:
    """The report's text: our metrics' tables, and with ``brats_config`` the official metrics' tables.

    The tables of :func:`_tables`; the conventions paragraph only where our metrics are summarised, the
    official section described by :func:`nnunet_ext.brats_metrics.describe`.
    """
    lines = [f"# {title}"]
    own = _tables(summary, METRICS, baseline, "")
    if own:
        lines += ["", CONVENTION] + own
    if brats_config is not None:
        lines += ["", f"## Official BraTS metrics (brats-evaluation, config {brats_config})", "",
                  brats_metrics.describe(brats_config)]
        lines += _tables(summary, brats_metrics.OFFICIAL_METRICS, baseline, "Official: ")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: str | Path) -> None:
    """The project's CSV files (per-case rows, summaries): one column per key of the first row, None as empty."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_dataset_json(path: str | Path) -> dict:
    """The dataset.json at ``path`` (``-j`` of the commands), or an error naming it."""
    if not Path(path).is_file():
        raise NnunetExtError(f"dataset.json not found: {path}")
    return json.loads(Path(path).read_text())


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="nnunet_ext_evaluate",
        description="Dice, IoU, HD95 and ASD per region/class of one folder of predicted segmentations against "
                    "references: the report of nnunet_ext_report for one folder, printed (progress: one line per "
                    "case on stderr)."
    )
    parser.add_argument("-p", "--predictions", required=True,
                        help="folder written by nnUNetv2_predict (or a fold's validation folder); its cases are scored")
    parser.add_argument("-r", "--references", required=True, help="folder with reference segmentations")
    parser.add_argument("-j", "--dataset-json", required=True, help="the dataset's dataset.json")
    parser.add_argument("-o", "--csv", help="also write per-case metrics to this CSV file (the columns of "
                                            "nnunet_ext_report's cases.csv)")
    parser.add_argument("--brats-config", choices=brats_metrics.CONFIGS,
                        help="also the official BraTS metrics (lesion-wise Dice and HD95) of this configuration of "
                             "the package brats-evaluation; with -o, its per-case JSON goes beside the CSV")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    dataset_json = read_dataset_json(args.dataset_json)
    if args.brats_config:
        brats_metrics.require_package()
        brats_metrics.dataset_labels(dataset_json, args.brats_config)
    name = Path(args.predictions).name
    package_summaries: dict = {}
    rows = evaluate_sources([Source(name, None, Path(args.predictions), None)], Path(args.references), dataset_json,
                            args.brats_config, package_summaries)
    print(markdown(summarise_rows(rows, None), f"{name} against {args.references}", None, args.brats_config))
    if args.csv:
        write_csv(rows, args.csv)
        print(f"per-case metrics: {args.csv}")
        if args.brats_config:
            summary_json = Path(args.csv).with_suffix(f".brats_{args.brats_config}.json")
            summary_json.write_text(json.dumps(package_summaries[name], indent=1))
            print(f"the package's per-case results (the format of brats-evaluate --summary_json): {summary_json}")


def main(argv=None) -> int:
    """Console entry ``nnunet_ext_evaluate``."""
    return run_cli(_main, argv)
