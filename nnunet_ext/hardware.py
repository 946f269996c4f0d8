"""What every benchmark records about the machine, the code and the command it ran.

:func:`hardware_record` returns a JSON-ready dict (keys ``HARDWARE_KEYS``): the time (UTC), CPU model,
logical and usable CPUs, torch threads, RAM, load average (timings on a shared machine mean little
without it), CUDA device 0 as torch sees it, package versions, Python, platform, and the git commit and
dirty flag of this repository (read-only git calls). :func:`hardware_markdown` renders it.
:func:`sample_folder` resolves a real-data sample from an argument or ``$NNUNET_EXT_DATA``;
:func:`invoked_command` is the command line as typed (``nnunet_ext_benchmark PART ...``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # git reads the repository of an editable install from here
PACKAGES = ("torch", "FastGeodis", "numpy", "scipy", "edt", "nnunetv2")
HARDWARE_KEYS = ("date_utc", "cpu_model", "logical_cpus", "affinity_cpus", "torch_threads", "ram_gb", "load_average",
                 "gpu", "versions", "python", "platform", "git")
DATA_VARIABLE = "NNUNET_EXT_DATA"  # folder holding brats2015_sample/ and lgg_kaggle_3m_sample/


def sample_folder(relative: str, data: str | Path | None = None) -> Path | None:
    """``<data>/<relative>``, ``data`` from the argument or else ``$NNUNET_EXT_DATA``; None when neither is set."""
    root = data or os.environ.get(DATA_VARIABLE)
    return Path(root) / relative if root else None


def invoked_command() -> str:
    """The running command line; ``nnunet_ext_benchmark`` names its part in ``sys.argv[0]``."""
    return " ".join([Path(sys.argv[0]).name, shlex.join(sys.argv[1:])]).rstrip()


def write_json(path: Path, data: dict) -> None:
    """Writes ``data`` as JSON atomically (a temporary beside it, then renamed); NaN is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    temporary.replace(path)


def hardware_record() -> dict:
    """The machine, the software versions and the commit, as the module docstring lists them."""
    import torch

    gpu = None
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        gpu = {"name": properties.name, "memory_gb": round(properties.total_memory / 2**30, 1),
               "cuda": torch.version.cuda}
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gb": round(_ram_bytes() / 2**30, 1),
        "load_average": [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "gpu": gpu,
        "versions": {package: _version(package) for package in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git_state(),
    }


def hardware_markdown(record: dict) -> str:
    """A few Markdown lines (ending with a blank line) for the top of a benchmark's report."""
    gpu = record["gpu"]
    git = record["git"]
    state = "unknown" if git["dirty"] is None else ("with uncommitted changes" if git["dirty"] else "clean")
    return "\n".join([
        f"- date: {record['date_utc']}",
        f"- CPU: {record['cpu_model']}, {record['logical_cpus']} logical CPUs, {record['affinity_cpus']} usable by "
        f"this process, torch threads {record['torch_threads']}, RAM {record['ram_gb']} GB, load average "
        f"{record['load_average']}",
        f"- GPU: {gpu['name']}, {gpu['memory_gb']} GB, CUDA {gpu['cuda']}" if gpu else "- GPU: none (torch sees no CUDA device)",
        f"- versions: {', '.join(f'{name} {version}' for name, version in record['versions'].items())}; "
        f"Python {record['python']}; {record['platform']}",
        f"- code: commit {git['commit']} ({state})",
    ]) + "\n\n"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_bytes() -> int:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_state() -> dict:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "--no-optional-locks", "-C", str(PACKAGE), *args],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if changes is None else bool(changes)}
