"""The converging quality benchmark on 2 CPU cores: every trainer of the plugin against nnU-Net's default.

    .venv/bin/python scripts/quality_cpu.py [--datasets synthetic lgg] [--folds 0 1 2] [--lgg-source DIR]
        [--out benchmark_output/quality_cpu] [--results docs/results] [--report-only] [--quick]

Two datasets, each trained at a budget where nnU-Net's default trainer has plateaued (its EMA
pseudo-Dice rises by less than 1 point over the last 20 % of the epochs; the record says per fold):

- ``synthetic``: the BraTS-like regions dataset of ``nnunet_ext_synthetic -k brats``, 30 cases of
  32 x 32 x 24 voxels (3d_fullres, patch 20 x 28 x 28, batch 2), every trainer of :data:`SUITE`;
- ``lgg``: the Kaggle LGG FLAIR sample (8 patients, 2d), each slice binned 4 x 4 in-plane (64 x 64
  pixels), nnU-Net's default, SiNGR, GSL and RRW. Its folder comes from ``--lgg-source`` or
  ``$NNUNET_EXT_LGG_SOURCE``; without one the dataset is skipped with a line saying so.

All at ``_50epochs_20iters`` (1000 training iterations), folds of nnU-Net's seeded 5-fold split, each
(dataset, fold, trainer) one run of ``scripts/benchmark_quality.py --stop-after train`` (which converts,
plans, precomputes the maps and calls ``nnunet_ext_cv``). Folds run in order, both datasets per fold,
so that an interrupted benchmark has whole folds; re-running the command resumes (finished folds are
skipped, an interrupted training resumes from its checkpoint). After every fold the results are
rewritten from the folds that every trainer of the dataset has finished:

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

Cost, measured 2026-12-01 on 2 AMD EPYC cores: a synthetic run takes about 5 min (0.2 s per iteration plus
set-up and validation), an LGG run about the same; the full benchmark (33 + 12 runs) about 4 h.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

from benchmark_common import hardware_markdown, hardware_record  # sibling module (scripts/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
PLANS = "nnUNetPlans"
BASELINE = "nnUNetTrainer"
BUDGET = "_50epochs_20iters"
PLATEAU_POINTS = 0.01  # EMA pseudo-Dice rise over the last 20 % of epochs below which the default has plateaued
# dataset -> benchmark_quality.py arguments and trainers (the required ones first: an interrupted fold has them)
SUITE = {
    "synthetic": {
        "args": ["--dataset", "synthetic", "--cases", "30", "--shape", "32", "32", "24"], "configuration": "3d_fullres",
        "trainers": ["nnUNetTrainer", "nnUNetTrainerSiNGR", "nnUNetTrainerRRW", "nnUNetTrainerSiNGR_PaperAdam",
                     "nnUNetTrainerSiNGR_L1", "nnUNetTrainerGSL", "nnUNetTrainerBoundary", "nnUNetTrainerGeoLS_JML",
                     "nnUNetTrainerLS_JML", "nnUNetTrainerSiNGR_nnUNetSGD", "nnUNetTrainerRRW_nnUNetSGD"],
    },
    "lgg": {
        "args": ["--dataset", "lgg", "--shrink", "4"], "configuration": "2d",
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
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lgg-source", type=Path, default=os.environ.get("NNUNET_EXT_LGG_SOURCE"),
                        help="the kaggle_3m folder (default: $NNUNET_EXT_LGG_SOURCE)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmark_output" / "quality_cpu",
                        help="work folder, one sub-folder per dataset (default benchmark_output/quality_cpu)")
    parser.add_argument("--results", type=Path, default=REPO / "docs" / "results",
                        help="where quality_cpu.json / .md and the curves go (default docs/results)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results from the finished folds")
    parser.add_argument("--quick", action="store_true", help="smoke run for the tests (numbers mean nothing)")
    args = parser.parse_args(argv)
    args.suite, args.budget = (QUICK, QUICK_BUDGET) if args.quick else (SUITE, BUDGET)
    if args.quick:
        args.datasets, args.folds = ["synthetic"], [0]
    args.datasets = [d for d in args.datasets if d in args.suite]
    if "lgg" in args.datasets and (args.lgg_source is None or not Path(args.lgg_source).is_dir()):
        print(f"[quality_cpu] lgg skipped: no LGG folder (pass --lgg-source DIR or set NNUNET_EXT_LGG_SOURCE to the "
              f"kaggle_3m folder); got {args.lgg_source}", flush=True)
        args.datasets.remove("lgg")
    args.out, args.results = args.out.resolve(), args.results.resolve()
    return args


# ------------------------------------------------------------------------------------------ running
def quality_command(args: argparse.Namespace, dataset: str, fold: int) -> list[str]:
    entry = args.suite[dataset]
    command = [sys.executable, str(REPO / "scripts" / "benchmark_quality.py"), *entry["args"], "--out",
               str(args.out / dataset), "--trainers", *entry["trainers"], "--baseline", BASELINE, "--budget",
               args.budget, "--folds", str(fold), "--device", "cpu", "--stop-after", "train"]
    if dataset == "lgg":
        command += ["--source", str(Path(args.lgg_source).resolve())]
    return command


def run_fold(args: argparse.Namespace, dataset: str, fold: int) -> None:
    command = quality_command(args, dataset, fold)
    print(f"[quality_cpu] {dataset} fold {fold}: $ {shlex.join(command)}", flush=True)
    completed = subprocess.run(command)
    if completed.returncode != 0:
        raise SystemExit(f"error: {dataset} fold {fold} failed (exit {completed.returncode}); re-run to resume")


# -------------------------------------------------------------------------------------- the results
class Work:
    """The nnU-Net folders of one dataset's work folder (as benchmark_quality.py lays them out)."""

    def __init__(self, folder: Path, configuration: str):
        self.folder, self.configuration = folder, configuration
        raw = sorted((folder / "nnUNet_raw").glob("Dataset*"))
        if not raw:
            raise FileNotFoundError(folder)
        self.name = raw[0].name
        self.raw = raw[0]
        self.preprocessed = folder / "nnUNet_preprocessed" / self.name
        self.results = folder / "results_run1"
        self.dataset_json = json.loads((self.raw / "dataset.json").read_text())
        self.plans = json.loads((self.preprocessed / f"{PLANS}.json").read_text())
        self.splits = json.loads((self.preprocessed / "splits_final.json").read_text())

    def fold_folder(self, trainer: str, fold: int) -> Path:
        return self.results / self.name / f"{trainer}__{PLANS}__{self.configuration}" / f"fold_{fold}"

    def env(self) -> dict:
        return {**os.environ, "nnUNet_raw": str(self.folder / "nnUNet_raw"),
                "nnUNet_preprocessed": str(self.folder / "nnUNet_preprocessed"), "nnUNet_results": str(self.results),
                "nnUNet_extTrainer": str(REPO / "trainers")}


