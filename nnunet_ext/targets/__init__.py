"""Target-map kinds: pure NumPy/PyTorch math, no nnU-Net imports (the hook lives in ``preprocessing/``).

A kind is a name in :data:`REGISTRY` mapped to a :class:`TargetKind`: an options dataclass whose
fields are the ``TargetSpec.params`` of the maps (a :class:`~nnunet_ext.targets.spec.TargetSpec` is
a kind with its validated options), and a compute function with the signature::

    compute(image: float32 (C, *spatial), channel_masks: bool (K, *spatial),
            valid: bool (*spatial), spacing: tuple[float, ...], options,
            ignored: bool (*spatial) | None = None) -> float32 (K, *spatial)

``ignored`` marks the voxels of nnU-Net's ignore label (None: the dataset has none). Their class is
unknown: every kind keeps them out of every mask and lets them create no boundary or seed (the
rule per kind is in its module: :mod:`~nnunet_ext.targets.sing`, :mod:`~nnunet_ext.targets.dtm`,
:mod:`~nnunet_ext.targets.rrw`, :mod:`~nnunet_ext.targets.geols`); the losses mask them.

Every kind (SiNG maps, GSL's signed distance maps, RRW's rectified region-wise maps, GeoLS maps)
registers here and shares the precompute command (``nnUNetv2_precompute_targets --kind ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from nnunet_ext.targets.dtm import DTMOptions, dtm_maps
from nnunet_ext.targets.geols import GeoLSOptions, geols_maps
from nnunet_ext.targets.rrw import RRWOptions, rrw_maps
from nnunet_ext.targets.sing import SiNGOptions, sing_bands, sing_maps
from nnunet_ext.targets.spec import TargetSpec


@dataclass(frozen=True)
class TargetKind:
    name: str
    options_type: type  # frozen dataclass with as_params() and from_params(params)
    compute: Callable[..., Any]
    description: str
    #: value of the maps outside the case, where nnU-Net's crop or spatial augmentation leaves the image
    far_value: float


REGISTRY: dict[str, TargetKind] = {
    # far background: -1 is the saturated outside of a signed normalised map
    "sing": TargetKind("sing", SiNGOptions, sing_maps, "SiNGR signed normalised geodesic maps (Eqs. 1-5)", -1.0),
    # 0 carries no distance information, so voxels outside the case drop out of the GSL and Boundary terms
    # (D^2 and P * D are 0 there) while nnU-Net's region loss still trains them as background; no constant is
    # "the" distance outside the case, whose true value grows with the distance to the object
    "dtm": TargetKind("dtm", DTMOptions, dtm_maps,
                      "signed distance maps in mm, negative inside (GSL Eq. 12, Boundary loss)", 0.0),
    # every component 1: equal components give the RW loss zero gradient there (Eq. 2)
    "rrw": TargetKind("rrw", RRWOptions, rrw_maps, "rectified region-wise maps (Valverde and Tohka, Eq. 4)", 1.0),
    # far from every class: exp(-D) = 0
    "geols": TargetKind("geols", GeoLSOptions, geols_maps,
                        "GeoLS geodesic maps exp(-D) in [0, 1] (MIDL 2024, Eqs. 3-5)", 0.0),
}


def get_kind(name: str) -> TargetKind:
    if name not in REGISTRY:
        raise ValueError(f"unknown target kind {name!r}; known kinds: {sorted(REGISTRY)}")
    return REGISTRY[name]


def make_options(kind: str, params: Mapping[str, Any] | None = None):
    """The options of ``kind`` with ``params`` overriding its defaults."""
    return get_kind(kind).options_type.from_params(params)


__all__ = ["REGISTRY", "DTMOptions", "GeoLSOptions", "RRWOptions", "SiNGOptions", "TargetKind", "TargetSpec", "dtm_maps",
           "geols_maps", "get_kind", "make_options", "rrw_maps", "sing_bands", "sing_maps"]
