"""Target maps through nnU-Net's data path: dataset, nnU-Net's loader crop, augmentation, deep supervision, spawn pickling."""

import multiprocessing
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import comp_blosc2_params, nnUNetDatasetBlosc2
from nnunetv2.utilities.label_handling.label_handling import LabelManager
from scipy.ndimage import distance_transform_edt

from nnunet_ext import target_store
from nnunet_ext.losses import BoundaryLoss, GeneralizedSurfaceLoss, RegionWiseLoss
from nnunet_ext.targets import REGISTRY, TargetSpec
from nnunet_ext.targets.common import TargetOptions
from nnunet_ext.training.data import (
    AppendMapsToImage,
    ImageWithMaps,
    SplitMapsFromImage,
    get_training_transforms_with_maps,
    get_validation_transforms_with_maps,
    nnUNetDatasetBlosc2WithTargets,
    with_target_maps,
)
from nnunet_ext.training.map_trainer import SplitTargets

@dataclass(frozen=True)
class _SignedOptions(TargetOptions):
    """The options of a kind that is not registered (the maps are written by this test)."""

    delta: float = 0.5


SPEC = TargetSpec("test_signed", _SignedOptions())
SHAPE = (20, 24, 18)
PATCH = (16, 16, 16)
DS_SCALES = [[1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]
LABELS = LabelManager({"background": 0, "lesion": 1}, regions_class_order=None)
CHANNELS = 2  # image channels of the test cases
FAR = -1.0


def signed_map(foreground: np.ndarray, tau: float = 4.0) -> np.ndarray:
    """A SiNG-like map with delta 0.5: (0.5, 1] inside, [-1, -0.5) outside, saturating tau voxels away."""
    inside = distance_transform_edt(foreground)
    outside = distance_transform_edt(~foreground)
    return np.where(foreground, 0.5 + 0.5 * np.minimum(inside / tau, 1), -0.5 - 0.5 * np.minimum(outside / tau, 1))


def fingerprint(shape) -> np.ndarray:
    """Position-dependent values in (0, 1], exact in float16, so that equal values mean equal voxels."""
    x, y, z = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    return ((x * 7 + y * 3 + z * 5) % 16 + 1) / 16.0


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory):
    """Three cases written like nnU-Net's preprocessing does, plus their maps via target_store."""
    folder = tmp_path_factory.mktemp("Dataset999_Tiny") / "nnUNetPlans_3d_fullres"
    folder.mkdir()
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"))
    for index in range(3):
        center = np.array([rng.integers(6, s - 6) for s in SHAPE])
        foreground = np.sum((grid - center[:, None, None, None]) ** 2, axis=0) <= 5.0**2
        seg = foreground.astype(np.int16)[None]
        seg[0, :, :, :2] = -1  # nnU-Net marks voxels outside the nonzero mask with -1
        # channel 0: positive intensities (0 only where the loader pads); channel 1: position fingerprint
        data = np.stack([1.0 + rng.random(SHAPE), fingerprint(SHAPE)]).astype(np.float32)
        blocks, chunks = comp_blosc2_params(data.shape, PATCH)
        properties = {"spacing": [1.0, 1.0, 1.0],
                      "class_locations": {1: np.argwhere(seg == 1).astype(np.int64)}}
        case = f"case_{index:03d}"
        nnUNetDatasetBlosc2.save_case(data, seg, properties, str(folder / case), chunks=chunks, blocks=blocks)
        maps = np.stack([signed_map(foreground), fingerprint(SHAPE)])
        target_store.write_case(folder, SPEC, case, maps)
    return folder


def make_loader(folder, patch_size, final_patch_size, transforms, oversample=0.5, batch_size=2):
    """nnU-Net's own loader on the dataset with maps."""
    dataset = nnUNetDatasetBlosc2WithTargets(str(folder), target_spec=SPEC, far_value=FAR)
    return nnUNetDataLoader(dataset, batch_size, patch_size, final_patch_size, LABELS,
                            oversample_foreground_percent=oversample, transforms=transforms)


def split(batch, scales=DS_SCALES):
    """data, seg per scale and maps per scale, as the map trainer's loss sees them (far value added, pooled)."""
    seen = {}

    def loss(outputs, segs, maps):
        seen["maps"] = maps
        return torch.zeros(())

    data, maps = batch["data"][:, :CHANNELS], batch["data"][:, CHANNELS:]
    segs = batch["target"] if isinstance(batch["target"], list) else [batch["target"]]
    SplitTargets(loss, FAR)([None] * len(segs), [*segs, maps])
    return data, segs, seen["maps"]


