"""GeoLS maps (GeoLS, MIDL 2024, Eqs. 3-5): registration, distance, values, degenerate masks, padding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnunet_ext.preprocessing.precompute_targets import _parser
from nnunet_ext.targets import REGISTRY, TargetSpec
from nnunet_ext.targets.geols import GeoLSOptions, geols_distance, geols_maps, skeleton_seeds


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """FastGeodis on these tiny arrays is fastest on one thread (OpenMP threads only contend on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registered_with_options_as_cli_flags():
    assert REGISTRY["geols"].compute is geols_maps
    assert TargetSpec("geols").params == GeoLSOptions().as_params()
    assert TargetSpec("geols", {"scaling": "mean"}) != TargetSpec("geols")
    args = _parser("geols").parse_args(["-d", "1", "-c", "3d_fullres", "--kind", "geols", "--gamma", "2",
                                        "--scaling", "mean"])
    assert (args.gamma, args.scaling) == (2.0, "mean")
    with pytest.raises(ValueError, match="unknown GeoLSOptions parameter"):
        GeoLSOptions.from_params({"alpha": 0.1})  # alpha is a loss parameter, not a map parameter
    with pytest.raises(ValueError, match="scaling"):
        GeoLSOptions(scaling="max")
    assert GeoLSOptions.authors_code().as_params() == {**GeoLSOptions().as_params(), "gamma": 1e5,
                                                       "scaling": "mean", "image": "mean_of_maps",
                                                       "iterations": 4}


def test_step_cost_is_length_plus_gamma_times_intensity_change():
    # a line of 12 voxels (spacing 2 mm), seed at one end, an intensity step of 3 in the middle
    image = np.zeros((1, 1, 12), np.float32)
    image[..., 6:] = 3.0
    seeds = np.zeros((1, 1, 12), bool)
    seeds[..., 0] = True
    for gamma in (0.0, 1.0, 4.0):
        distance = geols_distance(image, seeds, (1.0, 1.0, 2.0), GeoLSOptions(gamma=gamma))
        assert distance[0, 0, -1] == pytest.approx(11 * 2.0 + gamma * 3.0, rel=1e-5)


def test_eq5_values_around_a_single_seed():
    mask = np.zeros((1, 9, 9, 9), bool)
    mask[0, 4, 4, 4] = True  # its own skeleton
    image = np.ones((1, 9, 9, 9), np.float32)  # constant: D is the spatial distance
    g = geols_maps(image, mask, np.ones((9, 9, 9), bool), (2.0, 1.0, 1.0), GeoLSOptions())[0]
    d_max = geols_distance(image[0], mask[0], (2.0, 1.0, 1.0), GeoLSOptions()).max()
    expected = lambda d: (math.exp(-d) - math.exp(-d_max)) / (1 - math.exp(-d_max))  # noqa: E731
    assert g[4, 4, 4] == 1.0 and g.min() == 0.0
    assert g[4, 4, 6] == pytest.approx(expected(2.0), abs=1e-6)
    assert g[5, 4, 4] == pytest.approx(expected(2.0), abs=1e-6)  # spacing 2 along axis 0
    assert g[4, 6, 4] > g[4, 7, 4] > g[4, 8, 4]


def test_maps_shape_range_seeds_and_empty_class():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 16, 20, 20), bool)
    masks[0, 3:12, 4:16, 5:15] = True
    masks[1, 6:9, 8:12, 8:12] = True
    image = rng.normal(size=(2, 16, 20, 20)).astype(np.float32)
    valid = np.ones((16, 20, 20), bool)
    for options in (GeoLSOptions(), GeoLSOptions(scaling="mean"), GeoLSOptions.authors_code()):
        maps = geols_maps(image, masks, valid, (1.0, 1.0, 1.0), options)
        assert maps.shape == masks.shape and maps.dtype == np.float32
        assert maps.min() >= 0 and maps.max() <= 1
        assert np.all(maps[2] == 0)  # empty class
        seeds = skeleton_seeds(masks[0])
        assert seeds.any() and not np.any(seeds & ~masks[0]) and seeds.sum() < masks[0].sum() / 4
        assert np.all(maps[0][seeds] == 1)
    # the authors' scaling spreads the map further out than exp(-D) in mm
    assert (geols_maps(image, masks, valid, (1.0, 1.0, 1.0), GeoLSOptions(scaling="mean"))[0] > 0.5).sum() > \
        (geols_maps(image, masks, valid, (1.0, 1.0, 1.0), GeoLSOptions())[0] > 0.5).sum()


