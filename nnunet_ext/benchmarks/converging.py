"""The converging quality benchmarks: every trainer against nnU-Net's default over folds, one resumable command.

Two benchmarks share this machinery, each a :class:`Benchmark` (its datasets, trainers, budget, folds):
``quality-cpu`` (:mod:`.quality_cpu`, synthetic BraTS-like volumes) and ``quality-real`` (:mod:`.quality_real`,
real BraTS and LGG FLAIR cases). Each (dataset, fold, trainer) is one run of ``nnunet_ext_benchmark quality
--stop-after train`` (which converts, plans, precomputes the maps and trains the fold), at a budget chosen for
nnU-Net's default trainer to plateau (its EMA pseudo-Dice rising by less than 1 point over the last 20 % of the
epochs; the record says per fold whether it did). Folds run in order, every dataset per fold, so that an
interrupted benchmark has whole folds.

Each trained (dataset, trainer, fold) is recorded in ``<results>/<name>/runs/<dataset>/<trainer><budget>_fold<k>.json``
(per-case metrics of the fold's validation, collapsed regions, the per-epoch training log): committed, these
records are the benchmark's state, so re-running the command on any machine trains only what has no record (an
interrupted training on the same machine resumes from its checkpoint). After every run the results are rewritten
from all committed records (each trainer paired with the default over the folds both have):

- ``<results>/<name>.json``: one record per trainer, dataset and region with ``trainer``, ``dataset``,
  ``region``, ``dice_mean``, ``dice_se`` (over cases of all folds), ``hd95_mean``, ``hd95_se``, for BraTS the
  organisers' lesion-wise ``lw_dice_*`` / ``lw_hd95_*``, ``folds``, ``collapsed_folds``, the paired Wilcoxon
  test against the default, onset epochs, plus the hardware, budget, plateau check, the papers' claims and how
  ours compare, and the command;
- ``<results>/<name>.md``: the same as tables;
- ``<results>/<name>/curves_<trainer>.png``: per-epoch EMA pseudo-Dice and pseudo-Dice per region of every fold
  (and the wrong-side saturation of trainers that log it).

A fold *collapsed* on a region when the trainer predicts that region on none of the fold's validation cases
that have it (the "no tumour core" failure). Metrics: MONAI Dice and HD95 in mm at the raw images' spacing
(nnU-Net exports the validation at that spacing), BraTS empty-mask convention; the lesion-wise ones from the
organisers' package (``brats-evaluation``, ``gli`` configuration, :mod:`nnunet_ext.brats_metrics`).
``--quick`` runs a smoke version for the test suite; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nnunet_ext.benchmarks.common import DATA_VARIABLE, hardware_markdown, hardware_record, invoked_command, sample_folder, write_json
from nnunet_ext.commands import exit_description
from nnunet_ext.nnunet_env import PLANS, SPLITS_FILE, atomic_write_bytes, fold_folder

BASELINE = "nnUNetTrainer"
PLATEAU_POINTS = 0.01  # EMA pseudo-Dice rise over the last 20 % of epochs below which the default has plateaued
ONSET_DICE = 0.1  # a region has started to learn at the first epoch its pseudo-Dice exceeds this
OFFICIAL_COLUMNS = ("lw_dice", "lw_hd95")  # the organisers' ranking metrics kept per case (brats_metrics)
# The package's HD95 for a missed or false-positive lesion (its mets parser, and its global HD95 of an empty region):
# recorded where its seg parser reports an infinite lesion-wise HD95 (lesions, none matched), so means stay finite.
LESION_HD95_PENALTY = 373.0


@dataclass(frozen=True)
class Input:
    """A path the quality part needs for a dataset (``--source``, ``--patients``), given as ``--<dataset>-<name>``."""

    option: str  # the quality part's option
    sample: str | None  # default: this path under $NNUNET_EXT_DATA (None: no default)
    help: str


#: the quality part's pool size in a ``--quick`` run: on its tiny stand-in each extra pool worker costs more to start
#: (a fresh interpreter importing torch and nnU-Net) than it saves
QUICK_POOLS = ("--np", "1")


@dataclass(frozen=True)
class Dataset:
    """One dataset of a benchmark: the quality part's arguments and the trainers, the required ones first (an
    interrupted fold has them)."""

    args: tuple[str, ...]
    configuration: str
    trainers: tuple[str, ...]
    fold0_only: tuple[str, ...] = ()  # variants that only diagnose, run in fold 0
    inputs: dict[str, Input] = field(default_factory=dict)
    official: str | None = None  # brats-evaluation configuration of the lesion-wise metrics, if any
    spacing_note: str = ""  # what the metrics' mm are, when the spacing is an assumption


@dataclass(frozen=True)
class Claim:
    """A paper's claim about a trainer against hard labels, checked against our paired differences."""

    paper: str
    trainer: str
    dataset: str
    metric: str  # dice or hd95
    direction: int  # +1: higher than the default, -1: lower
    region: str | None  # None: every region
    what: str  # the paper's numbers, as quoted


