"""Target precompute per case (SiNG, DTM, RRW, GeoLS maps): ours vs the authors' recipes, the hook, disk,
CPU vs GPU and scaling, measured in one run on one machine.

    nnunet_ext_benchmark targets [--out DIR] [--cases 3] [--authors-cases 1] [--repeats 3]
        [--threads 2] [--device auto|cpu|cuda] [--kinds sing dtm rrw geols] [--data DIR]

Data: the BraTS 2013/2015 sample cases in ``<DIR>/brats2015_sample`` (``--data``, default
``$NNUNET_EXT_DATA``; 240x240x155 at 1 mm, FLAIR and T1c duplicated to 4 channels, labels 0..4,
regions WT = labels > 0, TC = {1, 3, 4}, ET = {4}, brain mask as nnU-Net's nonzero mask) when given
and present, else synthetic volumes of that size (the report says which).
Our maps see the case as nnU-Net does (voxels outside the brain mask are background); the authors'
recipes get the labels restricted to the brain mask too, so that the agreement measures the recipes,
not that choice (the number of labelled voxels outside the brain is reported with the data).

Measured, with ``--threads`` torch threads (the edt package uses as many; SciPy's EDT is single-threaded):

1. ours: every map setting the trainers use (``SETTINGS``), computed through the registry
   (``get_kind(kind).compute``, what ``nnUNetv2_precompute_targets`` runs per case, without the
   float16 write), on each case cropped to the brain box as nnU-Net stores it and on the full
   volume; median of ``--repeats``; and the largest |difference| between the two inside the box;
   for the DTM and RRW settings also on the brain box with SciPy's EDT instead of the edt package
   (:func:`~nnunet_ext.targets.euclidean.euclidean_backend`): the ratio and the largest |difference|;
2. the authors' recipes (``RECIPES``: SiNG, DTM of the GSL code, RRW, GeoLS), written here from the
   papers and the authors' released code, on the full volume, timed once per case (DTM and RRW,
   seconds each, on every case; SiNG and GeoLS, a minute or more each, on the first
   ``--authors-cases``): ratio authors' / ours (our setting with the same channels) and the
   agreement where the maps are meant to be equal (mean / max |difference|); for SiNG and GeoLS also
   our code with the authors' options (``VARIANTS``);
3. the hook end to end on an nnU-Net-layout folder written with nnU-Net's own ``save_case``:
   ``precompute_targets`` per kind with ``-np 1`` (SiNG also ``-np 2``, and every geodesic kind on
   the GPU when there is one), peak memory, and the size of the maps file vs the case's image file;
4. on a CUDA machine (``--device cuda``, or ``auto`` with a GPU): SiNG and GeoLS (ours, and the
   authors' recipes with FastGeodis' tensors on the GPU) on the GPU vs the CPU: time ratio and
   max |difference| of the maps; skipped, and said so, on the CPU;
5. scaling of ours (each kind's BraTS trainer setting, first case, all points timed together) with
   the number of voxels (brain box, full volume, padded to 2x per in-plane axis, brain box zoomed
   1.5x) and of regions (WT; WT, TC; WT, TC, ET on the brain box): table and ``scaling.png``.

Writes ``targets.json``, ``targets.md`` and ``scaling.png`` to ``--out`` (default
``benchmark_output/targets`` in the repository, git-ignored) and prints the Markdown, which starts
with the hardware record of ``nnunet_ext.hardware.hardware_record`` (load average included: FastGeodis
with 2 torch threads on 2 cores that other processes also use runs up to 30x slower, so compare
only runs made on an idle machine). Cost with the defaults (3 cases, 1 authors' case, 3 repeats),
estimated from the parts timed on an idle machine: about 9.5 minutes on 2 CPU cores: 2.5 min our
settings, 3.5 min the authors' recipes (SiNG's 1.5 min, GeoLS' about 1 min), 0.5 min the hook,
3 min scaling (the padded volume's full-array EDTs for dtm and rrw take half of it). The JSON
records each section's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from nnunet_ext.benchmarks.authors_recipes import RECIPES
from nnunet_ext.hardware import DATA_VARIABLE, hardware_markdown, hardware_record, sample_folder
from nnunet_ext.targets import get_kind, target_spec
from nnunet_ext.targets.boundary import boundary_3d
from nnunet_ext.targets.euclidean import euclidean_backend
from nnunet_ext.targets.geols import GeoLSOptions
from nnunet_ext.targets.geodesic import geodesic_device
from nnunet_ext.targets.sing import SiNGOptions

SAMPLE = "brats2015_sample"  # inside the --data folder
KINDS = ("sing", "dtm", "rrw", "geols")
GEODESIC_KINDS = ("sing", "geols")  # the kinds that run FastGeodis, hence can run on the GPU
EUCLIDEAN_KINDS = ("dtm", "rrw")  # the kinds that are Euclidean distance transforms only (edt package vs SciPy)
REGIONS = {"WT": (1, 2, 3, 4), "TC": (1, 3, 4), "ET": (4,)}  # nnU-Net's BraTS order
CHANNEL_SETS = {  # name -> {channel name: labels}: the masks a setting or recipe computes maps of
    "regions": REGIONS,
    "labels": {str(label): (label,) for label in (1, 2, 3, 4)},
    "all labels": {str(label): (label,) for label in (0, 1, 2, 3, 4)},  # one-hot with the background
}


@dataclass(frozen=True)
class Setting:
    kind: str
    params: dict
    channels: str  # a key of CHANNEL_SETS: the masks given to the compute function


SETTINGS = {  # the maps each trainer trains on (the first of each kind: its trainer on BraTS regions)
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


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def load_cases(limit: int, sample: Path | None) -> list[dict]:
    """Up to ``limit`` cases of the BraTS sample folder, or as many synthetic ones if there is none."""
    folders = sorted(p for p in sample.glob("*/") if (p / "OTMultiClass.nii.gz").exists())[:limit] if sample else []
    if folders:
        return [read_sample_case(folder) for folder in folders]
    return [synthetic_case(index) for index in range(limit)]


def read_sample_case(folder: Path) -> dict:
    """(image (4, Z, Y, X), labels, brain mask, spacing) of one sample case."""
    import SimpleITK as sitk

    read = lambda name: sitk.ReadImage(str(folder / name))  # noqa: E731
    flair, t1c = read("Flair_subtrMeanDivStd.nii.gz"), read("T1c_subtrMeanDivStd.nii.gz")
    channels = [sitk.GetArrayFromImage(image).astype(np.float32) for image in (flair, t1c)]
    image = np.stack(channels * 2)  # duplicate to BraTS' four channels
    labels = sitk.GetArrayFromImage(read("OTMultiClass.nii.gz")).astype(np.int16)
    brain = sitk.GetArrayFromImage(read("brainmask.nii.gz")) > 0
    image[:, ~brain] = 0
    return {"name": folder.name, "image": image, "labels": labels, "brain": brain,
            "spacing": tuple(float(s) for s in reversed(flair.GetSpacing()))}


def synthetic_case(index: int) -> dict:
    """A BraTS-size synthetic case: nested noisy ellipsoids (labels 4, 1, 2) in an ellipsoidal brain."""
    rng = np.random.default_rng(index)
    grid = np.indices((155, 240, 240)).astype(np.float32)
    centre = np.array([77, 120 + 20 * index, 110])[:, None, None, None]
    radius = np.sqrt((((grid - centre) / np.array([20, 28, 24])[:, None, None, None]) ** 2).sum(0))
    radius += ndimage.gaussian_filter(rng.standard_normal(radius.shape).astype(np.float32), 6) * 8
    labels = np.select([radius < 0.4, radius < 0.6, radius < 1.0], [4, 1, 2], 0).astype(np.int16)
    brain = (((grid - np.array([77, 120, 120])[:, None, None, None]) / np.array([70, 80, 72])[:, None, None, None]) ** 2).sum(0) < 1
    image = np.stack([labels * (c + 1) * 0.5 + rng.standard_normal(labels.shape) for c in range(4)]).astype(np.float32)
    image[:, ~brain] = 0
    return {"name": f"synthetic_{index}", "image": image, "labels": labels, "brain": brain, "spacing": (1.0, 1.0, 1.0)}


def channel_masks(labels: np.ndarray, channels: str) -> np.ndarray:
    """bool (K, *spatial), one mask per channel of ``CHANNEL_SETS[channels]``."""
    return np.stack([np.isin(labels, members) for members in CHANNEL_SETS[channels].values()])


def brain_box(case: dict) -> tuple[slice, ...]:
    """The bounding box of the brain mask: the crop nnU-Net stores."""
    return ndimage.find_objects(case["brain"].astype(np.uint8))[0]


def case_on_grid(case: dict, channels: str, grid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, channel masks, valid) of the case as nnU-Net sees it, on the brain box or the full volume."""
    image, masks, valid = case["image"], channel_masks(case["labels"], channels), case["brain"]
    if grid == "box":
        box = brain_box(case)
        image, masks, valid = image[(slice(None), *box)], masks[(slice(None), *box)], valid[box]
    return image, masks, valid


