"""Training and inference speed of our trainers vs nnU-Net's default trainer, as ratios measured in one run.

    nnunet_ext_benchmark training [--out benchmark_output] [--kind brats|binary|brats2015]
        [--trainers nnUNetTrainerSiNGR_L1 ...] [--device cpu|cuda] [--iterations 30 --warmup 3 --rounds 5]
        [--predict-repeats 3]

Everything lives in its own work folder (``--out``, default ``benchmark_output/`` in the repository)
with its own nnUNet_raw / nnUNet_preprocessed / nnUNet_results: a synthetic dataset (``brats``,
``binary``) is generated, or the real BraTS 2015 sample (``brats2015``: 3 cases, FLAIR + T1c at
240x240x155, from ``--source`` or ``$NNUNET_EXT_DATA/brats2015_sample``) is converted with
``nnunet_ext_convert_brats``; it is planned and preprocessed once (reused on later runs), and the
target maps of every trainer that needs them are precomputed (FastGeodis on the GPU with
``--device cuda``), so all trainers train and predict on the same plans, configuration and fold 0.
Measured, per trainer, the trainers always interleaved (round r runs them in forward order
for even r, backward for odd r) so that drift in the load of a shared machine hits all of them:

1. training iteration: wall time of ``next(dataloader_train)`` + ``train_step(batch)`` with
   nnU-Net's own ``NonDetMultiThreadedAugmenter`` and ``nnUNet_n_proc_DA`` augmentation workers,
   i.e. what one iteration of ``run_training`` costs; split into the wait for data and the step;
2. data loader alone: batches/s of the augmenter with its workers, and seconds per batch of the
   loader + augmentation in this process with one thread (the CPU cost of one batch, as a worker
   pays it);
3. ``train_step`` alone on one fixed batch: network + loss + backward, no data loading; and the
   optimiser's ``step`` alone on that batch's gradients;
4. ``nnUNetv2_predict`` as a subprocess on the test images, from the checkpoint each in-process
   trainer saves with nnU-Net's ``on_train_end``, and the trainer look-up alone in a fresh Python
   (the share of its start-up that differs between trainers);
5. disk: the precomputed maps vs the preprocessed images;
6. where the loader's time goes: each stage of the loader (crops, every transform of the pipeline) per
   sample, every trainer on the same cases, crops and random augmentation parameters.

Spreads: median and interquartile range per trainer; ratios are ratios of medians (of means for
batches/s) with a 95 % percentile-bootstrap interval. Writes ``benchmark_training.json`` and
``benchmark_training.md`` to the work folder and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nnunet_ext.hardware import DATA_VARIABLE, hardware_markdown, hardware_record, sample_folder
from nnunet_ext.trainer_path import trainer_folder
from nnunet_ext.workflow.pipeline import PLANS

VENV_BIN = Path(sys.executable).parent
BASELINE = "nnUNetTrainer"
DEFAULT_TRAINERS = (BASELINE, "nnUNetTrainerSiNGR")
DATASET_IDS = {"brats": 961, "binary": 962, "brats2015": 963}  # one id per kind, so all can share a work folder
CONFIGURATION = "3d_fullres"
FOLD = 0
# the project's speed requirements: ratio to nnU-Net's default trainer must stay at or below these
LIMITS = {"train_iteration": 1.05, "predict": 1.02}
BOOTSTRAP_SAMPLES = 4000


# --------------------------------------------------------------------------------------- set-up
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmark_output"),
                        help="work folder (nnU-Net folders, checkpoints, results); default: %(default)s")
    parser.add_argument("--kind", choices=sorted(DATASET_IDS), default="brats",
                        help="synthetic dataset (default sizes of nnunet_ext.synthetic) or brats2015, the real "
                             "BraTS 2015 sample; default: %(default)s")
    parser.add_argument("--source", type=Path, default=sample_folder("brats2015_sample"),
                        help=f"--kind brats2015: folder of the BraTS 2015 case folders; default: "
                             f"${DATA_VARIABLE}/brats2015_sample (%(default)s)")
    parser.add_argument("--trainers", nargs="+", default=[],
                        help=f"trainers to add to {' and '.join(DEFAULT_TRAINERS)} (e.g. nnUNetTrainerSiNGR_L1)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda if torch sees a GPU, else cpu")
    parser.add_argument("--iterations", type=int, default=30, help="measured training iterations per trainer")
    parser.add_argument("--warmup", type=int, default=3,
                        help="unmeasured iterations / batches at the start of every block (workers restart there)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the measurements are split into")
    parser.add_argument("--loader-batches", type=int, default=20,
                        help="measured batches per trainer for each data-loader measurement")
    parser.add_argument("--step-repeats", type=int, default=10, help="measured train_steps per trainer on a fixed batch")
    parser.add_argument("--predict-repeats", type=int, default=3,
                        help="timed nnUNetv2_predict runs (and trainer look-ups) per trainer")
    parser.add_argument("--da-workers", type=int, default=2, help="nnUNet_n_proc_DA; default: %(default)s")
    args = parser.parse_args(argv)
    for name in ("iterations", "rounds", "loader_batches", "step_repeats", "predict_repeats", "da_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup cannot be negative")
    if args.kind == "brats2015" and (args.source is None or not args.source.is_dir()):
        parser.error(f"--kind brats2015: no BraTS 2015 sample at {args.source}; pass --source /path/to/brats2015_sample "
                     f"or set {DATA_VARIABLE} to the folder holding brats2015_sample/")
    args.trainers = list(dict.fromkeys([*DEFAULT_TRAINERS, *args.trainers]))
    args.out = args.out.resolve()
    return args


def set_environment(args: argparse.Namespace) -> None:
    """nnU-Net folders of the work folder for this process and its subprocesses.

    Must run before nnunetv2 is imported: ``nnunetv2.paths`` reads the folders at import time.
    """
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (args.out / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(args.out / name)
    os.environ["nnUNet_extTrainer"] = str(trainer_folder())
    os.environ["nnUNet_n_proc_DA"] = str(args.da_workers)
    os.environ["nnUNet_def_n_proc"] = str(os.cpu_count() or 1)
    # network compilation would be the same for every trainer; off, it keeps warm-up short on GPUs
    os.environ["nnUNet_compile"] = "0"


def run_command(args: list[str]) -> None:
    executable = VENV_BIN / args[0]
    completed = subprocess.run([str(executable if executable.exists() else args[0]), *args[1:]],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")


def prepare_dataset(args: argparse.Namespace) -> tuple[str, dict]:
    """Writes, plans and preprocesses the dataset unless the work folder has it; its name and timings."""
    from nnunet_ext.synthetic import KINDS, generate_dataset

    dataset_id = DATASET_IDS[args.kind]
    base_name = "BraTS2015Sample" if args.kind == "brats2015" else KINDS[args.kind].default_name
    name = f"Dataset{dataset_id:03d}_{base_name}"
    raw = Path(os.environ["nnUNet_raw"]) / name
    config_folder = Path(os.environ["nnUNet_preprocessed"]) / name / f"{PLANS}_{CONFIGURATION}"
    timings = {}
    if not (raw / "dataset.json").is_file():
        start = time.perf_counter()
        if args.kind == "brats2015":
            run_command(["nnunet_ext_convert_brats", "-i", str(args.source), "-d", str(dataset_id), "-n", base_name])
            link_test_case(raw)
        else:
            generate_dataset(args.kind, dataset_id, seed=0)
        timings["generate_s"] = time.perf_counter() - start
    if not any(config_folder.glob("*_seg.b2nd")):
        start = time.perf_counter()
        run_command(["nnUNetv2_plan_and_preprocess", "-d", str(dataset_id), "-c", CONFIGURATION,
                     "-np", str(os.cpu_count() or 1)])
        timings["plan_and_preprocess_s"] = time.perf_counter() - start
    splits = config_folder.parent / "splits_final.json"
    if args.kind == "brats2015" and not splits.is_file():
        # nnU-Net's 5-fold split needs 5 cases; fold 0 of a 2 + 1 split is all the timing needs
        cases = sorted(path.name[: -len("_seg.b2nd")] for path in config_folder.glob("*_seg.b2nd"))
        splits.write_text(json.dumps([{"train": cases[:-1], "val": cases[-1:]}]))
    return name, timings


def link_test_case(raw: Path) -> None:
    """imagesTs for the predict timing of a dataset without test images: the first training case's images.

    Prediction time depends on the image size only, so a training case serves (its Dice is not reported).
    """
    images = sorted((raw / "imagesTr").glob("*"))
    case = images[0].name.rsplit("_", 1)[0]
    (raw / "imagesTs").mkdir(exist_ok=True)
    for image in images:
        if image.name.rsplit("_", 1)[0] == case:
            (raw / "imagesTs" / image.name).symlink_to(image)


# ------------------------------------------------------------------------------------ statistics
def summary(values) -> dict:
    values = np.asarray(values, dtype=float)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"n": int(values.size), "median": float(median), "q1": float(q1), "q3": float(q3),
            "mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


def ratio(values, baseline_values, statistic=np.median) -> dict:
    """statistic(values) / statistic(baseline_values) with a 95 % bootstrap interval (each sample resampled alone)."""
    values, baseline_values = np.asarray(values, float), np.asarray(baseline_values, float)
    rng = np.random.default_rng(0)
    resampled = (statistic(rng.choice(values, (BOOTSTRAP_SAMPLES, values.size)), axis=1)
                 / statistic(rng.choice(baseline_values, (BOOTSTRAP_SAMPLES, baseline_values.size)), axis=1))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"ratio": float(statistic(values) / statistic(baseline_values)), "ci95": [float(low), float(high)]}


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal block sizes (no empty blocks)."""
    parts = min(parts, total)
    return [total // parts + (i < total % parts) for i in range(parts)]


def round_order(names: list[str], round_index: int) -> list[str]:
    return names if round_index % 2 == 0 else names[::-1]


# -------------------------------------------------------------------------------- in-process trainers
def make_trainer(name: str, dataset: str, device):
    from nnunetv2.run.run_training import get_trainer_from_args

    # nnUNetv2_train's own lookup (nnunetv2 first, then nnUNet_extTrainer) and construction
    return get_trainer_from_args(dataset, CONFIGURATION, FOLD, name, PLANS, device=device)


def precompute_maps(trainers: dict, device: str) -> dict:
    """Computes the maps of every trainer that trains on them, ahead of timing; per trainer: folder and seconds."""
    from nnunet_ext.precompute import precompute_targets
    from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps

    result = {}
    for name, trainer in trainers.items():
        if isinstance(trainer, nnUNetTrainerWithTargetMaps):
            spec = trainer.target_spec()
            start = time.perf_counter()
            done = precompute_targets(trainer.plans_manager.dataset_name, CONFIGURATION, PLANS, kind=spec.kind,
                                      params=dict(spec.params), num_processes=1 if device == "cuda" else os.cpu_count() or 1,
                                      progress=False, device=device)
            result[name] = {"folder": done["folder"], "computed": done["computed"],
                            "seconds": time.perf_counter() - start,
                            "median_seconds_per_case": done["median_seconds_per_case"]}
    return result


def stop_workers(trainer) -> None:
    """Ends the augmentation workers; the next ``next()`` on a loader starts fresh ones.

    A trainer that is not being timed must not keep workers that refill its queue while another is timed.
    """
    trainer.dataloader_train._finish()
    trainer.dataloader_val._finish()


def time_training(trainers: dict, args) -> dict:
    """Per trainer and measured iteration: seconds waiting for the batch and seconds of ``train_step``."""
    samples = {name: {"data_wait": [], "train_step": []} for name in trainers}
    for round_index, count in enumerate(split(args.iterations, args.rounds)):
        for name in round_order(list(trainers), round_index):
            trainer = trainers[name]
            for i in range(args.warmup + count):
                start = time.perf_counter()
                batch = next(trainer.dataloader_train)
                loaded = time.perf_counter()
                trainer.train_step(batch)
                if i >= args.warmup:
                    samples[name]["data_wait"].append(loaded - start)
                    samples[name]["train_step"].append(time.perf_counter() - loaded)
            stop_workers(trainer)
    return samples


def time_loader_with_workers(trainers: dict, args) -> dict:
    """Per trainer: seconds between consecutive batches of the augmenter, consumed as fast as they come."""
    samples = {name: [] for name in trainers}
    for round_index, count in enumerate(split(args.loader_batches, args.rounds)):
        for name in round_order(list(trainers), round_index):
            loader = trainers[name].dataloader_train
            for _ in range(args.warmup):  # worker start-up
                next(loader)
            previous = time.perf_counter()
            for _ in range(count):
                next(loader)
                now = time.perf_counter()
                samples[name].append(now - previous)
                previous = now
            stop_workers(trainers[name])
    return samples


def time_loader_in_process(trainers: dict, args) -> dict:
    """Per trainer: seconds per batch of loader + augmentation in this process, one thread, as a worker runs it."""
    import torch
    from threadpoolctl import threadpool_limits

    samples = {name: [] for name in trainers}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            loaders = {name: trainer.dataloader_train.generator for name, trainer in trainers.items()}
            for round_index in range(args.warmup + args.loader_batches):
                # batch-by-batch alternation: the finest interleaving, possible since nothing needs restarting
                for name in round_order(list(trainers), round_index):
                    start = time.perf_counter()
                    next(loaders[name])
                    if round_index >= args.warmup:
                        samples[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return samples


def stage_name(transform) -> str:
    """The transform a pipeline stage runs (RandomTransform and the maps' padding wrapper hold one)."""
    inner = getattr(transform, "transform", None)
    return stage_name(inner) if inner is not None else type(transform).__name__


def time_pipeline_stages(trainers: dict, args) -> dict:
    """Per trainer: milliseconds per sample of each stage of the loader (crop, then every transform), one thread.

    Like for like: every trainer gets the same cases and crops (those of nnU-Net's default) and, per sample,
    the same random seeds, so that its augmentation draws the same parameters. Each trainer crops its own
    dataset's case, so a map trainer's crop includes its maps (they ride on the image).
    """
    import random

    import torch
    from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd
    from threadpoolctl import threadpool_limits

    loaders = {name: trainer.dataloader_train.generator for name, trainer in trainers.items()}
    source = loaders[BASELINE]
    stages = {name: {} for name in trainers}
    samples = args.loader_batches * source.batch_size
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            for index in range(args.warmup + samples):  # warm-up: e.g. the blur's first calls benchmark its kernels
                key = source._data.identifiers[index % len(source._data.identifiers)]
                data, _, _, properties = source._data.load_case(key)
                bbox = [list(b) for b in zip(*source.get_bbox(data.shape[1:], index % 3 == 0,
                                                              properties["class_locations"]))]
                for name in round_order(list(trainers), index):
                    times, start = {}, time.perf_counter()
                    data, seg, _, _ = loaders[name]._data.load_case(key)
                    batch = {"image": torch.from_numpy(crop_and_pad_nd(data, bbox, 0)).float(),
                             "segmentation": torch.from_numpy(crop_and_pad_nd(seg, bbox, -1, cast_cropped_to=np.int16))}
                    times["crop image (and maps) and seg"] = time.perf_counter() - start
                    torch.manual_seed(index), np.random.seed(index), random.seed(index)
                    seen = {}
                    for transform in loaders[name].transforms.transforms:
                        label = stage_name(transform)
                        seen[label] = seen.get(label, 0) + 1
                        label += f" ({seen[label]})" if seen[label] > 1 else ""
                        start = time.perf_counter()
                        batch = transform(**batch)
                        times[label] = time.perf_counter() - start
                    if index >= args.warmup:
                        for label, seconds in times.items():
                            stages[name][label] = stages[name].get(label, 0.0) + seconds
    finally:
        torch.set_num_threads(threads)
    return {name: {stage: 1000 * seconds / samples for stage, seconds in times.items()} for name, times in stages.items()}


def time_optimizer_step(trainers: dict, args) -> dict:
    """Per trainer: seconds of ``optimizer.step()`` alone, on the gradients its last ``train_step`` left."""
    samples = {name: [] for name in trainers}
    for round_index in range(args.warmup + args.step_repeats):
        for name in round_order(list(trainers), round_index):
            start = time.perf_counter()
            trainers[name].optimizer.step()
            if round_index >= args.warmup:
                samples[name].append(time.perf_counter() - start)
    return samples


def time_fixed_batch(trainers: dict, args) -> dict:
    """Per trainer: seconds of ``train_step`` on one batch drawn once from its own loader (no loading at all)."""
    batches = {name: next(trainer.dataloader_train.generator) for name, trainer in trainers.items()}
    samples = {name: [] for name in trainers}
    for round_index in range(args.warmup + args.step_repeats):
        for name in round_order(list(trainers), round_index):
            start = time.perf_counter()
            trainers[name].train_step(batches[name])
            if round_index >= args.warmup:
                samples[name].append(time.perf_counter() - start)
    return samples


# ------------------------------------------------------------------------------------ inference
def time_subprocesses(trainer_names: list[str], command, repeats: int) -> dict:
    """Per trainer: wall seconds of ``command(name)`` run as a subprocess, ``repeats`` interleaved times.

    No untimed first run: this process has already imported nnunetv2 (predictor included, nnUNetTrainer
    imports it) and the trainers, so their files are in the page cache for the first subprocess too.
    """
    samples = {name: [] for name in trainer_names}
    for round_index in range(repeats):
        for name in round_order(trainer_names, round_index):
            arguments = command(name)
            start = time.perf_counter()
            run_command(arguments)
            samples[name].append(time.perf_counter() - start)
    return samples


def lookup_command(name: str) -> list[str]:
    """A fresh Python that only finds the trainer class, as nnUNetv2_predict does first: a trainer outside
    nnunetv2 costs the import of all of nnunetv2's trainer modules, then of nnUNet_extTrainer's."""
    return [sys.executable, "-c", "from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name; "
            f"recursive_find_trainer_class_by_name({name!r})"]


def predict_command(name: str, dataset: str, device: str, out: Path) -> list[str]:
    """nnUNetv2_predict on imagesTs with the checkpoint on_train_end saved; nnU-Net's default test-time mirroring.

    The predictor overwrites earlier outputs, so every repeat does the full work.
    """
    output = out / "predictions" / name
    return ["nnUNetv2_predict", "-i", str(Path(os.environ["nnUNet_raw"]) / dataset / "imagesTs"), "-o", str(output),
            "-d", dataset, "-c", CONFIGURATION, "-p", PLANS, "-tr", name, "-f", str(FOLD), "-chk",
            "checkpoint_final.pth", "-device", device, "-npp", "1", "-nps", "1", "--disable_progress_bar"]


# ----------------------------------------------------------------------------------------- disk
def folder_bytes(paths) -> int:
    return sum(path.stat().st_size for path in paths if path.is_file())


def disk_sizes(dataset: str, maps: dict) -> dict:
    config_folder = Path(os.environ["nnUNet_preprocessed"]) / dataset / f"{PLANS}_{CONFIGURATION}"
    images = [p for p in config_folder.glob("*.b2nd") if not p.name.endswith("_seg.b2nd")]
    result = {"images_bytes": folder_bytes(images), "segs_bytes": folder_bytes(config_folder.glob("*_seg.b2nd")),
              "cases": len(images), "maps": {}}
    for name, info in maps.items():
        map_bytes = folder_bytes(Path(info["folder"]).glob("*"))
        result["maps"][name] = {"folder": info["folder"], "bytes": map_bytes,
                                "ratio_to_images": map_bytes / result["images_bytes"]}
    return result


# ------------------------------------------------------------------------------------- reporting
def build_results(samples: dict, names: list[str]) -> dict:
    """Summaries per trainer and ratios to nnU-Net's default trainer for every measurement."""
    results = {}
    for measurement, per_trainer in samples.items():
        entry = {"per_trainer": {name: summary(per_trainer[name]) for name in names}, "ratio_to_baseline": {}}
        # batches/s is count / total time, so its ratio is the inverse ratio of mean intervals
        statistic = np.mean if measurement == "loader_with_workers_interval" else np.median
        for name in names:
            if name != BASELINE:
                entry["ratio_to_baseline"][name] = ratio(per_trainer[name], per_trainer[BASELINE], statistic)
        results[measurement] = entry
    return results


ROWS = (  # measurement key, label, unit
    ("train_iteration", "training iteration (loader + train_step)", "s"),
    ("train_data_wait", "  of which waiting for the batch", "s"),
    ("train_step_in_loop", "  of which train_step", "s"),
    ("loader_with_workers_interval", "data loader with workers, time per batch", "s"),
    ("loader_in_process", "data loader + augmentation, 1 process 1 thread", "s/batch"),
    ("train_step_fixed_batch", "train_step alone on a fixed batch", "s"),
    ("optimizer_step", "  of which optimizer.step (on that batch's gradients)", "s"),
    ("predict", "nnUNetv2_predict on imagesTs", "s"),
    ("trainer_lookup", "  trainer look-up in a fresh Python (part of the above)", "s"),
)


def markdown(record: dict) -> str:
    names, env, params = record["trainers"], record["environment"], record["parameters"]
    others = [name for name in names if name != BASELINE]
    lines = [
        f"# Training / inference benchmark ({env['date_utc']})", "",
        hardware_markdown(env).rstrip(),
        f"Device {record['device']}; load average before/after {record['load_average']['before']} / "
        f"{record['load_average']['after']}.",
        f"Dataset {record['dataset']} ({params['kind']}), {CONFIGURATION}, fold {FOLD}, patch "
        f"{record['plans']['patch_size']}, batch size {record['plans']['batch_size']}; "
        f"{params['da_workers']} augmentation workers; {params['iterations']} measured iterations per trainer in "
        f"{params['rounds']} interleaved rounds, {params['warmup']} warm-up per block; "
        f"{params['predict_repeats']} predict runs per trainer.", "",
        "Median [IQR] per trainer; ratio of medians to nnUNetTrainer [95 % bootstrap CI] "
        "(batches/s: ratio of mean times per batch).", "",
        "| measurement | " + " | ".join(names) + " | " + " | ".join(f"{n} / {BASELINE}" for n in others) + " |",
        "|---|" + "---|" * (len(names) + len(others)),
    ]
    results = record["results"]
    for key, label, unit in ROWS:
        cells = [f"{s['median']:.3f} [{s['q1']:.3f}, {s['q3']:.3f}] {unit}"
                 for s in (results[key]["per_trainer"][name] for name in names)]
        for name in others:
            r = results[key]["ratio_to_baseline"][name]
            limit = LIMITS.get(key)
            verdict = "" if limit is None else (f" (<= {limit}: {'met' if r['ratio'] <= limit else 'NOT met'})")
            cells.append(f"{r['ratio']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]{verdict}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    throughput = [f"{1 / results['loader_with_workers_interval']['per_trainer'][n]['mean']:.2f}" for n in names]
    ratios = [f"{1 / results['loader_with_workers_interval']['ratio_to_baseline'][n]['ratio']:.3f}" for n in others]
    lines.append("| data loader with workers, batches/s | " + " | ".join(throughput) + " | " + " | ".join(ratios) + " |")
    stages = record["pipeline_stages_ms_per_sample"]
    if stages:
        lines += ["", "Where the loader's time goes: ms per sample of each stage, 1 process 1 thread, every trainer on the "
                      "same cases, crops and augmentation parameters (`time_pipeline_stages`):", "",
                  "| stage | " + " | ".join(names) + " | " + " | ".join(f"{n} - {BASELINE}" for n in others) + " |",
                  "|---|" + "---|" * (len(names) + len(others))]
        for stage in dict.fromkeys(key for name in sorted(names, key=lambda n: -len(stages[n])) for key in stages[name]):
            values = [stages[name].get(stage, 0.0) for name in names]
            extra = [stages[name].get(stage, 0.0) - stages[BASELINE].get(stage, 0.0) for name in others]
            lines.append(f"| {stage} | " + " | ".join(f"{v:.2f}" for v in values) + " | "
                         + " | ".join(f"{e:+.2f}" for e in extra) + " |")
        totals = [sum(stages[name].values()) for name in names]
        lines.append("| **total** | " + " | ".join(f"{t:.2f}" for t in totals) + " | "
                     + " | ".join(f"{sum(stages[n].values()) - totals[0]:+.2f}" for n in others) + " |")
    disk = record["disk"]
    lines += ["", f"Disk: preprocessed images {disk['images_bytes'] / 1e6:.1f} MB ({disk['cases']} cases, "
                  f"segmentations {disk['segs_bytes'] / 1e6:.1f} MB)."]
    for name, info in disk["maps"].items():
        lines.append(f"- {name}: maps {info['bytes'] / 1e6:.1f} MB = {info['ratio_to_images']:.3f} x the images "
                     f"({Path(info['folder']).name}).")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse_args(argv)
    set_environment(args)
    import torch

    device_name = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device_name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no GPU")
    # thread settings of nnUNetv2_train for this device
    if device_name == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    else:
        torch.set_num_threads(1)
    device = torch.device(device_name)
    load_before = os.getloadavg()
    started = time.perf_counter()

    dataset, setup_timings = prepare_dataset(args)
    log_path = args.out / "trainers.log"
    # the trainers print plans and progress; the log file keeps the console to the results
    with open(log_path, "w") as log, contextlib.redirect_stdout(log):
        trainers = {name: make_trainer(name, dataset, device) for name in args.trainers}
        maps = precompute_maps(trainers, device_name)
        for trainer in trainers.values():
            trainer.on_train_start()
            trainer.on_train_epoch_start()  # network in train mode, learning rate of epoch 0, as run_training does
            stop_workers(trainer)
    print(f"set-up done in {time.perf_counter() - started:.0f} s; timing training", file=sys.stderr)

    samples = {}
    training = time_training(trainers, args)
    samples["train_iteration"] = {n: np.add(s["data_wait"], s["train_step"]).tolist() for n, s in training.items()}
    samples["train_data_wait"] = {n: s["data_wait"] for n, s in training.items()}
    samples["train_step_in_loop"] = {n: s["train_step"] for n, s in training.items()}
    print("timing data loaders and train_step", file=sys.stderr)
    samples["loader_with_workers_interval"] = time_loader_with_workers(trainers, args)
    samples["loader_in_process"] = time_loader_in_process(trainers, args)
    samples["train_step_fixed_batch"] = time_fixed_batch(trainers, args)
    samples["optimizer_step"] = time_optimizer_step(trainers, args)
    pipeline_stages = time_pipeline_stages(trainers, args)

    first = next(iter(trainers.values()))
    plans = {"patch_size": list(first.configuration_manager.patch_size), "batch_size": first.batch_size}
    with open(log_path, "a") as log, contextlib.redirect_stdout(log):
        for trainer in trainers.values():
            trainer.on_train_end()  # nnU-Net's teardown: writes checkpoint_final.pth, ends the workers
    print("timing nnUNetv2_predict", file=sys.stderr)
    samples["predict"] = time_subprocesses(
        args.trainers, lambda name: predict_command(name, dataset, device_name, args.out), args.predict_repeats)
    samples["trainer_lookup"] = time_subprocesses(args.trainers, lookup_command, args.predict_repeats)

    record = {
        "trainers": args.trainers,
        "dataset": dataset,
        "plans": plans,
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "nnunet_environment": {k: os.environ[k] for k in ("nnUNet_n_proc_DA", "nnUNet_def_n_proc", "nnUNet_compile")},
        "environment": hardware_record(),
        "device": device_name,
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "setup": {**setup_timings, "maps": maps},
        "disk": disk_sizes(dataset, maps),
        "results": build_results(samples, args.trainers),
        "pipeline_stages_ms_per_sample": pipeline_stages,
        "samples": samples,
        "total_seconds": time.perf_counter() - started,
    }
    json_path, md_path = args.out / "benchmark_training.json", args.out / "benchmark_training.md"
    json_path.write_text(json.dumps(record, indent=1))
    md_path.write_text(markdown(record))
    print(markdown(record))
    print(f"written: {json_path}\n         {md_path}\n         (trainer output: {log_path})")
    return 0

