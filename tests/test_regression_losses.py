"""Regression losses for signed maps (nnunet_ext.losses): values, gradients, masks, degenerate inputs."""

import math

import pytest
import torch

from nnunet_ext.losses import FocalL1Loss, FocalL1SimpleLoss, OfficialSiNGRLoss, ProductLoss, TanhL1Loss, TanhL2Loss

ALL_LOSSES = [FocalL1Loss(), FocalL1SimpleLoss(), TanhL1Loss(), TanhL2Loss(), OfficialSiNGRLoss(), ProductLoss()]


def _logits(values):
    """Raw outputs z whose tanh is exactly the given Z values (as float64 atanh, rounded to float32)."""
    return torch.atanh(torch.tensor(values, dtype=torch.float64)).float()


def _as_volume(values):
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)


def test_focal_l1_hand_computed_both_sign_branches():
    # voxel 1: same sign, S=0.8, Z=0.5 -> |S-Z|=0.3, w = 0.3^1 / 0.8, term = 0.09 / 0.8 = 0.1125
    # voxel 2: opposite sign, S=0.6, Z=-0.2 -> |S-Z|=0.8, w = 1 / 0.6, term = 0.8 / 0.6 = 1.3333...
    # voxel 3: same sign, S=-1, Z=-0.9 -> |S-Z|=0.1, w = 0.1 / 1, term = 0.01
    # voxel 4: S=0 counts as same sign (S*Z = 0 >= 0): S=0, Z=0.4 -> w = 0.4 / 0.4 = 1, term = 0.4
    target = _as_volume([0.8, 0.6, -1.0, 0.0])
    z = _logits([0.5, -0.2, -0.9, 0.4]).reshape(1, 1, 1, -1)
    expected = (0.09 / 0.8 + 0.8 / 0.6 + 0.01 + 0.4) / 4
    assert FocalL1Loss()(z, target).item() == pytest.approx(expected, rel=1e-5)

    # gamma = 2: only the same-sign numerators change; eps adds to the denominators
    expected_g2_eps = (0.3 * 0.09 / 0.9 + 0.8 / 0.7 + 0.1 * 0.01 / 1.1 + 0.4 * 0.16 / 0.5) / 4
    assert FocalL1Loss(gamma=2.0, eps=0.1)(z, target).item() == pytest.approx(expected_g2_eps, rel=1e-5)


def test_focal_l1_weight_is_detached():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 4, 5, 6) * 2 - 1
    z = torch.randn(2, 3, 4, 5, 6, requires_grad=True)
    FocalL1Loss(gamma=1.0)(z, target).backward()

    prediction = torch.tanh(z.detach())
    error = (target - prediction).abs()
    same_sign = target * prediction >= 0
    weight = torch.where(same_sign, error, torch.ones_like(error)) / torch.maximum(target.abs(), prediction.abs())
    analytic = weight * torch.sign(prediction - target) * (1 - prediction**2) / target.numel()
    torch.testing.assert_close(z.grad, analytic, rtol=1e-5, atol=1e-9)

    # the gradient through the weight would be different: check the test would notice it
    z2 = z.detach().clone().requires_grad_(True)
    p2 = torch.tanh(z2)
    e2 = (target - p2).abs()
    w2 = torch.where(target * p2 >= 0, e2, torch.ones_like(e2)) / torch.maximum(target.abs(), p2.abs())
    (e2 * w2).mean().backward()
    assert not torch.allclose(z2.grad, analytic, rtol=1e-3, atol=1e-7)


