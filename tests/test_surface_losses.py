"""GSL (Eqs. 12-16), RW/RRW (Eq. 1, Secs. 3.3-3.4), Boundary loss, their nnU-Net adapters and the class-weights file."""

from __future__ import annotations

import json
import math

import blosc2
import numpy as np
import pytest
import torch
from scipy import ndimage

from nnunet_ext.losses import BoundaryLoss, GeneralizedSurfaceLoss, RegionWiseLoss
from nnunet_ext.losses.distance import alpha_cosine, alpha_linear, alpha_rebalance, alpha_step, gsl_class_weights
from nnunet_ext.targets.dtm import DTMOptions, dtm_maps
from nnunet_ext.targets.rrw import RRWOptions, rrw_maps
from nnunet_ext.training.loss_adapters.distance import BoundaryTerm, GSLTerm, RegionAndDistanceLoss, RRWTerm
from nnunet_ext.nnunet_env import gsl_counts_file
from nnunet_ext.training.gsl import class_weights


def random_case(seed: int = 0, shape=(12, 14, 10), classes: int = 3):
    """Labels 0..classes-1 in blobs, one-hot target (1, C, *) and the matching DTMs (1, C, *), background first."""
    rng = np.random.default_rng(seed)
    labels = ndimage.median_filter(rng.integers(0, classes, shape), size=3)
    masks = np.stack([labels == k for k in range(1, classes)])
    dtm = dtm_maps(np.zeros((1, *shape), np.float32), masks, np.ones(shape, bool), (1.0, 1.0, 1.0), DTMOptions(background=True))
    onehot = np.stack([labels == k for k in range(classes)]).astype(np.float32)
    return torch.from_numpy(labels)[None, None], torch.from_numpy(onehot)[None], torch.from_numpy(dtm)[None]


# ------------------------------------------------------------------------------------------------ GSL
def test_gsl_perfect_worst_and_range():
    _, target, dtm = random_case()
    weights = torch.tensor([0.2, 0.3, 0.5])
    loss = GeneralizedSurfaceLoss(weights)
    assert loss(target, target, dtm).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(1 - target, target, dtm).item() == pytest.approx(1.0, abs=1e-6)
    for seed in range(5):
        p = torch.softmax(torch.randn(target.shape, generator=torch.Generator().manual_seed(seed)) * 3, 1)
        assert 0.0 <= loss(p, target, dtm).item() <= 1.0


def test_gsl_by_hand():
    # one channel, two voxels: D = (-1, 2), T = (1, 0), P = (0.5, 0.5)
    # 1 - [(-1 * (1 - 1.5))^2 + (2 * (1 - 0.5))^2] / (1 + 4) = 1 - (0.25 + 1) / 5 = 0.75
    value = GeneralizedSurfaceLoss()(torch.tensor([[[0.5, 0.5]]]), torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[-1.0, 2.0]]]))
    assert value.item() == pytest.approx(0.75)


def test_gsl_empty_class_and_no_distance_give_no_nan():
    _, target, dtm = random_case()
    target, dtm = target.clone(), dtm.clone()
    target[:, 2] = 0
    dtm[:, 2] = 0  # an empty class has an all-0 map
    p = torch.full_like(target, 1 / 3, requires_grad=True)
    value = GeneralizedSurfaceLoss(torch.tensor([0.2, 0.3, 0.5]))(p, target, dtm)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(p.grad).all()
    zero = GeneralizedSurfaceLoss()(p, target, torch.zeros_like(dtm))
    assert zero.item() == 0.0


def test_gsl_mask_removes_voxels():
    p, t, d = torch.tensor([[[0.5, 0.0]]]), torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[-1.0, 2.0]]])
    masked = GeneralizedSurfaceLoss()(p, t, d, mask=torch.tensor([[[True, False]]]))
    assert masked.item() == pytest.approx(1 - 0.25)


# ------------------------------------------------------------------------------------------ schedules
def test_schedules_at_start_middle_end():
    T = 100
    assert [alpha_linear(t, T) for t in (0, 50, 100)] == [1.0, 0.5, 0.0]
    assert [alpha_cosine(t, T) for t in (0, 50, 100)] == pytest.approx([1.0, 0.5, 0.0])
    assert [alpha_step(t, T, 25) for t in (0, 24, 50, 100)] == [1.0, 1.0, 0.5, 0.0]  # N_h = 4
    assert [alpha_step(t, T, 50) for t in (49, 50, 99, 100)] == [1.0, 0.5, 0.5, 0.0]  # N_h = 2
    assert alpha_step(3, 4, 5) == 1.0  # T < h: Eq. 15 undefined, alpha stays 1
    assert [alpha_linear(t, T, hold=5) for t in (0, 4, 5, 100)] == [1.0, 1.0, 1.0, 0.0]
    assert alpha_linear(52.5, T, hold=5) == pytest.approx(0.5)
    assert [alpha_rebalance(t) for t in (0, 50, 99, 500)] == pytest.approx([1.0, 0.5, 0.01, 0.01])


