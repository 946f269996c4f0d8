"""Training and inference cost of our trainers vs nnU-Net's default trainer, as ratios measured in one run.

    nnunet_ext_benchmark training [--out benchmark_output] [--kind brats|binary|brats2015]
        [--trainers nnUNetTrainerSiNGR_L1 ...] [--device cpu|cuda] [--iterations 30 --warmup 3 --rounds 5]
        [--loader-only]

Every trainer is built as ``nnUNetv2_train`` builds it, on fold 0 of one dataset planned once in ``--out``'s
own nnU-Net folders; the trainers take turns, so that a shared machine's drift hits them all. Ratios to
nnUNetTrainer carry 95 % bootstrap intervals and are checked against ``GOALS``. Writes
``benchmark_training.json`` and ``.md`` to ``--out``; records: docs/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from nnunet_ext.commands import run_logged
from nnunet_ext.benchmarks.common import (DATA_VARIABLE, at_least, auto_device, hardware_markdown, hardware_record,
                                 invoked_command, markdown_table, sample_folder, write_json)
from nnunet_ext.nnunet_env import dataset_folder_name, use_work_folder
from nnunet_ext.nnunet_env import PLANS
from nnunet_ext.workflow.pipeline import Pipeline, link_raw_images, predict_command

BASELINE = "nnUNetTrainer"
DEFAULT_TRAINERS = (BASELINE, "nnUNetTrainerSiNGR")
DATASET_IDS = {"brats": 961, "binary": 962, "brats2015": 963}  # one id per kind, so all can share a work folder
CONFIGURATION, FOLD = "3d_fullres", 0
BOOTSTRAP_SAMPLES = 4000
WORKERS = "loader_with_workers"  # timed per batch, compared as batches/s
ROWS = {  # measurement -> report label
    "train_iteration": "training iteration (next batch + train_step)",
    WORKERS: "data loader with workers, batches/s",
    "loader_in_process": "data loader + augmentation per batch, 1 process 1 thread",
    "train_step_fixed_batch": "train_step on a fixed batch",
    "optimizer_step": "  of which optimizer.step",
    "predict": "nnUNetv2_predict on imagesTs",
    "trainer_lookup": "  of which the trainer look-up in a fresh Python",
}
# the GPU issue's goals for the ratio to nnUNetTrainer
GOALS = {"loader_in_process": ("<=", 1.05), WORKERS: (">=", 0.95), "train_step_fixed_batch": ("<=", 1.02)}


def batches_per_second(intervals, axis=None):
    return 1 / np.mean(intervals, axis=axis)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add, positive = parser.add_argument, at_least(1)
    add("--out", type=Path, default=Path("benchmark_output"), help="work folder; default: %(default)s")
    add("--kind", choices=sorted(DATASET_IDS), default="brats",
        help="a synthetic dataset or brats2015, the real BraTS 2015 sample; default: %(default)s")
    add("--source", type=Path, default=sample_folder("brats2015_sample"),
        help=f"--kind brats2015: the sample's folder; default: ${DATA_VARIABLE}/brats2015_sample (%(default)s)")
    add("--trainers", nargs="+", default=[], help=f"trainers to add to {' and '.join(DEFAULT_TRAINERS)}")
    add("--device", type=auto_device, choices=("cpu", "cuda"), default="auto", help="default: cuda if torch sees a GPU")
    add("--iterations", type=positive, default=30, help="timed training iterations per trainer")
    add("--warmup", type=at_least(0), default=3, help="untimed calls at the start of every block (workers restart)")
    add("--rounds", type=positive, default=5, help="interleaved rounds of the iterations and worker batches")
    add("--loader-batches", type=positive, default=20, help="timed batches per trainer and data-loader measurement")
    add("--step-repeats", type=positive, default=10, help="timed train_steps per trainer on a fixed batch")
    add("--predict-repeats", type=positive, default=3, help="timed nnUNetv2_predict runs (and trainer look-ups)")
    add("--da-workers", type=positive, default=2, help="nnUNet_n_proc_DA; default: %(default)s")
    add("--loader-only", action="store_true",
        help="time the data loader alone (no train_step, no predict): BraTS-size patches on a CPU")
    args = parser.parse_args(argv)
    if args.kind == "brats2015" and (args.source is None or not args.source.is_dir()):
        parser.error(f"--kind brats2015: no BraTS 2015 sample at {args.source}; pass --source or set {DATA_VARIABLE}")
    args.trainers = list(dict.fromkeys([*DEFAULT_TRAINERS, *args.trainers]))
    args.out = args.out.resolve()
    return args


def prepare_dataset(args: argparse.Namespace) -> tuple[str, list[dict]]:
    """Writes, plans and preprocesses the dataset unless the work folder has it: its name and the stages' records."""
    from nnunet_ext.synthetic import KINDS

    dataset_id = DATASET_IDS[args.kind]
    base_name = "BraTS2015Sample" if args.kind == "brats2015" else KINDS[args.kind].default_name
    pipeline = Pipeline(dataset_folder_name(dataset_id, base_name), CONFIGURATION, args.out / "logs",
                        num_processes=os.cpu_count() or 1)
    stages = [pipeline.convert(
        ["nnunet_ext_convert_brats", "-i", str(args.source), "-d", str(dataset_id), "-n", base_name]
        if args.kind == "brats2015" else ["nnunet_ext_synthetic", "-d", str(dataset_id), "-k", args.kind])]
    if args.kind == "brats2015":  # no test images: a training case stands in (predict time depends on the size only)
        raw = Path(stages[0]["folder"])
        link_raw_images(raw, [sorted((raw / "imagesTr").glob("*"))[0].name.rsplit("_", 1)[0]], raw / "imagesTs")
    stages.append(pipeline.plan_and_preprocess())
    pipeline.split()  # nnU-Net's own needs 5 cases, the BraTS sample has 3
    return pipeline.dataset, stages


