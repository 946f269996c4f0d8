"""The converging quality benchmark on 2 CPU cores: every trainer of the plugin against nnU-Net's default.

    nnunet_ext_benchmark quality-cpu [--datasets synthetic lgg] [--folds 0 1 2] [--trainers T ...]
        [--lgg-source DIR] [--out benchmark_output/quality_cpu] [--results docs/results] [--report-only] [--quick]

Two datasets, each trained at a budget chosen for nnU-Net's default trainer to plateau (its EMA
pseudo-Dice rising by less than 1 point over the last 20 % of the epochs; the record says per fold
whether it did):

- ``synthetic``: the BraTS-like regions dataset of ``nnunet_ext_synthetic -k brats``, 30 cases of
  32 x 32 x 24 voxels (3d_fullres, patch 20 x 28 x 28, batch 2), every trainer of :data:`SUITE`;
- ``lgg``: the Kaggle LGG FLAIR sample (8 patients, 2d), each slice binned 4 x 4 in-plane (64 x 64
  pixels), batches of 8 slices instead of the planned 25 (which cost 1.1 s per iteration, 30 min per
  run), nnU-Net's default, SiNGR, GSL and RRW. Its folder comes from ``--lgg-source`` or
  ``$NNUNET_EXT_DATA/lgg_kaggle_3m_sample/kaggle_3m``; without one the dataset is skipped with a line saying so.

All at ``_80epochs_20iters`` (1600 training iterations), folds of nnU-Net's seeded 5-fold split, each
(dataset, fold, trainer) one run of ``nnunet_ext_benchmark quality --stop-after train`` (which converts,
plans, precomputes the maps and trains the fold). Folds run in order, both datasets per fold,
so that an interrupted benchmark has whole folds. Each trained (dataset, trainer, fold) is recorded in
``<results>/quality_cpu/runs/<dataset>/<trainer><budget>_fold<k>.json`` (per-case metrics of the fold's
validation, collapsed regions, the per-epoch training log): committed, these records are the benchmark's
state, so re-running the command on any machine trains only what has no record (an interrupted training
on the same machine resumes from its checkpoint). After every run the results are rewritten from all
committed records (each trainer paired with the default over the folds both have), whatever a sitting trains:

- ``<results>/quality_cpu.json``: one record per trainer, dataset and region with ``trainer``,
  ``dataset``, ``region``, ``dice_mean``, ``dice_se`` (over cases of all folds), ``hd95_mean``,
  ``hd95_se``, ``folds``, ``collapsed_folds``, the paired Wilcoxon test against the default, plus the
  hardware, budget, plateau check and command;
- ``<results>/quality_cpu.md``: the same as tables;
- ``<results>/quality_cpu/curves_<trainer>.png``: per-epoch EMA pseudo-Dice and pseudo-Dice per region
  of every fold (and the wrong-side saturation of trainers that log it).

A fold *collapsed* on a region when the trainer predicts that region on none of the fold's validation
cases that have it (the "no tumour core" failure). Metrics: ``nnunet_ext_report`` (MONAI HD95 in mm,
BraTS empty-mask convention). ``--quick`` runs a smoke version (10 synthetic cases, two trainers,
``_1epoch_2iters``, fold 0) for the test suite; its numbers mean nothing.

Why 80 epochs: at ``_50epochs_20iters`` (measured 2026-12-01, synthetic fold 0) the default's raw pseudo-Dice
was flat over the last 12 epochs but its EMA, which lags about 10 epochs, still rose 1.5 points over the
last 20 %. Cost on 2 cores (the record names the CPU; measured 2026-12-02): a synthetic run about 7.5 min
(epochs of about 5 s, plus set-up and validation), an LGG run about 11 min (batches of 8 slices); the
variants that only diagnose (the three nnU-Net-SGD ones, which show the collapse) run in fold 0 only
(``fold0_only``); the whole benchmark (30 synthetic + 12 LGG runs) about 6 h, in several sittings (``--trainers`` orders one).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
from pathlib import Path

from nnunet_ext.benchmarks.common import DATA_VARIABLE, hardware_markdown, hardware_record, invoked_command, sample_folder, write_json
from nnunet_ext.workflow.pipeline import PLANS, fold_folder

BASELINE = "nnUNetTrainer"
FOLDS = (0, 1, 2)
BUDGET = "_80epochs_20iters"
PLATEAU_POINTS = 0.01  # EMA pseudo-Dice rise over the last 20 % of epochs below which the default has plateaued
ONSET_DICE = 0.1  # a region has started to learn at the first epoch its pseudo-Dice exceeds this
# dataset -> arguments of the quality part and trainers (the required ones first: an interrupted fold has them)
SUITE = {
    "synthetic": {
        "args": ["--dataset", "synthetic", "--cases", "30", "--shape", "32", "32", "24"], "configuration": "3d_fullres",
        "trainers": ["nnUNetTrainer", "nnUNetTrainerSiNGR", "nnUNetTrainerRRW", "nnUNetTrainerSiNGR_PaperAdam",
                     "nnUNetTrainerSiNGR_L1", "nnUNetTrainerGSL", "nnUNetTrainerBoundary", "nnUNetTrainerGeoLS_JML",
                     "nnUNetTrainerLS_JML", "nnUNetTrainerSiNGR_nnUNetSGD", "nnUNetTrainerRRW_nnUNetSGD",
                     "nnUNetTrainerLS_JML_nnUNetSGD"],
        "fold0_only": ["nnUNetTrainerSiNGR_nnUNetSGD", "nnUNetTrainerRRW_nnUNetSGD", "nnUNetTrainerLS_JML_nnUNetSGD"],
    },
    "lgg": {
        "args": ["--dataset", "lgg", "--shrink", "4", "--batch-size", "8"], "configuration": "2d",
        "trainers": ["nnUNetTrainer", "nnUNetTrainerSiNGR", "nnUNetTrainerGSL", "nnUNetTrainerRRW"],
    },
}
QUICK = {"synthetic": {"args": ["--dataset", "synthetic", "--cases", "10", "--shape", "32", "32", "24"],
                       "configuration": "3d_fullres",
                       "trainers": ["nnUNetTrainer", "nnUNetTrainerSiNGR"]}}
QUICK_BUDGET = "_1epoch_2iters"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(SUITE), default=list(SUITE))
    parser.add_argument("--folds", type=int, nargs="+", default=list(FOLDS),
                        help="train these folds now (the results cover every recorded fold of the benchmark)")
    parser.add_argument("--trainers", nargs="+", metavar="TRAINER",
                        help="train only these of the suite's trainers now (to order a sitting); the results still "
                             "cover every recorded trainer")
    parser.add_argument("--lgg-source", type=Path, default=sample_folder("lgg_kaggle_3m_sample/kaggle_3m"),
                        help=f"the kaggle_3m folder (default: ${DATA_VARIABLE}/lgg_kaggle_3m_sample/kaggle_3m)")
    parser.add_argument("--out", type=Path, default=Path("benchmark_output") / "quality_cpu",
                        help="work folder, one sub-folder per dataset (default benchmark_output/quality_cpu)")
    parser.add_argument("--results", type=Path, default=Path("docs") / "results",
                        help="where quality_cpu.json / .md and the curves go (default docs/results)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results from the finished folds")
    parser.add_argument("--quick", action="store_true", help="smoke run for the tests (numbers mean nothing)")
    args = parser.parse_args(argv)
    args.suite, args.budget = (QUICK, QUICK_BUDGET) if args.quick else (SUITE, BUDGET)
    if args.quick:
        args.datasets, args.folds = ["synthetic"], [0]
    args.report_folds = list(args.folds) if args.quick else sorted(set(FOLDS) | set(args.folds))
    args.datasets = [d for d in args.datasets if d in args.suite]
    if "lgg" in args.datasets and not args.report_only and (args.lgg_source is None or not Path(args.lgg_source).is_dir()):
        print(f"[quality_cpu] lgg skipped: no LGG folder (pass --lgg-source DIR, or set {DATA_VARIABLE} to the folder "
              f"holding lgg_kaggle_3m_sample/kaggle_3m); got {args.lgg_source}", flush=True)
        args.datasets.remove("lgg")
    args.out, args.results = args.out.resolve(), args.results.resolve()
    return args


# ------------------------------------------------------------------------------------------ running
def quality_command(args: argparse.Namespace, dataset: str, fold: int, trainers: list[str]) -> list[str]:
    entry = args.suite[dataset]
    command = [sys.executable, "-m", "nnunet_ext.benchmarks", "quality", *entry["args"], "--out",
               str(args.out / dataset), "--trainers", *trainers, "--baseline", trainers[0], "--budget",
               args.budget, "--folds", str(fold), "--device", "cpu", "--stop-after", "train"]
    if dataset == "lgg":
        command += ["--source", str(Path(args.lgg_source).resolve())]
    return command


def trainers_of_fold(args: argparse.Namespace, dataset: str, fold: int) -> list[str]:
    entry = args.suite[dataset]
    return [t for t in entry["trainers"] if fold == 0 or t not in entry.get("fold0_only", ())]


def run_fold(args: argparse.Namespace, dataset: str, fold: int) -> None:
    """Trains and records, one at a time, the trainers of (dataset, fold) that have no record yet."""
    missing = [t for t in trainers_of_fold(args, dataset, fold) if not record_path(args, dataset, t, fold).is_file()
               and (not args.trainers or t in args.trainers)]
    if not missing:
        print(f"[quality_cpu] {dataset} fold {fold}: every trainer recorded in {args.results}", flush=True)
    for trainer in missing:
        command = quality_command(args, dataset, fold, [trainer])
        print(f"[quality_cpu] {dataset} fold {fold} {trainer}: $ {shlex.join(command)}", flush=True)
        completed = subprocess.run(command)
        if completed.returncode != 0:
            raise SystemExit(f"error: {dataset} fold {fold} {trainer} failed (exit {completed.returncode}); "
                             "re-run to resume")
        work = Work(args.out / dataset, args.suite[dataset]["configuration"])
        write_json(record_path(args, dataset, trainer, fold), fold_record(work, trainer + args.budget, fold))
        write_results(args)


# -------------------------------------------------------------------------------------- the results
class Work:
    """The nnU-Net folders of one dataset's work folder (as the quality part lays them out)."""

    def __init__(self, folder: Path, configuration: str):
        self.folder, self.configuration = folder, configuration
        self.name = sorted((folder / "nnUNet_raw").glob("Dataset*"))[0].name
        self.preprocessed = folder / "nnUNet_preprocessed" / self.name
        self.results = folder / "nnUNet_results"
        self.dataset_json = json.loads((folder / "nnUNet_raw" / self.name / "dataset.json").read_text())
        self.plans = json.loads((self.preprocessed / f"{PLANS}.json").read_text())
        self.splits = json.loads((self.preprocessed / "splits_final.json").read_text())

    def fold_folder(self, trainer: str, fold: int) -> Path:
        return fold_folder(self.results, self.name, trainer, self.configuration, fold)


