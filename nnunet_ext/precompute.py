"""Precomputing the target maps of a preprocessed nnU-Net configuration: the library behind
``nnUNetv2_precompute_targets`` (its command line is :mod:`nnunet_ext.preprocessing.precompute_targets`).

For every case of ``$nnUNet_preprocessed/DatasetXXX/<plans>_<cfg>/`` it reads the normalised image,
the seg (-1: background outside nnU-Net's nonzero mask; labels there are kept, as nnU-Net keeps them)
and the configuration's spacing, turns the seg into one mask per region (region datasets) or per
foreground label (label datasets) with nnU-Net's LabelManager, computes the maps of the target kind
(:data:`nnunet_ext.targets.REGISTRY`) and writes
them with :mod:`nnunet_ext.target_store` (sub-folder nnU-Net ignores, float16 blosc2 with
patch-sized chunks, atomic writes, freshness metadata). Up-to-date cases are skipped, so a second
run, a run after an interruption, or five runs started together by five folds only compute what
is missing or stale (concurrent writers of one case write identical files atomically).

2d configurations hold 3D stacks of slices that nnU-Net trains on one slice at a time: their maps
are computed slice by slice in 2D (the configuration's spacing has two entries), so a slice's
target depends only on what the 2D network sees.

Before computing, every channel of every case is checked for NaN / inf once
(:mod:`nnunet_ext.image_check`): a bad case stops the run with one line naming it, its channel and
the fix. A seg value that dataset.json's labels do not define (which every map would take as
background) stops it the same way, naming the case and the values (:func:`unknown_seg_values`).
Datasets with nnU-Net's ignore label pass the ignored voxels to the kind (no boundary there, see
:mod:`nnunet_ext.targets`). What the maps depend on (the configuration's channels and their order,
regions or labels, ignore label, spacing, and the case files) is the freshness rule of
:class:`nnunet_ext.preprocessed.PreprocessedConfiguration`, recorded with each map; a change makes the
maps stale, and maps whose stored bytes fail their checksum are recomputed too.

Faults: workers (``-np`` > 1) exit when this process dies (killed, not only interrupted) and leave
Ctrl-C to it (one line, no traceback per worker); the temporary files of killed writers are removed
by the next run. A full disk is an ``OSError(ENOSPC)`` naming the map (one line from the command).
With every map up to date nothing is written, so a dataset on read-only storage can be used; maps
that must be computed there stop the run with one line naming the folder and the command.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import resource
import shlex
import statistics
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import blosc2
import numpy as np
import torch
from filelock import FileLock
from tqdm import tqdm

from nnunet_ext.errors import NnunetExtError, leave_interrupts_to_the_parent
from nnunet_ext.image_check import check_finite_images, preprocess_command
from nnunet_ext.nnunet_env import PLANS, why_not_writable
from nnunet_ext.preprocessed import PreprocessedConfiguration
from nnunet_ext.target_store import (remove_abandoned_temporaries, remove_other_spec, targets_folder, targets_lock,
                                     write_case, write_spec)
from nnunet_ext.targets import TargetSpec, get_kind
from nnunet_ext.targets.geodesic import geodesic_device

COMMAND = "nnUNetv2_precompute_targets"
#: devices that this process alone computes on, with -np reader / writer threads (_process_on_device)
DEVICES_COMPUTED_IN_THIS_PROCESS = ("cuda",)


def channel_masks(seg: np.ndarray, channels: Sequence[Sequence[int]]) -> np.ndarray:
    """bool (K, *spatial): voxel in any label of channel k (a region, or a single label)."""
    return np.stack([np.isin(seg, list(labels)) for labels in channels])


def read_case(folder: Path, case: str) -> tuple[np.ndarray, np.ndarray]:
    """The normalised image (C, *spatial) float32 and the seg (*spatial) of one preprocessed case."""
    data = np.asarray(blosc2.open(str(folder / f"{case}.b2nd"), mode="r")[:], dtype=np.float32)
    seg = np.asarray(blosc2.open(str(folder / f"{case}_seg.b2nd"), mode="r")[:])[0]
    return data, seg


def case_maps(data: np.ndarray, seg: np.ndarray, folder: Path, case: str, spec: TargetSpec,
              spacing: Sequence[float], channels: Sequence[Sequence[int]], ignore_label: int | None = None) -> np.ndarray:
    """Maps (K, *spatial) of one preprocessed case read by :func:`read_case` (``folder`` and ``case`` name it in
    errors); ``spacing`` of length 2 means slice-wise 2D; ``ignore_label``: nnU-Net's ignore label of the dataset
    (None: it has none)."""
    masks = channel_masks(seg, channels)
    valid = seg >= 0  # nnU-Net writes -1 for the background outside its nonzero mask (labels there stay)
    ignored = None if ignore_label is None else seg == ignore_label
    compute, options = get_kind(spec.kind).compute, spec.options
    try:
        if len(spacing) == 3:
            return compute(data, masks, valid, tuple(spacing), options, ignored=ignored)
        maps = None  # a kind may add channels (background, complements): sized by the first slice
        for z in range(seg.shape[0]):
            slice_maps = compute(data[:, z], masks[:, z], valid[z], tuple(spacing), options,
                                 ignored=None if ignored is None else ignored[z])
            if maps is None:
                maps = np.empty((slice_maps.shape[0], *seg.shape), dtype=np.float32)
            maps[:, z] = slice_maps
        return maps
    except ValueError as error:
        raise NnunetExtError(f"case {case} in {folder}: {error}") from None


@dataclass(frozen=True)
class _CaseJob:
    """One case to compute, as a worker receives it (picklable for spawn)."""

    config: PreprocessedConfiguration
    spec: TargetSpec
    case: str
    overwrite: bool
    threads: int  #: torch threads of the worker; 0: this process's setting
    device: str


def _process_case(job: _CaseJob) -> dict:
    """Worker: computes and writes one case unless (meanwhile) up to date."""
    if job.threads:
        torch.set_num_threads(job.threads)
    start = time.perf_counter()
    inputs = _read_job(job)
    if inputs is None:  # another process finished it
        return {"case": job.case, "computed": False, "seconds": 0.0, "peak_rss_mb": _peak_rss_mb()}
    maps = _compute_job(job, *inputs)
    return _write_job(job, maps, earlier_seconds=time.perf_counter() - start)


def _read_job(job: _CaseJob) -> tuple[np.ndarray, np.ndarray] | None:
    """The case's (image, seg), or None when its maps are (meanwhile) up to date."""
    if not job.overwrite and job.config.case_status(job.spec, job.case) == "ok":
        return None
    return read_case(job.config.folder, job.case)


