"""Where things live: the nnU-Net folders (``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``), dataset
ids, the model and fold folders, the splits file, the files nnunet-ext writes beside nnU-Net's, and how it writes
them (:func:`atomic_write_bytes`, :func:`load_cached` / :func:`store_cached`).

nnU-Net reads these environment variables when ``nnunetv2.paths`` is first imported; we read them
at call time instead so that a missing variable becomes a one-line error naming the fix.

Files nnunet-ext writes (all beside nnU-Net's own, in names nnU-Net does not read)::

    $nnUNet_preprocessed/DatasetXXX/
        <data identifier>/nnunet_ext_targets/<kind>_<hash>/    target maps (nnunet_ext.target_store)
        nnunet_ext_finite_images__<data identifier>.json     cases found free of NaN / inf (image_check)
        nnunet_ext_gsl_counts__<plans>__<configuration>.json GSL's voxel counts (training.gsl)
        nnunet_ext_split.json, nnunet_ext_test_images/       a fixed split and its test inputs (workflow.cv)
    $nnUNet_results/DatasetXXX/
        nnunet_ext_logs/                                     the workflow's stage logs (workflow.cv)
        <trainer>__<plans>__<configuration>/fold_0/nnunet_ext_test/   test predictions (workflow.cv)
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.trainer_path import trainer_folder

NNUNET_FOLDER_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
#: nnU-Net's default plans identifier (``-p`` of its commands)
PLANS = "nnUNetPlans"
#: nnU-Net's split file, beside the plans
SPLITS_FILE = "splits_final.json"
#: the fixed split of ``nnunet_ext_cv --split-file``, beside nnU-Net's splits file
SPLIT_RECORD = "nnunet_ext_split.json"
#: a model's test predictions, in its fold 0 folder
TEST_PREDICTIONS = "nnunet_ext_test"
#: links to the raw test images, ``nnUNetv2_predict``'s input, beside the plans
TEST_INPUT = "nnunet_ext_test_images"
#: the workflow's stage logs, in the dataset's results folder
LOGS = "nnunet_ext_logs"
#: the target maps, in a configuration's preprocessed folder (nnU-Net ignores sub-folders there)
TARGETS_FOLDER = "nnunet_ext_targets"
_DATASET_FOLDER = re.compile(r"^Dataset(\d{3})_(.+)$")


def nnunet_folder(variable: str) -> Path:
    """The folder named by the nnU-Net environment variable ``variable``; an error if unset."""
    value = os.environ.get(variable)
    if not value:
        raise NnunetExtError(
            f"environment variable {variable} is not set; run: export {variable}=/path/to/{variable} "
            f"(see README, 'nnU-Net environment variables')"
        )
    return Path(value)


def use_work_folder(root: Path, **settings) -> None:
    """``root``'s nnUNet_raw, nnUNet_preprocessed and nnUNet_results as nnU-Net's folders of this process and its
    commands, with our trainers and nnU-Net's ``settings`` (``nnUNet_n_proc_DA=2``, ...). Set before nnunetv2
    is imported: it reads them then."""
    for name in NNUNET_FOLDER_VARIABLES:
        (root / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(root / name)
    os.environ.update({"nnUNet_extTrainer": str(trainer_folder()), **{k: str(v) for k, v in settings.items()}})


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name for a dataset: ``Dataset501_Name``."""
    if not 1 <= dataset_id <= 999:
        raise NnunetExtError(f"dataset id {dataset_id} is outside nnU-Net's range 1-999")
    return f"Dataset{dataset_id:03d}_{name}"


def datasets_with_id(dataset_id: int) -> dict[str, list[Path]]:
    """Dataset folders with this id in every nnU-Net folder whose variable is set: name -> paths."""
    found: dict[str, list[Path]] = {}
    for variable in NNUNET_FOLDER_VARIABLES:
        root = os.environ.get(variable)
        if not root or not Path(root).is_dir():
            continue
        for child in Path(root).iterdir():
            match = _DATASET_FOLDER.match(child.name)
            if match and int(match.group(1)) == dataset_id and child.is_dir():
                found.setdefault(child.name, []).append(child)
    return found


def resolve_dataset_name(dataset: int | str) -> str:
    """``501`` / ``"501"`` / ``"Dataset501_Name"`` -> ``"Dataset501_Name"``, with one-line errors."""
    text = str(dataset)
    if _DATASET_FOLDER.match(text):
        return text
    if not text.isdigit():
        raise NnunetExtError(f"'{dataset}' is neither a dataset id (e.g. 501) nor a name like Dataset501_Name")
    found = datasets_with_id(int(text))
    if not found:
        raise NnunetExtError(
            f"no dataset with id {int(text)} in nnUNet_raw / nnUNet_preprocessed; list them with "
            f"'ls $nnUNet_raw $nnUNet_preprocessed' or create one (nnunet_ext_synthetic -d {int(text)} -k brats)"
        )
    if len(found) > 1:
        raise NnunetExtError(
            f"dataset id {int(text)} is used by several datasets ({', '.join(sorted(found))}); "
            f"pass the full name instead of the id"
        )
    return next(iter(found))


