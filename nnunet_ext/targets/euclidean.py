"""The exact Euclidean distance transform behind the Euclidean maps (DTM, RRW, the SiNG band of
``band_distance="edt"``).

:func:`distance_to_outside` gives, for every voxel of a bool mask, the distance in mm to the
nearest voxel outside it (0 outside). It runs the ``edt`` package (Silversmith, seung-lab: exact,
anisotropic, multi-threaded; the one made for this job) with the array border *not* counted as
outside (``black_border=False``), which is SciPy's ``ndimage.distance_transform_edt`` convention.
Both are exact EDTs: they agree up to float32 rounding (tests). SciPy remains selectable with
:func:`euclidean_backend` so that ``nnunet_ext_benchmark targets`` compares the two like for like.

Threads: as many as torch's intra-op pool (``torch.get_num_threads()``), which
``nnUNetv2_precompute_targets`` sets per worker to ``cpus // -np``, so parallel workers do not
oversubscribe the cores.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Sequence

import edt
import numpy as np
import torch
from scipy import ndimage

BACKENDS = ("edt", "scipy")
_BACKEND: contextvars.ContextVar[str] = contextvars.ContextVar("euclidean_backend", default="edt")


@contextlib.contextmanager
def euclidean_backend(name: str) -> Iterator[None]:
    """Runs every :func:`distance_to_outside` inside the block with ``name`` (one of :data:`BACKENDS`)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown Euclidean distance backend {name!r}; known: {list(BACKENDS)}")
    token = _BACKEND.set(name)
    try:
        yield
    finally:
        _BACKEND.reset(token)


def distance_to_outside(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """float32 (*spatial): for each True voxel of ``mask`` (1-3D) the Euclidean distance in mm
    (voxel spacing ``spacing``, one value per axis) to the nearest False voxel; 0 on False voxels.

    The mask needs at least one False voxel (else no distance exists: ValueError).
    """
    mask = np.asarray(mask, dtype=bool)
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != mask.ndim:
        raise ValueError(f"spacing {spacing} does not match a {mask.ndim}D mask")
    if mask.all():
        raise ValueError("the mask has no voxel outside it: no distance to the outside exists")
    if _BACKEND.get() == "scipy":
        return ndimage.distance_transform_edt(mask, sampling=spacing).astype(np.float32)
    anisotropy = spacing[0] if mask.ndim == 1 else spacing  # edt takes a scalar for 1D arrays
    return edt.edt(mask, anisotropy=anisotropy, black_border=False,
                   parallel=torch.get_num_threads()).astype(np.float32, copy=False)
