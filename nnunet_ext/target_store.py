"""Where and how per-case target maps (SiNG, distance maps, ...) are stored next to nnU-Net's cases.

Layout inside one preprocessed configuration folder (``$nnUNet_preprocessed/DatasetXXX/<plans>_<cfg>``)::

    <case>.b2nd  <case>_seg.b2nd  <case>.pkl          nnU-Net's own files (untouched)
    nnunet_ext_targets/<target_id>/spec.json          what produced the maps (kind, parameters, versions)
    nnunet_ext_targets/<target_id>/<case>.b2nd        float16 (K, *spatial), same grid as <case>.b2nd

Why a sub-folder: nnU-Net treats every ``*.b2nd`` beside the cases as a case and infers the dataset
class from the file extensions present, while it ignores sub-folders (nnunetv2 2.8).

Freshness: each map carries, in its blosc2 ``vlmeta``, the spec hash, a fingerprint (size and
mtime) of the case's ``_seg.b2nd`` and ``.b2nd`` it was computed from, and the freshness key of the
configuration it was computed for (channels and their order, regions or labels, ignore label,
spacing: :meth:`nnunet_ext.preprocessed.PreprocessedConfiguration.map_key`). A map is *stale* when
the spec changed (e.g. another delta), the case files were re-written in place or the key changed
(e.g. the regions of dataset.json reordered). Re-running ``nnUNetv2_preprocess`` deletes the whole
configuration folder, ``nnunet_ext_targets/`` with it: the maps of every kind are then *missing*
(and computed again), not stale.

Integrity: the CRC-32 of the stored (compressed) chunks is written with the map, in the same file;
:func:`case_status` calls a map whose bytes no longer match it *corrupt* (recomputed like a stale
one), and the training loader checks it on a case's first read (:func:`verify_case`).

Writes are atomic (temporary file in the same folder, then ``os.replace``), so an interrupted run
leaves either the old map or the new one, and concurrent writers of the same case (five folds
started together) each replace the file with identical content. A writer killed mid-write leaves
its temporary ``.<case>.<host>-<pid>.*.tmp.b2nd``; :func:`remove_abandoned_temporaries` (run by
every precompute) deletes those whose process on this host is gone, and any older than an hour.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import blosc2
import numpy as np

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import TARGETS_FOLDER, atomic_write_bytes, stat_fingerprint

if TYPE_CHECKING:  # the spec module imports the kinds' registry (torch); this module reads only digest and id
    from nnunet_ext.targets.spec import TargetSpec

#: temporary files older than this are abandoned whoever wrote them (writes take seconds)
ABANDONED_AFTER_S = 3600.0
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_OWNED_TEMPORARY = re.compile(r"\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]*\.tmp\.b2nd$")


def targets_folder(config_folder: str | os.PathLike, spec: TargetSpec) -> Path:
    return Path(config_folder) / TARGETS_FOLDER / spec.target_id


def targets_lock(config_folder: str | os.PathLike, spec: TargetSpec) -> Path:
    """The file lock under which the trainers compute the maps of ``spec`` (beside its maps folder)."""
    return Path(config_folder) / TARGETS_FOLDER / f".{spec.target_id}.lock"


def target_file(config_folder: str | os.PathLike, spec: TargetSpec, case: str) -> Path:
    return targets_folder(config_folder, spec) / f"{case}.b2nd"


def case_identifiers(config_folder: str | os.PathLike) -> list[str]:
    """Cases of a preprocessed configuration folder (those with a ``<case>_seg.b2nd``)."""
    folder = Path(config_folder)
    return sorted(p.name[: -len("_seg.b2nd")] for p in folder.glob("*_seg.b2nd"))


def source_fingerprint(config_folder: str | os.PathLike, case: str) -> dict:
    """Size and mtime of the nnU-Net files a map is computed from; changes when nnU-Net re-writes them."""
    return {suffix: stat_fingerprint(Path(config_folder) / f"{case}{suffix}") for suffix in (".b2nd", "_seg.b2nd")}


def write_spec(config_folder: str | os.PathLike, spec: TargetSpec, extra: Mapping[str, Any] | None = None) -> None:
    """Writes ``spec.json`` (atomically) describing the maps in the spec's folder."""
    folder = targets_folder(config_folder, spec)
    folder.mkdir(parents=True, exist_ok=True)
    content = json.dumps({**spec.to_json(), **(dict(extra) if extra else {})}, indent=2, sort_keys=True).encode()
    path = folder / "spec.json"
    if not (path.is_file() and path.read_bytes() == content):  # unchanged: nothing written (read-only datasets)
        atomic_write_bytes(path, content)


