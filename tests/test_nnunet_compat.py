"""The nnU-Net methods our classes override still take the installed nnU-Net's parameters.

Our trainers (and their mixins: optimisers, budgets, the health guard), the dataset that carries the maps and
the progress logger override methods of nnunetv2 classes. nnU-Net calls them with its own arguments, so a
parameter that nnU-Net renames or adds breaks them, often only at run time (nnU-Net's development branch has
renamed an argument of ``load_checkpoint`` since 2.8.1). ``nnunet_ext.trainer_path`` finds every such override
(``nnunet_overrides``) and compares it with the installed nnU-Net and with the parameters recorded for the tested
releases (``NNUNET_SIGNATURES``; ``nnunet_ext_trainer_path --check`` runs the same comparison for users).
"""

from __future__ import annotations

import inspect
import re
from importlib import metadata
from pathlib import Path

import pytest
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainer_path import NNUNET_SIGNATURES, TESTED_NNUNET, nnunet_overrides, override_problems

REPO = Path(__file__).resolve().parents[1]
TRAINER = "nnunetv2.training.nnUNetTrainer.nnUNetTrainer.nnUNetTrainer"


def test_every_override_takes_the_installed_nnunets_parameters():
    assert override_problems() == []


def test_the_record_lists_exactly_the_methods_we_override():
    found = nnunet_overrides()
    assert set(found) == set(NNUNET_SIGNATURES), "record a new override's nnU-Net parameters in NNUNET_SIGNATURES"
    # overrides reached through mixins and generated classes are found too
    assert "nnunet_ext.budgets.ShortBudget" in found[(TRAINER, "__init__")]  # every budget variant's __init__
    assert "nnunet_ext.training.optimizers.AdamWithPolyDecay" in found[(TRAINER, "configure_optimizers")]
    assert "nnunet_ext.training.map_trainer.nnUNetTrainerWithTargetMaps" in found[(TRAINER, "train_step")]


def test_the_installed_nnunet_is_a_tested_release_that_pyproject_allows():
    version = metadata.version("nnunetv2")
    assert version in TESTED_NNUNET, f"nnunetv2 {version} is not among the tested releases {TESTED_NNUNET}"
    requirement = next(r for r in metadata.requires("nnunet-ext") if re.match(r"nnunetv2\b", r))
    specifier = pytest.importorskip("packaging.requirements").Requirement(requirement).specifier
    assert all(specifier.contains(v) for v in TESTED_NNUNET), f"{requirement} excludes a tested release"
    readme = (REPO / "README.md").read_text()
    assert all(f"{v}" in readme.split("## Compatibility", 1)[1].split("\n## ", 1)[0] for v in TESTED_NNUNET)


def test_a_changed_parameter_is_named():
    class Renamed(nnUNetTrainer):
        def train_step(self, data):
            return data

    class Extra(nnUNetTrainer):
        def train_step(self, batch, scale):
            return batch

    class ExtraWithDefault(nnUNetTrainer):
        def train_step(self, batch, scale=1.0):
            return batch

    class PassedThrough(nnUNetTrainer):
        def train_step(self, *args, **kwargs):
            return super().train_step(*args, **kwargs)

    name = f"{__name__}.test_a_changed_parameter_is_named.<locals>"
    assert override_problems([Renamed]) == [
        "Renamed.train_step(self, data) does not fit nnU-Net's nnUNetTrainer.train_step(self, batch)"]
    assert override_problems([Extra]) == [
        "Extra.train_step(self, batch, scale) does not fit nnU-Net's nnUNetTrainer.train_step(self, batch)"]
    assert override_problems([ExtraWithDefault]) == []
    assert override_problems([PassedThrough]) == []
    assert set(nnunet_overrides([PassedThrough])[(TRAINER, "train_step")]) == {f"{name}.PassedThrough"}
    # nnU-Net's own method changed: named even where our override passes everything through
    changed = {(TRAINER, "train_step"): ("self", "data_dict")}
    assert override_problems([PassedThrough], recorded=changed) == [
        "nnU-Net's nnUNetTrainer.train_step(self, batch) differs from (self, data_dict) of the nnU-Net nnunet-ext was "
        f"tested with ({', '.join(TESTED_NNUNET)}); overridden by PassedThrough"]
    assert "not recorded in nnunet_ext.trainer_path.NNUNET_SIGNATURES" in override_problems([PassedThrough], recorded={})[0]


def test_recorded_parameters_are_the_installed_ones():
    """The record is what this nnU-Net defines (the overrides' check above compares ours with the installed one)."""
    import importlib

    for (qualified, method), parameters in NNUNET_SIGNATURES.items():
        module, _, name = qualified.rpartition(".")
        function = vars(getattr(importlib.import_module(module), name))[method]
        function = getattr(function, "__func__", function)
        assert tuple(inspect.signature(function).parameters) == parameters, (qualified, method)