def unknown_seg_values(seg: np.ndarray, channels: Sequence[Sequence[int]], ignore_label: int | None) -> list[int]:
    """The values of a preprocessed seg that dataset.json's labels do not define, sorted: neither background (0, or
    nnU-Net's -1 for background outside its nonzero mask), nor a label of a channel, nor the ignore label. Every
    map would silently take such voxels as background."""
    known = [-1, 0, *sorted({int(label) for labels in channels for label in labels})]
    if ignore_label is not None:
        known.append(int(ignore_label))
    outside = ~np.isin(seg, known)
    return [int(value) for value in np.unique(seg[outside])] if outside.any() else []


def _compute_job(job: _CaseJob, data: np.ndarray, seg: np.ndarray) -> np.ndarray:
    config = job.config
    unknown = unknown_seg_values(seg, config.channels, config.ignore_label)
    if unknown:
        raise NnunetExtError(
            f"case {job.case} in {config.folder}: its segmentation holds value(s) {', '.join(map(str, unknown))} that "
            f"the labels of dataset.json do not define (every map would take them as background); add them to the "
            f"labels of dataset.json (raw and preprocessed), or correct the case's label file and re-run "
            f"{preprocess_command(config.dataset_name, config.configuration, config.plans_identifier)}")
    with geodesic_device(job.device):
        return case_maps(data, seg, config.folder, job.case, job.spec, config.spacing, config.channels,
                         config.ignore_label)


def _write_job(job: _CaseJob, maps: np.ndarray, earlier_seconds: float) -> dict:
    """Writes the maps; ``seconds``: the write plus ``earlier_seconds`` (reading and computing the case)."""
    start = time.perf_counter()
    blocks, chunks = _chunking(maps.shape, job.config.patch_size)
    write_case(job.config.folder, job.spec, job.case, maps, chunks=chunks, blocks=blocks,
               key=job.config.map_key(job.spec))
    return {"case": job.case, "computed": True, "seconds": earlier_seconds + time.perf_counter() - start,
            "peak_rss_mb": _peak_rss_mb()}


def _timed_read(job: _CaseJob) -> tuple[tuple[np.ndarray, np.ndarray] | None, float]:
    start = time.perf_counter()
    return _read_job(job), time.perf_counter() - start