def remove_other_spec(config_folder: str | os.PathLike, spec: TargetSpec, extra: Mapping[str, Any],
                      ignored: tuple[str, ...] = ("versions",)) -> bool:
    """Removes ``spec.json`` when it describes other maps than ``extra`` does (beyond the ``ignored`` entries), before
    maps are replaced: an interrupted run then leaves no ``spec.json`` rather than one describing maps no longer
    there (:func:`write_spec` writes it again once the maps exist). Returns whether it removed one."""
    path = targets_folder(config_folder, spec) / "spec.json"
    try:
        described = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    wanted = _plain({**spec.to_json(), **extra})
    if {k: v for k, v in described.items() if k not in ignored} == {k: v for k, v in wanted.items() if k not in ignored}:
        return False
    path.unlink()
    return True


def write_case(
    config_folder: str | os.PathLike,
    spec: TargetSpec,
    case: str,
    maps: np.ndarray,
    chunks: tuple[int, ...] | None = None,
    blocks: tuple[int, ...] | None = None,
    key: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically writes the (K, *spatial) maps of ``case`` as float16 with freshness and integrity metadata.

    ``chunks``/``blocks`` should follow nnU-Net's own choice for the case (patch-sized chunks) so
    that reading a patch decompresses only what the patch needs. ``key``: the freshness key of the
    maps (what they depend on beyond the case files: :meth:`PreprocessedConfiguration.map_key
    <nnunet_ext.preprocessed.PreprocessedConfiguration.map_key>`), checked by :func:`case_status`
    when asked for. The checksum of the stored chunks is recorded with the maps, in the same file. A full disk
    raises ``OSError(ENOSPC)`` naming the map; the temporary file is removed whatever stops the write (Ctrl-C too).
    """
    if not np.all(np.isfinite(maps)):
        raise ValueError(f"target maps of case {case} contain NaN or inf")
    path = target_file(config_folder, spec, case)
    path.parent.mkdir(parents=True, exist_ok=True)
    fingerprint = source_fingerprint(config_folder, case)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{case}.{_HOST}-{os.getpid()}.", suffix=".tmp.b2nd", dir=path.parent)
    os.close(fd)
    os.unlink(tmp_name)  # blosc2 refuses to overwrite; it creates the file itself
    stored = np.ascontiguousarray(maps, dtype=np.float16)
    try:
        try:
            array = blosc2.asarray(
                stored,
                urlpath=tmp_name,
                chunks=chunks,
                blocks=blocks,
                # nnU-Net's own codec and level for its images (nnUNetDatasetBlosc2.save_case), which it chose for
                # patch-wise reads; against ZSTD the maps take 1.3x the bytes and the loader's ratio to nnU-Net's
                # default did not change (docs/results/speed-cpu.md, run D)
                cparams={"codec": blosc2.Codec.LZ4HC, "clevel": 5, "filters": [blosc2.Filter.SHUFFLE], "nthreads": 1},
            )
            array.schunk.vlmeta["nnunet_ext"] = {"spec": spec.digest, "source": fingerprint, "key": _plain(key or {}),
                                                  "checksum": stored_checksum(array)}
            del array
        except RuntimeError as error:  # blosc2's only word for a full disk: "Error while creating the NDArray"
            if shutil.disk_usage(path.parent).free < stored.nbytes:  # less room than the uncompressed maps
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
            raise
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def case_status(config_folder: str | os.PathLike, spec: TargetSpec, case: str,
                key: Mapping[str, Any] | None = None) -> str:
    """``"ok"``, ``"missing"``, ``"stale"`` or ``"corrupt"`` for the maps of one case.

    Stale: another spec, case files re-written since, or (with ``key``) maps written with another
    freshness key (:func:`write_case`), maps of an older format included. Corrupt: the stored chunks
    no longer match the checksum written with them (a flipped byte on disk), or the file cannot be read.
    """
    path = target_file(config_folder, spec, case)
    if not path.is_file():
        return "missing"
    try:
        array = blosc2.open(str(path), mode="r")
        meta = array.schunk.vlmeta["nnunet_ext"]
    except Exception:  # an unreadable file (e.g. truncated by a crash outside our atomic writes, or a flipped byte)
        return "corrupt"
    if meta.get("spec") != spec.digest:
        return "stale"
    if key is not None and meta.get("key") != _plain(key):
        return "stale"
    recorded = {k: list(v) for k, v in meta.get("source", {}).items()}
    if recorded != source_fingerprint(config_folder, case):
        return "stale"
    return "ok" if _checksum_holds(array, meta) else "corrupt"


def stored_checksum(array: blosc2.NDArray) -> int:
    """CRC-32 of the compressed chunks as stored: cheap to check (nothing is decompressed), and a byte changed
    on disk in the data changes it (a change in blosc2's frame index or in this metadata makes the file unreadable
    or the chunks different)."""
    checksum = 0
    for index in range(array.schunk.nchunks):
        checksum = zlib.crc32(array.schunk.get_chunk(index), checksum)
    return checksum


def _checksum_holds(array: blosc2.NDArray, meta: Mapping[str, Any]) -> bool:
    try:
        return meta.get("checksum") == stored_checksum(array)
    except Exception:  # a chunk blosc2 cannot locate any more
        return False


def verify_case(config_folder: str | os.PathLike, spec: TargetSpec, case: str, fix: str) -> None:
    """Raises a one-line :class:`NnunetExtError` naming the case and ``fix`` (the command that rewrites the maps)
    unless the stored maps of ``case`` match the checksum written with them."""
    path = target_file(config_folder, spec, case)
    try:
        array = blosc2.open(str(path), mode="r")
        holds = _checksum_holds(array, array.schunk.vlmeta["nnunet_ext"])
    except Exception:
        holds = False
    if not holds:
        raise NnunetExtError(f"the {spec.target_id} target maps of case {case} in {Path(config_folder)} are corrupt "
                             f"(their stored bytes changed since they were written); run: {fix}")


def _plain(value: Any) -> Any:
    """``value`` as blosc2's metadata returns it (lists for tuples), so that a key read back compares equal."""
    return json.loads(json.dumps(value))


def remove_abandoned_temporaries(folder: str | os.PathLike, max_age_s: float = ABANDONED_AFTER_S) -> int:
    """Deletes the temporary files of killed writers in a maps folder; returns how many.

    A temporary is abandoned when the process named in it (``<host>-<pid>``) ran on this host and is
    gone, or when it is older than ``max_age_s`` (writers on other hosts, older file names). Files
    of live writers are left alone, so concurrent runs are safe.
    """
    removed = 0
    for path in Path(folder).glob(".*.tmp*"):
        try:
            match = _OWNED_TEMPORARY.search(path.name)
            abandoned = bool(match) and match["host"] == _HOST and not _process_alive(int(match["pid"]))
            if not abandoned:
                abandoned = time.time() - path.stat().st_mtime > max_age_s
            if abandoned and path.is_file():
                path.unlink()
                removed += 1
        except OSError:  # its writer renamed or removed it meanwhile, or a read-only folder (left to a writable run)
            continue
    return removed


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there; rely on the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed writer whose parent is gone too stays a zombie where PID 1 does not reap orphans (a
    # container's shell): os.kill still finds it, but it will never finish its file.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS) or the process ended meanwhile
        return not Path("/proc/self/stat").exists()
    return state not in ("Z", "X")


def open_case(config_folder: str | os.PathLike, spec: TargetSpec, case: str) -> blosc2.NDArray:
    """Opens the maps of ``case`` memory-mapped and read-only; slicing decompresses only that patch."""
    kwargs = {} if os.name == "nt" else {"mmap_mode": "r"}
    return blosc2.open(str(target_file(config_folder, spec, case)), mode="r", dparams={"nthreads": 1}, **kwargs)