def finished_folds(work: Work, trainers: list[str], folds: list[int]) -> list[int]:
    from nnunet_ext.workflow.cv import fold_state

    return [f for f in folds if all(fold_state(work.fold_folder(t, f)) == "done" for t in trainers)]


def collapsed(work: Work, trainer: str, fold: int) -> dict[str, bool]:
    """Per region: True if no validation case of the fold that has the region gets any of it predicted."""
    import numpy as np
    import SimpleITK as sitk

    from nnunet_ext.evaluation import region_definitions

    ending = work.dataset_json["file_ending"]
    regions = region_definitions(work.dataset_json)
    predicted = {name: [] for name in regions}
    for case in work.splits[fold]["val"]:
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(work.preprocessed / "gt_segmentations" / f"{case}{ending}")))
        prediction = sitk.GetArrayFromImage(sitk.ReadImage(str(work.fold_folder(trainer, fold) / "validation"
                                                               / f"{case}{ending}")))
        for name, labels in regions.items():
            if np.isin(reference, labels).any():
                predicted[name].append(bool(np.isin(prediction, labels).any()))
    return {name: bool(seen) and not any(seen) for name, seen in predicted.items()}


def training_log(work: Work, trainer: str, fold: int) -> dict:
    """nnU-Net's per-epoch logging (pseudo-Dice, losses, the guard's measure) from the fold's final checkpoint."""
    import torch

    checkpoint = torch.load(work.fold_folder(trainer, fold) / "checkpoint_final.pth", map_location="cpu",
                            weights_only=False)
    return {k: [x.tolist() if hasattr(x, "tolist") else x for x in v] for k, v in checkpoint["logging"].items()}


