"""Segmentation quality on real MRI (or the synthetic BraTS-like set) with a short, stated budget:
nnU-Net's default trainer against ours on one split, every stage timed.

    nnunet_ext_benchmark quality --dataset lgg|brats2015|synthetic [--source DIR] [--out DIR]
        [--trainers nnUNetTrainer nnUNetTrainerSiNGR ...] [--budget _10epochs_20iters] [--folds 0 1 2]
        [--device cpu|cuda] [--np N] [--shrink N] [--batch-size N] [--stop-after STAGE]

Stages, through :class:`nnunet_ext.workflow.pipeline.Pipeline` (each resumable; a stage skipped on a
re-run is reported with the timings of the run that did it): convert (the LGG or BraTS 2015
converter, or ``nnunet_ext_synthetic``; ``--shrink N`` bins LGG slices N x N in-plane for CPU-sized
runs), ``nnUNetv2_plan_and_preprocess`` (``--batch-size`` then replaces the planned batch size),
nnU-Net's own seeded split with min(5, cases) folds, ``nnUNetv2_precompute_targets`` per map spec the
trainers declare, ``nnUNetv2_train`` per trainer and fold, ``nnUNetv2_predict`` of the validation
cases at native size (BraTS 2015, or ``--predict``), and ``nnunet_ext_report`` against the baseline.

Writes ``quality.json`` and ``quality.md`` (hardware, dataset, plans, split, budget, stage timings,
the report) to ``--out`` (default ``benchmark_output/quality_<dataset>``). What each budget costs
per device: docs/results/short-budget-cpu.md and docs/results/gpu.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import io
import json
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

FULL_ITERATIONS = 1000 * 250  # nnU-Net's nnUNetTrainer: epochs x iterations per epoch
SCHEDULE_SUFFIX = re.compile(r"_\d+epochs?(_\d+iters?)?$")
DATASETS = {
    "lgg": {"id": 971, "name": "LGGFlair", "configuration": "2d", "sample": "lgg_kaggle_3m_sample/kaggle_3m",
            "source_help": "the kaggle_3m folder (TCGA_*/ patient folders of TIF slices)",
            "folds": [0, 1, 2, 3, 4], "predict": False, "title": "LGG FLAIR (Kaggle lgg-mri-segmentation), 2d",
            "note": "slices of each patient stacked into one volume, trained slice-wise (2d); spacing assumed 1 mm "
                    "(the TIFs store none), so HD95 is in pixels of the (binned) slices"},
    "synthetic": {"id": 973, "name": "SyntheticBraTS", "configuration": "3d_fullres", "sample": None,
                  "source_help": "none: the dataset is generated (nnunet_ext_synthetic -k brats)",
                  "folds": [0], "predict": False,
                  "title": "synthetic BraTS-like regions (nnunet_ext_synthetic -k brats), 3d_fullres",
                  "note": "generated cases at 1 mm, 4 modalities, regions whole tumour, tumour core, enhancing tumour"},
    "brats2015": {"id": 972, "name": "BraTS2015", "configuration": "3d_fullres", "sample": "brats2015_sample",
                  "source_help": "the BraTS 2015 case folders ({T1c,Flair}_subtrMeanDivStd.nii.gz, OTMultiClass.nii.gz)",
                  "folds": [0], "predict": True, "title": "BraTS 2015 (FLAIR + T1c), 3d_fullres",
                  "note": "two channels (T1c, FLAIR; no T1/T2 in this sample), native 240x240x155 at 1 mm"},
}
# Each budget needs a ShortSchedule variant of every compared trainer. BraTS 2015 on CPU (about a minute
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--source", type=Path, help=f"the download (default: ${DATA_VARIABLE}/<sample>)")
    parser.add_argument("--out", type=Path, help="work folder (default: benchmark_output/quality_<dataset>)")
    parser.add_argument("--trainers", nargs="+", default=["nnUNetTrainer", "nnUNetTrainerSiNGR"],
                        help="trainer classes without the budget suffix; each runs as <trainer><budget>")
    parser.add_argument("--budget", help="schedule suffix shared by all trainers, or 'full' (default: "
                        + ", ".join(f"{d} {c} {b}" for (d, c), b in DEFAULT_BUDGET.items()) + f", GPU {GPU_BUDGET})")
    parser.add_argument("--baseline", help="trainer of the paired tests (default: nnUNetTrainer, else the first)")
    parser.add_argument("--folds", type=int, nargs="+", help="folds of splits_final.json (default: lgg 0-4, else 0)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if torch sees a GPU, else cpu")
    parser.add_argument("--np", type=int, dest="num_processes",
                        help="processes for conversion, preprocessing, maps, prediction (default: cores, at most 8)")
    parser.add_argument("--da-workers", type=int, help="nnUNet_n_proc_DA (default: $nnUNet_n_proc_DA, else --np)")
    parser.add_argument("--predict", action=argparse.BooleanOptionalAction,
                        help="time nnUNetv2_predict of each fold's validation cases (default: on for brats2015)")
    parser.add_argument("--disable-tta", action="store_true", help="nnUNetv2_predict without mirroring")
    parser.add_argument("--stop-after", choices=("convert", "plan", "precompute", "train"))
    parser.add_argument("--dataset-id", type=int, help="nnU-Net dataset id (default: lgg 971, brats2015 972, synthetic 973)")
    parser.add_argument("--shrink", type=int, default=1, help="lgg: bin every slice N x N in-plane (default 1)")
    parser.add_argument("--batch-size", type=int, help="replace the planned batch size (default: nnU-Net's)")
    parser.add_argument("--cases", type=int, default=30, help="synthetic: number of cases (default 30)")
    parser.add_argument("--shape", type=int, nargs=3, default=(32, 32, 24), help="synthetic: X Y Z (default 32 32 24)")
    args = parser.parse_args(argv)
    spec = DATASETS[args.dataset]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    args.num_processes = args.num_processes or min(cores, 8)
    args.da_workers = args.da_workers or int(os.environ.get("nnUNet_n_proc_DA") or args.num_processes)
    if min(args.num_processes, args.batch_size or 1) < 1:
        parser.error("--np and --batch-size must be at least 1")
    if args.shrink < 1 or (args.shrink > 1 and args.dataset != "lgg"):
        parser.error("--shrink N: N >= 1, for --dataset lgg only")
    if spec["sample"]:
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
    args.folds = list(spec["folds"]) if args.folds is None else args.folds
    if any(f < 0 for f in args.folds) or len(set(args.folds)) != len(args.folds):
        parser.error("--folds: distinct non-negative fold numbers")
    args.predict = spec["predict"] if args.predict is None else args.predict
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    budget = args.budget or DEFAULT_BUDGET.get((args.dataset, args.device), GPU_BUDGET)
    args.budget = "" if budget.lower() in ("full", "none") else budget
    if args.budget and not SCHEDULE_SUFFIX.fullmatch(args.budget):
        parser.error(f"--budget {args.budget!r} is not a schedule suffix like _10epochs_20iters (or 'full')")
    unsuffixed = lambda name: name[: -len(args.budget)] if args.budget and name.endswith(args.budget) else name
    bases = list(dict.fromkeys(unsuffixed(name) for name in args.trainers))
    for name in bases:
        if SCHEDULE_SUFFIX.search(name):
            parser.error(f"--trainers {name}: all trainers share one budget; pass the class without its schedule "
                         "suffix and the suffix as --budget")
    args.trainers = [b + args.budget for b in bases]
    baseline = unsuffixed(args.baseline or ("nnUNetTrainer" if "nnUNetTrainer" in bases else bases[0]))
    if baseline not in bases:
        parser.error(f"--baseline {baseline} is not among --trainers ({' '.join(bases)})")
    args.baseline = baseline + args.budget
    return args


def set_environment(args: argparse.Namespace) -> None:
    """The work folder's nnU-Net folders for this process and every subprocess."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (args.out / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(args.out / name)
    os.environ.update(nnUNet_extTrainer=str(trainer_folder()), nnUNet_n_proc_DA=str(args.da_workers),
                      nnUNet_def_n_proc=str(args.num_processes))
    if args.device == "cpu":
        os.environ["nnUNet_compile"] = "0"  # nnU-Net never compiles on CPU; docs/getting-started.md