@dataclass(frozen=True)
class Benchmark:
    name: str  # the results' file stem and folder (quality_cpu)
    title: str
    suite: dict[str, Dataset]
    budget: str
    folds: tuple[int, ...]
    quick: dict[str, Dataset]
    quick_budget: str
    claims: tuple[Claim, ...] = ()


def parse_args(benchmark: Benchmark, doc: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(benchmark.suite), default=list(benchmark.suite))
    parser.add_argument("--folds", type=int, nargs="+", default=list(benchmark.folds),
                        help="train these folds now (the results cover every recorded fold of the benchmark)")
    parser.add_argument("--trainers", nargs="+", metavar="TRAINER",
                        help="train only these of the suite's trainers now (to order a sitting); the results still "
                             "cover every recorded trainer")
    for dataset, entry in benchmark.suite.items():
        for name, put in entry.inputs.items():
            parser.add_argument(f"--{dataset}-{name}", type=Path, default=put.sample and sample_folder(put.sample),
                                help=put.help + (f" (default: ${DATA_VARIABLE}/{put.sample})" if put.sample else ""))
    parser.add_argument("--out", type=Path, default=Path("benchmark_output") / benchmark.name,
                        help=f"work folder, one sub-folder per dataset (default benchmark_output/{benchmark.name})")
    parser.add_argument("--results", type=Path, default=Path("docs") / "results",
                        help=f"where {benchmark.name}.json / .md and the curves go (default docs/results)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results from the finished folds")
    parser.add_argument("--quick", action="store_true", help="smoke run for the tests (numbers mean nothing)")
    args = parser.parse_args(argv)
    args.benchmark = benchmark
    args.suite, args.budget = (benchmark.quick, benchmark.quick_budget) if args.quick else (benchmark.suite,
                                                                                            benchmark.budget)
    if args.quick:
        args.datasets, args.folds = list(benchmark.quick), [0]
    args.report_folds = list(args.folds) if args.quick else sorted(set(benchmark.folds) | set(args.folds))
    args.datasets = [d for d in args.datasets if d in args.suite]
    for dataset in list(args.datasets):
        for name in args.suite[dataset].inputs:
            value = getattr(args, f"{dataset}_{name}".replace("-", "_"), None)
            if not args.report_only and (value is None or not Path(value).exists()):
                print(f"[{benchmark.name}] {dataset} skipped: no --{dataset}-{name} (got {value}; "
                      f"{args.suite[dataset].inputs[name].help})", flush=True)
                args.datasets.remove(dataset)
                break
    args.out, args.results = args.out.resolve(), args.results.resolve()
    return args


# ------------------------------------------------------------------------------------------ running
def quality_command(args: argparse.Namespace, dataset: str, fold: int, trainers: list[str]) -> list[str]:
    entry = args.suite[dataset]
    command = [sys.executable, "-m", "nnunet_ext.benchmarks", "quality", *entry.args, "--configuration",
               entry.configuration, "--out", str(args.out / dataset), "--trainers", *trainers, "--baseline",
               trainers[0], "--budget", args.budget, "--folds", str(fold), "--device", "cpu", "--stop-after", "train"]
    for name, put in entry.inputs.items():
        command += [put.option, str(Path(getattr(args, f"{dataset}_{name}".replace("-", "_"))).resolve())]
    return command


def trainers_of_fold(args: argparse.Namespace, dataset: str, fold: int) -> list[str]:
    entry = args.suite[dataset]
    return [t for t in entry.trainers if fold == 0 or t not in entry.fold0_only]


