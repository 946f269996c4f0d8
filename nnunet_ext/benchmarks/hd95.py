"""Our MONAI per-region HD95 beside the official BraTS package's HD95s, on the same files.

For docs/results/brats-metrics.md. Data: the BraTS 2013/2015 sample (``brats2015_sample`` in
``--data``, default ``$NNUNET_EXT_DATA``; skipped with a line when absent) converted by
``nnunet_ext_convert_brats``, and a synthetic BraTS-like set (``nnunet_ext_synthetic -k brats``,
``--cases`` cases, seed 0). No model is trained: the "predictions" are the references changed in one
fixed way each, applied to the nested regions (whole tumour, tumour core, enhancing tumour) so that
the label map stays a valid nnU-Net BraTS map:

- ``identical``: the reference itself;
- ``shift 2``: every label moved by 2 voxels along the first array axis;
- ``erode 2`` / ``dilate 2``: each region eroded / dilated by 2 voxels (6-connected steps; erosion
  removes small lesions, i.e. misses them);
- ``false positive``: the reference plus a 5x5x5 enhancing blob at the voxel farthest from the tumour.

Each pair goes through ``nnunet_ext.evaluation.evaluate_folders`` (MONAI HD95) and
``official_folder_metrics`` (``brats-evaluation``, ``--config``), the code of ``nnunet_ext_evaluate
--brats-config``. Prints one Markdown table (means over the cases where the package gives a value)
and, with ``--json``, writes every per-case value.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from nnunet_ext.benchmarks.common import DATA_VARIABLE, hardware_record, sample_folder

PREDICTIONS = ("identical", "shift 2", "erode 2", "dilate 2", "false positive")
REGIONS = ("whole tumor", "tumor core", "enhancing tumor")


def _nested(labels: np.ndarray) -> list[np.ndarray]:
    """Whole tumour, tumour core, enhancing tumour of an nnU-Net BraTS map (1 edema, 2 core, 3 enhancing)."""
    return [labels > 0, labels >= 2, labels == 3]


def _labels(wt: np.ndarray, tc: np.ndarray, et: np.ndarray) -> np.ndarray:
    tc, et = tc & wt, et & tc & wt
    out = np.zeros(wt.shape, np.uint8)
    out[wt] = 1
    out[tc] = 2
    out[et] = 3
    return out


def predict(labels: np.ndarray, kind: str) -> np.ndarray:
    """The fixed change ``kind`` (module docstring) of an nnU-Net BraTS label map."""
    if kind == "identical":
        return labels.copy()
    if kind == "shift 2":
        out = np.zeros_like(labels)
        out[2:] = labels[:-2]
        return out
    if kind in ("erode 2", "dilate 2"):
        operation = ndimage.binary_erosion if kind.startswith("erode") else ndimage.binary_dilation
        return _labels(*(operation(region, iterations=2) for region in _nested(labels)))
    if kind == "false positive":
        out = labels.copy()
        distance = ndimage.distance_transform_edt(labels == 0)
        centre = np.unravel_index(int(np.argmax(distance)), labels.shape)
        out[tuple(slice(max(c - 2, 0), c + 3) for c in centre)] = 3
        return out
    raise ValueError(kind)


def write_like(array: np.ndarray, template: Path, path: Path) -> None:
    import SimpleITK as sitk

    reference = sitk.ReadImage(str(template))
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    sitk.WriteImage(image, str(path), useCompression=True)


def compare(dataset_folder: Path, config: str, work: Path) -> list[dict]:
    """Per-case rows (dataset-independent keys) of every prediction kind against labelsTr."""
    import SimpleITK as sitk

    from nnunet_ext.evaluation import evaluate_folders, official_folder_metrics

    dataset_json = json.loads((dataset_folder / "dataset.json").read_text())
    references = dataset_folder / "labelsTr"
    rows = []
    for kind in PREDICTIONS:
        folder = work / kind.replace(" ", "_")
        folder.mkdir(parents=True)
        for path in sorted(references.glob("*.nii.gz")):
            write_like(predict(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), kind), path, folder / path.name)
        ours = {(m.case, m.region): m for m in evaluate_folders(folder, references, dataset_json)}
        official, _ = official_folder_metrics(folder, references, dataset_json, config)
        for o in official:
            if o["region"] in REGIONS:
                m = ours[(o["case"], o["region"])]
                rows.append({"prediction": kind, "case": o["case"], "region": o["region"], "monai_hd95": m.hd95,
                             "monai_dice": m.dice, "package_hd95": o["global_hd95"], "package_dice": o["global_dice"],
                             "lesion_hd95": o["lw_hd95"], "lesion_dice": o["lw_dice"],
                             "tp": o["tp"], "fp": o["fp"], "fn": o["fn"]})
    return rows


def _mean(values: list[float]) -> str:
    if not values:
        return "n/a"
    infinite = sum(1 for v in values if math.isinf(v))
    return f"inf ({infinite})" if infinite else f"{np.mean(values):.2f}"


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| data | prediction | region | cases | MONAI HD95 | package HD95 | lesion-wise HD95 | "
             "cases MONAI ≠ package | largest \\|MONAI − package\\| | MONAI Dice % | package Dice % |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for data, rows in results.items():
        for kind in PREDICTIONS:
            for region in REGIONS:
                mine = [r for r in rows if r["prediction"] == kind and r["region"] == region]
                have = [r for r in mine if not math.isnan(r["package_hd95"])]
                differences = [abs(r["monai_hd95"] - r["package_hd95"]) for r in have]
                lesion = [r["lesion_hd95"] for r in have if not math.isnan(r["lesion_hd95"])]
                cells = [data, kind, region, f"{len(have)}" + ("" if len(have) == len(mine) else f" of {len(mine)}"),
                         _mean([r["monai_hd95"] for r in have]), _mean([r["package_hd95"] for r in have]),
                         _mean(lesion), str(sum(d > 0.01 for d in differences)),
                         f"{max(differences):.2f}" if differences else "n/a",
                         f"{100 * np.mean([r['monai_dice'] for r in have]):.2f}" if have else "n/a",
                         f"{100 * np.mean([r['package_dice'] for r in have]):.2f}" if have else "n/a"]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=f"folder holding brats2015_sample/ (default: ${DATA_VARIABLE})")
    parser.add_argument("--cases", type=int, default=16, help="synthetic cases (default 16, 64x64x48 at 1 mm)")
    parser.add_argument("--config", default="gli", help="brats-evaluation configuration (default gli)")
    parser.add_argument("--json", type=Path, help="write every per-case value and the hardware record here")
    args = parser.parse_args(argv)

    from nnunet_ext.brats_metrics import package_versions, require_package
    from nnunet_ext.converters.brats import convert_brats
    from nnunet_ext.synthetic import generate_dataset

    require_package()
    results = {}
    with tempfile.TemporaryDirectory(prefix="compare_hd95_") as tmp:
        tmp = Path(tmp)
        sample = sample_folder("brats2015_sample", args.data)
        if sample is None or not sample.is_dir():
            print(f"BraTS sample skipped: no brats2015_sample in --data or ${DATA_VARIABLE}",
                  file=sys.stderr)
        else:
            folder = convert_brats(sample, 990, "BraTS2015Sample", raw_root=tmp / "raw")
            results["BraTS 2015 sample"] = compare(folder, args.config, tmp / "sample")
        folder = generate_dataset("brats", 991, num_cases=args.cases, num_test_cases=0, seed=0, raw_root=tmp / "raw")
        results["synthetic"] = compare(folder, args.config, tmp / "synthetic")
    print(f"{package_versions()}, configuration {args.config}\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"hardware": hardware_record(), "config": args.config,
                                         "packages": package_versions(), "cases": results}, indent=1))
        print(f"\nper-case values: {args.json}")
    return 0