def training_transforms(dummy_2d=False):
    return get_training_transforms_with_maps(
        PATCH, rotation_for_DA=(-0.5, 0.5), deep_supervision_scales=DS_SCALES, mirror_axes=(0, 1, 2),
        do_dummy_2d_data_aug=dummy_2d, image_channels=CHANNELS)


def test_dataset_stacks_maps_on_the_image_and_reads_only_the_patch(preprocessed):
    dataset = nnUNetDatasetBlosc2WithTargets(str(preprocessed), target_spec=SPEC, far_value=FAR)
    assert dataset.identifiers == ["case_000", "case_001", "case_002"]
    data, seg, seg_prev, properties = dataset.load_case("case_000")
    maps = dataset.load_targets("case_000")
    assert seg_prev is None and "class_locations" in properties
    assert maps.shape == (2, *SHAPE) and maps.dtype == np.float16
    assert not isinstance(maps, np.ndarray)  # a blosc2 array: slicing decompresses only the patch
    assert isinstance(data, ImageWithMaps) and data.shape == (4, *SHAPE) and data.dtype == np.float32
    block = data[:, 2:5, :, 7:9]
    image = nnUNetDatasetBlosc2(str(preprocessed)).load_case("case_000")[0]
    np.testing.assert_array_equal(block[:2], image[:, 2:5, :, 7:9])
    np.testing.assert_array_equal(block[2:], maps[:, 2:5, :, 7:9].astype(np.float32) - FAR)
    # nnU-Net's own uses (final validation, cascade) build the class with three arguments: nnU-Net's case
    assert not isinstance(nnUNetDatasetBlosc2WithTargets(str(preprocessed)).load_case("case_000")[0], ImageWithMaps)
    # without an explicit far value, the maps' registered kind names it; an unknown kind is an error
    assert nnUNetDatasetBlosc2WithTargets(str(preprocessed), target_spec=TargetSpec("rrw", {})).far_value == 1.0
    with pytest.raises(ValueError, match="unknown target kind 'test_signed'"):
        nnUNetDatasetBlosc2WithTargets(str(preprocessed), target_spec=SPEC)


def test_loader_crops_maps_with_the_seg_bbox_and_pads_with_the_far_value(preprocessed):
    # patch larger than the case along x and z: every patch is padded; only the split and the append run
    np.random.seed(1)
    transforms = ComposeTransforms([SplitMapsFromImage(CHANNELS), AppendMapsToImage()])
    loader = make_loader(preprocessed, (28, 16, 24), (28, 16, 24), transforms=transforms, oversample=1.0, batch_size=3)
    for _ in range(3):
        batch = next(loader)
        data, seg, maps = batch["data"][:, :CHANNELS], batch["target"], batch["data"][:, CHANNELS:] + FAR
        assert maps.shape == (3, 2, 28, 16, 24) and maps.dtype == torch.float32
        padded = data[:, 0] == 0
        assert padded.any()
        # the fingerprint channel of data and maps is the same voxel wherever the case is
        torch.testing.assert_close(maps[:, 1][~padded], data[:, 1][~padded], rtol=0, atol=0)
        assert torch.all(maps[:, :][padded[:, None].expand_as(maps)] == -1)
        assert torch.all(seg[:, 0][padded] == -1)
        assert torch.equal(maps[:, 0] > 0, seg[:, 0] > 0)


@pytest.mark.parametrize("dummy_2d", [False, True])
def test_training_pipeline_shapes_and_sign_agreement(preprocessed, dummy_2d):
    np.random.seed(2)
    torch.manual_seed(2)
    # as nnU-Net does, dummy 2D augmentation keeps the first axis of the initial patch at its final size
    loader = make_loader(preprocessed, (16, 24, 24) if dummy_2d else (24, 24, 24), PATCH, training_transforms(dummy_2d))
    agreement = {0: [], 1: [], 2: []}
    for _ in range(4):
        batch = next(loader)
        assert batch["data"].shape == (2, 2 + 2, *PATCH)  # image channels, then the maps
        data, segs, scaled_maps = split(batch)
        assert isinstance(batch["target"], list)
        for scale, (seg, maps) in enumerate(zip(segs, scaled_maps)):
            expected = tuple(round(p * s) for p, s in zip(PATCH, DS_SCALES[scale]))
            assert seg.shape == (2, 1, *expected)
            assert maps.shape == (2, 2, *expected) and maps.dtype == torch.float32
            assert maps.min() >= -1 - 1e-5 and maps.max() <= 1 + 1e-5
            agreement[scale].append(((maps[:, 0] > 0) == (seg[:, 0] > 0)).float().mean().item())
    # full resolution: maps and seg went through the same resampling; lower scales differ only in how a
    # boundary block is summarised (area mean of the map vs nearest voxel of the seg)
    assert min(agreement[0]) >= 0.99
    assert min(agreement[1]) >= 0.95


