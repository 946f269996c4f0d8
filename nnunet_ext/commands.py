"""Running nnU-Net's console commands from our own commands: printed, logged, failures as one-line errors."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from nnunet_ext.errors import NnunetExtError


def console_script(command: str) -> str:
    """Console script of the running environment (works without activating the venv)."""
    candidate = Path(sys.executable).parent / command
    return str(candidate) if candidate.exists() else command


def run_logged(args: list[str], log_file: Path, env: dict[str, str]) -> None:
    """Runs one nnU-Net command, output to ``log_file``; a failure names the command and the log."""
    printable = " ".join(Path(args[0]).name if i == 0 else a for i, a in enumerate(args))
    print(f"$ {printable}", flush=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_file, "w") as log:
        completed = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    if completed.returncode != 0:
        tail = log_file.read_text().strip().splitlines()[-1:] or [""]
        raise NnunetExtError(f"'{printable}' failed (exit {completed.returncode}): {tail[0]} -- full log: {log_file}")
    print(f"  done in {time.perf_counter() - started:.0f} s (log: {log_file})", flush=True)
