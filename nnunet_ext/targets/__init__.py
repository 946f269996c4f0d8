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

from nnunet_ext.targets.dtm import DTMOptions, dtm_maps
from nnunet_ext.targets.geols import GeoLSOptions, geols_maps
from nnunet_ext.targets.registry import REGISTRY, TargetKind, get_kind, make_options
from nnunet_ext.targets.rrw import RRWOptions, rrw_maps
from nnunet_ext.targets.sing import SiNGOptions, sing_bands, sing_maps
from nnunet_ext.targets.spec import TargetSpec

__all__ = ["REGISTRY", "DTMOptions", "GeoLSOptions", "RRWOptions", "SiNGOptions", "TargetKind", "TargetSpec", "dtm_maps",
           "geols_maps", "get_kind", "make_options", "rrw_maps", "sing_bands", "sing_maps"]
