"""The official BraTS challenge metrics, computed by the organisers' package ``brats-evaluation``.

Nothing here matches lesions or computes a metric: ``brats-evaluation`` 0.0.10 (on ``panoptica``
2.1.7) does, exactly as its own two commands do (``brats-evaluate``, then ``brats-parse-metrics``):

1. per case, ``brats_evaluation.evaluate_single_exam`` with the bundled configuration
   (``brats_evaluation.config_path(name)``), fed the two label files;
2. the per-case results, in the JSON format ``brats-evaluate --summary_json`` writes, go through the
   package's parser: ``parse_mets_results`` (``brats-parse-metrics mets``, its defaults
   ``--vol_threshold 20.0 --overlap_threshold 0.1``) for ``mets``, ``parse_seg_results``
   (``brats-parse-metrics seg``) for every other configuration, as the package's README says.

From the parser's CSV this module keeps, per case and label group (``wt``, ``tc``, ``et``, ...):
``lesionwise_dsc_mean`` and ``lesionwise_hd95_mean`` (lesion-wise Dice and HD95, the ranking
metrics), ``global_dsc`` and ``global_hd95`` (the package's whole-region Dice and HD95) and the
lesion counts ``all_instance_tp`` / ``_fp`` / ``_fn``. What these are in the package's source
(docs/how-to/brats-metrics.md gives the penalties and how they differ from our MONAI metrics): lesions
are 26-connected components (cc3d), matched one-to-one by maximum-Dice bipartite matching (any
overlap); the ``seg`` parser's lesion-wise values are panoptica's ``sq_dsc`` / ``sq_hd95``, means over
the matched lesions only; the ``mets`` parser averages over the lesions of at least 20 voxels,
missed ones and all false positives counting Dice 0 and HD95 373.

Labels: the configurations ``gli``, ``mets``, ``MenPre`` and ``GoAT`` group BraTS 2023+ labels (1 NETC,
2 SNFH, 3 ET, 4 RC). nnU-Net's BraTS datasets (labels 1 edema, 2 core, 3 enhancing; the converter's
and ``Dataset137_BraTS21``) are converted with ``BRATS_EXPORT_LABELS["2023"]`` (:mod:`nnunet_ext.labels`), the mapping
``nnunet_ext_export_brats`` writes, so evaluation and export cannot disagree; ``ped`` (1 ET, 2 NET,
3 CC, 4 ED) and ``MenRT`` (1 GTV) have labels these three cannot express. Any other (label, not
region) dataset is evaluated with its label values as they are.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nnunet_ext.converters.brats import relabelled
from nnunet_ext.errors import NnunetExtError
from nnunet_ext.labels import (BRATS_EXPORT_LABELS, BRATS_REGION_LABELS, BRATS_REGIONS_CLASS_ORDER,
                               is_brats_region_dataset, region_definitions)

# brats_evaluation.evaluation.BUNDLED_CONFIGS of brats-evaluation 0.0.10 (a test checks it).
CONFIGS = ("gli", "mets", "ped", "MenRT", "MenPre", "GoAT")
# Configurations whose label groups use the BraTS 2023+ glioma labels (1 NETC, 2 SNFH, 3 ET, 4 RC).
GLIOMA_LABEL_CONFIGS = ("gli", "mets", "MenPre", "GoAT")
OTHER_LABELS = {"ped": "BraTS-PEDs labels (1 ET, 2 NET, 3 CC, 4 ED)", "MenRT": "BraTS-MEN-RT labels (1 GTV)"}
# The two defaults of ``brats-parse-metrics mets``.
METS_VOLUME_THRESHOLD = 20.0
METS_OVERLAP_THRESHOLD = 0.1
# panoptica caps numpy, pandas and rich (every release up to 2.1.7): said where the user installs it.
INSTALL = ("pip install 'nnunet-ext[brats]' (tested: pip install brats-evaluation==0.0.10 panoptica==2.1.7; "
           "scripts/setup_env.sh installs both); panoptica requires numpy < 2.3, pandas < 3 and rich < 14, so pip "
           "downgrades newer ones: to keep them, install it in a separate environment (docs/getting-started.md, "
           "\"Optional extras\")")
# Our column -> the parser's CSV column prefix (followed by the group name).
PARSER_COLUMNS = {
    "lw_dice": "lesionwise_dsc_mean_",
    "lw_hd95": "lesionwise_hd95_mean_",
    "global_dice": "global_dsc_",
    "global_hd95": "global_hd95_",
    "tp": "all_instance_tp_",
    "fp": "all_instance_fp_",
    "fn": "all_instance_fn_",
}
OFFICIAL_METRICS = ("lw_dice", "lw_hd95", "global_dice", "global_hd95")  # summarised like the per-region metrics
OFFICIAL_LABELS = {"lw_dice": ("lesion-wise Dice %", 100.0), "lw_hd95": ("lesion-wise HD95 mm", 1.0),
                   "global_dice": ("Dice % (package)", 100.0), "global_hd95": ("HD95 mm (package)", 1.0)}
COUNTS = ("tp", "fp", "fn")  # per case only


def require_package():
    """The package's module, or an error whose one line says how to install it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import brats_evaluation
            import panoptica  # noqa: F401
    except ImportError as error:
        raise NnunetExtError(f"--brats-config needs the official BraTS package ({error}); install it: {INSTALL}") from None
    return brats_evaluation


