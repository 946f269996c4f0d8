"""User-facing errors: one line that names the problem and the command or setting that fixes it."""


class NnunetExtError(Exception):
    """An error caused by the user's input or environment, printed as one line by our commands."""


def run_cli(main_body, argv=None) -> int:
    """Runs ``main_body(argv)`` and turns an :class:`NnunetExtError` into ``error: ...`` + exit 2."""
    import sys

    try:
        main_body(argv)
    except NnunetExtError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
