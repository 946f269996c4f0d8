"""Voxel-wise regression losses for signed target maps in [-1, 1] (SiNG maps, normalised SDMs).

Every loss here takes the *raw* network output ``z`` and applies ``Z = tanh(z)`` itself, as SiNGR does
(Dang, Nguyen, Tiulpin, "SiNGR: Brain Tumor Segmentation via Signed Normalized Geodesic Transform Regression",
MICCAI 2024, Sec. 2.3): the network stays linear, so at inference ``z > 0 <=> tanh(z) > 0`` and nnU-Net's
thresholding of raw outputs at 0 gives the same masks.

Common interface (``forward(z, target, mask=None)``):

- ``z``: raw network output, shape (B, K, *spatial) (2D or 3D).
- ``target``: the target map S, same shape as ``z``, values in [-1, 1] (any float dtype; float16 maps are
  promoted to float32).
- ``mask``: optional, shape (B, 1, *spatial) or (B, K, *spatial), bool or float; voxels with mask 0 are
  excluded (ignore label, padding) and a float mask weights voxels. ``None`` includes every voxel.
- returns a scalar: the (masked) mean over batch, channels and voxels of the per-voxel loss. A mask that
  excludes every voxel gives 0 (still attached to the graph, so ``backward`` works).

All computations run in float32 whatever the autocast dtype, because the Focal-L1 weight divides by
``max(|S|, |Z|)`` and fp16 would lose that near the zero level set.

Variants (Table 3 of the SiNGR paper, plus the authors' released setting):

======================  =====================================================================================
``FocalL1Loss``         SiNGR Eq. 6, the paper's loss.
``FocalL1SimpleLoss``   Focal-L1-dagger of Table 3: weight simplified to ``|S - Z|^gamma``.
``TanhL1Loss``          mean ``|S - Z|``.
``TanhL2Loss``          mean ``(S - Z)^2``.
``ProductLoss``         Xue et al., AAAI 2020 (SiNGR ref. 28), their Eq. 4 product term plus L1.
``OfficialSiNGRLoss``   weight as in the authors' released BraTS configuration (not Eq. 6).
======================  =====================================================================================
"""

from __future__ import annotations

import torch
from torch import nn

from nnunet_ext.losses.masking import mask_weights, masked_mean

__all__ = ["FocalL1Loss", "FocalL1SimpleLoss", "OfficialSiNGRLoss", "ProductLoss", "TanhL1Loss", "TanhL2Loss"]


