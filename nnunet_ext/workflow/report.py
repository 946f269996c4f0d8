"""Comparison report: Dice, IoU, HD95, ASD per region/class and trainer, with a paired test against a baseline.

Three sources of predictions:

- cross-validation (default): each fold's ``validation/`` folder written by ``nnUNetv2_train``
  against ``$nnUNet_preprocessed/DatasetXXX/gt_segmentations``, cases from ``splits_final.json``;
- ``--test``: the fixed split's test cases (recorded by ``nnunet_ext_cv --split-file``), predicted
  by ``nnunet_ext_cv`` into ``<trainer folder>/fold_0/nnunet_ext_test``, against ``labelsTr`` of the raw dataset;
- ``--predictions NAME=FOLDER ... --references FOLDER -j dataset.json``: any separate test set, the
  cases those the folders hold (:func:`same_cases`).

Metrics, statistics, tables and the CSV format come from :mod:`nnunet_ext.evaluation` (Dice and IoU
by voxel counting; HD95 and ASD from MONAI, in mm), with the BraTS empty-mask convention and the
ignore label masked; ``nnunet_ext_evaluate`` prints the same report for one folder. Outputs in
``--output``: ``report.md`` (tables of mean ± standard error over cases and, with several folds, over
folds, plus the paired tests),
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
import dataclasses
import json
from pathlib import Path

from nnunet_ext import brats_metrics
from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.evaluation import (LABELS, METRICS, Source, evaluate_sources, markdown, read_dataset_json,
                                   summarise_rows, write_csv)
from nnunet_ext.nnunet_env import PLANS, SPLITS_FILE
from nnunet_ext.workflow.cv import SPLIT_RECORD, TEST_PREDICTIONS, dataset_paths, read_split_record


def trained_folds(paths, configuration: str, trainers: list[str], splits: list, plans: str = PLANS) -> list[int]:
    """The folds of ``splits`` whose validation folder every trainer has (so that the paired tests stay paired)."""
    return [fold for fold in range(len(splits))
            if all((paths.model_folder(t, configuration, plans) / f"fold_{fold}" / "validation").is_dir()
                   for t in trainers)]


def cv_sources(dataset: str, configuration: str, trainers: list[str], folds: list[int] | None, plans: str = PLANS):
    """(sources, reference folder, dataset.json) of the folds' validation predictions.

    ``folds`` None: the folds every trainer has validated (:func:`trained_folds`), an error if none."""
    paths = dataset_paths(dataset)
    splits_file = paths.preprocessed / SPLITS_FILE
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


def same_cases(sources: list[Source], ending: str) -> list[Source]:
    """``sources`` of a separate test set, each to be scored on every case that any of them predicted.

    A folder that lacks a prediction another one has is an error before anything is evaluated, not a
    comparison on different cases."""
    cases = sorted({p.name[: -len(ending)] for source in sources for p in source.predictions.glob(f"*{ending}")})
    for source in sources:
        _require_predictions(source.predictions, cases, ending, f"nnUNetv2_predict for {source.trainer} on every case "
                                                                 f"the other --predictions folders hold")
    return [dataclasses.replace(source, cases=cases or None) for source in sources]


def _require_predictions(folder: Path, cases: list[str], ending: str, fix: str) -> None:
    missing = [c for c in cases if not (folder / f"{c}{ending}").is_file()]
    if missing:
        raise NnunetExtError(f"{len(missing)} prediction(s) missing in {folder} (first: {missing[0]}{ending}); run: {fix}")


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
    write_csv(rows, output / "cases.csv")
    write_csv(summary, output / "summary.csv")
    box_plots(rows, output / "boxplots.png")
    if brats_config is not None and package_summaries is not None:
        (output / f"brats_{brats_config}.json").write_text(json.dumps(package_summaries, indent=1))
    report = output / "report.md"
    report.write_text(markdown(summary, title, baseline, brats_config) + "\n![box plots](boxplots.png)\n")
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
    parser.add_argument("--brats-config", choices=brats_metrics.CONFIGS,
                        help="also the official BraTS metrics (lesion-wise Dice and HD95) of this configuration of "
                             "the package brats-evaluation, and its per-case output in brats_<config>.json")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    if args.brats_config:
        brats_metrics.require_package()
    if args.predictions:
        if not (args.references and args.dataset_json):
            raise NnunetExtError("--predictions needs --references FOLDER and -j dataset.json")
        sources = []
        for item in args.predictions:
            name, sep, folder = item.partition("=")
            if not sep or not name or not Path(folder).is_dir():
                raise NnunetExtError(f"'{item}' is not NAME=FOLDER with an existing folder")
            sources.append(Source(name, None, Path(folder), None))
        references, dataset_json = Path(args.references), read_dataset_json(args.dataset_json)
        sources = same_cases(sources, dataset_json["file_ending"])
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
        brats_metrics.dataset_labels(dataset_json, args.brats_config)  # fails before any evaluation for a configuration that cannot apply
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
