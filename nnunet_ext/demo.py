"""The README demo: synthetic dataset -> nnU-Net plan/preprocess -> short CPU training -> predict -> report.

Every step runs nnU-Net's own command line (printed before it runs), so the demo exercises exactly
what a user types. Steps whose results already exist are reused (re-running the demo is cheap and
an interrupted training resumes with ``--c``); ``--overwrite`` starts from scratch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.labels import label_names, region_definitions
from nnunet_ext.nnunet_env import dataset_folder_name, datasets_with_id, nnunet_folder
from nnunet_ext.trainer_path import check_trainers
from nnunet_ext.workflow.pipeline import Pipeline

DEFAULT_DATASET_ID = 990
DEFAULT_TRAINERS = ("nnUNetTrainer_10epochs_20iters", "nnUNetTrainerSiNGR_10epochs_20iters")
DEFAULT_CONFIGURATION = {"brats": "3d_fullres", "binary": "3d_fullres", "2d": "2d"}


def run_demo(
    dataset_id: int = DEFAULT_DATASET_ID,
    kind: str = "brats",
    trainers: tuple[str, ...] = DEFAULT_TRAINERS,
    output: str | Path = "demo_output",
    overwrite: bool = False,
    seed: int = 0,
) -> list[dict]:
    """Runs the demo; returns the report's summary rows (:func:`nnunet_ext.evaluation.summarise_rows`).

    The held-out test cases are reported as ``nnunet_ext_report`` reports a test set, the first trainer
    the baseline: ``report.md``, ``summary.csv``, ``cases.csv`` and ``boxplots.png`` in ``output``.
    """
    from nnunet_ext.evaluation import Source, evaluate_sources, summarise_rows
    from nnunet_ext.synthetic import DEFAULT_NAMES
    from nnunet_ext.workflow.report import write_report

    raw, preprocessed, results = (nnunet_folder(v) for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"))
    if kind not in DEFAULT_CONFIGURATION:
        raise NnunetExtError(f"unknown dataset kind '{kind}'; choose one of {', '.join(DEFAULT_CONFIGURATION)}")
    configuration = DEFAULT_CONFIGURATION[kind]
    dataset_name = dataset_folder_name(dataset_id, DEFAULT_NAMES[kind])
    other = sorted(set(datasets_with_id(dataset_id)) - {dataset_name})
    if other:
        raise NnunetExtError(
            f"dataset id {dataset_id} is already used by {', '.join(other)}; pick a free id with --dataset-id"
        )
    check_trainers(list(trainers))
    output = Path(output).resolve()
    env = {**os.environ, "nnUNet_def_n_proc": os.environ.get("nnUNet_def_n_proc", "2")}
    env.setdefault("nnUNet_n_proc_DA", str(min(4, os.cpu_count() or 1)))
    pipeline = Pipeline(dataset_name, configuration, output / "logs", device="cpu", num_processes=2, env=env)

    raw_folder = raw / dataset_name
    print(f"[1/5] synthetic '{kind}' dataset {dataset_name} (--overwrite regenerates it)", flush=True)
    if overwrite:
        shutil.rmtree(raw_folder, ignore_errors=True)
    generate = ["nnunet_ext_synthetic", "-d", str(dataset_id), "-k", kind, "--seed", str(seed)]
    if "skipped" not in pipeline.convert(generate):  # a new dataset: what was made from an earlier one goes
        for stale in (preprocessed / dataset_name, results / dataset_name, output / "predictions"):
            shutil.rmtree(stale, ignore_errors=True)
    dataset_json = json.loads((raw_folder / "dataset.json").read_text())

    print("[2/5] planning and preprocessing", flush=True)
    pipeline.plan_and_preprocess()

    ending = dataset_json["file_ending"]
    test_cases = sorted(p.name[: -len(ending)] for p in (raw_folder / "labelsTs").glob(f"*{ending}"))
    predictions = {}
    for trainer in trainers:
        print(f"[3/5] training {trainer} on fold 0 (CPU)", flush=True)
        predictions[trainer] = output / "predictions" / trainer
        if "skipped" not in pipeline.train(trainer, 0):  # (re)trained: earlier predictions are stale
            shutil.rmtree(predictions[trainer], ignore_errors=True)
        print(f"[4/5] predicting the held-out test cases with {trainer}", flush=True)
        pipeline.predict(trainer, [0], raw_folder / "imagesTs", predictions[trainer], test_cases)

    print("[5/5] evaluation on the held-out test cases (mean ± standard error over cases)\n", flush=True)
    rows = evaluate_sources([Source(t, None, predictions[t], test_cases) for t in trainers], raw_folder / "labelsTs",
                            dataset_json)
    report = write_report(rows, output, f"Demo: {dataset_name}, held-out test cases", baseline=trainers[0])
    print(report.read_text())
    figure = _figure(raw_folder, dataset_json, predictions, output / "demo_case.png")
    print(f"\nfigure: {figure}\nreport: {report} (summary.csv, cases.csv and boxplots.png beside it)")
    return summarise_rows(rows, trainers[0])


def _figure(raw_folder: Path, dataset_json: dict, predictions: dict[str, Path], path: Path) -> Path:
    """Image, ground truth, the SiNG map SiNGR regresses (first region/class) and every prediction, one case."""
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    from nnunet_ext.figures import save_case_figure
    from nnunet_ext.targets import SiNGOptions, sing_maps

    ending = dataset_json["file_ending"]
    reference_file = sorted((raw_folder / "labelsTs").glob(f"*{ending}"))[0]
    case = reference_file.name[: -len(ending)]
    channels = {name.lower(): int(i) for i, name in dataset_json["channel_names"].items()}
    shown_channel = channels.get("flair", 0)
    reader = determine_reader_writer_from_dataset_json(dataset_json, str(reference_file))()
    image_files = [str(raw_folder / "imagesTs" / f"{case}_{i:04d}{ending}") for i in range(len(channels))]
    image, properties = reader.read_images(image_files)
    reference = reader.read_seg(str(reference_file))[0][0]
    panels = {"ground truth": reference}
    for trainer, folder in predictions.items():
        panels[trainer] = reader.read_seg(str(folder / reference_file.name))[0][0]
    # The target of the first region (whole tumour for BraTS), computed from the raw case with the
    # same transform and default options the trainer's maps use.
    region_name, region_labels = next(iter(region_definitions(dataset_json).items()))
    target = sing_maps(image.astype("float32"), np.isin(reference, region_labels)[None], (image != 0).any(0),
                       tuple(properties["spacing"]), SiNGOptions())[0]
    return save_case_figure(image[shown_channel], panels, path, label_names(dataset_json), title=f"case {case}",
                            extra_maps={f"SiNG map ({region_name})": target})


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--dataset-id", type=int, default=DEFAULT_DATASET_ID)
    parser.add_argument("-k", "--kind", default="brats", help=f"one of {', '.join(DEFAULT_CONFIGURATION)}")
    parser.add_argument("-tr", "--trainers", nargs="+", default=list(DEFAULT_TRAINERS))
    parser.add_argument("-o", "--output", default="demo_output", help="folder for predictions, report and figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="regenerate the dataset and retrain (deletes this dataset's preprocessed data and results)")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    run_demo(args.dataset_id, args.kind, tuple(args.trainers), args.output, args.overwrite, args.seed)


def main(argv=None) -> int:
    return run_cli(_main, argv)