def summary(values) -> dict:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"n": len(values), "median": float(median), "q1": float(q1), "q3": float(q3), "mean": float(np.mean(values))}


def ratio(values, baseline, statistic) -> dict:
    """statistic(values) / statistic(baseline) with a 95 % bootstrap interval (each sample resampled alone)."""
    values, baseline = np.asarray(values, float), np.asarray(baseline, float)
    rng = np.random.default_rng(0)
    resampled = (statistic(rng.choice(values, (BOOTSTRAP_SAMPLES, values.size)), axis=1)
                 / statistic(rng.choice(baseline, (BOOTSTRAP_SAMPLES, baseline.size)), axis=1))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"ratio": float(statistic(values) / statistic(baseline)), "ci95": [float(low), float(high)]}


# ------------------------------------------------------------------------------------------ timing
def round_order(names: list[str], round_index: int) -> list[str]:
    return names if round_index % 2 == 0 else names[::-1]


def interleaved(names: list[str], blocks: list[int], call, warmup: int = 0, after_block=None) -> dict:
    """Seconds of each timed ``call(name)``: in round r each trainer runs ``warmup`` untimed and ``blocks[r]`` timed
    calls, then ``after_block(name)``."""
    samples = {name: [] for name in names}
    for round_index, count in enumerate(blocks):
        for name in round_order(names, round_index):
            for index in range(warmup + count):
                start = time.perf_counter()
                call(name)
                if index >= warmup:
                    samples[name].append(time.perf_counter() - start)
            if after_block is not None:
                after_block(name)
    return samples


def alternating(names: list[str], count: int, call, warmup: int) -> dict:
    """``count`` timed calls per trainer, taking turns call by call (what needs no restart), after ``warmup`` turns."""
    return {name: values[warmup:] for name, values in interleaved(names, [1] * (warmup + count), call).items()}


def stop_workers(trainer) -> None:
    """Ends a trainer's augmentation workers (``next()`` starts fresh ones): no idle trainer's workers may refill
    its queue while another trainer is timed."""
    trainer.dataloader_train._finish()
    trainer.dataloader_val._finish()


