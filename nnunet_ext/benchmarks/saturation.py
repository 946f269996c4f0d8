"""Where a trained SiNGR-type fold's outputs sit on tanh: a check for the short-budget collapse.

    nnunet_ext_benchmark saturation -d DATASET -c CONFIGURATION -tr TRAINER -f FOLD
        [-p nnUNetPlans] [--checkpoint checkpoint_final.pth] [--cases N] [--json FILE] [-device cpu|cuda]

The network regresses the SiNG map S through tanh (regions: v = z_k; labels: v = z_k - z_0, see
nnunet_ext/training/loss_adapters/signed_map.py). The loss's gradient carries the factor tanh'(v) = 1 - tanh(v)^2,
which is below 0.01 for |v| > atanh(sqrt(0.99)) = 2.99: a voxel there is *saturated* and barely trained.
If the reference foreground sits saturated below 0, the 0-threshold predicts nothing there and the
loss cannot pull it back: the collapse of SiNGR under nnU-Net's SGD (``nnUNetTrainerSiNGR_nnUNetSGD``).
Every SiNGR trainer logs the same measure on its validation patches each epoch (the training-health
guard, nnunet_ext/training/health.py); this script measures it on whole validation cases afterwards.

For each of the fold's validation cases (``splits_final.json``; the first ``--cases``), the script
predicts the raw outputs from the preprocessed case with the fold's checkpoint (nnU-Net's sliding
window, no mirroring) and reports per regressed map, over the voxels inside nnU-Net's crop mask
(seg >= 0), pooled over the cases: the fraction of reference-foreground voxels saturated below 0, the
fraction above 0 (recall of the 0-threshold), and the median v inside and outside the reference.
Needs the nnUNet_* variables (and nnUNet_extTrainer) as for ``nnUNetv2_predict``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from nnunet_ext.training.health import SATURATED_TANH_INPUT as SATURATED  # |v| where tanh'(v) < 0.01
from nnunet_ext.nnunet_env import PLANS, SPLITS_FILE, fold_folder


def saturation_stats(values: np.ndarray, reference: np.ndarray) -> dict:
    """Statistics of regressed outputs ``values`` against a boolean ``reference`` mask of the same shape."""
    inside, outside = values[reference], values[~reference]

    def median(x):
        return float(np.median(x)) if x.size else None

    return {
        "reference_voxels": int(inside.size),
        "inside_saturated_below_0": float(np.mean(inside < -SATURATED)) if inside.size else None,
        "inside_above_0": float(np.mean(inside > 0)) if inside.size else None,
        "inside_median": median(inside),
        "outside_saturated_below_0": float(np.mean(outside < -SATURATED)) if outside.size else None,
        "outside_median": median(outside),
    }


def regressed_maps(logits: np.ndarray, seg: np.ndarray, label_manager) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, v, reference mask) per regressed map, restricted to the crop mask ``seg >= 0``."""
    import torch

    from nnunet_ext.training.loss_adapters.signed_map import regressed_outputs

    values = regressed_outputs(torch.from_numpy(logits)[None], label_manager.has_regions)[0].numpy()
    valid = seg[0] >= 0
    # the map of region k is region k's mask (its labels); the map of label k is that label's mask
    targets = label_manager.foreground_regions if label_manager.has_regions else label_manager.foreground_labels
    return [(str(t), values[k][valid], np.isin(seg[0], np.atleast_1d(t))[valid]) for k, t in enumerate(targets)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-c", required=True, help="configuration, e.g. 2d or 3d_fullres")
    parser.add_argument("-tr", required=True, help="trainer class, e.g. nnUNetTrainerSiNGR")
    parser.add_argument("-f", type=int, required=True, help="fold")
    parser.add_argument("-p", default=PLANS, help="plans identifier (default nnUNetPlans)")
    parser.add_argument("--checkpoint", default="checkpoint_final.pth")
    parser.add_argument("--cases", type=int, default=None, help="use only the first N validation cases")
    parser.add_argument("--json", type=Path, help="also write the statistics to this file")
    parser.add_argument("-device", default="cpu", choices=("cpu", "cuda"), help="where to predict (default cpu)")
    args = parser.parse_args(argv)

    missing = [v for v in ("nnUNet_preprocessed", "nnUNet_results") if not os.environ.get(v)]
    if missing:
        parser.error(f"set {' and '.join(missing)} as for nnUNetv2_predict")
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    dataset = maybe_convert_to_dataset_name(args.d)
    model_folder = fold_folder(Path(os.environ["nnUNet_results"]), dataset, args.tr, args.c, 0, args.p).parent
    if not (model_folder / f"fold_{args.f}" / args.checkpoint).is_file():
        parser.error(f"no {args.checkpoint} in {model_folder / f'fold_{args.f}'}: train it first "
                     f"(nnUNetv2_train {args.d} {args.c} {args.f} -tr {args.tr})")
    device = torch.device(args.device)
    predictor = nnUNetPredictor(use_mirroring=False, device=device, perform_everything_on_device=device.type == "cuda",
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model_folder), use_folds=(args.f,),
                                                   checkpoint_name=args.checkpoint)
    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / dataset
    cases = json.loads((preprocessed / SPLITS_FILE).read_text())[args.f]["val"][: args.cases]
    folder = str(preprocessed / predictor.configuration_manager.data_identifier)
    data_set = infer_dataset_class(folder)(folder, cases)

    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for case in cases:
        data, seg, _, _ = data_set.load_case(case)
        logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(np.asarray(data))).float().numpy()
        for name, values, reference in regressed_maps(logits, np.asarray(seg), predictor.label_manager):
            pooled.setdefault(name, []).append((values, reference))
    stats = {name: saturation_stats(np.concatenate([v for v, _ in parts]), np.concatenate([r for _, r in parts]))
             for name, parts in pooled.items()}

    print(f"{args.tr} fold {args.f}, {len(cases)} validation case(s); saturated: v < -{SATURATED:.2f} "
          "(tanh'(v) < 0.01)\n")
    print("| map | reference voxels | saturated below 0 (inside) | above 0 (inside) | median v inside "
          "| saturated below 0 (outside) | median v outside |")
    print("|---|---|---|---|---|---|---|")
    for name, s in stats.items():
        cells = [s["reference_voxels"], *(f"{s[k]:.3f}" if s[k] is not None else "-" for k in (
            "inside_saturated_below_0", "inside_above_0", "inside_median", "outside_saturated_below_0",
            "outside_median"))]
        print(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"trainer": args.tr, "fold": args.f, "cases": cases,
                                         "saturation_threshold": SATURATED, "maps": stats}, indent=2) + "\n")
    return 0

