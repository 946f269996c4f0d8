"""Segmentation quality on real MRI (or the synthetic BraTS-like set) with a short, stated budget:
nnU-Net's default trainer against ours on one split, every stage timed.

    nnunet_ext_benchmark quality --dataset lgg|brats|brats2015|synthetic [--source DIR] [--out DIR]
        [--trainers nnUNetTrainer nnUNetTrainerSiNGR ...] [--budget _10epochs_20iters] [--folds 0 1 2]
        [--device cpu|cuda] [--np N] [--configuration C] [--target-spacing Z Y X] [--patch-size Z Y X]
        [--batch-size N] [--shrink N] [--patients FILE] [--stop-after STAGE]

The stages, resumable (a stage skipped on a re-run is reported with the timings of the run that did it):
convert (the LGG or BraTS converter, or ``nnunet_ext_synthetic``), then through
:class:`nnunet_ext.workflow.pipeline.Pipeline` plan and preprocess, nnU-Net's seeded split, the maps of
each spec the trainers declare, training per trainer and fold, prediction of the validation cases
(``--predict``) and the report. Writes ``quality.json`` and ``quality.md`` to ``--out``. What each budget
costs per device: docs/results/short-budget-cpu.md and docs/results/gpu.md.

CPU concessions, each recorded with the planned value beside it: ``--target-spacing`` plans 3d_fullres at a
coarser spacing (nnU-Net's ``-overwrite_target_spacing``; validation predictions are still exported at the
raw images' spacing, so the metrics are at native resolution); ``--patch-size`` and ``--batch-size`` replace
the planned patch and batch (the network planned for the original patch is kept).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.benchmarks.common import (DATA_VARIABLE, at_least, auto_device, hardware_markdown, hardware_record,
                                 invoked_command, markdown_table, sample_folder, write_json)
from nnunet_ext.nnunet_env import PLANS, dataset_folder_name, nnunet_folder, use_work_folder
from nnunet_ext.trainer_path import check_trainers
from nnunet_ext.workflow.pipeline import Pipeline, link_raw_images

FULL_ITERATIONS = 1000 * 250  # nnU-Net's nnUNetTrainer: epochs x iterations per epoch
SCHEDULE_SUFFIX = re.compile(r"_\d+epochs?(_\d+iters?)?$")
SCHEDULE = ("num_epochs", "num_iterations_per_epoch", "num_val_iterations_per_epoch")
PLANNED = ("patch_size", "batch_size", "spacing", "median_image_size_in_voxels")  # recorded from the plans
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
DATASETS = {
    "lgg": {"id": 971, "name": "LGGFlair", "configuration": "2d", "sample": "lgg_kaggle_3m_sample/kaggle_3m",
            "folds": [0, 1, 2, 3, 4], "predict": False, "title": "LGG FLAIR (Kaggle lgg-mri-segmentation)",
            "note": "slices of each patient stacked into one volume; spacing assumed 1 mm in-plane and 5 mm between "
                    "slices (the TIFs store none; nnunet_ext_convert_lgg), HD95 in mm under that assumption"},
    "brats": {"id": 974, "name": "BraTS", "configuration": "3d_fullres", "sample": None, "folds": [0, 1, 2, 3, 4],
              "predict": False, "title": "BraTS 2017-2021 training cases (T1, T1ce, T2, FLAIR)",
              "note": "four modalities, expert labels 0/1/2/4, 240x240x155 at 1 mm"},
    "synthetic": {"id": 973, "name": "SyntheticBraTS", "configuration": "3d_fullres", "sample": None,
                  "folds": [0], "predict": False,
                  "title": "synthetic BraTS-like regions (nnunet_ext_synthetic -k brats)",
                  "note": "generated cases at 1 mm, 4 modalities, regions whole tumour, tumour core, enhancing tumour"},
    "brats2015": {"id": 972, "name": "BraTS2015", "configuration": "3d_fullres", "sample": "brats2015_sample",
                  "folds": [0], "predict": True, "title": "BraTS 2015 (FLAIR + T1c)",
                  "note": "two channels (T1c, FLAIR; no T1/T2 in this sample), native 240x240x155 at 1 mm"},
}
# Each budget needs a ShortBudget variant of every compared trainer. BraTS 2015 on CPU (about a minute
# per 3d_fullres iteration on 2 cores) runs the smoke budget: a pipeline-and-timings check, not quality.
DEFAULT_BUDGET = {("lgg", "cpu"): "_10epochs_20iters", ("brats2015", "cpu"): "_1epoch_2iters",
                  ("synthetic", "cpu"): "_80epochs_20iters"}  # on a GPU: _50epochs_100iters for every dataset
GPU_BUDGET = "_50epochs_100iters"
SHORT_RUN_NOTE = ("Short-budget run: not a reproduction of the SiNGR paper (full training with its own network, "
                  "optimiser and split; our nearest equivalent is nnU-Net's full schedule on a GPU, "
                  "docs/how-to/gpu-recipe.md). Differences between trainers at this budget say how fast each "
                  "learns, not how well it segments after full training.")
FULL_RUN_NOTE = ("nnU-Net's full schedule (1000 epochs x 250 iterations) with nnU-Net's pipeline, split and "
                 "optimiser rather than the SiNGR paper's (docs/methods/sing-and-singr.md).")
STAGE_COLUMNS = ["stage", "trainer", "fold", "state before", "wall s", "peak RSS MB", "setup s", "training s",
                 "validation s", "rate"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add = parser.add_argument
    add("--dataset", required=True, choices=sorted(DATASETS))
    add("--source", type=Path, help="lgg: the kaggle_3m folder (TCGA_*/ folders of TIF slices); brats: the folder of "
        "BraTS 2017-2021 case folders (<case>_{t1,t1ce,t2,flair,seg}.nii.gz); brats2015: the case folders "
        f"({{T1c,Flair}}_subtrMeanDivStd.nii.gz, OTMultiClass.nii.gz); default: ${DATA_VARIABLE}/<sample>")
    add("--out", type=Path, help="work folder (default: benchmark_output/quality_<dataset>)")
    add("--trainers", nargs="+", default=["nnUNetTrainer", "nnUNetTrainerSiNGR"],
        help="trainer classes without the budget suffix; each runs as <trainer><budget>")
    add("--budget", help="schedule suffix shared by all trainers, or 'full' (default: "
        + ", ".join(f"{d} {c} {b}" for (d, c), b in DEFAULT_BUDGET.items()) + f", GPU {GPU_BUDGET})")
    add("--baseline", help="trainer of the paired tests (default: nnUNetTrainer, else the first)")
    add("--folds", type=at_least(0), nargs="+", help="folds of splits_final.json (default: lgg 0-4, else 0)")
    add("--device", type=auto_device, choices=("cpu", "cuda"), default="auto", help="default: cuda if torch sees a GPU")
    add("--np", type=at_least(1), dest="num_processes", default=min(CORES, 8),
        help="processes for conversion, preprocessing, maps, prediction (default: cores, at most 8)")
    add("--da-workers", type=at_least(0), help="nnUNet_n_proc_DA, 0 for nnU-Net's single-threaded augmentation "
                                               "(default: $nnUNet_n_proc_DA, else --np)")
    add("--predict", action=argparse.BooleanOptionalAction,
        help="time nnUNetv2_predict of each fold's validation cases (default: on for brats2015)")
    add("--disable-tta", action="store_true", help="nnUNetv2_predict without mirroring")
    add("--stop-after", choices=("convert", "plan", "precompute", "train"))
    add("--shrink", type=at_least(1), default=1, help="lgg: nnunet_ext_convert_lgg --bin-in-plane N (default 1)")
    add("--patients", type=Path, help="lgg: nnunet_ext_convert_lgg --patients FILE (default: every patient)")
    add("--configuration", help="nnU-Net configuration (default: lgg 2d, else 3d_fullres)")
    add("--target-spacing", type=float, nargs=3, metavar=("Z", "Y", "X"),
        help="plan 3d_fullres at this spacing in mm (nnU-Net's -overwrite_target_spacing; default: nnU-Net's)")
    add("--patch-size", type=at_least(1), nargs="+", help="replace the planned patch size (default: nnU-Net's)")
    add("--batch-size", type=at_least(1), help="replace the planned batch size (default: nnU-Net's)")
    add("--cases", type=int, default=30, help="synthetic: number of cases (default 30)")
    add("--shape", type=int, nargs=3, default=(32, 32, 24), help="synthetic: X Y Z (default 32 32 24)")
    args = parser.parse_args(argv)
    spec = DATASETS[args.dataset]
    if args.da_workers is None:
        args.da_workers = int(os.environ.get("nnUNet_n_proc_DA") or args.num_processes)
    if (args.shrink > 1 or args.patients) and args.dataset != "lgg":
        parser.error("--shrink, --patients: for --dataset lgg only")
    if args.patients and not args.patients.is_file():
        parser.error(f"--patients: file not found: {args.patients}")
    if args.dataset == "brats" and args.source is None:
        parser.error("--source: pass the folder of BraTS case folders (--dataset brats has no sample)")
    if spec["sample"]:
        args.source = (args.source or sample_folder(spec["sample"]) or parser.error(
            f"--source: pass --source DIR or set {DATA_VARIABLE} to the folder holding {spec['sample']}")).resolve()
        if not args.source.is_dir():
            parser.error(f"--source: folder not found: {args.source} (see --help)")
    args.out = (args.out or Path("benchmark_output") / f"quality_{args.dataset}").resolve()
    args.configuration = args.configuration or spec["configuration"]
    args.folds = spec["folds"] if args.folds is None else args.folds
    if args.target_spacing and args.configuration != "3d_fullres":
        parser.error("--target-spacing: nnU-Net applies it to 3d_fullres only")
    if len(set(args.folds)) != len(args.folds):
        parser.error("--folds: distinct fold numbers")
    args.predict = spec["predict"] if args.predict is None else args.predict
    budget = args.budget or DEFAULT_BUDGET.get((args.dataset, args.device), GPU_BUDGET)
    args.budget = "" if budget.lower() in ("full", "none") else budget
    if args.budget and not SCHEDULE_SUFFIX.fullmatch(args.budget):
        parser.error(f"--budget {args.budget!r} is not a schedule suffix like _10epochs_20iters (or 'full')")
    if any(SCHEDULE_SUFFIX.search(name) for name in args.trainers):
        parser.error("--trainers: all trainers share one budget; pass the classes without their schedule suffix and "
                     "the suffix as --budget")
    bases = list(dict.fromkeys(args.trainers))
    baseline = args.baseline or ("nnUNetTrainer" if "nnUNetTrainer" in bases else bases[0])
    if baseline not in bases:
        parser.error(f"--baseline {baseline} is not among --trainers ({' '.join(bases)})")
    args.trainers, args.baseline = [name + args.budget for name in bases], baseline + args.budget
    return args


def inspect_trainers(args: argparse.Namespace, dataset_name: str) -> tuple[dict, dict]:
    """The plans, each trainer's schedule and maps, and the budget they share, from the trainers built the way
    ``nnUNetv2_train`` builds them (with a throw-away nnUNet_results: the constructor creates its fold folder and
    a log file); and per map spec (target id) the spec and the trainers that need it."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps

    details, specs, results = {}, {}, os.environ["nnUNet_results"]
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["nnUNet_results"] = scratch
        try:
            for name in args.trainers:
                with contextlib.redirect_stdout(io.StringIO()):
                    trainer = get_trainer_from_args(dataset_name, args.configuration, 0, name, PLANS,
                                                    device=torch.device("cpu"))
                spec = trainer.target_spec() if isinstance(trainer, nnUNetTrainerWithTargetMaps) else None
                if spec is not None:
                    specs.setdefault(spec.target_id, (spec, []))[1].append(name)
                details[name] = {**{key: getattr(trainer, key) for key in SCHEDULE},
                                 "target_maps": spec and {"kind": spec.kind, "target_id": spec.target_id}}
        finally:
            os.environ["nnUNet_results"] = results
    if len({(d["num_epochs"], d["num_iterations_per_epoch"]) for d in details.values()}) > 1:
        raise NnunetExtError("the trainers do not share one schedule: " + ", ".join(
            f"{n} {d['num_epochs']}x{d['num_iterations_per_epoch']}" for n, d in details.items()))
    config, schedule = trainer.configuration_manager, details[name]
    plans = {"configuration": args.configuration,
             **{key: getattr(config, key) for key in PLANNED},
             "network": config.network_arch_class_name, "n_stages": config.network_arch_init_kwargs.get("n_stages")}
    budget = {"suffix": args.budget, **{key: schedule[key] for key in SCHEDULE},
              "training_iterations": schedule["num_epochs"] * schedule["num_iterations_per_epoch"]}
    return {"plans": plans, "trainer_details": details, "budget": budget}, specs


