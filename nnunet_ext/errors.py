"""User-facing errors: one line that names the problem and the command or setting that fixes it."""

from __future__ import annotations

import errno
import signal
import sys
import threading

#: exit status of a command stopped by Ctrl-C / SIGTERM (the shell's 128 + signal number)
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class NnunetExtError(Exception):
    """An error caused by the user's input or environment, printed as one line by our commands."""


class Terminated(BaseException):
    """SIGTERM turned into an exception, so that ``with`` blocks close pools and remove temporary files."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def leave_interrupts_to_the_parent() -> None:
    """Worker-pool initializer: Ctrl-C (sent to the whole process group) stops the parent, which closes the
    pool, instead of printing one ``KeyboardInterrupt`` traceback per worker; SIGTERM keeps its default."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def storage_error(error: OSError) -> str | None:
    """One line for a full or read-only disk (``None`` for any other ``OSError``)."""
    where = f" ({error.filename})" if error.filename else ""
    if error.errno == errno.ENOSPC:
        return f"no space left on the device{where}: free some space and re-run the command (finished work is kept)"
    if error.errno == errno.EROFS:
        return f"cannot write{where}: read-only file system; run the command where it may write"
    if error.errno in (errno.EACCES, errno.EPERM):
        return (f"permission denied{where}: this user may not read or write it; run the command as a user who may, "
                "or ask the folder's owner to")
    return None


def run_cli(main_body, argv=None) -> int:
    """Runs ``main_body(argv)`` as a command: one line on stderr instead of a traceback for

    - an :class:`NnunetExtError` (exit 2);
    - a full or read-only disk (exit 2);
    - Ctrl-C (exit 130) and SIGTERM (exit 143), after the ``with`` blocks of ``main_body`` have closed
      their worker pools and removed their temporary files (a SIGTERM is raised as :class:`Terminated`
      in the main thread; the default handler would end the process at once and leak both).
    """
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can a handler be set
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        main_body(argv)
    except NnunetExtError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        line = storage_error(e)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C); run the same command again to go on", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("terminated (SIGTERM); run the same command again to go on", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0