def plateau(ema: list[float]) -> dict:
    """EMA pseudo-Dice rise over the last 20 % of epochs."""
    start = max(0, int(round(0.8 * len(ema))) - 1)
    rise = float(ema[-1] - ema[start])
    return {"ema_first_of_last_20pct": float(ema[start]), "ema_last": float(ema[-1]), "rise": rise,
            "plateaued": rise < PLATEAU_POINTS}


def report(work: Work, trainers: list[str], folds: list[int], output: Path) -> list[dict]:
    command = [str(Path(sys.executable).parent / "nnunet_ext_report"), "-d", work.name, "-c", work.configuration,
               "-tr", *trainers, "-b", trainers[0], "-f", *map(str, folds), "-o", str(output)]
    completed = subprocess.run(command, env=work.env(), capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"error: nnunet_ext_report failed: {completed.stderr.strip().splitlines()[-1:]}")
    with open(output / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def dataset_results(args: argparse.Namespace, dataset: str) -> dict | None:
    try:
        work = Work(args.out / dataset, args.suite[dataset]["configuration"])
    except FileNotFoundError:
        return None
    bases = args.suite[dataset]["trainers"]
    trainers = [t + args.budget for t in bases]
    folds = finished_folds(work, trainers, args.folds)
    if not folds:
        return {"dataset": dataset, "name": work.name, "folds": [], "records": []}
    rows = report(work, trainers, folds, args.out / dataset / "report_quality_cpu")
    logs = {(t, f): training_log(work, t, f) for t in trainers for f in folds}
    collapses = {(t, f): collapsed(work, t, f) for t in trainers for f in folds}
    records = []
    for base, trainer in zip(bases, trainers):
        for region in dict.fromkeys(r["region"] for r in rows):
            cells = {r["metric"]: r for r in rows if r["trainer"] == trainer and r["region"] == region}
            dice, hd95 = cells["dice"], cells["hd95"]
            records.append({
                "trainer": base, "dataset": dataset, "region": region,
                "dice_mean": _float(dice["mean"]), "dice_se": _float(dice["se_cases"]),
                "hd95_mean": _float(hd95["mean"]), "hd95_se": _float(hd95["se_cases"]),
                "n_cases": int(dice["n_cases"]), "folds": folds,
                "collapsed_folds": [f for f in folds if collapses[(trainer, f)].get(region)],
                "dice_difference_vs_default": _float(dice["mean_difference"]),
                "dice_wilcoxon_p": _float(dice["wilcoxon_p"]),
                "hd95_difference_vs_default": _float(hd95["mean_difference"]),
            })
    default = trainers[0]
    return {
        "dataset": dataset, "name": work.name, "configuration": work.configuration, "folds": folds,
        "patch_size": work.plans["configurations"][work.configuration]["patch_size"],
        "batch_size": work.plans["configurations"][work.configuration]["batch_size"],
        "cases": sum(len(s["train"]) + len(s["val"]) for s in work.splits[:1]),
        "default_plateau": {str(f): plateau(logs[(default, f)]["ema_fg_dice"]) for f in folds},
        "records": records,
        "_logs": logs,
    }


def curves(results: dict, folder: Path, budget: str) -> list[str]:
    """One PNG per trainer: EMA pseudo-Dice (thick) and pseudo-Dice per region (thin) per fold, per dataset."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    trainers = list(dict.fromkeys(t for d in results.values() for (t, _) in d.get("_logs", {})))
    written = []
    for trainer in trainers:
        datasets = [d for d in results.values() if any(t == trainer for t, _ in d.get("_logs", {}))]
        figure, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.5), squeeze=False)
        for axis, data in zip(axes[0], datasets):
            for fold in data["folds"]:
                log = data["_logs"][(trainer, fold)]
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
        figure.suptitle(f"{trainer.removesuffix(budget)} at {budget}")
        figure.tight_layout()
        path = folder / f"curves_{trainer.removesuffix(budget)}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path.name)
    return written


def markdown(record: dict) -> str:
    lines = ["# Quality on 2 CPU cores at a converged budget", "",
             f"- Date (UTC): {record['date_utc']}; command: `{record['command']}`",
             f"- Budget `{record['budget']}`: {record['iterations']} training iterations per trainer and fold "
             "(nnU-Net's default trainer plateaus there: see the plateau lines)",
             f"- {record['note']}", "", "## Hardware", "", record["hardware_markdown"], ""]
    for data in record["datasets"].values():
        lines += [f"## {data['dataset']}: {data['name']}", ""]
        if not data["folds"]:
            lines += ["No fold finished by every trainer yet.", ""]
            continue
        lines += [f"Folds {', '.join(map(str, data['folds']))} ({data['configuration']}, patch {data['patch_size']}, "
                  f"batch {data['batch_size']}); mean ± standard error over the validation cases of all folds; "
                  "Δ Dice: paired difference to nnU-Net's default with the two-sided Wilcoxon p-value.", ""]
        for fold, p in data["default_plateau"].items():
            lines.append(f"- default, fold {fold}: EMA pseudo-Dice {p['ema_first_of_last_20pct']:.3f} -> "
                         f"{p['ema_last']:.3f} over the last 20 % of epochs ({'plateaued' if p['plateaued'] else 'still rising'})")
        lines += ["", "| trainer | region | Dice % | HD95 mm | Δ Dice % (p) | collapsed folds |", "|---|---|---|---|---|---|"]
        for r in data["records"]:
            delta = "baseline" if r["dice_difference_vs_default"] is None else \
                f"{100 * r['dice_difference_vs_default']:+.1f} ({r['dice_wilcoxon_p']:.2g})"
            lines.append(f"| {r['trainer']} | {r['region']} | {100 * r['dice_mean']:.1f} ± {100 * (r['dice_se'] or 0):.1f} "
                         f"| {r['hd95_mean']:.2f} ± {r['hd95_se'] or 0:.2f} | {delta} | "
                         f"{', '.join(map(str, r['collapsed_folds'])) or 'none'} |")
        lines.append("")
    lines += ["Training curves: `quality_cpu/curves_<trainer>.png` beside this file. A fold is *collapsed* on a "
              "region when the trainer predicts that region on none of the fold's validation cases that have it."]
    return "\n".join(lines) + "\n"


def write_results(args: argparse.Namespace) -> dict:
    results = {d: r for d in args.datasets if (r := dataset_results(args, d)) is not None}
    figures = curves(results, args.results / "quality_cpu", args.budget)
    from nnunet_ext.schedules import BUDGETS

    (epochs, iterations, _), _ = BUDGETS[args.budget]
    hardware = hardware_record()
    record = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["scripts/quality_cpu.py", *sys.argv[1:]]),
        "note": "smoke run (--quick): the numbers mean nothing" if args.quick else
                "each fold is one training run (nnU-Net does not seed training); not a reproduction of any paper",
        "hardware": hardware, "hardware_markdown": hardware_markdown(hardware).rstrip("\n"),
        "budget": args.budget, "iterations": epochs * iterations, "figures": figures,
        "datasets": {d: {k: v for k, v in r.items() if k != "_logs"} for d, r in results.items()},
        "records": [rec for r in results.values() for rec in r["records"]],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    for name, text in (("quality_cpu.json", json.dumps(record, indent=2) + "\n"), ("quality_cpu.md", markdown(record))):
        temporary = args.results / f".{name}.tmp"
        temporary.write_text(text)
        temporary.replace(args.results / name)
    print(f"[quality_cpu] written {args.results / 'quality_cpu.json'}, quality_cpu.md, {len(figures)} figure(s)",
          flush=True)
    return record


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.report_only:
        for fold in args.folds:
            for dataset in args.datasets:
                run_fold(args, dataset, fold)
                write_results(args)
    write_results(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