def convert(args: argparse.Namespace, dataset_name: str) -> dict:
    name, dataset_id, source = dataset_name.split("_", 1)[1], args.pipeline.dataset_id, str(args.source)
    record = args.pipeline.convert(
        {"synthetic": ["nnunet_ext_synthetic", "-d", dataset_id, "-k", "brats", "-n", name, "--cases", str(args.cases),
                       "--test-cases", "0", "--shape", *map(str, args.shape)],
         **dict.fromkeys(("brats", "brats2015"), ["nnunet_ext_convert_brats", "-i", source, "-d", dataset_id, "-n",
                                                  name, "-np", str(args.num_processes)]),
         "lgg": ["nnunet_ext_convert_lgg", "-i", source, "-d", dataset_id, "-n", name, "--bin-in-plane",
                 str(args.shrink), *(["--patients", str(args.patients.resolve())] if args.patients else [])]
         }[args.dataset])
    expected = {"brats2015": "2015", "brats": "2020"}.get(args.dataset)
    if expected and (layout := json.loads(Path(record["folder"], "dataset.json").read_text()).get("brats_layout")) != expected:
        raise NnunetExtError(f"{args.source} converted as BraTS layout {layout!r}, not {expected!r}; "
                             f"pass the case folders of --dataset {args.dataset} as --source")
    return {**record, **({"shrink_in_plane": args.shrink} if args.shrink > 1 else {}),
            **({"patients": str(args.patients)} if args.patients else {})}