def timed(function: Callable, *args, repeats: int = 1, device: str = "cpu"):
    """(median seconds over ``repeats`` calls, the last result)."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        if device == "cuda":
            torch.cuda.synchronize()  # FastGeodis' kernels run asynchronously
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def compute_ours(kind: str, params: dict, image, masks, valid, spacing, device: str = "cpu") -> np.ndarray:
    """Our maps through the registry, FastGeodis on ``device``."""
    target_kind = get_kind(kind)
    with geodesic_device(device):
        return target_kind.compute(image, masks, valid, spacing, target_kind.options_type.from_params(params))


def warm_up(kinds: list[str], device: str) -> None:
    """One untimed call per kind on a tiny volume, so that one-time costs (thread pools, lazy imports,
    CUDA kernels) do not land in the first timing."""
    mask = np.zeros((1, 12, 12, 12), bool)
    mask[0, 4:8, 4:8, 4:8] = True
    image = mask.astype(np.float32)
    for kind in kinds:
        for run_device in {"cpu", device}:
            compute_ours(kind, {}, image, mask, np.ones(mask.shape[1:], bool), (1.0, 1.0, 1.0), run_device)


@dataclass(frozen=True)
class Variant:
    """Our code with other options, timed once on the authors' cases and compared with ``reference``."""
    label: str
    params: dict
    grid: str  # "box" or "full"
    reference: str  # "recipe": the authors' maps; "ours": our matched setting on the full volume


