"""SiNG transform (SiNGR Eqs. 1-5): hand-computable cases, guaranteed ranges and signs, edge cases."""

import FastGeodis
import numpy as np
import pytest
import torch
from scipy import ndimage

from nnunet_ext.targets import REGISTRY, SiNGOptions, TargetSpec, get_kind, sing_bands, sing_maps
from nnunet_ext.targets.boundary import boundary_3d, boundary_canny2d, slice_axis
from nnunet_ext.targets.geodesic import geodesic_distance


def _run(image, mask, spacing=None, valid=None, **options):
    mask = np.asarray(mask, bool)
    spacing = spacing or (1.0,) * mask.ndim
    valid = np.ones(mask.shape, bool) if valid is None else valid
    image = np.asarray(image, np.float32)
    if image.ndim == mask.ndim:
        image = image[None]
    return sing_maps(image, mask[None], valid, spacing, SiNGOptions(**options))[0]


def _slab(length=20, inside=6):
    """A (3, 3, length) volume whose mask is the slab z < inside: a 1D profile along z."""
    mask = np.zeros((3, 3, length), bool)
    mask[..., :inside] = True
    return mask


def _blob(shape=(24, 26, 22), seed=0):
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = np.array(shape)[:, None, None, None] / 2
    radius = np.sqrt((((grid - centre) / np.array([6, 8, 5])[:, None, None, None]) ** 2).sum(0))
    mask = radius < 1 + 0.2 * rng.standard_normal(shape).clip(-1, 1)
    image = rng.standard_normal((2, *shape)).astype(np.float32) + 2 * mask
    return image, mask


def test_constant_image_geodesic_equals_spatial_distance():
    seeds = np.zeros((5, 5, 12), bool)
    seeds[..., 0] = True
    for lam in (0.0, 0.5, 0.9):
        distance = geodesic_distance(np.full(seeds.shape, 3.0), seeds, (1.0, 1.0, 2.0), lam, 1e10, 4)
        np.testing.assert_allclose(distance[2, 2], (1 - lam) * 2.0 * np.arange(12), rtol=1e-6)


def test_slab_profile_by_hand():
    # seeds (3d boundary) at z=5 and z=6; G^0 = 5-z inside, z-6 outside; beta = 5; band z <= 11;
    # constant image: G^0.5 = G^0 / 2, tau = 2.5, so S = +-(0.5 + 0.5 * G^0 / 5), -1 beyond z = 11
    s = _run(np.zeros((3, 3, 20)), _slab())[1, 1]
    z = np.arange(20)
    expected = np.where(z < 6, 0.5 + 0.5 * (5 - z) / 5, -(0.5 + 0.5 * (z - 6) / 5))
    expected[z > 11] = -1
    np.testing.assert_allclose(s, expected, atol=1e-6)


def test_known_step_in_1d_profile():
    # a step of height 4 between z=7 and z=8 (background side) adds lambda * 4 = 2 to G^0.5 beyond it
    image = np.zeros((3, 3, 20), np.float32)
    image[..., 8:] = 4.0
    seeds = boundary_3d(_slab())
    g = geodesic_distance(image, seeds, (1, 1, 1), 0.5, 1e10, 4)[1, 1]
    z = np.arange(20)
    np.testing.assert_allclose(g, np.where(z < 6, 0.5 * (5 - z), 0.5 * (z - 6) + 2.0 * (z >= 8)), atol=1e-6)
    s = _run(image, _slab())[1, 1]
    tau = g[: 12].max()  # band z <= 11
    assert tau == pytest.approx(4.5)
    np.testing.assert_allclose(s[:12], np.where(z < 6, 1, -1)[:12] * (0.5 + 0.5 * g[:12] / tau), atol=1e-6)
    assert s[11] == pytest.approx(-1.0) and np.all(s[12:] == -1)