def override_plans(args: argparse.Namespace, dataset_name: str) -> dict:
    """Writes ``--batch-size`` / ``--patch-size`` into the plans' configuration (atomically), keeping each planned
    value beside it (``planned_<key>``); the preprocessed data depend on neither. Started trainings keep their
    checkpoint's values. A patch must be divisible by the network's pooling (nnU-Net's ``shape_must_be_divisible_by``)."""
    path = nnunet_folder("nnUNet_preprocessed") / dataset_name / f"{PLANS}.json"
    plans = json.loads(path.read_text())
    configuration = plans["configurations"][args.configuration]
    wanted = {key: value for key, value in (("batch_size", args.batch_size), ("patch_size", args.patch_size))
              if value is not None}
    if "patch_size" in wanted:
        strides = configuration["architecture"]["arch_kwargs"]["strides"]
        divisors = [int(np.prod([s[axis] for s in strides])) for axis in range(len(wanted["patch_size"]))]
        if len(wanted["patch_size"]) != len(configuration["patch_size"]) or any(
                size % d for size, d in zip(wanted["patch_size"], divisors)):
            raise NnunetExtError(f"--patch-size {wanted['patch_size']}: the planned network needs "
                                 f"{len(divisors)} sizes divisible by {divisors}")
    planned = {key: configuration.setdefault(f"planned_{key}", configuration[key]) for key in wanted}
    if any(configuration[key] != value for key, value in wanted.items()):
        configuration.update(wanted)
        write_json(path, plans)
    return args.pipeline.record({"stage": "plan_overrides", "configuration": args.configuration,
                                 "planned": planned, "used": wanted})


