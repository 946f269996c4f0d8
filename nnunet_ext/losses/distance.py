"""Distance-map losses and their weight schedules: the Generalized Surface Loss (GSL), the
region-wise (RW) loss with rectified maps (RRW) and the Boundary loss. Pure torch, no nnU-Net imports.

All losses take probabilities, not logits (the caller applies softmax or sigmoid), maps of the same
shape (B, C, *spatial), and an optional mask (B, 1 or C, *spatial), True / 1 where a voxel counts
(nnU-Net's ignore label, padding). Computations run in float32.

References:
- GSL: Celaya, Riviere, Fuentes. *A Generalized Surface Loss for Reducing the Hausdorff Distance in
  Medical Imaging Segmentation*. Eq. 12 (loss), Eq. 13 (class weights), Eqs. 14-16 (schedules).
- RW / RRW: Valverde, Tohka. *Region-wise Loss for Biomedical Image Segmentation*. Eq. 1 (loss),
  Eq. 4 (rectified maps), Secs. 3.3-3.4 (rectification principle).
- Boundary loss: Kervadec, Bouchtiba, Desrosiers, Granger, Dolz, Ben Ayed. *Boundary loss for
  highly unbalanced segmentation*, MIDL 2019 (and MedIA 2021): loss = mean(P * D), combined as
  alpha * region + (1 - alpha) * boundary, alpha from 1 down by 0.01 per epoch.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from nnunet_ext.losses.masking import masked_mean


# ------------------------------------------------------------------------------------------------
# alpha schedules: the weight of the region loss in alpha * region + (1 - alpha) * distance
# ------------------------------------------------------------------------------------------------
def alpha_linear(t: float, T: float, hold: int = 0) -> float:
    """GSL Eq. 14: ``1 - t / T``. With ``hold`` h > 0 (the GSL authors' code holds alpha at 1 for
    5 epochs): 1 for t < h, then linear from 1 at t = h to 0 at t = T. Clamped to [0, 1]."""
    if T <= 0:
        raise ValueError(f"T must be > 0, got {T}")
    if t < hold:
        return 1.0
    span = T - hold
    return 0.0 if span <= 0 else min(1.0, max(0.0, 1.0 - (t - hold) / span))


def alpha_step(t: float, T: float, h: int) -> float:
    """GSL Eq. 15: ``1 - floor(t / h) / N_h`` with ``N_h = floor(T / h)``, clamped to [0, 1].

    If T < h (N_h = 0, Eq. 15 undefined) alpha stays 1 until t reaches h.
    """
    if T <= 0 or h < 1:
        raise ValueError(f"need T > 0 and h >= 1, got T={T}, h={h}")
    steps = math.floor(T / h)
    return min(1.0, max(0.0, 1.0 - math.floor(t / h) / max(steps, 1)))


def alpha_cosine(t: float, T: float) -> float:
    """GSL Eq. 16: ``(1 + cos(pi t / T)) / 2`` (t clamped to [0, T])."""
    if T <= 0:
        raise ValueError(f"T must be > 0, got {T}")
    return 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), T) / T))


def alpha_rebalance(t: float, decrement: float = 0.01, floor: float = 0.01) -> float:
    """Boundary loss rebalancing (Kervadec et al.): ``max(1 - decrement * t, floor)``, t in epochs."""
    return max(1.0 - decrement * t, floor)


# ------------------------------------------------------------------------------------------------
# class weights
# ------------------------------------------------------------------------------------------------
def gsl_class_weights(voxel_counts: Sequence[float]) -> torch.Tensor:
    """GSL Eq. 13: ``w_k = (1 / N_k) / sum_j (1 / N_j)`` from total voxel counts N_k; sums to 1.

    A class with N_k = 0 (never present) gets weight 0 and the others share the sum; all zero counts
    give equal weights.
    """
    counts = torch.as_tensor(voxel_counts, dtype=torch.float64)
    if counts.ndim != 1 or len(counts) == 0 or (counts < 0).any():
        raise ValueError(f"voxel_counts must be a non-empty list of counts >= 0, got {voxel_counts}")
    inverse = torch.where(counts > 0, 1.0 / counts.clamp_min(1e-300), torch.zeros_like(counts))
    if inverse.sum() == 0:
        return torch.full((len(counts),), 1.0 / len(counts), dtype=torch.float32)
    return (inverse / inverse.sum()).float()


# ------------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------------
class GeneralizedSurfaceLoss(nn.Module):
    """GSL Eq. 12, per sample, averaged over the batch::

        L = 1 - sum_k w_k sum_i (D_ik (1 - (T_ik + P_ik)))^2 / sum_k w_k sum_i D_ik^2

    ``P`` probabilities (B, C, *), ``T`` binary targets (B, C, *), ``D`` signed distance maps
    (B, C, *) (negative inside, :mod:`nnunet_ext.targets.dtm`), ``w`` class weights (C,) (Eq. 13;
    ``None``: all 1, the authors' current code). For binary T and P in [0, 1], |1 - T - P| <= 1,
    so L is in [0, 1]: 0 for P = T, 1 for the worst prediction P = 1 - T. Voxels outside ``mask``
    and voxels with D = 0 (empty channels, map padding) do not count. A sample with no distance
    information (sum w D^2 = 0) has loss 0.
    """

    def __init__(self, class_weights: torch.Tensor | Sequence[float] | None = None):
        super().__init__()
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights)

    def forward(self, probabilities: torch.Tensor, target: torch.Tensor, dtm: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(probabilities, dtm, target)
        p, t, d = probabilities.float(), target.float(), dtm.float()
        if mask is not None:
            d = d * mask.float()
        reduce = tuple(range(2, p.ndim))
        numerator = ((d * (1.0 - (t + p))) ** 2).sum(reduce)  # (B, C)
        denominator = (d ** 2).sum(reduce)
        if self.class_weights is not None:
            if self.class_weights.numel() != p.shape[1]:
                raise ValueError(f"{self.class_weights.numel()} class weights for {p.shape[1]} channels")
            numerator = numerator * self.class_weights
            denominator = denominator * self.class_weights
        numerator, denominator = numerator.sum(1), denominator.sum(1)
        has_distance = denominator > 0
        ratio = numerator / torch.where(has_distance, denominator, torch.ones_like(denominator))
        return torch.where(has_distance, 1.0 - ratio, torch.zeros_like(ratio)).mean()


class RegionWiseLoss(nn.Module):
    """Region-wise loss, RRW paper Eq. 1 normalised by 1 / (N K) as in its implementation::

        L = 1 / (N K) sum_i sum_k P_ik Z_ik

    ``P`` (B, K, *) probabilities of K mutually exclusive classes (softmax), ``Z`` (B, K, *) RW maps
    (rectified: :mod:`nnunet_ext.targets.rrw`). N counts the voxels in ``mask`` over the batch; an
    empty mask gives 0. For sigmoid outputs (region datasets) pass, per region r, the two-class
    probabilities (sigmoid, 1 - sigmoid) with the maps of r and of its complement: see
    :meth:`two_class_probabilities`.
    """

    def forward(self, probabilities: torch.Tensor, rw_maps: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(probabilities, rw_maps)
        product = probabilities.float() * rw_maps.float()
        return masked_mean(product, mask)

    @staticmethod
    def two_class_probabilities(region_probabilities: torch.Tensor) -> torch.Tensor:
        """(B, R, *) sigmoid outputs -> (B, 2R, *) = [p_1..p_R, 1 - p_1..1 - p_R]: each region with its
        complement is a two-class softmax over the logits (0, z_r); matches RRW maps with ``complements``."""
        return torch.cat([region_probabilities, 1.0 - region_probabilities], dim=1)


class BoundaryLoss(nn.Module):
    """Boundary loss (Kervadec et al.): ``mean_{i, k} P_ik D_ik`` over foreground channels.

    ``P`` (B, K, *) foreground probabilities (softmax without the background, or sigmoid per region),
    ``D`` (B, K, *) signed distance maps (mm, negative inside). Unbounded; its minimum puts all
    probability mass inside the objects. Mean over the voxels in ``mask`` (empty mask: 0).
    """

    def forward(self, probabilities: torch.Tensor, dtm: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(probabilities, dtm)
        product = probabilities.float() * dtm.float()
        return masked_mean(product, mask)


def _check_shapes(probabilities: torch.Tensor, *others: torch.Tensor) -> None:
    for other in others:
        if other.shape != probabilities.shape:
            raise ValueError(f"shapes disagree: probabilities {tuple(probabilities.shape)}, maps/targets "
                             f"{tuple(other.shape)}; recompute the maps with nnUNetv2_precompute_targets --overwrite")