def check_trainers(args: argparse.Namespace) -> None:
    """Every trainer as ``nnUNetv2_train -tr NAME`` finds it (nnunetv2, then nnUNet_extTrainer), before any stage."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    for name in args.trainers:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net's look-up prints every folder it searches
                recursive_find_trainer_class_by_name(name)
        except (RuntimeError, AssertionError):
            raise NnunetExtError(
                f"trainer {name} not found in nnunetv2 or {trainer_folder()}: the budget {args.budget or 'full'} "
                "needs a ShortSchedule variant (nnunet_ext/schedules.py), or pick another --budget") from None


def trainer_details(args: argparse.Namespace, dataset_name: str) -> dict:
    """Per trainer its schedule and map spec, from the trainer built the way ``nnUNetv2_train`` builds it
    (with a throw-away nnUNet_results: the constructor creates its fold folder and a log file)."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    details, results = {}, os.environ["nnUNet_results"]
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["nnUNet_results"] = scratch
        try:
            for name in args.trainers:
                with contextlib.redirect_stdout(io.StringIO()):
                    trainer = get_trainer_from_args(dataset_name, args.configuration, 0, name, PLANS,
                                                    device=torch.device("cpu"))
                spec = None
                if callable(getattr(trainer, "target_spec", None)):
                    with contextlib.suppress(NotImplementedError):
                        spec = trainer.target_spec()
                details[name] = {"num_epochs": trainer.num_epochs,
                                 "num_iterations_per_epoch": trainer.num_iterations_per_epoch,
                                 "num_val_iterations_per_epoch": trainer.num_val_iterations_per_epoch,
                                 "target_maps": spec and {"kind": spec.kind, "target_id": spec.target_id},
                                 "_spec": spec}
        finally:
            os.environ["nnUNet_results"] = results
    if len({(d["num_epochs"], d["num_iterations_per_epoch"]) for d in details.values()}) > 1:
        raise NnunetExtError("the trainers do not share one schedule: " + ", ".join(
            f"{n} {d['num_epochs']}x{d['num_iterations_per_epoch']}" for n, d in details.items()))
    return details