def time_training(trainers: dict, args) -> tuple[dict, dict]:
    """Per measurement and trainer, the seconds of each timed call; and the loader's stages (ms per sample).

    Ends on one thread (torch and the BLAS / OpenMP pools), as in an augmentation worker, for the loader alone.
    """
    import torch
    from threadpoolctl import threadpool_limits

    names, loaders = list(trainers), {name: trainer.dataloader_train for name, trainer in trainers.items()}
    generators = {name: loader.generator for name, loader in loaders.items()}  # the loader without its workers

    def with_workers(total: int, call) -> dict:  # in --rounds blocks, each restarting the workers
        blocks = [len(block) for block in np.array_split(range(total), min(args.rounds, total))]
        return interleaved(names, blocks, call, args.warmup, lambda name: stop_workers(trainers[name]))

    samples = {} if args.loader_only else {
        "train_iteration": with_workers(args.iterations, lambda n: trainers[n].train_step(next(loaders[n])))}
    # consumed as fast as they come: the time of next() is the interval between batches
    samples[WORKERS] = with_workers(args.loader_batches, lambda name: next(loaders[name]))
    if not args.loader_only:
        batches = {name: next(generator) for name, generator in generators.items()}
        samples["train_step_fixed_batch"] = alternating(names, args.step_repeats,
                                                        lambda n: trainers[n].train_step(batches[n]), args.warmup)
        # on the gradients the last train_step left
        samples["optimizer_step"] = alternating(names, args.step_repeats, lambda n: trainers[n].optimizer.step(),
                                                args.warmup)
    torch.set_num_threads(1)
    threadpool_limits(1)
    samples["loader_in_process"] = alternating(names, args.loader_batches, lambda n: next(generators[n]), args.warmup)
    return samples, time_pipeline_stages(generators, args)


def stage_seconds(generator, case: str, bbox: list, seed: int) -> dict:
    """Seconds of each stage of one sample through ``generator``: the crop, then every transform, draws seeded."""
    import torch
    from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

    start = time.perf_counter()
    data, seg, _, _ = generator._data.load_case(case)
    sample = {"image": torch.from_numpy(crop_and_pad_nd(data, bbox, 0)).float(),
              "segmentation": torch.from_numpy(crop_and_pad_nd(seg, bbox, -1, cast_cropped_to=np.int16))}
    seconds = {"crop image (and maps) and seg": time.perf_counter() - start}
    for seed_all in (torch.manual_seed, np.random.seed, random.seed):
        seed_all(seed)
    runs = {}  # a transform's second run is labelled "Name (2)"
    for transform in generator.transforms.transforms:
        inner = transform
        while getattr(inner, "transform", None) is not None:  # RandomTransform and the maps' wrapper hold the one run
            inner = inner.transform
        stage = type(inner).__name__
        runs[stage] = runs.get(stage, 0) + 1
        label = stage if runs[stage] == 1 else f"{stage} ({runs[stage]})"
        start = time.perf_counter()
        sample = transform(**sample)
        seconds[label] = time.perf_counter() - start
    return seconds


def time_pipeline_stages(generators: dict, args) -> dict:
    """Per trainer: ms per sample of each stage of its loader, like for like: every trainer gets the default
    trainer's cases and crops, and the same seeds per sample (a map trainer's crop includes its maps)."""
    source = generators[BASELINE]
    cases, samples = source._data.identifiers, args.loader_batches * source.batch_size
    totals = {name: {} for name in generators}
    for index in range(args.warmup + samples):  # warm-up: e.g. the blur's first calls benchmark its kernels
        case = cases[index % len(cases)]
        data, _, _, properties = source._data.load_case(case)
        # every third crop forced onto foreground, about nnU-Net's oversampling
        bbox = [list(bounds) for bounds in zip(*source.get_bbox(data.shape[1:], index % 3 == 0,
                                                                properties["class_locations"]))]
        for name in round_order(list(generators), index):
            timed = stage_seconds(generators[name], case, bbox, seed=index)
            if index >= args.warmup:
                for stage, seconds in timed.items():
                    totals[name][stage] = totals[name].get(stage, 0.0) + seconds
    return {name: {stage: 1000 * seconds / samples for stage, seconds in stages.items()}
            for name, stages in totals.items()}


def subprocess_command(measurement: str, name: str, dataset: str, device: str, out: Path) -> list[str]:
    """``predict``: nnUNetv2_predict of imagesTs with the checkpoint on_train_end saved (it overwrites: every run
    does all the work); ``trainer_lookup``: its first step alone in a fresh Python, finding the trainer class (one
    outside nnunetv2 costs the import of all of nnunetv2's trainer modules first)."""
    if measurement == "trainer_lookup":
        return [sys.executable, "-c", "from nnunetv2.utilities.find_objects import "
                f"recursive_find_trainer_class_by_name as find; find({name!r})"]
    return [*predict_command(dataset, CONFIGURATION, name, PLANS, [FOLD], out / "nnUNet_raw" / dataset / "imagesTs",
                             out / "predictions" / name, device), "-npp", "1", "-nps", "1", "--disable_progress_bar"]


