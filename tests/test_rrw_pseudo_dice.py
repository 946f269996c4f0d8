"""RRW's online pseudo-Dice counts the voxels nnU-Net's prediction has (issue 31).

nnU-Net's validation step thresholds every voxel of a validation patch, the loader's padding beyond the case
included, where RRW's maps are 1 in every channel and its loss sets no target; nnU-Net's predictor crops that
padding off. A network that predicts foreground there must not lose pseudo-Dice for it.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from nnunetv2.utilities.label_handling.label_handling import LabelManager
from torch.nn import functional as F

from nnunet_ext.targets import make_options
from nnunet_ext.targets.rrw import rrw_maps
from nnunet_ext.trainers.nnUNetTrainerRRW import nnUNetTrainerRRW
from nnunet_ext.training.map_trainer import predicted_foreground


def _padded_batch(trainer: nnUNetTrainerRRW, ignore_label: int | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """One validation batch as nnU-Net's loader and the map trainer's transforms build it, from a case that fills
    the patch but its last quarter (the loader's padding there: image 0, maps at their far value, seg background).

    Labels: nested cubes 1 > 2 > 3 (all 1 for a one-label dataset), ``ignore_label`` on a background slab.
    Returns the batch, the reference (K, *patch) per foreground channel, and the case voxels counted by nnU-Net.
    """
    patch = tuple(trainer.configuration_manager.patch_size)
    case = (*patch[:-1], patch[-1] * 3 // 4)
    lm = trainer.label_manager
    labels = np.zeros(case, np.int16)
    for label, margin in ((1, 4), (2, 6), (3, 8)):
        labels[tuple(slice(margin, max(margin + 1, s - margin)) for s in case)] = label
    if not lm.has_regions:
        labels[labels > max(lm.foreground_labels)] = max(lm.foreground_labels)
    ignored = None
    if ignore_label is not None:
        ignored = np.zeros(case, bool)
        ignored[..., :2] = True
        labels[ignored] = ignore_label
    channels = lm.foreground_regions if lm.has_regions else lm.foreground_labels
    masks = np.stack([np.isin(labels, np.atleast_1d(c)) for c in channels])
    spec = trainer.target_spec()
    maps = rrw_maps(np.zeros((1, *case), np.float32), masks, np.ones(case, bool), (1.0,) * len(case),
                    make_options(spec.kind, dict(spec.params)), ignored=ignored)

    def pad(array: np.ndarray) -> torch.Tensor:  # (..., *case) -> (1, ..., *patch), zeros beyond the case
        widths = [(0, 0)] * (array.ndim - len(case)) + [(0, p - c) for p, c in zip(patch, case)]
        return torch.from_numpy(np.pad(array, widths)).float()[None]

    torch.manual_seed(0)
    image = torch.randn(1, trainer.num_input_channels, *patch) * pad(np.ones((1, *case)))
    data = torch.cat([image, pad(maps - trainer.far_value)], dim=1)  # the maps ride shifted by their far value
    seg = pad(masks) if lm.has_regions else pad(labels[None])
    targets = [F.interpolate(seg, size=tuple(max(1, round(p * f)) for p, f in zip(patch, scale)), mode="nearest")
               for scale in trainer._get_deep_supervision_scales()]
    counted = pad(np.ones(case, bool) if ignored is None else ~ignored)[0].bool().numpy()
    return {"data": data, "target": targets, "keys": ["case"]}, pad(masks)[0].bool().numpy(), counted


def _predict_foreground_everywhere(trainer: nnUNetTrainerRRW) -> None:
    """Output biases that predict every foreground region (sigmoid > 0.5) or label 1 (argmax) in every voxel."""
    lm = trainer.label_manager
    bias = torch.full((lm.num_segmentation_heads,), 10.0)
    if not lm.has_regions:
        bias[0], bias[2:] = -10.0, -20.0
    for layer in trainer.network.decoder.seg_layers:
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.copy_(bias)


def _validate(trainer: nnUNetTrainerRRW, batch: dict) -> dict:
    trainer.network.eval()
    trainer.on_validation_epoch_start()
    with torch.no_grad():
        result = trainer.validation_step(batch)
    trainer.on_validation_epoch_end([result])
    return result


@pytest.mark.parametrize("kind", ["brats", "binary"])
def test_foreground_in_the_padding_is_no_false_positive(kind, initialized_trainer):
    trainer = initialized_trainer(nnUNetTrainerRRW, kind)
    batch, reference, counted = _padded_batch(trainer)
    _predict_foreground_everywhere(trainer)
    result = _validate(trainer, batch)
    # nnU-Net's prediction of this case: every foreground channel on every voxel of the case, none beyond it
    tp, fp = reference.sum((1, 2, 3)), (counted & ~reference).sum((1, 2, 3))
    assert result["tp_hard"].tolist() == tp.tolist() and not result["fn_hard"].any()
    assert result["fp_hard"].tolist() == fp.tolist()  # nnU-Net's step alone also counts the padding's voxels
    logged = trainer.logger.get_value("dice_per_class_or_region", step=None)[-1]  # what the guard reads
    np.testing.assert_allclose(logged, 2 * tp / (2 * tp + fp), rtol=1e-6)


def test_ignored_voxels_stay_out_of_the_count_once(initialized_trainer):
    """RRW's maps are also 1 in every channel on nnU-Net's ignore label, which nnU-Net's own count masks: the
    foreground predicted there is not taken off its false positives a second time."""
    trainer = initialized_trainer(nnUNetTrainerRRW, "binary")
    labels = {**trainer.dataset_json["labels"], "ignore": 2}
    trainer.label_manager = LabelManager(labels, regions_class_order=None)
    batch, reference, counted = _padded_batch(trainer, ignore_label=2)
    _predict_foreground_everywhere(trainer)
    result = _validate(trainer, batch)
    assert not counted.all()
    assert result["tp_hard"].tolist() == [int((reference[0] & counted).sum())]
    assert result["fp_hard"].tolist() == [int((counted & ~reference[0]).sum())]


def test_predicted_foreground_thresholds_as_nnunet():
    torch.manual_seed(0)
    output = torch.randn(2, 3, 4, 4, 4)
    assert torch.equal(predicted_foreground(output, True), torch.sigmoid(output) > 0.5)
    one_hot = F.one_hot(output.argmax(1), 3).movedim(-1, 1).bool()
    assert torch.equal(predicted_foreground(output, False), one_hot[:, 1:])
