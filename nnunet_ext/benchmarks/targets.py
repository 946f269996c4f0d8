"""Target maps per case: ours vs the authors' recipes, the precompute hook, disk, CPU vs GPU, FastGeodis vs PyTorch.

    nnunet_ext_benchmark targets [--out DIR] [--cases 3] [--authors-cases 1] [--repeats 3]
        [--threads 2] [--device auto|cpu|cuda] [--kinds sing dtm rrw geols] [--data DIR]

On the BraTS 2013/2015 sample (``<--data or $NNUNET_EXT_DATA>/brats2015_sample``; else synthetic volumes
of its size), voxels outside the brain mask being background for ours and the recipes alike. The
authors' recipes (:mod:`.authors_recipes`) run on the full volume only, the geodesic ones (minutes) on
the first ``--authors-cases``. The geodesic distance's two backends (FastGeodis and the PyTorch raster scan,
:mod:`nnunet_ext.targets.geodesic`) run on the same arrays of the first case, on the CPU and the ``--device``.
Writes ``targets.json`` and ``targets.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from scipy import ndimage

from nnunet_ext.benchmarks.authors_recipes import RECIPES
from nnunet_ext.benchmarks.common import (DATA_VARIABLE, at_least, auto_device, hardware_markdown, hardware_record,
                                 invoked_command, markdown_table, sample_folder, write_json)
from nnunet_ext.nnunet_env import PLANS
from nnunet_ext.precompute import channel_masks, precompute
from nnunet_ext.preprocessed import PreprocessedConfiguration
from nnunet_ext.target_store import target_file
from nnunet_ext.targets import SiNGOptions, TargetSpec, get_kind, sing_bands
from nnunet_ext.targets.euclidean import euclidean_backend
from nnunet_ext.targets.geodesic import BACKENDS, geodesic_backend, geodesic_device, geodesic_distance

SAMPLE = "brats2015_sample"  # inside the --data folder
KINDS = ("sing", "dtm", "rrw", "geols")
GEODESIC_KINDS = ("sing", "geols")  # geodesic distances: these can run on the GPU
EUCLIDEAN_KINDS = ("dtm", "rrw")  # EDTs only: the edt package vs SciPy
CHANNEL_SETS = {  # the masks a setting or recipe computes maps of: channel name -> labels
    "regions": {"WT": (1, 2, 3, 4), "TC": (1, 3, 4), "ET": (4,)},  # nnU-Net's BraTS order
    "labels": {str(label): (label,) for label in (1, 2, 3, 4)},
    "all labels": {str(label): (label,) for label in (0, 1, 2, 3, 4)},  # one-hot with the background
}
Setting = NamedTuple("Setting", [("kind", str), ("params", dict), ("channels", str)])  # channels: a key of CHANNEL_SETS
SETTINGS = {  # the maps the trainers train on; the first of each kind is its trainer's on BraTS regions
    "sing regions (SiNGR)": Setting("sing", {}, "regions"),
    "dtm regions (GSL, Boundary)": Setting("dtm", {}, "regions"),
    "dtm regions, normalised (GSL_MIST)": Setting("dtm", {"normalise": True}, "regions"),
    "dtm labels + background (GSL on labels)": Setting("dtm", {"background": True}, "labels"),
    "rrw regions + complements (RRW)": Setting("rrw", {"complements": True}, "regions"),
    "rrw labels + background (RRW on labels)": Setting("rrw", {"background": True}, "labels"),
    "geols regions (GeoLS)": Setting("geols", {}, "regions"),
    "geols labels (GeoLS on labels)": Setting("geols", {}, "labels"),
}
TRAINER_SETTING = {kind: next(name for name, s in SETTINGS.items() if s.kind == kind) for kind in KINDS}


def load_cases(limit: int, sample: Path | None) -> list[dict]:
    """Up to ``limit`` sample cases (image (4, Z, Y, X), labels, brain mask and its box, spacing), else synthetic ones."""
    import SimpleITK as sitk

    cases = []
    for folder in sorted(p for p in sample.glob("*/") if (p / "OTMultiClass.nii.gz").exists())[:limit] if sample else []:
        flair, t1c, labels, brain = (sitk.ReadImage(str(folder / f"{name}.nii.gz")) for name in
                                     ("Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd", "OTMultiClass", "brainmask"))
        array = sitk.GetArrayFromImage
        cases.append({"name": folder.name, "image": np.stack([array(flair), array(t1c)] * 2).astype(np.float32),
                      "labels": array(labels).astype(np.int16), "brain": array(brain) > 0,
                      "spacing": tuple(float(s) for s in reversed(flair.GetSpacing()))})
    cases = cases or [synthetic_case(index) for index in range(limit)]
    for case in cases:
        case["image"][:, ~case["brain"]] = 0  # nnU-Net's nonzero mask
        case["box"] = ndimage.find_objects(case["brain"].astype(np.uint8))[0]  # the crop nnU-Net stores
    return cases


def synthetic_case(index: int) -> dict:
    """A BraTS-size case: nested noisy ellipsoids (labels 4, 1, 2) in an ellipsoidal brain."""
    rng = np.random.default_rng(index)
    grid = np.indices((155, 240, 240)).astype(np.float32)

    def ellipsoid(centre, radii) -> np.ndarray:  # the normalised radius: below 1 inside
        return np.sqrt((((grid - np.array(centre)[:, None, None, None]) / np.array(radii)[:, None, None, None]) ** 2).sum(0))

    radius = ellipsoid([77, 120 + 20 * index, 110], [20, 28, 24])
    radius += ndimage.gaussian_filter(rng.standard_normal(radius.shape).astype(np.float32), 6) * 8
    labels = np.select([radius < 0.4, radius < 0.6, radius < 1.0], [4, 1, 2], 0).astype(np.int16)
    image = np.stack([labels * (c + 1) * 0.5 + rng.standard_normal(labels.shape) for c in range(4)]).astype(np.float32)
    return {"name": f"synthetic_{index}", "image": image, "labels": labels,
            "brain": ellipsoid([77, 120, 120], [70, 80, 72]) < 1, "spacing": (1.0, 1.0, 1.0)}


def masks_of(labels: np.ndarray, channels: str) -> np.ndarray:
    return channel_masks(labels, CHANNEL_SETS[channels].values())


def on_grid(case: dict, channels: str, grid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, masks, valid) as nnU-Net sees the case, on the brain box ("box") or the full volume."""
    crop = (slice(None), *case["box"]) if grid == "box" else (slice(None),)
    return case["image"][crop], masks_of(case["labels"], channels)[crop], case["brain"][crop[1:]]


