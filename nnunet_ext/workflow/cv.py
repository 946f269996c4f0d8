"""Cross-validation runner: trains several trainers over nnU-Net's folds, one ``nnUNetv2_train`` at a time.

For each trainer and fold the state of ``$nnUNet_results/DatasetXXX/<trainer>__<plans>__<config>/fold_N``
decides the command:

- ``checkpoint_final.pth`` and ``validation/summary.json`` present: finished, skipped;
- ``checkpoint_final.pth`` without the validation summary (interrupted during validation):
  ``nnUNetv2_train ... --val``;
- ``checkpoint_latest.pth`` / ``checkpoint_best.pth`` only (interrupted training): ``nnUNetv2_train ... --c``;
- nothing: ``nnUNetv2_train ...``.

So re-running the same command resumes what was interrupted. ``--print-commands`` prints the
commands of the unfinished folds instead of running them (to spread folds over GPUs or a cluster): after
the same trainer-name check, and without ``-device`` unless one is passed (nnU-Net's default is cuda;
the machine printing them, e.g. a login node, need not be the one running them).

Fixed-split mode (``--split-file``, the SiNGR paper's protocol): a JSON file
``{"train": [...], "val": [...], "test": [...]}`` of case ids becomes nnU-Net's
``splits_final.json`` with a single fold 0 (train / val); an existing different split is kept unless
``--overwrite-split``. The whole split is recorded in ``nnunet_ext_split.json`` beside it, and after
training fold 0 each trainer predicts the test cases into ``<trainer folder>/fold_0/nnunet_ext_test``,
which ``nnunet_ext_report --test`` evaluates.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from nnunet_ext.commands import add_version_argument, run_logged
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.nnunet_env import (LOGS, PLANS, SPLIT_RECORD, SPLITS_FILE, TEST_INPUT, TEST_PREDICTIONS, DatasetFolders,
                                   atomic_write_bytes, resolve_dataset_name)
from nnunet_ext.trainer_path import check_trainers
from nnunet_ext.workflow.pipeline import Pipeline, link_raw_images, predict_command, train_command


@dataclass(frozen=True)
class DatasetPaths(DatasetFolders):
    """A preprocessed dataset's nnU-Net folders and its dataset.json."""

    dataset_json: dict


def dataset_paths(dataset: int | str) -> DatasetPaths:
    """The nnU-Net folders of a dataset (id or name) and its dataset.json; it must be preprocessed."""
    folders = DatasetFolders.from_environment(resolve_dataset_name(dataset))
    if not (folders.preprocessed / "dataset.json").is_file():
        raise NnunetExtError(f"{folders.name} is not preprocessed ({folders.preprocessed / 'dataset.json'} missing); run: "
                             f"nnUNetv2_plan_and_preprocess -d {folders.name[7:10]} -c 3d_fullres --verify_dataset_integrity")
    return DatasetPaths(**vars(folders), dataset_json=json.loads((folders.preprocessed / "dataset.json").read_text()))


def _case_ids(folder: Path, ending: str) -> set[str]:
    return {p.name[: -len(ending)] for p in folder.glob(f"*{ending}")}


def apply_split(paths: DatasetPaths, split_file: str | Path, overwrite_split: bool = False) -> dict[str, list[str]]:
    """Writes the fixed split as nnU-Net's ``splits_final.json`` (fold 0) and records it; returns it."""
    split_file = Path(split_file)
    if not split_file.is_file():
        raise NnunetExtError(f"split file not found: {split_file}")
    try:
        split = json.loads(split_file.read_text())
    except json.JSONDecodeError as error:
        raise NnunetExtError(f"{split_file} is not valid JSON ({error}); expected {{\"train\": [...], \"val\": [...], "
                             f"\"test\": [...]}}") from None
    if not isinstance(split, dict) or not all(isinstance(split.get(k), list) for k in ("train", "val")):
        raise NnunetExtError(f"{split_file} needs lists 'train' and 'val' (and optionally 'test') of case ids")
    split = {k: [str(c) for c in split.get(k, [])] for k in ("train", "val", "test")}
    if not split["train"] or not split["val"]:
        raise NnunetExtError(f"{split_file}: 'train' and 'val' must both list cases")
    ending = paths.dataset_json["file_ending"]
    known = _case_ids(paths.raw / "labelsTr", ending) or _case_ids(paths.preprocessed / "gt_segmentations", ending)
    for part, cases in split.items():
        unknown = sorted(set(cases) - known)
        if unknown:
            raise NnunetExtError(f"{split_file}: {len(unknown)} '{part}' case(s) are not in {paths.name} "
                                 f"(first: {unknown[0]}); use the case ids of labelsTr")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = sorted(set(split[a]) & set(split[b]))
        if shared:
            raise NnunetExtError(f"{split_file}: case {shared[0]} is in both '{a}' and '{b}' ({len(shared)} shared)")
    splits = [{"train": sorted(split["train"]), "val": sorted(split["val"])}]
    splits_file = paths.preprocessed / SPLITS_FILE
    if splits_file.is_file() and json.loads(splits_file.read_text()) != splits:
        if not overwrite_split:
            raise NnunetExtError(f"{splits_file} holds a different split; pass --overwrite-split to replace it "
                                 f"(folds already trained on the old split must then be retrained)")
    for path, content in ((splits_file, splits), (paths.preprocessed / SPLIT_RECORD, {**split, "source": str(split_file)})):
        atomic_write_bytes(path, (json.dumps(content, indent=2) + "\n").encode())
    return split


