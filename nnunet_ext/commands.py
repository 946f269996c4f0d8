"""Our console commands: their shared ``--version``, and running nnU-Net's console commands from them (printed,
timed, logged, failures as one-line errors)."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from nnunet_ext.errors import NnunetExtError

DISTRIBUTION = "nnunet-ext"


def package_version(distribution: str = DISTRIBUTION) -> str | None:
    """The installed version of ``distribution`` from its metadata (the one source: ``pyproject.toml``), or None."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def version_text() -> str:
    """``nnunet-ext 0.1.0 (nnunetv2 2.8.1, torch 2.14.1, Python 3.11.7)``: what ``--version`` prints."""
    others = ", ".join(f"{name} {package_version(name) or 'not installed'}" for name in ("nnunetv2", "torch"))
    python = ".".join(map(str, sys.version_info[:3]))
    return f"{DISTRIBUTION} {package_version() or 'unknown (not installed)'} ({others}, Python {python})"


class _VersionAction(argparse.Action):
    """argparse's ``version`` action, with the text built only when asked for (metadata look-ups cost time)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "print the versions of nnunet-ext, nnunetv2, torch and Python, then exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def add_version_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``--version`` to one of our console commands; returns the parser."""
    parser.add_argument("--version", action=_VersionAction)
    return parser


def console_script(command: str) -> str:
    """Console script of the running environment (works without activating the venv)."""
    candidate = Path(sys.executable).parent / command
    return str(candidate) if candidate.exists() else command


def exit_description(returncode: int) -> str:
    """``exit N``, or for a command the kernel killed (SIGKILL: -9 from Python, 137 from a shell) what most likely
    did it: on a 24 GB machine several nnU-Net trainings with their augmentation workers run out of memory."""
    killed = returncode in (-9, 137)
    return f"exit {returncode}" + (", killed: out of memory?" if killed else "")


def run_logged(args: list[str], log_file: Path, env: dict[str, str] | None = None) -> dict:
    """Runs one command (``args[0]`` resolved with :func:`console_script`), its output to ``log_file``.

    Returns ``{"command", "seconds", "peak_rss_mb", "log"}``: wall seconds and the peak resident memory
    of the largest single process among the command and its reaped workers (``wait4``), not their sum.
    A failure raises :class:`NnunetExtError` naming the command, its last log line and the log.
    """
    printable = shlex.join([Path(args[0]).name, *args[1:]])
    print(f"$ {printable}", flush=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_file, "w") as log:
        process = subprocess.Popen([console_script(args[0]), *args[1:]], stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ) if env is None else env)
        _, status, usage = os.wait4(process.pid, 0)  # this child and its reaped descendants, not earlier stages
    seconds = time.perf_counter() - started
    returncode = os.waitstatus_to_exitcode(status)
    if returncode != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise NnunetExtError(f"'{printable}' failed ({exit_description(returncode)}): {tail[0]} -- full log: {log_file}")
    peak_mb = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    print(f"  done in {seconds:.0f} s, peak RSS {peak_mb:.0f} MB (log: {log_file})", flush=True)
    return {"command": printable, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1), "log": str(log_file)}
