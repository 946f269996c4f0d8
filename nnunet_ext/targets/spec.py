"""Which maps: a target kind with its validated options, the one form a map spec has from a trainer's
``target_spec()`` or ``nnUNetv2_precompute_targets``' flags to the folder the maps are stored in.

The options object travels whole (to the precompute workers too); its parameters
(:meth:`TargetSpec.params`) are what the spec's digest and folder name are made of, and
:meth:`TargetSpec.argv` turns it back into the command-line flags that select the same maps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from nnunet_ext.targets.registry import REGISTRY, make_options

#: version of the maps' spec (a change makes every spec, and so every maps folder, another)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TargetSpec:
    """A kind of :data:`nnunet_ext.targets.REGISTRY` and the options that change its maps' values.

    ``options``: the kind's options object, or a mapping of parameters that override the kind's defaults,
    or None for the defaults; a mapping or None becomes the options object (a ``ValueError`` names an
    unknown kind or a bad parameter), so ``TargetSpec("sing")`` names the maps that
    ``nnUNetv2_precompute_targets`` writes by default. Equal kind and options: one maps folder.
    """

    kind: str = "sing"
    options: Any = None

    def __post_init__(self):
        if self.options is None or isinstance(self.options, Mapping):
            object.__setattr__(self, "options", make_options(self.kind, self.options))
        elif self.kind in REGISTRY and not isinstance(self.options, REGISTRY[self.kind].options_type):
            raise ValueError(f"kind {self.kind!r} takes {REGISTRY[self.kind].options_type.__name__}, got "
                             f"{type(self.options).__name__}")

    @property
    def params(self) -> dict[str, Any]:
        """The options as JSON values: what the digest, ``spec.json`` and the command line are made of."""
        return self.options.as_params()

    def to_json(self) -> dict:
        return {"kind": self.kind, "params": dict(sorted(self.params.items())), "format": FORMAT_VERSION}

    @property
    def digest(self) -> str:
        return hashlib.sha1(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:10]

    @property
    def target_id(self) -> str:
        """Folder name: readable kind plus a short hash of the parameters."""
        return f"{self.kind}_{self.digest}"

    def argv(self) -> list[str]:
        """The flags of ``nnUNetv2_precompute_targets`` that select these maps: ``--kind`` unless it is the
        default kind, and one flag per parameter that differs from the kind's default."""
        flags = [] if self.kind == "sing" else ["--kind", self.kind]
        defaults = make_options(self.kind).as_params()
        for name, value in self.params.items():
            if value == defaults.get(name):
                continue
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(flag if value else "--no-" + name.replace("_", "-"))
            else:
                flags += [flag, str(value)]
        return flags