def test_simple_focal_gradient_uses_detached_weight():
    torch.manual_seed(1)
    target = torch.rand(1, 2, 8, 8) * 2 - 1
    z = torch.randn(1, 2, 8, 8, requires_grad=True)
    FocalL1SimpleLoss(gamma=1.0)(z, target).backward()
    prediction = torch.tanh(z.detach())
    analytic = (target - prediction).abs() * torch.sign(prediction - target) * (1 - prediction**2) / target.numel()
    torch.testing.assert_close(z.grad, analytic, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
def test_masks_exclude_voxels(loss):
    torch.manual_seed(2)
    target = torch.rand(2, 2, 6, 6) * 2 - 1
    z = torch.randn(2, 2, 6, 6)
    mask = torch.zeros(2, 1, 6, 6, dtype=torch.bool)
    mask[:, :, :3] = True
    masked = loss(z, target, mask)

    # garbage in excluded voxels must not change the result
    z_garbage, target_garbage = z.clone(), target.clone()
    z_garbage[:, :, 3:] = 50.0
    target_garbage[:, :, 3:] = -target_garbage[:, :, 3:]
    assert loss(z_garbage, target_garbage, mask).item() == pytest.approx(masked.item(), rel=1e-6)

    # bool and float masks, (B,1) and (B,K) masks agree
    assert loss(z, target, mask.float()).item() == pytest.approx(masked.item(), rel=1e-6)
    assert loss(z, target, mask.expand(2, 2, 6, 6)).item() == pytest.approx(masked.item(), rel=1e-6)

    # an all-False mask gives 0 and a usable graph
    z_req = z.clone().requires_grad_(True)
    empty = loss(z_req, target, torch.zeros_like(mask))
    empty.backward()
    assert empty.item() == 0.0 and torch.all(z_req.grad == 0)


@pytest.mark.parametrize("loss", [FocalL1Loss(), FocalL1SimpleLoss(), TanhL1Loss(), TanhL2Loss(), OfficialSiNGRLoss()],
                         ids=lambda loss: type(loss).__name__)
def test_voxelwise_losses_mask_equals_mean_over_kept_voxels(loss):
    torch.manual_seed(3)
    target = torch.rand(1, 1, 10) * 2 - 1
    z = torch.randn(1, 1, 10)
    mask = torch.tensor([True, False] * 5).reshape(1, 1, 10)
    expected = loss(z[..., ::2], target[..., ::2])
    assert loss(z, target, mask).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
def test_zero_loss_at_perfect_prediction(loss):
    torch.manual_seed(4)
    z = torch.randn(2, 3, 5, 5, 5)
    target = torch.tanh(z)
    assert loss(z, target).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
def test_gradients_finite_on_random_and_degenerate_inputs(loss):
    torch.manual_seed(5)
    target = torch.rand(2, 2, 4, 4, 4) * 2 - 1
    target[0, 0, 0] = 0.0  # delta-0 boundary seeds
    target[0, 1, 1] = 1e-7  # interpolated values next to the zero level set
    z = torch.randn(2, 2, 4, 4, 4) * 3
    z[0, 0, 0, :2] = 0.0  # zero output on zero targets
    z[0, 1, 1] = -1e-7  # opposite sign, both tiny
    z[1] = 40.0  # saturated tanh
    z.requires_grad_(True)
    value = loss(z, target)
    value.backward()
    assert math.isfinite(value.item())
    assert torch.isfinite(z.grad).all()


def test_focal_l1_delta0_no_nan_and_capped_weight():
    # S = Z = 0: Eq. 6 with eps = 0 would be 0/0
    target = torch.zeros(1, 1, 4)
    z = torch.zeros(1, 1, 4, requires_grad=True)
    value = FocalL1Loss(eps=0.0)(z, target)
    value.backward()
    assert value.item() == 0.0 and torch.all(z.grad == 0)

    # opposite sign with both tiny: the weight is 1 / max(|S|,|Z|) capped at 1 / min_denominator
    target = torch.full((1, 1, 1), 1e-6)
    z = torch.full((1, 1, 1), -1e-6, requires_grad=True)
    FocalL1Loss(min_denominator=1e-3)(z, target).backward()
    assert z.grad.item() == pytest.approx(-1e3, rel=1e-4)

    # above the floor the weight is Eq. 6 exactly
    target = torch.full((1, 1, 1), 0.01)
    z = _logits([-0.02]).reshape(1, 1, 1).requires_grad_(True)
    FocalL1Loss(min_denominator=1e-3)(z, target).backward()
    assert z.grad.item() == pytest.approx(-(1 / 0.02) * (1 - 0.02**2), rel=1e-4)


def test_official_loss_is_2x_mse_in_value_and_1x_mse_in_gradient_for_delta_half_targets():
    torch.manual_seed(6)
    # SiNG with delta = 0.5: |S| in [0.5, 1], both signs
    magnitude = 0.5 + 0.5 * torch.rand(2, 3, 6, 6, 6)
    target = torch.where(torch.rand(2, 3, 6, 6, 6) > 0.5, magnitude, -magnitude)
    z = torch.randn(2, 3, 6, 6, 6) * 2
    z[0, 0, 0] = 0.0  # Z = 0 takes the clamped branch; still 2|S-Z| >= 1 there
    z_official = z.clone().requires_grad_(True)
    z_mse = z.clone().requires_grad_(True)

    official = OfficialSiNGRLoss()(z_official, target)
    mse = TanhL2Loss()(z_mse, target)
    assert official.item() == pytest.approx(2 * mse.item(), rel=1e-5)

    official.backward()
    mse.backward()
    # the weight 2|S-Z| is detached, so the gradient is that of 1 x MSE, i.e. half that of 2 x MSE
    torch.testing.assert_close(z_official.grad, z_mse.grad, rtol=1e-5, atol=1e-10)


def test_official_loss_differs_from_mse_for_delta0_targets():
    # opposite signs with a small error: weight max(2 * 0.2, 1) = 1, not 2|S-Z| = 0.4
    target = _as_volume([0.1])
    z = _logits([-0.1]).reshape(1, 1, 1, 1)
    assert OfficialSiNGRLoss()(z, target).item() == pytest.approx(0.2, rel=1e-5)
    assert 2 * TanhL2Loss()(z, target).item() == pytest.approx(0.08, rel=1e-5)


def test_product_loss_hand_computed():
    # one sample, two channels of two voxels
    target = torch.tensor([[[0.5, -1.0], [1.0, 1.0]]])
    prediction = [[[0.5, 0.5], [-0.5, 1.0]]]
    z = _logits(prediction)
    l1 = (0 + 1.5 + 1.5 + 0) / 4
    # channel 0: sum SZ = 0.25 - 0.5 = -0.25; sum Z^2 = 0.5; sum S^2 = 1.25 -> r = -0.25 / 1.5
    # channel 1: sum SZ = -0.5 + 1 = 0.5; sum Z^2 = 1.25; sum S^2 = 2 -> r = 0.5 / 3.75
    r0, r1 = -0.25 / 1.5, 0.5 / 3.75
    expected = l1 + ((1 / 3 - r0) + (1 / 3 - r1)) / 2
    assert ProductLoss()(z, target).item() == pytest.approx(expected, rel=1e-5)


def test_product_loss_all_zero_channel_counts_as_perfect():
    target = torch.zeros(1, 1, 3)
    z = torch.zeros(1, 1, 3, requires_grad=True)
    value = ProductLoss()(z, target)
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(z.grad).all()


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError):
        TanhL1Loss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError):
        TanhL1Loss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.ones(1, 3, 4, 4))