def test_class_weights_sum_to_one_and_follow_eq13():
    weights = gsl_class_weights([100, 300, 600])
    assert weights.sum().item() == pytest.approx(1.0)
    inverse = np.array([1 / 100, 1 / 300, 1 / 600])
    np.testing.assert_allclose(weights.numpy(), inverse / inverse.sum(), rtol=1e-6)
    absent = gsl_class_weights([100, 0, 100])
    assert absent.tolist() == pytest.approx([0.5, 0.0, 0.5])


def test_class_weights_file_is_stored_reused_and_recomputed_when_stale(tmp_path):
    folder = tmp_path / "Dataset999_X" / "nnUNetPlans_3d_fullres"
    folder.mkdir(parents=True)
    seg = np.zeros((1, 4, 4, 4), np.int16)
    seg[0, :2] = 1
    seg[0, 0, 0, 0] = 2
    seg[0, 3, 3, 3] = -1

    def write(case, array):
        blosc2.asarray(np.ascontiguousarray(array), urlpath=str(folder / f"{case}_seg.b2nd"), mode="w")
        blosc2.asarray(np.zeros((1, 4, 4, 4), np.float32), urlpath=str(folder / f"{case}.b2nd"), mode="w")

    write("a", seg)
    weights, counts, counted = class_weights(folder, "nnUNetPlans", "3d_fullres", [[1, 2], [2]], background=True)
    assert counts == [32, 32, 1] and counted  # background includes nnU-Net's -1
    assert weights.sum().item() == pytest.approx(1.0)
    stored = json.loads(gsl_counts_file(folder, "nnUNetPlans", "3d_fullres").read_text())
    assert stored["counts"] == counts
    assert class_weights(folder, "nnUNetPlans", "3d_fullres", [[1, 2], [2]], background=True)[2] is False
    write("b", seg)  # a new case: stale
    assert class_weights(folder, "nnUNetPlans", "3d_fullres", [[1, 2], [2]], background=True)[1] == [64, 64, 2]


# ------------------------------------------------------------------------------------------------ RRW
def test_region_wise_loss_by_hand():
    # paper Sec. 3.3: y = [0.1, 0.1, 0.2, 0.6], z = [0, 0, 0, -0.6] -> sum = -0.36, mean over K = -0.09
    p = torch.tensor([0.1, 0.1, 0.2, 0.6]).view(1, 4, 1)
    assert RegionWiseLoss()(p, torch.tensor([0.0, 0.0, 0.0, -0.6]).view(1, 4, 1)).item() == pytest.approx(-0.09)
    logits = torch.log(p).requires_grad_()
    (RegionWiseLoss()(torch.softmax(logits, 1), torch.tensor([2.0, 2, 2, -0.6]).view(1, 4, 1)) * 4).backward()
    np.testing.assert_allclose(logits.grad.view(-1).numpy(), [0.16, 0.16, 0.31, -0.62], atol=0.01)  # paper's values


