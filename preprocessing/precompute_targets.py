"""``nnUNetv2_precompute_targets``: per-case target maps (SiNG, ...) for a preprocessed configuration.

Run after ``nnUNetv2_plan_and_preprocess``::

    nnUNetv2_precompute_targets -d 501 -c 3d_fullres [-p nnUNetPlans] [-np 2] [--kind sing] [--delta 0]
    nnUNetv2_precompute_targets -d 501 -c 3d_fullres --png case.png [--png-case BraTS_0001]
    nnUNetv2_precompute_targets -h                  # every kind (fast: imports no torch)
    nnUNetv2_precompute_targets --kind geols -h     # the parameters of one kind

What it computes and how (freshness, 2d configurations, image checks, workers, the GPU path):
:mod:`nnunet_ext.precompute`, the library this command line calls; the how-to is docs/how-to/precompute.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Sequence

from nnunet_ext.commands import add_version_argument
from nnunet_ext.errors import NnunetExtError, run_cli
from nnunet_ext.nnunet_env import PLANS

PROG = "nnUNetv2_precompute_targets"  # nnunet_ext.precompute.COMMAND, not imported: -h must not import torch
# The kinds of nnunet_ext.targets.REGISTRY (a test keeps the two equal), listed by -h without importing
# them (the registry imports torch: seconds); and the trainers that train on each.
KINDS = {
    "sing": ("SiNGR signed normalised geodesic maps (Eqs. 1-5)", "nnUNetTrainerSiNGR*"),
    "dtm": ("signed distance maps in mm, negative inside (GSL Eq. 12, Boundary loss)",
            "nnUNetTrainerGSL*, nnUNetTrainerBoundary*"),
    "rrw": ("rectified region-wise maps (Valverde and Tohka, Eq. 4)", "nnUNetTrainerRRW*"),
    "geols": ("GeoLS geodesic maps exp(-D) in [0, 1] (MIDL 2024, Eqs. 3-5)", "nnUNetTrainerGeoLS*"),
}


def _epilog() -> str:
    width = max(map(len, KINDS))
    lines = [f"target kinds (--kind; the parameters of one: {PROG} --kind KIND -h):"]
    for name, (description, trainers) in KINDS.items():
        lines += [f"  {name:<{width}}  {description}", f"  {'':<{width}}  trainers: {trainers}"]
    return "\n".join(lines)


def _parser(kind: str | None) -> argparse.ArgumentParser:
    """The command line; with ``kind``, also the parameters of that kind (importing the kinds: torch)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Precompute per-case target maps (default: SiNGR's SiNG maps) for a preprocessed nnU-Net\n"
                    "configuration; up-to-date cases are skipped.",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-d", "--dataset", required=True, help="dataset id or name, e.g. 501 or Dataset501_BraTS")
    parser.add_argument("-c", "--configuration", required=True, help="e.g. 2d, 3d_fullres, 3d_lowres")
    parser.add_argument("-p", "--plans", default=PLANS,
                        help="plans identifier (default nnUNetPlans; e.g. nnUNetResEncUNetMPlans)")
    parser.add_argument("-np", "--num-processes", type=int, default=1,
                        help="parallel worker processes (default 1); with --device cuda: threads that read and write "
                             "cases while this process computes on the GPU")
    parser.add_argument("--kind", default="sing", choices=list(KINDS), help="target kind (default sing; see below)")
    parser.add_argument("--overwrite", action="store_true", help="recompute up-to-date cases too")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the geodesic distances run (SiNG and GeoLS maps; default cpu); same maps "
                             "either way")
    parser.add_argument("--png", metavar="PATH", help="after computing, write a PNG of one case to PATH")
    parser.add_argument("--png-case", metavar="CASE", help="case to plot (default: the first case)")
    add_version_argument(parser)
    if kind is None:
        return parser
    from nnunet_ext.targets import get_kind

    group = parser.add_argument_group(f"parameters of kind {kind!r} (paper vs authors' code: docs/methods/)")
    for option in fields(get_kind(kind).options_type):
        flag = "--" + option.name.replace("_", "-")
        text = f"{option.metadata.get('help', '')} (default {option.default})"
        if isinstance(option.default, bool):
            group.add_argument(flag, dest=option.name, action=argparse.BooleanOptionalAction, default=option.default,
                               help=text)
        else:
            group.add_argument(flag, dest=option.name, type=type(option.default), default=option.default,
                               choices=option.metadata.get("choices"), help=text)
    return parser


def _main(argv: Sequence[str] | None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    kind_parser = argparse.ArgumentParser(add_help=False)
    kind_parser.add_argument("--kind")
    kind = kind_parser.parse_known_args(argv)[0].kind
    if kind is None and {"-h", "--help", "--version"} & set(argv):
        _parser(None).parse_args(argv)  # help (every kind, none of their parameters) or version: no torch import
    kind = kind or "sing"
    from nnunet_ext.targets import REGISTRY, TargetSpec, get_kind

    if kind not in REGISTRY:
        raise NnunetExtError(f"unknown target kind {kind!r}; known kinds: {', '.join(sorted(REGISTRY))}")
    args = _parser(kind).parse_args(argv)
    from nnunet_ext.figures import plot_case
    from nnunet_ext.precompute import precompute
    from nnunet_ext.preprocessed import PreprocessedConfiguration

    try:
        spec = TargetSpec(kind, {option.name: getattr(args, option.name) for option in fields(get_kind(kind).options_type)})
    except ValueError as error:
        raise NnunetExtError(str(error)) from None
    config = PreprocessedConfiguration.from_disk(args.dataset, args.configuration, args.plans)
    summary = precompute(config, spec, args.num_processes, args.overwrite, device=args.device)
    print(f"{summary['computed']} computed, {summary['skipped']} up to date, {summary['cases']} cases: {summary['folder']}")
    if summary["computed"]:
        print(f"median {summary['median_seconds_per_case']:.2f} s per case, peak memory per worker "
              f"{summary['peak_rss_mb_per_worker']:.0f} MB")
    if args.png:
        case = args.png_case or config.cases[0]
        if case not in config.cases:
            raise NnunetExtError(f"case {case!r} is not in {config.folder}; e.g. {config.cases[0]}")
        print(f"wrote {plot_case(config.folder, spec, case, args.png, config.channels)}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