def check_target_spacing(args: argparse.Namespace, dataset_name: str) -> None:
    """A work folder preprocessed at another spacing is an error, not a silent reuse."""
    plans = json.loads((nnunet_folder("nnUNet_preprocessed") / dataset_name / f"{PLANS}.json").read_text())
    spacing = plans["configurations"][args.configuration]["spacing"]
    if args.target_spacing and not np.allclose(spacing, args.target_spacing):
        raise NnunetExtError(f"{dataset_name} was preprocessed at spacing {spacing}, not --target-spacing "
                             f"{args.target_spacing}; pass another --out or remove its nnUNet_preprocessed folder")


def make_split(args: argparse.Namespace) -> dict:
    splits = args.pipeline.split()
    if any(fold >= len(splits) for fold in args.folds):
        raise NnunetExtError(f"--folds {max(args.folds)}: splits_final.json has {len(splits)} fold(s)")
    return {"how": "nnU-Net's generate_crossval_split(seed=12345, n_splits=min(5, cases))", "n_folds": len(splits),
            "folds": {str(f): {"train": sorted(s["train"]), "val": sorted(s["val"])} for f, s in enumerate(splits)}}


def train_folds(args: argparse.Namespace, iterations: int) -> list[dict]:
    records = []
    for fold in args.folds:
        for trainer in args.trainers:
            record = args.pipeline.train(trainer, fold, log_name=f"{trainer}_fold{fold}.log")
            steady = record["epoch_seconds"][1:] or record["epoch_seconds"]  # epoch 1 also starts the workers
            if steady:
                record["seconds_per_iteration"] = round(sum(steady) / len(steady) / iterations, 3)
            records.append(record)
    return records