def run_fold(args: argparse.Namespace, dataset: str, fold: int) -> None:
    """Trains and records, one at a time, the trainers of (dataset, fold) that have no record yet."""
    name = args.benchmark.name
    missing = [t for t in trainers_of_fold(args, dataset, fold) if not record_path(args, dataset, t, fold).is_file()
               and (not args.trainers or t in args.trainers)]
    if not missing:
        print(f"[{name}] {dataset} fold {fold}: every trainer recorded in {args.results}", flush=True)
    for trainer in missing:
        command = quality_command(args, dataset, fold, [trainer])
        print(f"[{name}] {dataset} fold {fold} {trainer}: $ {shlex.join(command)}", flush=True)
        completed = subprocess.run(command)
        if completed.returncode != 0:
            raise SystemExit(f"error: {dataset} fold {fold} {trainer} failed ({exit_description(completed.returncode)}); "
                             "re-run to resume")
        work = Work(args.out / dataset, args.suite[dataset].configuration)
        write_json(record_path(args, dataset, trainer, fold),
                   fold_record(work, trainer + args.budget, fold, args.suite[dataset].official))
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
        self.splits = json.loads((self.preprocessed / SPLITS_FILE).read_text())

    def fold_folder(self, trainer: str, fold: int) -> Path:
        return fold_folder(self.results, self.name, trainer, self.configuration, fold)


def record_path(args: argparse.Namespace, dataset: str, trainer: str, fold: int) -> Path:
    """The committed record of one trained fold: what the results are made of, so a new machine resumes."""
    return args.results / args.benchmark.name / "runs" / dataset / f"{trainer}{args.budget}_fold{fold}.json"


