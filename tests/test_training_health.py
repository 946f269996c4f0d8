"""The training-health guard (nnunet_ext/training/health.py): wrong-side saturation, collapse warning, NaN stop."""

from __future__ import annotations

import hashlib
import inspect
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from nnunet_ext.training.health import (
    SATURATED_Q,
    SATURATED_TANH_INPUT,
    collapsed_regions,
    declared_saturating_activation,
    nnUNetTrainerWithHealthGuard,
    wrong_side_saturation,
)
from nnunet_ext.training.loss_adapters.distance import PROBABILITIES
from nnunet_ext.training.loss_adapters.signed_map import SignedMapRegression

TANH = SignedMapRegression.saturating_activation


def test_threshold_is_one_percent_of_the_activation_slope():
    assert 4 * SATURATED_Q * (1 - SATURATED_Q) == pytest.approx(0.01)
    assert 1 - math.tanh(SATURATED_TANH_INPUT) ** 2 == pytest.approx(0.01)
    # tanh's q = sigmoid(2 v) crosses the threshold exactly at v = -atanh(sqrt(0.99)) = -2.99
    q = TANH.foreground_scores(torch.tensor([-SATURATED_TANH_INPUT]).view(1, 1, 1, 1), True)
    assert float(q) == pytest.approx(SATURATED_Q)


def test_wrong_side_saturation_counts_on_hand_inputs():
    # regions, tanh head: v = -5 (saturated, wrong side), -1 (wrong side, not saturated), 3 (right side)
    v = torch.tensor([-5.0, -1.0, 3.0, -6.0]).view(1, 1, 4, 1)
    seg = torch.tensor([1.0, 1.0, 1.0, 0.0]).view(1, 1, 4, 1)  # the -6 voxel is background
    saturated, foreground = wrong_side_saturation(v, seg, TANH, True, None)
    assert saturated.tolist() == [1] and foreground.tolist() == [3]
    # regions with nnU-Net's ignore channel appended: the ignored voxels (here the -5 one) do not count
    seg = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]).view(1, 2, 4, 1)
    saturated, foreground = wrong_side_saturation(v, seg, TANH, True, 3)
    assert saturated.tolist() == [0] and foreground.tolist() == [2]
    # labels, tanh head: v = z_1 - z_0
    z = torch.tensor([[4.0, 0.0], [0.0, 0.0]]).view(1, 2, 2, 1)  # voxel 0: v = -4, voxel 1: v = 0
    seg = torch.tensor([1, 1]).view(1, 1, 2, 1)
    assert wrong_side_saturation(z, seg, TANH, False, None)[0].tolist() == [1]
    # labels, softmax: class 1 at probability e^-10 / (1 + e^-10) is saturated; ignored voxels do not count
    z = torch.tensor([[10.0, 10.0, 0.0], [0.0, 0.0, 0.0]]).view(1, 2, 3, 1)
    seg = torch.tensor([1, 2, 1]).view(1, 1, 3, 1)  # label 2 is the ignore label
    saturated, foreground = wrong_side_saturation(z, seg, PROBABILITIES, False, 2)
    assert saturated.tolist() == [1] and foreground.tolist() == [2]


def test_collapse_needs_dice_zero_and_saturation_in_every_recent_epoch():
    collapsed = ([0.8, 0.0], [0.0, 0.9])
    assert collapsed_regions([collapsed] * 2, 3) == []
    assert collapsed_regions([collapsed] * 3, 3) == [1]
    assert collapsed_regions([collapsed, ([0.8, 0.1], [0.0, 0.9]), collapsed, collapsed], 3) == []
    assert collapsed_regions([([0.8, 0.0], [0.0, 0.4])] * 3, 3) == []  # empty but not saturated
    assert collapsed_regions([([0.8, 0.0], [0.0, float("nan")])] * 3, 3) == []  # no foreground seen


