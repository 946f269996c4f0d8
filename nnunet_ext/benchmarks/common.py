"""What the benchmarks share: the record of the machine, the code and the command each ran, atomic JSON
writes, argparse types and Markdown tables. The record (:func:`hardware_record`, keys ``HARDWARE_KEYS``)
includes the load average, since timings on a shared machine mean little without it; the commit comes
from read-only git calls.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from nnunet_ext.nnunet_env import atomic_write_bytes

PACKAGE = Path(__file__).resolve().parent  # git reads the repository of an editable install from here
PACKAGES = ("nnunet-ext", "torch", "FastGeodis", "numpy", "scipy", "edt", "nnunetv2")
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
    """Writes ``data`` as JSON atomically (:func:`~nnunet_ext.nnunet_env.atomic_write_bytes`); NaN is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(data, indent=1, allow_nan=False) + "\n").encode())


def at_least(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""
    def parse(text: str) -> int:
        if int(text) < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below {minimum}")
        return int(text)
    return parse


def auto_device(text: str) -> str:
    """The argparse type of ``--device`` (choices cpu, cuda): ``auto``, the default, is cuda if torch sees a GPU."""
    import torch

    if text == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("cuda: torch sees no GPU")
    return ("cuda" if torch.cuda.is_available() else "cpu") if text == "auto" else text


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    return [f"| {' | '.join(header)} |", "|---" * len(header) + "|",
            *(f"| {' | '.join(map(str, row))} |" for row in rows)]


def hardware_record() -> dict:
    """The machine, the software versions and the commit (a JSON-ready dict, keys ``HARDWARE_KEYS``)."""
    import torch

    gpu = torch.cuda.get_device_properties(0) if torch.cuda.is_available() else None
    cpuinfo = Path("/proc/cpuinfo")
    cpu = cpuinfo.is_file() and re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
    commit = _git("rev-parse", "--short", "HEAD")
    changes = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    if commit is None:  # an installed copy: the commit pip recorded for ``pip install git+<repository>@<commit>``
        commit = _installed_commit()
        changes = "" if commit else None
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu[1].strip() if cpu else platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),  # Linux: MemTotal
        "load_average": [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "gpu": gpu and {"name": gpu.name, "memory_gb": round(gpu.total_memory / 2**30, 1), "cuda": torch.version.cuda},
        "versions": {package: _version(package) for package in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": {"commit": commit, "dirty": None if changes is None else bool(changes)},
    }


def hardware_markdown(record: dict) -> str:
    """A few Markdown lines (ending with a blank line) for the top of a benchmark's report."""
    gpu, git = record["gpu"], record["git"]
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


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _installed_commit() -> str | None:
    """The commit of a VCS install of nnunet-ext (PEP 610 ``direct_url.json``); None for any other install."""
    try:
        direct_url = metadata.distribution("nnunet-ext").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    commit = direct_url and json.loads(direct_url).get("vcs_info", {}).get("commit_id")
    return commit[:7] if commit else None


def _git(*args: str) -> str | None:
    """A read-only git call in this package's repository; None without git or a repository."""
    try:
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(PACKAGE), *args], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
