"""Training-health guard of every trainer of this plugin: a non-finite loss stops the run, a collapse is named.

Before training, :meth:`~nnUNetTrainerWithHealthGuard.check_before_training` (every channel of every
preprocessed case finite; trainers with maps also compute and check them) stops a run that cannot
train with one line. During training two checks, from what nnU-Net computes anyway (no extra forward
passes):

- **non-finite loss**: a training step whose loss is NaN or inf stops the run at once with one line
  (epoch, iteration, the cases of the batch, the likely cause and the fix); a non-finite validation
  loss stops it at the end of the epoch. nnU-Net's own trainer logs ``train_loss nan``, saves
  checkpoints and exits 0.
- **wrong-side saturation** (trainers whose loss is linear in a saturating activation: SiNGR's
  ``tanh``, RRW's and JML's sigmoid / softmax; the loss declares it,
  :mod:`nnunet_ext.training.loss_adapters.saturation`): on nnU-Net's validation batches, per
  region or class, the fraction of reference-foreground voxels whose activation sits on the background
  side with a slope below 1 % of its maximum. The loss gradient carries that slope as a factor, so such
  a voxel barely trains, and the 0-threshold predicts nothing there. With ``q`` the activation scaled to
  (0, 1) for the true class (``(1 + tanh v) / 2 = sigmoid(2 v)``, ``sigmoid(z)``, ``softmax(z)_k``), the
  slope relative to its maximum is ``4 q (1 - q)``; saturated on the wrong side means
  ``q < (1 - sqrt(0.99)) / 2`` (for tanh: ``v < -atanh(sqrt(0.99)) = -2.99``, the measure of
  ``nnunet_ext_benchmark saturation``). The fraction per region (under nnU-Net's DDP, ``-num_gpus``, over
  every process's validation batches, as its pseudo-Dice) is written to the training log, logged as
  ``wrong_side_saturated`` (in the checkpoint's logging) and drawn in ``progress.png``. A region whose
  pseudo-Dice is 0 while more than half of its foreground is saturated on the wrong side for
  ``collapse_epochs`` epochs in a row gets one warning line naming the cause and the trainer to use.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch import distributed as dist
from torch import nn

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.image_check import check_trainer_images
from nnunet_ext.labels import region_name, unrecoverable_regions
from nnunet_ext.training.loss_adapters.saturation import SaturatingActivation
from nnunet_ext.training.loss_adapters.seg_targets import one_hot_target
from nnunet_ext.training.progress_logger import CurvesLocalLogger

#: activation values q (scaled to (0, 1)) below this are saturated on the background side: 4 q (1 - q) < 0.01
SATURATED_Q = (1.0 - math.sqrt(0.99)) / 2.0
#: |v| beyond which tanh'(v) < 0.01 (the same threshold on tanh's input)
SATURATED_TANH_INPUT = math.atanh(math.sqrt(0.99))


def wrong_side_saturation(output: torch.Tensor, seg: torch.Tensor, activation: SaturatingActivation,
                          has_regions: bool, ignore_label: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per region / foreground class: (reference voxels with ``q < SATURATED_Q``, reference voxels), over batch
    and space; ``q`` the loss's ``activation.foreground_scores`` of ``output`` (B, C, *), the reference and the
    ignore-label mask nnU-Net's ``seg`` as the losses read it (:func:`one_hot_target`)."""
    scores = activation.foreground_scores(output, has_regions)
    target, valid = one_hot_target(seg, output.shape[1], has_regions, ignore_label)
    reference = (target if has_regions else target[:, 1:]).bool()
    inside = reference if valid is None else reference & valid
    axes = [0, *range(2, scores.ndim)]
    saturated = ((scores < SATURATED_Q) & inside).sum(axes)
    return saturated.cpu().numpy().astype(np.int64), inside.sum(axes).cpu().numpy().astype(np.int64)


def declared_saturating_activation(loss: nn.Module) -> SaturatingActivation | None:
    """The ``saturating_activation`` that ``loss`` or a module inside it (the per-scale loss inside nnU-Net's
    deep-supervision wrapper) declares; None where none does."""
    declared = (getattr(module, "saturating_activation", None) for module in loss.modules())
    return next((activation for activation in declared if activation is not None), None)


