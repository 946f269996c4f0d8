"""Soft labels (label smoothing, GeoLS) and the losses that train on them (soft cross-entropy, Jaccard
metric losses). Pure torch, no nnU-Net imports.

Soft labels, built from a one-hot target ``y`` (and, for GeoLS, the precomputed maps ``g``):

- label smoothing (LS; Szegedy et al., CVPR 2016; GeoLS paper Eq. 2): ``(1 - alpha) y + alpha / C``;
- GeoLS (Vasudeva, Dolz, Lombaert, MIDL 2024, Eq. 6): ``(1 - alpha) y + alpha g~`` with
  ``g~_c = g_c / sum_c g_c`` (Sec. 2.3) over all classes, background included. The paper does not say
  what the background's map is; as in the authors' code it is ``g_0 = 1 - mean_k g_k`` over the K
  foreground maps. Then ``sum_c g_c = 1 + (1 - 1/K) sum_k g_k >= 1``, so g~ is always defined.
- per-region GeoLS (overlapping regions, e.g. BraTS WT/TC/ET, sigmoid outputs): each region r is a
  binary problem {r, not r}; its complement's map is ``1 - g_r`` (the authors' background rule with a
  single class), so g~_r = g_r / (g_r + 1 - g_r) = g_r and the soft label of region r is
  ``(1 - alpha) y_r + alpha g_r`` (and 1 minus that for "not r"). With K = 1 this is exactly the label
  version, so a binary task gets the same soft labels whether it is stored as a label or a region.

Soft labels of the label versions sum to one over the classes at every voxel (GeoLS with
``normalise=True``, LS); per-region soft labels are binary distributions per region.

Losses (``forward(logits, target, mask=None)``, ``logits`` and ``target`` (B, C, *spatial), ``mask``
(B, 1 or C, *spatial) bool/float with 0 = excluded, e.g. nnU-Net's ignore label; computed in float32):

- :class:`SoftCrossEntropyLoss`: GeoLS Eq. 1 with soft labels, ``-sum_c q_c log softmax(z)_c``,
  mean over voxels;
- :class:`SoftBinaryCrossEntropyLoss`: per channel ``-q log sigmoid(z) - (1 - q) log(1 - sigmoid(z))``,
  mean over channels and voxels (the region version);
- :class:`JaccardMetricLoss`: Jaccard metric losses JML1 / JML2 (Wang, Ning, Blaschko, *Jaccard Metric
  Losses: Optimizing the Jaccard Index with Soft Labels*, NeurIPS 2023), on softmax or sigmoid
  probabilities.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nnunet_ext.losses.masking import mask_weights, masked_mean

__all__ = [
    "JaccardMetricLoss",
    "SoftBinaryCrossEntropyLoss",
    "SoftCrossEntropyLoss",
    "geols_background",
    "geols_region_soft_labels",
    "geols_soft_labels",
    "label_smoothing",
]


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return float(alpha)


def label_smoothing(y: torch.Tensor, alpha: float, num_classes: int | None = None) -> torch.Tensor:
    """LS soft labels ``(1 - alpha) y + alpha / C`` (GeoLS paper Eq. 2; Szegedy et al., CVPR 2016).

    ``y``: (B, C, *spatial) one-hot over C = ``y.shape[1]`` classes (label datasets), or binary masks of
    overlapping regions with ``num_classes=2`` (each region is its own two-class problem {r, not r},
    and the result is the smoothed probability of r).
    """
    alpha = _check_alpha(alpha)
    classes = y.shape[1] if num_classes is None else int(num_classes)
    return (1.0 - alpha) * y.float() + alpha / classes


def geols_background(maps: torch.Tensor) -> torch.Tensor:
    """Background map ``g_0 = 1 - mean_k g_k`` (B, 1, *spatial) from the K foreground maps (B, K, *spatial).

    The authors' code averages over the classes present in the case; here the mean is over all K
    maps (an absent class has an all-zero map), because a training patch does not tell which classes
    the case has. Both agree on cases that contain every class.
    """
    return 1.0 - maps.float().mean(1, keepdim=True)


def geols_soft_labels(y: torch.Tensor, maps: torch.Tensor, alpha: float, normalise: bool = True) -> torch.Tensor:
    """GeoLS soft labels (GeoLS paper Eq. 6) for exclusive classes.

    ``y``: (B, 1 + K, *spatial) one-hot, background first; ``maps``: (B, K, *spatial) the geodesic maps
    g_1..g_K in [0, 1] (Eq. 5). Returns ``(1 - alpha) y + alpha g~`` with g = (g_0, g_1, ..., g_K),
    g_0 from :func:`geols_background`, ``g~ = g / sum_c g_c`` (``normalise=True``, the paper; sums to
    one) or ``g~ = g`` (``normalise=False``, the authors' code; sums to ``1 + alpha (1 - 1/K) sum_k g_k``).
    """
    alpha = _check_alpha(alpha)
    if y.shape[1] != maps.shape[1] + 1 or y.shape[0] != maps.shape[0] or y.shape[2:] != maps.shape[2:]:
        raise ValueError(f"one-hot {tuple(y.shape)} needs maps of shape (B, {y.shape[1] - 1}, *spatial), "
                         f"got {tuple(maps.shape)}")
    maps = maps.float().clamp(0.0, 1.0)
    g = torch.cat([geols_background(maps), maps], 1)
    if normalise:
        g = g / g.sum(1, keepdim=True)  # >= 1, see the module docstring
    return (1.0 - alpha) * y.float() + alpha * g


def geols_region_soft_labels(y: torch.Tensor, maps: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-region GeoLS soft labels ``(1 - alpha) y_r + alpha g_r`` for overlapping regions.

    ``y``, ``maps``: (B, R, *spatial), binary region masks and their geodesic maps in [0, 1]. Each
    region is the two-class problem {r, not r} with maps (g_r, 1 - g_r), so Eq. 6's normalisation
    leaves g_r unchanged; the result is the soft probability of r (see the module docstring).
    """
    alpha = _check_alpha(alpha)
    if y.shape != maps.shape:
        raise ValueError(f"region masks {tuple(y.shape)} and maps {tuple(maps.shape)} differ in shape")
    return (1.0 - alpha) * y.float() + alpha * maps.float().clamp(0.0, 1.0)


def _check_shapes(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.shape != target.shape:
        raise ValueError(f"network output {tuple(logits.shape)} and soft target {tuple(target.shape)} differ in shape")
    if logits.ndim < 3:
        raise ValueError(f"expected (B, C, *spatial), got shape {tuple(logits.shape)}")


class SoftCrossEntropyLoss(nn.Module):
    """Cross-entropy with soft labels (GeoLS paper Eq. 1 with y replaced by Eq. 2 or Eq. 6 soft labels).

    ``loss = mean_v [ -sum_c q_{c,v} log softmax(z)_{c,v} ]``; ``logits`` z and soft target q of shape
    (B, C, *spatial); ``mask`` (B, 1, *spatial) excludes (0) or weights voxels. For one-hot q this is
    ``torch.nn.functional.cross_entropy``.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(logits, target)
        per_voxel = -(target.float() * F.log_softmax(logits.float(), 1)).sum(1, keepdim=True)
        return masked_mean(per_voxel, mask)


class SoftBinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy with soft labels per channel (overlapping regions, sigmoid outputs).

    ``loss = mean_{r,v} [ -q_{r,v} log sigmoid(z_{r,v}) - (1 - q_{r,v}) log(1 - sigmoid(z_{r,v})) ]``;
    shapes as :class:`SoftCrossEntropyLoss`, ``mask`` (B, 1 or R, *spatial).
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(logits, target)
        per_voxel = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
        return masked_mean(per_voxel, mask)


class JaccardMetricLoss(nn.Module):
    """Jaccard metric losses (Wang, Ning, Blaschko, NeurIPS 2023, JML1 and JML2), per class, averaged.

    With probabilities x (softmax or sigmoid of ``logits``) and soft labels y in [0, 1], summed over the
    voxels of one class (and over the batch when ``batch=True``):

    - JML1: ``I = (|x + y|_1 - |x - y|_1) / 2``, ``U = (|x + y|_1 + |x - y|_1) / 2``;
    - JML2: ``I = <x, y>``, ``U = <x, y> + |x - y|_1``;

    and ``loss = 1 - (I + smooth) / (U + smooth)``. For hard labels y in {0, 1} both give
    ``I = sum x y`` and ``U = sum x + sum y - sum x y``, i.e. the soft Jaccard loss; both are 0 when
    x = y. (The paper writes JML1 as ``1 - (|x+y| - |x-y|) / (|x+y| + |x-y|)``; halving I and U changes
    nothing for ``smooth = 0`` and keeps the hard-label identity exact for ``smooth > 0``.) ``smooth``
    (default 1, not part of the paper's definition) keeps a class that is empty in both x and y at loss
    0 and gives a class absent from y a gradient towards x = 0.

    ``activation``: ``"softmax"`` over C exclusive classes (label datasets; ``include_background``
    decides whether channel 0 enters the mean) or ``"sigmoid"`` per channel (overlapping regions; each
    channel's Jaccard index of the region itself). ``mask`` (B, 1 or C, *spatial): excluded voxels (0)
    count neither in x nor in y; a float mask weights them.
    """

    def __init__(self, activation: str = "softmax", variant: int = 1, batch: bool = False, smooth: float = 1.0,
                 include_background: bool = True):
        super().__init__()
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
        if variant not in (1, 2):
            raise ValueError(f"variant must be 1 (JML1) or 2 (JML2), got {variant!r}")
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        self.activation = activation
        self.variant = variant
        self.batch = bool(batch)
        self.smooth = float(smooth)
        self.include_background = bool(include_background)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(logits, target)
        logits = logits.float()
        x = torch.softmax(logits, 1) if self.activation == "softmax" else torch.sigmoid(logits)
        y = target.float()
        weights = mask_weights(mask, x)
        if weights is not None:
            x, y = x * weights, y * weights
        if self.activation == "softmax" and not self.include_background:
            x, y = x[:, 1:], y[:, 1:]
        dims = (0, *range(2, x.ndim)) if self.batch else tuple(range(2, x.ndim))
        difference = (x - y).abs().sum(dims)
        if self.variant == 1:
            cardinality = (x + y).sum(dims)
            intersection = (cardinality - difference) / 2
            union = (cardinality + difference) / 2
        else:
            intersection = (x * y).sum(dims)
            union = intersection + difference
        numerator, denominator = intersection + self.smooth, union + self.smooth
        # U + smooth = 0 only if x = y = 0 on the whole class: a perfect (empty) match, score 1
        score = torch.where(denominator > 0, numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny),
                            torch.ones_like(denominator))
        return (1.0 - score).mean()
