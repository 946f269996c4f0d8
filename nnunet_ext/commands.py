"""Running nnU-Net's console commands from our own commands: printed, timed, logged, failures as one-line errors."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from nnunet_ext.errors import NnunetExtError


def console_script(command: str) -> str:
    """Console script of the running environment (works without activating the venv)."""
    candidate = Path(sys.executable).parent / command
    return str(candidate) if candidate.exists() else command


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
        raise NnunetExtError(f"'{printable}' failed (exit {returncode}): {tail[0]} -- full log: {log_file}")
    peak_mb = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    print(f"  done in {seconds:.0f} s, peak RSS {peak_mb:.0f} MB (log: {log_file})", flush=True)
    return {"command": printable, "seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1), "log": str(log_file)}