def negative_components(logits: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    logits = logits.clone().requires_grad_()
    RegionWiseLoss()(torch.softmax(logits, 1), maps).backward()
    return (logits.grad < 0).sum(1)


def test_rectified_maps_give_exactly_one_negative_gradient_component():
    labels, _, _ = random_case(seed=3, classes=4)
    masks = np.stack([labels[0, 0].numpy() == k for k in (1, 2, 3)])
    rrw = torch.from_numpy(rrw_maps(np.zeros((1, *masks.shape[1:]), np.float32), masks, np.ones(masks.shape[1:], bool),
                                    (1.0, 1.0, 1.0), RRWOptions(background=True)))[None]
    for seed in range(3):
        logits = torch.randn(rrw.shape, generator=torch.Generator().manual_seed(seed)) * 2
        assert (negative_components(logits, rrw) == 1).all()


def test_unrectified_rw_boundary_maps_give_two_negative_components_somewhere():
    labels, _, dtm = random_case(seed=3, classes=4)  # RW-Boundary maps (Eq. 3): signed distances of every class
    logits = torch.randn(dtm.shape, generator=torch.Generator().manual_seed(0)) * 2
    negatives = negative_components(logits, dtm)
    assert (negatives >= 2).any()
    # the paper's Fig. 2 voxel: z = [12, 4, -3] at a uniform prediction has two negative components
    assert negative_components(torch.zeros(1, 3, 1), torch.tensor([12.0, 4.0, -3.0]).view(1, 3, 1)).item() == 2


def test_rrw_term_for_regions_is_two_class_softmax_per_region():
    region_masks = np.zeros((2, 1, 6), bool)
    region_masks[0, 0, 1:5] = True
    region_masks[1, 0, 2:4] = True
    maps = torch.from_numpy(rrw_maps(np.zeros((1, 1, 6), np.float32), region_masks, np.ones((1, 6), bool), (1.0, 1.0),
                                     RRWOptions(complements=True)))[None]
    z = torch.randn(1, 2, 1, 6)
    expected = torch.stack([torch.softmax(torch.stack([torch.zeros_like(z[:, r]), z[:, r]], 1), 1) for r in range(2)])
    # expected[r] = (1 - sigmoid, sigmoid) -> pair with (complement map, region map)
    by_hand = sum((expected[r][:, 1] * maps[:, r] + expected[r][:, 0] * maps[:, 2 + r]).sum() for r in range(2)) / (4 * 6)
    assert RRWTerm(has_regions=True)(z, torch.from_numpy(region_masks)[None].float(), maps).item() == pytest.approx(by_hand.item())
    assert torch.isfinite(RRWTerm(has_regions=True)(z, torch.zeros(1, 2, 1, 6), torch.ones(1, 4, 1, 6)))


# ------------------------------------------------------------------------------------------- Boundary
def test_boundary_loss_by_hand_and_mask():
    p, d = torch.tensor([[[0.5, 1.0]]]), torch.tensor([[[-2.0, 3.0]]])
    assert BoundaryLoss()(p, d).item() == pytest.approx((-1.0 + 3.0) / 2)
    assert BoundaryLoss()(p, d, torch.tensor([[[True, False]]])).item() == pytest.approx(-1.0)


# ------------------------------------------------------------------------------------------- adapters
def test_adapters_on_label_and_region_outputs():
    labels, target, dtm = random_case()
    logits = torch.randn(target.shape)
    gsl = GSLTerm(GeneralizedSurfaceLoss(), has_regions=False, with_background=True)
    assert gsl(logits, labels, dtm).item() == pytest.approx(
        GeneralizedSurfaceLoss()(torch.softmax(logits, 1), target, dtm).item(), rel=1e-6)
    without_bg = GSLTerm(GeneralizedSurfaceLoss(), has_regions=False, with_background=False)
    assert without_bg(logits, labels, dtm[:, 1:]).item() == pytest.approx(
        GeneralizedSurfaceLoss()(torch.softmax(logits, 1)[:, 1:], target[:, 1:], dtm[:, 1:]).item(), rel=1e-6)
    boundary = BoundaryTerm(has_regions=True)(logits[:, 1:], target[:, 1:], dtm[:, 1:])
    assert boundary.item() == pytest.approx(BoundaryLoss()(torch.sigmoid(logits[:, 1:]), dtm[:, 1:]).item(), rel=1e-6)
    with pytest.raises(ValueError, match="recompute"):
        gsl(logits, labels, dtm[:, 1:])
    # ignore label 9 on one half: the distance term ignores it
    ignored = labels.clone()
    ignored[..., :5] = 9
    masked = GSLTerm(GeneralizedSurfaceLoss(), has_regions=False, ignore_label=9)(logits, ignored, dtm)
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[..., 5:] = True
    assert masked.item() == pytest.approx(
        GeneralizedSurfaceLoss()(torch.softmax(logits, 1), target, dtm, keep).item(), rel=1e-6)


def test_region_and_distance_weighting():
    region = lambda output, seg: torch.tensor(2.0)  # noqa: E731
    distance = lambda output, seg, maps: torch.tensor(float("nan")) if maps is None else torch.tensor(4.0)  # noqa: E731
    combined = RegionAndDistanceLoss(region, distance, alpha=0.25)
    assert combined(None, None, torch.zeros(1)).item() == pytest.approx(0.25 * 2 + 0.75 * 4)
    assert math.isnan(RegionAndDistanceLoss(region, distance, alpha=1.0)(None, None, None).item())  # both terms run


def test_class_weights_do_not_count_ignored_voxels(tmp_path):
    """nnU-Net's ignore label: ignored voxels are of unknown class, so they count for no channel (the
    background included); counts stored without the ignore label are counted again."""
    folder = tmp_path / "Dataset998_X" / "nnUNetPlans_3d_fullres"
    folder.mkdir(parents=True)
    seg = np.zeros((1, 4, 4, 4), np.int16)
    seg[0, :2] = 1
    seg[0, 3] = 3  # the ignore label: 16 voxels
    seg[0, 2, 0, 0] = -1  # outside nnU-Net's nonzero mask: trained as background, counted as background
    blosc2.asarray(seg, urlpath=str(folder / "a_seg.b2nd"), mode="w")
    blosc2.asarray(np.zeros((1, 4, 4, 4), np.float32), urlpath=str(folder / "a.b2nd"), mode="w")
    unaware = class_weights(folder, "nnUNetPlans", "3d_fullres", [[1]], background=True)[1]
    assert unaware == [32, 32]  # without an ignore label the 16 voxels of label 3 are background
    weights, counts, counted = class_weights(folder, "nnUNetPlans", "3d_fullres", [[1]], background=True,
                                             ignore_label=3)
    assert counts == [16, 32] and counted  # counted again, the ignored voxels left out
    assert weights.tolist() == pytest.approx([2 / 3, 1 / 3])
    stored = json.loads(gsl_counts_file(folder, "nnUNetPlans", "3d_fullres").read_text())
    assert stored["ignore_label"] == 3 and stored["counts"] == [16, 32]
    assert class_weights(folder, "nnUNetPlans", "3d_fullres", [[1]], background=True, ignore_label=3)[2] is False
