"""The nnU-Net folders (``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``) and dataset ids.

nnU-Net reads these environment variables when ``nnunetv2.paths`` is first imported; we read them
at call time instead so that a missing variable becomes a one-line error naming the fix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.trainer_path import trainer_folder

NNUNET_FOLDER_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
#: nnU-Net's default plans identifier (``-p`` of its commands)
PLANS = "nnUNetPlans"
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
