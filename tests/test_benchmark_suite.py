"""nnunet_ext_benchmark all: the part commands each size runs (what scripts/device_check.sh relies on)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nnunet_ext.benchmarks.suite import parse_args, part_command


def _option(command: list[str], name: str) -> list[str]:
    """The values following ``name`` in ``command`` (up to the next option)."""
    start = command.index(name) + 1
    end = next((i for i in range(start, len(command)) if command[i].startswith("--")), len(command))
    return command[start:end]


def test_gpu_check_runs_the_speed_parts_without_sample_data_or_recipes(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on the GPU machine
    args = parse_args(["--gpu-check", "--device", "cuda", "--out", str(tmp_path)])
    assert args.device == "cuda" and parse_args(["--out", str(tmp_path)]).device == "cuda"  # auto: the GPU
    assert args.parts == ["targets", "training"]
    targets, _ = part_command("targets", "cuda", False, tmp_path, None, gpu_check=True)
    assert _option(targets, "--kinds") == ["sing", "geols"] and _option(targets, "--authors-cases") == ["0"]
    assert _option(targets, "--device") == ["cuda"]
    training, outputs = part_command("training", "cuda", False, tmp_path, Path("/data"), gpu_check=True)
    # the synthetic set: nothing to carry to the GPU machine
    assert "--kind" not in training and "--source" not in training
    assert int(_option(training, "--da-workers")[0]) >= 2 and _option(training, "--iterations") == ["20"]
    assert outputs == [tmp_path / "benchmark_training.json", tmp_path / "benchmark_training.md"]


def test_full_gpu_run_trains_on_the_brats_sample_and_quick_excludes_gpu_check(tmp_path, capsys):
    training, _ = part_command("training", "cuda", False, tmp_path, Path("/data"))
    assert _option(training, "--kind") == ["brats2015"] and _option(training, "--source") == ["/data/brats2015_sample"]
    assert parse_args(["--device", "cpu"]).parts == ["targets", "training", "quality-lgg", "quality-brats2015"]
    if not torch.cuda.is_available():  # asked for a GPU torch cannot see: a usage error before any part runs
        with pytest.raises(SystemExit):
            parse_args(["--device", "cuda"])
        assert "cuda: torch sees no GPU" in capsys.readouterr().err
    try:
        parse_args(["--quick", "--gpu-check"])
    except SystemExit as error:
        assert error.code == 2 and "not allowed with argument" in capsys.readouterr().err
    else:
        raise AssertionError("--quick with --gpu-check was accepted")
