"""Training budgets: short variants of every nnU-Net trainer of this plugin, declared once.

nnU-Net's own ``nnUNetTrainer_Xepochs`` variants shorten the number of epochs but keep 250
iterations per epoch, which is still hours on a CPU. Here each budget is one line of
:data:`BUDGETS` (epochs, training iterations per epoch, validation iterations per epoch), and each
trainer module in ``trainers/`` ends with ``add_budget_variants(globals())``, which defines
``<Trainer><suffix>`` for every trainer class of that module and every budget, e.g.
``nnUNetTrainerSiNGR_10epochs_20iters``. The variants are ordinary module-level classes, so
``nnUNetv2_train -tr``, ``--c`` (resume) and ``nnUNetv2_predict -tr`` find them by name like any
hand-written trainer. A new budget is one line here; a new trainer gets every budget by itself.

The learning-rate schedule (nnU-Net's poly decay) follows ``num_epochs``, so a short run still ends
at a small learning rate. nnU-Net writes ``checkpoint_latest.pth`` every 50 epochs, which a short budget
would never reach before its end: the variants write it every :data:`SAVE_EVERY` epochs, so a run killed
mid-way resumes (``--c``) losing at most that many epochs.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

#: suffix -> (epochs, training iterations per epoch, validation iterations per epoch) and what it is for
BUDGETS: dict[str, tuple[tuple[int, int, int], str]] = {
    "_1epoch_2iters": ((1, 2, 1), "smoke tests"),
    "_4epochs_20iters": ((4, 20, 5), "the test suite's learning checks (tests/conftest.py)"),
    "_10epochs_20iters": ((10, 20, 5), "the README demo"),
    "_80epochs_20iters": ((80, 20, 5), "the converging CPU quality benchmark (docs/results/quality_cpu.md)"),
    "_50epochs_20iters": ((50, 20, 5), "the real-data CPU benchmark (docs/results/quality_real.md)"),
    "_50epochs_100iters": ((50, 100, 20), "the GPU quality benchmark"),
}


#: epochs between two ``checkpoint_latest.pth`` of a budget variant (nnU-Net's ``save_every`` is 50)
SAVE_EVERY = 5


class ShortBudget:
    """Mixin that sets ``num_epochs`` / ``num_iterations_per_epoch`` / ``num_val_iterations_per_epoch``.

    Its ``__init__`` keeps nnU-Net's exact signature: the base trainer rebuilds its init arguments
    from the signature of ``self.__init__`` to re-create itself from a checkpoint.
    """

    #: (epochs, training iterations per epoch, validation iterations per epoch)
    budget: tuple[int, int, int]

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = self.budget
        self.save_every = SAVE_EVERY


def budget_variant(trainer: type, suffix: str, module: str) -> type:
    """``<trainer><suffix>``: ``trainer`` with the budget of ``BUDGETS[suffix]``, defined in ``module``."""
    (epochs, iterations, validation), purpose = BUDGETS[suffix]
    name = trainer.__name__ + suffix
    return type(name, (ShortBudget, trainer), {
        "budget": (epochs, iterations, validation),
        "__module__": module,
        "__qualname__": name,
        "__doc__": f"{trainer.__name__} for {purpose}: {epochs} epochs x {iterations} iterations "
                   f"(+ {validation} validation iterations per epoch).",
    })


def add_budget_variants(namespace: dict, trainers: Iterable[type] | None = None) -> list[str]:
    """Adds every budget variant of ``trainers`` to a trainer module's ``namespace`` (its ``globals()``).

    ``trainers`` defaults to the nnU-Net trainer classes defined in that module (imported ones are
    left to their own module). Returns the names added.
    """
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    module = namespace["__name__"]
    if trainers is None:
        trainers = [value for value in list(namespace.values())
                    if isinstance(value, type) and issubclass(value, nnUNetTrainer) and value.__module__ == module
                    and not issubclass(value, ShortBudget)]
    added = []
    for trainer in trainers:
        for suffix in BUDGETS:
            variant = budget_variant(trainer, suffix, module)
            namespace[variant.__name__] = variant
            added.append(variant.__name__)
    return added
