"""Our commands end with one line, never a traceback: user errors, full or read-only disks, Ctrl-C and SIGTERM."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nnunet_ext.errors import EXIT_INTERRUPTED, NnunetExtError, run_cli


def _raising(error: BaseException):
    def body(argv):
        raise error
    return body


def test_user_error_is_one_line_and_exit_2(capsys):
    assert run_cli(_raising(NnunetExtError("case_007: no map; run nnUNetv2_precompute_targets -d 1 -c 3d_fullres"))) == 2
    assert capsys.readouterr().err == "error: case_007: no map; run nnUNetv2_precompute_targets -d 1 -c 3d_fullres\n"


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left on the device (/data/x.b2nd)"),
                                         (errno.EROFS, "cannot write (/data/x.b2nd): read-only file system"),
                                         (errno.EACCES, "permission denied (/data/x.b2nd)")])
def test_full_or_read_only_disk_is_named(capsys, code, words):
    assert run_cli(_raising(OSError(code, os.strerror(code), "/data/x.b2nd"))) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {words}") and err.count("\n") == 1


def test_other_os_errors_keep_their_traceback():
    with pytest.raises(FileNotFoundError):
        run_cli(_raising(FileNotFoundError(errno.ENOENT, "no such file", "x")))


def test_ctrl_c_is_one_line(capsys):
    assert run_cli(_raising(KeyboardInterrupt())) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted (Ctrl-C); run the same command again to go on\n"


# A command with a spawned worker pool and a temporary folder, stopped while its workers run.
COMMAND = textwrap.dedent("""
    import multiprocessing, signal, sys, tempfile, time
    from pathlib import Path
    from nnunet_ext.errors import leave_interrupts_to_the_parent, run_cli

    # as in a terminal: a shell without job control starts background commands with Ctrl-C ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def work(index):
        Path(sys.argv[1], f"worker{index}").touch()
        time.sleep(60)

    def body(argv):
        with tempfile.TemporaryDirectory(dir=sys.argv[1]) as temporary:
            with multiprocessing.get_context("spawn").Pool(2, initializer=leave_interrupts_to_the_parent) as pool:
                result = pool.map_async(work, range(2), chunksize=1)
                Path(sys.argv[1], "temporary").write_text(temporary)
                result.get()

    if __name__ == "__main__":
        sys.exit(run_cli(body))
""")


@pytest.mark.parametrize("signum, status, line", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                  (signal.SIGINT, 130, "interrupted (Ctrl-C)")])
def test_a_stopped_command_closes_its_pool_and_removes_its_temporary_files(tmp_path, signum, status, line):
    script = tmp_path / "command.py"
    script.write_text(COMMAND)
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen([sys.executable, str(script), str(work)], stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while not all((work / name).is_file() for name in ("temporary", "worker0", "worker1")):  # both workers busy
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.2)
    # Ctrl-C reaches the whole foreground process group; SIGTERM (kill PID) only the command
    os.killpg(process.pid, signum) if signum == signal.SIGINT else process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert err.strip() == f"{line}; run the same command again to go on", err  # no traceback, no leaked semaphores
    assert not Path((work / "temporary").read_text()).exists()