def _prepare(z: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if z.shape != target.shape:
        raise ValueError(f"network output {tuple(z.shape)} and target {tuple(target.shape)} differ in shape")
    if z.ndim < 3:
        raise ValueError(f"expected (B, K, *spatial), got shape {tuple(z.shape)}")
    return torch.tanh(z.float()), target.float()


class _TanhRegressionLoss(nn.Module):
    """Base class: ``Z = tanh(z)``, a per-voxel loss from ``_per_voxel(S, Z)``, then the masked mean."""

    def forward(self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        prediction, target = _prepare(z, target)
        return masked_mean(self._per_voxel(target, prediction), mask)

    def _per_voxel(self, target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class FocalL1Loss(_TanhRegressionLoss):
    r"""Focal-L1 loss of SiNGR (Nguyen et al., MICCAI 2024, Eq. 6).

    .. math::

        \mathcal{L}_{FocalL1}(S, Z) = \frac{1}{|\Omega|} \sum_{i \in \Omega} |S_i - Z_i| \, w_i, \qquad
        w_i = \frac{|S_i - Z_i|^{\gamma \, \mathbb{1}(S_i Z_i \ge 0)}}
                   {\max\big(\max(|S_i|, |Z_i|) + \varepsilon,\ d_{min}\big)},
        \qquad Z = \tanh(z).

    For same-sign voxels (easy, ``S_i Z_i >= 0``) the numerator ``|S-Z|^gamma`` shrinks the weight; for
    opposite-sign voxels (hard) it is 1. The denominator lowers the weight of voxels far from the boundary
    (large ``|S|`` or ``|Z|``). As the paper states ("backpropagation is not applied to the weighting term"),
    ``w`` is detached: the gradient is ``w_i * sign(Z_i - S_i) * (1 - Z_i^2) / |Omega|``.

    ``eps`` is the paper's epsilon (the paper trains with 0.0, the default). ``min_denominator`` is not in
    the paper; it is the floor ``d_min`` that makes the loss defined everywhere:

    - with delta = 0 SiNG maps are exactly 0 on the boundary seeds, and a zero-initialised or saturated
      output can give ``Z = 0`` there too: ``max(|S|, |Z|) = 0`` and Eq. 6 with eps = 0 is 0/0 (NaN).
      With the floor the weight there is ``0 / d_min = 0`` (gamma > 0), the value the loss term has anyway
      (``|S - Z| = 0``);
    - after interpolation (augmentation, deep-supervision downsampling) targets take arbitrarily small
      values ``|S| << 1`` next to the zero level set; an opposite-sign prediction there has weight
      ``1 / max(|S|, |Z|)``, unbounded as both approach 0. The floor caps it at ``1 / d_min``.

    The default ``d_min = 1e-3`` lies below the nonzero ``|S|`` of an uninterpolated SiNG map (the
    smallest is about one voxel step divided by tau, the band's largest distance: about 1e-2 for bands tens
    of voxels wide), so the floor acts on the zero level set only and the weight elsewhere is exactly
    Eq. 6. With delta = 0.5, ``|S| >= 0.5`` everywhere and the floor never acts.

    Args:
        gamma: focusing exponent of the same-sign branch (paper: 1).
        eps: the paper's epsilon added to ``max(|S|, |Z|)`` (paper: 0.0).
        min_denominator: floor of the weight's denominator (see above); must be > 0.
    """

    def __init__(self, gamma: float = 1.0, eps: float = 0.0, min_denominator: float = 1e-3):
        super().__init__()
        if gamma < 0 or eps < 0 or min_denominator <= 0:
            raise ValueError("need gamma >= 0, eps >= 0 and min_denominator > 0")
        self.gamma = gamma
        self.eps = eps
        self.min_denominator = min_denominator

    def _per_voxel(self, target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        error = (target - prediction).abs()
        with torch.no_grad():
            same_sign = target * prediction >= 0
            numerator = torch.where(same_sign, error.pow(self.gamma), torch.ones_like(error))
            denominator = (torch.maximum(target.abs(), prediction.abs()) + self.eps).clamp_min(self.min_denominator)
            weight = numerator / denominator
        return error * weight


class FocalL1SimpleLoss(_TanhRegressionLoss):
    r"""Simplified Focal-L1 ("Focal-L1-dagger", SiNGR Table 3): Eq. 6 with the weight reduced to ``|S-Z|^gamma``.

    .. math::

        \mathcal{L} = \frac{1}{|\Omega|} \sum_i |S_i - Z_i| \, \mathrm{sg}\big(|S_i - Z_i|^{\gamma}\big),
        \qquad Z = \tanh(z),

    ``sg`` = stop-gradient (the weight is detached, as in Eq. 6). No sign branch, no ``1/max`` term; the
    value equals ``mean |S-Z|^(1+gamma)`` but the gradient is ``|S-Z|^gamma * sign(Z-S) * (1-Z^2) / |Omega|``.

    Args:
        gamma: exponent of the weight (Table 3 does not state it; SiNGR's gamma is 1).
    """

    def __init__(self, gamma: float = 1.0):
        super().__init__()
        if gamma < 0:
            raise ValueError("need gamma >= 0")
        self.gamma = gamma

    def _per_voxel(self, target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        error = (target - prediction).abs()
        return error * error.detach().pow(self.gamma)


class TanhL1Loss(_TanhRegressionLoss):
    r"""L1 regression on tanh outputs (SiNGR Table 3, "L1"): :math:`\frac{1}{|\Omega|}\sum_i |S_i - \tanh(z_i)|`."""

    def _per_voxel(self, target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        return (target - prediction).abs()


class TanhL2Loss(_TanhRegressionLoss):
    r"""Mean squared error on tanh outputs (SiNGR Table 3, "L2"): :math:`\frac{1}{|\Omega|}\sum_i (S_i - \tanh(z_i))^2`."""

    def _per_voxel(self, target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        return (target - prediction).square()


class OfficialSiNGRLoss(_TanhRegressionLoss):
    r"""The focal weighting of the SiNGR authors' released BraTS configuration (not the paper's Eq. 6).

    .. math::

        \mathcal{L} = \frac{1}{|\Omega|} \sum_i |S_i - Z_i| \, \mathrm{sg}(w_i), \qquad
        w_i = \begin{cases} \alpha |S_i - Z_i|^{\beta} & \text{if } \mathrm{sign}(S_i)\,\mathrm{sign}(Z_i) > 0 \\
                            \max(\alpha |S_i - Z_i|^{\beta},\ 1) & \text{otherwise} \end{cases}

    with the released values alpha = 2, beta = 1, the weight detached, and no ``1/max(|S|, |Z|)`` term.
    Unlike Eq. 6 the same-sign test is strict, so a voxel with ``S = 0`` or ``Z = 0`` takes the second branch.

    Equivalence with MSE: for targets with ``|S| >= 1/alpha`` everywhere (SiNG with delta = 0.5 and
    alpha = 2, beta = 1) an opposite-sign or zero voxel has ``|S - Z| >= |S| >= 0.5``, so
    ``max(2|S-Z|, 1) = 2|S-Z|`` and ``w = 2|S - Z|`` on every voxel. The loss *value* is then exactly
    ``2 x MSE(S, Z)``; because ``w`` is detached its *gradient* is ``2 (Z - S)(1 - Z^2) / |Omega|``, the
    gradient of ``1 x MSE`` (half that of ``2 x MSE``). For smaller ``|S|`` (delta = 0) opposite-sign voxels
    with small errors keep weight 1 (L1-like) and the equivalence breaks.

    Args:
        alpha: scale of the weight (released: 2.0).
        beta: exponent of the weight (released: 1.0).
    """

    def __init__(self, alpha: float = 2.0, beta: float = 1.0):
        super().__init__()
        if alpha <= 0 or beta < 0:
            raise ValueError("need alpha > 0 and beta >= 0")
        self.alpha = alpha
        self.beta = beta

    def _per_voxel(self, target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        error = (target - prediction).abs()
        with torch.no_grad():
            unsigned = self.alpha * error.pow(self.beta)
            same_sign = torch.sign(target) * torch.sign(prediction) > 0
            weight = torch.where(same_sign, unsigned, unsigned.clamp_min(1.0))
        return error * weight


class ProductLoss(nn.Module):
    r"""Product loss of Xue et al., "Shape-aware organ segmentation by predicting signed distance maps",
    AAAI 2020 (their Eq. 4; SiNGR ref. 28, Table 3 "Product"), combined with L1 as Xue et al. do.

    Per sample b and channel k, over the (included) voxels i:

    .. math::

        r_{bk} = \frac{\sum_i S_i Z_i}{\sum_i \left(S_i Z_i + Z_i^2 + S_i^2\right)}, \qquad
        \mathcal{L} = \frac{1}{|\Omega|}\sum_i |S_i - Z_i| + \frac{1}{BK}\sum_{b,k}\left(\tfrac{1}{3} - r_{bk}\right),
        \qquad Z = \tanh(z).

    ``r`` lies in [-1, 1/3]; it equals 1/3 when Z = S and is negative when the signs disagree, so the term
    penalises wrong signs more than magnitudes. Xue et al. write the loss as ``L1 - r``; the constant 1/3
    (no effect on gradients) makes a perfect prediction score 0. The denominator is
    ``>= (sum S^2 + sum Z^2) / 2``, zero only if S = Z = 0 on every included voxel: that pair counts as
    perfect (``r = 1/3``) instead of 0/0. Sample-channel pairs without included voxels are left out of the
    mean over (b, k). The SiNGR authors' version adds 1e-6 to numerator and denominator and supports one
    channel; here each channel has its own ratio.
    """

    def forward(self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        prediction, target = _prepare(z, target)
        weights = mask_weights(mask, prediction)
        l1 = masked_mean((target - prediction).abs(), weights)

        spatial = tuple(range(2, prediction.ndim))
        product = target * prediction
        squares = product + prediction.square() + target.square()
        if weights is None:
            has_voxels = torch.ones(prediction.shape[:2], dtype=torch.bool, device=prediction.device)
        else:
            product = product * weights
            squares = squares * weights
            has_voxels = weights.sum(spatial) > 0
        numerator = product.sum(spatial)
        denominator = squares.sum(spatial)
        ratio = torch.where(
            denominator > 0, numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny), 1.0 / 3.0
        )
        shortfall = torch.where(has_voxels, 1.0 / 3.0 - ratio, 0.0)
        return l1 + shortfall.sum() / has_voxels.sum().clamp_min(1)
