"""Segmentation quality on real MRI with short, stated budgets: nnU-Net's default trainer vs ours, same split.

    nnunet_ext_benchmark quality --dataset lgg|brats2015|synthetic [--source DIR] [--out DIR]
        [--trainers nnUNetTrainer nnUNetTrainerSiNGR ...] [--budget _10epochs_20iters] [--folds 0 1 2 3 4]
        [--repeats K] [--device cpu|cuda] [--np N] [--shrink N] [--batch-size N]

Drives nnU-Net through the project's pipeline (:class:`nnunet_ext.workflow.pipeline.Pipeline`): each
stage a command run as a subprocess and timed (wall seconds; peak resident memory of the largest
process of the stage, from ``wait4``):

1. convert: ``nnunet_ext_convert_lgg`` (Kaggle ``kaggle_3m``; ``--shrink N`` then bins each slice N x N
   in-plane with SimpleITK's ``BinShrink``, labels by majority, for CPU-sized runs), ``nnunet_ext_convert_brats``
   (the BraTS 2015 sample layout: FLAIR + T1c, 240x240x155), or, for ``synthetic``, ``nnunet_ext_synthetic``
   (BraTS-like regions, ``--cases`` cases of ``--shape`` voxels) into the work folder's ``nnUNet_raw``;
2. ``nnUNetv2_plan_and_preprocess`` (``-c 2d`` for LGG, ``-c 3d_fullres`` for BraTS 2015); ``--batch-size N``
   then replaces the planned batch size of that configuration in the plans (nnU-Net's 2d plans of the
   binned LGG slices ask for 25 slices per batch, about 1.1 s per iteration on 2 cores);
3. split: nnU-Net's own ``generate_crossval_split`` (seed 12345, as ``nnUNetv2_train`` would make
   it) written to ``splits_final.json`` with min(5, cases) folds: 5 folds for the 8 LGG patients,
   3 (leave one out) for the 3 BraTS cases, where nnU-Net's default 5 folds cannot be made;
4. ``nnUNetv2_precompute_targets`` for the map kind each trainer declares (its ``target_spec()``,
   the trainer built the way ``nnUNetv2_train`` builds it), ``--device`` passed through;
5. training + validation: ``nnUNetv2_train`` once per repeat, fold and trainer, resumed as ``nnunet_ext_cv``
   resumes (so each fold is timed;
   setup / training / validation and epoch times are read from nnU-Net's training log);
6. (BraTS 2015, or ``--predict``) ``nnUNetv2_predict`` on each fold's validation cases from the raw
   images at native size: inference time and memory;
7. ``nnunet_ext_report ... -b <baseline>``: Dice, IoU, HD95, ASD per trainer (report.md, summary.csv).

Repeats: nnU-Net does not seed its training (weights, sampling and augmentation differ run to run), so
``--repeats K`` re-runs the same folds K times, each in its own ``results_run{k}`` folder; the spread
over repeats is run-to-run variation, not a seed sweep. Re-running the same command resumes:
conversion, preprocessing, up-to-date maps, finished folds and present predictions are skipped
(interrupted folds resume), and every stage that ran is appended to
``stages.jsonl``, so a skipped stage is reported with the timings of the run that did it.

Writes ``quality.json`` and ``quality.md`` to ``--out`` (default ``benchmark_output/quality_<dataset>``,
git-ignored) with the hardware, dataset, split, budget (epochs x iterations), stage timings and the
report tables. A short budget is labelled as such: it is not a reproduction of any paper.

Budgets (``--budget``, a ShortSchedule suffix every trainer of the run must have; default by dataset
and device: LGG CPU ``_10epochs_20iters``, BraTS 2015 CPU ``_1epoch_2iters``, GPU ``_50epochs_100iters``)
and what they cost, measured 2026-11-23 (CPU: 2 shared AMD EPYC cores at load average 4-9; GPU: one
H100 with 16 cores, 12 augmentation workers, ``nnUNet_compile=0``):

- LGG 2d (patch 256x256, batch 13): CPU 7.1-7.4 s per training iteration on 2 otherwise idle cores
  (2026-12-01; 11-30 s under load), GPU 0.066 s; validation of a fold (2 patients, 55 slices) 30 s
  on idle CPU cores (100 s under load), 35 s on GPU. One trainer and fold at ``_10epochs_20iters`` is
  about 25 min on 2 idle cores, at ``_50epochs_100iters`` about 7 min on the GPU.
- BraTS 2015 3d_fullres (patch 128^3, batch 2): CPU 45 s per iteration on 2 idle cores (2026-12-01;
  63-89 s under load), GPU 0.10 s; training + validation at ``_1epoch_2iters`` on CPU 414-424 s idle
  (820-970 s under load) with a 10.4 GB largest process; ``nnUNetv2_predict`` of one native-size case
  670 s on loaded CPU cores with mirroring, 52-54 s on idle ones with ``--disable-tta``, 40 s on GPU
  (3 s of it the sliding window).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import io
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

from nnunet_ext.commands import run_logged
from nnunet_ext.errors import NnunetExtError
from nnunet_ext.hardware import DATA_VARIABLE, hardware_markdown, hardware_record, invoked_command, sample_folder, write_json
from nnunet_ext.trainer_path import trainer_folder
from nnunet_ext.workflow.pipeline import PLANS, Pipeline

FULL_SCHEDULE = (1000, 250, 50)  # nnU-Net's nnUNetTrainer: epochs, iterations per epoch, validation iterations
NO_BUDGET = ("", "none", "full")
_SCHEDULE_SUFFIX = re.compile(r"_\d+epochs?(_\d+iters?)?$")

DATASETS = {
    "lgg": {
        "id": 971, "name": "LGGFlair", "configuration": "2d",
        "sample": "lgg_kaggle_3m_sample/kaggle_3m",
        "source_help": "the kaggle_3m folder (TCGA_*/ patient folders of TIF slices)",
        "trainers": ["nnUNetTrainer", "nnUNetTrainerSiNGR"], "folds": [0, 1, 2, 3, 4], "predict": False,
        "title": "LGG FLAIR (Kaggle lgg-mri-segmentation), 2d",
    },
    "synthetic": {
        "id": 973, "name": "SyntheticBraTS", "configuration": "3d_fullres", "sample": None,
        "source_help": "none: the dataset is generated (nnunet_ext_synthetic -k brats)",
        "trainers": ["nnUNetTrainer", "nnUNetTrainerSiNGR"], "folds": [0], "predict": False,
        "title": "synthetic BraTS-like regions (nnunet_ext_synthetic -k brats), 3d_fullres",
    },
    "brats2015": {
        "id": 972, "name": "BraTS2015", "configuration": "3d_fullres",
        "sample": "brats2015_sample",
        "source_help": "the BraTS 2015 case folders ({T1c,Flair}_subtrMeanDivStd.nii.gz, OTMultiClass.nii.gz)",
        "trainers": ["nnUNetTrainer", "nnUNetTrainerSiNGR"], "folds": [0], "predict": True,
        "title": "BraTS 2015 (FLAIR + T1c), 3d_fullres",
    },
}
# default budgets per dataset and device (each needs a ShortSchedule variant of every compared trainer in
# trainers/). BraTS on CPU: about a minute per 3d_fullres iteration on 2 cores, so the pipeline-and-timings
# check runs the smoke budget there; its quality numbers mean nothing at that budget.
DEFAULT_BUDGET = {("lgg", "cpu"): "_10epochs_20iters", ("lgg", "cuda"): "_50epochs_100iters",
                  ("brats2015", "cpu"): "_1epoch_2iters", ("brats2015", "cuda"): "_50epochs_100iters",
                  ("synthetic", "cpu"): "_80epochs_20iters", ("synthetic", "cuda"): "_50epochs_100iters"}
SHORT_RUN_NOTE = (
    "Short-budget run: not a reproduction of the SiNGR paper (which trains to convergence with its "
    "own network, optimiser and fixed train/validation/test split; this project's nearest equivalent is nnU-Net's "
    "full schedule of 1000 epochs x 250 iterations on a GPU, docs/how-to/gpu-recipe.md). Differences "
    "between trainers at this budget say how fast each learns, not how well it segments after full training."
)
FULL_RUN_NOTE = (
    "nnU-Net's full schedule (1000 epochs x 250 iterations), but nnU-Net's pipeline, split and optimiser rather "
    "than the SiNGR paper's: not a reproduction of the paper's numbers (docs/methods/sing-and-singr.md, 'How it differs from the "
    "authors' setup')."
)


# --------------------------------------------------------------------------------------- arguments
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--source", type=Path, help=f"the download (default: ${DATA_VARIABLE}/<sample>: "
                        + "; ".join(f"{k}: {v['sample']}" for k, v in DATASETS.items() if v["sample"]) + ")")
    parser.add_argument("--out", type=Path,
                        help="work folder with its own nnUNet_raw / nnUNet_preprocessed / results_run{k} "
                             "(default: benchmark_output/quality_<dataset> in the repository)")
    parser.add_argument("--trainers", nargs="+",
                        help="trainer classes without the budget suffix (default: nnUNetTrainer nnUNetTrainerSiNGR); "
                             "each runs as <trainer><budget>")
    parser.add_argument("--budget",
                        help="schedule suffix shared by all trainers, e.g. _1epoch_2iters, _10epochs_20iters, "
                             "_50epochs_100iters; 'full' for nnU-Net's 1000 x 250 (default: "
                             + ", ".join(f"{d} {c}: {b}" for (d, c), b in DEFAULT_BUDGET.items()) + ")")
    parser.add_argument("--baseline", help="trainer the others are compared with (default: nnUNetTrainer, else the "
                                           "first of --trainers); without the budget suffix")
    parser.add_argument("--folds", type=int, nargs="+", help="folds of splits_final.json (default: lgg 0 1 2 3 4, "
                                                             "brats2015 0)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="independent re-runs of the same folds, each in results_run{k} (nnU-Net does not seed "
                             "its training); default 1")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if torch sees a GPU, else cpu")
    parser.add_argument("--np", type=int, default=None, dest="num_processes",
                        help="worker processes for conversion, preprocessing, map precomputation and prediction "
                             "(default: the usable CPU cores, at most 8)")
    parser.add_argument("--da-workers", type=int, default=None,
                        help="nnUNet_n_proc_DA for training (default: the environment's value, else min(cores, 8))")
    parser.add_argument("--predict", action=argparse.BooleanOptionalAction, default=None,
                        help="time nnUNetv2_predict on each fold's validation cases (default: on for brats2015)")
    parser.add_argument("--disable-tta", action="store_true",
                        help="nnUNetv2_predict --disable_tta in the predict stage (no mirroring: about 8x faster on "
                             "CPU; the fold validation that the report scores always mirrors)")
    parser.add_argument("--stop-after", choices=("convert", "plan", "precompute", "train"),
                        help="end after this stage (smoke tests, timing the set-up); the Markdown then has no results")
    parser.add_argument("--dataset-id", type=int, help="nnU-Net dataset id in the work folder (default: lgg 971, "
                                                       "brats2015 972, synthetic 973)")
    parser.add_argument("--shrink", type=int, default=1,
                        help="lgg: bin every slice N x N in-plane after conversion (256 -> 256/N pixels; default 1)")
    parser.add_argument("--batch-size", type=int, help="replace the planned batch size of the configuration "
                                                       "(default: nnU-Net's)")
    parser.add_argument("--cases", type=int, default=30, help="synthetic: number of cases (default 30)")
    parser.add_argument("--shape", type=int, nargs=3, default=(32, 32, 24),
                        help="synthetic: image size X Y Z in voxels (default 32 32 24)")
    args = parser.parse_args(argv)
    spec = DATASETS[args.dataset]
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    args.num_processes = args.num_processes or max(1, min(cores, 8))
    if args.num_processes < 1:
        parser.error("--np must be at least 1")
    args.da_workers = args.da_workers or int(os.environ.get("nnUNet_n_proc_DA") or max(1, min(cores, 8)))
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.shrink < 1 or (args.shrink > 1 and args.dataset != "lgg"):
        parser.error("--shrink N: N >= 1, for --dataset lgg only")
    if args.dataset != "synthetic":
        args.source = args.source or sample_folder(spec["sample"])
        if args.source is None:
            parser.error(f"--source: pass --source DIR ({spec['source_help']}) or set {DATA_VARIABLE} to the folder "
                         f"holding {spec['sample']}")
        args.source = args.source.resolve()
        if not args.source.is_dir():
            parser.error(f"--source: folder not found: {args.source} (pass --source DIR: {spec['source_help']})")
    args.out = (args.out or Path("benchmark_output") / f"quality_{args.dataset}").resolve()
    args.dataset_id = args.dataset_id or spec["id"]
    args.configuration = spec["configuration"]
    args.folds = args.folds if args.folds is not None else list(spec["folds"])
    if any(f < 0 for f in args.folds) or len(set(args.folds)) != len(args.folds):
        parser.error("--folds: distinct non-negative fold numbers")
    args.predict = spec["predict"] if args.predict is None else args.predict
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.budget is None:
        args.budget = DEFAULT_BUDGET[(args.dataset, args.device)]
    args.budget = "" if args.budget.lower() in NO_BUDGET else args.budget
    if args.budget and not _SCHEDULE_SUFFIX.fullmatch(args.budget):
        parser.error(f"--budget {args.budget!r} is not a schedule suffix like _10epochs_20iters (or 'full')")
    bases = []
    for name in args.trainers or spec["trainers"]:
        if args.budget and name.endswith(args.budget):
            name = name[: -len(args.budget)]
        if _SCHEDULE_SUFFIX.search(name):
            parser.error(f"--trainers {name}: all trainers share one budget; pass the class without its schedule "
                         f"suffix and the suffix as --budget")
        bases.append(name)
    args.bases = list(dict.fromkeys(bases))
    args.trainers = [b + args.budget for b in args.bases]
    baseline = args.baseline or ("nnUNetTrainer" if "nnUNetTrainer" in args.bases else args.bases[0])
    if args.budget and baseline.endswith(args.budget):
        baseline = baseline[: -len(args.budget)]
    if baseline not in args.bases:
        parser.error(f"--baseline {baseline} is not among --trainers ({' '.join(args.bases)})")
    args.baseline = baseline + args.budget
    return args


# ---------------------------------------------------------------------------------- environment
def set_environment(args: argparse.Namespace) -> None:
    """The work folder's nnU-Net folders for this process and every subprocess (results set per repeat)."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed"):
        (args.out / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(args.out / name)
    os.environ["nnUNet_results"] = str(results_folder(args, 1))
    os.environ["nnUNet_extTrainer"] = str(trainer_folder())
    os.environ["nnUNet_n_proc_DA"] = str(args.da_workers)
    os.environ["nnUNet_def_n_proc"] = str(args.num_processes)
    if args.device == "cpu":
        os.environ["nnUNet_compile"] = "0"  # nnU-Net never compiles on CPU; docs/getting-started.md


def results_folder(args: argparse.Namespace, repeat: int) -> Path:
    return args.out / f"results_run{repeat}"


# ------------------------------------------------------------------------------------- trainers
@contextlib.contextmanager
def quiet():
    """nnU-Net's trainer lookup and constructor print a lot; keep the script's output readable."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def find_trainer_class(name: str):
    """The trainer class as ``nnUNetv2_train -tr NAME`` finds it (nnunetv2, then nnUNet_extTrainer)."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        with quiet():
            return recursive_find_trainer_class_by_name(name)
    except (RuntimeError, AssertionError):
        return None


def check_trainers(args: argparse.Namespace) -> None:
    missing = [t for t in args.trainers if find_trainer_class(t) is None]
    if missing:
        raise NnunetExtError(
            f"trainer(s) {', '.join(missing)} not found in nnunetv2 or {trainer_folder()}: the budget "
            f"{args.budget or 'full'} needs a ShortSchedule variant of each (two lines in the base trainer's file, "
            f"see nnunet_ext/schedules.py), or pick another --budget")


def trainer_details(args: argparse.Namespace, dataset_name: str) -> dict:
    """Per trainer: schedule and target maps, from the trainer built the way nnUNetv2_train builds it.

    Built with a throw-away nnUNet_results: nnU-Net's constructor creates its fold folder and a log file.
    """
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    from nnunet_ext.precompute import precompute_command

    details = {}
    saved = os.environ["nnUNet_results"]
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["nnUNet_results"] = scratch
        try:
            for name in args.trainers:
                with quiet():
                    trainer = get_trainer_from_args(dataset_name, args.configuration, 0, name, PLANS,
                                                    device=torch.device("cpu"))
                cls = type(trainer)
                schedule = tuple(getattr(cls, "schedule", None) or (trainer.num_epochs, trainer.num_iterations_per_epoch,
                                                                      trainer.num_val_iterations_per_epoch))
                entry = {"class": f"{cls.__module__}.{cls.__qualname__}", "num_epochs": int(schedule[0]),
                         "num_iterations_per_epoch": int(schedule[1]), "num_val_iterations_per_epoch": int(schedule[2]),
                         "training_iterations": int(schedule[0]) * int(schedule[1]), "target_maps": None}
                if hasattr(trainer, "target_spec") and callable(trainer.target_spec):
                    with contextlib.suppress(NotImplementedError):
                        spec = trainer.target_spec()
                        entry["target_maps"] = {"kind": spec.kind, "target_id": spec.target_id,
                                                "params": dict(spec.params),
                                                "command": precompute_command(dataset_name, args.configuration, PLANS,
                                                                              spec)}
                        entry["_spec"] = spec
                details[name] = entry
        finally:
            os.environ["nnUNet_results"] = saved
    schedules = {(d["num_epochs"], d["num_iterations_per_epoch"]) for d in details.values()}
    if len(schedules) > 1:
        raise NnunetExtError("the trainers do not share one schedule: " + ", ".join(
            f"{n} {d['num_epochs']}x{d['num_iterations_per_epoch']}" for n, d in details.items()))
    return details


# ---------------------------------------------------------------------------------------- stages
def convert(args: argparse.Namespace, dataset_name: str) -> dict:
    raw = Path(os.environ["nnUNet_raw"]) / dataset_name
    if (raw / "dataset.json").is_file():
        return args.pipeline.record({"stage": "convert", "skipped": "raw dataset present", "folder": str(raw)})
    name = dataset_name.split("_", 1)[1]
    if args.dataset == "synthetic":
        command = ["nnunet_ext_synthetic", "-d", str(args.dataset_id), "-k", "brats", "-n", name, "--cases",
                   str(args.cases), "--test-cases", "0", "--shape", *map(str, args.shape)]
        return args.pipeline.record({"stage": "convert", **run_logged(command, args.out / "logs" / "convert.log"),
                                     "folder": str(raw)})
    if args.dataset == "lgg":
        full = args.out / "nnUNet_raw_full_resolution" if args.shrink > 1 else Path(os.environ["nnUNet_raw"])
        command = ["nnunet_ext_convert_lgg", "-i", str(args.source), "-d", str(args.dataset_id), "-n", name]
        record = run_logged(command, args.out / "logs" / "convert.log", {**os.environ, "nnUNet_raw": str(full)})
        if args.shrink > 1:
            shrink_in_plane(full / dataset_name, raw, args.shrink)
            record["shrink_in_plane"] = args.shrink
        return args.pipeline.record({"stage": "convert", **record, "folder": str(raw)})
    else:
        command = ["nnunet_ext_convert_brats", "-i", str(args.source), "-d", str(args.dataset_id), "-n", name,
                   "-np", str(args.num_processes)]
    record = {"stage": "convert", **run_logged(command, args.out / "logs" / "convert.log")}
    if args.dataset == "brats2015":
        layout = json.loads((raw / "dataset.json").read_text()).get("brats_layout")
        if layout != "2015":
            raise NnunetExtError(f"{args.source} converted as BraTS layout {layout!r}, not the 2015 sample layout; "
                               f"pass the BraTS 2015 case folders as --source")
    return args.pipeline.record({**record, "folder": str(raw)})


def set_batch_size(args: argparse.Namespace, dataset_name: str) -> dict:
    """Writes ``--batch-size`` into the plans' configuration (atomically); the preprocessed data do not
    depend on it. Trainings already started keep the batch size of their checkpoint's plans."""
    path = Path(os.environ["nnUNet_preprocessed"]) / dataset_name / f"{PLANS}.json"
    plans = json.loads(path.read_text())
    configuration = plans["configurations"][args.configuration]
    planned = configuration.get("planned_batch_size", configuration["batch_size"])
    if configuration["batch_size"] != args.batch_size:
        configuration["planned_batch_size"], configuration["batch_size"] = planned, args.batch_size
        write_json(path, plans)
    return args.pipeline.record({"stage": "batch_size", "configuration": args.configuration, "planned": planned,
                                 "used": args.batch_size})


def shrink_in_plane(source: Path, target: Path, factor: int) -> None:
    """Writes ``source`` (an nnU-Net raw dataset of 2D slices stacked along z) binned ``factor`` x ``factor`` in-plane.

    Images: SimpleITK's ``BinShrink`` (the mean of each block; spacing x factor). Labels: the same mean
    of the 0/1 mask, >= 0.5 (majority). Written into a staging folder and renamed (atomic).
    """
    import SimpleITK as sitk

    from nnunet_ext.raw_dataset import write_atomically

    def write(staging: Path) -> None:
        dataset_json = json.loads((source / "dataset.json").read_text())
        dataset_json["shrunk_in_plane"] = factor
        for sub in ("imagesTr", "labelsTr"):
            (staging / sub).mkdir()
            for path in sorted((source / sub).glob("*.nii.gz")):
                image = sitk.BinShrink(sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32), [factor, factor, 1])
                if sub == "labelsTr":
                    image = sitk.Cast(image >= 0.5, sitk.sitkUInt8)
                sitk.WriteImage(image, str(staging / sub / path.name))
        (staging / "dataset.json").write_text(json.dumps(dataset_json, indent=4) + "\n")

    write_atomically(target, overwrite=False, write=write)