def test_validation_pipeline_passes_maps_per_scale(preprocessed):
    transforms = get_validation_transforms_with_maps(DS_SCALES, image_channels=CHANNELS)
    _, segs, maps = split(next(make_loader(preprocessed, PATCH, PATCH, transforms)))
    assert [m.shape[2:] for m in maps] == [s.shape[2:] for s in segs]
    assert torch.equal(maps[0][:, 0] > 0, segs[0][:, 0] > 0)


def _zoomed_out_spatial(rotate: bool) -> SpatialTransform:
    return SpatialTransform(PATCH, patch_center_dist_from_border=0, random_crop=False,
                            p_rotation=1.0 if rotate else 0.0, rotation=(0.6, 0.6), p_scaling=1.0, scaling=(1.4, 1.4),
                            p_synchronize_scaling_across_axes=1, border_mode_seg="constant", padding_value_seg=-1)


@pytest.mark.parametrize("rotate", [False, True])
def test_spatial_augmentation_pads_maps_with_the_far_value(rotate):
    # an all-foreground input: whatever is -1 after zooming out came from padding
    maps = torch.ones(1, *PATCH)
    sample = {"image": torch.ones(1, *PATCH), "segmentation": torch.ones(1, *PATCH, dtype=torch.int16)}
    torch.manual_seed(3)
    plain = ComposeTransforms([_zoomed_out_spatial(rotate)])(**{k: v.clone() for k, v in sample.items()},
                                                            regression_target=maps.clone())
    torch.manual_seed(3)
    adapted = with_target_maps(ComposeTransforms([_zoomed_out_spatial(rotate)]), 1)(
        image=torch.cat([sample["image"], maps - FAR]), segmentation=sample["segmentation"].clone())

    outside = adapted["segmentation"][0] == -1
    assert torch.equal(outside, plain["segmentation"][0] == -1) and outside.float().mean() > 0.2
    # batchgeneratorsv2 alone pads the regression target with 0 ...
    assert (plain["regression_target"][0][outside] == 0).float().mean() > 0.5
    # ... so the maps, shifted by the far value, come out padded with it once it is added back (as the loss does);
    # the map's sign follows the seg
    assert "regression_target" not in adapted and adapted["image"].shape == (2, *PATCH)
    adapted_maps = adapted["image"][1] + FAR
    assert (adapted_maps[outside] == -1).float().mean() > 0.5 and adapted_maps.min() == -1
    assert ((adapted_maps > 0) == ~outside).float().mean() >= 0.99
    torch.testing.assert_close(adapted["image"][:1], plain["image"])


def test_adapting_twice_changes_nothing():
    transforms = training_transforms()
    again = with_target_maps(transforms, CHANNELS)
    assert [type(t) for t in again.transforms] == [type(t) for t in transforms.transforms]
    assert isinstance(again.transforms[0], SplitMapsFromImage) and isinstance(again.transforms[-1], AppendMapsToImage)
    assert sum(isinstance(t, SplitMapsFromImage) for t in again.transforms) == 1


def _default_maps(kind: str, ignored: np.ndarray | None = None) -> np.ndarray:
    """The default maps of ``kind`` on a 64 x 64 case whose only object is a 4 x 4 square in the middle."""
    image = np.random.default_rng(0).normal(size=(1, 64, 64)).astype(np.float32)
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 30:34, 30:34] = True
    return REGISTRY[kind].compute(image, mask, np.ones((64, 64), bool), (1.0, 1.0), REGISTRY[kind].options_type(),
                                  ignored)


def _logit_gradient_where_the_maps_are_far(kind: str, loss) -> torch.Tensor:
    """d loss(softmax(z), maps) / dz at the voxels whose maps hold ``kind``'s far value (the others random)."""
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 8, 8, generator=generator, requires_grad=True)
    maps = torch.rand(2, 3, 8, 8, generator=generator) * 4 - 2
    far = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    far[..., :4] = True
    maps = torch.where(far, REGISTRY[kind].far_value, maps)
    loss(torch.softmax(z, 1), maps).backward()
    return z.grad.masked_select(far.expand_as(z))


