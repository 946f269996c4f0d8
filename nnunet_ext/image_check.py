"""Non-finite voxels in nnU-Net's preprocessed images: found once per case, reported in one line.

nnU-Net's dataset checks let an image with an inf (or NaN) voxel through, and its normalisation then
turns the whole channel into NaN (the mean and standard deviation become inf or NaN). Target maps
that read only one channel (SiNG's ``image_channel``, DTM and RRW, which read none) would be written
finite and say nothing, and the network would train on NaN inputs. :func:`check_finite_images`
reads every channel of every case of a preprocessed configuration once and stops at the first
channel holding a NaN or inf with one line naming the case, the channel, the raw image it came from
and the fix. ``nnUNetv2_precompute_targets`` runs it before computing any map; the trainers run it
once before training (the map trainers through the precompute, ``nnUNetTrainerLS_JML``, which has no
maps, directly).

Once per case: the cases found finite are recorded with the size and mtime of their ``<case>.b2nd``
in ``nnunet_ext_finite_images__<data identifier>.json`` beside the plans (written atomically), so a
later run only reads cases that are new or were re-written by ``nnUNetv2_preprocess``. Cost: one
decompression of each case, about what nnU-Net's data loader spends on one patch of it per epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import blosc2
import numpy as np

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import PLANS, finite_images_record, load_cached, stat_fingerprint, store_cached
from nnunet_ext.target_store import case_identifiers

RECORD_VERSION = 1


def check_finite_images(config_folder: str | os.PathLike, cases: Iterable[str] | None = None, fix: str = "",
                        channel_names: Mapping | None = None, file_ending: str | None = None) -> int:
    """Raises a one-line :class:`NnunetExtError` at the first case whose image has a NaN or inf voxel in
    any channel; returns the number of cases read (0 when every case was checked before).

    ``fix``: the command that re-creates the case (named in the error); ``channel_names`` and
    ``file_ending`` (dataset.json) name the channel and the raw file.
    """
    folder = Path(config_folder)
    cases = case_identifiers(folder) if cases is None else list(cases)
    path, key = finite_images_record(folder), {"version": RECORD_VERSION}
    checked = (load_cached(path, key) or {}).get("cases", {})
    todo = [case for case in cases if checked.get(case) != stat_fingerprint(folder / f"{case}.b2nd")]
    if not todo:
        return 0
    names = {str(k): v for k, v in (channel_names or {}).items()}
    try:
        for case in todo:
            fingerprint = stat_fingerprint(folder / f"{case}.b2nd")
            image = blosc2.open(str(folder / f"{case}.b2nd"), mode="r")
            for channel in range(image.shape[0]):
                values = np.asarray(image[channel])
                bad = int(values.size - np.count_nonzero(np.isfinite(values)))
                if bad:
                    name = f" ({names[str(channel)]})" if str(channel) in names else ""
                    raw = (f"imagesTr/{case}_{channel:04d}{file_ending}" if file_ending
                           else f"the raw image of channel {channel}")
                    raise NnunetExtError(
                        f"case {case} in {folder}: image channel {channel}{name} has {bad} NaN or inf voxel(s) after "
                        f"nnU-Net's preprocessing (a NaN or inf voxel in {raw} makes the whole normalised channel "
                        f"NaN); replace those voxels in the raw image (or remove the case)"
                        + (f" and re-run {fix}" if fix else " and re-run nnU-Net's preprocessing"))
            checked[case] = fingerprint
    finally:  # the cases found finite are remembered even when a later one is bad; not on a read-only dataset
        store_cached(path, key, {"cases": dict(sorted(checked.items()))}, on_read_only=lambda error: None)
    return len(todo)


def preprocess_command(dataset_name: str, configuration: str, plans_identifier: str = PLANS) -> str:
    """The command that re-creates the preprocessed cases after a raw image was fixed."""
    command = f"nnUNetv2_plan_and_preprocess -d {dataset_name} -c {configuration}"
    return command if plans_identifier == PLANS else f"{command} (with the planner that writes {plans_identifier})"


def check_trainer_images(trainer) -> int:
    """:func:`check_finite_images` on a trainer's preprocessed configuration (every case: training and
    validation); trainers call it once before training and turn the error into their one-line stop."""
    folder = trainer.preprocessed_dataset_folder
    dataset_json = getattr(trainer, "dataset_json", None) or {}
    return check_finite_images(
        folder, fix=preprocess_command(trainer.plans_manager.dataset_name, trainer.configuration_name,
                                       trainer.plans_manager.plans_name),
        channel_names=dataset_json.get("channel_names"), file_ending=dataset_json.get("file_ending"))