def fold_record(work: Work, trainer: str, fold: int, official: str | None = None) -> dict:
    """Per-case metrics of the fold's validation, which regions collapsed, and the per-epoch training log.

    ``official``: a brats-evaluation configuration (``gli``) whose lesion-wise Dice and HD95
    (:data:`OFFICIAL_COLUMNS`) are added to each case's row of the same region."""
    import numpy as np
    import SimpleITK as sitk
    import torch

    from nnunet_ext.evaluation import evaluate_folders
    from nnunet_ext.labels import region_definitions

    folder = work.fold_folder(trainer, fold)
    cases = sorted(work.splits[fold]["val"])
    references = work.preprocessed / "gt_segmentations"
    metrics = evaluate_folders(folder / "validation", references, work.dataset_json, cases)
    rows = [{"case": m.case, "region": m.region, **{k: getattr(m, k) for k in ("dice", "iou", "hd95", "asd")}}
            for m in metrics]
    if official:
        from nnunet_ext.evaluation import official_folder_metrics

        lesion_wise = {(o["case"], o["region"]): o for o in official_folder_metrics(
            folder / "validation", references, work.dataset_json, official, cases)[0]}
        for row in rows:  # NaN (no lesion in either file) is recorded as null, infinite HD95 as the penalty
            values = lesion_wise[(row["case"], row["region"])]
            row.update({k: _finite(values[k]) for k in OFFICIAL_COLUMNS})
            if values["lw_hd95"] == float("inf"):
                row.update(lw_hd95=LESION_HD95_PENALTY, lw_hd95_penalised=True)
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
    planned = work.plans["configurations"][work.configuration]
    return {
        "trainer": trainer, "fold": fold, "dataset": work.name, "configuration": work.configuration,
        "plans": {key: planned.get(key) for key in ("spacing", "patch_size", "batch_size", "planned_patch_size",
                                                     "planned_batch_size", "median_image_size_in_voxels")},
        "recorded_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware_record(),
        "cases": rows,
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
    from nnunet_ext.evaluation import summarise_rows

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
            lesion_wise = {}
            for metric in OFFICIAL_COLUMNS:  # BraTS: the organisers' lesion-wise metrics, summarised alike
                if (trainer, region, metric) in summary:
                    entry = summary[(trainer, region, metric)]
                    lesion_wise.update({f"{metric}_mean": _finite(entry["mean"]), f"{metric}_se": _finite(entry["se_cases"]),
                                        f"{metric}_difference_vs_default": _finite(entry["mean_difference"]),
                                        f"{metric}_wilcoxon_p": _finite(entry["wilcoxon_p"])})
            records.append({
                "trainer": trainer, "dataset": dataset, "region": region,
                "dice_mean": _finite(dice["mean"]), "dice_se": _finite(dice["se_cases"]),
                "hd95_mean": _finite(hd95["mean"]), "hd95_se": _finite(hd95["se_cases"]),
                "n_cases": dice["n_cases"], "folds": [f for f in folds if (trainer, f) in runs],
                "collapsed_folds": [f for f in folds if (trainer, f) in runs and runs[(trainer, f)]["collapsed"].get(region)],
                "dice_difference_vs_default": _finite(dice["mean_difference"]),
                "dice_wilcoxon_p": _finite(dice["wilcoxon_p"]),
                "hd95_difference_vs_default": _finite(hd95["mean_difference"]),
                "hd95_wilcoxon_p": _finite(hd95["wilcoxon_p"]), **lesion_wise,
                # the training log's channels are in the region order of the cases (nnU-Net's regions_class_order)
                "onset_epochs": {str(f): onset_epoch(runs[(trainer, f)]["log"], regions.index(region))
                                 for f in folds if (trainer, f) in runs},
            })
    first = runs[(trainers[0], folds[0])]
    return {"dataset": dataset, "name": first["dataset"], "configuration": first["configuration"], "folds": folds,
            "plans": first.get("plans"), "spacing_note": args.suite[dataset].spacing_note,
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


def check_claims(claims: tuple[Claim, ...], records: list[dict]) -> list[dict]:
    """Each paper claim beside our paired difference on the same metric: reproduced (same direction, p < 0.05),
    same direction without significance, or not reproduced; claims without our records yet are left out."""
    checked = []
    for claim in claims:
        for r in records:
            if (r["trainer"], r["dataset"]) != (claim.trainer, claim.dataset) or claim.region not in (None, r["region"]):
                continue
            difference, p = r[f"{claim.metric}_difference_vs_default"], r[f"{claim.metric}_wilcoxon_p"]
            if difference is None:
                continue
            same = difference * claim.direction > 0
            verdict = "reproduced" if same and p is not None and p < 0.05 else \
                "same direction, not significant" if same else "not reproduced"
            checked.append({**{k: getattr(claim, k) for k in ("paper", "trainer", "dataset", "metric", "what")},
                            "region": r["region"], "expected": "higher" if claim.direction > 0 else "lower",
                            "difference": difference, "p": p, "verdict": verdict})
    return checked


def _p_value(p: float | None) -> str:
    return "p undefined" if p is None else f"{p:.2g}"  # None: the test had no defined p (e.g. too few pairs)


def _difference_cell(record: dict, metric: str, scale: float) -> str:
    difference, p = record.get(f"{metric}_difference_vs_default"), record.get(f"{metric}_wilcoxon_p")
    if difference is None:
        return "baseline" if record["trainer"] == BASELINE else ""
    return f"{scale * difference:+.1f} ({_p_value(p)})"


def markdown(record: dict) -> str:
    from nnunet_ext.evaluation import mean_se_cell

    name = record["name"]
    lines = [f"# {record['title']}", "",
             f"- Date (UTC): {record['date_utc']}; command: `{record['command']}`",
             f"- Budget `{record['budget']}`: {record['iterations']} training iterations per trainer and fold "
             "(whether nnU-Net's default has plateaued there: the plateau lines below)",
             f"- {record['note']}", "", "## Hardware", "", record["hardware_markdown"], ""]
    for data in record["datasets"].values():
        lines += [f"## {data['dataset']}: {data.get('name', '')}", ""]
        if not data["folds"]:
            lines += ["No fold finished by nnU-Net's default yet.", ""]
            continue
        plans = data.get("plans")  # recorded since quality-real; older records have none
        planned = "".join(f" (planned {plans[f'planned_{k}']})" if plans.get(f"planned_{k}") else ""
                          for k in ("patch_size",)) if plans else ""
        setting = (f"; spacing {plans['spacing']} mm, patch {plans['patch_size']}{planned}, batch {plans['batch_size']}"
                   + (f" (planned {plans['planned_batch_size']})" if plans.get("planned_batch_size") else "")
                   ) if plans else ""
        lines += [f"Folds {', '.join(map(str, data['folds']))} ({data['configuration']}{setting}); mean ± standard error "
                  "over the validation cases of the folds each trainer has (column *folds*); Δ: paired difference to "
                  "nnU-Net's default with the two-sided Wilcoxon p-value. " + data.get("spacing_note", ""), ""]
        for fold, p in data["default_plateau"].items():
            lines.append(f"- default, fold {fold}: EMA pseudo-Dice {p['ema_first_of_last_20pct']:.3f} -> "
                         f"{p['ema_last']:.3f} over the last 20 % of epochs: "
                         + ("plateaued" if p["plateaued"] else "**not plateaued**")
                         + f" ({100 * p['rise']:+.1f} points; plateaued means a rise below 1 point)"
                         + f"; its highest value before them: {p['ema_max_before']:.3f} at epoch {p['epoch_of_max_before']}")
        lesion_wise = any("lw_dice_mean" in r for r in data["records"])
        extra = " lesion-wise Dice % | Δ lw Dice % (p) | lesion-wise HD95 mm |" if lesion_wise else ""
        lines += ["", "| trainer | region | folds | Dice % | Δ Dice % (p) | HD95 mm | Δ HD95 mm (p) |" + extra
                  + " collapsed folds | onset epoch per fold |",
                  "|---" * (9 + 3 * lesion_wise) + "|"]
        for r in data["records"]:
            cells = [r["trainer"], r["region"], ", ".join(map(str, r["folds"])),
                     mean_se_cell(r["dice_mean"], r["dice_se"], 100, 1), _difference_cell(r, "dice", 100),
                     mean_se_cell(r["hd95_mean"], r["hd95_se"], 1, 1), _difference_cell(r, "hd95", 1)]
            if lesion_wise:
                cells += [mean_se_cell(r.get("lw_dice_mean"), r.get("lw_dice_se"), 100, 1),
                          _difference_cell(r, "lw_dice", 100), mean_se_cell(r.get("lw_hd95_mean"), r.get("lw_hd95_se"), 1, 1)]
            cells += [", ".join(map(str, r["collapsed_folds"])) or "none",
                      ", ".join("never" if e is None else str(e) for e in r["onset_epochs"].values())]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if record["claims"]:
        lines += ["## The papers' claims against ours", "",
                  "Each claim is about the method against hard-label training in its paper's own set-up (network, "
                  "schedule, full training); ours is the paired difference to nnU-Net's default at the budget above.", "",
                  "| paper | trainer | dataset | region | claim | expected vs default | ours: Δ (p) | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in record["claims"]:
            scale = 100 if c["metric"] == "dice" else 1
            unit = "Dice points" if c["metric"] == "dice" else "HD95 mm"
            lines.append(f"| {c['paper']} | {c['trainer']} | {c['dataset']} | {c['region']} | {c['what']} | "
                         f"{c['expected']} {c['metric']} | {scale * c['difference']:+.1f} {unit} ({_p_value(c['p'])}) | "
                         f"{c['verdict']} |")
        lines.append("")
    lines += [f"Training curves: `{name}/curves_<trainer>.png` beside this file. A fold is *collapsed* on a "
              "region when the trainer predicts that region on none of the fold's validation cases that have it. "
              f"*Onset epoch*: the first epoch whose online pseudo-Dice of the region exceeds {ONSET_DICE} (how long "
              "it sat at zero before it learned)."]
    return "\n".join(lines) + "\n"


def write_results(args: argparse.Namespace) -> dict:
    name = args.benchmark.name
    results = {d: dataset_results(args, d) for d in args.suite}  # every dataset with records, whatever ran now
    figures = curves(results, args.results / name, args.budget)
    from nnunet_ext.budgets import BUDGETS

    (epochs, iterations, _), _ = BUDGETS[args.budget]
    hardware = hardware_record()
    records = [rec for r in results.values() for rec in r["records"]]
    record = {
        "name": name, "title": args.benchmark.title,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": invoked_command(),
        "note": "smoke run (--quick): the numbers mean nothing" if args.quick else
                "each fold is one training run (nnU-Net does not seed training); not a reproduction of any paper",
        "hardware": hardware, "hardware_markdown": hardware_markdown(hardware).rstrip("\n"),
        "budget": args.budget, "iterations": epochs * iterations, "figures": figures,
        "datasets": {d: {k: v for k, v in r.items() if k != "_runs"} for d, r in results.items()},
        "records": records, "claims": [] if args.quick else check_claims(args.benchmark.claims, records),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    write_json(args.results / f"{name}.json", record)
    atomic_write_bytes(args.results / f"{name}.md", markdown(record).encode())
    print(f"[{name}] written {args.results / f'{name}.json'}, {name}.md, {len(figures)} figure(s)", flush=True)
    return record


def main(benchmark: Benchmark, doc: str, argv=None) -> int:
    args = parse_args(benchmark, doc, argv)
    if args.report_only:
        write_results(args)
        return 0
    for fold in args.folds:
        for dataset in args.datasets:
            run_fold(args, dataset, fold)
    write_results(args)
    return 0