def record_path(args: argparse.Namespace, dataset: str, trainer: str, fold: int) -> Path:
    """The committed record of one trained fold: what the results are made of, so a new machine resumes."""
    return args.results / "quality_cpu" / "runs" / dataset / f"{trainer}{args.budget}_fold{fold}.json"


def fold_record(work: Work, trainer: str, fold: int) -> dict:
    """Per-case metrics of the fold's validation, which regions collapsed, and the per-epoch training log."""
    import numpy as np
    import SimpleITK as sitk
    import torch

    from nnunet_ext.evaluation import evaluate_folders, region_definitions

    folder = work.fold_folder(trainer, fold)
    cases = sorted(work.splits[fold]["val"])
    metrics = evaluate_folders(folder / "validation", work.preprocessed / "gt_segmentations", work.dataset_json, cases)
    ending = work.dataset_json["file_ending"]
    predicted: dict[str, list[bool]] = {name: [] for name in region_definitions(work.dataset_json)}
    for case in cases:
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(work.preprocessed / "gt_segmentations" / f"{case}{ending}")))
        prediction = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "validation" / f"{case}{ending}")))
        for name, labels in region_definitions(work.dataset_json).items():
            if np.isin(reference, labels).any():
                predicted[name].append(bool(np.isin(prediction, labels).any()))
    logging = torch.load(folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)["logging"]
    keys = ("ema_fg_dice", "mean_fg_dice", "dice_per_class_or_region", "train_losses", "val_losses", "lrs",
            "wrong_side_saturated", "epoch_start_timestamps", "epoch_end_timestamps")
    return {
        "trainer": trainer, "fold": fold, "dataset": work.name, "configuration": work.configuration,
        "recorded_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware_record(),
        "cases": [{"case": m.case, "region": m.region, **{k: getattr(m, k) for k in ("dice", "iou", "hd95", "asd")}}
                  for m in metrics],
        # a region collapsed: predicted on none of the fold's validation cases that have it
        "collapsed": {name: bool(seen) and not any(seen) for name, seen in predicted.items()},
        "log": {k: [np.asarray(v).tolist() for v in logging[k]] for k in keys if k in logging},
    }