def timed(function: Callable, *args, repeats: int = 1):
    """(median seconds over ``repeats`` calls, the last result)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()  # CUDA kernels run asynchronously
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def time_ours(case: dict, setting: Setting, grid: str, repeats: int = 1, params: dict | None = None,
              device: str = "cpu") -> tuple[float, np.ndarray]:
    """(seconds, maps) of ``setting`` (with ``params`` instead of its own when given) on the grid, through the
    registry as ``nnUNetv2_precompute_targets`` computes a case."""
    target_kind = get_kind(setting.kind)
    options = target_kind.options_type.from_params(setting.params if params is None else params)
    with geodesic_device(device):
        return timed(target_kind.compute, *on_grid(case, setting.channels, grid), case["spacing"], options, repeats=repeats)


def agreement(ours: np.ndarray, theirs: np.ndarray, ours_region=None, their_region=None) -> list[dict]:
    """Per channel: mean / max |ours - theirs| (inside both regions when given, SiNG's bands), and with
    regions also their Dice and the share of compared voxels whose signs agree."""
    rows = []
    for k in range(ours.shape[0]):
        both = np.ones(ours.shape[1:], bool) if ours_region is None else ours_region[k] & their_region[k]
        a, b = ours[k][both].astype(np.float64), theirs[k][both].astype(np.float64)
        difference = np.abs(a - b)
        row = {"mean_abs_diff": float(difference.mean()) if difference.size else 0.0,
               "max_abs_diff": float(difference.max()) if difference.size else 0.0}
        if ours_region is not None:
            total = int(ours_region[k].sum() + their_region[k].sum())
            row["region_dice"] = float(2 * both.sum() / total) if total else 1.0
            row["sign_agreement"] = float((np.sign(a) == np.sign(b)).mean()) if both.any() else 1.0
        rows.append(row)
    return rows


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def measure_ours(case: dict, repeats: int, settings: dict, keep: set[str], cuda: bool) -> tuple[list, list, dict]:
    """A row per setting; with ``cuda`` a row per geodesic setting and grid on the GPU vs the CPU; the
    full-volume maps of the settings in ``keep``."""
    rows, gpu, kept = [], [], {}
    for name, setting in settings.items():
        (box_seconds, box_maps), (full_seconds, full_maps) = (time_ours(case, setting, grid, repeats)
                                                              for grid in ("box", "full"))
        row = {"case": case["name"], "setting": name, "seconds_box": box_seconds, "seconds_full": full_seconds,
               "box_vs_full_max_abs_diff": max_abs_diff(box_maps, full_maps[(slice(None), *case["box"])])}
        if setting.kind in EUCLIDEAN_KINDS:  # the same arrays again with SciPy's EDT
            with euclidean_backend("scipy"):
                scipy_seconds, scipy_maps = time_ours(case, setting, "box", repeats)
            row.update(seconds_box_scipy=scipy_seconds, scipy_to_edt=scipy_seconds / box_seconds,
                       edt_vs_scipy_max_abs_diff=max_abs_diff(box_maps, scipy_maps))
        rows.append(row)
        print(f"{case['name']} {name}: brain box {box_seconds:.2f} s, full {full_seconds:.2f} s", flush=True)
        if cuda and setting.kind in GEODESIC_KINDS:  # the same arrays on the GPU
            for grid, seconds, maps in (("box", box_seconds, box_maps), ("full", full_seconds, full_maps)):
                gpu_seconds, gpu_maps = time_ours(case, setting, grid, repeats, device="cuda")
                gpu.append({"setting": name, "grid": grid, "cpu_seconds": seconds, "gpu_seconds": gpu_seconds,
                            "cpu_to_gpu": seconds / gpu_seconds, "max_abs_diff_cpu_gpu": max_abs_diff(gpu_maps, maps)})
        if name in keep:
            kept[name] = full_maps
    return rows, gpu, kept


def measure_backends(case: dict, repeats: int, device: str) -> list[dict]:
    """FastGeodis vs the PyTorch raster scan on the same arrays, threads and device: G^lambda (SiNG's lambda 0.5,
    4 iterations) of the first image channel to the whole tumour on the full volume, and the SiNGR trainer's
    maps on the brain box; seconds, their ratio and the largest difference."""
    image, masks, _ = on_grid(case, "regions", "full")
    setting = TRAINER_SETTING["sing"]
    runs = {"G^lambda to the whole tumour, full volume":
            lambda: timed(geodesic_distance, image[0], masks[0], case["spacing"], 0.5, 1e10, 4, repeats=repeats),
            f"{setting}, brain box": lambda: time_ours(case, SETTINGS[setting], "box", repeats, device=device)}
    rows = []
    for what, run in runs.items():
        results = {}
        for backend in BACKENDS:
            with geodesic_backend(backend), geodesic_device(device):
                results[backend] = run()
        (theirs_seconds, theirs), (ours_seconds, ours) = results["fastgeodis"], results["torch"]
        rows.append({"case": case["name"], "computed": what, "device": device, "threads": torch.get_num_threads(),
                     "fastgeodis_seconds": theirs_seconds, "torch_seconds": ours_seconds,
                     "torch_to_fastgeodis": ours_seconds / theirs_seconds, "max_abs_diff": max_abs_diff(ours, theirs)})
        print(f"{case['name']} {what} on {device}: FastGeodis {theirs_seconds:.2f} s, PyTorch {ours_seconds:.2f} s",
              flush=True)
    return rows


def measure_recipe(case: dict, kind: str, ours_row: dict, ours_full: np.ndarray) -> tuple[dict, list[dict]]:
    """The authors' recipe timed once against our matched setting; its entry and the agreement per channel."""
    recipe, setting = RECIPES[kind], SETTINGS[RECIPES[kind].matched_setting]
    labels = np.where(case["brain"], case["labels"], 0)  # the recipes see the brain as ours do
    seconds, (theirs, their_band) = timed(recipe.compute, case["image"], masks_of(labels, recipe.channels),
                                          case["spacing"])
    entry = {"case": case["name"], "kind": kind, "our_maps": recipe.matched_setting,
             "ours_seconds_box": ours_row["seconds_box"], "ours_seconds_full": ours_row["seconds_full"],
             "recipe_seconds_full": seconds, "recipe_to_ours_full": seconds / ours_row["seconds_full"]}
    compared = {}
    if recipe.matched_comparable:
        our_band = None if kind != "sing" else sing_bands(
            *on_grid(case, setting.channels, "full")[1:], case["spacing"], SiNGOptions.from_params(setting.params))
        compared["full volume"] = agreement(ours_full, theirs, our_band, their_band)
    if recipe.authors_options is not None:
        entry["ours_authors_code_seconds_box"], maps = time_ours(case, setting, "box", params=recipe.authors_options)
        box = (slice(None), *case["box"])
        band = None if their_band is None else their_band[box]
        compared["authors_code(), brain box"] = agreement(maps, theirs[box], band, band)
    print(f"{case['name']} authors' {kind}: {seconds:.1f} s, {entry['recipe_to_ours_full']:.1f}x ours", flush=True)
    return entry, [{"case": case["name"], "kind": kind, "ours": ours, "channel": channel, **row}
                   for ours, rows in compared.items() for channel, row in zip(CHANNEL_SETS[recipe.channels], rows)]


def write_nnunet_layout(cases: list[dict], root: Path) -> Path:
    """Dataset990 under ``root`` written with nnU-Net's own save_case, cases cropped to the brain box."""
    from nnunetv2.training.dataloading.nnunet_dataset import comp_blosc2_params, nnUNetDatasetBlosc2

    dataset_dir = root / "Dataset990_BraTSSample"
    folder = dataset_dir / f"{PLANS}_3d_fullres"
    folder.mkdir(parents=True)
    patch = [128, 128, 128]  # nnU-Net's usual BraTS patch
    configuration = {"data_identifier": folder.name, "spacing": list(cases[0]["spacing"]), "patch_size": patch,
                     "architecture": {}}
    (dataset_dir / "nnUNetPlans.json").write_text(json.dumps({
        "dataset_name": dataset_dir.name, "plans_name": PLANS, "label_manager": "LabelManager",
        "configurations": {"3d_fullres": configuration}}))
    (dataset_dir / "dataset.json").write_text(json.dumps({
        "labels": {"background": 0, "whole tumor": [1, 2, 3, 4], "tumor core": [1, 3, 4], "enhancing tumor": [4]},
        "regions_class_order": [2, 1, 4], "channel_names": {str(i): f"c{i}" for i in range(4)},
        "file_ending": ".nii.gz", "numTraining": len(cases)}))
    for case in cases:
        data = np.ascontiguousarray(case["image"][(slice(None), *case["box"])])
        seg = np.where(case["brain"][case["box"]], case["labels"][case["box"]], -1).astype(np.int16)[None]
        (blocks, chunks), (blocks_seg, chunks_seg) = (comp_blosc2_params(a.shape, patch, a.itemsize) for a in (data, seg))
        nnUNetDatasetBlosc2.save_case(data, seg, {"spacing": case["spacing"]}, str(folder / case["name"]),
                                      chunks=chunks, blocks=blocks, chunks_seg=chunks_seg, blocks_seg=blocks_seg)
    return folder


def hook_benchmark(cases: list[dict], kinds: list[str], device: str, root: Path) -> tuple[list[dict], list[dict]]:
    """Runs (-np 1, the geodesic kinds also on CUDA) and the maps' vs the image's file size, per kind and case."""
    os.environ["nnUNet_preprocessed"] = str(root)
    folder = write_nnunet_layout(cases, root)
    runs, disk = [], []
    for kind in kinds:
        spec = TargetSpec(kind, SETTINGS[TRAINER_SETTING[kind]].params)
        for run_device in ("cpu", "cuda") if device == "cuda" and kind in GEODESIC_KINDS else ("cpu",):
            summary = precompute(PreprocessedConfiguration.from_disk(990, "3d_fullres"), spec, overwrite=True,
                                 progress=False, device=run_device)
            runs.append({"kind": kind, "device": run_device, **summary})
            print(f"hook {kind} {run_device}: median {summary['median_seconds_per_case']:.2f} s per case", flush=True)
        for case in cases:
            image_mb = (folder / f"{case['name']}.b2nd").stat().st_size / 2**20
            maps_mb = target_file(folder, spec, case["name"]).stat().st_size / 2**20
            disk.append({"kind": kind, "case": case["name"], "image_MB": image_mb, "maps_MB": maps_mb,
                         "maps_to_image": maps_mb / image_mb})
    return runs, disk


def table(title: str, rows: list[dict], keys: str | None = None, empty: str = "none") -> list[str]:
    """``## title`` and a column per key of ``keys`` (default: the rows' keys), "-" where a row lacks it, numbers
    to 3 significant digits (whole numbers from 100 on); ``empty`` without rows."""
    def cell(value) -> str:
        if not isinstance(value, float):
            return "-" if value is None else str(value)
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"

    keys = keys.split() if keys else list(dict.fromkeys(key for row in rows for key in row))
    body = markdown_table([key.replace("_", " ") for key in keys],
                          [[cell(row.get(key)) for key in keys] for row in rows]) if rows else [empty]
    return [f"## {title}", "", *body, ""]


def markdown(report: dict) -> str:
    data = report["data"]
    lines = ["# Target precompute benchmark", "", f"`{report['command']}`", "",
             hardware_markdown(report["hardware"]).rstrip(), "",
             f"Data: {data['source']}: {', '.join(data['cases'])} (shape {data['shape']}; brain boxes "
             f"{'; '.join('x'.join(map(str, s)) for s in data['brain_boxes'])}; labelled voxels outside the brain "
             f"{data['labels_outside_brain']}). Seconds per case; ours the median of {report['arguments']['repeats']}. "
             f"Wall time {report['wall_seconds']:.0f} s.", "",
             *table("Ours vs the authors' recipes (the ratio on the same full-volume arrays)", report["authors"]),
             *table("Agreement with the authors' recipes (per channel; SiNG inside both bands)", report["agreement"]),
             *table("Ours, every trainer setting (SciPy: the same arrays with SciPy's EDT)", report["ours"]),
             *table("The hook: precompute_targets -np 1 of each kind's trainer maps (brain-box crops)", report["hook"],
                    "kind device computed median_seconds_per_case peak_rss_mb_per_worker"),
             *table("Disk: float16 blosc2 maps vs nnU-Net's preprocessed image file", report["disk"]),
             *table("GPU vs CPU (ours, the geodesic backend chosen automatically; first case)", report["gpu"],
                    empty=f"Skipped: {report['gpu_skipped']}." if report["gpu_skipped"] else "none"),
             *table("FastGeodis vs the PyTorch raster scan (the same arrays, threads and device; first case)",
                    report["backends"], empty=f"Skipped: {report['backends_skipped']}.")]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add, positive = parser.add_argument, at_least(1)
    add("--out", type=Path, default=Path("benchmark_output") / "targets", help="default: %(default)s")
    add("--cases", type=positive, default=3, help="cases for our timings (default 3)")
    add("--authors-cases", type=at_least(0), default=1,
        help="cases for the SiNG and GeoLS recipes (minutes each; default 1); DTM's and RRW's run on all")
    add("--repeats", type=positive, default=3, help="repeats of our timings (median; default 3)")
    add("--threads", type=positive, default=2, help="torch threads (default 2)")
    add("--device", type=auto_device, choices=("cpu", "cuda"), default="auto", help="default: cuda if torch sees a GPU")
    add("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="target kinds (default all)")
    add("--data", type=Path, default=os.environ.get(DATA_VARIABLE),
        help=f"folder holding {SAMPLE}/ (default: ${DATA_VARIABLE}); without it: synthetic volumes")
    args = parser.parse_args(argv)
    args.authors_cases = min(args.authors_cases, args.cases)
    try:
        with geodesic_device(args.device):  # fails now, not after the CPU part, if torch sees no GPU
            pass
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    kinds = [k for k in KINDS if k in args.kinds]
    sample = sample_folder(SAMPLE, args.data)
    cases = load_cases(args.cases, sample)
    for kind in kinds:  # one-time costs (thread pools, lazy imports, CUDA kernels) out of the first timing
        for device in {"cpu", args.device}:
            time_ours(cases[0], SETTINGS[TRAINER_SETTING[kind]], "box", device=device)
    settings = {name: s for name, s in SETTINGS.items() if s.kind in kinds}
    synthetic = cases[0]["name"].startswith("synthetic")
    report = {"command": invoked_command(), "hardware": hardware_record(), "kinds": kinds,
              "arguments": {name: getattr(args, name) for name in ("cases", "authors_cases", "repeats", "threads", "device")},
              "data": {"source": f"synthetic (no BraTS sample in {sample or f'--data / ${DATA_VARIABLE}'})" if synthetic
                       else f"BraTS 2013/2015 sample ({sample})",
                       "cases": [c["name"] for c in cases], "shape": list(cases[0]["labels"].shape),
                       "brain_boxes": [[s.stop - s.start for s in c["box"]] for c in cases],
                       "labels_outside_brain": [int(((c["labels"] > 0) & ~c["brain"]).sum()) for c in cases]},
              "settings": {name: {"kind": s.kind, "params": s.params, "channels": list(CHANNEL_SETS[s.channels])}
                           for name, s in settings.items()},
              "ours": [], "authors": [], "agreement": [], "gpu": [], "backends": [], "backends_skipped": None,
              "gpu_skipped": None if args.device == "cuda" else "no CUDA GPU visible to torch"
              if not torch.cuda.is_available() else "--device cpu was given"}
    for index, case in enumerate(cases):
        # seconds per case; the geodesic recipes (minutes) run on --authors-cases only
        recipe_kinds = [k for k in kinds if index < args.authors_cases or k in EUCLIDEAN_KINDS]
        rows, gpu, maps = measure_ours(case, args.repeats, settings, {RECIPES[k].matched_setting for k in recipe_kinds},
                                       cuda=index == 0 and args.device == "cuda")
        report["ours"] += rows
        report["gpu"] += gpu
        for kind in recipe_kinds:
            matched = RECIPES[kind].matched_setting
            entry, agreements = measure_recipe(case, kind, next(r for r in rows if r["setting"] == matched), maps[matched])
            report["authors"].append(entry)
            report["agreement"] += agreements
        del maps  # before the next case's
    if "sing" in kinds:
        try:
            for device in dict.fromkeys(("cpu", args.device)):
                report["backends"] += measure_backends(cases[0], args.repeats, device)
        except ValueError as error:  # FastGeodis is not installed, or not built for this device
            report["backends_skipped"] = str(error)
    else:
        report["backends_skipped"] = "--kinds without sing"
    with tempfile.TemporaryDirectory(prefix="benchmark_targets_") as root:
        report["hook"], report["disk"] = hook_benchmark(cases, kinds, args.device, Path(root))
    report["wall_seconds"] = time.perf_counter() - start
    text = markdown(report)
    write_json(args.out / "targets.json", report)
    (args.out / "targets.md").write_text(text)
    print(text, f"\nwritten to {args.out}", sep="")
