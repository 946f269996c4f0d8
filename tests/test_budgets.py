"""Budgets declared once (nnunet_ext/budgets.py): every trainer of trainers/ has every budget, found by name."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.budgets import BUDGETS, SAVE_EVERY, ShortBudget, add_budget_variants

TRAINERS = Path(__file__).resolve().parents[1] / "trainers"


@pytest.fixture(scope="module")
def trainer_modules():
    sys.path.insert(0, str(TRAINERS))
    try:
        yield {p.stem: importlib.import_module(p.stem) for p in sorted(TRAINERS.glob("*.py"))}
    finally:
        sys.path.remove(str(TRAINERS))


def _base_trainers(module) -> list[type]:
    return [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, nnUNetTrainer)
            and not issubclass(v, ShortBudget) and (v.__module__ == module.__name__ or v is nnUNetTrainer)]


def test_every_trainer_has_every_budget(trainer_modules):
    checked = 0
    for module in trainer_modules.values():
        for trainer in _base_trainers(module):
            if trainer is nnUNetTrainer and module.__name__ != "nnUNetTrainer_short":
                continue
            for suffix, ((epochs, iterations, validation), _) in BUDGETS.items():
                variant = getattr(module, trainer.__name__ + suffix)
                assert issubclass(variant, trainer) and variant.budget == (epochs, iterations, validation)
                assert variant.__module__ == module.__name__ and variant.__qualname__ == variant.__name__
                checked += 1
    assert checked >= 20 * len(BUDGETS)  # every method and its variants


def test_variant_sets_the_budget_and_keeps_nnunets_signature():
    class Base:
        def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
            self.num_epochs = 1000

    namespace = {"__name__": "example_module"}
    added = add_budget_variants(namespace, [Base])
    assert added == [f"Base{suffix}" for suffix in BUDGETS]
    variant = namespace["Base_10epochs_20iters"]
    trainer = variant({}, "2d", 0, {}, torch.device("cpu"))
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (10, 20, 5)
    assert trainer.save_every == SAVE_EVERY == 5  # checkpoint_latest every 5 epochs, not nnU-Net's 50
    assert list(inspect.signature(variant.__init__).parameters) == list(inspect.signature(nnUNetTrainer.__init__).parameters)


def test_nnunet_finds_a_generated_variant_by_name(monkeypatch):
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    monkeypatch.setenv("nnUNet_extTrainer", str(TRAINERS))
    found = recursive_find_trainer_class_by_name("nnUNetTrainerGSL_cosine_80epochs_20iters")
    assert found.__name__ == "nnUNetTrainerGSL_cosine_80epochs_20iters" and found.budget == BUDGETS[
        "_80epochs_20iters"][0]