def plateau(ema: list[float]) -> dict:
    """EMA pseudo-Dice rise over the last 20 % of epochs, and the EMA's highest value and epoch before them.

    nnU-Net's pseudo-Dice comes from a few validation batches per epoch, so its EMA moves by about a point
    from epoch to epoch even once training has converged; the earlier maximum shows whether a rise is new.
    """
    start = max(0, int(round(0.8 * len(ema))) - 1)
    rise = float(ema[-1] - ema[start])
    best = max(range(start + 1), key=lambda e: ema[e])
    return {"ema_first_of_last_20pct": float(ema[start]), "ema_last": float(ema[-1]), "rise": rise,
            "plateaued": rise < PLATEAU_POINTS, "ema_max_before": float(ema[best]), "epoch_of_max_before": best}


def onset_epoch(log: dict, k: int) -> int | None:
    """First epoch whose pseudo-Dice of foreground channel ``k`` exceeds :data:`ONSET_DICE` (None: never).

    Shows how long a region sat at zero before it learned (RRW's small regions: a plateau of random length)."""
    return next((e for e, dice in enumerate(log["dice_per_class_or_region"]) if dice[k] > ONSET_DICE), None)


def _finite(value) -> float | None:
    """A JSON number: None for a missing or undefined value (one case has no standard error)."""
    return None if value is None or value != value else float(value)