VARIANTS = {
    "sing": (Variant("SiNGOptions.authors_code(), brain box", SiNGOptions.authors_code().as_params(), "box", "recipe"),
             Variant("defaults without cropping (crop=False), full volume", {"crop": False}, "full", "ours")),
    "geols": (Variant("GeoLSOptions.authors_code(), brain box", GeoLSOptions.authors_code().as_params(), "box",
                      "recipe"),),
}


def sing_band(masks: np.ndarray, valid: np.ndarray, spacing) -> np.ndarray:
    """The band B of Eq. 3 for our default SiNG options (3d boundary, exact EDT), per channel."""
    bands = np.zeros(masks.shape, bool)
    for k, mask in enumerate(masks & valid):
        if mask.any():
            g0 = ndimage.distance_transform_edt(~boundary_3d(mask), sampling=spacing)
            bands[k] = g0 <= g0[mask].max()
    return bands


def agreement(ours: np.ndarray, theirs: np.ndarray, ours_region=None, their_region=None) -> list[dict]:
    """Per channel: mean / max |ours - theirs| where both maps are compared (everywhere without regions);
    with regions (SiNG bands) also their Dice and the share of compared voxels whose signs agree."""
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


# ------------------------------------------------------------------------------------------------
# 1. + 2. ours per setting, the authors' recipes
# ------------------------------------------------------------------------------------------------
def measure_ours(case: dict, settings: dict, repeats: int, keep: set[str]) -> tuple[list[dict], dict]:
    """Rows (seconds on the brain box and on the full volume, max |box - full| inside the box) per
    setting, and the (box, full) maps of the settings in ``keep`` (later sections compare them)."""
    rows, kept, box = [], {}, brain_box(case)
    for name, setting in settings.items():
        seconds, maps = {}, {}
        for grid in ("box", "full"):
            image, masks, valid = case_on_grid(case, setting.channels, grid)
            seconds[grid], maps[grid] = timed(compute_ours, setting.kind, setting.params, image, masks, valid,
                                              case["spacing"], repeats=repeats)
        rows.append({"case": case["name"], "setting": name, "kind": setting.kind, "seconds_box": seconds["box"],
                     "seconds_full": seconds["full"],
                     "box_vs_full_max_abs_diff": float(np.abs(maps["box"] - maps["full"][(slice(None), *box)]).max())})
        print(f"{case['name']:24s} {name:42s} brain box {seconds['box']:6.2f} s   full {seconds['full']:6.2f} s", flush=True)
        if setting.kind in EUCLIDEAN_KINDS:  # the same arrays again with SciPy's EDT instead of the edt package
            image, masks, valid = case_on_grid(case, setting.channels, "box")
            with euclidean_backend("scipy"):
                scipy_seconds, scipy_maps = timed(compute_ours, setting.kind, setting.params, image, masks, valid,
                                                  case["spacing"], repeats=repeats)
            rows[-1].update(seconds_box_scipy=scipy_seconds,
                            edt_vs_scipy_max_abs_diff=float(np.abs(maps["box"] - scipy_maps).max()))
            print(f"{case['name']:24s} {name:42s} brain box, SciPy EDT {scipy_seconds:6.2f} s "
                  f"({scipy_seconds / seconds['box']:.1f}x the edt package)", flush=True)
        if name in keep:
            kept[name] = (maps["box"], maps["full"])
    return rows, kept