def convert(args: argparse.Namespace, dataset_name: str) -> dict:
    raw = Path(os.environ["nnUNet_raw"]) / dataset_name
    stage = {"stage": "convert", "folder": str(raw)}
    if (raw / "dataset.json").is_file():
        return args.pipeline.record({**stage, "skipped": "raw dataset present"})
    name, log = dataset_name.split("_", 1)[1], args.out / "logs" / "convert.log"
    if args.dataset == "synthetic":
        return args.pipeline.record({**stage, **run_logged(
            ["nnunet_ext_synthetic", "-d", str(args.dataset_id), "-k", "brats", "-n", name, "--cases", str(args.cases),
             "--test-cases", "0", "--shape", *map(str, args.shape)], log)})
    if args.dataset == "brats2015":
        record = run_logged(["nnunet_ext_convert_brats", "-i", str(args.source), "-d", str(args.dataset_id), "-n",
                             name, "-np", str(args.num_processes)], log)
        layout = json.loads((raw / "dataset.json").read_text()).get("brats_layout")
        if layout != "2015":
            raise NnunetExtError(f"{args.source} converted as BraTS layout {layout!r}, not the 2015 sample layout; "
                                 "pass the BraTS 2015 case folders as --source")
        return args.pipeline.record({**stage, **record})
    full = args.out / "nnUNet_raw_full_resolution" if args.shrink > 1 else raw.parent
    record = run_logged(["nnunet_ext_convert_lgg", "-i", str(args.source), "-d", str(args.dataset_id), "-n", name],
                        log, {**os.environ, "nnUNet_raw": str(full)})
    if args.shrink > 1:
        shrink_in_plane(full / dataset_name, raw, args.shrink)
        record["shrink_in_plane"] = args.shrink
    return args.pipeline.record({**stage, **record})


def shrink_in_plane(source: Path, target: Path, factor: int) -> None:
    """Writes ``source`` (an nnU-Net raw dataset of 2D slices stacked along z) binned ``factor`` x ``factor``
    in-plane, atomically: images by SimpleITK's ``BinShrink`` (block mean), labels by majority (mean >= 0.5)."""
    import SimpleITK as sitk

    from nnunet_ext.raw_dataset import write_atomically

    def write(staging: Path) -> None:
        for sub in ("imagesTr", "labelsTr"):
            (staging / sub).mkdir()
            for path in sorted((source / sub).glob("*.nii.gz")):
                image = sitk.BinShrink(sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkFloat32), [factor, factor, 1])
                if sub == "labelsTr":
                    image = sitk.Cast(image >= 0.5, sitk.sitkUInt8)
                sitk.WriteImage(image, str(staging / sub / path.name))
        dataset_json = {**json.loads((source / "dataset.json").read_text()), "shrunk_in_plane": factor}
        (staging / "dataset.json").write_text(json.dumps(dataset_json, indent=4) + "\n")

    write_atomically(target, overwrite=False, write=write)