def test_every_kinds_far_value_carries_no_target_beyond_the_case():
    """Where a patch leaves the case its maps hold the kind's far value: the maps' own value far from every
    object (SiNG's saturated background, GeoLS' exp(-D) = 0), or a value where the kind's loss is flat (DTM:
    D = 0 drops out of the GSL and Boundary terms; RRW: equal components, RRW Eq. 2, as on ignored voxels)."""
    target = torch.zeros(2, 3, 8, 8)
    target[:, 0] = 1.0
    corner = np.zeros((64, 64), bool)
    corner[:8, :8] = True  # 26 voxels from the object
    checks = {
        "sing": lambda: np.all(_default_maps("sing")[:, corner] == REGISTRY["sing"].far_value),
        "geols": lambda: np.all(_default_maps("geols")[:, corner] == REGISTRY["geols"].far_value),
        "dtm": lambda: all(bool((_logit_gradient_where_the_maps_are_far("dtm", loss) == 0).all()) for loss in (
            BoundaryLoss(), lambda p, maps: GeneralizedSurfaceLoss()(p, target, maps))),
        # also the value of the voxels of no known class (nnU-Net's ignore label), which RRW's trainer tells apart
        "rrw": lambda: bool(_logit_gradient_where_the_maps_are_far("rrw", RegionWiseLoss()).abs().max() < 1e-9)
                       and np.all(_default_maps("rrw", corner)[:, corner] == REGISTRY["rrw"].far_value),
    }
    assert sorted(checks) == sorted(REGISTRY), "a new kind: say why its far value holds no target, here"
    assert [kind for kind, holds in checks.items() if not holds()] == []


def test_a_spatial_transform_that_does_not_pad_with_zeros_is_refused():
    spatial = SpatialTransform(PATCH, patch_center_dist_from_border=0, random_crop=False, padding_mode_image="border")
    with pytest.raises(ValueError, match="needs zero padding"):
        with_target_maps(ComposeTransforms([spatial]), CHANNELS)


def test_split_and_append_are_inverse_and_reject_a_dataset_without_maps():
    image = torch.randn(3, 4, 4, 4)
    out = SplitMapsFromImage(2)(image=image.clone())
    torch.testing.assert_close(out["regression_target"], image[2:])
    torch.testing.assert_close(AppendMapsToImage()(**out)["image"], image)
    with pytest.raises(ValueError, match="without a target_spec"):
        SplitMapsFromImage(3)(image=image)
    with pytest.raises(ValueError, match="dropped it"):
        AppendMapsToImage()(image=image, regression_target=None)


def test_loss_adds_the_far_value_and_pools_the_maps_per_scale_by_area_mean():
    maps = torch.arange(2 * 2 * 4 * 4 * 4, dtype=torch.float32).reshape(2, 2, 4, 4, 4)
    segs = [torch.ones(2, 1, 4, 4, 4), torch.ones(2, 1, 2, 2, 2), torch.ones(2, 1, 2, 4, 4)]
    _, _, (full, half, mixed) = split({"data": torch.cat([torch.zeros(2, CHANNELS, 4, 4, 4), maps - FAR], 1),
                                       "target": segs})
    assert full is not None and torch.equal(full, maps)
    assert half.shape == (2, 2, 2, 2, 2)
    assert half[1, 1, 0, 1, 1].item() == pytest.approx(maps[1, 1, 0:2, 2:4, 2:4].mean().item())
    torch.testing.assert_close(mixed, maps.reshape(2, 2, 2, 2, 4, 4).mean(3))
    with pytest.raises(ValueError, match="expected 4 targets"):
        SplitTargets(lambda *a: None, FAR)([None] * 3, [*segs])


def test_loader_and_transforms_pickle_and_run_under_spawn(preprocessed):
    loader = make_loader(preprocessed, (24, 24, 24), PATCH, training_transforms())
    assert isinstance(pickle.loads(pickle.dumps(loader))._data, nnUNetDatasetBlosc2WithTargets)
    # a fresh interpreter must import every class of the loader and its transforms by module path
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        batch = pool.apply(next, (loader,))
    assert tuple(batch["data"].shape) == (2, 4, 16, 16, 16)
    assert [tuple(s.shape) for s in batch["target"]] == [(2, 1, 16, 16, 16), (2, 1, 8, 8, 8), (2, 1, 4, 4, 4)]
