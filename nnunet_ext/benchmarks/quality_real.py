"""The real-data quality benchmark on 2 CPU cores: nnU-Net's default against SiNGR, RRW, GSL and SiNGR with
Euclidean maps, five folds on real BraTS and LGG FLAIR cases.

    nnunet_ext_benchmark quality-real --brats-source DIR --lgg-source DIR [--lgg-patients FILE] [--folds 0 1 2 3 4]
        [--datasets brats lgg] [--trainers T ...] [--out benchmark_output/quality_real] [--results docs/results]
        [--report-only] [--quick]

- ``brats``: BraTS 2017-2021 training cases in the challenge's layout (``<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz``;
  other files in a case folder are ignored), converted by ``nnunet_ext_convert_brats``: regions whole tumour,
  tumour core, enhancing tumour; the organisers' lesion-wise Dice and HD95 (``gli``) beside ours.
- ``lgg``: the LGG FLAIR ``kaggle_3m`` folder, only the patients of ``--lgg-patients`` (the cross-validation
  patients: keep a study's test patients out), each patient one 3D volume (``nnunet_ext_convert_lgg``),
  binned 4 x 4 in-plane; spacing assumed 1 mm pixels and 5 mm slices (the TIFs store none).

Fitting 2 CPU cores (about 17 h for 50 runs: about 20 min each on an idle machine, 21 s per epoch measured):
both run 3d_fullres with a patch of 32 x 32 x 32 voxels, batch 2, at ``_50epochs_20iters`` (1000 iterations); BraTS is planned at 4 mm isotropic (nnU-Net's
``-overwrite_target_spacing``), so the patch covers 128 mm as the SiNGR paper's 128^3 crops at 1 mm do; LGG at
its 4 x 4 x 5 mm covers 128 x 128 mm in-plane as the paper's 128 x 128 x 32 patches do. nnU-Net exports the
validation predictions at the raw images' spacing, so every metric is at native resolution. Each record states
the spacing, the patch (and the planned one), the batch and whether the default plateaued. How the runs are
recorded, resumed and reported: :mod:`.converging`. The same command on a GPU at native resolution and
nnU-Net's full schedule: docs/how-to/gpu-recipe.md.

``--quick`` runs the same machinery on a tiny synthetic stand-in (10 cases planned at 1.5 mm, two trainers,
``_1epoch_2iters``, fold 0, one process per pool, lesion-wise metrics included) for the test suite; its numbers
mean nothing.
"""

from __future__ import annotations

from nnunet_ext.benchmarks.converging import QUICK_POOLS, Benchmark, Claim, Dataset, Input, main as run_benchmark

TRAINERS = ("nnUNetTrainer", "nnUNetTrainerSiNGR", "nnUNetTrainerRRW", "nnUNetTrainerGSL", "nnUNetTrainerSiNGR_Euclidean")
PATCH = ("--patch-size", "32", "32", "32", "--batch-size", "2")  # nnU-Net plans LGG with batch 4
SINGR = "SiNGR (Dang et al., MICCAI 2024)"
CLAIMS = (
    Claim(SINGR, "nnUNetTrainerSiNGR", "brats", "dice", +1, None,
          "Table 1, BraTS 2020, UNet3D: mean Dice 86.5 -> 87.9 (+1.4) over hard labels"),
    Claim(SINGR, "nnUNetTrainerSiNGR", "brats", "hd95", -1, None,
          "Table 1, BraTS 2020, UNet3D: mean HD95 5.4 -> 3.8 mm (-1.6)"),
    Claim(SINGR, "nnUNetTrainerSiNGR", "lgg", "dice", +1, None, "Table 2, LGG FLAIR, UNet3D: Dice 69.1 -> 82.3"),
    Claim(SINGR, "nnUNetTrainerSiNGR", "lgg", "hd95", -1, None, "Table 2, LGG FLAIR, UNet3D: HD95 22.2 mm lower"),
    *(Claim(paper, trainer, dataset, "hd95", -1, None, "lower HD95 than hard-label training at equal Dice")
      for paper, trainer in (("GSL (Celaya et al.)", "nnUNetTrainerGSL"), ("RRW (Valverde, Tohka)", "nnUNetTrainerRRW"))
      for dataset in ("brats", "lgg")),
)
BENCHMARK = Benchmark(
    name="quality_real", title="Quality on real tumours, 2 CPU cores: nnU-Net's default against SiNGR, RRW, GSL",
    suite={
        "brats": Dataset(
            args=("--dataset", "brats", "--target-spacing", "4", "4", "4", *PATCH), configuration="3d_fullres",
            trainers=TRAINERS, official="gli",
            inputs={"source": Input("--source", None, "the folder of BraTS 2017-2021 case folders "
                                    "(docs/how-to/real-data.md says where to get them)")}),
        "lgg": Dataset(
            args=("--dataset", "lgg", "--shrink", "4", *PATCH), configuration="3d_fullres", trainers=TRAINERS,
            inputs={"source": Input("--source", None, "the full kaggle_3m folder of LGG FLAIR (docs/how-to/real-data.md)"),
                    "patients": Input("--patients", "lgg_cv_patients.txt",
                                      "the patients to cross-validate, one folder name per line")},
            spacing_note="LGG's mm are under the converter's assumed spacing (1 mm pixels before binning, 5 mm "
                         "between slices)."),
    },
    budget="_50epochs_20iters", folds=(0, 1, 2, 3, 4),
    quick={"synthetic": Dataset(
        args=("--dataset", "synthetic", "--shape", "32", "32", "24", "--cases", "10", "--target-spacing", "1.5", "1.5", "1.5",
              *QUICK_POOLS),
        configuration="3d_fullres", trainers=("nnUNetTrainer", "nnUNetTrainerSiNGR_Euclidean"), official="gli")},
    quick_budget="_1epoch_2iters", claims=CLAIMS,
)


def main(argv=None) -> int:
    return run_benchmark(BENCHMARK, __doc__, argv)
