"""The optimiser mixins: Adam 1e-3 (SiNGR's and RRW's default), the SiNGR paper's Adam 1e-4, nnU-Net's SGD."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import nn

from nnunet_ext.budgets import ShortBudget
from nnunet_ext.training.optimizers import AdamWithPolyDecay, NnUNetSGD, PaperAdam, RRWAuthorsAdam

REPO = Path(__file__).resolve().parents[1]


class _StandInTrainer:
    """The attributes of nnUNetTrainer that configure_optimizers reads, with nnU-Net's defaults."""

    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        self.initial_lr, self.weight_decay, self.num_epochs = 1e-2, 3e-5, 10
        self.network, self.device = nn.Conv2d(1, 2, 3), device


class _Trainer(ShortBudget, PaperAdam, _StandInTrainer):
    budget = (4, 2, 1)


def test_adam_with_the_papers_rate_and_weight_decay():
    trainer = _Trainer({}, "2d", 0, {}, torch.device("cpu"))
    assert (trainer.initial_lr, trainer.weight_decay) == (1e-4, 1e-5)  # what nnU-Net logs and saves
    optimizer, scheduler = trainer.configure_optimizers()
    assert type(optimizer) is torch.optim.Adam
    group = optimizer.param_groups[0]
    assert group["weight_decay"] == 1e-5 and group["amsgrad"] is False
    # nnU-Net's poly decay over the (short) budget's 4 epochs: lr_t = 1e-4 * (1 - t / 4) ** 0.9
    for epoch in range(4):
        scheduler.step(epoch)
        assert group["lr"] == pytest.approx(1e-4 * (1 - epoch / 4) ** 0.9)


@pytest.mark.parametrize("mixin, lr, weight_decay", [(AdamWithPolyDecay, 1e-3, 1e-5), (RRWAuthorsAdam, 1e-4, 3e-5)])
def test_other_adam_settings(mixin, lr, weight_decay):
    class Trainer(ShortBudget, mixin, _StandInTrainer):
        budget = (4, 2, 1)

    trainer = Trainer({}, "2d", 0, {}, torch.device("cpu"))
    optimizer, _ = trainer.configure_optimizers()
    assert type(optimizer) is torch.optim.Adam and (trainer.initial_lr, trainer.weight_decay) == (lr, weight_decay)
    assert optimizer.param_groups[0]["lr"] == lr and optimizer.param_groups[0]["weight_decay"] == weight_decay


def test_fused_adam_takes_the_steps_of_the_per_tensor_loop():
    trainer = _Trainer({}, "2d", 0, {}, torch.device("cpu"))
    fused, _ = trainer.configure_optimizers()
    assert fused.param_groups[0]["fused"] is True
    network = trainer.network
    reference_network = nn.Conv2d(1, 2, 3)
    reference_network.load_state_dict(network.state_dict())
    loop = torch.optim.Adam(reference_network.parameters(), lr=trainer.initial_lr, weight_decay=trainer.weight_decay,
                            foreach=False)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        image = torch.randn(2, 1, 8, 8, generator=generator)
        for model, optimizer in ((network, fused), (reference_network, loop)):
            optimizer.zero_grad()
            model(image).square().mean().backward()
            optimizer.step()
    for ours, reference in zip(network.parameters(), reference_network.parameters()):
        torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7)


def test_nnunet_sgd_restores_nnunets_optimiser_and_values():
    class Trainer(NnUNetSGD, AdamWithPolyDecay, _StandInTrainer):
        pass

    class Plain(nnUNetTrainer):
        def __init__(self):  # only what configure_optimizers reads; nnU-Net's own defaults come from its source
            self.network, self.num_epochs = nn.Conv2d(1, 2, 3), 10

    trainer = Trainer({}, "2d", 0, {}, torch.device("cpu"))
    source = inspect.getsource(nnUNetTrainer.__init__)
    for name in ("initial_lr", "weight_decay"):
        assert float(re.search(rf"self\.{name} = ([0-9.e-]+)", source)[1]) == getattr(trainer, name)
    optimizer, _ = trainer.configure_optimizers()
    plain = Plain()
    plain.initial_lr, plain.weight_decay = trainer.initial_lr, trainer.weight_decay
    reference, _ = plain.configure_optimizers()
    assert type(optimizer) is type(reference) is torch.optim.SGD
    keys = ("lr", "momentum", "nesterov", "weight_decay")
    assert {k: optimizer.param_groups[0][k] for k in keys} == {k: reference.param_groups[0][k] for k in keys}


@pytest.mark.parametrize("mixin", [AdamWithPolyDecay, PaperAdam, NnUNetSGD])
def test_keeps_nnunets_init_signature(mixin):
    """nnU-Net rebuilds a trainer from the names of its __init__ parameters (checkpoints, --c)."""
    expected = list(inspect.signature(nnUNetTrainer.__init__).parameters)
    assert list(inspect.signature(mixin.__init__).parameters) == expected


def test_nnunet_builds_the_paper_adam_trainer_with_adam(initialized_trainer):
    """nnU-Net's own initialize() of the PaperAdam trainer (found by name, as nnUNetv2_train finds it) ends with
    Adam at the paper's rate: the mixin order of the trainer class keeps it."""
    trainer = initialized_trainer("nnUNetTrainerSiNGR_PaperAdam_1epoch_2iters", "2d")
    assert type(trainer.optimizer) is torch.optim.Adam
    assert trainer.optimizer.param_groups[0]["lr"] == 1e-4 and trainer.optimizer.param_groups[0]["weight_decay"] == 1e-5
