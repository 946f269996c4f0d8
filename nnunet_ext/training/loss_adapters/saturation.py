"""The saturating activation a per-scale loss is linear in, declared by the loss for the training-health guard.

A loss that is linear in a saturating activation (SiNGR's ``tanh``, the RW loss's and JML's sigmoid /
softmax) has almost no gradient where that activation sits saturated on the wrong side, so a region driven
there cannot recover. Such a loss declares a :class:`SaturatingActivation` as its ``saturating_activation``
attribute; :mod:`nnunet_ext.training.health` finds it in the trainer's loss and measures the saturation with
the declared :attr:`SaturatingActivation.foreground_scores`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch


class SaturatingActivation(NamedTuple):
    """``name`` (for the guard's log) and ``foreground_scores(output (B, C, *), has_regions) -> q (B, K, *)``:
    the activation of each region / foreground class scaled to (0, 1), 0.5 at the prediction threshold."""

    name: str
    foreground_scores: Callable[[torch.Tensor, bool], torch.Tensor]
