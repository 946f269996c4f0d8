"""Every measurement of docs/results/ (speed and quality) in one command, one report.

    nnunet_ext_benchmark all [--parts targets training quality-lgg quality-brats2015]
        [--device auto|cpu|cuda] [--out benchmark_output/results] [--quick | --gpu-check] [--data DIR]

Runs each part (``nnunet_ext_benchmark targets``, ``training``, ``quality --dataset lgg|brats2015``) as
its own process with its own folder under ``--out``, so a failed part loses nothing of the others and a
re-run resumes what the parts resume. Settings follow the device: on a GPU the training part uses the
BraTS 2015 sample with more augmentation workers and the quality parts a longer budget. ``--quick``
shrinks every part to a smoke run whose numbers are not results; ``--gpu-check`` sizes the speed parts for
one short GPU session (``scripts/device_check.sh``): SiNG and GeoLS and the hook on CPU and CUDA, and the
training ratios on the synthetic BraTS-like set, so that no sample data need travel. Writes ``results.json`` (hardware,
each part's command, exit status, wall time and JSON) and ``results.md``; exits non-zero if a part failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nnunet_ext.benchmarks.common import (DATA_VARIABLE, auto_device, hardware_markdown, hardware_record, sample_folder,
                                          write_json)

ALL_TRAINERS = ("nnUNetTrainerSiNGR", "nnUNetTrainerGSL", "nnUNetTrainerRRW", "nnUNetTrainerBoundary",
                "nnUNetTrainerGeoLS", "nnUNetTrainerLS_JML")
QUALITY_TRAINERS = ("nnUNetTrainer", "nnUNetTrainerSiNGR", "nnUNetTrainerGSL", "nnUNetTrainerRRW")
PARTS = ("targets", "training", "quality-lgg", "quality-brats2015")
SAMPLES = {"brats2015": "brats2015_sample", "lgg": "lgg_kaggle_3m_sample/kaggle_3m"}  # inside --data


def part_command(part: str, device: str, quick: bool, out: Path,
                 data: Path | None = None, gpu_check: bool = False) -> tuple[list[str], list[Path]]:
    """The command line of one part and the JSON / Markdown files it writes (``data``: see ``--data``)."""
    python = [sys.executable, "-u", "-m", "nnunet_ext.benchmarks"]
    if part == "targets":
        extra = ["--cases", "1", "--authors-cases", "1", "--repeats", "1"] if quick else []
        # the authors' recipes run on the CPU only (minutes per case): not part of a GPU check
        extra += ["--kinds", "sing", "geols", "--authors-cases", "0", "--threads", "8"] if gpu_check else []
        extra += ["--data", str(data)] if data else []
        return ([*python, "targets", "--device", device, "--out", str(out), *extra],
                [out / "targets.json", out / "targets.md"])
    if part == "training":
        if quick:
            extra = ["--iterations", "2", "--rounds", "1", "--warmup", "1", "--loader-batches", "2",
                     "--step-repeats", "2", "--predict-repeats", "1"]
        elif gpu_check:
            extra = ["--iterations", "20", "--rounds", "2", "--predict-repeats", "1"]
        else:
            extra = ["--trainers", *ALL_TRAINERS, "--iterations", "20", "--predict-repeats", "1"]
        if device == "cuda":  # as many augmentation workers as cores allow, as nnU-Net's users set them
            extra += ["--da-workers", str(max(2, (os.cpu_count() or 2) - 4))]
        if device == "cuda" and not gpu_check:  # nnU-Net's real setting: BraTS-size patches
            extra += ["--kind", "brats2015"]
            extra += ["--source", str(sample_folder(SAMPLES["brats2015"], data))] if data else []
        return ([*python, "training", "--device", device, "--out", str(out), *extra],
                [out / "benchmark_training.json", out / "benchmark_training.md"])
    dataset = part.split("-", 1)[1]
    # the quality script's own default budget follows the device (a short one on CPU, longer on a GPU)
    extra = ["--trainers", *QUALITY_TRAINERS[:2], "--budget", "_1epoch_2iters", "--folds", "0"] if quick \
        else ["--trainers", *QUALITY_TRAINERS]
    extra += ["--source", str(sample_folder(SAMPLES[dataset], data))] if data else []
    return ([*python, "quality", "--dataset", dataset, "--device", device,
             "--out", str(out), *extra],
            [out / "quality.json", out / "quality.md"])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, help="default: all")
    parser.add_argument("--device", type=auto_device, choices=("cpu", "cuda"), default="auto",
                        help="default: cuda if torch sees a GPU, else cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmark_output") / "results")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke-size runs of every part (not results)")
    size.add_argument("--gpu-check", action="store_true",
                      help="the speed parts sized for one short GPU session (default --parts: targets training)")
    parser.add_argument("--data", type=Path, default=os.environ.get(DATA_VARIABLE),
                        help=f"folder holding brats2015_sample/ and lgg_kaggle_3m_sample/ (default: ${DATA_VARIABLE})")
    args = parser.parse_args(argv)
    args.parts = args.parts or (["targets", "training"] if args.gpu_check else list(PARTS))
    args.out = args.out.resolve()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"hardware": hardware_record(), "device": args.device, "quick": args.quick, "gpu_check": args.gpu_check,
              "parts": {}}
    sections, title = [], "# nnunet-ext benchmark" + (" (quick smoke run: not results)" if args.quick else "")
    for part in args.parts:
        command, (json_path, md_path) = part_command(part, args.device, args.quick, args.out / part, args.data,
                                                      args.gpu_check)
        print(f"[benchmark] {part}: {' '.join(command)}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        returncode = subprocess.run(command).returncode
        entry = {"command": command, "returncode": returncode, "seconds": round(time.perf_counter() - start, 1)}
        if returncode == 0 and json_path.is_file():
            entry["result"] = json.loads(json_path.read_text())
            sections.append(f"## {part} ({entry['seconds']:.0f} s)\n\n{md_path.read_text()}")
        else:
            sections.append(f"## {part}\n\nFAILED (exit {returncode}); command: `{' '.join(command)}`\n")
        record["parts"][part] = entry
        # after every part: a run stopped by a time limit (a lent GPU's) keeps the parts it finished
        write_json(args.out / "results.json", record)
        (args.out / "results.md").write_text("\n\n".join([title, hardware_markdown(record["hardware"]), *sections])
                                             + "\n")
    print(f"written: {args.out / 'results.md'}")
    return 0 if all(entry["returncode"] == 0 for entry in record["parts"].values()) else 1