def test_mean_of_maps_and_valid_mask():
    rng = np.random.default_rng(1)
    masks = np.zeros((1, 10, 12, 12), bool)
    masks[0, 2:8, 3:9, 3:9] = True
    image = rng.normal(size=(2, 10, 12, 12)).astype(np.float32)
    valid = np.ones((10, 12, 12), bool)
    both = geols_maps(image, masks, valid, (1.0, 1.0, 1.0), GeoLSOptions(image="mean_of_maps"))
    singles = [geols_maps(image, masks, valid, (1.0, 1.0, 1.0), GeoLSOptions(image_channel=c)) for c in (0, 1)]
    np.testing.assert_allclose(both, (singles[0] + singles[1]) / 2, atol=1e-6)
    # a mask entirely outside nnU-Net's nonzero region is background: empty class
    assert np.all(geols_maps(image, masks, ~masks[0], (1.0, 1.0, 1.0), GeoLSOptions()) == 0)


def test_intensity_edges_lower_the_map():
    """Across an intensity edge the geodesic map falls faster than at the same distance without one."""
    image = np.zeros((1, 5, 9, 21), np.float32)
    image[..., 14:] = 2.0  # edge 4 voxels right of the mask, none on the left
    masks = np.zeros((1, 5, 9, 21), bool)
    masks[0, 1:4, 3:6, 8:11] = True
    g = geols_maps(image, masks, np.ones((5, 9, 21), bool), (1.0, 1.0, 1.0), GeoLSOptions(scaling="mean"))[0]
    assert g[2, 4, 16] < g[2, 4, 2]  # both 6 voxels from the mask's centre


def test_2d_maps():
    masks = np.zeros((2, 24, 24), bool)
    masks[0, 5:15, 6:18] = True
    image = np.random.default_rng(2).normal(size=(1, 24, 24)).astype(np.float32)
    maps = geols_maps(image, masks, np.ones((24, 24), bool), (1.0, 1.0), GeoLSOptions())
    assert maps.shape == (2, 24, 24) and maps[0].max() == 1.0 and np.all(maps[1] == 0)


def test_cropping_is_exact_where_float16_can_tell():
    rng = np.random.default_rng(3)
    masks = np.zeros((1, 12, 64, 64), bool)
    masks[0, 4:8, 28:36, 26:34] = True
    image = rng.normal(size=(1, 12, 64, 64)).astype(np.float32)
    valid = np.ones((12, 64, 64), bool)
    cropped = geols_maps(image, masks, valid, (1.5, 1.0, 1.0), GeoLSOptions(gamma=0.2))
    full = geols_maps(image, masks, valid, (1.5, 1.0, 1.0), GeoLSOptions(gamma=0.2, crop=False))
    assert np.any(cropped[0, :, 0] == 0) and full[0].min() == 0  # the box is smaller than the array
    np.testing.assert_allclose(cropped, full, rtol=0, atol=3e-8)
    np.testing.assert_array_equal(cropped.astype(np.float16), full.astype(np.float16))


def test_ignored_voxels_are_never_seeds_and_belong_to_no_class():
    """GeoLS' seeds are class skeletons, not boundaries: with nnU-Net's ignore label the skeleton is the one
    of the class's known voxels (an ignored voxel labelled as the class is not used), and nothing else changes."""
    rng = np.random.default_rng(2)
    masks = np.zeros((1, 12, 16, 16), bool)
    masks[0, 2:10, 3:13, 3:13] = True
    ignored = np.zeros((12, 16, 16), bool)
    ignored[:, :, 6:9] = True  # cuts the object; a mask voxel there must not seed
    image = rng.normal(size=(1, 12, 16, 16)).astype(np.float32)
    valid = np.ones((12, 16, 16), bool)
    aware = geols_maps(image, masks, valid, (1.0, 1.0, 1.0), GeoLSOptions(), ignored=ignored)
    known = geols_maps(image, masks & ~ignored, valid, (1.0, 1.0, 1.0), GeoLSOptions())
    np.testing.assert_array_equal(aware, known)
    assert not np.any(skeleton_seeds(masks[0] & ~ignored) & ignored)
    np.testing.assert_array_equal(
        geols_maps(image, masks, valid, (1.0, 1.0, 1.0), GeoLSOptions(), ignored=np.zeros_like(ignored)),
        geols_maps(image, masks, valid, (1.0, 1.0, 1.0), GeoLSOptions()))