# ----------------------------------------------------------------------- a real trainer, in process
class _GuardedTrainer(nnUNetTrainerWithHealthGuard):
    """nnU-Net's loss and network with the guard's saturation measure on the softmax probabilities."""

    collapse_alternative = "nnUNetTrainerExample"

    def _build_loss(self):
        loss = super()._build_loss()
        loss.loss.saturating_activation = PROBABILITIES  # declared inside nnU-Net's deep-supervision wrapper
        return loss


@pytest.fixture
def guarded_trainer(initialized_trainer):
    return initialized_trainer(_GuardedTrainer, "binary")


def _batch(trainer, data_value: float | None = None) -> dict:
    """A batch of the trainer's patch size: a cube of label 1 in the middle, seg per deep-supervision scale."""
    patch = tuple(trainer.configuration_manager.patch_size)
    torch.manual_seed(0)
    data = torch.randn(2, trainer.num_input_channels, *patch)
    if data_value is not None:
        data[0, 0, 0, 0, 0] = data_value
    seg = torch.zeros(2, 1, *patch)
    seg[(slice(None), slice(None), *(slice(s // 4, 3 * s // 4) for s in patch))] = 1
    targets = [F.interpolate(seg, size=tuple(max(1, round(p * f)) for p, f in zip(patch, scale)), mode="nearest")
               for scale in trainer._get_deep_supervision_scales()]
    return {"data": data, "target": targets, "keys": ["case_a", "case_b"]}


def _validate_epochs(trainer, batch, epochs: int) -> str:
    trainer.on_validation_epoch_start()
    for epoch in range(epochs):
        trainer.current_epoch = epoch
        with torch.no_grad():
            outputs = [trainer.validation_step(batch)]
        trainer.on_validation_epoch_end(outputs)
    return Path(trainer.log_file).read_text()


def _set_output_bias(trainer, background: float, foreground: float) -> None:
    for layer in trainer.network.decoder.seg_layers:
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor([background, foreground]))


def test_saturated_outputs_trigger_one_collapse_warning(guarded_trainer):
    _set_output_bias(guarded_trainer, 20.0, -20.0)  # every voxel confidently background
    log = _validate_epochs(guarded_trainer, _batch(guarded_trainer), 4)
    fractions = guarded_trainer.logger.local_logger.my_fantastic_logging["wrong_side_saturated"]
    assert fractions == [[1.0]] * 4
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "has collapsed" in warnings[0] and "nnUNetTrainerExample" in warnings[0]
    assert "pseudo-Dice 0 for 3 epochs with 100 % of its foreground saturated" in warnings[0]


def test_healthy_outputs_print_no_warning(guarded_trainer):
    log = _validate_epochs(guarded_trainer, _batch(guarded_trainer), 4)  # nnU-Net's initialisation: not saturated
    assert "wrong-side saturated foreground" in log  # the measure is logged every epoch
    assert "WARNING" not in log and "STOPPED" not in log
    assert guarded_trainer.logger.local_logger.my_fantastic_logging["wrong_side_saturated"][-1][0] < 0.01
    import matplotlib.pyplot as plt

    tight_layout = plt.tight_layout
    guarded_trainer.logger.plot_progress_png(guarded_trainer.output_folder)  # draws the measure without error
    assert (Path(guarded_trainer.output_folder) / "progress.png").is_file()
    assert plt.tight_layout is tight_layout  # pyplot's function is back


def test_progress_png_curves_rely_on_nnunet_2_8_1s_plot_progress_png():
    """CurvesLocalLogger draws into nnU-Net's figure just before its one tight_layout call: a changed
    plot_progress_png (an nnU-Net upgrade) must be re-read before this hash is updated."""
    from nnunetv2.training.logging.nnunet_logger import LocalLogger

    source = inspect.getsource(LocalLogger.plot_progress_png)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == "2263f9df8da44479", (
        "nnU-Net's LocalLogger.plot_progress_png differs from 2.8.1's: check that it still calls "
        "plt.tight_layout once, after drawing an axis labelled 'learning rate' (nnunet_ext/training/progress_logger.py)")


def test_nan_input_stops_the_run_with_one_line(guarded_trainer, capsys):
    guarded_trainer.on_train_epoch_start()
    guarded_trainer.train_step(_batch(guarded_trainer))  # a finite step passes
    with pytest.raises(SystemExit) as stopped:
        guarded_trainer.train_step(_batch(guarded_trainer, data_value=float("inf")))
    assert stopped.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "training loss nan in epoch 0, iteration 1" in lines[0] and "cases case_a, case_b" in lines[0]
    assert "non-finite values" in lines[0] and "nnUNetv2_plan_and_preprocess" in lines[0]
    assert "STOPPED" in Path(guarded_trainer.log_file).read_text()


def test_diverged_weights_name_the_optimiser(guarded_trainer, capsys):
    with torch.no_grad():
        next(guarded_trainer.network.parameters()).fill_(float("nan"))
    guarded_trainer.on_train_epoch_start()
    with pytest.raises(SystemExit):
        guarded_trainer.train_step(_batch(guarded_trainer))
    line = capsys.readouterr().err.strip()
    assert "inputs are finite" in line and "lower the learning rate (e.g. nnUNetTrainerExample)" in line


def test_non_finite_validation_loss_stops_at_the_end_of_the_epoch(guarded_trainer, capsys):
    with torch.no_grad():
        next(guarded_trainer.network.parameters()).fill_(float("nan"))
    with pytest.raises(SystemExit):
        _validate_epochs(guarded_trainer, _batch(guarded_trainer), 1)
    assert "validation loss nan in epoch 0" in capsys.readouterr().err
    assert np.isnan(guarded_trainer.logger.local_logger.my_fantastic_logging["val_losses"][-1])


def test_every_plugin_trainer_is_guarded():
    """Every trainer of trainers/ (nnU-Net's own default aside) has the guard; the saturating losses measure."""
    import importlib
    import sys

    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    folder = Path(__file__).resolve().parents[1] / "trainers"
    sys.path.insert(0, str(folder))
    try:
        modules = [importlib.import_module(p.stem) for p in sorted(folder.glob("nnUNetTrainer*.py"))]
    finally:
        sys.path.remove(str(folder))
    trainers = {name: value for module in modules for name, value in vars(module).items()
                if isinstance(value, type) and issubclass(value, nnUNetTrainer) and value.__module__ == module.__name__}
    unguarded = sorted(n for n, t in trainers.items()
                       if not issubclass(t, nnUNetTrainerWithHealthGuard) and not n.startswith("nnUNetTrainer_"))
    assert unguarded == [] and len(trainers) > 50

    def measured_activation(name: str, has_regions: bool, build: str) -> str | None:
        """The saturating activation the guard finds in trainer ``name``'s loss at one scale (built on a bare
        instance: these losses need only the dataset's label handling)."""
        trainer = object.__new__(trainers[name])
        trainer.label_manager = SimpleNamespace(has_regions=has_regions, ignore_label=None)
        trainer.configuration_manager = SimpleNamespace(batch_dice=False)
        trainer.enable_deep_supervision = False  # LS: the per-scale loss, without nnU-Net's wrapper
        trainer.class_weighted = False  # GSL: no voxel counts from a dataset
        activation = declared_saturating_activation(getattr(trainer, build)())
        return None if activation is None else activation.name

    for has_regions in (False, True):
        for name in ("nnUNetTrainerSiNGR", "nnUNetTrainerSiNGR_L1", "nnUNetTrainerSiNGR_nnUNetSGD"):
            assert measured_activation(name, has_regions, "build_map_loss") == "tanh"
        for name in ("nnUNetTrainerRRW", "nnUNetTrainerGeoLS_JML"):
            assert measured_activation(name, has_regions, "build_map_loss") == "probabilities"
        assert measured_activation("nnUNetTrainerLS_JML", has_regions, "_build_loss") == "probabilities"
        assert measured_activation("nnUNetTrainerGeoLS", has_regions, "build_map_loss") is None  # cross-entropy
        for name in ("nnUNetTrainerGSL", "nnUNetTrainerBoundary"):  # beside nnU-Net's Dice + CE, which keeps a gradient
            assert measured_activation(name, has_regions, "distance_term") is None
