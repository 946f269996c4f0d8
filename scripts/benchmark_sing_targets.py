"""Benchmark of the SiNG targets (SiNGR Eqs. 1-5): our transform and hook vs the authors' recipe.

    .venv/bin/python scripts/benchmark_sing_targets.py [--out DIR] [--threads 2] [--authors-cases 1]

Data: the BraTS 2013/2015 sample cases in ../shared/data/brats2015_sample (240x240x155 at 1 mm,
FLAIR and T1c duplicated to 4 channels, regions WT = labels > 0, TC = {1, 3, 4}, ET = {4}, brain
mask as nnU-Net's nonzero mask) when present, else synthetic volumes of that size.

Measured, in one run on the same machine and thread count:
1. the hook end to end (``precompute_targets`` on an nnU-Net-layout folder written with nnU-Net's
   own ``save_case``, cases cropped to the brain like nnU-Net does): seconds per case with one
   process, then with ``-np 2`` (one thread each) and its peak memory per worker; size of the maps
   file vs the case's preprocessed image file;
2. side by side on the full 240x240x155 volume: our default transform, our transform without
   cropping, and the authors' recipe as NOTES section 2 describes their released code (full volume,
   per-slice Canny on the background mask, per-modality FastGeodis with lambda 0.5 and lambda 0,
   4 iterations, tau over the foreground, maps averaged over modalities); speed ratio, and the
   agreement inside the band (mean / max |difference|, band Dice);
3. scaling of our transform with the volume size (same object in a bigger array), the object size
   (case zoomed by 1.5) and the number of regions.

Writes ``benchmark.json`` and ``benchmark.md`` to the output folder it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import FastGeodis
import numpy as np
import torch
from scipy import ndimage
from skimage import feature

from nnunet_ext.targets import SiNGOptions, sing_maps
from nnunet_ext.targets.boundary import boundary_3d

# the shared data folder sits beside the repository checkout (../shared/data)
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2015_sample"
REGIONS = {"WT": (1, 2, 3, 4), "TC": (1, 3, 4), "ET": (4,)}  # nnU-Net's BraTS order


def load_cases(limit: int) -> list[dict]:
    """(image (4, Z, Y, X), labels, brain mask, spacing) per case; synthetic if the sample is absent."""
    import SimpleITK as sitk

    folders = sorted(p for p in SAMPLE.glob("*/") if (p / "OTMultiClass.nii.gz").exists())[:limit]
    cases = []
    for folder in folders:
        read = lambda name: sitk.ReadImage(str(folder / name))  # noqa: E731
        flair, t1c = read("Flair_subtrMeanDivStd.nii.gz"), read("T1c_subtrMeanDivStd.nii.gz")
        channels = [sitk.GetArrayFromImage(image).astype(np.float32) for image in (flair, t1c)]
        image = np.stack(channels * 2)  # duplicate to BraTS' four channels
        labels = sitk.GetArrayFromImage(read("OTMultiClass.nii.gz")).astype(np.int16)
        brain = sitk.GetArrayFromImage(read("brainmask.nii.gz")) > 0
        image[:, ~brain] = 0
        cases.append({"name": folder.name, "image": image, "labels": labels, "brain": brain,
                      "spacing": tuple(float(s) for s in reversed(flair.GetSpacing()))})
    if cases:
        return cases
    rng = np.random.default_rng(0)
    for index in range(limit):
        grid = np.indices((155, 240, 240)).astype(np.float32)
        centre = np.array([77, 120 + 20 * index, 110])[:, None, None, None]
        radius = np.sqrt((((grid - centre) / np.array([20, 28, 24])[:, None, None, None]) ** 2).sum(0))
        radius += ndimage.gaussian_filter(rng.standard_normal(radius.shape).astype(np.float32), 6) * 8
        labels = np.select([radius < 0.4, radius < 0.6, radius < 1.0], [4, 1, 2], 0).astype(np.int16)
        brain = (((grid - np.array([77, 120, 120])[:, None, None, None]) / np.array([70, 80, 72])[:, None, None, None]) ** 2).sum(0) < 1
        image = np.stack([labels * (c + 1) * 0.5 + rng.standard_normal(labels.shape) for c in range(4)]).astype(np.float32)
        image[:, ~brain] = 0
        cases.append({"name": f"synthetic_{index}", "image": image, "labels": labels, "brain": brain,
                      "spacing": (1.0, 1.0, 1.0)})
    return cases


def region_masks(labels: np.ndarray, names=tuple(REGIONS)) -> np.ndarray:
    return np.stack([np.isin(labels, REGIONS[name]) for name in names])


# ------------------------------------------------------------------------------------------------
# the authors' recipe (NOTES section 2), written from that description
# ------------------------------------------------------------------------------------------------
def authors_recipe(image: np.ndarray, mask: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Their SiNG map of one region on the full volume and its band (G^0 <= beta)."""
    if not mask.any():
        return np.full(mask.shape, -1.0, np.float32), np.zeros(mask.shape, bool)
    background = (~mask).astype(np.float64)
    seeds = np.stack([feature.canny(plane, sigma=1) for plane in background])  # axial slices, defaults
    softmask = torch.from_numpy((1.0 - seeds).astype(np.float32))[None, None]
    maps, band = [], None
    for channel in image:  # one map per modality, averaged
        tensor = torch.from_numpy(np.ascontiguousarray(channel))[None, None]
        g = FastGeodis.generalised_geodesic3d(tensor, softmask, list(spacing), 1e10, 0.5, 4)[0, 0].numpy()
        g0 = FastGeodis.generalised_geodesic3d(tensor, softmask, list(spacing), 1e10, 0.0, 4)[0, 0].numpy()
        beta = g0[mask].max()
        band = g0 <= beta
        tau = g[mask].max()
        inside = 0.5 + 0.5 * g / tau
        outside_in_band = -(0.5 + 0.5 * np.minimum(g, tau) / tau)
        beyond = -(0.5 + 0.5 * min(g0[~mask].max(), beta) / beta)
        maps.append(np.where(band, np.where(mask, inside, outside_in_band), beyond).astype(np.float32))
    return np.mean(maps, axis=0), band