def plans_record(args: argparse.Namespace, dataset_name: str) -> dict:
    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / dataset_name
    plans = json.loads((preprocessed / f"{PLANS}.json").read_text())
    config = plans["configurations"][args.configuration]
    fingerprint = json.loads((preprocessed / "dataset_fingerprint.json").read_text())
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    return {
        "configuration": args.configuration,
        "patch_size": config["patch_size"],
        "batch_size": config["batch_size"],
        "spacing": config["spacing"],
        "median_image_size_in_voxels": config.get("median_image_size_in_voxels"),
        "normalization_schemes": config.get("normalization_schemes"),
        "network": config.get("architecture", {}).get("network_class_name"),
        "n_stages": config.get("architecture", {}).get("arch_kwargs", {}).get("n_stages"),
        "channels": dataset_json["channel_names"],
        "labels": dataset_json["labels"],
        "regions_class_order": dataset_json.get("regions_class_order"),
        "shapes_after_crop": fingerprint.get("shapes_after_crop"),
    }


def make_split(args: argparse.Namespace, dataset_name: str) -> dict:
    """nnU-Net's seeded K-fold split (its own function and seed) with K = min(5, cases), unless one exists."""
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / dataset_name
    splits_file = preprocessed / "splits_final.json"
    created = False
    if not splits_file.is_file():
        folder = str(args.pipeline.configuration_folder())
        cases = sorted(infer_dataset_class(folder).get_identifiers(folder))
        if len(cases) < 2:
            raise NnunetExtError(f"{dataset_name} has {len(cases)} case(s); a split needs at least 2")
        splits = generate_crossval_split(cases, seed=12345, n_splits=min(5, len(cases)))
        splits_file.write_text(json.dumps(splits, indent=4) + "\n")
        created = True
    splits = json.loads(splits_file.read_text())
    bad = [f for f in args.folds if f >= len(splits)]
    if bad:
        raise NnunetExtError(f"--folds {bad[0]}: {splits_file} has {len(splits)} fold(s) (0..{len(splits) - 1})")
    return {"file": str(splits_file), "created_now": created, "n_folds": len(splits),
            "how": "nnU-Net's generate_crossval_split(seed=12345, n_splits=min(5, cases))",
            "folds": {str(f): {"train": sorted(splits[f]["train"]), "val": sorted(splits[f]["val"])}
                      for f in range(len(splits))}}


