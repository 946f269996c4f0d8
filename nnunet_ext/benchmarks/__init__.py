"""The measurements behind docs/results, one command: ``nnunet_ext_benchmark PART [options]``.

==============  ==============================================================================
part            measures
==============  ==============================================================================
all             every part below that docs/results quote, one report (:mod:`.suite`)
targets         map precompute per case, ours vs the authors' recipes, the hook, disk, CPU vs CUDA
training        iteration time, loader throughput, predict time per trainer vs nnUNetTrainer
quality         one dataset's pipeline with per-stage timings and the report (:mod:`.quality`)
quality-cpu     every trainer vs the default on synthetic volumes, resumable (:mod:`.quality_cpu`)
quality-real    the headline trainers vs the default on real BraTS and LGG, five folds (:mod:`.quality_real`)
saturation      where a trained SiNGR-type fold's outputs sit on tanh (:mod:`.saturation`)
hd95            our MONAI HD95 beside the BraTS organisers' package on the same files (:mod:`.hd95`)
==============  ==============================================================================

``nnunet_ext_benchmark PART --help`` documents a part. Run them from the repository: outputs go to
``benchmark_output/`` (git-ignored) and the quality-cpu records to ``docs/results/`` by default. The
authors' recipes the targets part compares with live in :mod:`.authors_recipes`.
"""