def package_versions() -> str:
    return ", ".join(f"{name} {metadata.version(name)}" for name in ("brats-evaluation", "panoptica"))


@dataclass(frozen=True)
class Labels:
    """How label files become the configuration's labels, and which label groups can occur.

    ``lookup`` maps file label -> challenge label (None: the values are already the challenge's);
    ``names`` maps a set of challenge labels to the name of our region with those labels;
    ``possible`` are the challenge labels the files can hold (None: unknown).
    """

    lookup: dict[int, int] | None
    names: dict[frozenset, str]
    possible: frozenset | None


def dataset_labels(dataset_json: dict, config: str) -> Labels:
    """The conversion of a dataset's label files (predictions and references) for ``config``."""
    if config not in CONFIGS:
        raise NnunetExtError(f"unknown BraTS configuration '{config}'; choose one of {', '.join(CONFIGS)}")
    regions = region_definitions(dataset_json)
    if is_brats_region_dataset(dataset_json):
        if config not in GLIOMA_LABEL_CONFIGS:
            raise NnunetExtError(f"--brats-config {config} expects {OTHER_LABELS[config]}, which nnU-Net's BraTS labels "
                                 f"(edema, core, enhancing) cannot express; use one of {', '.join(GLIOMA_LABEL_CONFIGS)}")
        lookup = BRATS_EXPORT_LABELS["2023"]
        names = {frozenset(lookup[label] for label in labels): name for name, labels in regions.items()}
        return Labels(dict(lookup), names, frozenset(v for v in lookup.values() if v))
    if dataset_json.get("regions_class_order"):
        raise NnunetExtError("--brats-config works on nnU-Net's BraTS regions (labels 1 edema, 2 core, 3 enhancing) or "
                             "on label datasets with the challenge's labels; this region dataset is neither")
    return Labels(None, {frozenset(labels): name for name, labels in regions.items()},
                  frozenset(v for labels in regions.values() for v in labels))


def export_labels(convention: str) -> tuple[dict[int, int] | None, Labels]:
    """(lookup of exported files, Labels of nnU-Net reference files) to evaluate an export in ``convention``.

    Exported files hold ``BRATS_EXPORT_LABELS[convention]`` values; they go back through the inverse of that
    map and forward through ``BRATS_EXPORT_LABELS["2023"]`` (identity for ``2023``).
    """
    to_nnunet = {challenge: nnunet for nnunet, challenge in BRATS_EXPORT_LABELS[convention].items()}
    lookup = {value: BRATS_EXPORT_LABELS["2023"][label] for value, label in to_nnunet.items()}
    reference = dataset_labels({"labels": dict(BRATS_REGION_LABELS),
                                "regions_class_order": list(BRATS_REGIONS_CLASS_ORDER)}, "gli")
    return (None if all(k == v for k, v in lookup.items()) else lookup), reference


def _group_labels(evaluator) -> dict[str, frozenset]:
    """Label group name -> its labels, from the loaded panoptica configuration."""
    groups = getattr(evaluator, "_Panoptica_Evaluator__segmentation_class_groups")
    return {name: frozenset(int(v) for v in group.value_labels) for name, group in groups.items()}


def _converted(path: Path, lookup: dict[int, int] | None, target: Path):
    """``path`` itself (lookup None) or ``target``: the file with its labels mapped, the header kept."""
    import SimpleITK as sitk

    if lookup is None:
        return path
    sitk.WriteImage(relabelled(path, lookup, "pass files with nnU-Net's labels of this dataset"), str(target))
    return target


def _ending(path: Path) -> str:
    return ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix


def _number(text: str) -> float:
    return float("nan") if text in ("", None) else float(text)