def our_band(mask: np.ndarray, spacing) -> np.ndarray:
    """The band B of Eq. 3 for our default options (3d boundary, exact EDT)."""
    if not mask.any():
        return np.zeros(mask.shape, bool)
    g0 = ndimage.distance_transform_edt(~boundary_3d(mask), sampling=spacing)
    return g0 <= g0[mask].max()


def timed(function, *args, repeats: int = 1):
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def compare(ours: np.ndarray, theirs: np.ndarray, band_ours: np.ndarray, band_theirs: np.ndarray) -> dict:
    both = band_ours & band_theirs
    difference = np.abs(ours - theirs)[both]
    union = (band_ours | band_theirs).sum()
    return {
        "mean_abs_diff_in_band": float(difference.mean()) if difference.size else 0.0,
        "max_abs_diff_in_band": float(difference.max()) if difference.size else 0.0,
        "band_dice": float(2 * both.sum() / (band_ours.sum() + band_theirs.sum())) if union else 1.0,
        "sign_agreement_in_band": float((np.sign(ours[both]) == np.sign(theirs[both])).mean()) if both.any() else 1.0,
    }


# ------------------------------------------------------------------------------------------------
# 1. the hook, end to end on an nnU-Net-layout folder
# ------------------------------------------------------------------------------------------------
def hook_benchmark(cases: list[dict], root: Path) -> dict:
    from nnunetv2.training.dataloading.nnunet_dataset import comp_blosc2_params, nnUNetDatasetBlosc2

    from nnunet_ext.preprocessing.precompute_targets import precompute_targets
    from nnunet_ext.target_store import target_file
    from nnunet_ext.targets import target_spec

    os.environ["nnUNet_preprocessed"] = str(root)
    dataset_dir = root / "Dataset990_BraTSSample"
    folder = dataset_dir / "nnUNetPlans_3d_fullres"
    folder.mkdir(parents=True)
    patch = [128, 128, 128]  # nnU-Net's usual BraTS patch
    plans = {"dataset_name": dataset_dir.name, "plans_name": "nnUNetPlans", "label_manager": "LabelManager",
             "configurations": {"3d_fullres": {"data_identifier": folder.name, "spacing": list(cases[0]["spacing"]),
                                               "patch_size": patch, "architecture": {}}}}
    (dataset_dir / "nnUNetPlans.json").write_text(json.dumps(plans))
    labels = {"background": 0, "whole tumor": [1, 2, 3, 4], "tumor core": [1, 3, 4], "enhancing tumor": [4]}
    (dataset_dir / "dataset.json").write_text(json.dumps({"labels": labels, "regions_class_order": [2, 1, 4],
                                                          "channel_names": {str(i): f"c{i}" for i in range(4)},
                                                          "file_ending": ".nii.gz", "numTraining": len(cases)}))
    for case in cases:  # cropped to the nonzero (brain) box and written with nnU-Net's own save_case
        box = ndimage.find_objects(case["brain"].astype(np.uint8))[0]
        data = np.ascontiguousarray(case["image"][(slice(None), *box)])
        seg = np.where(case["brain"][box], case["labels"][box], -1).astype(np.int16)[None]
        blocks, chunks = comp_blosc2_params(data.shape, patch, 4)
        blocks_seg, chunks_seg = comp_blosc2_params(seg.shape, patch, 2)
        nnUNetDatasetBlosc2.save_case(data, seg, {"spacing": case["spacing"]}, str(folder / case["name"]),
                                      chunks=chunks, blocks=blocks, chunks_seg=chunks_seg, blocks_seg=blocks_seg)
    one = precompute_targets(990, "3d_fullres", progress=False)
    two = precompute_targets(990, "3d_fullres", num_processes=2, overwrite=True, progress=False)
    spec = target_spec("sing")
    sizes = [{"case": c["name"], "image_MB": (folder / f"{c['name']}.b2nd").stat().st_size / 2**20,
              "maps_MB": target_file(folder, spec, c["name"]).stat().st_size / 2**20} for c in cases]
    for size in sizes:
        size["ratio"] = size["maps_MB"] / size["image_MB"]
    return {"np1": one, "np2": two, "sizes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the '2 CPU cores' of the issue)")
    parser.add_argument("--cases", type=int, default=3, help="cases for our timings (default 3)")
    parser.add_argument("--authors-cases", type=int, default=1,
                        help="cases for the authors' recipe (about 100 s each on 2 cores; default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of our timing per case (median)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="sing_benchmark_"))
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    cases = load_cases(max(args.cases, args.authors_cases))
    options = SiNGOptions()
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": args.threads,
                          "python": sys.version.split()[0]},
              "data": [c["name"] for c in cases], "options": options.as_params()}

    with tempfile.TemporaryDirectory() as root:
        report["hook"] = hook_benchmark(cases[: args.cases], Path(root))

    side_by_side = []
    for index, case in enumerate(cases[: args.cases]):
        masks = region_masks(case["labels"])
        entry = {"case": case["name"], "shape": list(case["labels"].shape)}
        entry["ours_s"], ours = timed(sing_maps, case["image"], masks, case["brain"], case["spacing"], options,
                                      repeats=args.repeats)
        if index < args.authors_cases:
            entry["labels_outside_brain_mask"] = int((masks[0] & ~case["brain"]).sum())
            entry["ours_authors_options_s"], emulated = timed(
                sing_maps, case["image"], masks, case["brain"], case["spacing"], SiNGOptions.authors_code())
            entry["ours_full_volume_s"], full = timed(sing_maps, case["image"], masks, case["brain"], case["spacing"],
                                                      SiNGOptions(crop=False))
            start = time.perf_counter()
            theirs = [authors_recipe(case["image"], mask, case["spacing"]) for mask in masks]
            entry["authors_s"] = time.perf_counter() - start
            entry["speedup"] = entry["authors_s"] / entry["ours_s"]
            entry["regions"] = {}
            for k, name in enumerate(REGIONS):
                band = our_band(masks[k], case["spacing"])
                entry["regions"][name] = {
                    "vs_authors": compare(ours[k], theirs[k][0], band, theirs[k][1]),
                    "authors_options_vs_authors": compare(emulated[k], theirs[k][0], theirs[k][1], theirs[k][1]),
                    "crop_vs_full_volume": compare(ours[k], full[k], band, band),
                }
        side_by_side.append(entry)
    report["side_by_side"] = side_by_side

    # 3. scaling (case 0, our defaults)
    case = cases[0]
    masks = region_masks(case["labels"])
    box = ndimage.find_objects(case["brain"].astype(np.uint8))[0]
    scaling = []
    variants = {
        "brain box (nnU-Net crop)": (case["image"][(slice(None), *box)], masks[(slice(None), *box)], case["brain"][box]),
        "full 240x240x155": (case["image"], masks, case["brain"]),
        "padded to 2x per in-plane axis": tuple(
            np.pad(a, [(0, 0)] * (a.ndim - 3) + [(0, 0), (120, 120), (120, 120)]) for a in (case["image"], masks, case["brain"])),
    }
    for name, (image, mask, brain) in variants.items():
        seconds, _ = timed(sing_maps, image, mask, brain, case["spacing"], options, repeats=args.repeats)
        scaling.append({"variant": name, "voxels_M": mask[0].size / 1e6, "seconds": seconds})
    zoomed_masks = np.stack([ndimage.zoom(m[box], 1.5, order=0) for m in masks])
    zoomed_image = ndimage.zoom(case["image"][0][box], 1.5, order=1)[None]
    seconds, _ = timed(sing_maps, zoomed_image, zoomed_masks, np.ones(zoomed_masks.shape[1:], bool), case["spacing"],
                       options, repeats=args.repeats)
    scaling.append({"variant": "brain box zoomed 1.5x (object 3.4x voxels)", "voxels_M": zoomed_masks[0].size / 1e6,
                    "seconds": seconds})
    for count in (1, 2, 3):
        seconds, _ = timed(sing_maps, case["image"], masks[:count], case["brain"], case["spacing"], options,
                           repeats=args.repeats)
        scaling.append({"variant": f"{count} region(s): {', '.join(list(REGIONS)[:count])}",
                        "voxels_M": masks[0].size / 1e6, "seconds": seconds})
    report["scaling"] = scaling

    (out / "benchmark.json").write_text(json.dumps(report, indent=2))
    (out / "benchmark.md").write_text(markdown(report))
    print(markdown(report))
    print(f"results: {out}")


