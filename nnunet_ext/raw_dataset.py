"""Writing an nnU-Net raw dataset folder safely: a free dataset id, a valid name, an atomic publish.

Used by the synthetic generator and the converters. A dataset is written into a hidden sibling of
its final folder (same file system, so the final rename is atomic; invisible to nnU-Net, whose
lookup matches only names starting with ``Dataset``) and renamed into place once complete: an
interrupted run never leaves a partial dataset under the real name.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Callable

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import dataset_folder_name, datasets_with_id, nnunet_folder

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def datasets_using_id(dataset_id: int, raw_root: Path) -> dict[str, list[Path]]:
    """Dataset folders with this id in the nnU-Net folders and in ``raw_root`` (which may differ from $nnUNet_raw)."""
    found = {name: set(paths) for name, paths in datasets_with_id(dataset_id).items()}
    if raw_root.is_dir():
        for child in raw_root.glob(f"Dataset{dataset_id:03d}_*"):
            if child.is_dir():
                found.setdefault(child.name, set()).add(child)
    return {name: sorted(paths) for name, paths in found.items()}


def check_dataset_id_free(dataset_id: int, folder_name: str, raw_root: Path) -> None:
    """An error if another dataset name already uses this id: nnU-Net resolves ids to names and would be ambiguous."""
    others = {name: paths for name, paths in datasets_using_id(dataset_id, raw_root).items() if name != folder_name}
    if not others:
        return
    where = "; ".join(f"{name} in {', '.join(str(p.parent) for p in paths)}" for name, paths in sorted(others.items()))
    free = next((i for i in [*range(dataset_id + 1, 1000), *range(1, dataset_id)]
                 if not datasets_using_id(i, raw_root)), None)
    hint = f"choose another id, e.g. -d {free}" if free else "choose another id"
    raise NnunetExtError(f"dataset id {dataset_id} is already used by {where}; {hint}")


def raw_dataset_target(dataset_id: int, name: str, raw_root: str | Path | None) -> Path:
    """``<raw_root or $nnUNet_raw>/DatasetXXX_<name>``, after checking the name and that the id is free."""
    if not DATASET_NAME.match(name):
        raise NnunetExtError(f"dataset name '{name}' is invalid; use letters, digits, '-' and '_' (e.g. -n BraTS2020)")
    root = Path(raw_root) if raw_root is not None else nnunet_folder("nnUNet_raw")
    folder_name = dataset_folder_name(dataset_id, name)
    check_dataset_id_free(dataset_id, folder_name, root)
    return root / folder_name


def write_atomically(target: Path, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Runs ``write(staging)`` on an empty hidden sibling of ``target``, then renames it to ``target``.

    An existing ``target`` is an error unless ``overwrite``; it is replaced only once the new folder
    is complete. On any failure the staging folder is removed and ``target`` is untouched.
    """
    if target.exists() and not overwrite:
        raise NnunetExtError(f"{target} already exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        write(staging)
        _publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _publish(staging: Path, target: Path) -> None:
    """Moves the finished staging folder to ``target``, replacing an existing one.

    Two renames within one folder: at no moment does ``target`` hold a partial dataset (between
    the renames it is briefly absent).
    """
    if target.exists():
        retired = staging.with_name(staging.name + "-old")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired)
    else:
        os.replace(staging, target)
