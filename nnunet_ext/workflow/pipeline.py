"""One dataset through nnU-Net: convert -> plan and preprocess -> precompute the maps -> train per trainer
and fold -> predict -> report, each stage a command line (nnU-Net's or ours) that is printed, timed, logged
and resumable.

The demo (:mod:`nnunet_ext.demo`), ``nnunet_ext_cv`` (:mod:`nnunet_ext.workflow.cv`) and the benchmarks
(:mod:`nnunet_ext.benchmarks`) drive nnU-Net through :class:`Pipeline`:

- :func:`nnunet_ext.trainer_path.check_trainers`: every trainer found as ``nnUNetv2_train -tr`` finds it,
  before any stage;
- :meth:`Pipeline.convert`: a converter's command line (``nnunet_ext_convert_brats``,
  ``nnunet_ext_synthetic``, ...), skipped when the raw dataset exists;
- :meth:`Pipeline.plan_and_preprocess`: ``nnUNetv2_plan_and_preprocess``, skipped when every raw case
  is preprocessed;
- :meth:`Pipeline.split`: nnU-Net's seeded split with min(5, cases) folds, unless the dataset has one;
- :meth:`Pipeline.precompute`: ``nnUNetv2_precompute_targets`` of one map spec, skipped when every
  case's maps are up to date;
- :meth:`Pipeline.train`: ``nnUNetv2_train`` of one trainer and fold, the command chosen by the fold
  folder's state (:func:`fold_state`: new, resume with ``--c``, validate with ``--val``, or done);
  setup / training / validation seconds are read from nnU-Net's training log;
- :meth:`Pipeline.predict`: ``nnUNetv2_predict`` of a folder of raw images, skipped when every
  prediction exists;
- :meth:`Pipeline.report`: ``nnunet_ext_report`` of trainers and folds against a baseline (Dice, IoU,
  HD95, ASD per region with spread and paired tests).

Each stage returns a record (``stage``, the command, wall seconds, peak RSS of its largest process,
the log; or ``skipped`` with the reason). With a ``journal`` file, every stage that ran is appended
to it and a skipped stage is reported with the timings of the run that did it (``timings_from``), so
a resumed benchmark still says what each stage cost.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from nnunet_ext.commands import run_logged
from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import PLANS, SPLITS_FILE, DatasetFolders, atomic_write_bytes, fold_folder

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+): (.*)$")
_JOURNAL_KEY = ("stage", "repeat", "trainer", "fold")


def fold_state(folder: Path) -> str:
    """``done``, ``validate`` (trained, validation missing), ``resume`` or ``new``."""
    if (folder / "checkpoint_final.pth").is_file():
        return "done" if (folder / "validation" / "summary.json").is_file() else "validate"
    if any((folder / f).is_file() for f in ("checkpoint_latest.pth", "checkpoint_best.pth")):
        return "resume"
    return "new"


def train_command(dataset: str, configuration: str, fold: int, trainer: str, plans: str, device: str, state: str,
                  npz: bool = False) -> list[str]:
    """The ``nnUNetv2_train`` line for a fold in ``state`` (see :func:`fold_state`)."""
    command = ["nnUNetv2_train", dataset, configuration, str(fold), "-tr", trainer, "-p", plans, "-device", device]
    command += {"resume": ["--c"], "validate": ["--val"]}.get(state, [])
    return command + (["--npz"] if npz else [])


def predict_command(dataset: str, configuration: str, trainer: str, plans: str, folds: list[int], inputs: Path,
                    output: Path, device: str) -> list[str]:
    """The ``nnUNetv2_predict`` line of the raw images in ``inputs`` with ``folds``; callers append pool options."""
    return ["nnUNetv2_predict", "-i", str(inputs), "-o", str(output), "-d", dataset, "-c", configuration,
            "-tr", trainer, "-p", plans, "-f", *map(str, folds), "-device", device]


def link_raw_images(raw_dataset: Path, cases: list[str], folder: Path) -> Path:
    """Links the training images of ``cases`` (``imagesTr/CASE_XXXX<ending>``, one per channel of the raw
    dataset's dataset.json) into ``folder``, as ``nnUNetv2_predict``'s input; a missing image is an error."""
    dataset_json = json.loads((raw_dataset / "dataset.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        for channel in dataset_json["channel_names"]:
            image = raw_dataset / "imagesTr" / f"{case}_{int(channel):04d}{dataset_json['file_ending']}"
            if not image.is_file():
                raise NnunetExtError(f"image {image} not found; the raw dataset must hold case {case}")
            if not (folder / image.name).exists():
                (folder / image.name).symlink_to(image)
    return folder


def training_log_times(folder: Path, since: float = 0.0) -> dict:
    """Setup / training / validation seconds and epoch times from nnU-Net's logs written since ``since``."""
    logs = sorted(p for p in folder.glob("training_log_*.txt") if p.stat().st_mtime >= since)
    epochs, marks = [], {}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            match = _LOG_LINE.match(line)
            if not match:
                continue
            stamp = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S.%f").timestamp()
            text = match[2].strip()
            marks.setdefault("first", stamp)
            if text.startswith("Epoch time:"):
                epochs.append(float(text.split(":")[1].split()[0]))
            elif re.fullmatch(r"Epoch \d+", text):
                marks.setdefault("training_start", stamp)
            elif text.startswith("Training done."):
                marks["training_done"] = stamp
            elif text.startswith("Validation complete"):
                marks["validation_done"] = stamp
    result = {"logs": [str(p) for p in logs], "epoch_seconds": epochs}
    for name, start, end in (("setup_s", "first", "training_start"), ("training_s", "training_start", "training_done"),
                             ("validation_s", "training_done", "validation_done")):
        if start in marks and end in marks:
            result[name] = round(marks[end] - marks[start], 2)
    return result


@dataclass
class Pipeline:
    """The stages of one dataset and configuration in the nnU-Net folders of the environment (:attr:`folders`)."""

    dataset: str  # DatasetXXX_Name
    configuration: str
    logs: Path  # one log file per stage
    device: str = "cpu"
    num_processes: int = 2
    plans: str = PLANS
    journal: Path | None = None
    env: dict = field(default_factory=lambda: dict(os.environ))

    @property
    def dataset_id(self) -> str:
        return self.dataset[7:10]

    @cached_property
    def folders(self) -> DatasetFolders:
        """The dataset's nnU-Net folders, as the environment named them when first asked."""
        return DatasetFolders.from_environment(self.dataset)

    def fold(self, trainer: str, fold: int, results: Path | None = None) -> tuple[Path, str]:
        """A fold's folder (in ``results``, default ``nnUNet_results``) and its state (:func:`fold_state`), which
        chooses the command that trains it (:func:`train_command`)."""
        folder = fold_folder(results or self.folders.results.parent, self.dataset, trainer, self.configuration,
                             fold, self.plans)
        return folder, fold_state(folder)

    def record(self, record: dict) -> dict:
        """Journals a stage that ran; a skipped one gets the timings of its last run from the journal."""
        if self.journal is None:
            return record
        key = tuple(record.get(k) for k in _JOURNAL_KEY)
        if "skipped" not in record:
            record = {**record, "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            with open(self.journal, "a") as handle:
                handle.write(json.dumps(record, default=str) + "\n")
            return record
        earlier = None
        if self.journal.is_file():
            for line in self.journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by an interrupted write
                    continue
                if tuple(entry.get(k) for k in _JOURNAL_KEY) == key and "seconds" in entry:
                    earlier = entry
        if earlier is None:
            return record
        return {**earlier, **{k: v for k, v in record.items() if k not in earlier or k in ("skipped", "state_before")},
                "timings_from": earlier.get("finished_utc")}

    def skip(self, stage: dict, reason: str) -> dict:
        """A stage whose results exist: one line saying so, then its journal record."""
        print(f"{stage['stage']}" + (f" {stage['trainer']}" if "trainer" in stage else "") + f": {reason}, skipped",
              flush=True)
        return self.record({**stage, "skipped": reason})

    def run(self, stage: dict, command: list[str], log_name: str, env: dict | None = None) -> dict:
        """Runs one stage's command (:func:`~nnunet_ext.commands.run_logged`); the caller journals the record."""
        return {**stage, **run_logged(command, self.logs / log_name, env or self.env)}

    # ------------------------------------------------------------------------------------ stages
    def raw_cases(self) -> list[str]:
        raw = self.folders.raw
        ending = json.loads((raw / "dataset.json").read_text())["file_ending"]
        return sorted(p.name[: -len(ending)] for p in (raw / "labelsTr").glob(f"*{ending}"))

    def configuration_folder(self) -> Path:
        """The preprocessed folder of the configuration (its ``data_identifier`` in the plans)."""
        plans = json.loads((self.folders.preprocessed / f"{self.plans}.json").read_text())
        return self.folders.preprocessed / plans["configurations"][self.configuration]["data_identifier"]

    def convert(self, command: list[str], log_name: str = "convert.log") -> dict:
        """Runs a converter's ``command``, which writes this raw dataset; skipped when its dataset.json exists."""
        raw = self.folders.raw
        stage = {"stage": "convert", "folder": str(raw)}
        if (raw / "dataset.json").is_file():
            return self.skip(stage, "raw dataset present")
        return self.record(self.run(stage, command, log_name))

    def plan_and_preprocess(self, planner_args: list[str] = ()) -> dict:
        """``nnUNetv2_plan_and_preprocess`` with ``planner_args`` (e.g. ``-overwrite_target_spacing 4 4 4``); skipped
        when the configuration's cases are preprocessed (the caller checks that the plans are the ones it wants)."""
        plans = self.folders.preprocessed / f"{self.plans}.json"
        if plans.is_file() and self.configuration in json.loads(plans.read_text())["configurations"]:
            folder = self.configuration_folder()
            if all((folder / f"{c}_seg.b2nd").is_file() for c in self.raw_cases()):
                return self.skip({"stage": "plan_and_preprocess", "folder": str(folder)}, "preprocessed cases present")
        command = ["nnUNetv2_plan_and_preprocess", "-d", self.dataset_id, "-c", self.configuration,
                   "-np", str(self.num_processes), "--verify_dataset_integrity", *planner_args]
        # nnU-Net 2.8.1's planner calls torch.set_num_threads(nnUNet_n_proc_DA), which fails for 0, a valid training
        # setting (single-threaded augmentation)
        env = {**self.env, "nnUNet_n_proc_DA": str(max(1, int(self.env.get("nnUNet_n_proc_DA") or 1)))}
        return self.record(self.run({"stage": "plan_and_preprocess"}, command, "plan_and_preprocess.log", env))

    def split(self) -> list[dict]:
        """nnU-Net's K-fold split with its own function and seed (as its trainers make it for K = 5), K = min(5,
        cases): fewer cases than 5 get a split too. An existing ``splits_final.json`` is kept."""
        from nnunetv2.utilities.crossval_split import generate_crossval_split

        from nnunet_ext.target_store import case_identifiers

        splits_file = self.folders.preprocessed / SPLITS_FILE
        if not splits_file.is_file():
            cases = case_identifiers(self.configuration_folder())
            if len(cases) < 2:
                raise NnunetExtError(f"{self.dataset} has {len(cases)} case(s); a split needs at least 2")
            splits = generate_crossval_split(cases, seed=12345, n_splits=min(5, len(cases)))
            atomic_write_bytes(splits_file, json.dumps(splits, indent=1).encode())
        return json.loads(splits_file.read_text())

    def precompute(self, spec, trainers: list[str]) -> dict:
        """``nnUNetv2_precompute_targets`` of one map spec (a trainer's ``target_spec()``) for ``trainers``; skipped
        when every case's maps are fresh by the rule the command and the trainers use
        (:class:`~nnunet_ext.preprocessed.PreprocessedConfiguration`)."""
        from nnunet_ext.precompute import precompute_argv
        from nnunet_ext.preprocessed import PreprocessedConfiguration

        config = PreprocessedConfiguration.from_disk(self.dataset, self.configuration, self.plans)
        cases = config.cases
        up_to_date = sum(status == "ok" for status in config.statuses(spec).values())
        stage = {"stage": f"precompute {spec.target_id}", "kind": spec.kind, "trainers": trainers, "cases": len(cases),
                 "state_before": f"{up_to_date}/{len(cases)} up to date"}
        if up_to_date == len(cases):
            return self.skip(stage, "maps up to date")
        command = [*precompute_argv(config, spec), "-np", str(self.num_processes), "--device", self.device]
        record = self.run(stage, command, f"precompute_{spec.target_id}.log")
        return self.record({**record, "seconds_per_computed_case": round(record["seconds"] / (len(cases) - up_to_date), 2)})

    def train(self, trainer: str, fold: int, results: Path | None = None, npz: bool = False,
              log_name: str | None = None, **stage) -> dict:
        """Trains and validates one fold, resuming what an earlier run left (:func:`fold_state`)."""
        results = results or self.folders.results.parent
        folder, state = self.fold(trainer, fold, results)
        stage = {"stage": "train+validate", **stage, "trainer": trainer, "fold": fold, "state_before": state}
        if state == "done":
            print(f"{trainer} fold {fold}: finished, skipped ({folder})", flush=True)
            return self.record({**stage, "skipped": "finished earlier", **training_log_times(folder)})
        started = time.time()
        command = train_command(self.dataset, self.configuration, fold, trainer, self.plans, self.device, state, npz)
        record = self.run(stage, command, log_name or f"{trainer}__{self.configuration}__fold{fold}.log",
                          {**self.env, "nnUNet_results": str(results)})
        return self.record({**record, **training_log_times(folder, started - 1)})

    def predict(self, trainer: str, folds: list[int], inputs: Path, output: Path, cases: list[str],
                results: Path | None = None, disable_tta: bool = False, log_name: str | None = None,
                **stage) -> dict:
        """``nnUNetv2_predict`` of the raw images in ``inputs`` (``cases``) with ``folds``; skipped when done."""
        ending = json.loads((self.folders.raw / "dataset.json").read_text())["file_ending"]
        stage = {"stage": "predict", **stage, "trainer": trainer, "cases": len(cases),
                 "test_time_mirroring": not disable_tta}
        if all((output / f"{c}{ending}").is_file() for c in cases):
            return self.skip({**stage, "output": str(output)}, "predictions present")
        command = [*predict_command(self.dataset, self.configuration, trainer, self.plans, folds, inputs, output,
                                    self.device), "-npp", str(self.num_processes), "-nps", str(self.num_processes),
                   "--disable_progress_bar"] + (["--disable_tta"] if disable_tta else [])
        env = self.env if results is None else {**self.env, "nnUNet_results": str(results)}
        record = self.run(stage, command, log_name or f"predict_{trainer}.log", env)
        return self.record({**record, "output": str(output),
                            "seconds_per_case": round(record["seconds"] / max(len(cases), 1), 2)})

    def report(self, trainers: list[str], baseline: str, folds: list[int], output: Path, results: Path | None = None,
               log_name: str = "report.log", **stage) -> dict:
        """``nnunet_ext_report`` of the folds' validation (``report.md``, ``summary.csv`` in ``output``)."""
        command = ["nnunet_ext_report", "-d", self.dataset, "-c", self.configuration, "-p", self.plans,
                   "-tr", *trainers, "-b", baseline, "-f", *map(str, folds), "-o", str(output)]
        env = self.env if results is None else {**self.env, "nnUNet_results": str(results)}
        record = self.run({"stage": "report", **stage}, command, log_name, env)
        return self.record({**record, "report": str(output / "report.md"), "summary": str(output / "summary.csv")})
