"""One preprocessed nnU-Net configuration as the maps see it, and the rule that says whether its maps are fresh.

:class:`PreprocessedConfiguration` holds what the maps of a configuration depend on beyond their
:class:`~nnunet_ext.targets.spec.TargetSpec`: its folder and cases, spacing and patch size from the plans,
the channels (one per region of nnU-Net's LabelManager for region datasets, else one per foreground
label, in the order of the network's outputs), ``has_regions`` and the ignore label from dataset.json.
It is built either from disk (:meth:`~PreprocessedConfiguration.from_disk`: the command line and the
workflow, through ``$nnUNet_preprocessed``) or from a trainer's own ``plans_manager``,
``configuration_manager``, ``label_manager`` and ``dataset_json``
(:meth:`~PreprocessedConfiguration.from_trainer`), so a trainer never re-reads them.

Freshness: :meth:`~PreprocessedConfiguration.map_key` is what each map records
(:func:`nnunet_ext.target_store.write_case`) and :meth:`~PreprocessedConfiguration.case_status` checks,
together with the case files' size and mtime and the checksum of the stored maps: a change of the
spec, the channels or their order, ``has_regions``, the ignore label or the spacing makes the maps
stale. ``nnUNetv2_precompute_targets``, the trainers and the workflow's ``Pipeline.precompute`` all ask
this one rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnunet_ext.errors import NnunetExtError
from nnunet_ext.nnunet_env import PLANS, nnunet_folder, resolve_dataset_name
from nnunet_ext.target_store import case_identifiers, case_status
from nnunet_ext.targets.spec import TargetSpec


@dataclass(frozen=True)
class PreprocessedConfiguration:
    """The maps' view of one preprocessed configuration (plain values: it pickles to precompute workers)."""

    dataset_name: str
    configuration: str
    plans_identifier: str
    folder: Path  #: ``$nnUNet_preprocessed/<dataset>/<data identifier>``, the cases' folder
    cases: tuple[str, ...]
    spacing: tuple[float, ...]  #: two entries: a 2d configuration, its maps computed slice by slice
    patch_size: tuple[int, ...]
    channels: list[list[int]]  #: labels of each map channel (a region, or one label), as spec.json lists them
    has_regions: bool
    ignore_label: int | None
    channel_names: dict  #: the image channels of dataset.json (names in error messages)
    file_ending: str | None

    @classmethod
    def from_disk(cls, dataset: int | str, configuration: str, plans_identifier: str = PLANS
                  ) -> PreprocessedConfiguration:
        """The configuration of ``$nnUNet_preprocessed``'s dataset (id or name); one-line errors name the
        command that creates what is missing."""
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        dataset_name = resolve_dataset_name(dataset)
        dataset_dir = nnunet_folder("nnUNet_preprocessed") / dataset_name
        plans_file = dataset_dir / f"{plans_identifier}.json"
        if not plans_file.is_file():
            raise NnunetExtError(
                f"no plans {plans_file}; run: nnUNetv2_plan_and_preprocess -d {dataset_name} -c {configuration}"
                + ("" if plans_identifier == PLANS else f" (with the planner that writes {plans_identifier})"))
        plans_manager = PlansManager(str(plans_file))
        if configuration not in plans_manager.available_configurations:
            raise NnunetExtError(
                f"configuration {configuration!r} is not in {plans_file.name}; available: "
                f"{', '.join(plans_manager.available_configurations)}")
        configuration_manager = plans_manager.get_configuration(configuration)
        dataset_json = json.loads((dataset_dir / "dataset.json").read_text())
        return cls.from_managers(plans_manager, configuration, configuration_manager,
                                 plans_manager.get_label_manager(dataset_json), dataset_json,
                                 dataset_dir / configuration_manager.data_identifier)

    @classmethod
    def from_trainer(cls, trainer) -> PreprocessedConfiguration:
        """The configuration an nnU-Net trainer trains on, from the managers it already holds."""
        return cls.from_managers(trainer.plans_manager, trainer.configuration_name, trainer.configuration_manager,
                                 trainer.label_manager, trainer.dataset_json, Path(trainer.preprocessed_dataset_folder))

    @classmethod
    def from_managers(cls, plans_manager, configuration: str, configuration_manager, label_manager,
                      dataset_json: dict, folder: Path) -> PreprocessedConfiguration:
        """From nnU-Net's managers of the configuration and its preprocessed ``folder`` (which must hold cases)."""
        cases = case_identifiers(folder) if folder.is_dir() else []
        if not cases:
            raise NnunetExtError(
                f"no preprocessed cases in {folder}; run: nnUNetv2_preprocess -d {plans_manager.dataset_name} "
                f"-c {configuration} -p {plans_manager.plans_name}")
        if label_manager.has_regions:
            channels = [r if isinstance(r, (tuple, list)) else [r] for r in label_manager.foreground_regions]
        else:
            channels = [[label] for label in label_manager.foreground_labels]
        return cls(
            dataset_name=plans_manager.dataset_name,
            configuration=configuration,
            plans_identifier=plans_manager.plans_name,
            folder=Path(folder),
            cases=tuple(cases),
            spacing=tuple(float(s) for s in configuration_manager.spacing),
            patch_size=tuple(int(p) for p in configuration_manager.patch_size),
            channels=[[int(v) for v in c] for c in channels],
            has_regions=bool(label_manager.has_regions),
            ignore_label=None if label_manager.ignore_label is None else int(label_manager.ignore_label),
            channel_names=dict(dataset_json.get("channel_names", {})),
            file_ending=dataset_json.get("file_ending"),
        )

    # ------------------------------------------------------------------------------ the freshness rule
    def map_key(self, spec: TargetSpec) -> dict[str, Any]:
        """What the maps of ``spec`` depend on besides the case files (whose size and mtime every map records
        too): recorded with each map, and a map whose key differs is stale."""
        return {"spec": spec.digest, "channels": [list(c) for c in self.channels], "has_regions": self.has_regions,
                "ignore_label": self.ignore_label, "spacing": list(self.spacing)}

    def case_status(self, spec: TargetSpec, case: str) -> str:
        """``"ok"``, ``"missing"``, ``"stale"`` or ``"corrupt"`` (:func:`nnunet_ext.target_store.case_status`)."""
        return case_status(self.folder, spec, case, self.map_key(spec))

    def statuses(self, spec: TargetSpec) -> dict[str, str]:
        """:meth:`case_status` of every case."""
        return {case: self.case_status(spec, case) for case in self.cases}

    def spec_record(self, spec: TargetSpec, versions: dict[str, str]) -> dict[str, Any]:
        """The content of the maps' ``spec.json`` beyond the spec itself: what they were computed for, and with."""
        return {
            "configuration": self.configuration,
            "plans_identifier": self.plans_identifier,
            "spacing": list(self.spacing),
            "slicewise_2d": len(self.spacing) == 2,
            "channels": [list(c) for c in self.channels],
            "has_regions": self.has_regions,
            **({} if self.ignore_label is None else {"ignore_label": self.ignore_label}),
            "versions": versions,
        }
