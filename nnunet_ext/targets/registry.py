"""The registry of target-map kinds (:data:`REGISTRY`): each kind's options type, compute function and far value.

Its own module so that :mod:`~nnunet_ext.targets.spec` can import it without importing the package it is part of
(``tests/test_import_graph.py`` keeps the package free of import cycles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from nnunet_ext.targets.dtm import DTMOptions, dtm_maps
from nnunet_ext.targets.geols import GeoLSOptions, geols_maps
from nnunet_ext.targets.rrw import RRWOptions, rrw_maps
from nnunet_ext.targets.sing import SiNGOptions, sing_maps


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
