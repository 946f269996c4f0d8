"""``nnunet_ext_trainer_path``: prints the folder of the installed trainers, the value of ``nnUNet_extTrainer``.

    export nnUNet_extTrainer=$(nnunet_ext_trainer_path)

The trainer modules are installed as the package ``nnunet_ext.trainers``; their source is the
repository's top-level ``trainers/`` folder (a ``package-dir`` mapping in ``pyproject.toml``). In an
editable install (``pip install -e``, what ``scripts/setup_env.sh`` does) the printed folder is that
source folder, from a wheel it is ``<site-packages>/nnunet_ext/trainers``. nnU-Net's lookup imports
the modules of the folder under their bare file names, so ``nnUNet_extTrainer`` names the folder,
not the package.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from nnunet_ext.errors import NnunetExtError, run_cli


def trainer_folder() -> Path:
    """The folder holding the installed trainer modules (``nnunet_ext.trainers``), without importing them."""
    spec = importlib.util.find_spec("nnunet_ext.trainers")
    if spec is None or spec.origin is None:
        raise NnunetExtError("nnunet_ext.trainers is not installed; reinstall nnunet-ext (scripts/setup_env.sh, "
                             "or pip install -e /path/to/nnunet-ext)")
    return Path(spec.origin).resolve().parent


def _main(argv=None) -> None:
    argparse.ArgumentParser(
        prog="nnunet_ext_trainer_path",
        description="Print the folder of nnunet-ext's trainers, for: export nnUNet_extTrainer=$(nnunet_ext_trainer_path)",
    ).parse_args(argv)
    print(trainer_folder())


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
