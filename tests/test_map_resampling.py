"""Target maps through nnU-Net's real training transforms: resampled linearly, padded with their kind's far value.

The maps ride on the image (nnunet_ext.training.data) and meet nnU-Net's augmentation as batchgeneratorsv2's
``regression_target``; everything hangs on batchgeneratorsv2 resampling that key like the image (linear, zero
padding, which the shift by the far value turns into the far value). Releases 0.1.1-0.2.3 routed it through the
segmentation path instead (nearest neighbour, padded with -1); pyproject.toml requires >= 0.3.0, and this test
fails on any transform that resamples or pads the maps some other way.

The maps here are affine ramps a.x + b: linear interpolation of an affine function is exact, and a rotation,
scaling or flip of the sampling grid keeps it affine, so the output must be affine wherever it was sampled inside
the case (nearest neighbour gives stairs), and exactly the far value wherever it was sampled outside.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from nnunetv2.utilities.label_handling.label_handling import LabelManager
from scipy.ndimage import binary_erosion
from torch.nn.functional import grid_sample

from nnunet_ext.targets import REGISTRY

PATCH = (24, 24, 24)
IMAGE_CHANNELS = 2
ROTATION = (-30 / 360 * 2 * np.pi, 30 / 360 * 2 * np.pi)  # nnU-Net's 3D rotation range
DS_SCALES = [[1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]
# one trainer per kind of maps: its own transform builder, its kind's far value
TRAINERS = {"sing": "nnUNetTrainerSiNGR", "dtm": "nnUNetTrainerGSL", "rrw": "nnUNetTrainerRRW",
            "geols": "nnUNetTrainerGeoLS"}
RAMPS = np.array([[0.031, -0.017, 0.023, 0.05], [-0.011, 0.027, 0.019, -0.2]])  # (a_x, a_y, a_z, b) per map


def trainer_of(kind: str):
    """The trainer class of ``kind``, without plans: only its transform builder and far value are used."""
    import importlib

    name = TRAINERS[kind]
    trainer = object.__new__(getattr(importlib.import_module(f"nnunet_ext.trainers.{name}"), name))
    trainer.dataset_json = {"channel_names": {str(c): f"MR{c}" for c in range(IMAGE_CHANNELS)},
                            "labels": {"background": 0, "lesion": 1}}
    trainer.label_manager = LabelManager(trainer.dataset_json["labels"], regions_class_order=None)
    assert trainer.target_spec().kind == kind and trainer.far_value == REGISTRY[kind].far_value
    return trainer


def spatial_transforms(transform) -> list[SpatialTransform]:
    found = [transform] if isinstance(transform, SpatialTransform) else []
    for child in [*getattr(transform, "transforms", ()), *filter(None, [getattr(transform, "transform", None)])]:
        found += spatial_transforms(child)
    return found


def training_pipeline(trainer, dummy_2d: bool):
    """The trainer's training pipeline (nnU-Net's, adapted for the maps), with its SpatialTransform made to rotate
    and zoom out every time (nnU-Net draws each with p 0.2), so that every sample is interpolated and padded."""
    patch = PATCH[1:] if dummy_2d else PATCH
    pipeline = trainer.get_training_transforms(
        PATCH, ROTATION, DS_SCALES, (0, 1, 2), dummy_2d, use_mask_for_norm=[False] * IMAGE_CHANNELS,
        is_cascaded=False, foreground_labels=[1], regions=None, ignore_label=None)
    (spatial,) = spatial_transforms(pipeline)
    assert tuple(spatial.patch_size) == patch
    spatial.p_rotation, spatial.p_scaling, spatial.scaling = 1.0, 1.0, (1.3, 1.3)
    return pipeline


def ramps(shape) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"))
    return np.einsum("kd,d...->k...", RAMPS[:, :3], grid) + RAMPS[:, 3, None, None, None]


def run_pipeline(trainer, dummy_2d: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(maps with the far value added back, full-resolution seg) of one sample through the pipeline."""
    rng = np.random.default_rng(seed)
    maps = ramps(PATCH)
    image = rng.normal(size=(IMAGE_CHANNELS, *PATCH))
    data = torch.from_numpy(np.concatenate([image, maps - trainer.far_value]).astype(np.float32))
    seg = torch.ones((1, *PATCH), dtype=torch.int16)  # all foreground: after the pipeline, 0 is padding
    torch.manual_seed(seed)
    np.random.seed(seed)
    out = training_pipeline(trainer, dummy_2d)(image=data, segmentation=seg)
    full_seg = out["segmentation"][0] if isinstance(out["segmentation"], list) else out["segmentation"]
    return out["image"][IMAGE_CHANNELS:].numpy().astype(np.float64) + trainer.far_value, full_seg[0].numpy()


