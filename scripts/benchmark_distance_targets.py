"""Time of the distance target maps (``dtm`` for GSL / Boundary loss, ``rrw`` for RRW) per BraTS-size case.

    .venv/bin/python scripts/benchmark_distance_targets.py [--cases 3] [--repeats 3] [--out DIR]

Data: the BraTS sample cases that ``benchmark_sing_targets.py`` loads (240x240x155 at 1 mm; regions
WT, TC, ET; synthetic volumes of that size if the sample is absent). For each case and each map
setting the trainers use, the kind's compute function (what ``nnUNetv2_precompute_targets`` runs per
case, without the float16 write) is timed on the case cropped to the brain, as nnU-Net stores it, and
on the full volume (median of ``--repeats``). Single process, single thread (scipy's EDT). Writes
``benchmark.json`` and ``benchmark.md`` to the output folder it prints.
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

import numpy as np
from scipy import ndimage

from benchmark_sing_targets import load_cases, region_masks  # the sibling script's data loading
from nnunet_ext.targets import get_kind

SETTINGS = {  # name -> (kind, params, channels): the maps each trainer trains on
    "dtm regions (GSL, Boundary)": ("dtm", {}, "regions"),
    "dtm regions, normalised (GSL_MIST)": ("dtm", {"normalise": True}, "regions"),
    "rrw regions + complements (RRW)": ("rrw", {"complements": True}, "regions"),
    "dtm labels + background (GSL on labels)": ("dtm", {"background": True}, "labels"),
    "rrw labels + background (RRW on labels)": ("rrw", {"background": True}, "labels"),
}


def time_setting(case: dict, kind: str, params: dict, channels: str, crop: bool, repeats: int) -> float:
    if channels == "regions":
        masks = region_masks(case["labels"])
    else:
        masks = np.stack([case["labels"] == label for label in (1, 2, 3, 4)])
    image, valid = case["image"], case["brain"]
    if crop:
        box = ndimage.find_objects(valid.astype(np.uint8))[0]
        image, masks, valid = image[(slice(None), *box)], masks[(slice(None), *box)], valid[box]
    kind_ = get_kind(kind)
    options = kind_.options_type.from_params(params)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        kind_.compute(image, masks, valid, case["spacing"], options)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="distance_benchmark_"))
    out.mkdir(parents=True, exist_ok=True)
    cases = load_cases(args.cases)
    rows = []
    for case in cases:
        box = ndimage.find_objects(case["brain"].astype(np.uint8))[0]
        cropped_shape = [s.stop - s.start for s in box]
        for name, (kind, params, channels) in SETTINGS.items():
            row = {"case": case["name"], "setting": name, "cropped_shape": cropped_shape,
                   "full_shape": list(case["labels"].shape),
                   "seconds_cropped": time_setting(case, kind, params, channels, True, args.repeats),
                   "seconds_full": time_setting(case, kind, params, channels, False, args.repeats)}
            rows.append(row)
            print(f"{row['case']:24s} {name:42s} brain box {row['seconds_cropped']:.2f} s   full {row['seconds_full']:.2f} s")
    summary = {name: {"median_seconds_cropped": statistics.median(r["seconds_cropped"] for r in rows if r["setting"] == name),
                      "median_seconds_full": statistics.median(r["seconds_full"] for r in rows if r["setting"] == name)}
               for name in SETTINGS}
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
              "cases": [c["name"] for c in cases], "rows": rows, "summary": summary}
    (out / "benchmark.json").write_text(json.dumps(report, indent=2))
    lines = ["| maps | median s per case, brain box | median s per case, full 240x240x155 |", "|---|---|---|"]
    lines += [f"| {name} | {s['median_seconds_cropped']:.2f} | {s['median_seconds_full']:.2f} |" for name, s in summary.items()]
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