def dataset_results(args: argparse.Namespace, dataset: str) -> dict:
    """Records per trainer and region, each trainer over the folds that it and the default have recorded."""
    from nnunet_ext.workflow.report import summarise_rows

    runs = {(t, f): json.loads(record_path(args, dataset, t, f).read_text())
            for f in args.report_folds for t in trainers_of_fold(args, dataset, f)
            if record_path(args, dataset, t, f).is_file()}
    folds = [f for f in args.report_folds if (BASELINE, f) in runs]
    runs = {(t, f): run for (t, f), run in runs.items() if f in folds}
    if not folds:
        return {"dataset": dataset, "folds": [], "records": [], "_runs": {}}
    trainers = list(dict.fromkeys(t for t, _ in runs))
    summary = {}
    for trainer in trainers:  # paired with the default on the folds this trainer has (a partial benchmark, fold0_only)
        mine = [f for f in folds if (trainer, f) in runs]
        rows = [{"trainer": t, "fold": f, **case} for (t, f), run in runs.items() if t in (trainer, BASELINE) and f in mine
                for case in run["cases"]]
        summary.update({(r["trainer"], r["region"], r["metric"]): r for r in summarise_rows(rows, BASELINE)
                        if r["trainer"] == trainer})
    records = []
    regions = list(dict.fromkeys(case["region"] for run in runs.values() for case in run["cases"]))
    for trainer in trainers:
        for region in regions:
            dice, hd95 = summary[(trainer, region, "dice")], summary[(trainer, region, "hd95")]
            records.append({
                "trainer": trainer, "dataset": dataset, "region": region,
                "dice_mean": _finite(dice["mean"]), "dice_se": _finite(dice["se_cases"]),
                "hd95_mean": _finite(hd95["mean"]), "hd95_se": _finite(hd95["se_cases"]),
                "n_cases": dice["n_cases"], "folds": [f for f in folds if (trainer, f) in runs],
                "collapsed_folds": [f for f in folds if (trainer, f) in runs and runs[(trainer, f)]["collapsed"].get(region)],
                "dice_difference_vs_default": _finite(dice["mean_difference"]),
                "dice_wilcoxon_p": _finite(dice["wilcoxon_p"]),
                "hd95_difference_vs_default": _finite(hd95["mean_difference"]),
                # the training log's channels are in the region order of the cases (nnU-Net's regions_class_order)
                "onset_epochs": {str(f): onset_epoch(runs[(trainer, f)]["log"], regions.index(region))
                                 for f in folds if (trainer, f) in runs},
            })
    first = runs[(trainers[0], folds[0])]
    return {"dataset": dataset, "name": first["dataset"], "configuration": first["configuration"], "folds": folds,
            "default_plateau": {str(f): plateau(runs[(BASELINE, f)]["log"]["ema_fg_dice"]) for f in folds},
            "records": records, "_runs": runs}