def read_split_record(paths: DatasetPaths) -> dict:
    record = paths.preprocessed / SPLIT_RECORD
    if not record.is_file():
        raise NnunetExtError(f"{record} not found: no fixed split recorded; run nnunet_ext_cv -d {paths.name} "
                             f"-c CONFIGURATION -tr TRAINER --split-file SPLIT.json first")
    return json.loads(record.read_text())


def _test_input(paths: DatasetPaths, cases: list[str]) -> Path:
    """A folder of links to the raw images of the test cases (only these), the input of nnUNetv2_predict."""
    folder = paths.preprocessed / TEST_INPUT
    for old in folder.iterdir() if folder.is_dir() else ():
        old.unlink()
    return link_raw_images(paths.raw, cases, folder)


def _without_device(command: list[str]) -> list[str]:
    """``command`` without its ``-device X`` (nnU-Net then uses its default, cuda)."""
    at = command.index("-device")
    return command[:at] + command[at + 2:]


def run_cv(dataset: int | str, configuration: str, trainers: list[str], folds: list[int] | None = None,
           plans: str = PLANS, device: str | None = "cuda", split_file: str | Path | None = None,
           overwrite_split: bool = False, print_only: bool = False, npz: bool = False) -> list[list[str]]:
    """Runs (or, with ``print_only``, prints) the commands still needed; returns them.

    Every trainer name is checked first, as ``nnUNetv2_train -tr`` looks it up. ``device`` None (only with
    ``print_only``): the printed commands carry no ``-device``, so they run on nnU-Net's default (cuda)."""
    if device is None and not print_only:
        raise ValueError("run_cv needs a device unless it only prints the commands")
    paths = dataset_paths(dataset)
    split = None
    if split_file is not None:
        if folds not in (None, [0]):
            raise NnunetExtError("a fixed split has a single fold 0; leave out --folds with --split-file")
        split = apply_split(paths, split_file, overwrite_split)
        folds = [0]
    folds = [0, 1, 2, 3, 4] if folds is None else folds
    check_trainers(trainers)  # printed commands too: a misspelt name fails here, not in a queued job
    logs = paths.results / LOGS
    pipeline = Pipeline(paths.name, configuration, logs, device=device or "cuda", plans=plans)
    printed = (lambda command: command) if device is not None else _without_device
    commands = []
    for trainer in trainers:
        for fold in folds:
            fold_folder, state = pipeline.fold(trainer, fold)
            if state != "done":
                commands.append(printed(train_command(paths.name, configuration, fold, trainer, plans, device or "cuda",
                                                      state, npz)))
            if not print_only:
                pipeline.train(trainer, fold, npz=npz)
            elif state == "done":
                print(f"{trainer} fold {fold}: finished, skipped ({fold_folder})", flush=True)
        if split and split["test"]:
            output = paths.model_folder(trainer, configuration, plans) / "fold_0" / TEST_PREDICTIONS
            ending = paths.dataset_json["file_ending"]
            if all((output / f"{c}{ending}").is_file() for c in split["test"]):
                print(f"{trainer}: test predictions present, skipped ({output})", flush=True)
                continue
            command = printed(predict_command(paths.name, configuration, trainer, plans, [0],
                                              paths.preprocessed / TEST_INPUT, output, device or "cuda"))
            commands.append(command)
            if not print_only:
                _test_input(paths, split["test"])
                run_logged(command, logs / f"{trainer}__{configuration}__test.log")
    if print_only:
        if split and split["test"]:
            _test_input(paths, split["test"])
        for command in commands:
            print(" ".join(command))
    return commands


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_cv", description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--dataset", required=True, help="dataset id or name (e.g. 501)")
    parser.add_argument("-c", "--configuration", default="3d_fullres", help="nnU-Net configuration (default 3d_fullres)")
    parser.add_argument("-tr", "--trainers", nargs="+", required=True, help="trainer class names")
    parser.add_argument("-f", "--folds", type=int, nargs="+", help="folds (default 0 1 2 3 4; 0 with --split-file)")
    parser.add_argument("-p", "--plans", default=PLANS, help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-device", "--device", choices=("cuda", "cpu", "mps"),
                        help="passed to nnU-Net (default: cuda if torch sees a GPU, else cpu; with --print-commands "
                             "the commands carry -device only when it is given)")
    parser.add_argument("--npz", action="store_true", help="nnUNetv2_train --npz (keep softmax for ensembling)")
    parser.add_argument("--split-file", help="fixed split JSON {train, val, test} (SiNGR paper protocol)")
    parser.add_argument("--overwrite-split", action="store_true", help="replace a different existing splits_final.json")
    parser.add_argument("--print-commands", action="store_true",
                        help="print the nnU-Net commands of the unfinished folds instead of running them (after "
                             "checking the trainer names)")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    device = args.device if args.print_commands else args.device or _default_device()
    run_cv(args.dataset, args.configuration, args.trainers, args.folds, args.plans, device,
           args.split_file, args.overwrite_split, args.print_commands, args.npz)


def main(argv: list[str] | None = None) -> int:
    """Console entry ``nnunet_ext_cv``."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
