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

``--brats-config gli|mets|...`` adds the official BraTS metrics (lesion-wise Dice and HD95; the
package's whole-region Dice and HD95) of :mod:`nnunet_ext.brats_metrics` to the same files, tables and
tests, plus ``brats_<config>.json``, the package's per-case output of every evaluated folder. Their
cases with no value (no lesion in either file) are left out of the means and of the paired tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.brats_metrics import CONFIGS, OFFICIAL_LABELS, OFFICIAL_METRICS
from nnunet_ext.evaluation import METRICS, evaluate_folders, merge_rows
from nnunet_ext.nnunet_env import PLANS
from nnunet_ext.workflow.cv import SPLIT_RECORD, TEST_PREDICTIONS, dataset_paths, read_split_record

CONVENTION = (
    "Empty masks (BraTS convention): reference and prediction both empty give Dice 1, IoU 1, HD95 0, ASD 0; "
    "exactly one empty gives Dice 0, IoU 0, and HD95 = ASD = the image diagonal in mm. HD95 is the larger of "
    "the two directed 95th-percentile surface distances (MONAI `compute_hausdorff_distance(percentile=95)`), "
    "ASD the symmetric average surface distance (MONAI `compute_average_surface_distance(symmetric=True)`), "
    "both in mm from the image spacing; Dice and IoU by voxel counting."
)
LABELS = {"dice": ("Dice %", 100.0), "iou": ("IoU %", 100.0), "hd95": ("HD95 mm", 1.0), "asd": ("ASD mm", 1.0),
          **OFFICIAL_LABELS}


@dataclass(frozen=True)
class Source:
    """Predictions of one trainer (and fold) and the cases to evaluate in them."""

    trainer: str
    fold: int | None
    predictions: Path
    cases: list[str] | None  # None: every reference case


def trained_folds(paths, configuration: str, trainers: list[str], splits: list, plans: str = PLANS) -> list[int]:
    """The folds of ``splits`` whose validation folder every trainer has (so that the paired tests stay paired)."""
    return [fold for fold in range(len(splits))
            if all((paths.model_folder(t, configuration, plans) / f"fold_{fold}" / "validation").is_dir()
                   for t in trainers)]


def cv_sources(dataset: str, configuration: str, trainers: list[str], folds: list[int] | None, plans: str = PLANS):
    """(sources, reference folder, dataset.json) of the folds' validation predictions.

    ``folds`` None: the folds every trainer has validated (:func:`trained_folds`), an error if none."""
    paths = dataset_paths(dataset)
    splits_file = paths.preprocessed / "splits_final.json"
    if not splits_file.is_file():
        raise NnunetExtError(f"{splits_file} not found; train first (nnunet_ext_cv -d {paths.name} -c {configuration} ...)")
    splits = json.loads(splits_file.read_text())
    if folds is None:
        folds = trained_folds(paths, configuration, trainers, splits, plans)
        if not folds:
            raise NnunetExtError(
                f"no fold of {splits_file} ({len(splits)} fold(s)) has validation predictions of every trainer "
                f"({', '.join(trainers)}); train and validate one, e.g.: nnunet_ext_cv -d {paths.name} "
                f"-c {configuration} -p {plans} -tr {' '.join(trainers)} -f 0, then pass -f 0")
        print(f"folds with validation predictions of every trainer: {' '.join(map(str, folds))}", flush=True)
    sources = []
    for trainer in trainers:
        for fold in folds:
            if fold >= len(splits):
                raise NnunetExtError(f"fold {fold} is not in {splits_file} ({len(splits)} fold(s)); pass --folds "
                                     + " ".join(map(str, range(len(splits)))))
            validation = paths.model_folder(trainer, configuration, plans) / f"fold_{fold}" / "validation"
            if not validation.is_dir():
                have = trained_folds(paths, configuration, [trainer], splits, plans)
                hint = (f"; or report the folds it has: -f {' '.join(map(str, have))} (or leave out -f: the folds "
                        "every trainer has)") if have else ""
                raise NnunetExtError(f"no validation predictions of {trainer} fold {fold} ({validation}); run: "
                                     f"nnunet_ext_cv -d {paths.name} -c {configuration} -p {plans} -tr {trainer} "
                                     f"--folds {fold}{hint}")
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
        folder = paths.model_folder(trainer, configuration, plans) / "fold_0" / TEST_PREDICTIONS
        _require_predictions(folder, record["test"], paths.dataset_json["file_ending"],
                             f"nnunet_ext_cv -d {paths.name} -c {configuration} -tr {trainer} --split-file SPLIT.json")
        sources.append(Source(trainer, None, folder, sorted(record["test"])))
    return sources, paths.raw / "labelsTr", paths.dataset_json


def _require_predictions(folder: Path, cases: list[str], ending: str, fix: str) -> None:
    missing = [c for c in cases if not (folder / f"{c}{ending}").is_file()]
    if missing:
        raise NnunetExtError(f"{len(missing)} prediction(s) missing in {folder} (first: {missing[0]}{ending}); run: {fix}")


def evaluate_sources(sources: list[Source], references: Path, dataset_json: dict, brats_config: str | None = None,
                     package_summaries: dict | None = None) -> list[dict]:
    """One row per (trainer, fold, case, region) with the four metrics.

    With ``brats_config`` also the official metrics (:func:`nnunet_ext.evaluation.merge_rows`: rows of
    their own for label groups that are none of our regions); ``package_summaries`` then receives the
    package's per-case output of each source under its label ("trainer" or "trainer fold k").
    """
    from dataclasses import asdict

    from nnunet_ext.evaluation import official_folder_metrics

    rows = []
    for source in sources:
        label = source.trainer + ("" if source.fold is None else f" fold {source.fold}")
        print(f"evaluating {label}", flush=True)
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
    return METRICS + tuple(m for m in OFFICIAL_METRICS if rows and m in rows[0])


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


def markdown(summary: list[dict], title: str, baseline: str | None, official: str | None = None) -> str:
    """The report; ``official`` (a paragraph, :func:`nnunet_ext.brats_metrics.describe`) adds the official tables."""
    lines = [f"# {title}", "", CONVENTION]
    lines += _tables(summary, METRICS, baseline, "")
    if official is not None:
        lines += ["", "## Official BraTS metrics", "", official]
        lines += _tables(summary, OFFICIAL_METRICS, baseline, "Official: ")
    return "\n".join(lines) + "\n"


def box_plots(rows: list[dict], path: Path) -> Path:
    """One panel per (metric, region), one box per trainer, per-case values of the four per-region metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnunet_ext.figures import save_figure

    trainers = list(dict.fromkeys(r["trainer"] for r in rows))
    regions = list(dict.fromkeys(r["region"] for r in rows if r.get(METRICS[0]) is not None))
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


def write_report(rows: list[dict], output: str | Path, title: str, baseline: str | None,
                 brats_config: str | None = None, package_summaries: dict | None = None) -> Path:
    """Writes report.md, summary.csv, cases.csv and boxplots.png into ``output``; returns report.md.

    With ``brats_config`` the report describes the official columns, and ``package_summaries`` (from
    :func:`evaluate_sources`) go to ``brats_<config>.json``.
    """
    trainers = list(dict.fromkeys(r["trainer"] for r in rows))
    if baseline is not None and baseline not in trainers:
        raise NnunetExtError(f"baseline {baseline} is not among the trainers ({', '.join(trainers)}); add it to -tr")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    summary = summarise_rows(rows, baseline)
    _write_csv(rows, output / "cases.csv")
    _write_csv(summary, output / "summary.csv")
    box_plots(rows, output / "boxplots.png")
    official = None
    if brats_config is not None:
        from nnunet_ext.brats_metrics import describe

        official = describe(brats_config)
        if package_summaries is not None:
            (output / f"brats_{brats_config}.json").write_text(json.dumps(package_summaries, indent=1))
    report = output / "report.md"
    report.write_text(markdown(summary, title, baseline, official) + "\n![box plots](boxplots.png)\n")
    return report


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_report", description=__doc__.splitlines()[0]
                                     + " Progress: one line per case on stderr.")
    parser.add_argument("-d", "--dataset", help="dataset id or name (cross-validation and --test modes)")
    parser.add_argument("-c", "--configuration", default="3d_fullres")
    parser.add_argument("-tr", "--trainers", nargs="+", help="trainers to compare (cross-validation and --test)")
    parser.add_argument("-p", "--plans", default=PLANS)
    parser.add_argument("-f", "--folds", type=int, nargs="+",
                        help="cross-validation folds to report, e.g. -f 0 for a single trained fold (default: "
                             "every fold of splits_final.json that each trainer has validated)")
    parser.add_argument("--test", action="store_true",
                        help=f"the fixed split's test cases (recorded in {SPLIT_RECORD} by nnunet_ext_cv --split-file)")
    parser.add_argument("--predictions", nargs="+", metavar="NAME=FOLDER",
                        help="separate test set: prediction folders, one per trainer/ensemble")
    parser.add_argument("--references", help="separate test set: folder of reference segmentations")
    parser.add_argument("-j", "--dataset-json", help="separate test set: the dataset's dataset.json")
    parser.add_argument("-b", "--baseline", help="trainer (or NAME) the others are tested against")
    parser.add_argument("-o", "--output", required=True, help="folder for report.md, summary.csv, cases.csv, boxplots.png")
    parser.add_argument("--brats-config", choices=CONFIGS,
                        help="also the official BraTS metrics (lesion-wise Dice and HD95) of this configuration of "
                             "the package brats-evaluation, and its per-case output in brats_<config>.json")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    if args.brats_config:
        from nnunet_ext.brats_metrics import require_package

        require_package()
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
            folds = sorted({source.fold for source in sources})
            title = (f"{dataset_json.get('name', args.dataset)} {args.configuration}: cross-validation, "
                     + ("fold " if len(folds) == 1 else "folds ") + ", ".join(map(str, folds)))
    package_summaries: dict = {}
    if args.brats_config:
        from nnunet_ext.brats_metrics import dataset_labels

        dataset_labels(dataset_json, args.brats_config)  # fails before any evaluation for a configuration that cannot apply
    rows = evaluate_sources(sources, references, dataset_json, args.brats_config, package_summaries)
    report = write_report(rows, args.output, title, args.baseline, args.brats_config, package_summaries)
    print(report.read_text())
    print(f"written: {report}, summary.csv, cases.csv, boxplots.png"
          + (f", brats_{args.brats_config}.json" if args.brats_config else "") + f" in {Path(args.output)}")


def main(argv: list[str] | None = None) -> int:
    """Console entry ``nnunet_ext_report``."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