@pytest.mark.parametrize("delta", [0.5, 0.2, 0.0])
@pytest.mark.parametrize("authors", [False, True])
def test_ranges_and_signs_guaranteed_by_the_paper(delta, authors):
    image, mask = _blob()
    # (one channel: a mean of per-channel maps need not reach |S| = 1 anywhere)
    options = SiNGOptions.authors_code(delta=delta, image="channel") if authors else SiNGOptions(delta=delta)
    s = sing_maps(image, mask[None], np.ones(mask.shape, bool), (1.0, 1.2, 1.5), options)[0]
    assert s.dtype == np.float32
    assert s[mask].min() >= delta - 1e-6 and s[mask].max() <= 1 + 1e-6
    band = (s > -1) & ~mask
    assert band.any() and s[band].max() <= -delta + 1e-6
    assert s.min() >= -1 - 1e-6
    if authors:  # tau over the foreground: the foreground reaches 1
        assert s[mask].max() == pytest.approx(1.0, abs=1e-6)
    else:  # tau over the band (Eq. 5): |S| reaches 1 somewhere in the band B of Eq. 3
        g0 = ndimage.distance_transform_edt(~boundary_3d(mask), sampling=(1.0, 1.2, 1.5))
        in_band = g0 <= g0[mask].max()
        assert np.abs(s[in_band]).max() == pytest.approx(1.0, abs=1e-6)
        assert np.all(s[~in_band] == -1)
    if delta > 0:
        assert np.array_equal(np.sign(s), np.where(mask, 1.0, -1.0))


def test_empty_mask_is_all_minus_one():
    image, mask = _blob()
    masks = np.stack([mask, np.zeros_like(mask)])
    s = sing_maps(image, masks, np.ones(mask.shape, bool), (1, 1, 1), SiNGOptions())
    assert np.all(s[1] == -1) and (s[0] > -1).any()


def test_one_voxel_mask():
    mask = np.zeros((9, 9, 9), bool)
    mask[4, 4, 4] = True
    s = _run(np.random.default_rng(1).random((9, 9, 9)), mask)
    # beta = 0: the band is the seed set (the voxel and its 6 face neighbours), tau = 0 there
    assert s[4, 4, 4] == pytest.approx(0.5)
    neighbours = boundary_3d(mask) & ~mask
    assert neighbours.sum() == 6 and np.allclose(s[neighbours], -0.5)
    assert np.all(s[~(mask | neighbours)] == -1)


def test_band_by_hand_and_where_the_maps_leave_minus_one():
    """Mask z in 4..6 of a line: seeds (both sides of each face) 3, 4, 6, 7; G^0 over the mask peaks at
    z = 5 (beta = 1), so B is z in 2..8 (Eq. 3-4). On a blob the maps are -1 off B, at least delta in size on it."""
    line = np.zeros((1, 1, 11), bool)
    line[..., 4:7] = True
    band = sing_bands(line[None], np.ones(line.shape, bool), (1, 1, 1), SiNGOptions())[0]
    assert np.flatnonzero(band[0, 0]).tolist() == [2, 3, 4, 5, 6, 7, 8]
    image, mask = _blob()
    masks, valid = np.stack([mask, np.zeros_like(mask)]), np.ones(mask.shape, bool)
    bands = sing_bands(masks, valid, (1.0, 1.2, 0.8), SiNGOptions())
    maps = sing_maps(image, masks, valid, (1.0, 1.2, 0.8), SiNGOptions())
    assert bands[0, mask].all() and not bands[1].any()
    assert np.all(maps[0][~bands[0]] == -1) and np.all(np.abs(maps[0][bands[0]]) >= SiNGOptions().delta - 1e-6)


def test_mask_touching_the_array_border_and_crop_matches_full_volume():
    image, mask = _blob()
    mask[:3] = True  # touches the face x = 0
    full = _run(np.zeros(mask.shape), mask, crop=False)
    cropped = _run(np.zeros(mask.shape), mask)
    # the array border is no boundary: no seeds there, and with a constant image paths never leave the crop
    assert not boundary_3d(mask)[0].any()
    np.testing.assert_allclose(cropped, full, atol=1e-6)
    s = _run(image[0], mask)
    assert s[mask].min() >= 0.5 - 1e-6 and np.array_equal(np.sign(s), np.where(mask, 1.0, -1.0))