def _process_on_device(jobs: list[_CaseJob], io_threads: int, bar: tqdm) -> list[dict]:
    """The GPU path: this process alone holds the device and computes the cases one after the other,
    while ``io_threads`` threads read the next cases and write the finished ones (blosc2 releases the
    GIL). Spawned workers would each create a CUDA context of their own, which made ``-np 8`` on a
    GPU slower per case than one CPU process (docs/results/gpu.md). At most ``io_threads`` cases wait
    to be computed and at most ``io_threads`` to be written, so memory stays bounded. A case's
    ``seconds`` are its reading, computing and writing, without the time it waited in between."""
    results: list[dict] = []
    with ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="precompute-io") as pool:
        reads: deque = deque()
        writes: deque = deque()
        upcoming = iter(jobs)

        def read_next() -> None:
            job = next(upcoming, None)
            if job is not None:
                reads.append((job, pool.submit(_timed_read, job)))

        for _ in range(io_threads):
            read_next()
        while reads:
            job, pending = reads.popleft()
            inputs, read_seconds = pending.result()
            read_next()
            if inputs is None:
                results.append({"case": job.case, "computed": False, "seconds": 0.0, "peak_rss_mb": _peak_rss_mb()})
                bar.update()
                continue
            start = time.perf_counter()
            maps = _compute_job(job, *inputs)
            compute_seconds = time.perf_counter() - start
            if len(writes) >= io_threads:
                results.append(writes.popleft().result())
                bar.update()
            writes.append(pool.submit(_write_job, job, maps, read_seconds + compute_seconds))
        for pending in writes:
            results.append(pending.result())
            bar.update()
    return results


