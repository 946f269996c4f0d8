"""GSL class weights (Celaya, Riviere, Fuentes, Eq. 13) from voxel counts over the preprocessed training cases.

nnU-Net stores no per-class voxel counts, so they are counted once per configuration from the
``<case>_seg.b2nd`` files and stored beside the plans::

    $nnUNet_preprocessed/DatasetXXX/nnunet_ext_gsl_counts__<plans>__<configuration>.json

with the channel definitions and a fingerprint (size, mtime) of every seg file. The file is written
atomically and reused while it matches the cases; after ``nnUNetv2_preprocess`` re-writes a case
(or cases are added or removed) it is stale and counted again. Where it cannot be written (a dataset on
read-only storage) the counts are used from memory.

Counted channels: with ``background``, first the background = voxels in no channel (nnU-Net's -1
outside the nonzero mask included: nnU-Net trains those voxels as background), then one per region
or foreground label (regions count every voxel in any of their labels, so nested regions overlap).
All cases of the configuration are counted (the training set of every fold), as in the authors' code.

Ignore label: voxels with nnU-Net's ignore label are of unknown class (the losses mask them), so they
count for no channel, the background included. Datasets with an ignore label record it in the JSON;
counts stored without it are counted again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import blosc2
import numpy as np
import torch

from nnunet_ext.losses.distance import gsl_class_weights
from nnunet_ext.nnunet_env import gsl_counts_file, load_cached, stat_fingerprint, store_cached
from nnunet_ext.target_store import case_identifiers

COUNTS_VERSION = 1


def voxel_counts(config_folder: str | Path, channels: Sequence[Sequence[int]], background: bool,
                 ignore_label: int | None = None) -> dict:
    """Counts over all cases of ``config_folder``: ``{"counts": [...], "fingerprint": {...}}``;
    voxels of ``ignore_label`` count for no channel."""
    folder = Path(config_folder)
    totals = np.zeros(len(channels) + int(background), dtype=np.int64)
    for case in case_identifiers(folder):
        seg = np.asarray(blosc2.open(str(folder / f"{case}_seg.b2nd"), mode="r")[:])[0]
        in_channel = [np.isin(seg, list(labels)) for labels in channels]
        per_channel = [int(mask.sum()) for mask in in_channel]
        if background:
            known = int(seg.size) if ignore_label is None else int(seg.size - np.count_nonzero(seg == ignore_label))
            per_channel.insert(0, int(known - np.logical_or.reduce(in_channel).sum()) if in_channel else known)
        totals += np.asarray(per_channel, dtype=np.int64)
    return {"counts": totals.tolist(), "fingerprint": _fingerprint(folder)}


def load_or_count(config_folder: str | Path, plans_identifier: str, configuration: str,
                  channels: Sequence[Sequence[int]], background: bool,
                  ignore_label: int | None = None) -> tuple[list[int], bool]:
    """The stored counts if up to date, else counted and stored; returns (counts, counted_now)."""
    path = gsl_counts_file(config_folder, plans_identifier, configuration)
    key = {"version": COUNTS_VERSION, "channels": [list(map(int, c)) for c in channels], "background": bool(background)}
    if ignore_label is not None:  # only then: stored counts of datasets without one stay valid
        key["ignore_label"] = int(ignore_label)
    stored = load_cached(path, {**key, "fingerprint": _fingerprint(config_folder)})
    if stored is not None:
        return stored["counts"], False
    counted = voxel_counts(config_folder, channels, background, ignore_label)
    # a read-only dataset (a shared copy) keeps no counts: counted again by each training, which then goes on
    store_cached(path, key, {**counted, "weights": gsl_class_weights(counted["counts"]).tolist()},
                 on_read_only=lambda error: None)
    return counted["counts"], True


def class_weights(config_folder: str | Path, plans_identifier: str, configuration: str,
                  channels: Sequence[Sequence[int]], background: bool,
                  ignore_label: int | None = None) -> tuple[torch.Tensor, list[int], bool]:
    """(w (C,), counts, counted_now): Eq. 13 weights of the configuration's channels."""
    counts, counted_now = load_or_count(config_folder, plans_identifier, configuration, channels, background,
                                        ignore_label)
    return gsl_class_weights(counts), counts, counted_now


def _fingerprint(config_folder: str | Path) -> dict:
    folder = Path(config_folder)
    return {case: stat_fingerprint(folder / f"{case}_seg.b2nd") for case in case_identifiers(folder)}