def precompute(args: argparse.Namespace, details: dict) -> list[dict]:
    """One ``nnUNetv2_precompute_targets`` per distinct map spec the trainers need."""
    specs = {}
    for trainer, entry in details.items():
        spec = entry.pop("_spec", None)
        if spec is not None:
            specs.setdefault(spec.target_id, (spec, []))[1].append(trainer)
    return [args.pipeline.precompute(spec, trainers) for spec, trainers in specs.values()]


def train_folds(args: argparse.Namespace, details: dict, repeat: int) -> list[dict]:
    records = []
    for fold in args.folds:
        for trainer in args.trainers:
            record = args.pipeline.train(trainer, fold, results_folder(args, repeat),
                                         log_name=f"run{repeat}_{trainer}_fold{fold}.log", repeat=repeat)
            epochs = record["epoch_seconds"]
            if epochs:
                steady = epochs[1:] or epochs  # the first epoch also starts the augmentation workers
                record["seconds_per_iteration"] = round(
                    sum(steady) / len(steady) / details[trainer]["num_iterations_per_epoch"], 3)
            records.append(record)
    return records


def predict_folds(args: argparse.Namespace, dataset_name: str, split: dict, repeat: int) -> list[dict]:
    """``nnUNetv2_predict`` of each fold's validation cases from the raw images (native size)."""
    raw = Path(os.environ["nnUNet_raw"]) / dataset_name
    dataset_json = json.loads((raw / "dataset.json").read_text())
    results = results_folder(args, repeat)
    records = []
    for fold in args.folds:
        cases = split["folds"][str(fold)]["val"]
        inputs = args.out / "predict_input" / f"fold_{fold}"
        inputs.mkdir(parents=True, exist_ok=True)
        for case in cases:
            for channel in dataset_json["channel_names"]:
                link = inputs / f"{case}_{int(channel):04d}{dataset_json['file_ending']}"
                if not link.exists():
                    link.symlink_to(raw / "imagesTr" / link.name)
        for trainer in args.trainers:
            records.append(args.pipeline.predict(
                trainer, [fold], inputs, results / "predict" / trainer / f"fold_{fold}", cases, results,
                args.disable_tta, log_name=f"run{repeat}_{trainer}_fold{fold}_predict.log", repeat=repeat, fold=fold))
    return records


