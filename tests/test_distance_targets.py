"""Signed distance maps (dtm) and rectified region-wise maps (rrw): hand-computable values, conventions, cropping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nnunet_ext.targets import REGISTRY, TargetSpec, make_options
from nnunet_ext.targets.common import bounding_box
from nnunet_ext.targets.dtm import DTMOptions, dtm_maps, signed_distance
from nnunet_ext.targets.euclidean import distance_to_outside, euclidean_backend
from nnunet_ext.targets.rrw import RRWOptions, rrw_maps


def line_mask() -> np.ndarray:
    """2D (1, 7): voxels 2..4 inside."""
    mask = np.zeros((1, 7), bool)
    mask[0, 2:5] = True
    return mask


def test_signed_distance_by_hand_with_spacing():
    d = signed_distance(line_mask(), (1.0, 2.0))
    # outside: 2 mm steps to the nearest inside voxel; inside: to the nearest outside voxel
    np.testing.assert_allclose(d[0], [4, 2, -2, -4, -2, 2, 4])


def test_signed_distance_3d_matches_full_volume_edt_and_is_antisymmetric():
    rng = np.random.default_rng(0)
    mask = ndimage.binary_dilation(rng.random((20, 24, 18)) > 0.995, iterations=2)
    spacing = (1.5, 1.0, 0.7)
    d = signed_distance(mask, spacing)
    expected = ndimage.distance_transform_edt(~mask, sampling=spacing) - ndimage.distance_transform_edt(mask, sampling=spacing)
    np.testing.assert_allclose(d, expected, rtol=1e-6, atol=1e-5)  # the bounding-box crop is exact
    np.testing.assert_allclose(signed_distance(~mask, spacing), -d, atol=1e-5)
    assert (d[mask] < 0).all() and (d[~mask] > 0).all()


def test_bounding_box_grows_per_axis_and_clips_to_the_array():
    mask = np.zeros((6, 8), bool)
    mask[1:3, 4:7] = True
    assert bounding_box(mask) == (slice(1, 3), slice(4, 7))
    assert bounding_box(mask, 2) == (slice(0, 5), slice(2, 8))
    assert bounding_box(mask, (0, 1)) == (slice(1, 3), slice(3, 8))
    with pytest.raises(ValueError, match="empty mask"):
        bounding_box(np.zeros((3, 3), bool))


def test_dtm_empty_full_and_background_channels():
    masks = np.stack([line_mask(), np.zeros((1, 7), bool)])
    valid = np.ones((1, 7), bool)
    maps = dtm_maps(np.zeros((1, 1, 7), np.float32), masks, valid, (1.0, 1.0), DTMOptions(background=True))
    assert maps.shape == (3, 1, 7) and maps.dtype == np.float32
    np.testing.assert_allclose(maps[0], -maps[1])  # background = complement of the only object
    assert not maps[2].any()  # empty channel: no boundary, all 0
    assert not signed_distance(np.ones((3, 3), bool), (1.0, 1.0)).any()  # no voxel outside: all 0
    normalised = dtm_maps(np.zeros((1, 1, 7), np.float32), masks, valid, (1.0, 1.0), DTMOptions(normalise=True))
    np.testing.assert_allclose(normalised[0, 0], np.array([2, 1, -1, -2, -1, 1, 2]) / 2)
    assert not np.isnan(normalised).any()


def test_voxels_outside_valid_are_background():
    mask = np.ones((1, 7), bool)
    valid = np.ones((1, 7), bool)
    valid[0, :2] = False
    maps = dtm_maps(np.zeros((1, 1, 7), np.float32), mask[None], valid, (1.0, 1.0), DTMOptions())
    np.testing.assert_allclose(maps[0, 0], [2, 1, -1, -2, -3, -4, -5])


def test_rrw_map_by_hand():
    masks = line_mask()[None]
    maps = rrw_maps(np.zeros((1, 1, 7), np.float32), masks, np.ones((1, 7), bool), (1.0, 1.0),
                    RRWOptions(background=True, complements=True))
    assert maps.shape == (3, 1, 7)
    np.testing.assert_allclose(maps[1, 0], [1, 1, -0.5, -1, -0.5, 1, 1])  # Eq. 4: -d / max inside, 1 elsewhere
    np.testing.assert_allclose(maps[0, 0], [-1, -0.5, 1, 1, 1, -0.5, -1])  # background
    np.testing.assert_allclose(maps[2], maps[0])  # the complement of the only class is the background


def test_rrw_is_rectified_and_handles_degenerate_masks():
    rng = np.random.default_rng(1)
    labels = ndimage.median_filter(rng.integers(0, 4, (16, 16, 12)), size=3)
    masks = np.stack([labels == k for k in (1, 2, 3)] + [np.zeros_like(labels, bool)])
    maps = rrw_maps(np.zeros((1, *labels.shape), np.float32), masks, np.ones(labels.shape, bool), (1.0, 1.0, 2.0),
                    RRWOptions(background=True))
    inside = np.concatenate([~masks.any(0, keepdims=True), masks])
    assert (maps[inside] < 0).all() and (maps[inside] >= -1).all() and (maps[~inside] == 1).all()
    assert (inside.sum(0) == 1).all()  # exactly one class (one negative component) per voxel
    assert (maps[4] == 1).all()  # empty class: all 1
    full = rrw_maps(np.zeros((1, 3, 3), np.float32), np.ones((1, 3, 3), bool), np.ones((3, 3), bool), (1.0, 1.0), RRWOptions())
    assert (full == -1).all()


def test_kinds_are_registered_with_params():
    assert REGISTRY["dtm"].compute is dtm_maps and REGISTRY["rrw"].compute is rrw_maps
    assert make_options("dtm", {"background": True}) == DTMOptions(background=True)
    assert TargetSpec("rrw", {"complements": True}) == TargetSpec("rrw", {"background": False, "complements": True})
    with pytest.raises(ValueError, match="unknown"):
        make_options("dtm", {"delta": 0})


# ------------------------------------------------------------------------------------------------
# nnU-Net's ignore label: ignored voxels are on neither side and create no boundary
# ------------------------------------------------------------------------------------------------
def ignored_line() -> tuple[np.ndarray, np.ndarray]:
    """2D (1, 9): ignored 0..1, mask 2..5, known background 6..8."""
    mask = np.zeros((1, 9), bool)
    mask[0, 2:6] = True
    ignored = np.zeros((1, 9), bool)
    ignored[0, :2] = True
    return mask, ignored


def test_dtm_ignored_voxels_by_hand():
    mask, ignored = ignored_line()
    valid = np.ones(mask.shape, bool)
    maps = dtm_maps(np.zeros((1, *mask.shape), np.float32), mask[None], valid, (1.0, 1.0),
                    DTMOptions(background=True), ignored=ignored)
    # inside: distance to the nearest *known* outside voxel (6), not to the ignored voxel 1; ignored: 0
    np.testing.assert_allclose(maps[1, 0], [0, 0, -4, -3, -2, -1, 1, 2, 3])
    # background channel: voxels 6..8 only (ignored ones are no background either)
    np.testing.assert_allclose(maps[0, 0], [0, 0, 4, 3, 2, 1, -1, -2, -3])
    plain = dtm_maps(np.zeros((1, *mask.shape), np.float32), mask[None], valid, (1.0, 1.0), DTMOptions())
    assert plain[0, 0, 2] == -1  # treated as background, the ignored voxels made a false boundary
    none = dtm_maps(np.zeros((1, *mask.shape), np.float32), mask[None], valid, (1.0, 1.0), DTMOptions(),
                    ignored=np.zeros(mask.shape, bool))
    np.testing.assert_array_equal(none, plain)  # no voxel ignored: the usual maps
    everything_else = np.ones(mask.shape, bool) & ~mask
    assert not dtm_maps(np.zeros((1, *mask.shape), np.float32), mask[None], valid, (1.0, 1.0), DTMOptions(),
                        ignored=everything_else).any()  # no known voxel outside: no boundary, all 0


def test_rrw_ignored_voxels_by_hand():
    mask, ignored = ignored_line()
    maps = rrw_maps(np.zeros((1, *mask.shape), np.float32), mask[None], np.ones(mask.shape, bool), (1.0, 1.0),
                    RRWOptions(background=True, complements=True), ignored=ignored)
    np.testing.assert_allclose(maps[1, 0], [1, 1, -1, -0.75, -0.5, -0.25, 1, 1, 1])
    np.testing.assert_allclose(maps[0, 0], [1, 1, 1, 1, 1, 1, -1 / 3, -2 / 3, -1])  # background: 6..8
    np.testing.assert_allclose(maps[2], maps[0])  # complement of the only class: its known outside
    plain = rrw_maps(np.zeros((1, *mask.shape), np.float32), mask[None], np.ones(mask.shape, bool), (1.0, 1.0),
                     RRWOptions())
    assert plain[0, 0, 2] == -0.5  # treated as background, voxel 2 was on the boundary


def test_dtm_and_rrw_3d_ignored_slab_matches_the_known_boundary():
    rng = np.random.default_rng(3)
    mask = ndimage.binary_dilation(rng.random((16, 18, 14)) > 0.99, iterations=3)
    ignored = np.zeros(mask.shape, bool)
    ignored[:, :, 6:8] = True
    mask &= ~ignored
    valid = np.ones(mask.shape, bool)
    spacing = (1.0, 1.5, 2.0)
    d = dtm_maps(np.zeros((1, *mask.shape), np.float32), mask[None], valid, spacing, DTMOptions(), ignored=ignored)[0]
    known_outside = ~mask & ~ignored
    inside = ndimage.distance_transform_edt(~known_outside, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    np.testing.assert_allclose(d[mask], -inside[mask], rtol=1e-6)
    np.testing.assert_allclose(d[known_outside], outside[known_outside], rtol=1e-6)
    assert (d[ignored] == 0).all()
    z = rrw_maps(np.zeros((1, *mask.shape), np.float32), mask[None], valid, spacing, RRWOptions(), ignored=ignored)[0]
    np.testing.assert_allclose(z[mask], -inside[mask] / inside[mask].max(), rtol=1e-6)
    assert (z[~mask] == 1).all()


# ------------------------------------------------------------- the EDT library (nnunet_ext.targets.euclidean)
@pytest.mark.parametrize("shape, spacing", [((20, 24, 18), (2.5, 1.0, 0.7)), ((1, 30, 26), (3.0, 1.0, 0.5)),
                                            ((17, 23), (2.0, 0.7)), ((9, 11, 1), (1.0, 2.0, 3.0)), ((40,), (2.0,))])
def test_edt_package_equals_scipy_exact_edt(shape, spacing):
    rng = np.random.default_rng(3)
    mask = rng.random(shape) > 0.3
    expected = ndimage.distance_transform_edt(mask, sampling=spacing)
    np.testing.assert_allclose(distance_to_outside(mask, spacing), expected, rtol=1e-6, atol=1e-5)
    # spacing follows the array's axes whatever its memory order (edt's docs once said otherwise)
    np.testing.assert_allclose(distance_to_outside(np.asfortranarray(mask), spacing), expected, rtol=1e-6, atol=1e-5)
    with euclidean_backend("scipy"):
        np.testing.assert_allclose(distance_to_outside(mask, spacing), expected, rtol=1e-6, atol=1e-6)


def test_edt_without_any_outside_voxel_is_an_error():
    with pytest.raises(ValueError, match="no voxel outside"):
        distance_to_outside(np.ones((4, 5), bool), (1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        distance_to_outside(np.zeros((4, 5), bool), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="unknown Euclidean"):
        with euclidean_backend("cupy"):
            pass


@pytest.mark.parametrize("kind, params", [("dtm", {"background": True}), ("rrw", {"complements": True}),
                                          ("sing", {})])
def test_maps_are_the_same_with_either_edt_backend(kind, params):
    rng = np.random.default_rng(4)
    labels = ndimage.median_filter(rng.integers(0, 3, (14, 16, 12)), size=3)
    masks = np.stack([labels > 0, labels == 2])
    image = rng.random((1, *labels.shape)).astype(np.float32)
    valid = np.ones(labels.shape, bool)
    spacing = (2.0, 1.0, 0.8)
    kind_entry, options = REGISTRY[kind], make_options(kind, params)
    ours = kind_entry.compute(image, masks, valid, spacing, options)
    with euclidean_backend("scipy"):
        reference = kind_entry.compute(image, masks, valid, spacing, options)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
