"""Per-scale losses on nnU-Net's outputs: ``loss(output (B, C, *), seg (B, 1 or R, *), maps (B, K, *))``.

Each turns nnU-Net's raw outputs and seg of one deep-supervision scale into the inputs of a pure loss of
:mod:`nnunet_ext.losses` (activation, one-hot target, ignore-label mask, :mod:`.seg_targets`):
:mod:`.signed_map` (SiNGR and its ablations), :mod:`.distance` (GSL, Boundary, RRW, and the
region + distance mix), :mod:`.soft_label` (LS, GeoLS, JML).
"""