def check_linear_and_far(maps: np.ndarray, seg: np.ndarray, far: float) -> list[str]:
    """What is wrong with ``maps``: not affine where sampled inside, not the far value where sampled outside."""
    problems = []
    inside = binary_erosion(seg == 1, iterations=2)  # 2 voxels from the edge: sampled from the case only
    outside = binary_erosion(seg == 0, iterations=2, border_value=1)  # sampled from the padding only
    if inside.sum() < 1000 or outside.sum() < 500:
        return [f"the sample is not informative: {inside.sum()} voxels inside, {outside.sum()} outside"]
    coords = np.argwhere(inside).astype(np.float64)
    design = np.column_stack([coords, np.ones(len(coords))])
    for k, channel in enumerate(maps):
        values = channel[inside]
        coefficients = np.linalg.lstsq(design, values, rcond=None)[0]
        residual = np.abs(design @ coefficients - values).max()
        if residual > 1e-4:
            problems.append(f"map {k} is not linearly interpolated: off an affine function by up to {residual:.4f}")
        if np.linalg.norm(coefficients[:3]) < 0.5 * np.linalg.norm(RAMPS[k, :3]):
            problems.append(f"map {k} lost its slope: {coefficients[:3]}")
        padded = channel[outside]
        if not np.allclose(padded, far, atol=1e-5):
            problems.append(f"map {k} is padded with {np.unique(padded.round(4))[:5]}, not the far value {far}")
    return problems


@pytest.mark.parametrize("dummy_2d", [False, True], ids=["3d", "dummy_2d"])
@pytest.mark.parametrize("kind", list(TRAINERS))
def test_maps_are_resampled_linearly_and_padded_with_the_far_value(kind, dummy_2d):
    trainer = trainer_of(kind)
    for seed in range(2):
        maps, seg = run_pipeline(trainer, dummy_2d, seed)
        assert maps.shape == (len(RAMPS), *PATCH)
        assert check_linear_and_far(maps, seg, trainer.far_value) == []


def test_the_check_catches_the_segmentation_path(monkeypatch):
    """batchgeneratorsv2 < 0.3.0: the maps resampled like a segmentation (nearest neighbour, padded with -1)."""
    trainer = trainer_of("rrw")  # far value 1, so that -1 padding cannot pass for it
    maps, seg = run_pipeline(trainer, False, 0)
    assert check_linear_and_far(maps, seg, trainer.far_value) == []

    def as_segmentation(self, regression_target, **params):
        if params.get("grid") is None:
            pytest.skip("this batchgeneratorsv2 passes no sampling grid to simulate the old path with")
        return grid_sample(regression_target[None] + 1, params["grid"][None], mode="nearest", padding_mode="zeros",
                           align_corners=self.align_corners)[0] - 1

    monkeypatch.setattr(SpatialTransform, "_apply_to_regr_target", as_segmentation)
    maps, seg = run_pipeline(trainer, False, 0)
    problems = check_linear_and_far(maps, seg, trainer.far_value)
    assert any("not linearly interpolated" in p for p in problems)
    assert any("not the far value" in p for p in problems)