def report(args: argparse.Namespace, repeat: int) -> tuple[dict, list[dict]]:
    record = args.pipeline.report(args.trainers, args.baseline, args.folds, args.out / f"report_run{repeat}",
                                  results_folder(args, repeat), log_name=f"run{repeat}_report.log", repeat=repeat)
    with open(record["summary"], newline="") as handle:
        rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return record, rows


def _number(value: str):
    if value in ("", "None"):
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return None if math.isnan(number) else (int(number) if number.is_integer() and "." not in value else number)


def across_repeats(rows_by_repeat: dict[int, list[dict]]) -> list[dict]:
    """Per trainer, region and metric: mean and SD over repeats of each repeat's mean over cases."""
    grouped: dict[tuple, list[float]] = {}
    for rows in rows_by_repeat.values():
        for row in rows:
            grouped.setdefault((row["trainer"], row["region"], row["metric"]), []).append(row["mean"])
    out = []
    for (trainer, region, metric), values in grouped.items():
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
        out.append({"trainer": trainer, "region": region, "metric": metric, "repeats": len(values), "mean": mean,
                    "sd_over_repeats": sd, "min": min(values), "max": max(values)})
    return out


# ------------------------------------------------------------------------------------- Markdown
LABELS = {"dice": ("Dice %", 100.0), "iou": ("IoU %", 100.0), "hd95": ("HD95 mm", 1.0), "asd": ("ASD mm", 1.0)}


