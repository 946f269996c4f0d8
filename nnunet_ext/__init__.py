"""nnunet-ext: distance- and geodesic-aware targets and losses for nnU-Net v2.

The math (target maps, losses) lives in modules without nnU-Net imports; the nnU-Net adapters
(dataset, loader, transforms, trainer machinery) import nnunetv2 lazily inside their own modules.
"""

from importlib.metadata import version

__version__ = version("nnunet-ext")  # one source: pyproject.toml