def curves(results: dict, folder: Path, budget: str) -> list[str]:
    """One PNG per trainer: EMA pseudo-Dice (thick) and pseudo-Dice per region (thin) per fold, per dataset."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    trainers = list(dict.fromkeys(t for d in results.values() for (t, _) in d["_runs"]))
    written = []
    for trainer in trainers:
        datasets = [d for d in results.values() if any(t == trainer for t, _ in d["_runs"])]
        figure, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.5), squeeze=False)
        for axis, data in zip(axes[0], datasets):
            for fold in [f for f in data["folds"] if (trainer, f) in data["_runs"]]:
                log = data["_runs"][(trainer, fold)]["log"]
                line, = axis.plot(log["ema_fg_dice"], linewidth=2.5, label=f"fold {fold} EMA pseudo-Dice")
                per_region = list(zip(*log["dice_per_class_or_region"]))
                for values in per_region:
                    axis.plot(values, color=line.get_color(), linewidth=0.8, alpha=0.6)
                if "wrong_side_saturated" in log:
                    saturation = [v[-1] if isinstance(v, list) and v else float("nan") for v in log["wrong_side_saturated"]]
                    axis.plot(saturation, color=line.get_color(), linestyle="--", linewidth=1.2,
                              label=f"fold {fold} wrong-side saturated (last region)")
            axis.set(title=f"{data['dataset']} ({data['name']})", xlabel="epoch", ylim=(-0.02, 1.0),
                     ylabel="pseudo-Dice (thin: per region)")
            axis.legend(fontsize=7, loc="lower right")
        figure.suptitle(f"{trainer} at {budget}")
        figure.tight_layout()
        path = folder / f"curves_{trainer}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path.name)
    return written


def markdown(record: dict) -> str:
    from nnunet_ext.workflow.report import mean_se_cell

    lines = ["# Quality on 2 CPU cores, every trainer against nnU-Net's default", "",
             f"- Date (UTC): {record['date_utc']}; command: `{record['command']}`",
             f"- Budget `{record['budget']}`: {record['iterations']} training iterations per trainer and fold "
             "(whether nnU-Net's default has plateaued there: the plateau lines below)",
             f"- {record['note']}", "", "## Hardware", "", record["hardware_markdown"], ""]
    for data in record["datasets"].values():
        lines += [f"## {data['dataset']}: {data.get('name', '')}", ""]
        if not data["folds"]:
            lines += ["No fold finished by every trainer yet.", ""]
            continue
        lines += [f"Folds {', '.join(map(str, data['folds']))} ({data['configuration']}); mean ± standard error over "
                  "the validation cases of the folds each trainer has (column *folds*); "
                  "Δ Dice: paired difference to nnU-Net's default with the two-sided Wilcoxon p-value.", ""]
        for fold, p in data["default_plateau"].items():
            lines.append(f"- default, fold {fold}: EMA pseudo-Dice {p['ema_first_of_last_20pct']:.3f} -> "
                         f"{p['ema_last']:.3f} over the last 20 % of epochs: "
                         + ("plateaued" if p["plateaued"] else "**not plateaued**")
                         + f" ({100 * p['rise']:+.1f} points; plateaued means a rise below 1 point)"
                         + f"; its highest value before them: {p['ema_max_before']:.3f} at epoch {p['epoch_of_max_before']}")
        lines += ["", "| trainer | region | folds | Dice % | HD95 mm | Δ Dice % (p) | collapsed folds | onset epoch per fold |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in data["records"]:
            delta = "baseline" if r["dice_difference_vs_default"] is None else \
                f"{100 * r['dice_difference_vs_default']:+.1f} ({r['dice_wilcoxon_p']:.2g})"
            lines.append(f"| {r['trainer']} | {r['region']} | {', '.join(map(str, r['folds']))} "
                         f"| {mean_se_cell(r['dice_mean'], r['dice_se'], 100, 1)} "
                         f"| {mean_se_cell(r['hd95_mean'], r['hd95_se'], 1, 1)} | {delta} | "
                         f"{', '.join(map(str, r['collapsed_folds'])) or 'none'} | "
                         f"{', '.join('never' if e is None else str(e) for e in r['onset_epochs'].values())} |")
        lines.append("")
    lines += ["Training curves: `quality_cpu/curves_<trainer>.png` beside this file. A fold is *collapsed* on a "
              "region when the trainer predicts that region on none of the fold's validation cases that have it. "
              f"*Onset epoch*: the first epoch whose online pseudo-Dice of the region exceeds {ONSET_DICE} (how long "
              "it sat at zero before it learned)."]
    return "\n".join(lines) + "\n"


def write_results(args: argparse.Namespace) -> dict:
    results = {d: dataset_results(args, d) for d in args.suite}  # every dataset with records, whatever ran now
    figures = curves(results, args.results / "quality_cpu", args.budget)
    from nnunet_ext.schedules import BUDGETS

    (epochs, iterations, _), _ = BUDGETS[args.budget]
    hardware = hardware_record()
    record = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": invoked_command(),
        "note": "smoke run (--quick): the numbers mean nothing" if args.quick else
                "each fold is one training run (nnU-Net does not seed training); not a reproduction of any paper",
        "hardware": hardware, "hardware_markdown": hardware_markdown(hardware).rstrip("\n"),
        "budget": args.budget, "iterations": epochs * iterations, "figures": figures,
        "datasets": {d: {k: v for k, v in r.items() if k != "_runs"} for d, r in results.items()},
        "records": [rec for r in results.values() for rec in r["records"]],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    write_json(args.results / "quality_cpu.json", record)
    temporary = args.results / ".quality_cpu.md.tmp"
    temporary.write_text(markdown(record))
    temporary.replace(args.results / "quality_cpu.md")
    print(f"[quality_cpu] written {args.results / 'quality_cpu.json'}, quality_cpu.md, {len(figures)} figure(s)",
          flush=True)
    return record


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        write_results(args)
        return 0
    for fold in args.folds:
        for dataset in args.datasets:
            run_fold(args, dataset, fold)
    write_results(args)
    return 0

