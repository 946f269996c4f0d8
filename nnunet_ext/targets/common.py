"""Pieces every target kind shares: its options' round trip to ``TargetSpec.params`` and input checks."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.ndimage import find_objects

_COERCED = {kind.__name__: kind for kind in (bool, int, float)}  # by annotation name: "bool" or bool alike


class TargetOptions:
    """Base of the frozen options dataclasses of the target kinds.

    :meth:`as_params` is the ``TargetSpec.params`` of the maps (so every field changes the spec
    digest); :meth:`from_params` rebuilds the options from a subset of it, defaults for the rest.
    """

    def __post_init__(self):
        """Each field as its declared type (so that delta=0 and delta=0.0 give one spec digest), and a field
        whose metadata lists ``choices`` one of them; the kinds add their range checks after this."""
        for option in fields(self):
            value = getattr(self, option.name)
            kind = _COERCED.get(getattr(option.type, "__name__", option.type))
            if kind is not None:
                object.__setattr__(self, option.name, kind(value))
            elif "choices" in option.metadata and value not in option.metadata["choices"]:
                raise ValueError(f"{option.name} must be one of {option.metadata['choices']}, got {value!r}")

    def as_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None):
        params = dict(params or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} parameter(s) {unknown}; known: {known}")
        return cls(**params)


def channel_masks_within(image: np.ndarray, channel_masks: np.ndarray, valid: np.ndarray,
                         spacing: Sequence[float]) -> np.ndarray:
    """The target-kind inputs checked (shapes, 2D/3D, spacing), masks restricted to ``valid``: bool (K, *spatial).

    ``valid``: voxels outside it are background whatever the masks say (the precompute passes ``seg >= 0``: nnU-Net
    writes -1 for the background outside its nonzero mask and keeps the labels there).
    """
    masks = np.asarray(channel_masks, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    spatial = masks.shape[1:]
    if len(spatial) not in (2, 3):
        raise ValueError(f"channel_masks must be (K, *spatial) with 2 or 3 spatial axes, got shape {masks.shape}")
    if np.ndim(image) != len(spatial) + 1 or np.shape(image)[1:] != spatial or valid.shape != spatial:
        raise ValueError(f"shapes disagree: image {np.shape(image)}, channel_masks {masks.shape}, valid {valid.shape}")
    if len(spacing) != len(spatial) or min(float(s) for s in spacing) <= 0:
        raise ValueError(f"spacing {tuple(spacing)} must have one positive entry per spatial axis of {spatial}")
    return masks & valid


def ignored_voxels(ignored: np.ndarray | None, spatial: Sequence[int]) -> np.ndarray | None:
    """``ignored`` (voxels of nnU-Net's ignore label) checked against the masks' spatial shape, as bool;
    None when there is no ignored voxel, so that every kind computes exactly its usual maps then.

    The rule every kind follows: an ignored voxel's class is unknown, so it belongs to no channel mask
    (nor to a background or complement mask) and creates no boundary; what each kind writes there is
    in its module docstring (the losses mask those voxels).
    """
    if ignored is None:
        return None
    ignored = np.asarray(ignored, dtype=bool)
    if ignored.shape != tuple(spatial):
        raise ValueError(f"shapes disagree: ignored {ignored.shape}, channel masks {tuple(spatial)}")
    return ignored if ignored.any() else None


def bounding_box(mask: np.ndarray, margin: int | Sequence[int] = 0) -> tuple[slice, ...]:
    """The bounding box of the True voxels of a non-empty bool ``mask`` (scipy's ``find_objects``), grown by
    ``margin`` voxels (one per axis, or one for all axes) and clipped to the array."""
    boxes = find_objects(mask)
    if not boxes:
        raise ValueError("the bounding box of an empty mask")
    margins = [margin] * mask.ndim if isinstance(margin, int) else margin
    return tuple(slice(max(0, b.start - m), min(n, b.stop + m)) for b, m, n in zip(boxes[0], margins, mask.shape))


#: how a geodesic cost term uses the image (:func:`gradient_channels`): one channel, or every channel's map averaged
IMAGE_MODES = ("channel", "mean_of_maps")


def gradient_channels(image: np.ndarray, mode: str, channel: int) -> np.ndarray:
    """The image channels of a geodesic cost term, float32 (C', *spatial): ``mode="channel"`` keeps
    channel ``channel``; ``"mean_of_maps"`` keeps all of them (one map each, averaged by the caller)."""
    image = np.asarray(image, dtype=np.float32)
    if mode == "channel":
        if channel >= image.shape[0]:
            raise ValueError(f"image_channel {channel} does not exist; the image has {image.shape[0]} channel(s)")
        image = image[channel : channel + 1]
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or inf values")
    return image
