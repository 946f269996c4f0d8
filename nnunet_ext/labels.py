"""What a dataset's label values mean: its evaluation regions and their names, and the BraTS label conventions.

Regions come from ``dataset.json`` through nnU-Net's LabelManager: for region datasets (BraTS-style,
``regions_class_order``) each declared region is the union of its labels; for label datasets each
foreground label is a region of its own. The ignore label is neither.

This module imports nothing of nnunet_ext: converters, synthetic data, evaluation, the official BraTS
metrics, the export and the trainers' health guard all read label meanings from here
(``tests/test_import_graph.py`` keeps the package free of import cycles).
"""

from __future__ import annotations

# nnU-Net's BraTS region dataset (as Dataset137_BraTS21): labels 1 edema, 2 necrotic / non-enhancing
# core, 3 enhancing tumour; regions whole tumour, tumour core, enhancing tumour.
BRATS_REGION_LABELS: dict[str, int | tuple[int, ...]] = {
    "background": 0, "whole tumor": (1, 2, 3), "tumor core": (2, 3), "enhancing tumor": (3,)}
BRATS_REGIONS_CLASS_ORDER = (1, 2, 3)
# nnU-Net BraTS label -> challenge label, per export convention.
BRATS_EXPORT_LABELS: dict[str, dict[int, int]] = {
    "2020": {0: 0, 1: 2, 2: 1, 3: 4},  # BraTS 2017-2022: 1 NCR(/NET), 2 ED, 4 ET
    "2023": {0: 0, 1: 2, 2: 1, 3: 3},  # BraTS 2023+: 1 NETC, 2 SNFH, 3 ET
}


def label_tuple(value) -> tuple[int, ...]:
    """A ``dataset.json`` label entry (an int, or a list / tuple for a region) as a tuple of ints."""
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),)


def is_brats_region_dataset(dataset_json: dict) -> bool:
    """True when the dataset's labels are nnU-Net's BraTS regions (:data:`BRATS_REGION_LABELS`)."""
    labels = {name: label_tuple(value) for name, value in dataset_json.get("labels", {}).items()}
    return labels == {name: label_tuple(value) for name, value in BRATS_REGION_LABELS.items()}


def region_name(dataset_json: dict, target) -> str | None:
    """The name ``dataset.json`` gives the label or region ``target`` (an int or a tuple of labels), None if none."""
    wanted = label_tuple(target)
    return next((name for name, value in dataset_json["labels"].items() if label_tuple(value) == wanted), None)


def region_definitions(dataset_json: dict) -> dict[str, tuple[int, ...]]:
    """Evaluation regions of a dataset: name -> labels whose union forms the region.

    A region without a name of its own in ``dataset.json`` is named by its labels joined by ``+``."""
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    manager = LabelManager(dataset_json["labels"], dataset_json.get("regions_class_order"))
    targets = manager.foreground_regions if manager.has_regions else manager.foreground_labels
    regions = [label_tuple(target) for target in targets]
    return {region_name(dataset_json, r) or "+".join(map(str, r)): r for r in regions}


def ignore_label(dataset_json: dict) -> int | None:
    """The dataset's ignore label (the ``"ignore"`` entry of its labels), None if it has none."""
    value = dataset_json["labels"].get("ignore")
    return None if value is None else int(value)


def label_names(dataset_json: dict) -> dict[int, str]:
    """Name of each non-zero label value of a label map; in region datasets, the smallest region holding it."""
    entries = [(name, label_tuple(value)) for name, value in dataset_json["labels"].items()]
    names: dict[int, str] = {}
    # Largest region first, so that the smallest region containing a label is the one that names it.
    for name, labels in sorted(entries, key=lambda entry: -len(entry[1])):
        for label in labels:
            if label != 0:
                names[label] = name
    return names


def unrecoverable_regions(dataset_json: dict) -> list[str]:
    """The regions that nnU-Net's label output of a region dataset cannot give back.

    nnU-Net turns predicted regions into one label map by painting the regions in their declared order,
    region ``i`` with label ``regions_class_order[i]``, so a later region overwrites an earlier one; the
    evaluation then reads each region back as the union of its labels. Painting every label value the way
    a voxel of that value would be painted shows which regions come back whole: with regions (whole
    tumour, tumour core, enhancing tumour) = ((1, 2, 3), (2, 3), (3,)), ``regions_class_order`` (1, 2, 3)
    loses nothing, (3, 2, 1) paints enhancing voxels 1 and loses tumour core and enhancing tumour.
    Empty for label datasets.
    """
    order = dataset_json.get("regions_class_order")
    if not order:
        return []
    regions = region_definitions(dataset_json)
    values = sorted({label for labels in regions.values() for label in labels})
    painted = {}
    for value in values:
        painted[value] = 0
        for labels, label in zip(regions.values(), order):
            if value in labels:
                painted[value] = int(label)
    return [name for name, labels in regions.items()
            if any((painted[value] in labels) != (value in labels) for value in values)]