def markdown(report: dict) -> str:
    hook = report["hook"]
    lines = [f"Machine: {report['machine']['platform']}, {report['machine']['cpus']} CPUs, "
             f"torch threads {report['machine']['torch_threads']}. Data: {', '.join(report['data'])}.", "",
             "| hook run | cases | median s/case | peak RSS per worker (MB) |", "|---|---|---|---|",
             f"| -np 1 ({report['machine']['torch_threads']} threads) | {hook['np1']['computed']} | "
             f"{hook['np1']['median_seconds_per_case']:.2f} | {hook['np1']['peak_rss_mb_per_worker']:.0f} (whole process) |",
             f"| -np 2 (1 thread each) | {hook['np2']['computed']} | {hook['np2']['median_seconds_per_case']:.2f} | "
             f"{hook['np2']['peak_rss_mb_per_worker']:.0f} |", "",
             "| case | image .b2nd (MB) | maps .b2nd (MB) | maps / image |", "|---|---|---|---|"]
    lines += [f"| {s['case']} | {s['image_MB']:.2f} | {s['maps_MB']:.2f} | {s['ratio']:.2f} |" for s in hook["sizes"]]
    lines += ["", "| case (full volume) | ours s | ours uncropped s | ours, authors' options s | authors' recipe s | "
                  "speed-up | tumour voxels outside brain mask |", "|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for entry in report["side_by_side"]:
        lines.append(f"| {entry['case']} | {entry['ours_s']:.2f} | {entry.get('ours_full_volume_s', nan):.2f} | "
                     f"{entry.get('ours_authors_options_s', nan):.2f} | {entry.get('authors_s', nan):.1f} | "
                     f"{entry.get('speedup', nan):.0f}x | {entry.get('labels_outside_brain_mask', '')} |")
    lines += ["", "| case | region | compared | mean / max abs diff in band | band Dice | sign agreement |",
              "|---|---|---|---|---|---|"]
    for entry in report["side_by_side"]:
        for name, r in entry.get("regions", {}).items():
            for label, key in (("defaults vs authors' recipe", "vs_authors"),
                               ("authors' options vs authors' recipe (recipe's band)", "authors_options_vs_authors"),
                               ("defaults: cropped vs uncropped", "crop_vs_full_volume")):
                a = r[key]
                lines.append(f"| {entry['case']} | {name} | {label} | {a['mean_abs_diff_in_band']:.4f} / "
                             f"{a['max_abs_diff_in_band']:.3f} | {a['band_dice']:.4f} | {a['sign_agreement_in_band']:.5f} |")
    lines += ["", "| scaling (ours, case 1) | voxels (M) | seconds |", "|---|---|---|"]
    lines += [f"| {s['variant']} | {s['voxels_M']:.1f} | {s['seconds']:.2f} |" for s in report["scaling"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
