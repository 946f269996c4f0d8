"""The converging quality benchmark on synthetic data, 2 CPU cores: every trainer of the plugin against nnU-Net's default.

    nnunet_ext_benchmark quality-cpu [--folds 0 1 2] [--trainers T ...] [--out benchmark_output/quality_cpu]
        [--results docs/results] [--report-only] [--quick]

The BraTS-like regions dataset of ``nnunet_ext_synthetic -k brats``, 30 cases of 32 x 32 x 24 voxels
(3d_fullres, patch 20 x 28 x 28, batch 2), every trainer of the suite, at ``_80epochs_20iters`` (1600
training iterations), folds 0-2 of nnU-Net's seeded 5-fold split: the fast regression check of the methods
(the real-data evidence is ``quality-real``, :mod:`.quality_real`). How the runs are recorded, resumed and
reported: :mod:`.converging`. ``--quick`` runs 10 cases, two trainers, ``_1epoch_2iters``, fold 0, one process per pool.

Why 80 epochs: at ``_50epochs_20iters`` (measured 2026-12-01, synthetic fold 0) the default's raw pseudo-Dice
was flat over the last 12 epochs but its EMA, which lags about 10 epochs, still rose 1.5 points over the
last 20 %. Cost on 2 cores (measured 2026-12-02): a run about 7.5 min (epochs of about 5 s, plus set-up and
validation); the variants that only diagnose (the three nnU-Net-SGD ones, which show the collapse) run in
fold 0 only; the whole benchmark (30 runs) about 4 h, in several sittings (``--trainers`` orders one).
"""

from __future__ import annotations

from nnunet_ext.benchmarks.converging import QUICK_POOLS, Benchmark, Dataset, main as run_benchmark

SYNTHETIC_ARGS = ("--dataset", "synthetic", "--shape", "32", "32", "24")
BENCHMARK = Benchmark(
    name="quality_cpu", title="Quality on 2 CPU cores, synthetic BraTS-like volumes: every trainer against nnU-Net's default",
    suite={"synthetic": Dataset(
        args=(*SYNTHETIC_ARGS, "--cases", "30"), configuration="3d_fullres",
        trainers=("nnUNetTrainer", "nnUNetTrainerSiNGR", "nnUNetTrainerRRW", "nnUNetTrainerSiNGR_PaperAdam",
                  "nnUNetTrainerSiNGR_L1", "nnUNetTrainerGSL", "nnUNetTrainerBoundary", "nnUNetTrainerGeoLS_JML",
                  "nnUNetTrainerLS_JML", "nnUNetTrainerSiNGR_nnUNetSGD", "nnUNetTrainerRRW_nnUNetSGD",
                  "nnUNetTrainerLS_JML_nnUNetSGD"),
        fold0_only=("nnUNetTrainerSiNGR_nnUNetSGD", "nnUNetTrainerRRW_nnUNetSGD", "nnUNetTrainerLS_JML_nnUNetSGD"))},
    budget="_80epochs_20iters", folds=(0, 1, 2),
    quick={"synthetic": Dataset(args=(*SYNTHETIC_ARGS, "--cases", "10", *QUICK_POOLS), configuration="3d_fullres",
                                trainers=("nnUNetTrainer", "nnUNetTrainerSiNGR"))},
    quick_budget="_1epoch_2iters",
)


def main(argv=None) -> int:
    return run_benchmark(BENCHMARK, __doc__, argv)
