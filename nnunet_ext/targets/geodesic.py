"""Generalised geodesic distances (SiNGR Eqs. 1-2, GeoLS Eq. 3): FastGeodis' raster scan, the backend and
the device it runs on.

Two backends compute the same distance: FastGeodis (compiled C++/CUDA; Asad et al., JOSS 2022) and its
raster scan in plain PyTorch (:mod:`~nnunet_ext.targets.geodesic_torch`, for machines where FastGeodis
cannot be built: it needs a compiler). :func:`_backend` is the one place that chooses: FastGeodis when it
imports and runs on the device, else the PyTorch scan, which each process then announces once on stderr.
The two agree to float32 rounding (bit for bit on every array of ``tests/test_geodesic_torch.py``
and on the BraTS case of ``nnunet_ext_benchmark targets``), so the maps and their spec do not depend on
the backend. :func:`geodesic_backend` forces one (the targets benchmark compares them on the same arrays).

FastGeodis is imported only when a distance is computed, so that ``nnunet_ext.targets`` and the trainers
import without it. Pure NumPy/PyTorch, no nnU-Net imports; used by the SiNG
(:mod:`~nnunet_ext.targets.sing`) and GeoLS (:mod:`~nnunet_ext.targets.geols`) maps.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from nnunet_ext.targets import geodesic_torch

BACKENDS = ("fastgeodis", "torch")
# torch device the distances run on; maps do not depend on it, so it is a run setting, not an option
_GEODESIC_DEVICE: contextvars.ContextVar[str] = contextvars.ContextVar("geodesic_device", default="cpu")
_BACKEND: contextvars.ContextVar[str | None] = contextvars.ContextVar("geodesic_backend", default=None)  # None: auto


@contextlib.contextmanager
def geodesic_device(device: str) -> Iterator[None]:
    """Runs every :func:`geodesic_distance` inside the block on ``device`` (``"cpu"`` or ``"cuda"``: FastGeodis'
    CUDA kernels if it was built with CUDA, else the PyTorch scan on the GPU)."""
    if device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"geodesic device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    with _set_in_block(_GEODESIC_DEVICE, device):
        yield


@contextlib.contextmanager
def geodesic_backend(name: str) -> Iterator[None]:
    """Runs every :func:`geodesic_distance` inside the block with ``name`` (one of :data:`BACKENDS`);
    ``"fastgeodis"`` raises ValueError where FastGeodis cannot run."""
    if name not in BACKENDS:
        raise ValueError(f"unknown geodesic backend {name!r}; known: {list(BACKENDS)}")
    with _set_in_block(_BACKEND, name):
        yield


@contextlib.contextmanager
def _set_in_block(setting: contextvars.ContextVar, value) -> Iterator[None]:
    """``setting`` is ``value`` inside the block, its earlier value after it."""
    token = setting.set(value)
    try:
        yield
    finally:
        setting.reset(token)


def geodesic_distance(
    image: np.ndarray, seeds: np.ndarray, spacing: Sequence[float], lam: float, v: float, iterations: int
) -> np.ndarray:
    """G^lambda to ``seeds`` (SiNGR Eq. 1-2) with FastGeodis' generalised geodesic raster scan.

    ``image`` is (*spatial) or (C, *spatial) (channels add their |dI| terms). 2D arrays run
    through the 3D kernel with a singleton axis: ``generalised_geodesic2d`` takes no spacing (it
    assumes 1 per pixel) and gives identical results for unit spacing (checked in the tests).
    Runs on the device :func:`geodesic_device` selects (default CPU), with the backend :func:`_backend` picks.
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
    generalised_geodesic3d = _backend(device, _BACKEND.get())
    distance = generalised_geodesic3d(image_t, softmask, grid_spacing, float(v), float(lam), int(iterations))
    return distance.cpu().numpy().reshape(spatial)


@functools.cache
def _backend(device: str, forced: str | None) -> Callable[..., torch.Tensor]:
    """``generalised_geodesic3d`` of the backend for ``device``: ``forced`` (:func:`geodesic_backend`), or else
    FastGeodis where it imports and runs, the PyTorch scan otherwise. Cached: decided (a fallback announced) once."""
    fastgeodis, why = (None, "asked for") if forced == "torch" else _fastgeodis(device)
    if fastgeodis is None and forced == "fastgeodis":
        raise ValueError(why)
    if fastgeodis is None and forced is None:  # the fallback is said once; FastGeodis, the usual case, is not
        print(f"nnunet-ext: geodesic distances on {device} with the PyTorch raster scan ({why}; pip install "
              "'nnunet-ext[fast]' for FastGeodis)", file=sys.stderr, flush=True)
    return fastgeodis or geodesic_torch.generalised_geodesic3d


def _fastgeodis(device: str) -> tuple[Callable[..., torch.Tensor] | None, str]:
    """(FastGeodis' ``generalised_geodesic3d``, "") if FastGeodis imports and runs on ``device``, else (None, why)."""
    try:
        import FastGeodis
    except ImportError as error:
        return None, f"FastGeodis is not importable: {error}"
    if device != "cpu":
        try:  # a FastGeodis built without CUDA raises only when it meets a CUDA tensor
            ones = torch.ones(1, 1, 2, 2, 2, device=device)
            FastGeodis.generalised_geodesic3d(ones, ones, [1.0, 1.0, 1.0], 1e10, 0.5, 1)
        except RuntimeError as error:
            return None, f"FastGeodis cannot run on {device!r}: {str(error).splitlines()[0]}"
    return FastGeodis.generalised_geodesic3d, ""
