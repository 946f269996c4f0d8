"""The authors' recipes (nnunet_ext.benchmarks.authors_recipes) on hand-computable inputs, and the
hardware record of nnunet_ext.benchmarks.common (fast: no benchmark is run)."""

from __future__ import annotations


import numpy as np
import pytest

from nnunet_ext.benchmarks.authors_recipes import dtm_authors_map, rrw_authors_map, sing_authors_map
from nnunet_ext.benchmarks.targets import agreement
from nnunet_ext.benchmarks.common import HARDWARE_KEYS, hardware_markdown, hardware_record
from nnunet_ext.targets.dtm import signed_distance


def line_mask() -> np.ndarray:
    """A 1D-ish volume (1, 1, 10) whose voxels 3..6 are the class."""
    mask = np.zeros((1, 1, 10), bool)
    mask[..., 3:7] = True
    return mask


def test_dtm_recipe_counts_voxels_to_the_other_side():
    # outside: distance to the nearest class voxel; inside: minus the distance to the nearest outside voxel
    expected = [3, 2, 1, -1, -2, -2, -1, 1, 2, 3]
    np.testing.assert_array_equal(dtm_authors_map(line_mask())[0, 0], expected)


def test_dtm_recipe_degenerate_channels_are_zero():
    assert not dtm_authors_map(np.zeros((3, 4, 5), bool)).any()
    assert not dtm_authors_map(np.ones((3, 4, 5), bool)).any()


def test_dtm_recipe_equals_our_signed_distance_at_1mm():
    rng = np.random.default_rng(0)
    mask = np.zeros((12, 14, 16), bool)
    mask[3:9, 4:11, 2:12] = rng.random((6, 7, 10)) > 0.2
    np.testing.assert_allclose(signed_distance(mask, (1.0, 1.0, 1.0)), dtm_authors_map(mask), atol=1e-5)


def test_rrw_recipe_is_one_outside_and_minus_one_at_the_deepest_voxel():
    np.testing.assert_allclose(rrw_authors_map(line_mask())[0, 0], [1, 1, 1, -0.5, -1, -1, -0.5, 1, 1, 1])
    cube = np.zeros((7, 7, 7), bool)
    cube[1:6, 1:6, 1:6] = True  # deepest voxel: the centre, 3 voxels from the outside
    maps = rrw_authors_map(cube)
    assert maps[3, 3, 3] == -1.0 and (maps[~cube] == 1.0).all()
    assert maps.min() >= -1.0 and maps.max() <= 1.0 and (maps[cube] < 0).all()
    np.testing.assert_array_equal(rrw_authors_map(np.zeros((2, 3, 4), bool)), 1.0)  # empty class: pushed to 0


def test_agreement_per_channel_and_in_regions():
    ours = np.array([[0.0, 1.0, -1.0, 2.0]])
    theirs = np.array([[0.5, 1.0, 1.0, 2.0]])
    (row,) = agreement(ours, theirs)
    assert row == {"mean_abs_diff": pytest.approx(2.5 / 4), "max_abs_diff": 2.0}
    region = np.array([[False, True, True, True]])
    (row,) = agreement(ours, theirs, region, np.array([[False, True, False, True]]))
    assert row["max_abs_diff"] == 0.0 and row["region_dice"] == pytest.approx(0.8) and row["sign_agreement"] == 1.0


def test_hardware_record_has_the_documented_keys():
    record = hardware_record()
    assert tuple(record) == HARDWARE_KEYS
    assert record["logical_cpus"] >= record["affinity_cpus"] >= 1 and record["torch_threads"] >= 1
    assert set(record["versions"]) == {"nnunet-ext", "torch", "FastGeodis", "numpy", "scipy", "edt", "nnunetv2"}
    assert set(record["git"]) == {"commit", "dirty"}
    assert record["gpu"] is None or set(record["gpu"]) == {"name", "memory_gb", "cuda"}
    text = hardware_markdown(record)
    assert record["cpu_model"] in text and "torch threads" in text


def test_an_installed_copy_records_the_commit_pip_installed(monkeypatch):
    """Outside a repository the record names the commit of ``pip install git+<repository>@<commit>``."""
    from nnunet_ext.benchmarks import common

    class Installed:
        version = "0.0"

        def __init__(self, direct_url):
            self.direct_url = direct_url

        def read_text(self, name):
            return self.direct_url if name == "direct_url.json" else None

    monkeypatch.setattr(common, "_git", lambda *args: None)
    vcs = '{"url": "file:///src", "vcs_info": {"vcs": "git", "commit_id": "8e1cc32f00"}}'
    monkeypatch.setattr(common.metadata, "distribution", lambda name: Installed(vcs))
    assert hardware_record()["git"] == {"commit": "8e1cc32", "dirty": False}
    monkeypatch.setattr(common.metadata, "distribution", lambda name: Installed('{"url": "file:///src", "dir_info": {}}'))
    assert hardware_record()["git"] == {"commit": None, "dirty": None}


def test_sing_recipe_follows_the_released_code_on_a_zero_background():
    """The benchmark's SiNG recipe and SiNGOptions.authors_code() agree where the image is 0 (outside the
    brain) too (both are held against a plain re-implementation in tests/test_sing_transform.py)."""
    import torch

    from nnunet_ext.targets import SiNGOptions, sing_maps

    rng = np.random.default_rng(4)
    shape = (16, 28, 32)  # the tumour 6 voxels from the array's border, where Canny's padding differs
    grid = np.indices(shape).astype(np.float32)
    brain = (((grid - np.array(shape)[:, None, None, None] / 2) / np.array([6, 10, 10])[:, None, None, None]) ** 2).sum(0) < 1
    tumour = ((((grid - np.array([8, 14, 23])[:, None, None, None]) / np.array([3, 4, 4])[:, None, None, None]) ** 2).sum(0) < 1) & brain
    image = np.stack([brain * (k + 1) + tumour * (2 + rng.standard_normal(shape)) for k in range(2)]).astype(np.float32)
    image[:, ~brain] = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        recipe, band = sing_authors_map(image, tumour, (1.0, 1.0, 1.0))
        ours = sing_maps(image, tumour[None], np.ones(shape, bool), (1.0, 1.0, 1.0), SiNGOptions.authors_code(crop=False))[0]
    finally:
        torch.set_num_threads(threads)
    assert (band & (image[0] == 0)).any()
    np.testing.assert_allclose(ours, recipe, atol=1e-4)