def disk_sizes(config_folder: Path, trainers: dict) -> dict:
    """MB of the preprocessed images and of each map trainer's maps."""
    from nnunet_ext.target_store import targets_folder
    from nnunet_ext.training.map_trainer import nnUNetTrainerWithTargetMaps

    def megabytes(paths) -> float:
        return sum(path.stat().st_size for path in paths if path.is_file()) / 1e6

    images = [path for path in config_folder.glob("*.b2nd") if not path.name.endswith("_seg.b2nd")]
    maps = {name: targets_folder(config_folder, trainer.target_spec()) for name, trainer in trainers.items()
            if isinstance(trainer, nnUNetTrainerWithTargetMaps)}
    return {"cases": len(images), "images_mb": megabytes(images),
            "maps": {name: {"folder": folder.name, "mb": megabytes(folder.glob("*"))} for name, folder in maps.items()}}


# ------------------------------------------------------------------------------------------ report
def build_results(samples: dict, names: list[str]) -> dict:
    """Per measurement: a summary per trainer and the ratio of each to nnU-Net's default trainer."""
    return {measurement: {
        "per_trainer": {name: summary(values[name]) for name in names},
        "ratio_to_baseline": {name: ratio(values[name], values[BASELINE],
                                          batches_per_second if measurement == WORKERS else np.median)
                              for name in names if name != BASELINE},
    } for measurement, values in samples.items()}


def goal_verdict(value: float, goal: tuple[str, float] | None) -> str:
    if goal is None:
        return ""
    met = value <= goal[1] if goal[0] == "<=" else value >= goal[1]
    return f" ({goal[0]} {goal[1]}: {'met' if met else 'NOT met'})"