def measure_recipe(case: dict, kind: str, ours_full: np.ndarray, ours_rows: list[dict]) -> tuple[dict, np.ndarray]:
    """The authors' recipe of ``kind`` on the full volume, timed once, its ratio to ours and the
    agreements; returns the entry and the recipe's maps."""
    recipe = RECIPES[kind]
    # the recipe gets the labels as nnU-Net sees them: background outside the brain mask
    labels = np.where(case["brain"], case["labels"], 0)
    seconds, (theirs, their_region) = timed(recipe.compute, case["image"], channel_masks(labels, recipe.channels),
                                            case["spacing"])
    ours_row = next(r for r in ours_rows if r["setting"] == recipe.matched_setting)
    entry = {"case": case["name"], "kind": kind, "recipe": recipe.description, "matched_setting": recipe.matched_setting,
             "channels": list(CHANNEL_SETS[recipe.channels]), "authors_seconds": seconds,
             "ours_seconds_box": ours_row["seconds_box"], "ours_seconds_full": ours_row["seconds_full"],
             "ratio_authors_to_ours_box": seconds / ours_row["seconds_box"],
             "ratio_authors_to_ours_full": seconds / ours_row["seconds_full"], "variants": []}
    setting = SETTINGS[recipe.matched_setting]
    _, masks, valid = case_on_grid(case, setting.channels, "full")
    ours_region = sing_band(masks, valid, case["spacing"]) if kind == "sing" else None
    entry["agreement"] = {}
    if recipe.matched_comparable:
        entry["agreement"]["ours (matched setting), full volume vs recipe"] = agreement(ours_full, theirs, ours_region,
                                                                                       their_region)
    box = (slice(None), *brain_box(case))
    for variant in VARIANTS.get(kind, ()):
        image, masks, valid = case_on_grid(case, setting.channels, variant.grid)
        variant_seconds, maps = timed(compute_ours, kind, variant.params, image, masks, valid, case["spacing"])
        where = box if variant.grid == "box" else (slice(None),)
        # SiNG maps are compared inside the band of the maps they are compared with
        reference, region = (theirs, their_region) if variant.reference == "recipe" else (ours_full, ours_region)
        region = None if region is None else region[where]
        compared = agreement(maps, reference[where], region, region)
        entry["variants"].append({"label": variant.label, "params": variant.params, "seconds": variant_seconds})
        entry["agreement"][f"ours, {variant.label} vs {variant.reference}"] = compared
    print(f"{case['name']:24s} authors' {kind:6s} {seconds:7.1f} s ({entry['ratio_authors_to_ours_box']:.0f}x ours on "
          f"the brain box)", flush=True)
    return entry, theirs


# ------------------------------------------------------------------------------------------------
# 3. the hook, end to end on an nnU-Net-layout folder
# ------------------------------------------------------------------------------------------------
def write_nnunet_layout(cases: list[dict], root: Path) -> Path:
    """Dataset990 in ``root`` with nnU-Net's own save_case, cases cropped to the brain box; its folder."""
    from nnunetv2.training.dataloading.nnunet_dataset import comp_blosc2_params, nnUNetDatasetBlosc2

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
    for case in cases:
        box = brain_box(case)
        data = np.ascontiguousarray(case["image"][(slice(None), *box)])
        seg = np.where(case["brain"][box], case["labels"][box], -1).astype(np.int16)[None]  # nnU-Net's -1 outside
        blocks, chunks = comp_blosc2_params(data.shape, patch, 4)
        blocks_seg, chunks_seg = comp_blosc2_params(seg.shape, patch, 2)
        nnUNetDatasetBlosc2.save_case(data, seg, {"spacing": case["spacing"]}, str(folder / case["name"]),
                                      chunks=chunks, blocks=blocks, chunks_seg=chunks_seg, blocks_seg=blocks_seg)
    return folder


