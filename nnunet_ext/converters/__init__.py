"""Converters from the layouts users download (BraTS, LGG FLAIR ``kaggle_3m``) into nnU-Net v2 raw datasets.

- :mod:`nnunet_ext.converters.brats`: BraTS 2020 / 2021 / 2023+ training folders and the BraTS 2015
  sample layout -> a region dataset (whole tumour, tumour core, enhancing tumour) exactly as nnU-Net's
  ``Dataset137_BraTS21`` conversion defines it; console script ``nnunet_ext_convert_brats``.
- :mod:`nnunet_ext.converters.lgg`: the Kaggle LGG FLAIR set -> one 3D volume per patient, usable with
  nnU-Net's ``2d`` and ``3d_fullres`` configurations; console script ``nnunet_ext_convert_lgg``.

Both check every case (files present, label values, geometry) before writing it; a bad case is
reported by name. All problems are collected and reported in one error, or, with ``skip_bad``, the
bad cases are left out and listed. The dataset is written into a hidden sibling folder and renamed
into place when complete (:mod:`nnunet_ext.raw_dataset`).
"""

from __future__ import annotations

from pathlib import Path

from nnunet_ext.errors import NnunetExtError


def check_problems(problems: dict[str, str], source: Path, skip_bad: bool, converted: int, minimum: int = 2) -> None:
    """One error naming every bad case (case: problem), unless ``skip_bad`` and ``minimum`` cases remain."""
    if not problems:
        return
    listing = "; ".join(f"{case}: {problem}" for case, problem in sorted(problems.items()))
    if not skip_bad:
        raise NnunetExtError(
            f"{len(problems)} bad case(s) in {source}: {listing} -- fix them, or pass --skip-bad to convert the others"
        )
    if converted < minimum:
        raise NnunetExtError(f"fewer than {minimum} usable case(s) in {source}; bad cases: {listing}")


def report_skipped(problems: dict[str, str]) -> None:
    for case, problem in sorted(problems.items()):
        print(f"skipped {case}: {problem}")