def predict_folds(args: argparse.Namespace, dataset_name: str, split: dict) -> list[dict]:
    """``nnUNetv2_predict`` of each fold's validation cases from the raw images (native size)."""
    records = []
    for fold in args.folds:
        cases = split["folds"][str(fold)]["val"]
        inputs = link_raw_images(nnunet_folder("nnUNet_raw") / dataset_name, cases,
                                 args.out / "predict_input" / f"fold_{fold}")
        for trainer in args.trainers:
            records.append(args.pipeline.predict(
                trainer, [fold], inputs, args.out / "predict" / trainer / f"fold_{fold}", cases,
                disable_tta=args.disable_tta, log_name=f"{trainer}_fold{fold}_predict.log", fold=fold))
    return records


def stage_row(s: dict) -> list:
    rate = s.get("seconds_per_iteration", "")
    if s["stage"] == "predict" and "seconds_per_case" in s:
        rate = f"{s['seconds_per_case']} s/case" + ("" if s.get("test_time_mirroring", True) else " (no mirroring)")
    elif s["stage"].startswith("precompute") and s.get("seconds_per_computed_case") is not None:
        rate = f"{s['seconds_per_computed_case']} s/case"
    state = " ".join(x for x in (s.get("state_before", ""), s.get("skipped") and f"(skipped: {s['skipped']}" + (
        f"; timings of the run finished {s['timings_from']})" if s.get("timings_from") else ")")) if x)
    return [s["stage"], s.get("trainer", ""), s.get("fold", ""), state,
            *(s.get(key, "") for key in ("seconds", "peak_rss_mb", "setup_s", "training_s", "validation_s")), rate]


