"""nnU-Net adapters: everything that subclasses, feeds or wraps nnU-Net's trainer. Three rooms:

- :mod:`nnunet_ext.training.data`: the data path that carries the target maps (dataset, transforms);
- :mod:`nnunet_ext.training.loss_adapters`: per-scale losses on nnU-Net's outputs and seg, each calling a
  pure loss of :mod:`nnunet_ext.losses`;
- this package's modules: the trainer bases and mixins (``map_trainer``, ``distance_trainer``, ``health``,
  ``optimizers``, ``progress_logger``) and the GSL class weights (``gsl``).
"""
