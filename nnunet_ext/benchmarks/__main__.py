"""``nnunet_ext_benchmark PART [options]`` (or ``python -m nnunet_ext.benchmarks``): runs one part's ``main``."""

from __future__ import annotations

import importlib
import re
import sys

PARTS = {"all": "suite", "targets": "targets", "training": "training", "quality": "quality",
         "quality-cpu": "quality_cpu", "quality-real": "quality_real", "saturation": "saturation", "hd95": "hd95"}
USAGE = f"usage: nnunet_ext_benchmark {{{','.join(PARTS)}}} [options]"


def plain_text(doc: str) -> str:
    """The package docstring (reST) as terminal text: no table rules, roles or inline-literal quotes."""
    lines = [line for line in doc.strip().splitlines() if not re.fullmatch(r"[= ]*=[= ]*", line)]
    text = "\n".join(lines)
    text = re.sub(r":\w+:`~?\.?([^`]+)`", r"nnunet_ext.benchmarks.\1", text)  # :mod:`.suite` -> the module's name
    text = re.sub(r"nnunet_ext\.benchmarks\.nnunet_ext\.", "nnunet_ext.", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--version"]:
        from nnunet_ext.commands import version_text

        print(version_text())
        return 0
    if not argv or argv[0] not in PARTS:
        from nnunet_ext import benchmarks

        asked = argv[:1] in (["-h"], ["--help"])
        if asked:
            print(f"{USAGE}\n\n{plain_text(benchmarks.__doc__)}")
            return 0
        print(USAGE, file=sys.stderr)
        print(f"nnunet_ext_benchmark: error: choose a part: {', '.join(PARTS)} (nnunet_ext_benchmark -h says what "
              "each measures)" if not argv else f"nnunet_ext_benchmark: error: unknown part {argv[0]!r}; choose "
              f"one of: {', '.join(PARTS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"nnunet_ext.benchmarks.{PARTS[argv[0]]}")
    sys.argv = [f"nnunet_ext_benchmark {argv[0]}", *argv[1:]]  # argparse's usage line names the part
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    raise SystemExit(main())