def markdown(record: dict) -> str:
    lines = [f"# Quality: {record['dataset']['title']}", "", f"**{record['note']}**", "",
             f"- Date (UTC): {record['hardware']['date_utc']}; command: `{record['command']}`",
             f"- Device: {record['device']}; nnUNet_n_proc_DA {record['da_workers']}, -np {record['num_processes']}",
             f"- Dataset: {record['dataset']['name']} from `{record['dataset']['source']}`, "
             f"{len(record['dataset']['cases'])} cases; {record['dataset']['note']}"]
    if "plans" in record:
        p, b = record["plans"], record["budget"]
        lines += [f"- Plans ({p['configuration']}): patch size {p['patch_size']}, batch size {p['batch_size']}, "
                  f"spacing {p['spacing']}, median image size {p['median_image_size_in_voxels']}, {p['network']} "
                  f"with {p['n_stages']} stages",
                  f"- Split: {record['split']['how']}, {record['split']['n_folds']} folds; used: "
                  + "; ".join(f"fold {f} validates {', '.join(record['split']['folds'][str(f)]['val'])}"
                              for f in record["folds"]),
                  f"- Budget `{b['suffix'] or 'full'}`: {b['num_epochs']} epoch(s) x {b['num_iterations_per_epoch']} "
                  f"training iterations (+ {b['num_val_iterations_per_epoch']} validation per epoch) = "
                  f"{b['training_iterations']} iterations per trainer and fold, "
                  f"{100 * b['training_iterations'] / FULL_ITERATIONS:.3g} % of nnU-Net's 1000 x 250",
                  f"- Trainers: {', '.join(record['trainers'])}; baseline: {record['baseline']} (nnU-Net does not "
                  "seed its training: a re-run differs by initialisation, sampling and augmentation)"]
    lines += ["", "## Hardware", "", hardware_markdown(record["hardware"]).rstrip("\n"), "", "## Stage timings", "",
              "Wall seconds per command; peak RSS of the stage's largest process (`wait4`). Setup / training / "
              "validation from nnU-Net's log; s/iteration: mean epoch time (without the first) / iterations.", "",
              *markdown_table(STAGE_COLUMNS, map(stage_row, record["stages"])), ""]
    if record["report"]:  # the report's own tables, one heading level down, its figures linked from here
        report = Path(record["report"]["report"])
        lines += [("#" + line if line.startswith("#") else line.replace("](", f"]({report.parent.name}/"))
                  for line in report.read_text().splitlines()]
    else:
        lines.append(f"**Stopped after the stage {record['stopped_after']} (--stop-after): no results.**")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict:
    spec = DATASETS[args.dataset]
    use_work_folder(args.out, nnUNet_n_proc_DA=args.da_workers, nnUNet_def_n_proc=args.num_processes,
                    **{"nnUNet_compile": 0} if args.device == "cpu" else {})  # nnU-Net never compiles on CPU
    shrunk = f"Shrink{args.shrink}" if args.shrink > 1 else ""
    args.pipeline = Pipeline(dataset_folder_name(spec["id"], spec["name"] + shrunk), args.configuration,
                             args.out / "logs", args.device, args.num_processes, journal=args.out / "stages.jsonl")
    dataset_name = args.pipeline.dataset
    note = spec["note"] + (f"; binned {args.shrink} x {args.shrink} in-plane" if args.shrink > 1 else "") + (
        f"; the patients of {args.patients.name}" if args.patients else "") + (
        f"; planned at {' x '.join(map(str, args.target_spacing))} mm" if args.target_spacing else "")
    if args.dataset == "synthetic":
        note = f"{' x '.join(map(str, args.shape))} voxels; " + note
    record = {"command": invoked_command(), "note": SHORT_RUN_NOTE if args.budget else FULL_RUN_NOTE,
              "hardware": hardware_record(), "device": args.device, "num_processes": args.num_processes,
              "da_workers": args.da_workers,
              "dataset": {"key": args.dataset, "title": f"{spec['title']}, {args.configuration}", "name": dataset_name,
                          "note": note,
                          "source": str(args.source) if args.source else "generated"},
              "folds": args.folds, "trainers": args.trainers, "baseline": args.baseline,
              "stopped_after": args.stop_after, "stages": [], "report": None, "results": None}
    check_trainers(args.trainers)
    stages = record["stages"]
    stages.append(convert(args, dataset_name))
    record["dataset"]["cases"] = args.pipeline.raw_cases()
    if args.stop_after != "convert":
        planner = ["-overwrite_target_spacing", *map(str, args.target_spacing)] if args.target_spacing else []
        stages.append(args.pipeline.plan_and_preprocess(planner))
        check_target_spacing(args, dataset_name)
        if args.batch_size is not None or args.patch_size is not None:
            stages.append(override_plans(args, dataset_name))
        inspected, specs = inspect_trainers(args, dataset_name)
        record.update(inspected, split=make_split(args))
        if args.stop_after != "plan":
            stages += [args.pipeline.precompute(maps, trainers) for maps, trainers in specs.values()]
        if args.stop_after not in ("plan", "precompute"):
            stages += train_folds(args, record["budget"]["num_iterations_per_epoch"])
        if args.stop_after is None:
            if args.predict:
                stages += predict_folds(args, dataset_name, record["split"])
            record["report"] = args.pipeline.report(args.trainers, args.baseline, args.folds, args.out / "report")
            stages.append(record["report"])
            with open(record["report"]["summary"], newline="") as handle:
                record["results"] = list(csv.DictReader(handle))
    write_json(args.out / "quality.json", record)
    (args.out / "quality.md").write_text(markdown(record))
    return record


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