def markdown(record: dict) -> str:
    names, params, results, plans = record["trainers"], record["parameters"], record["results"], record["plans"]
    others = [name for name in names if name != BASELINE]
    rows = []
    for key, label in ROWS.items():
        if key not in results:  # --loader-only: what was not measured
            continue
        ours, ratios = results[key]["per_trainer"], results[key]["ratio_to_baseline"]
        rows.append([label, *(f"{batches_per_second(ours[n]['mean']):.2f}" if key == WORKERS else
                              f"{ours[n]['median']:.3f} [{ours[n]['q1']:.3f}, {ours[n]['q3']:.3f}] s" for n in names),
                     *(f"{ratios[n]['ratio']:.3f} [{ratios[n]['ci95'][0]:.3f}, {ratios[n]['ci95'][1]:.3f}]"
                       f"{goal_verdict(ratios[n]['ratio'], GOALS.get(key))}" for n in others)])
    stages = record["pipeline_stages_ms_per_sample"]
    order = dict.fromkeys(stage for name in sorted(names, key=lambda n: -len(stages[n])) for stage in stages[name])
    stage_rows = [[stage, *(f"{stages[n].get(stage, 0.0):.2f}" for n in names),
                   *(f"{stages[n].get(stage, 0.0) - stages[BASELINE].get(stage, 0.0):+.2f}" for n in others)]
                  for stage in order]
    total = {name: sum(stages[name].values()) for name in names}
    stage_rows.append(["**total**", *(f"{total[n]:.2f}" for n in names),
                       *(f"{total[n] - total[BASELINE]:+.2f} = {total[n] / total[BASELINE]:.3f}x"
                         f"{goal_verdict(total[n] / total[BASELINE], GOALS['loader_in_process'])}" for n in others)])
    disk = record["disk"]
    measured = "the loader alone (--loader-only)" if params["loader_only"] else (
        f"{params['iterations']} iterations, {params['step_repeats']} steps on the fixed batch, "
        f"{params['predict_repeats']} predict runs")
    return "\n".join([
        f"# Training / inference benchmark ({record['environment']['date_utc']})", "", f"`{record['command']}`", "",
        hardware_markdown(record["environment"]).rstrip(),
        f"- device {record['device']}; load average at the end {record['load_average_after']}", "",
        f"Dataset {record['dataset']}, {CONFIGURATION}, fold {FOLD}, patch {plans['patch_size']}, batch "
        f"{plans['batch_size']}, {params['da_workers']} augmentation workers. Per trainer: {measured}; "
        f"{params['loader_batches']} batches per loader measurement ({params['rounds']} interleaved rounds, "
        f"{params['warmup']} warm-up calls per block).", "",
        f"Median [IQR] per trainer; ratio of medians to {BASELINE} [95 % bootstrap CI] (the workers: of batches/s, "
        "1 / mean time per batch) and whether it meets the GPU issue's goal.", "",
        *markdown_table(["measurement", *names, *(f"{n} / {BASELINE}" for n in others)], rows), "",
        "Where the loader's time goes: ms per sample of each stage, 1 process 1 thread, every trainer on the same "
        "cases, crops and augmentation parameters:", "",
        *markdown_table(["stage", *names, *(f"{n} - {BASELINE}" for n in others)], stage_rows), "",
        f"Disk: preprocessed images {disk['images_mb']:.1f} MB ({disk['cases']} cases).",
        *(f"- {name}: maps {maps['mb']:.1f} MB = {maps['mb'] / disk['images_mb']:.3f} x the images ({maps['folder']})"
          for name, maps in disk["maps"].items()),
    ]) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    # compiling would cost every trainer the same; off, GPU warm-ups stay short
    use_work_folder(args.out, nnUNet_n_proc_DA=args.da_workers, nnUNet_def_n_proc=os.cpu_count() or 1, nnUNet_compile=0)
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.set_num_threads((os.cpu_count() or 1) if args.device == "cpu" else 1)  # nnUNetv2_train's thread settings
    environment, started = hardware_record(), time.perf_counter()
    dataset, setup = prepare_dataset(args)
    log_path, logs = args.out / "trainers.log", args.out / "logs"
    # the trainers print plans and progress; the log file keeps the console to the results
    with open(log_path, "w") as log, contextlib.redirect_stdout(log):
        # nnUNetv2_train's look-up (nnunetv2 first, then nnUNet_extTrainer) and construction
        trainers = {name: get_trainer_from_args(dataset, CONFIGURATION, FOLD, name, PLANS,
                                                device=torch.device(args.device)) for name in args.trainers}
        for trainer in trainers.values():
            trainer.on_train_start()  # a map trainer computes its missing maps here, untimed
            trainer.on_train_epoch_start()  # train mode and epoch 0's learning rate, as run_training does
            stop_workers(trainer)
    print(f"set-up done in {time.perf_counter() - started:.0f} s; timing training and loaders", file=sys.stderr)
    samples, stages = time_training(trainers, args)
    baseline = trainers[BASELINE]
    plans = {"patch_size": list(baseline.configuration_manager.patch_size), "batch_size": baseline.batch_size}
    disk = disk_sizes(Path(baseline.preprocessed_dataset_folder), trainers)
    with open(log_path, "a") as log, contextlib.redirect_stdout(log):
        for trainer in trainers.values():
            trainer.on_train_end()  # nnU-Net's teardown: writes checkpoint_final.pth, ends the workers

    def time_subprocess(measurement: str) -> dict:
        # no untimed first run: this process has imported nnunetv2 and the trainers, so the page cache holds them
        return interleaved(args.trainers, [1] * args.predict_repeats, lambda name: run_logged(
            subprocess_command(measurement, name, dataset, args.device, args.out), logs / f"{measurement}_{name}.log"))

    if not args.loader_only:
        samples["predict"], samples["trainer_lookup"] = time_subprocess("predict"), time_subprocess("trainer_lookup")
    record = {
        "command": invoked_command(), "trainers": args.trainers, "dataset": dataset, "plans": plans,
        "device": args.device, "parameters": {key: str(value) if isinstance(value, Path) else value
                                              for key, value in vars(args).items()},
        "environment": environment, "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "setup": setup, "disk": disk, "results": build_results(samples, args.trainers),
        "pipeline_stages_ms_per_sample": stages, "samples": samples, "total_seconds": time.perf_counter() - started,
    }
    json_path, md_path = args.out / "benchmark_training.json", args.out / "benchmark_training.md"
    write_json(json_path, record)
    md_path.write_text(markdown(record))
    print(md_path.read_text())
    print(f"written: {json_path}\n         {md_path}\n         (trainer output: {log_path}, commands: {logs})")
    return 0