def hook_benchmark(cases: list[dict], kinds: list[str], device: str, root: Path) -> dict:
    """``precompute_targets`` per kind (its BraTS trainer's maps) with -np 1, SiNG also -np 2, the
    geodesic kinds also on the GPU; maps vs image file size per case and kind."""
    from nnunet_ext.precompute import precompute_targets
    from nnunet_ext.target_store import target_file

    os.environ["nnUNet_preprocessed"] = str(root)
    folder = write_nnunet_layout(cases, root)
    runs, disk = [], {}
    for kind in kinds:
        params = SETTINGS[TRAINER_SETTING[kind]].params
        plan = [("-np 1", 1, "cpu")]
        if kind == "sing":
            plan.append(("-np 2", 2, "cpu"))
        if device == "cuda" and kind in GEODESIC_KINDS:
            plan.append(("-np 1 --device cuda", 1, "cuda"))
        for label, processes, run_device in plan:
            summary = precompute_targets(990, "3d_fullres", kind=kind, params=params, num_processes=processes,
                                         overwrite=True, progress=False, device=run_device)
            workers = min(processes, len(cases))  # precompute_targets starts no more workers than cases
            # one worker runs in this process: its peak memory is the benchmark's, cases and all
            runs.append({"kind": kind, "setting": TRAINER_SETTING[kind], "run": label, "workers": workers,
                         "threads_per_worker": torch.get_num_threads() if workers == 1
                         else max(1, (os.cpu_count() or 1) // workers), **summary})
            print(f"hook {kind:6s} {label:20s} median {summary['median_seconds_per_case']:.2f} s per case", flush=True)
        spec = target_spec(kind, params)
        disk[kind] = [{"case": c["name"], "image_MB": (folder / f"{c['name']}.b2nd").stat().st_size / 2**20,
                       "maps_MB": target_file(folder, spec, c["name"]).stat().st_size / 2**20} for c in cases]
        for size in disk[kind]:
            size["ratio"] = size["maps_MB"] / size["image_MB"]
    return {"runs": runs, "disk": disk}


# ------------------------------------------------------------------------------------------------
# 4. the GPU vs the CPU
# ------------------------------------------------------------------------------------------------
def device_comparison(case: dict, kinds: list[str], ours_rows: list[dict], cpu_maps: dict, recipe_entries: list[dict],
                      recipe_maps: dict, repeats: int) -> list[dict]:
    """SiNG and GeoLS on the GPU: ours (trainer setting, box and full) and the authors' recipe (once),
    vs the CPU timings and maps of the same case measured before."""
    rows = []
    for kind in (k for k in kinds if k in GEODESIC_KINDS):
        name = TRAINER_SETTING[kind]
        setting = SETTINGS[name]
        cpu_row = next(r for r in ours_rows if r["setting"] == name)
        for index, grid in enumerate(("box", "full")):
            image, masks, valid = case_on_grid(case, setting.channels, grid)
            seconds, maps = timed(compute_ours, kind, setting.params, image, masks, valid, case["spacing"], "cuda",
                                  repeats=repeats, device="cuda")
            rows.append({"kind": kind, "what": f"ours, {name}, {'brain box' if grid == 'box' else 'full volume'}",
                         "cpu_seconds": cpu_row[f"seconds_{grid}"], "gpu_seconds": seconds,
                         "max_abs_diff_cpu_gpu": float(np.abs(maps - cpu_maps[name][index]).max())})
        entry = next((e for e in recipe_entries if e["kind"] == kind), None)
        if entry is not None:
            recipe = RECIPES[kind]
            labels = np.where(case["brain"], case["labels"], 0)
            seconds, (maps, _) = timed(recipe.compute, case["image"], channel_masks(labels, recipe.channels),
                                       case["spacing"], "cuda", device="cuda")
            rows.append({"kind": kind, "what": "authors' recipe, full volume", "cpu_seconds": entry["authors_seconds"],
                         "gpu_seconds": seconds, "max_abs_diff_cpu_gpu": float(np.abs(maps - recipe_maps[kind]).max())})
    for row in rows:
        row["ratio_cpu_to_gpu"] = row["cpu_seconds"] / row["gpu_seconds"]
        print(f"GPU {row['kind']:6s} {row['what']:60s} {row['gpu_seconds']:.2f} s ({row['ratio_cpu_to_gpu']:.1f}x)",
              flush=True)
    return rows


# ------------------------------------------------------------------------------------------------
# 5. scaling
# ------------------------------------------------------------------------------------------------
def scaling(case: dict, kinds: list[str], repeats: int) -> list[dict]:
    """Seconds of each kind's trainer setting vs voxels and vs regions on one case, all timed in this
    section so that one plot compares like with like on a shared machine. Every volume carries image
    channel 0 only, the one channel the trainer settings use; the 3-region point is the brain box."""
    box = brain_box(case)
    image, masks, brain = case["image"][:1], channel_masks(case["labels"], "regions"), case["brain"]
    in_plane_pad = [(0, 0), (120, 120), (120, 120)]  # 240 -> 480 voxels per in-plane axis

    def zoomed_box(channels: np.ndarray, order: int) -> np.ndarray:  # the case's objects 1.5x larger per axis
        return np.stack([ndimage.zoom(c[box].astype(np.float32), 1.5, order=order) for c in channels])

    volumes = {
        "brain box (nnU-Net crop)": (image[(slice(None), *box)], masks[(slice(None), *box)], brain[box]),
        "full 240x240x155": (image, masks, brain),
        "padded to 2x per in-plane axis": (np.pad(image, [(0, 0)] + in_plane_pad), np.pad(masks, [(0, 0)] + in_plane_pad),
                                           np.pad(brain, in_plane_pad)),
        "brain box zoomed 1.5x": (zoomed_box(image, 1), zoomed_box(masks, 0) > 0, zoomed_box(brain[None], 0)[0] > 0),
    }
    region_names = list(REGIONS)
    points = []
    for kind in kinds:
        params = SETTINGS[TRAINER_SETTING[kind]].params
        for variant, (variant_image, variant_masks, valid) in volumes.items():
            seconds, _ = timed(compute_ours, kind, params, variant_image, variant_masks, valid, case["spacing"],
                               repeats=repeats)
            points.append({"kind": kind, "variant": variant, "voxels": int(valid.size), "regions": 3, "seconds": seconds})
        box_image, box_masks, box_valid = volumes["brain box (nnU-Net crop)"]
        for count in (1, 2):
            seconds, _ = timed(compute_ours, kind, params, box_image, box_masks[:count], box_valid, case["spacing"],
                               repeats=repeats)
            points.append({"kind": kind, "variant": f"brain box, {', '.join(region_names[:count])}",
                           "voxels": int(box_valid.size), "regions": count, "seconds": seconds})
        print(f"scaling {kind} done", flush=True)
    return points


def plot_scaling(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    figure, (by_voxels, by_regions) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind in dict.fromkeys(p["kind"] for p in points):
        volume = sorted((p["voxels"], p["seconds"]) for p in points if p["kind"] == kind and p["regions"] == 3)
        by_voxels.plot([v / 1e6 for v, _ in volume], [s for _, s in volume], "o-", label=kind)
        regions = sorted((p["regions"], p["seconds"]) for p in points
                         if p["kind"] == kind and (p["regions"] < 3 or p["variant"].startswith("brain box (")))
        by_regions.plot([r for r, _ in regions], [s for _, s in regions], "o-", label=kind)
    by_voxels.set(xscale="log", yscale="log", xlabel="voxels (millions)", ylabel="seconds per case",
                  title="ours vs volume (3 regions)")
    voxels = sorted({p["voxels"] / 1e6 for p in points})
    by_voxels.set_xticks(voxels, [f"{v:.1f}" for v in voxels])
    by_voxels.xaxis.set_minor_formatter(NullFormatter())  # only the measured sizes
    by_regions.set(xticks=[1, 2, 3], xticklabels=["WT", "WT, TC", "WT, TC, ET"], xlabel="regions",
                   ylabel="seconds per case", title="ours vs regions (brain box)")
    for axis in (by_voxels, by_regions):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
def median_of(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def listed(values, digits: int = 3) -> str:
    return " / ".join(f"{v:.{digits}g}" for v in values)


def markdown(report: dict) -> str:
    data, args = report["data"], report["arguments"]
    lines = ["# Target precompute benchmark", "", hardware_markdown(report["hardware"]).rstrip(), "",
             f"Data: {data['source']}: {', '.join(data['cases'])} (shape {data['shape']}, brain boxes "
             f"{'; '.join('x'.join(map(str, s)) for s in data['brain_boxes'])}; labelled voxels outside the brain mask "
             f"{data['labels_outside_brain']}). Our timings: median of {args['repeats']} on {len(data['cases'])} "
             f"case(s); authors' recipes once per case, on every case for dtm and rrw, on the first "
             f"{args['authors_cases']} for sing and geols (medians over those cases). Total wall time "
             f"{report['wall_seconds']:.0f} s.", ""]

    lines += ["## Ours vs the authors' recipes (seconds per case)", "",
              "| kind | our maps (same channels as the recipe) | ours, brain box | ours, full volume | authors' recipe, "
              "full volume | authors / ours (box) | authors / ours (full) |", "|---|---|---|---|---|---|---|"]
    for kind in report["kinds"]:
        entries = [e for e in report["authors"] if e["kind"] == kind]
        if entries:
            lines.append(f"| {kind} | {entries[0]['matched_setting']} | {median_of(entries, 'ours_seconds_box'):.2f} | "
                         f"{median_of(entries, 'ours_seconds_full'):.2f} | {median_of(entries, 'authors_seconds'):.1f} | "
                         f"{median_of(entries, 'ratio_authors_to_ours_box'):.1f}x | "
                         f"{median_of(entries, 'ratio_authors_to_ours_full'):.1f}x |")
    lines += [""] + [f"- {kind}: {RECIPES[kind].description}." for kind in report["kinds"]]
    variants = [(e["kind"], e["case"], v) for e in report["authors"] for v in e["variants"]]
    if variants:
        lines += ["", "Our code with other options (once, same case):", "",
                  "| kind | case | variant | seconds |", "|---|---|---|---|"]
        lines += [f"| {kind} | {case} | {v['label']} | {v['seconds']:.2f} |" for kind, case, v in variants]

    lines += ["", "## Ours, every trainer setting (median over cases, seconds per case)", "",
              "| setting | kind | brain box | full volume | max abs diff box vs full (inside the box) |",
              "|---|---|---|---|---|"]
    for name in report["settings"]:
        rows = [r for r in report["ours"] if r["setting"] == name]
        lines.append(f"| {name} | {rows[0]['kind']} | {median_of(rows, 'seconds_box'):.2f} | "
                     f"{median_of(rows, 'seconds_full'):.2f} | {max(r['box_vs_full_max_abs_diff'] for r in rows):.3g} |")

    euclidean = [name for name in report["settings"] if report["settings"][name]["kind"] in EUCLIDEAN_KINDS]
    if euclidean:
        lines += ["", "## The edt package vs SciPy's EDT (our maps on the brain box, same arrays and threads)", "",
                  "| setting | edt package, s | SciPy, s | SciPy / edt per case | max abs diff of the maps |",
                  "|---|---|---|---|---|"]
        for name in euclidean:
            rows = [r for r in report["ours"] if r["setting"] == name]
            lines.append(f"| {name} | {median_of(rows, 'seconds_box'):.2f} | {median_of(rows, 'seconds_box_scipy'):.2f} | "
                         f"{listed((r['seconds_box_scipy'] / r['seconds_box'] for r in rows), 2)} | "
                         f"{max(r['edt_vs_scipy_max_abs_diff'] for r in rows):.3g} |")

    lines += ["", "## Agreement with the authors' recipes (per channel, in channel order)", "",
              "| case | kind | channels | compared | mean abs diff | max abs diff | band Dice | sign agreement |",
              "|---|---|---|---|---|---|---|---|"]
    for entry in report["authors"]:
        for compared, channels in entry["agreement"].items():
            band = [c.get("region_dice") for c in channels]
            sign = [c.get("sign_agreement") for c in channels]
            lines.append(f"| {entry['case']} | {entry['kind']} | {', '.join(entry['channels'])} | {compared} | "
                         f"{listed(c['mean_abs_diff'] for c in channels)} | "
                         f"{listed(c['max_abs_diff'] for c in channels)} | "
                         f"{listed(band, 4) if band[0] is not None else '-'} | "
                         f"{listed(sign, 5) if sign[0] is not None else '-'} |")

    hook = report["hook"]
    lines += ["", "## The hook: precompute_targets on an nnU-Net layout (cases cropped to the brain box)", "",
              "| kind | maps | run | workers x threads | cases | median s per case | peak RSS per worker (MB) |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['kind']} | {r['setting']} | {r['run']} | {r['workers']} x {r['threads_per_worker']} | "
              f"{r['computed']} | {r['median_seconds_per_case']:.2f} | {r['peak_rss_mb_per_worker']:.0f}"
              f"{' (this whole process)' if r['workers'] == 1 else ''} |" for r in hook["runs"]]
    lines += ["", "Disk (float16 blosc2 maps vs nnU-Net's preprocessed image file, per case):", "",
              "| kind | maps | image MB per case | maps MB per case | maps / image |", "|---|---|---|---|---|"]
    for kind, sizes in hook["disk"].items():
        lines.append(f"| {kind} | {TRAINER_SETTING[kind]} | {listed((s['image_MB'] for s in sizes), 3)} | "
                     f"{listed((s['maps_MB'] for s in sizes), 3)} | {listed((s['ratio'] for s in sizes), 2)} |")

    lines += ["", "## GPU vs CPU (FastGeodis on CUDA; first case)", ""]
    if report["device_comparison"]["skipped"]:
        lines.append(f"Skipped: {report['device_comparison']['skipped']}.")
    else:
        lines += ["| kind | computed | CPU s | GPU s | CPU / GPU | max abs diff CPU vs GPU maps |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['kind']} | {r['what']} | {r['cpu_seconds']:.2f} | {r['gpu_seconds']:.3f} | "
                  f"{r['ratio_cpu_to_gpu']:.1f}x | {r['max_abs_diff_cpu_gpu']:.3g} |"
                  for r in report["device_comparison"]["rows"]]

    lines += ["", f"## Scaling (ours, each kind's BraTS trainer maps, case {data['cases'][0]})", "",
              "| kind | volume | voxels (M) | regions | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {p['kind']} | {p['variant']} | {p['voxels'] / 1e6:.1f} | {p['regions']} | {p['seconds']:.2f} |"
              for p in report["scaling"]]
    lines += ["", f"![seconds vs voxels and vs regions]({report['plot']})", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmark_output") / "targets",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--cases", type=int, default=3, help="cases for our timings (default 3)")
    parser.add_argument("--authors-cases", type=int, default=1,
                        help="cases for the authors' SiNG and GeoLS recipes (about 90 and 60 s per case on 2 cores; "
                             "default 1); the DTM and RRW recipes run on every case")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of our timings (median; default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: a 2-core machine)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="cuda: also time SiNG and GeoLS on the GPU; auto: cuda if torch sees a GPU (default)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="target kinds (default all)")
    parser.add_argument("--data", type=Path, default=os.environ.get(DATA_VARIABLE),
                        help=f"folder holding {SAMPLE}/ (default: ${DATA_VARIABLE}); without it: synthetic volumes")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.repeats < 1 or args.authors_cases < 0:
        parser.error("--cases and --repeats must be >= 1, --authors-cases >= 0")
    args.authors_cases = min(args.authors_cases, args.cases)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        with geodesic_device(args.device):  # fails now, not after the CPU part, if FastGeodis has no CUDA
            pass
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in KINDS if k in args.kinds]
    settings = {name: s for name, s in SETTINGS.items() if s.kind in kinds}
    sample = sample_folder(SAMPLE, args.data)
    cases = load_cases(args.cases, sample)
    warm_up(kinds, args.device)
    report = {"hardware": hardware_record(), "kinds": kinds,
              "arguments": {"cases": args.cases, "authors_cases": args.authors_cases, "repeats": args.repeats,
                            "threads": args.threads, "device": args.device},
              "data": {"source": f"BraTS 2013/2015 sample ({sample})" if not cases[0]["name"].startswith("synthetic")
                       else f"synthetic (no BraTS sample: {sample or f'--data / ${DATA_VARIABLE} not set'})",
                       "cases": [c["name"] for c in cases], "shape": list(cases[0]["labels"].shape),
                       "brain_boxes": [[s.stop - s.start for s in brain_box(c)] for c in cases],
                       "labels_outside_brain": [int(((c["labels"] > 0) & ~c["brain"]).sum()) for c in cases]},
              "settings": {name: {"kind": s.kind, "params": s.params, "channels": list(CHANNEL_SETS[s.channels])}
                           for name, s in settings.items()},
              "ours": [], "authors": [], "section_seconds": {}}

    section = time.perf_counter()
    # kept for the GPU comparison: the first case's CPU maps of the geodesic kinds
    keep = {TRAINER_SETTING[k] for k in kinds if k in GEODESIC_KINDS} if args.device == "cuda" else set()
    first_maps, recipe_maps = {}, {}
    for index, case in enumerate(cases):
        recipe_kinds = [k for k in kinds if index < args.authors_cases or RECIPES[k].on_every_case]
        rows, maps = measure_ours(case, settings, args.repeats, keep | {RECIPES[k].matched_setting for k in recipe_kinds})
        report["ours"] += rows
        if index == 0:
            first_maps = {name: maps[name] for name in keep}
        for kind in recipe_kinds:
            entry, theirs = measure_recipe(case, kind, maps[RECIPES[kind].matched_setting][1], rows)
            report["authors"].append(entry)
            if index == 0 and kind in GEODESIC_KINDS and args.device == "cuda":
                recipe_maps[kind] = theirs
        del maps
    report["section_seconds"]["ours and authors"] = time.perf_counter() - section

    section = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="benchmark_targets_") as root:
        report["hook"] = hook_benchmark(cases, kinds, args.device, Path(root))
    report["section_seconds"]["hook"] = time.perf_counter() - section

    section = time.perf_counter()
    first_rows = [r for r in report["ours"] if r["case"] == cases[0]["name"]]
    if args.device == "cuda":
        first_authors = [e for e in report["authors"] if e["case"] == cases[0]["name"]]
        report["device_comparison"] = {"skipped": None, "rows": device_comparison(
            cases[0], kinds, first_rows, first_maps, first_authors, recipe_maps, args.repeats)}
    else:
        reason = ("no CUDA GPU visible to torch" if not torch.cuda.is_available() else "--device cpu was given")
        report["device_comparison"] = {"skipped": f"{reason}; CPU-only run", "rows": []}
    report["section_seconds"]["device"] = time.perf_counter() - section

    section = time.perf_counter()
    report["scaling"] = scaling(cases[0], kinds, args.repeats)
    report["plot"] = "scaling.png"
    plot_scaling(report["scaling"], args.out / report["plot"])
    report["section_seconds"]["scaling"] = time.perf_counter() - section

    report["wall_seconds"] = time.perf_counter() - start
    text = markdown(report)
    (args.out / "targets.json").write_text(json.dumps(report, indent=2))
    (args.out / "targets.md").write_text(text)
    print(text)
    print(f"written to {args.out}")