def _init_worker() -> None:
    """Pool initializer: Ctrl-C is left to the parent, and the worker exits as soon as the parent is gone.

    Ctrl-C reaches the whole process group: the parent alone turns it into one line and closes the pool
    (:func:`nnunet_ext.errors.leave_interrupts_to_the_parent`), instead of every worker printing a
    ``KeyboardInterrupt`` traceback. A spawn pool's workers hold both ends of their task pipe, so a parent
    killed outright (SIGKILL, SIGTERM) would leave them computing and then waiting forever; the parent's
    sentinel becomes readable when it dies, whatever killed it.
    """
    leave_interrupts_to_the_parent()
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _compute_cases(config: PreprocessedConfiguration, spec: TargetSpec, todo: list[str], num_processes: int,
                   overwrite: bool, progress: bool, device: str) -> list[dict]:
    """Computes and writes the maps of the ``todo`` cases (skipping those up to date meanwhile); their results."""
    num_processes = max(1, min(int(num_processes), len(todo)))
    threads = 0 if num_processes == 1 else max(1, available_cores() // num_processes)
    jobs = [_CaseJob(config, spec, case, overwrite, threads, device) for case in todo]
    results = []
    with tqdm(total=len(jobs), desc=f"{spec.target_id} {config.configuration}", unit="case",
              disable=not progress) as bar:
        if device in DEVICES_COMPUTED_IN_THIS_PROCESS:
            return _process_on_device(jobs, num_processes, bar)
        if num_processes == 1:
            for job in jobs:
                results.append(_process_case(job))
                bar.update()
            return results
        # spawn: no fork of a process that may hold torch/OpenMP threads
        with multiprocessing.get_context("spawn").Pool(num_processes, initializer=_init_worker) as pool:
            for result in pool.imap_unordered(_process_case, jobs):
                results.append(result)
                bar.update()
    return results


def _chunking(shape: Sequence[int], patch_size: Sequence[int]):
    """nnU-Net's own blosc2 (blocks, chunks) for the maps' shape and the configuration's patch."""
    from nnunetv2.training.dataloading.nnunet_dataset import comp_blosc2_params

    return comp_blosc2_params(tuple(shape), tuple(patch_size), 2)  # float16


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (MB).

    Linux: ``VmHWM`` of /proc/self/status, because ``ru_maxrss`` survives exec and would report a
    spawned worker's parent's peak; elsewhere ``ru_maxrss`` (kB on Linux/BSD, bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def versions() -> dict[str, str]:
    found = {}
    for package in ("nnunet-ext", "nnunetv2", "FastGeodis", "torch", "numpy", "scipy", "edt", "scikit-image", "blosc2"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


# ------------------------------------------------------------------------------------------------
# public entry points
# ------------------------------------------------------------------------------------------------
def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. a container's or a batch job's share, not the
    machine's count), at most ``nnUNet_def_n_proc`` where that is set (nnU-Net's own setting for its pools)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = os.environ.get("nnUNet_def_n_proc", "").strip()
    return max(1, min(cores, int(limit)) if limit.isdigit() else cores)


def precompute(
    config: PreprocessedConfiguration,
    spec: TargetSpec,
    num_processes: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "cpu",
    exclusive: bool = False,
) -> dict:
    """Computes the missing, stale or corrupt maps of ``spec`` for every case of ``config``; returns a summary.

    With ``num_processes`` 1 the cases run in this process with torch's thread count; with more,
    each of the spawned workers uses ``max(1, cores // num_processes)`` threads (:func:`available_cores`).
    ``device="cuda"`` runs FastGeodis (SiNG and GeoLS maps) on the GPU, in this process only, case
    after case, with ``num_processes`` threads reading and writing cases meanwhile; the maps and their
    spec are the same as on the CPU. A case whose maps fail their checksum is named in one line and
    recomputed. ``spec.json`` is written once the maps exist, and only when maps were computed or it is
    missing: it describes the maps in the folder (one describing another configuration is removed before
    its maps are replaced).

    A run with every map up to date writes nothing, so a dataset on read-only storage (a shared cluster
    copy) can be used as it is; where maps must be computed and the folder is read-only (or not writable
    by this user), one line names the folder and the command to run where it is writable. ``exclusive``
    (the trainers): the maps are computed under a file lock beside them, so runs started together (five
    folds) compute each case once; the lock is taken only when maps must be computed.
    """
    try:
        with geodesic_device(device):  # checks the device once, before any worker starts
            pass
    except ValueError as error:
        raise NnunetExtError(str(error)) from None
    folder = config.folder
    check_finite_images(folder, list(config.cases),
                        fix=preprocess_command(config.dataset_name, config.configuration, config.plans_identifier),
                        channel_names=config.channel_names, file_ending=config.file_ending)
    maps_folder = targets_folder(folder, spec)
    if maps_folder.is_dir():
        remove_abandoned_temporaries(maps_folder)
    statuses = config.statuses(spec)
    for case in [case for case, status in statuses.items() if status == "corrupt"]:
        print(f"the {spec.target_id} maps of case {case} fail their checksum (changed on disk); recomputing them",
              flush=True)
    todo = [case for case, status in statuses.items() if overwrite or status != "ok"]
    results: list[dict] = []
    if todo:
        reason = why_not_writable(maps_folder)
        if reason:
            raise NnunetExtError(
                f"{len(todo)} of {len(statuses)} cases need their {spec.target_id} target maps computed (missing or "
                f"stale), but {folder} is {reason}; run where it is writable: {shlex.join(precompute_argv(config, spec))}")
        with FileLock(str(targets_lock(folder, spec))) if exclusive else contextlib.nullcontext():
            if exclusive and not overwrite:  # what the lock's previous holder computed needs no worker
                todo = [case for case in todo if config.case_status(spec, case) != "ok"]
            remove_other_spec(folder, spec, config.spec_record(spec, {}))
            if todo:
                results = _compute_cases(config, spec, todo, num_processes, overwrite, progress, device)
    timings = [r["seconds"] for r in results if r["computed"]]
    if timings or not ((maps_folder / "spec.json").is_file() or why_not_writable(maps_folder)):
        # missing and every map up to date: a run stopped after its last map; on read-only storage the maps' own
        # freshness records suffice
        write_spec(folder, spec, extra=config.spec_record(spec, versions()))
    return {
        "folder": str(maps_folder),
        "target_id": spec.target_id,
        "cases": len(statuses),
        "computed": len(timings),
        "skipped": len(statuses) - len(timings),
        "previously_missing": sum(s == "missing" for s in statuses.values()),
        "previously_stale": sum(s == "stale" for s in statuses.values()),
        "previously_corrupt": sum(s == "corrupt" for s in statuses.values()),
        "median_seconds_per_case": statistics.median(timings) if timings else 0.0,
        "peak_rss_mb_per_worker": max((r["peak_rss_mb"] for r in results), default=0.0),
    }


def precompute_argv(config: PreprocessedConfiguration, spec: TargetSpec) -> list[str]:
    """The command line that writes the maps of ``spec`` (flags only for non-default parameters);
    ``shlex.join`` of it is the hint shown to users."""
    argv = [COMMAND, "-d", config.dataset_name, "-c", config.configuration]
    if config.plans_identifier != PLANS:
        argv += ["-p", config.plans_identifier]
    return argv + spec.argv()


def require_targets(config: PreprocessedConfiguration, spec: TargetSpec, command_hint: str,
                    cause: str | None = None) -> None:
    """Raises a one-line :class:`NnunetExtError` unless every case of ``config`` has up-to-date maps
    (corrupt ones count as stale).

    Trainers call this before training (after computing what was missing), with ``command_hint``
    from :func:`precompute_argv`; ``cause``: what the message gives as the likely reason.
    """
    statuses = list(config.statuses(spec).values())
    missing = statuses.count("missing")
    stale = len(statuses) - missing - statuses.count("ok")
    if missing or stale:
        first = next(case for case, status in zip(config.cases, statuses) if status != "ok")
        raise NnunetExtError(
            f"{missing} of {len(statuses)} cases have no {spec.target_id} target maps and {stale} have stale ones "
            f"(first: {first}; {cause or 'not computed yet, or gone with an nnUNetv2_preprocess re-run, or case files re-written'}) in {config.folder}; "
            f"run: {command_hint}"
        )
