"""Comparison report: Dice, IoU, HD95, ASD per region/class and trainer, with a paired test against a baseline.

Three sources of predictions:

- cross-validation (default): each fold's ``validation/`` folder written by ``nnUNetv2_train``
  against ``$nnUNet_preprocessed/DatasetXXX/gt_segmentations``, cases from ``splits_final.json``;
- ``--test``: the fixed split's test cases (recorded by ``nnunet_ext_cv --split-file``), predicted
  by ``nnunet_ext_cv`` into ``<trainer folder>/fold_0/nnunet_ext_test``, against ``labelsTr`` of the raw dataset;
- ``--predictions NAME=FOLDER ... --references FOLDER -j dataset.json``: any separate test set.

Metrics come from :mod:`nnunet_ext.evaluation` (Dice and IoU by voxel counting; HD95 and ASD from
MONAI, in mm), with the BraTS empty-mask convention. Outputs in ``--output``: ``report.md`` (tables
of mean ± standard error over cases and, with several folds, over folds, plus the paired tests),
``summary.csv`` (one row per trainer, region and metric), ``cases.csv`` (every case), and
``boxplots.png``. The paired test is SciPy's Wilcoxon signed-rank test (two-sided) on the
per-case values of each trainer and the baseline, per region and metric, paired by case.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.evaluation import METRICS, evaluate_folders
from nnunet_ext.workflow.cv import (PLANS, SPLIT_RECORD, TEST_PREDICTIONS, dataset_paths, read_split_record,
                                    trainer_folder)

CONVENTION = (
    "Empty masks (BraTS convention): reference and prediction both empty give Dice 1, IoU 1, HD95 0, ASD 0; "
    "exactly one empty gives Dice 0, IoU 0, and HD95 = ASD = the image diagonal in mm. HD95 is the larger of "
    "the two directed 95th-percentile surface distances (MONAI `compute_hausdorff_distance(percentile=95)`), "
    "ASD the symmetric average surface distance (MONAI `compute_average_surface_distance(symmetric=True)`), "
    "both in mm from the image spacing; Dice and IoU by voxel counting."
)
LABELS = {"dice": ("Dice %", 100.0), "iou": ("IoU %", 100.0), "hd95": ("HD95 mm", 1.0), "asd": ("ASD mm", 1.0)}


@dataclass(frozen=True)
class Source:
    """Predictions of one trainer (and fold) and the cases to evaluate in them."""

    trainer: str
    fold: int | None
    predictions: Path
    cases: list[str] | None  # None: every reference case


def cv_sources(dataset: str, configuration: str, trainers: list[str], folds: list[int], plans: str = PLANS):
    """(sources, reference folder, dataset.json) of the folds' validation predictions."""
    paths = dataset_paths(dataset)
    splits_file = paths.preprocessed / "splits_final.json"
    if not splits_file.is_file():
        raise NnunetExtError(f"{splits_file} not found; train first (nnunet_ext_cv -d {paths.name} -c {configuration} ...)")
    splits = json.loads(splits_file.read_text())
    sources = []
    for trainer in trainers:
        for fold in folds:
            if fold >= len(splits):
                raise NnunetExtError(f"fold {fold} is not in {splits_file} ({len(splits)} fold(s)); pass --folds "
                                     + " ".join(map(str, range(len(splits)))))
            validation = trainer_folder(paths, trainer, plans, configuration) / f"fold_{fold}" / "validation"
            if not validation.is_dir():
                raise NnunetExtError(f"no validation predictions of {trainer} fold {fold} ({validation}); run: "
                                     f"nnunet_ext_cv -d {paths.name} -c {configuration} -tr {trainer} --folds {fold}")
            _require_predictions(validation, splits[fold]["val"], paths.dataset_json["file_ending"],
                                 f"nnUNetv2_train {paths.name} {configuration} {fold} -tr {trainer} --val")
            sources.append(Source(trainer, fold, validation, sorted(splits[fold]["val"])))
    return sources, paths.preprocessed / "gt_segmentations", paths.dataset_json


def split_test_sources(dataset: str, configuration: str, trainers: list[str], plans: str = PLANS):
    """(sources, reference folder, dataset.json) of the fixed split's test predictions."""
    paths = dataset_paths(dataset)
    record = read_split_record(paths)
    sources = []
    for trainer in trainers:
        folder = trainer_folder(paths, trainer, plans, configuration) / "fold_0" / TEST_PREDICTIONS
        _require_predictions(folder, record["test"], paths.dataset_json["file_ending"],
                             f"nnunet_ext_cv -d {paths.name} -c {configuration} -tr {trainer} --split-file SPLIT.json")
        sources.append(Source(trainer, None, folder, sorted(record["test"])))
    return sources, paths.raw / "labelsTr", paths.dataset_json


def _require_predictions(folder: Path, cases: list[str], ending: str, fix: str) -> None:
    missing = [c for c in cases if not (folder / f"{c}{ending}").is_file()]
    if missing:
        raise NnunetExtError(f"{len(missing)} prediction(s) missing in {folder} (first: {missing[0]}{ending}); run: {fix}")