def official_metrics(pairs: list[tuple[str, Path, Path]], config: str, prediction_lookup: dict[int, int] | None,
                     reference: Labels) -> tuple[list[dict], dict]:
    """(rows, summary) of ``pairs`` = [(case, prediction file, reference file), ...].

    Rows: one per case and label group, ``{"case", "region", lw_dice, lw_hd95, global_dice,
    global_hd95, tp, fp, fn}`` as the package's parser reports them (NaN where it reports none:
    no lesion in either file); the region is ours where the group has the labels of one of our regions,
    else the group's name; groups whose labels cannot occur in these files are left out.
    ``summary`` is what ``brats-evaluate --summary_json`` writes for these cases.
    """
    package = require_package()
    from brats_evaluation.metrics_parser import parse_mets_results, parse_seg_results
    from panoptica import Panoptica_Evaluator

    try:
        from panoptica.utils.citation_reminder import disable_citation_reminder
        disable_citation_reminder()
    except ImportError:
        pass
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = Panoptica_Evaluator.load_from_config(str(package.config_path(config)))
    groups = [(reference.names.get(labels, name), name) for name, labels in _group_labels(evaluator).items()
              if reference.possible is None or labels & reference.possible]
    ours = list(reference.names.values())
    groups.sort(key=lambda g: (ours.index(g[0]), "") if g[0] in ours else (len(ours), ""))  # our regions' order first
    results = []
    spacing_noted = False
    with tempfile.TemporaryDirectory(prefix="nnunet_ext_brats_") as tmp:
        for case, prediction, reference_file in pairs:
            # Both files must share an ending (the package checks); converted copies take the other's.
            ending = _ending(prediction) if prediction_lookup is None else (
                _ending(reference_file) if reference.lookup is None else ".nii")
            pred = _converted(prediction, prediction_lookup, Path(tmp) / f"pred{ending}")
            ref = _converted(reference_file, reference.lookup, Path(tmp) / f"ref{ending}")
            if not spacing_noted:
                spacing_noted = _note_anisotropy(ref)
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # panoptica's NSD threshold and dtype chatter
                result = package.evaluate_single_exam(str(pred), str(ref), case, evaluator)
            if "error" in result:
                raise NnunetExtError(f"the official BraTS evaluation of case {case} failed: {result['error']}")
            results.append(result)
        summary = {"metrics": results, "missings": []}
        (Path(tmp) / "summary.json").write_text(json.dumps(summary))
        parsed = Path(tmp) / "parsed.csv"
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if config == "mets":
                parse_mets_results(str(Path(tmp) / "summary.json"), METS_VOLUME_THRESHOLD, METS_OVERLAP_THRESHOLD,
                                   str(parsed))
            else:
                parse_seg_results(str(Path(tmp) / "summary.json"), str(parsed))
        with open(parsed, newline="") as handle:
            table = list(csv.DictReader(handle))[: len(pairs)]  # then the parser's mean, std and median rows
    if [row["subject_id"] for row in table] != [case for case, _, _ in pairs]:
        raise NnunetExtError(f"the package's parser returned cases {[r['subject_id'] for r in table][:3]}..., "
                             f"expected {[c for c, _, _ in pairs][:3]}...; report this with the package versions "
                             f"({package_versions()})")
    rows = []
    for parsed_row in table:
        for region, name in groups:
            values = {key: _number(parsed_row.get(prefix + name, "")) for key, prefix in PARSER_COLUMNS.items()}
            values.update({key: int(values[key]) for key in COUNTS if math.isfinite(values[key])})
            rows.append({"case": parsed_row["subject_id"], "region": region, **values})
    return rows, summary


def _note_anisotropy(path: Path) -> bool:
    """Prints one line when the voxels are not isotropic (see docs/how-to/brats-metrics.md); True once checked."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    spacing = reader.GetSpacing()
    if max(spacing) - min(spacing) > 1e-6 * max(spacing):
        print(f"note: spacing {tuple(round(s, 4) for s in spacing)} is not isotropic; the official package measures "
              f"global HD95 in voxels and lesion-wise HD95 with the spacing in reversed axis order "
              f"(docs/how-to/brats-metrics.md)", file=sys.stderr)
    return True


def describe(config: str) -> str:
    """A paragraph for reports: what the official columns are for ``config`` (docs/how-to/brats-metrics.md)."""
    parser = "mets" if config == "mets" else "seg"
    if config == "mets":
        lesion_wise = ("mean over the reference lesions of at least 20 mm³ and all false-positive lesions, a missed or "
                       "false-positive lesion counting Dice 0 and HD95 373 mm (no such reference lesion: no value)")
    else:
        lesion_wise = ("mean over the matched lesions only (missed and false-positive lesions do not enter; lesions "
                       "but none matched: Dice 0 and HD95 infinite)")
    return (f"Official BraTS metrics: {package_versions()}, configuration `{config}`, computed per case as "
            f"`brats-evaluate` and `brats-parse-metrics {parser}` compute them. Lesions are 26-connected components, "
            f"matched one-to-one by maximum Dice (any overlap). Lesion-wise Dice and HD95: {lesion_wise}. "
            f"Dice and HD95 (package): the whole region; this HD95 is the 95th percentile of the surface distances of "
            f"both directions pooled, in voxels, and 373 when the region is empty in one file or the two do not "
            f"overlap. No lesion in either file gives no value, left out of the means (the cases column counts "
            f"the rest); an infinite value makes the mean infinite.")


def without_nan(values) -> list[float]:
    """Values without the NaNs (no value: no lesion in either file); infinities stay."""
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
