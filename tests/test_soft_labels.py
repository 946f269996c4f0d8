"""Soft labels (LS, GeoLS, per-region GeoLS), soft cross-entropy and the Jaccard metric losses."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from nnunet_ext.losses import JaccardMetricLoss, SoftBinaryCrossEntropyLoss, SoftCrossEntropyLoss
from nnunet_ext.losses.soft_labels import (
    geols_background,
    geols_region_soft_labels,
    geols_soft_labels,
    label_smoothing,
)
from nnunet_ext.training.loss_adapters.soft_label import SoftLabelLoss


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """(B, *spatial) int -> (B, C, *spatial) float."""
    return F.one_hot(labels.long(), classes).movedim(-1, 1).float()


def soft_jaccard_loss(x: torch.Tensor, y: torch.Tensor, smooth: float) -> torch.Tensor:
    """Reference soft Jaccard loss, per sample and class, averaged: 1 - (sum xy + s) / (sum x + sum y - sum xy + s)."""
    dims = tuple(range(2, x.ndim))
    intersection = (x * y).sum(dims)
    union = x.sum(dims) + y.sum(dims) - intersection
    return (1 - (intersection + smooth) / (union + smooth)).mean()


# ------------------------------------------------------------------------------------------ soft labels
def test_label_smoothing_values_and_sum():
    y = one_hot(torch.tensor([[0, 1, 2, 2]]), 3)
    q = label_smoothing(y, 0.1)
    torch.testing.assert_close(q[0, :, 1], torch.tensor([0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3]))
    torch.testing.assert_close(q.sum(1), torch.ones(1, 4))
    # regions: each region is {r, not r}, C = 2
    regions = torch.tensor([[[1.0, 0.0]]])
    torch.testing.assert_close(label_smoothing(regions, 0.1, num_classes=2), torch.tensor([[[0.95, 0.05]]]))


def test_geols_soft_labels_hand_values():
    # one voxel, K = 2: g_1 = 0.5, g_2 = 0, label 1 -> g_0 = 1 - 0.25, g = (0.75, 0.5, 0), sum 1.25
    y = one_hot(torch.tensor([[1]]), 3)
    maps = torch.tensor([[[0.5], [0.0]]])
    torch.testing.assert_close(geols_background(maps), torch.tensor([[[0.75]]]))
    q = geols_soft_labels(y, maps, 0.1)
    torch.testing.assert_close(q[0, :, 0], torch.tensor([0.1 * 0.6, 0.9 + 0.1 * 0.4, 0.0]))
    # the authors' code: g not renormalised, soft labels sum to 1 + alpha (1 - 1/K) sum_k g_k
    q_code = geols_soft_labels(y, maps, 0.1, normalise=False)
    torch.testing.assert_close(q_code[0, :, 0], torch.tensor([0.075, 0.95, 0.0]))
    torch.testing.assert_close(q_code.sum(1), torch.tensor([[1.025]]))


def test_geols_soft_labels_sum_to_one_and_reduce_to_one_hot():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (2, 5, 6, 7))
    y = one_hot(labels, 4)
    maps = torch.rand(2, 3, 5, 6, 7)
    maps[1, 2] = 0  # an empty class
    q = geols_soft_labels(y, maps, 0.1)
    torch.testing.assert_close(q.sum(1), torch.ones(2, 5, 6, 7))
    assert q.min() >= 0 and torch.isfinite(q).all()
    torch.testing.assert_close(geols_soft_labels(y, maps, 0.0), y)  # alpha 0: cross-entropy on one-hot


def test_region_geols_is_the_binary_label_version():
    """Per region, g~ against the complement 1 - g_r is g_r; K = 1 labels give the same soft labels."""
    torch.manual_seed(1)
    region = (torch.rand(2, 1, 4, 4, 4) > 0.5).float()
    maps = torch.rand(2, 1, 4, 4, 4)
    q_region = geols_region_soft_labels(region, maps, 0.1)
    torch.testing.assert_close(q_region, 0.9 * region + 0.1 * maps)
    q_labels = geols_soft_labels(one_hot(region[:, 0], 2), maps, 0.1)
    torch.testing.assert_close(q_labels[:, 1:], q_region)
    torch.testing.assert_close(q_labels[:, :1], 1 - q_region)


def test_invalid_alpha_and_shapes_are_rejected():
    with pytest.raises(ValueError, match="alpha"):
        label_smoothing(torch.zeros(1, 2, 3), 1.5)
    with pytest.raises(ValueError, match="maps of shape"):
        geols_soft_labels(torch.zeros(1, 3, 4), torch.zeros(1, 3, 4), 0.1)


# ----------------------------------------------------------------------------------- cross-entropies
def test_soft_cross_entropy_matches_torch_and_hand_values():
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 4, 5)
    labels = torch.randint(0, 3, (2, 4, 5))
    torch.testing.assert_close(SoftCrossEntropyLoss()(logits, one_hot(labels, 3)), F.cross_entropy(logits, labels))
    # uniform prediction: -sum_c q_c log(1/3) = log 3 for any soft label
    q = label_smoothing(one_hot(labels, 3), 0.1)
    assert SoftCrossEntropyLoss()(torch.zeros(2, 3, 4, 5), q).item() == pytest.approx(torch.log(torch.tensor(3.0)).item())
    # ignored voxels do not count
    mask = torch.zeros(2, 1, 4, 5, dtype=torch.bool)
    mask[:, :, :2] = True
    torch.testing.assert_close(SoftCrossEntropyLoss()(logits, q, mask),
                               SoftCrossEntropyLoss()(logits[:, :, :2], q[:, :, :2]))


def test_soft_bce_matches_torch_and_is_minimal_at_the_target():
    torch.manual_seed(3)
    q = torch.rand(2, 3, 4, 4)
    logits = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(SoftBinaryCrossEntropyLoss()(logits, q), F.binary_cross_entropy_with_logits(logits, q))
    at_target = torch.logit(q).requires_grad_()
    SoftBinaryCrossEntropyLoss()(at_target, q).backward()
    assert at_target.grad.abs().max() < 1e-6


# ---------------------------------------------------------------------------------------------- JML
@pytest.mark.parametrize("variant", [1, 2])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_jml_equals_soft_jaccard_on_hard_labels(variant, smooth):
    torch.manual_seed(4)
    logits = torch.randn(2, 3, 6, 6, 6)
    y = one_hot(torch.randint(0, 3, (2, 6, 6, 6)), 3)
    loss = JaccardMetricLoss("softmax", variant=variant, smooth=smooth)(logits, y)
    torch.testing.assert_close(loss, soft_jaccard_loss(torch.softmax(logits, 1), y, smooth))
    regions = (torch.rand(2, 3, 6, 6, 6) > 0.6).float()
    loss = JaccardMetricLoss("sigmoid", variant=variant, smooth=smooth)(logits, regions)
    torch.testing.assert_close(loss, soft_jaccard_loss(torch.sigmoid(logits), regions, smooth))


@pytest.mark.parametrize("variant", [1, 2])
def test_jml_is_zero_at_the_soft_target_and_positive_elsewhere(variant):
    torch.manual_seed(5)
    q = geols_soft_labels(one_hot(torch.randint(0, 3, (2, 5, 5, 5)), 3), torch.rand(2, 2, 5, 5, 5), 0.1)
    softmax_jml = JaccardMetricLoss("softmax", variant=variant, smooth=0.0)
    assert softmax_jml(torch.log(q), q).item() == pytest.approx(0.0, abs=1e-6)  # softmax(log q) = q
    for _ in range(5):
        assert softmax_jml(torch.log(q) + 0.5 * torch.randn_like(q), q).item() > 1e-3
    q_regions = geols_region_soft_labels((torch.rand(2, 3, 5, 5, 5) > 0.5).float(), torch.rand(2, 3, 5, 5, 5), 0.1)
    sigmoid_jml = JaccardMetricLoss("sigmoid", variant=variant)
    assert sigmoid_jml(torch.logit(q_regions), q_regions).item() == pytest.approx(0.0, abs=1e-6)
    assert sigmoid_jml(torch.logit(q_regions) + 0.5 * torch.randn_like(q_regions), q_regions).item() > 1e-3


def test_jml_hand_value_and_batch_reduction():
    # one class channel via sigmoid: x = (0.5, 0.5), y = (1, 0): I = 0.5, U = 1.5 -> loss 2/3 (smooth 0)
    logits = torch.zeros(1, 1, 2)
    y = torch.tensor([[[1.0, 0.0]]])
    assert JaccardMetricLoss("sigmoid", smooth=0.0)(logits, y).item() == pytest.approx(2 / 3)
    # batch=True pools the two samples' sums: sample 0 (I 0.5, U 1.5), sample 1 (I 0, U 1)
    logits, y = torch.zeros(2, 1, 2), torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])
    assert JaccardMetricLoss("sigmoid", smooth=0.0, batch=True)(logits, y).item() == pytest.approx(1 - 0.5 / 2.5)
    assert JaccardMetricLoss("sigmoid", smooth=0.0)(logits, y).item() == pytest.approx((2 / 3 + 1) / 2)


@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_empty_class_and_empty_mask_give_no_nan(smooth):
    logits = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
    y = one_hot(torch.zeros(2, 4, 4, 4, dtype=torch.long), 3)  # classes 1 and 2 absent
    q = geols_soft_labels(y, torch.zeros(2, 2, 4, 4, 4), 0.1)  # empty classes: all-zero maps
    for loss_fn in (JaccardMetricLoss("softmax", smooth=smooth), JaccardMetricLoss("sigmoid", smooth=smooth),
                    SoftCrossEntropyLoss(), SoftBinaryCrossEntropyLoss()):
        for target in (y, q):
            for mask in (None, torch.zeros(2, 1, 4, 4, 4, dtype=torch.bool)):
                logits.grad = None
                loss = loss_fn(logits, target, mask)
                loss.backward()
                assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    # everything masked: x = y = 0 on every class counts as a perfect match
    mask = torch.zeros(2, 1, 4, 4, 4, dtype=torch.bool)
    assert JaccardMetricLoss("softmax", smooth=0.0)(logits, y, mask).item() == 0.0


# ------------------------------------------------------------------------------ nnU-Net per-scale loss
def test_soft_label_loss_on_label_targets_with_ignore_label():
    torch.manual_seed(6)
    output = torch.randn(2, 3, 4, 4, 4)
    seg = torch.randint(0, 3, (2, 1, 4, 4, 4))
    seg[:, :, :2] = 3  # ignore label 3 on half of the patch
    maps = torch.rand(2, 2, 4, 4, 4)
    loss = SoftLabelLoss("geols", "ce", has_regions=False, ignore_label=3)(output, seg, maps)
    kept = seg[:, 0, 2:]
    expected = SoftCrossEntropyLoss()(output[:, :, 2:], geols_soft_labels(one_hot(kept, 3), maps[:, :, 2:], 0.1))
    torch.testing.assert_close(loss, expected)
    ls = SoftLabelLoss("ls", "jml", has_regions=False, ignore_label=3)(output, seg)
    torch.testing.assert_close(ls, JaccardMetricLoss("softmax")(output, label_smoothing(one_hot(
        torch.where(seg[:, 0] == 3, 0, seg[:, 0]), 3), 0.1), seg != 3))


def test_soft_label_loss_on_region_targets():
    torch.manual_seed(7)
    output = torch.randn(2, 3, 4, 4, 4)
    regions = (torch.rand(2, 3, 4, 4, 4) > 0.5).to(torch.int16)
    maps = torch.rand(2, 3, 4, 4, 4)
    loss = SoftLabelLoss("geols", "jml", has_regions=True)(output, regions, maps)
    torch.testing.assert_close(loss, JaccardMetricLoss("sigmoid")(output, geols_region_soft_labels(regions, maps, 0.1)))
    loss = SoftLabelLoss("ls", "ce", has_regions=True)(output, regions)
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(output, 0.9 * regions + 0.05))
    with pytest.raises(ValueError, match="--kind geols"):
        SoftLabelLoss("geols", "ce", has_regions=True)(output, regions, maps[:, :2])
