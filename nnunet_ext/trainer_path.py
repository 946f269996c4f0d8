"""``nnunet_ext_trainer_path``: prints the folder of the installed trainers, for ``nnUNet_extTrainer``;
``--check`` checks the installation the way nnU-Net will use it.

    export nnUNet_extTrainer="${nnUNet_extTrainer:+$nnUNet_extTrainer:}$(nnunet_ext_trainer_path)"

(nnU-Net reads ``nnUNet_extTrainer`` as a ``:``-separated list of folders, so the line appends ours to
the trainers of other extensions instead of replacing them.)

The trainer modules are installed as the package ``nnunet_ext.trainers``; their source is the
repository's top-level ``trainers/`` folder (a ``package-dir`` mapping in ``pyproject.toml``). In an
editable install (``pip install -e``, what ``scripts/setup_env.sh`` does) the printed folder is that
source folder, from a wheel it is ``<site-packages>/nnunet_ext/trainers``. nnU-Net's lookup imports
the modules of the folder under their bare file names, so ``nnUNet_extTrainer`` names the folder,
not the package.

``--check`` reports the geodesic backend (FastGeodis or the PyTorch fallback), the nnU-Net version,
``nnUNet_extTrainer`` as nnU-Net reads it, each of our trainers as ``nnUNetv2_train -tr`` finds it
(:func:`check_trainers`) and the signatures of the nnU-Net methods our
classes override (:func:`override_problems`); one line per problem on stderr, exit status 1 if any.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import os
import pkgutil
import sys
import warnings
from pathlib import Path

from nnunet_ext.commands import add_version_argument, package_version
from nnunet_ext.errors import NnunetExtError, run_cli

EXPORT_LINE = 'export nnUNet_extTrainer="${nnUNet_extTrainer:+$nnUNet_extTrainer:}$(nnunet_ext_trainer_path)"'
#: nnU-Net releases the trainers are tested with (README, "Compatibility"); pyproject.toml allows >=2.8,<2.9
TESTED_NNUNET = ("2.8.0", "2.8.1")
#: Parameter names of every nnU-Net method that a class of nnunet-ext overrides, as nnunetv2 2.8.0 and 2.8.1 define
#: them (identical in both). An override that passes ``*args, **kwargs`` through cannot show a renamed parameter in
#: its own signature, so nnU-Net's side is compared with this record too (tests/test_nnunet_compat.py).
NNUNET_SIGNATURES: dict[tuple[str, str], tuple[str, ...]] = {
    ("nnunetv2.training.dataloading.nnunet_dataset.nnUNetDatasetBlosc2", "__init__"):
        ("self", "folder", "identifiers", "folder_with_segs_from_previous_stage"),
    ("nnunetv2.training.dataloading.nnunet_dataset.nnUNetDatasetBlosc2", "load_case"): ("self", "identifier"),
    ("nnunetv2.training.logging.nnunet_logger.LocalLogger", "__init__"): ("self", "verbose"),
    ("nnunetv2.training.logging.nnunet_logger.LocalLogger", "load_checkpoint"): ("self", "checkpoint"),
    ("nnunetv2.training.logging.nnunet_logger.LocalLogger", "plot_progress_png"): ("self", "output_folder"),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "__init__"):
        ("self", "plans", "configuration", "fold", "dataset_json", "device"),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "_build_loss"): ("self",),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "configure_optimizers"): ("self",),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "get_tr_and_val_datasets"): ("self",),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "get_training_transforms"):
        ("patch_size", "rotation_for_DA", "deep_supervision_scales", "mirror_axes", "do_dummy_2d_data_aug",
         "use_mask_for_norm", "is_cascaded", "foreground_labels", "regions", "ignore_label"),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "get_validation_transforms"):
        ("deep_supervision_scales", "is_cascaded", "foreground_labels", "regions", "ignore_label"),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "initialize"): ("self",),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "on_train_epoch_start"): ("self",),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "on_train_start"): ("self",),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "on_validation_epoch_end"): ("self", "val_outputs"),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "train_step"): ("self", "batch"),
    ("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer", "validation_step"): ("self", "batch"),
}


def trainer_folder() -> Path:
    """The folder holding the installed trainer modules (``nnunet_ext.trainers``), without importing them."""
    spec = importlib.util.find_spec("nnunet_ext.trainers")
    if spec is None or spec.origin is None:
        raise NnunetExtError("nnunet_ext.trainers is not installed; reinstall nnunet-ext (scripts/setup_env.sh, "
                             "or pip install -e /path/to/nnunet-ext)")
    return Path(spec.origin).resolve().parent


# ------------------------------------------------------------------------------ the classes we build on nnU-Net's
def _our_modules() -> list:
    """The trainer modules (as ``nnunet_ext.trainers.*``) and every module of ``nnunet_ext.training``."""
    import nnunet_ext.trainers
    import nnunet_ext.training

    modules = []
    for package in (nnunet_ext.trainers, nnunet_ext.training):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            modules.append(importlib.import_module(info.name))
    return modules


def our_trainers() -> list[str]:
    """Names of the trainer classes written in the trainer modules (not the generated budget variants)."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from nnunet_ext.budgets import ShortBudget

    return sorted({cls.__name__ for module in _our_modules() if module.__name__.startswith("nnunet_ext.trainers.")
                   for cls in vars(module).values()
                   if inspect.isclass(cls) and cls.__module__ == module.__name__ and issubclass(cls, nnUNetTrainer)
                   and not issubclass(cls, ShortBudget)})


