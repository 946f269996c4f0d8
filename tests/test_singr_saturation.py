"""nnunet_ext_benchmark saturation: the statistics on hand-computable outputs, and the channel mapping of SiNGR."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from nnunet_ext.benchmarks.saturation import SATURATED, regressed_maps, saturation_stats


def test_threshold_is_where_the_tanh_gradient_drops_below_one_percent():
    assert 1 - np.tanh(SATURATED) ** 2 == pytest.approx(0.01)
    assert SATURATED == pytest.approx(2.993, abs=1e-3)


def test_statistics_on_hand_computable_outputs():
    values = np.array([-10.0, -4.0, -1.0, 2.0, -5.0, -0.5, 3.0])
    reference = np.array([True, True, True, True, False, False, False])
    stats = saturation_stats(values, reference)
    assert stats["reference_voxels"] == 4
    assert stats["inside_saturated_below_0"] == 0.5  # -10 and -4 are below -2.99
    assert stats["inside_above_0"] == 0.25
    assert stats["inside_median"] == -2.5
    assert stats["outside_saturated_below_0"] == pytest.approx(1 / 3)
    assert stats["outside_median"] == -0.5


def test_empty_reference_gives_no_inside_statistics():
    stats = saturation_stats(np.array([-1.0, 1.0]), np.array([False, False]))
    assert stats["reference_voxels"] == 0 and stats["inside_median"] is None and stats["inside_above_0"] is None


def test_label_datasets_use_the_difference_to_background_and_skip_the_crop_border():
    logits = np.stack([np.full((2, 2), 1.0), np.array([[3.0, -2.0], [0.0, 5.0]])])  # z_0 = 1, z_1
    seg = np.array([[[1, 0], [-1, 1]]])  # -1: outside nnU-Net's crop mask
    (name, values, reference), = regressed_maps(logits, seg, SimpleNamespace(has_regions=False, foreground_labels=[1]))
    assert name == "1"
    np.testing.assert_array_equal(values, [2.0, -3.0, 4.0])  # z_1 - z_0 at the three voxels with seg >= 0
    np.testing.assert_array_equal(reference, [True, False, True])


def test_region_datasets_use_each_output_against_its_region():
    logits = np.array([[[1.0, 2.0]], [[-1.0, -2.0]]])
    seg = np.array([[[1, 2]]])
    maps = regressed_maps(logits, seg, SimpleNamespace(has_regions=True, foreground_regions=[(1, 2), 2]))
    assert [m[0] for m in maps] == ["(1, 2)", "2"]
    np.testing.assert_array_equal(maps[0][1], [1.0, 2.0])
    np.testing.assert_array_equal(maps[0][2], [True, True])
    np.testing.assert_array_equal(maps[1][1], [-1.0, -2.0])
    np.testing.assert_array_equal(maps[1][2], [False, True])