def set_batch_size(args: argparse.Namespace, dataset_name: str) -> dict:
    """Writes ``--batch-size`` into the plans' configuration (atomically), keeping the planned value beside
    it; the preprocessed data do not depend on it. Started trainings keep their checkpoint's batch size."""
    path = Path(os.environ["nnUNet_preprocessed"]) / dataset_name / f"{PLANS}.json"
    plans = json.loads(path.read_text())
    configuration = plans["configurations"][args.configuration]
    planned = configuration.setdefault("planned_batch_size", configuration["batch_size"])
    if configuration["batch_size"] != args.batch_size:
        configuration["batch_size"] = args.batch_size
        write_json(path, plans)
    return args.pipeline.record({"stage": "batch_size", "configuration": args.configuration, "planned": planned,
                                 "used": args.batch_size})


def plans_record(args: argparse.Namespace, dataset_name: str) -> dict:
    plans = json.loads((Path(os.environ["nnUNet_preprocessed"]) / dataset_name / f"{PLANS}.json").read_text())
    config = plans["configurations"][args.configuration]
    architecture = config.get("architecture", {})
    return {"configuration": args.configuration, "patch_size": config["patch_size"],
            "batch_size": config["batch_size"], "spacing": config["spacing"],
            "median_image_size_in_voxels": config.get("median_image_size_in_voxels"),
            "network": architecture.get("network_class_name"),
            "n_stages": architecture.get("arch_kwargs", {}).get("n_stages")}


def make_split(args: argparse.Namespace, dataset_name: str) -> dict:
    """nnU-Net's seeded K-fold split (its own function and seed) with K = min(5, cases), unless one exists."""
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    splits_file = Path(os.environ["nnUNet_preprocessed"]) / dataset_name / "splits_final.json"
    if not splits_file.is_file():
        folder = str(args.pipeline.configuration_folder())
        cases = sorted(infer_dataset_class(folder).get_identifiers(folder))
        if len(cases) < 2:
            raise NnunetExtError(f"{dataset_name} has {len(cases)} case(s); a split needs at least 2")
        write_json(splits_file, generate_crossval_split(cases, seed=12345, n_splits=min(5, len(cases))))
    splits = json.loads(splits_file.read_text())
    bad = [f for f in args.folds if f >= len(splits)]
    if bad:
        raise NnunetExtError(f"--folds {bad[0]}: {splits_file} has {len(splits)} fold(s) (0..{len(splits) - 1})")
    return {"how": "nnU-Net's generate_crossval_split(seed=12345, n_splits=min(5, cases))", "n_folds": len(splits),
            "folds": {str(f): {"train": sorted(s["train"]), "val": sorted(s["val"])} for f, s in enumerate(splits)}}


def precompute(args: argparse.Namespace, details: dict) -> list[dict]:
    """One ``nnUNetv2_precompute_targets`` per distinct map spec the trainers need."""
    specs = {}
    for trainer, entry in details.items():
        if entry["_spec"] is not None:
            specs.setdefault(entry["_spec"].target_id, (entry["_spec"], []))[1].append(trainer)
    return [args.pipeline.precompute(spec, trainers) for spec, trainers in specs.values()]


def train_folds(args: argparse.Namespace, details: dict) -> list[dict]:
    records = []
    for fold in args.folds:
        for trainer in args.trainers:
            record = args.pipeline.train(trainer, fold, log_name=f"{trainer}_fold{fold}.log")
            steady = record["epoch_seconds"][1:] or record["epoch_seconds"]  # epoch 1 also starts the workers
            if steady:
                record["seconds_per_iteration"] = round(
                    sum(steady) / len(steady) / details[trainer]["num_iterations_per_epoch"], 3)
            records.append(record)
    return records


def predict_folds(args: argparse.Namespace, dataset_name: str, split: dict) -> list[dict]:
    """``nnUNetv2_predict`` of each fold's validation cases from the raw images (native size)."""
    raw = Path(os.environ["nnUNet_raw"]) / dataset_name
    dataset_json = json.loads((raw / "dataset.json").read_text())
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
                trainer, [fold], inputs, args.out / "predict" / trainer / f"fold_{fold}", cases,
                disable_tta=args.disable_tta, log_name=f"{trainer}_fold{fold}_predict.log", fold=fold))
    return records