# ---------------------------------------------------------------------------------------------- our files
def finite_images_record(config_folder: str | os.PathLike) -> Path:
    """The record of the cases of a configuration folder (``.../DatasetXXX/<data identifier>``) found free of
    NaN / inf (:mod:`nnunet_ext.image_check`), beside the plans."""
    folder = Path(config_folder)
    return folder.parent / f"nnunet_ext_finite_images__{folder.name}.json"


def gsl_counts_file(config_folder: str | os.PathLike, plans_identifier: str, configuration: str) -> Path:
    """GSL's voxel counts of a configuration folder (:mod:`nnunet_ext.training.gsl`), beside the plans."""
    return Path(config_folder).parent / f"nnunet_ext_gsl_counts__{plans_identifier}__{configuration}.json"


# ---------------------------------------------------------------------------------------------- model folders
@dataclass(frozen=True)
class DatasetFolders:
    """One dataset's folders in nnU-Net's three trees, each ``<tree>/DatasetXXX_Name``."""

    name: str  # DatasetXXX_Name
    raw: Path
    preprocessed: Path  # plans, dataset.json, splits, one folder per configuration
    results: Path  # one model folder per trainer, plans and configuration

    @classmethod
    def from_environment(cls, name: str) -> DatasetFolders:
        """The folders under ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` as set now."""
        return cls(name, *(nnunet_folder(variable) / name for variable in NNUNET_FOLDER_VARIABLES))

    def model_folder(self, trainer: str, configuration: str, plans: str = PLANS) -> Path:
        """nnU-Net's output folder of a trainer, plans and configuration (its folds are ``fold_<k>`` inside)."""
        return model_folder(self.results.parent, self.name, trainer, configuration, plans)


def model_folder(results: Path, dataset: str, trainer: str, configuration: str, plans: str = PLANS) -> Path:
    """nnU-Net's output folder of a trainer, plans and configuration: ``<results>/<dataset>/<trainer>__<plans>__<config>``
    (its own identifier function names the folder)."""
    from nnunetv2.utilities.file_path_utilities import convert_trainer_plans_config_to_identifier

    return Path(results) / dataset / convert_trainer_plans_config_to_identifier(trainer, plans, configuration)


def fold_folder(results: Path, dataset: str, trainer: str, configuration: str, fold: int, plans: str = PLANS) -> Path:
    """nnU-Net's output folder of one trainer and fold: ``<model folder>/fold_<k>``."""
    return model_folder(results, dataset, trainer, configuration, plans) / f"fold_{fold}"


# ---------------------------------------------------------------------------------------------- writing
def atomic_write_bytes(path: Path, content: bytes) -> None:
    """Writes ``content`` to ``path`` through a temporary file of a unique name in the same folder and a rename: a
    reader sees the old file or the new one, never a partial write, and concurrent writers never share a temporary.
    The file gets the mode of one created the ordinary way (0o666 less the umask, as nnU-Net's own files; ``mkstemp``
    makes 0o600), so the other users of a shared dataset read it."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def why_not_writable(folder: Path) -> str | None:
    """Why this process cannot create files in ``folder`` (created where missing): ``"on read-only storage"`` or
    ``"not writable by this user"``; None when it can. Found by creating a nameless temporary file there, which
    also holds for root (whom file modes do not stop) and for read-only mounts (which file modes do not show)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        if error.errno == errno.EROFS:
            return "on read-only storage"
        if error.errno in (errno.EACCES, errno.EPERM):
            return "not writable by this user"
        raise
    return None


# ---------------------------------------------------------------------------------------------- caches
def stat_fingerprint(path: Path) -> list[int]:
    """Size and mtime (ns) of a file: what changes when nnU-Net re-writes it."""
    stat = Path(path).stat()
    return [stat.st_size, stat.st_mtime_ns]


def load_cached(path: Path, key: dict[str, Any]) -> dict | None:
    """The JSON cache at ``path`` if it was stored with ``key`` (a version and what the content depends on, e.g.
    stat fingerprints), else None (missing, unreadable, another key)."""
    try:
        stored = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return stored if isinstance(stored, dict) and all(stored.get(k) == v for k, v in key.items()) else None


def store_cached(path: Path, key: dict[str, Any], content: dict[str, Any],
                 on_read_only: Callable[[OSError], None] | None = None) -> None:
    """Writes ``key`` and ``content`` to the JSON cache at ``path`` (atomically); with ``on_read_only`` an
    ``OSError`` (a read-only dataset folder) is passed to it instead of raised: the cache is then not kept."""
    try:
        atomic_write_bytes(Path(path), json.dumps({**key, **content}, indent=1, sort_keys=True).encode())
    except OSError as error:
        if on_read_only is None:
            raise
        on_read_only(error)