def test_crop_only_lengthens_geodesic_paths():
    image, mask = _blob(seed=3)
    full = _run(image, mask, crop=False)
    cropped = _run(image, mask)
    band = full > -1
    assert np.array_equal(band, cropped > -1)  # the band (G^0, beta) is exact under cropping
    assert np.abs(full - cropped)[band].mean() < 0.05


def test_anisotropic_spacing_uses_millimetres():
    mask = np.zeros((21, 21, 21), bool)
    mask[6:15, 6:15, 6:15] = True  # cube of 9 voxels; spacing 3 mm along axis 2
    s = _run(np.zeros(mask.shape), mask, spacing=(1.0, 1.0, 3.0))
    # beta = 4 mm (centre to the in-plane faces); outer seeds at index 15 (and 5)
    assert s[19, 10, 10] > -1 and s[20, 10, 10] == -1  # 4 mm beyond the outer seed along axis 0
    assert s[10, 10, 16] > -1 and s[10, 10, 17] == -1  # 3 mm in band, 6 mm out along axis 2
    np.testing.assert_allclose(s, _run(np.zeros(mask.shape), mask, spacing=(1.0, 1.0, 3.0), crop=False), atol=1e-6)


def test_2d_input_and_2d_kernel_equivalence():
    rng = np.random.default_rng(2)
    image = rng.random((40, 30)).astype(np.float32)
    seeds = np.zeros((40, 30), bool)
    seeds[10, 5] = seeds[30, 20] = True
    ours = geodesic_distance(image, seeds, (1.0, 1.0), 0.5, 1e10, 4)
    theirs = FastGeodis.generalised_geodesic2d(
        torch.from_numpy(image)[None, None], torch.from_numpy((~seeds).astype(np.float32))[None, None], 1e10, 0.5, 4
    )[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    mask = np.zeros((3, 20), bool)
    mask[:, :6] = True
    s = _run(np.zeros((3, 20)), mask, spacing=(0.7, 0.7))
    np.testing.assert_allclose(s[1], _run(np.zeros((3, 3, 20)), _slab())[1, 1], atol=1e-6)
    for options in ({}, {"boundary": "canny2d"}):
        disk = np.hypot(*np.indices((40, 30)) - np.array([20, 15])[:, None, None]) < 8
        s = _run(image, disk, **options)
        assert np.array_equal(np.sign(s), np.where(disk, 1.0, -1.0))


def test_nan_in_image_is_an_error():
    image, mask = _blob()
    image[0, 3, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sing_maps(image, mask[None], np.ones(mask.shape, bool), (1, 1, 1), SiNGOptions())


def test_voxels_outside_the_nonzero_mask_are_background():
    image, mask = _blob()
    valid = np.ones(mask.shape, bool)
    valid[:, :, :11] = False
    s = sing_maps(image, mask[None], valid, (1, 1, 1), SiNGOptions())[0]
    assert np.all(s[~valid] < 0)
    np.testing.assert_array_equal(s, _run(image, mask & valid))


def test_canny_boundary_is_per_slice_and_straddles():
    mask = np.zeros((12, 20, 20), bool)
    mask[3:9, 5:15, 5:15] = True
    seeds = boundary_canny2d(mask, (1.0, 1.0, 1.0))
    assert slice_axis((1.0, 1.0, 1.0)) == 0 and slice_axis((0.8, 0.8, 3.0)) == 2
    assert not seeds[:3].any() and not seeds[9:].any() and seeds[3:9].any()
    assert not seeds[5, 8:12, 8:12].any()  # no seeds on the interior: top/bottom faces are missed
    assert (seeds & mask).any() or (seeds & ~mask).any()


def test_mean_of_maps_and_foreground_tau():
    image, mask = _blob()
    twice = np.stack([image[0], image[0]])
    mean = sing_maps(twice, mask[None], np.ones(mask.shape, bool), (1, 1, 1), SiNGOptions(image="mean_of_maps"))[0]
    np.testing.assert_allclose(mean, _run(image[0], mask), atol=1e-6)
    s = _run(image[1], mask, tau="foreground")
    assert s[mask].max() == pytest.approx(1.0)


def test_options_spec_and_registry():
    assert get_kind("sing") is REGISTRY["sing"]
    assert TargetSpec("sing") == TargetSpec("sing", SiNGOptions().as_params())
    assert TargetSpec("sing", {"delta": 0}).target_id == TargetSpec("sing", SiNGOptions(delta=0.0)).target_id
    assert TargetSpec("sing").target_id != TargetSpec("sing", {"delta": 0}).target_id
    assert SiNGOptions.from_params(SiNGOptions(lam=0.3).as_params()) == SiNGOptions(lam=0.3)
    with pytest.raises(ValueError, match="unknown"):
        SiNGOptions.from_params({"lambda": 0.3})
    with pytest.raises(ValueError, match="delta"):
        SiNGOptions(delta=1.0)
    with pytest.raises(ValueError):
        get_kind("gsl_nonexistent")


# ------------------------------------------------------------------------------------------------
# SiNGOptions.authors_code() against the released recipe (Oulu-IMEDS/SiNGR)
# ------------------------------------------------------------------------------------------------
def _released_recipe(image, mask, delta=0.5):
    """The released steps, written out plainly on the full volume at 1 mm: per modality
    get_SGC_distance (mlpipeline/utils/geodesic_map.py), then transform_geo_dist with
    "fast_sgc_margin" (mlpipeline/utils/geodesic_transform.py); the loader averages the modalities."""
    from skimage import feature

    background = ~mask
    edges = np.stack([feature.canny(background[z]) for z in range(mask.shape[0])])  # skimage defaults
    not_seeds = torch.from_numpy(1.0 - edges.astype(np.float32))[None, None]
    per_modality = []
    for channel in image:
        tensor = torch.from_numpy(np.ascontiguousarray(channel, dtype=np.float32))[None, None]
        g = FastGeodis.generalised_geodesic3d(tensor, not_seeds, [1.0, 1.0, 1.0], 1e10, 0.5, 4)[0, 0].numpy()
        g0 = FastGeodis.generalised_geodesic3d(tensor, not_seeds, [1.0, 1.0, 1.0], 1e10, 0.0, 4)[0, 0].numpy()
        roi = g0 <= g0[mask].max()
        max_bg = g[roi & background].max()
        sg = g.copy()
        sg[~roi] = max_bg
        sg[background] = -sg[background]
        sg[channel == 0] = -max_bg
        d = sg.astype(np.float64)
        d[mask] = np.clip(d[mask], 0.0, None)
        d[background] = np.clip(d[background], None, 0.0)
        fg_max = d[mask].max()
        d[background] = np.clip(d[background], -fg_max, None)
        d /= fg_max + 1e-8
        d[mask] = d[mask] * (1.0 - delta) + delta
        d[background] = d[background] * (1.0 - delta) - delta
        per_modality.append(np.clip(d, -1.0, 1.0))
    return np.mean(per_modality, axis=0), roi


def _zero_background_case(shape=(24, 40, 48), seed=0):
    """Two modalities inside an ellipsoidal brain, exactly 0 outside it (nnU-Net's preprocessed
    background), and a textured tumour near the brain's edge, so that the band reaches the zeros.
    The tumour stays 6 voxels from the array's border, where Canny's padding differs (ours: nearest)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(np.float32)
    centre = np.array(shape)[:, None, None, None] / 2
    brain = (((grid - centre) / np.array([10, 17, 17])[:, None, None, None]) ** 2).sum(0) < 1
    radius = np.sqrt((((grid - np.array([12, 20, 36])[:, None, None, None]) / np.array([5, 6, 6])[:, None, None, None]) ** 2).sum(0))
    tumour = (radius < 1) & brain
    noise = rng.standard_normal((2, *shape)).astype(np.float32)
    image = np.stack([(k + 1) * brain + tumour * (2 + 1.5 * noise[k]) for k in range(2)]).astype(np.float32)
    image[:, ~brain] = 0
    return image, tumour


def test_authors_code_equals_the_released_recipe_on_a_zero_background():
    image, tumour = _zero_background_case()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # FastGeodis on a loaded 2-core machine is far faster single-threaded
    try:
        theirs, band = _released_recipe(image, tumour)
        zeros_in_band = band & (image[0] == 0)
        assert zeros_in_band.sum() > 0.1 * band.sum()  # the case exercises the image-zero rule
        assert theirs[~band].max() > -0.99  # and an outside value other than -1 (max_bg < fg_max)
        for crop in (False, True):
            ours = sing_maps(image, tumour[None], np.ones(tumour.shape, bool), (1.0, 1.0, 1.0),
                             SiNGOptions.authors_code(crop=crop))[0]
            difference = np.abs(ours - theirs)
            assert difference[band].mean() <= 0.01, crop
            assert difference.max() < 1e-4, crop  # the same values everywhere, outside the band included
    finally:
        torch.set_num_threads(threads)


def test_outside_is_minus_one_or_the_released_recipe():
    assert SiNGOptions.authors_code().outside == "released"
    with pytest.raises(ValueError, match=r"outside must be one of \('minus_one', 'released'\), got 'code'"):
        SiNGOptions(outside="code")
    # the paper defaults and their spec id are untouched by the authors' options
    assert SiNGOptions().outside == "minus_one" and "released" not in SiNGOptions().as_params().values()


# ------------------------------------------------------------------------------------------------
# nnU-Net's ignore label: ignored voxels create no boundary seeds
# ------------------------------------------------------------------------------------------------
def test_ignored_voxels_create_no_boundary_by_hand():
    # profile along z: ignored z < 4, mask 4 <= z < 10, known background z >= 10. Seeds only at z = 9, 10:
    # G^0 = 9 - z in the mask, beta = 5, band 4 <= z <= 15; constant image: S = +-(0.5 + 0.5 G^0 / 5)
    mask = np.zeros((3, 3, 20), bool)
    mask[..., 4:10] = True
    ignored = np.zeros(mask.shape, bool)
    ignored[..., :4] = True
    s = sing_maps(np.zeros((1, *mask.shape), np.float32), mask[None], np.ones(mask.shape, bool), (1.0, 1.0, 1.0),
                  SiNGOptions(), ignored=ignored)[0][1, 1]
    z = np.arange(20)
    expected = np.where(z < 10, 0.5 + 0.5 * (9 - z) / 5, -(0.5 + 0.5 * (z - 10) / 5))
    expected[(z > 15) | (z < 4)] = -1
    np.testing.assert_allclose(s, expected, atol=1e-6)
    assert s[4] == pytest.approx(1.0)  # next to the ignored voxels: the deepest value, not the boundary's 0.5


@pytest.mark.parametrize("boundary", ["3d", "canny2d"])
def test_no_boundary_values_next_to_an_ignored_slab(boundary):
    image, mask = _blob()
    ignored = np.zeros(mask.shape, bool)
    ignored[:, :, 9:12] = True  # a slab through the object: its labels there are unknown
    mask &= ~ignored
    faces = np.zeros(mask.shape, bool)
    known_background = ~mask & ~ignored
    touches_ignored = np.zeros(mask.shape, bool)
    for axis in range(3):
        for shift in (1, -1):
            faces |= np.roll(known_background, shift, axis)
            touches_ignored |= np.roll(ignored, shift, axis)
    only_ignored = mask & touches_ignored & ~faces  # mask voxels whose only non-mask neighbours are ignored
    assert only_ignored.sum() > 20
    options = SiNGOptions(boundary=boundary)
    plain = sing_maps(image, mask[None], np.ones(mask.shape, bool), (1, 1, 1), options)[0]
    aware = sing_maps(image, mask[None], np.ones(mask.shape, bool), (1, 1, 1), options, ignored=ignored)[0]
    at_boundary = lambda s: np.isclose(s, 0.5, atol=0.02)  # noqa: E731  (seeds: G = 0, S = delta)
    assert at_boundary(plain[only_ignored]).mean() > 0.3  # treated as background, the slab was a boundary
    assert not at_boundary(aware[only_ignored]).any()
    assert np.array_equal(aware > 0, mask)  # signs still follow the known mask
    np.testing.assert_array_equal(sing_maps(image, mask[None], np.ones(mask.shape, bool), (1, 1, 1), options,
                                            ignored=np.zeros(mask.shape, bool))[0], plain)  # none ignored: unchanged