def stage_row(s: dict) -> str:
    rate = s.get("seconds_per_iteration", "")
    if s["stage"] == "predict" and "seconds_per_case" in s:
        rate = f"{s['seconds_per_case']} s/case" + ("" if s.get("test_time_mirroring", True) else " (no mirroring)")
    elif s["stage"].startswith("precompute") and s.get("seconds_per_computed_case") is not None:
        rate = f"{s['seconds_per_computed_case']} s/case"
    state = " ".join(x for x in (s.get("state_before", ""), s.get("skipped") and f"(skipped: {s['skipped']}" + (
        f"; timings of the run finished {s['timings_from']})" if s.get("timings_from") else ")")) if x)
    return "| " + " | ".join(str(x) for x in (s["stage"], s.get("trainer", ""), s.get("fold", ""), state,
                                              s.get("seconds", ""), s.get("peak_rss_mb", ""), s.get("setup_s", ""),
                                              s.get("training_s", ""), s.get("validation_s", ""), rate)) + " |"


def markdown(record: dict) -> str:
    lines = [f"# Quality: {record['dataset']['title']}", "", f"**{record['note']}**", "",
             f"- Date (UTC): {record['date_utc']}; command: `{record['command']}`",
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
    lines += ["", "## Hardware", "", record["hardware_markdown"], "", "## Stage timings", "",
              "Wall seconds per command; peak RSS of the stage's largest process (`wait4`). Setup / training / "
              "validation from nnU-Net's log; s/iteration: mean epoch time (without the first) / iterations.", "",
              "| stage | trainer | fold | state before | wall s | peak RSS MB | setup s | training s | validation s "
              "| rate |", "|---|---|---|---|---|---|---|---|---|---|", *map(stage_row, record["stages"]), ""]
    if record["report"]:  # the report's own tables, one heading level down, its figures linked from here
        report = Path(record["report"]["report"])
        lines += [("#" + line if line.startswith("#") else line.replace("](", f"]({report.parent.name}/"))
                  for line in report.read_text().splitlines()]
    else:
        lines.append(f"**Stopped after the stage {record['stopped_after']} (--stop-after): no results.**")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict:
    from nnunet_ext.nnunet_env import dataset_folder_name

    spec = DATASETS[args.dataset]
    args.out.mkdir(parents=True, exist_ok=True)
    set_environment(args)
    hardware = hardware_record()
    dataset_name = dataset_folder_name(args.dataset_id, spec["name"] + (f"Shrink{args.shrink}" if args.shrink > 1 else ""))
    args.pipeline = Pipeline(dataset_name, args.configuration, args.out / "logs", args.device, args.num_processes,
                             journal=args.out / "stages.jsonl")
    note = spec["note"] + (f"; binned {args.shrink} x {args.shrink} in-plane" if args.shrink > 1 else "")
    if args.dataset == "synthetic":
        note = f"{' x '.join(map(str, args.shape))} voxels; " + note
    record = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": invoked_command(), "note": SHORT_RUN_NOTE if args.budget else FULL_RUN_NOTE,
              "hardware": hardware, "hardware_markdown": hardware_markdown(hardware).rstrip("\n"),
              "device": args.device, "num_processes": args.num_processes, "da_workers": args.da_workers,
              "dataset": {"key": args.dataset, "title": spec["title"], "name": dataset_name, "note": note,
                          "source": str(args.source) if args.source else "generated"},
              "folds": args.folds, "trainers": args.trainers, "baseline": args.baseline,
              "stopped_after": args.stop_after, "stages": [], "report": None, "results": None}
    check_trainers(args)
    stages = record["stages"]
    stages.append(convert(args, dataset_name))
    record["dataset"]["cases"] = args.pipeline.raw_cases()
    if args.stop_after != "convert":
        stages.append(args.pipeline.plan_and_preprocess())
        if args.batch_size is not None:
            stages.append(set_batch_size(args, dataset_name))
        details = trainer_details(args, dataset_name)
        first = details[args.trainers[0]]
        record.update(plans=plans_record(args, dataset_name), split=make_split(args, dataset_name),
                      trainer_details={n: {k: v for k, v in d.items() if k != "_spec"} for n, d in details.items()},
                      budget={"suffix": args.budget, **{k: first[k] for k in (
                          "num_epochs", "num_iterations_per_epoch", "num_val_iterations_per_epoch")},
                              "training_iterations": first["num_epochs"] * first["num_iterations_per_epoch"]})
        if args.stop_after != "plan":
            stages += precompute(args, details)
        if args.stop_after not in ("plan", "precompute"):
            stages += train_folds(args, details)
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