@contextmanager
def full_resolution_outputs(network: nn.Module) -> Iterator[list[torch.Tensor]]:
    """A list that receives ``network``'s full-resolution output (the first of its deep-supervision outputs) at
    each forward pass inside the block: what nnU-Net's ``validation_step`` thresholds, without a second pass."""
    outputs: list[torch.Tensor] = []
    handle = network.register_forward_hook(
        lambda module, inputs, output: outputs.append(output[0] if isinstance(output, (list, tuple)) else output))
    try:
        yield outputs
    finally:
        handle.remove()


def summed_over_ranks(counts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """``counts`` summed over the processes of nnU-Net's DDP training (``nnUNetv2_train -num_gpus``), each of which
    validates its own batches; every process must call it, as nnU-Net's all-gather of its tp / fp / fn."""
    gathered: list[tuple[np.ndarray, ...] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, counts)
    return tuple(np.sum(per_rank, 0) for per_rank in zip(*gathered))


def collapsed_regions(history: list[tuple[list[float], list[float]]], epochs: int,
                      min_fraction: float = 0.5) -> list[int]:
    """Regions collapsed in each of the last ``epochs`` entries of ``history`` = [(pseudo-Dice, saturated fraction)]."""
    if len(history) < epochs:
        return []
    recent = history[-epochs:]
    regions = len(recent[-1][0])
    return [k for k in range(regions)
            if all(dice[k] == 0 and not math.isnan(fraction[k]) and fraction[k] > min_fraction
                   for dice, fraction in recent)]


class nnUNetTrainerWithHealthGuard(nnUNetTrainer):
    """nnU-Net's trainer with the guard of this module (the base of every trainer of the plugin)."""

    #: what the loss declares (:func:`declared_saturating_activation`, set by :meth:`initialize`); None: only the
    #: non-finite check
    saturating_activation: SaturatingActivation | None = None
    #: the trainer to name when a region collapses or the weights diverge (None: name none)
    collapse_alternative: str | None = None
    collapse_epochs: int = 3

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.logger.local_logger = CurvesLocalLogger(self.logger.local_logger.verbose)
        self._iteration = 0
        self._health_history: list[tuple[list[float], list[float]]] = []
        self._collapse_warned: set[int] = set()

    def initialize(self):
        super().initialize()
        self.saturating_activation = declared_saturating_activation(self.loss)
        if self.saturating_activation is not None:
            self.logger.local_logger.add_curve("wrong_side_saturated", "wrong-side saturated foreground, output")

    # ------------------------------------------------------------------------------ before training
    def on_train_start(self):
        try:
            self.check_before_training()
        except NnunetExtError as error:
            self._stop(str(error))  # before any data loader starts: one line and exit 1
        super().on_train_start()

    def check_before_training(self) -> None:
        """Raises a one-line :class:`NnunetExtError` when the preprocessed data cannot train: here a NaN /
        inf channel (each case checked once, recorded; nnunet_ext/image_check.py). Warns (and goes on, as
        nnU-Net would) when the label output cannot give back a region (:func:`unrecoverable_regions`)."""
        check_trainer_images(self)
        lost = unrecoverable_regions(self.dataset_json)
        if lost:
            self.print_to_log_file(
                f"WARNING: with regions_class_order {self.dataset_json['regions_class_order']} a later region "
                f"overwrites an earlier one in nnU-Net's label output, so {', '.join(lost)} cannot be read back from "
                "the predicted label maps; order the regions from largest to smallest in dataset.json",
                also_print_to_console=True)

    # ------------------------------------------------------------------------------ non-finite loss
    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self._iteration = 0

    def train_step(self, batch: dict) -> dict:
        result = super().train_step(batch)
        if not np.all(np.isfinite(result["loss"])):
            data = batch["data"]
            cases = ", ".join(map(str, batch.get("keys", [])))
            if not bool(torch.isfinite(data).all()):
                cause = (f"the input batch (cases {cases}) holds non-finite values: an image with inf or NaN voxels, "
                         "which nnU-Net's normalisation spreads over the whole channel; fix or remove those raw "
                         "images and re-run nnUNetv2_plan_and_preprocess")
            else:
                alternative = f" (e.g. {self.collapse_alternative})" if self.collapse_alternative else ""
                cause = (f"the inputs are finite (cases {cases}), so the optimisation diverged; lower the learning "
                         f"rate{alternative} or restart from the last checkpoint with --c")
            self._stop(f"training loss {float(np.mean(result['loss']))} in epoch {self.current_epoch}, iteration "
                       f"{self._iteration}: {cause}")
        self._iteration += 1
        return result

    def _stop(self, message: str) -> None:
        """Writes ``message`` to the training log, shuts the augmentation workers down and exits with it (one line)."""
        self.print_to_log_file(f"STOPPED: {message}", also_print_to_console=False)
        for loader in (self.dataloader_train, self.dataloader_val):
            finish = getattr(loader, "_finish", None)
            if finish is not None:
                finish()
        print(f"error: {self.__class__.__name__}: {message}", file=sys.stderr, flush=True)
        raise SystemExit(1)

    # ----------------------------------------------------------------------- wrong-side saturation
    def validation_step(self, batch: dict) -> dict:
        if self.saturating_activation is None:
            return super().validation_step(batch)
        with full_resolution_outputs(self.network) as outputs:
            result = super().validation_step(batch)
        output = outputs[-1]
        target = batch["target"]
        seg = (target[0] if isinstance(target, (list, tuple)) else target).to(output.device)
        result["saturated_foreground"], result["foreground_voxels"] = wrong_side_saturation(
            output.detach(), seg, self.saturating_activation, self.label_manager.has_regions,
            self.label_manager.ignore_label)
        return result

    def on_validation_epoch_end(self, val_outputs: list[dict]):
        super().on_validation_epoch_end(val_outputs)
        val_loss = self.logger.get_value("val_losses", step=None)[-1]
        if not np.isfinite(val_loss):
            alternative = f" (e.g. {self.collapse_alternative})" if self.collapse_alternative else ""
            self._stop(f"validation loss {val_loss} in epoch {self.current_epoch}: the network's outputs are not "
                       f"finite; restart from the last checkpoint with --c at a lower learning rate{alternative}")
        if self.saturating_activation is None:
            return
        saturated = np.sum([o["saturated_foreground"] for o in val_outputs], 0)
        foreground = np.sum([o["foreground_voxels"] for o in val_outputs], 0)
        if self.is_ddp:  # the fractions of all ranks' batches, to go with nnU-Net's pseudo-Dice over all of them
            saturated, foreground = summed_over_ranks((saturated, foreground))
        fractions = [float(s / f) if f else float("nan") for s, f in zip(saturated, foreground)]
        self.logger.log("wrong_side_saturated", fractions, self.current_epoch)
        self.print_to_log_file("wrong-side saturated foreground (fraction of reference voxels on the background side "
                               "with activation slope < 1 %), per region: "
                               + str([round(f, 4) for f in fractions]))
        dice = [float(d) for d in self.logger.get_value("dice_per_class_or_region", step=None)[-1]]
        self._health_history.append((dice, fractions))
        for k in collapsed_regions(self._health_history, self.collapse_epochs):
            if k in self._collapse_warned:
                continue
            self._collapse_warned.add(k)
            self.print_to_log_file(
                f"WARNING: {self._region_name(k)} has collapsed: pseudo-Dice 0 for {self.collapse_epochs} epochs with "
                f"{100 * fractions[k]:.0f} % of its foreground saturated on the background side, where this loss "
                f"({self.saturating_activation.name}) has almost no gradient to pull it back; the optimiser drove it "
                f"there." + (f" Train with {self.collapse_alternative} instead." if self.collapse_alternative else ""))

    def _region_name(self, k: int) -> str:
        """'region tumour core (2, 3)' / 'label lesion (1)' for foreground channel ``k``."""
        lm = self.label_manager
        target = lm.foreground_regions[k] if lm.has_regions else lm.foreground_labels[k]
        name = region_name(self.dataset_json, target) or ""
        return f"{'region' if lm.has_regions else 'label'} {name} {target}".replace("  ", " ")