def evaluate_sources(sources: list[Source], references: Path, dataset_json: dict) -> list[dict]:
    """One row per (trainer, fold, case, region) with the four metrics."""
    rows = []
    for source in sources:
        print(f"evaluating {source.trainer}" + ("" if source.fold is None else f" fold {source.fold}"), flush=True)
        for m in evaluate_folders(source.predictions, references, dataset_json, source.cases):
            rows.append({"trainer": source.trainer, "fold": source.fold, "case": m.case, "region": m.region,
                         **{k: getattr(m, k) for k in METRICS}})
    return rows


def _mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, float)
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se


def paired_test(values: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """(mean difference, two-sided Wilcoxon signed-rank p-value); identical values give p = 1."""
    from scipy.stats import wilcoxon

    differences = np.asarray(values, float) - np.asarray(baseline, float)
    if not np.any(differences):
        return 0.0, 1.0
    return float(differences.mean()), float(wilcoxon(differences).pvalue)


def summarise_rows(rows: list[dict], baseline: str | None) -> list[dict]:
    """One row per (trainer, region, metric): means and standard errors over cases and folds, test vs baseline."""
    trainers = list(dict.fromkeys(r["trainer"] for r in rows))
    regions = list(dict.fromkeys(r["region"] for r in rows))
    by_key = {(r["trainer"], r["region"], r["fold"], r["case"]): r for r in rows}
    summary = []
    for trainer in trainers:
        for region in regions:
            mine = [r for r in rows if r["trainer"] == trainer and r["region"] == region]
            keys = [(r["fold"], r["case"]) for r in mine]
            folds = sorted({r["fold"] for r in mine if r["fold"] is not None})
            for metric in METRICS:
                mean, se = _mean_se([r[metric] for r in mine])
                entry = {"trainer": trainer, "region": region, "metric": metric, "n_cases": len(mine),
                         "mean": mean, "se_cases": se, "n_folds": len(folds) or None,
                         "mean_over_folds": None, "se_over_folds": None,
                         "baseline": None, "mean_difference": None, "wilcoxon_p": None}
                if len(folds) > 1:
                    per_fold = [np.mean([r[metric] for r in mine if r["fold"] == f]) for f in folds]
                    entry["mean_over_folds"], entry["se_over_folds"] = _mean_se(per_fold)
                if baseline is not None and trainer != baseline:
                    missing = [k for k in keys if (baseline, region, *k) not in by_key]
                    if missing or len(keys) != sum(1 for r in rows if r["trainer"] == baseline and r["region"] == region):
                        raise NnunetExtError(f"{trainer} and baseline {baseline} were evaluated on different cases "
                                             f"(e.g. {missing[0][1] if missing else 'extra baseline cases'}); use the "
                                             f"same splits / test set for both")
                    base = [by_key[(baseline, region, *k)][metric] for k in keys]
                    entry["baseline"] = baseline
                    entry["mean_difference"], entry["wilcoxon_p"] = paired_test([r[metric] for r in mine], base)
                summary.append(entry)
    return summary


def _cell(mean, se, scale) -> str:
    if mean is None:
        return ""
    return f"{scale * mean:.2f}" + ("" if se is None or math.isnan(se) else f" ± {scale * se:.2f}")


def markdown(summary: list[dict], title: str, baseline: str | None) -> str:
    metrics_header = " | ".join(LABELS[m][0] for m in METRICS)
    rows_by = {(s["trainer"], s["region"]): {} for s in summary}
    for s in summary:
        rows_by[(s["trainer"], s["region"])][s["metric"]] = s
    lines = [f"# {title}", "", CONVENTION, "",
             "## Mean ± standard error over cases", "",
             f"| trainer | region | cases | {metrics_header} |", "|---|---|---|" + "---|" * len(METRICS)]
    for (trainer, region), cells in rows_by.items():
        n = cells[METRICS[0]]["n_cases"]
        lines.append(f"| {trainer} | {region} | {n} | "
                     + " | ".join(_cell(cells[m]["mean"], cells[m]["se_cases"], LABELS[m][1]) for m in METRICS) + " |")
    if any(s["mean_over_folds"] is not None for s in summary):
        lines += ["", "## Mean ± standard error over folds (of the per-fold means)", "",
                  f"| trainer | region | folds | {metrics_header} |", "|---|---|---|" + "---|" * len(METRICS)]
        for (trainer, region), cells in rows_by.items():
            lines.append(f"| {trainer} | {region} | {cells[METRICS[0]]['n_folds']} | " + " | ".join(
                _cell(cells[m]["mean_over_folds"], cells[m]["se_over_folds"], LABELS[m][1]) for m in METRICS) + " |")
    if baseline is not None and any(s["baseline"] for s in summary):
        lines += ["", f"## Paired comparison with {baseline}", "",
                  "Mean per-case difference (trainer − baseline) and the two-sided Wilcoxon signed-rank p-value "
                  "(scipy.stats.wilcoxon), paired by case; no correction for multiple comparisons.", "",
                  "| trainer | region | " + " | ".join(f"Δ {LABELS[m][0]} | p" for m in METRICS) + " |",
                  "|---|---|" + "---|---|" * len(METRICS)]
        for (trainer, region), cells in rows_by.items():
            if cells[METRICS[0]]["baseline"] is None:
                continue
            lines.append(f"| {trainer} | {region} | " + " | ".join(
                f"{LABELS[m][1] * cells[m]['mean_difference']:+.2f} | {cells[m]['wilcoxon_p']:.3g}" for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def box_plots(rows: list[dict], path: Path) -> Path:
    """One panel per (metric, region), one box per trainer, per-case values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnunet_ext.figures import save_figure

    trainers = list(dict.fromkeys(r["trainer"] for r in rows))
    regions = list(dict.fromkeys(r["region"] for r in rows))
    figure, axes = plt.subplots(len(METRICS), len(regions), figsize=(3.2 * len(regions) + 1, 2.6 * len(METRICS)),
                                squeeze=False)
    for i, metric in enumerate(METRICS):
        label, scale = LABELS[metric]
        for j, region in enumerate(regions):
            data = [[scale * r[metric] for r in rows if r["trainer"] == t and r["region"] == region] for t in trainers]
            axes[i, j].boxplot(data)
            axes[i, j].set_xticks(range(1, len(trainers) + 1), trainers, rotation=20, ha="right", fontsize=7)
            axes[i, j].set_title(f"{region}: {label}", fontsize=9)
    return save_figure(figure, path)


def _write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_report(rows: list[dict], output: str | Path, title: str, baseline: str | None) -> Path:
    """Writes report.md, summary.csv, cases.csv and boxplots.png into ``output``; returns report.md."""
    trainers = list(dict.fromkeys(r["trainer"] for r in rows))
    if baseline is not None and baseline not in trainers:
        raise NnunetExtError(f"baseline {baseline} is not among the trainers ({', '.join(trainers)}); add it to -tr")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    summary = summarise_rows(rows, baseline)
    _write_csv(rows, output / "cases.csv")
    _write_csv(summary, output / "summary.csv")
    box_plots(rows, output / "boxplots.png")
    report = output / "report.md"
    report.write_text(markdown(summary, title, baseline) + "\n![box plots](boxplots.png)\n")
    return report


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_report", description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--dataset", help="dataset id or name (cross-validation and --test modes)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("-tr", "--trainers", nargs="+", help="trainers to compare (cross-validation and --test)")
    parser.add_argument("-p", "--plans", default=PLANS)
    parser.add_argument("-f", "--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--test", action="store_true",
                        help=f"the fixed split's test cases (recorded in {SPLIT_RECORD} by nnunet_ext_cv --split-file)")
    parser.add_argument("--predictions", nargs="+", metavar="NAME=FOLDER",
                        help="separate test set: prediction folders, one per trainer/ensemble")
    parser.add_argument("--references", help="separate test set: folder of reference segmentations")
    parser.add_argument("-j", "--dataset-json", help="separate test set: the dataset's dataset.json")
    parser.add_argument("-b", "--baseline", help="trainer (or NAME) the others are tested against")
    parser.add_argument("-o", "--output", required=True, help="folder for report.md, summary.csv, cases.csv, boxplots.png")
    args = parser.parse_args(argv)
    if args.predictions:
        if not (args.references and args.dataset_json):
            raise NnunetExtError("--predictions needs --references FOLDER and -j dataset.json")
        sources = []
        for item in args.predictions:
            name, sep, folder = item.partition("=")
            if not sep or not name or not Path(folder).is_dir():
                raise NnunetExtError(f"'{item}' is not NAME=FOLDER with an existing folder")
            sources.append(Source(name, None, Path(folder), None))
        if not Path(args.dataset_json).is_file():
            raise NnunetExtError(f"dataset.json not found: {args.dataset_json}")
        references, dataset_json = Path(args.references), json.loads(Path(args.dataset_json).read_text())
        title = f"Test set {references}"
    else:
        if not (args.dataset and args.trainers):
            raise NnunetExtError("pass -d DATASET -tr TRAINER [TRAINER ...] (or --predictions NAME=FOLDER ...)")
        if args.test:
            sources, references, dataset_json = split_test_sources(args.dataset, args.configuration, args.trainers, args.plans)
            title = f"{dataset_json.get('name', args.dataset)} {args.configuration}: fixed-split test set"
        else:
            sources, references, dataset_json = cv_sources(args.dataset, args.configuration, args.trainers, args.folds,
                                                           args.plans)
            title = (f"{dataset_json.get('name', args.dataset)} {args.configuration}: cross-validation, folds "
                     + ", ".join(map(str, args.folds)))
    rows = evaluate_sources(sources, references, dataset_json)
    report = write_report(rows, args.output, title, args.baseline)
    print(report.read_text())
    print(f"written: {report}, summary.csv, cases.csv, boxplots.png in {Path(args.output)}")


def main(argv: list[str] | None = None) -> int:
    """Console entry ``nnunet_ext_report``."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