def _function(attribute):
    return attribute.__func__ if isinstance(attribute, (staticmethod, classmethod)) else attribute


def nnunet_overrides(classes=None) -> dict[tuple[str, str], dict[str, inspect.Signature]]:
    """``{(nnU-Net class, method): {our class: our signature}}`` for every method that a class of ours (or a mixin
    of ours in its MRO: optimisers, budgets) defines over a method of an nnunetv2 class after it in the MRO.

    ``classes``: the classes to inspect (default: every class of :func:`_our_modules`)."""
    if classes is None:
        classes = [cls for module in _our_modules() for cls in vars(module).values()
                   if inspect.isclass(cls) and cls.__module__ == module.__name__]
    found: dict[tuple[str, str], dict[str, inspect.Signature]] = {}
    for cls in classes:
        mro = cls.__mro__
        for position, ours in enumerate(mro):
            if ours.__module__.startswith(("nnunetv2.", "builtins")) or ours is object:
                continue
            for name, attribute in vars(ours).items():
                if not (inspect.isfunction(attribute) or isinstance(attribute, (staticmethod, classmethod))):
                    continue
                base = next((b for b in mro[position + 1:]
                             if b.__module__.startswith("nnunetv2.") and name in vars(b)), None)
                if base is not None:
                    key = (f"{base.__module__}.{base.__qualname__}", name)
                    found.setdefault(key, {})[f"{ours.__module__}.{ours.__qualname__}"] = inspect.signature(
                        _function(attribute))
    return found


def _nnunet_signature(key: tuple[str, str]) -> inspect.Signature:
    module, _, qualname = key[0].rpartition(".")
    return inspect.signature(_function(vars(getattr(importlib.import_module(module), qualname))[key[1]]))