def _cell(mean, spread, scale) -> str:
    if mean is None:
        return ""
    return f"{scale * mean:.2f}" + ("" if spread is None else f" ± {scale * spread:.2f}")


def _results_table(rows: list[dict], over_folds: bool) -> list[str]:
    by = {}
    for row in rows:
        by.setdefault((row["trainer"], row["region"]), {})[row["metric"]] = row
    metrics = [m for m in LABELS if any(m in cells for cells in by.values())]
    header = "| trainer | region | cases | " + " | ".join(LABELS[m][0] for m in metrics)
    lines = [header + (" | folds | " + " | ".join(f"{LABELS[m][0]} over folds" for m in metrics[:2]) if over_folds
                       else "") + " | Δ Dice % (p) | Δ HD95 (p) |"]
    lines.append("|---" * (3 + len(metrics) + (3 if over_folds else 0) + 2) + "|")
    for (trainer, region), cells in by.items():
        first = cells[metrics[0]]
        line = f"| {trainer} | {region} | {first['n_cases']} | " + " | ".join(
            _cell(cells[m]["mean"], cells[m]["se_cases"], LABELS[m][1]) for m in metrics)
        if over_folds:
            line += f" | {first['n_folds'] or ''} | " + " | ".join(
                _cell(cells[m]["mean_over_folds"], cells[m]["se_over_folds"], LABELS[m][1]) for m in metrics[:2])
        deltas = []
        for metric in ("dice", "hd95"):
            cell = cells.get(metric, {})
            if cell.get("mean_difference") is None:
                deltas.append("baseline" if cell.get("baseline") is None else "")
            else:
                deltas.append(f"{LABELS[metric][1] * cell['mean_difference']:+.2f} ({cell['wilcoxon_p']:.3g})")
        lines.append(line + " | " + " | ".join(deltas) + " |")
    return lines


