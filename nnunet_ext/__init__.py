"""nnunet-ext: distance- and geodesic-aware targets and losses for nnU-Net v2.

The math (target maps, losses) lives in modules without nnU-Net imports; the nnU-Net adapters
(dataset, loader, transforms, trainer machinery) import nnunetv2 lazily inside their own modules.
"""

__version__ = "0.1.0"