def override_problems(classes=None, recorded: dict | None = None) -> list[str]:
    """One line per override that no longer fits the installed nnU-Net.

    - nnU-Net's method must take the parameters recorded in :data:`NNUNET_SIGNATURES` (the release we are tested
      with), whether our override names them or passes ``*args, **kwargs`` through;
    - an override that names its parameters must start with nnU-Net's, in order; parameters of its own after
      them need defaults (nnU-Net calls the method with its own arguments only).
    """
    recorded = NNUNET_SIGNATURES if recorded is None else recorded
    problems = []
    for key, overrides in sorted(nnunet_overrides(classes).items()):
        where = f"{key[0].rpartition('.')[2]}.{key[1]}"
        theirs = tuple(_nnunet_signature(key).parameters)
        by = ", ".join(sorted(o.rpartition(".")[2] for o in overrides))
        if key not in recorded:
            problems.append(f"{where} is overridden by {by} but not recorded in "
                            "nnunet_ext.trainer_path.NNUNET_SIGNATURES (add its nnU-Net parameters there)")
        elif theirs != tuple(recorded[key]):
            problems.append(f"nnU-Net's {where}({', '.join(theirs)}) differs from ({', '.join(recorded[key])}) of the "
                            f"nnU-Net nnunet-ext was tested with ({', '.join(TESTED_NNUNET)}); overridden by {by}")
            continue
        for ours, signature in sorted(overrides.items()):
            parameters = list(signature.parameters.values())
            named = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if len(named) <= 1 and len(parameters) > len(named):  # (self,) *args, **kwargs: passed through
                continue
            names = tuple(p.name for p in parameters)
            extra = parameters[len(theirs):]
            required = [p for p in extra if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if names[:len(theirs)] != theirs or required:
                problems.append(f"{ours.rpartition('.')[2]}.{key[1]}({', '.join(names)}) does not fit nnU-Net's "
                                f"{where}({', '.join(theirs)})")
    return problems


# ------------------------------------------------------------------------------------------------- --check
def _geodesic_backend() -> tuple[str, str | None]:
    """(what computes the geodesic distances, a problem or None)."""
    if importlib.util.find_spec("FastGeodis") is None:
        return ("the PyTorch raster scan (FastGeodis is not installed; same maps, slower; "
                "pip install 'nnunet-ext[fast]' builds it: docs/getting-started.md)"), None
    try:
        import FastGeodis  # noqa: F401
    except Exception as error:  # ImportError, or an undefined symbol of a build against another torch
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return "the PyTorch raster scan (FastGeodis does not import)", (
            f"FastGeodis is installed but does not import ({first}); rebuild it against this torch: pip install "
            "--no-build-isolation --no-cache-dir --no-deps --force-reinstall 'fastgeodis>=1.0.5' (needs a C++ "
            "compiler and setuptools<81), or pip uninstall FastGeodis to use the PyTorch fallback")
    return f"FastGeodis {package_version('FastGeodis') or '(version unknown)'}", None


def check_trainers(names: list[str]) -> None:
    """Finds each trainer as ``nnUNetv2_train -tr NAME`` does (nnunetv2, then ``nnUNet_extTrainer``), so that a
    misspelt name fails at once, in one line, not after the trainers before it have trained."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    for name in names:
        try:  # nnU-Net's look-up prints every folder it searches; its imports warn of torch's deprecations
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                recursive_find_trainer_class_by_name(name)
        except (RuntimeError, AssertionError):
            searched = os.environ.get("nnUNet_extTrainer", "")
            if trainer_folder() in [Path(p).resolve() for p in searched.split(os.pathsep) if p]:
                fix = ("check the name against the README's trainer table (each trainer also with every budget suffix "
                       "of nnunet_ext/budgets.py)")
            else:
                fix = ("nnunet-ext's trainers are found after: export "
                       f'nnUNet_extTrainer="${{nnUNet_extTrainer:+$nnUNet_extTrainer:}}{trainer_folder()}"')
            raise NnunetExtError(
                f"trainer {name} not found in nnunetv2 or nnUNet_extTrainer ({searched or 'not set'}); {fix}") from None


def _looks_like_our_trainers(folder: Path) -> bool:
    return (folder / "nnUNetTrainerSiNGR.py").is_file() and (folder / "nnUNetTrainerGSL.py").is_file()


def check() -> list[str]:
    """Prints what nnU-Net will use; returns the problems, one line each."""
    problems: list[str] = []
    ours = trainer_folder()
    print(f"nnunet-ext {package_version() or 'unknown (not installed)'}, trainer folder {ours}")

    nnunet = package_version("nnunetv2")
    if nnunet is None:
        problems.append("nnunetv2 is not installed; pip install 'nnunetv2>=2.8,<2.9'")
    else:
        tested = "tested" if nnunet in TESTED_NNUNET else f"NOT tested (tested: {', '.join(TESTED_NNUNET)})"
        print(f"nnU-Net: nnunetv2 {nnunet}, {tested}")
    backend, problem = _geodesic_backend()
    print(f"geodesic distances (SiNG, GeoLS maps): {backend}")
    problems += [problem] if problem else []

    value = os.environ.get("nnUNet_extTrainer")  # what nnunetv2.paths.nnUNet_extTrainer.get() returns
    folders = [Path(p) for p in (value or "").split(os.pathsep) if p.strip()]
    print(f"nnUNet_extTrainer: {value!r}" if value is not None else "nnUNet_extTrainer: not set")
    for index, folder in enumerate(folders, 1):
        resolved = folder.resolve() if folder.exists() else None
        note = ("nnunet-ext's trainers (this installation)" if resolved == ours else
                "does not exist" if resolved is None else
                "another copy of nnunet-ext's trainers" if _looks_like_our_trainers(resolved) else "another extension")
        print(f"  searched {index}. {folder}: {note}")
        if resolved is None:
            problems.append(f"nnUNet_extTrainer names {folder}, which does not exist (nnU-Net skips it)")
        elif resolved != ours and _looks_like_our_trainers(resolved):
            problems.append(f"nnUNet_extTrainer names {folder}, another copy of nnunet-ext's trainers: nnU-Net takes "
                            f"each trainer from the first folder that has it; keep only {ours}")
    if ours not in [f.resolve() for f in folders if f.exists()]:
        problems.append(f"nnUNet_extTrainer {'is not set' if value is None else 'does not name ' + str(ours)}, so "
                        f"nnU-Net does not find nnunet-ext's trainers; run: {EXPORT_LINE}")
    elif nnunet is not None:
        names = our_trainers()
        missing = 0
        for name in names:
            try:
                check_trainers([name])
            except NnunetExtError as error:
                missing += 1
                problems.append(str(error))
        print(f"trainers found by nnU-Net's look-up (as nnUNetv2_train -tr): {len(names) - missing} of {len(names)} "
              f"({', '.join(names)}; each also with the budget suffixes of nnunet_ext/budgets.py)")
    if nnunet is not None:
        signature_problems = override_problems()
        print(f"nnU-Net methods our trainers override: {len(NNUNET_SIGNATURES)}, "
              + ("parameters as in the tested nnU-Net" if not signature_problems else
                 f"{len(signature_problems)} changed"))
        problems += signature_problems
    return problems


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="nnunet_ext_trainer_path",
        description=f"Print the folder of nnunet-ext's trainers, for: {EXPORT_LINE}",
    )
    parser.add_argument("--check", action="store_true",
                        help="check the installation as nnU-Net will use it: geodesic backend (FastGeodis or the "
                             "PyTorch fallback), nnU-Net version, nnUNet_extTrainer, every trainer found by nnU-Net's "
                             "look-up, the signatures of the nnU-Net methods we override; exit 1 with one line per "
                             "problem on stderr")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    if not args.check:
        print(trainer_folder())
        return 0
    problems = check()
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{len(problems)} problem(s)" if problems else "ok: nnU-Net will find and run nnunet-ext's trainers",
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def main(argv=None) -> int:
    status = 0

    def body(arguments):
        nonlocal status
        status = _main(arguments)

    return run_cli(body, argv) or status


if __name__ == "__main__":
    raise SystemExit(main())