def markdown(record: dict) -> str:
    b = record["budget"]
    plans = record["plans"]
    lines = [f"# Quality on real MRI: {record['dataset']['title']}", "",
             f"**{record['note']}**", "",
             f"- Date (UTC): {record['date_utc']}; command: `{record['command']}`",
             f"- Device: {record['device']}; nnUNet_n_proc_DA {record['da_workers']}, -np {record['num_processes']}",
             f"- Dataset: {record['dataset']['name']} from `{record['dataset']['source']}`, "
             f"{len(record['dataset']['cases'])} cases ({', '.join(record['dataset']['cases'])})"
             + (f"; {record['dataset']['note']}" if record["dataset"].get("note") else ""),
             f"- Plans ({plans['configuration']}): patch size {plans['patch_size']}, batch size {plans['batch_size']}, "
             f"spacing {plans['spacing']}, median image size {plans['median_image_size_in_voxels']}, "
             f"{plans['network']} with {plans['n_stages']} stages",
             f"- Split: {record['split']['how']}, {record['split']['n_folds']} folds in `splits_final.json`; "
             f"folds used: {', '.join(map(str, record['folds']))}"]
    for fold in record["folds"]:
        part = record["split"]["folds"][str(fold)]
        lines.append(f"  - fold {fold}: train {len(part['train'])}, validation {', '.join(part['val'])}")
    lines += [f"- Budget `{b['suffix'] or 'full'}`: {b['num_epochs']} epoch(s) x {b['num_iterations_per_epoch']} "
              f"training iterations (+ {b['num_val_iterations_per_epoch']} validation iteration(s) per epoch) = "
              f"{b['training_iterations']} training iterations of batch size {plans['batch_size']} per trainer and "
              f"fold, {100 * b['fraction_of_full']:.3g} % of nnU-Net's full 1000 x 250",
              f"- Trainers: {', '.join(record['trainers'])}; baseline of the paired tests: {record['baseline']}",
              f"- Repeats: {record['repeats']} (independent re-runs of the same folds in results_run1..{record['repeats']}; "
              "nnU-Net does not seed its training, so repeats differ by weight initialisation, patch sampling and "
              "augmentation; they are not seeds)", ""]
    if record.get("stopped_after"):
        lines += [f"**Stopped after the stage {record['stopped_after']} (--stop-after): no training results.**", ""]
    lines += ["## Hardware", "", "At the start of the run (nnunet_ext/hardware.py); load average at the "
              f"end {record['load_average_end']}.", "", record["hardware_markdown"], "",
              "## Stage timings", "",
              "Wall seconds of each command; peak RSS is the largest single process of the stage (`wait4`), not "
              "the sum over concurrent workers. Training rows: setup / training / validation from nnU-Net's log; "
              "s/iteration = mean epoch time (without the first epoch when there are several) / training iterations "
              "per epoch (an epoch also runs its validation iterations).", "",
              "| stage | run | trainer | fold | state before | wall s | peak RSS MB | setup s | training s | "
              "validation s | s/iteration |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in record["stages"]:
        rate = s.get("seconds_per_iteration", "")
        if s["stage"] == "predict" and "seconds_per_case" in s:
            rate = f"{s['seconds_per_case']} s/case" + ("" if s.get("test_time_mirroring", True) else " (no mirroring)")
        elif s["stage"].startswith("precompute") and s.get("seconds_per_computed_case") is not None:
            rate = f"{s['seconds_per_computed_case']} s/case"
        lines.append("| " + " | ".join(str(x) for x in (
            s["stage"], s.get("repeat", ""), s.get("trainer", ""), s.get("fold", ""),
            " ".join(x for x in (s.get("state_before", ""), f"(skipped: {s['skipped']}" + (
                f"; timings of the run finished {s['timings_from']})" if s.get("timings_from") else ")")
                if s.get("skipped") else "") if x),
            s.get("seconds", ""), s.get("peak_rss_mb", ""), s.get("setup_s", ""), s.get("training_s", ""),
            s.get("validation_s", ""), rate)) + " |")
    lines.append("")
    for repeat, rows in record["results"]["by_repeat"].items():
        over_folds = any(r.get("mean_over_folds") is not None for r in rows)
        lines += [f"## Results, run {repeat} (`nnunet_ext_report`, {record['reports'][repeat]})", "",
                  "Mean ± standard error over the validation cases of the folds"
                  + ("; Dice and IoU also as mean ± standard error of the per-fold means" if over_folds else "")
                  + f". Δ: mean per-case difference to {record['baseline']} with the two-sided Wilcoxon signed-rank "
                  "p-value (paired by case, uncorrected).", "", *_results_table(rows, over_folds), ""]
    if record["repeats"] > 1:
        lines += ["## Spread over repeats", "", "Mean over repeats ± SD over repeats of each repeat's mean over cases "
                  "(min-max in brackets).", "", "| trainer | region | " + " | ".join(l for l, _ in LABELS.values())
                  + " |", "|---|---|" + "---|" * len(LABELS)]
        by = {}
        for row in record["results"]["across_repeats"]:
            by.setdefault((row["trainer"], row["region"]), {})[row["metric"]] = row
        for (trainer, region), cells in by.items():
            lines.append(f"| {trainer} | {region} | " + " | ".join(
                (_cell(cells[m]["mean"], cells[m]["sd_over_repeats"], LABELS[m][1])
                 + f" [{LABELS[m][1] * cells[m]['min']:.2f}-{LABELS[m][1] * cells[m]['max']:.2f}]") if m in cells else ""
                for m in LABELS) + " |")
        lines.append("")
    lines += ["Metric conventions: see the reports (BraTS empty-mask convention; HD95 / ASD from MONAI in mm of the "
              "image spacing" + ("; LGG spacing is assumed 1 mm, so they are in voxels" if record["dataset"]["key"] == "lgg"
                                 else "") + ")."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ main
def run(args: argparse.Namespace) -> dict:
    from nnunet_ext.nnunet_env import dataset_folder_name

    spec = DATASETS[args.dataset]
    args.out.mkdir(parents=True, exist_ok=True)
    set_environment(args)
    hardware = hardware_record()
    dataset_name = dataset_folder_name(args.dataset_id, spec["name"] + (f"Shrink{args.shrink}" if args.shrink > 1 else ""))
    args.pipeline = Pipeline(dataset_name, args.configuration, args.out / "logs", args.device, args.num_processes,
                             journal=args.out / "stages.jsonl")
    check_trainers(args)
    stages = [convert(args, dataset_name)]
    rows_by_repeat, reports = {}, {}
    if args.stop_after == "convert":
        return stopped(args, stages)
    stages.append(args.pipeline.plan_and_preprocess())
    if args.batch_size is not None:
        stages.append(set_batch_size(args, dataset_name))
    split = make_split(args, dataset_name)
    details = trainer_details(args, dataset_name)
    if args.stop_after != "plan":
        stages += precompute(args, details)
    for repeat in range(1, args.repeats + 1) if args.stop_after not in ("plan", "precompute") else ():
        stages += train_folds(args, details, repeat)
        if args.stop_after == "train":
            continue
        if args.predict:
            stages += predict_folds(args, dataset_name, split, repeat)
        record, rows = report(args, repeat)
        stages.append(record)
        rows_by_repeat[repeat], reports[repeat] = rows, record["report"]
    first = details[args.trainers[0]]
    dataset_note = {"lgg": "slices of each patient stacked into one volume, trained slice-wise (2d); spacing assumed "
                           "1 mm (the TIFs store none)" + (f"; binned {args.shrink} x {args.shrink} in-plane "
                                                          f"(256 -> {256 // args.shrink} pixels, spacing {args.shrink} mm)"
                                                          if args.shrink > 1 else ""),
                    "synthetic": f"{args.cases} generated cases of {' x '.join(map(str, args.shape))} voxels at 1 mm, "
                                 "4 modalities, regions whole tumour, tumour core, enhancing tumour",
                    "brats2015": "two channels (T1c, FLAIR; no T1/T2 in this sample), native 240x240x155 at 1 mm, "
                                 "regions whole tumour, tumour core, enhancing tumour"}[args.dataset]
    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": invoked_command(),
        "note": SHORT_RUN_NOTE if args.budget else FULL_RUN_NOTE,
        "hardware": hardware, "hardware_markdown": hardware_markdown(hardware).rstrip("\n"),
        "load_average_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "device": args.device, "num_processes": args.num_processes, "da_workers": args.da_workers,
        "dataset": {"key": args.dataset, "title": spec["title"], "name": dataset_name,
                    "source": str(args.source) if args.source else "generated",
                    "cases": args.pipeline.raw_cases(), "note": dataset_note},
        "plans": plans_record(args, dataset_name),
        "split": split, "folds": args.folds,
        "budget": {"suffix": args.budget, "num_epochs": first["num_epochs"],
                   "num_iterations_per_epoch": first["num_iterations_per_epoch"],
                   "num_val_iterations_per_epoch": first["num_val_iterations_per_epoch"],
                   "training_iterations": first["training_iterations"],
                   "fraction_of_full": first["training_iterations"] / (FULL_SCHEDULE[0] * FULL_SCHEDULE[1])},
        "trainers": args.trainers, "baseline": args.baseline,
        "trainer_details": {n: {k: v for k, v in d.items() if k != "_spec"} for n, d in details.items()},
        "repeats": args.repeats, "seeded": False,
        "stopped_after": args.stop_after,
        "stages": stages,
        "reports": reports,
        "results": {"by_repeat": rows_by_repeat, "across_repeats": across_repeats(rows_by_repeat)},
    }
    (args.out / "quality.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "quality.md").write_text(markdown(result))
    return result


def stopped(args: argparse.Namespace, stages: list[dict]) -> dict:
    """--stop-after convert: only the conversion to record."""
    result = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": invoked_command(), "stopped_after": args.stop_after,
              "stages": stages}
    (args.out / "quality.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "quality.md").write_text(f"# Quality run stopped after {args.stop_after}\n\n" + "\n".join(
        f"- {s['stage']}: {s.get('seconds', s.get('skipped'))} s" for s in stages) + "\n")
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except NnunetExtError as error:  # one line naming the stage's command and its log
        print(f"error: {error}", file=sys.stderr)
        return 1
    print((args.out / "quality.md").read_text())
    print(f"written: {args.out / 'quality.json'}, {args.out / 'quality.md'}")
    return 0

