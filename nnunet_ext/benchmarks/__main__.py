"""``nnunet_ext_benchmark PART [options]`` (or ``python -m nnunet_ext.benchmarks``): runs one part's ``main``."""

from __future__ import annotations

import importlib
import sys

PARTS = {"all": "suite", "targets": "targets", "training": "training", "quality": "quality",
         "quality-cpu": "quality_cpu", "quality-real": "quality_real", "saturation": "saturation", "hd95": "hd95"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in PARTS:
        from nnunet_ext import benchmarks

        print(benchmarks.__doc__, file=sys.stderr)
        print(f"usage: nnunet_ext_benchmark {{{','.join(PARTS)}}} [options]", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    module = importlib.import_module(f"nnunet_ext.benchmarks.{PARTS[argv[0]]}")
    sys.argv = [f"nnunet_ext_benchmark {argv[0]}", *argv[1:]]  # argparse's usage line names the part
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    raise SystemExit(main())
