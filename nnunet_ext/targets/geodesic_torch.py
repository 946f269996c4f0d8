"""FastGeodis' generalised geodesic distance in plain PyTorch: the same raster scan, no compiler needed.

The distance G^lambda of SiNGR Eqs. 1-2 (and D of GeoLS Eq. 3) as FastGeodis 1.0.5 computes it
(Asad, Dorent, Vercauteren, *FastGeodis: Fast Generalised Geodesic Distance Transform*, JOSS 2022;
``FastGeodis/fastgeodis_cpu.cpp``: ``generalised_geodesic3d_cpu`` and ``geodesic_frontback_pass_cpu``), the
raster scan of Criminisi, Sharp, Blake, *GeoS*, ECCV 2008:

- D starts as ``v * softmask`` (seeds: softmask 0);
- each of ``iterations`` rounds runs a pass along axis 0, then axis 1, then axis 2; a pass visits the
  slices orthogonal to its axis forward, then backward, and sets each voxel p of a slice to
  ``min(D(p), D(q) + (1 - lambda) * d(p, q) + lambda * sum_c |I_c(p) - I_c(q)|)`` over the 3 x 3 voxels q
  around p in the slice visited before it, with ``d(p, q) = sqrt(s_a^2 + |dq_1| s_1^2 + |dq_2| s_2^2)`` the step in
  mm (s_a the spacing of the pass axis, s_1, s_2 those of the slice).

A slice depends only on the one before it, so each pass is a loop over its axis with tensor operations
over the slice: the same code on CPU and CUDA (tensors stay on the input's device). The float32
arithmetic is FastGeodis' own, step for step: lambda and 1 - lambda rounded from double to float32 (as
its Python binding does), the step lengths in float32 with its order of terms (the slice axes in the
order its transposes leave them), the channel terms summed one after another, and
``(D(q) + spatial term) + image term``. ``tests/test_geodesic_torch.py`` measures the agreement.

:func:`generalised_geodesic3d` and :func:`generalised_geodesic2d` take FastGeodis' arguments in its
order; :mod:`nnunet_ext.targets.geodesic` uses them where FastGeodis is not installed (or has no CUDA).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# For the pass along each axis, FastGeodis' layout after its transposes: that axis, then the slice
# axes in the order that fixes the float32 sum of a step length. Each permutation is its own inverse.
_PASS_LAYOUTS = ((0, 1, 2), (1, 0, 2), (2, 1, 0))


def generalised_geodesic3d(image: torch.Tensor, softmask: torch.Tensor, spacing: Sequence[float], v: float,
                           lamb: float, iterations: int = 4) -> torch.Tensor:
    """``FastGeodis.generalised_geodesic3d`` in PyTorch: float32 (B, 1, D, H, W) distances to the voxels
    where ``softmask`` (B, 1, D, H, W) is 0, on ``image`` (B, C, D, H, W) with voxel ``spacing`` (mm, one
    per axis), initial value ``v``, weight ``lamb`` of the image term and ``iterations`` raster rounds.
    (FastGeodis' CPU code scans only the first of a batch; here every item is scanned.)"""
    if image.dim() != 5 or softmask.shape != (image.shape[0], 1, *image.shape[2:]):
        raise ValueError(f"expected image (B, C, D, H, W) and softmask (B, 1, D, H, W), got {tuple(image.shape)} "
                         f"and {tuple(softmask.shape)}")
    image = image.to(torch.float32)
    l_grad, l_eucl = np.float32(lamb), np.float32(1.0 - lamb)  # rounded like FastGeodis' binding rounds them
    spacing = np.asarray(spacing, dtype=np.float32)
    squared = spacing * spacing
    distance = softmask.to(torch.float32) * float(np.float32(v))
    passes = []
    for layout in _PASS_LAYOUTS:
        dims = (0, 1, *(2 + axis for axis in layout))
        oriented = image.permute(dims)
        steps = torch.from_numpy(l_eucl * _step_lengths(squared[list(layout)], oriented.shape[3:])).to(image.device)
        passes.append((dims, F.pad(oriented, _padding(steps.shape)), steps))
    for _ in range(iterations):
        for dims, padded_image, steps in passes:
            distance = _scan(padded_image, distance.permute(dims), steps, l_grad).permute(dims)
    return distance.contiguous()


def generalised_geodesic2d(image: torch.Tensor, softmask: torch.Tensor, v: float, lamb: float,
                           iterations: int = 2) -> torch.Tensor:
    """``FastGeodis.generalised_geodesic2d`` in PyTorch: (B, C, H, W) image, (B, 1, H, W) softmask, unit
    pixel spacing. FastGeodis' 2D scan is its 3D scan on a singleton first axis with unit spacing (the same
    passes, neighbours and step lengths 1 and sqrt 2), so it runs as that."""
    return generalised_geodesic3d(image.unsqueeze(2), softmask.unsqueeze(2), (1.0, 1.0, 1.0), v, lamb,
                                  iterations).squeeze(2)


def _step_lengths(squared: np.ndarray, plane: Sequence[int]) -> np.ndarray:
    """float32 (k1, k2): ``sqrt(s_a^2 + |dq_1| s_1^2 + |dq_2| s_2^2)`` for the slice offsets dq, summed in
    FastGeodis' order from the squared spacings (pass axis first). k is 3, or 1 along a slice axis of
    length 1, which has no neighbours to offer (2D inputs: the singleton axis)."""
    offsets = [np.arange(-1, 2, dtype=np.float32) if size > 1 else np.zeros(1, np.float32) for size in plane]
    lengths = (squared[0] + np.abs(offsets[0])[:, None] * squared[1]) + np.abs(offsets[1])[None, :] * squared[2]
    return np.sqrt(lengths.astype(np.float32))


def _padding(kernel: Sequence[int]) -> tuple[int, ...]:
    """``F.pad``'s padding of the slice axes (last first) for neighbourhoods of ``kernel`` (k1, k2)."""
    return (kernel[1] // 2, kernel[1] // 2, kernel[0] // 2, kernel[0] // 2)


def _scan(padded_image: torch.Tensor, distance: torch.Tensor, steps: torch.Tensor, l_grad: np.float32) -> torch.Tensor:
    """One pass along axis 2, forward then backward, on ``distance`` (B, 1, N, P, Q) with ``padded_image``
    (B, C, N, P + k1 - 1, Q + k2 - 1); returns the new distance (B, 1, N, P, Q). ``steps`` (k1, k2): (1 - lambda)
    times the step lengths to the slice offsets."""
    kernel, centre = steps.shape, tuple(k // 2 for k in steps.shape)
    # the neighbours of border voxels beyond the slice get an infinite distance, so they never win (FastGeodis
    # skips them); their image value (the padding's 0) then does not matter
    padded = F.pad(distance, _padding(kernel), value=float("inf"))
    # (k1, k2, B, P, Q): per slice offset, the candidate distances of every voxel of the slice. The offsets
    # lead so that the minimum over them is a fast reduction over an outer axis; written into these buffers
    # (out=) rather than new tensors, which a loop of thousands of small steps would spend its time allocating
    candidates = distance.new_empty((*kernel, *distance.shape[:1], *distance.shape[3:]))
    image_term, difference = torch.empty_like(candidates), torch.empty_like(candidates)
    steps = steps[:, :, None, None, None]
    length = distance.shape[2]
    for order, step in ((range(1, length), 1), (range(length - 2, -1, -1), -1)):
        for index in order:
            torch.add(_neighbourhoods(padded[:, 0, index - step], kernel), steps, out=candidates)
            if l_grad:  # lambda 0 (G^0 of the band; nnUNetTrainerSiNGR_Euclidean's maps): the image term is exactly 0
                for channel in range(padded_image.shape[1]):  # summed one after another, as FastGeodis sums them
                    term = image_term if channel == 0 else difference
                    here = _neighbourhoods(padded_image[:, channel, index], kernel)[centre]
                    torch.sub(here, _neighbourhoods(padded_image[:, channel, index - step], kernel), out=term).abs_()
                    if channel:
                        image_term.add_(difference)
                candidates.add_(image_term.mul_(float(l_grad)))
            current = _neighbourhoods(padded[:, 0, index], kernel)[centre]
            torch.minimum(current, candidates.flatten(0, 1).amin(0), out=current)
    return _neighbourhoods(padded, kernel)[centre]


def _neighbourhoods(plane: torch.Tensor, kernel: Sequence[int]) -> torch.Tensor:
    """The view (k1, k2, ..., P, Q) of every k1 x k2 window of ``plane`` (..., P + k1 - 1, Q + k2 - 1), the
    window offsets first; ``[centre]`` of it is the unpadded plane."""
    return plane.unfold(-2, kernel[0], 1).unfold(-2, kernel[1], 1).movedim((-2, -1), (0, 1))
