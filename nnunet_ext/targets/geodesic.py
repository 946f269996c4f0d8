"""Generalised geodesic distances with FastGeodis (SiNGR Eqs. 1-2, GeoLS Eq. 3), and the device they run on.

Pure NumPy/PyTorch, no nnU-Net imports; used by the SiNG (:mod:`~nnunet_ext.targets.sing`) and GeoLS
(:mod:`~nnunet_ext.targets.geols`) maps.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Sequence

import FastGeodis
import numpy as np
import torch

# torch device FastGeodis runs on; maps do not depend on it, so it is a run setting, not an option
_GEODESIC_DEVICE: contextvars.ContextVar[str] = contextvars.ContextVar("geodesic_device", default="cpu")


@contextlib.contextmanager
def geodesic_device(device: str) -> Iterator[None]:
    """Runs every :func:`geodesic_distance` inside the block on ``device`` (``"cpu"`` or ``"cuda"``,
    FastGeodis' CUDA kernels; FastGeodis must have been built with CUDA)."""
    if device != "cpu":
        if not torch.cuda.is_available():
            raise ValueError(f"geodesic device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
        try:  # a FastGeodis built without CUDA raises only when it meets a CUDA tensor
            ones = torch.ones(1, 1, 2, 2, 2, device=device)
            FastGeodis.generalised_geodesic3d(ones, ones, [1.0, 1.0, 1.0], 1e10, 0.5, 1)
        except RuntimeError as error:
            raise ValueError(f"FastGeodis cannot run on {device!r} ({str(error).splitlines()[0]}); rebuild it with "
                             "CUDA (FORCE_CUDA=1 pip install --no-build-isolation --force-reinstall fastgeodis) "
                             "or use --device cpu") from None
    token = _GEODESIC_DEVICE.set(device)
    try:
        yield
    finally:
        _GEODESIC_DEVICE.reset(token)


def geodesic_distance(
    image: np.ndarray, seeds: np.ndarray, spacing: Sequence[float], lam: float, v: float, iterations: int
) -> np.ndarray:
    """G^lambda to ``seeds`` (SiNGR Eq. 1-2) with FastGeodis' generalised geodesic raster scan.

    ``image`` is (*spatial) or (C, *spatial) (channels add their |dI| terms). 2D arrays run
    through the 3D kernel with a singleton axis: ``generalised_geodesic2d`` takes no spacing (it
    assumes 1 per pixel) and gives identical results for unit spacing (checked in the tests).
    Runs on the device :func:`geodesic_device` selects (default CPU).
    """
    seeds = np.asarray(seeds, dtype=bool)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == seeds.ndim:
        image = image[None]
    spatial = seeds.shape
    grid = spatial if seeds.ndim == 3 else (1,) + spatial
    grid_spacing = [float(s) for s in spacing] if seeds.ndim == 3 else [1.0] + [float(s) for s in spacing]
    device = _GEODESIC_DEVICE.get()
    image_t = torch.from_numpy(np.ascontiguousarray(image)).reshape(1, image.shape[0], *grid).to(device)
    softmask = torch.from_numpy(np.ascontiguousarray(~seeds, dtype=np.float32)).reshape(1, 1, *grid).to(device)
    distance = FastGeodis.generalised_geodesic3d(image_t, softmask, grid_spacing, float(v), float(lam), int(iterations))
    return distance.cpu().numpy().reshape(spatial)
