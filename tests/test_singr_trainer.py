"""nnUNetTrainerSiNGR: the 0-threshold rule through nnU-Net's own inference, and end-to-end CPU runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import LEARNING_BUDGET, assert_learned, run_command
from nnunet_ext.losses import TanhL1Loss
from nnunet_ext.training.loss_adapters.signed_map import SignedMapRegression

SMOKE = "nnUNetTrainerSiNGR_1epoch_2iters"


def test_label_dataset_argmax_is_the_zero_threshold_rule():
    """argmax over (z_0, ..., z_K) == background iff every regressed d_k = z_k - z_0 <= 0, else argmax d_k."""
    z = torch.randn(4, 3, 9, 9, 9) * 3
    d = z[:, 1:] - z[:, :1]
    rule = torch.where((d <= 0).all(1), 0, d.argmax(1) + 1)
    assert torch.equal(z.argmax(1), rule)


def test_regressed_channels_for_labels_and_regions():
    maps = torch.rand(2, 2, 4, 4, 4) * 2 - 1
    label_output = torch.randn(2, 3, 4, 4, 4)
    per_scale = SignedMapRegression(TanhL1Loss(), has_regions=False)
    expected = TanhL1Loss()(label_output[:, 1:] - label_output[:, :1], maps)
    assert torch.isclose(per_scale(label_output, torch.zeros(2, 1, 4, 4, 4), maps), expected)
    region_output = torch.randn(2, 2, 4, 4, 4)
    assert torch.isclose(SignedMapRegression(TanhL1Loss(), has_regions=True)(region_output, None, maps),
                         TanhL1Loss()(region_output, maps))


def test_ignore_label_is_masked_out():
    maps = torch.full((1, 1, 4, 4, 4), 0.75)
    output = torch.zeros(1, 2, 4, 4, 4)
    output[:, 1, :2] = 10.0  # d = 10 where not ignored -> tanh(d) ~ 1, error 0.25
    seg = torch.zeros(1, 1, 4, 4, 4)
    seg[:, :, 2:] = 5  # ignore label 5 on the half where the prediction is wrong
    loss = SignedMapRegression(TanhL1Loss(), has_regions=False, ignore_label=5)(output, seg, maps)
    assert loss.item() == pytest.approx(0.25, abs=1e-4)


def test_channel_count_mismatch_is_explained():
    with pytest.raises(ValueError, match="recompute them"):
        SignedMapRegression(TanhL1Loss(), has_regions=True)(torch.zeros(1, 3, 4, 4, 4), None, torch.zeros(1, 2, 4, 4, 4))


def explicit_zero_threshold(probabilities: np.ndarray, dataset_json: dict) -> np.ndarray:
    """The SiNGR rule recomputed from nnU-Net's saved probabilities (sigmoid(z) or softmax(z))."""
    if "regions_class_order" in dataset_json:
        # sigmoid(z) > 0.5 <=> z > 0 <=> tanh(z) > 0; later regions overwrite earlier ones
        seg = np.zeros(probabilities.shape[1:], np.uint8)
        for region, label in enumerate(dataset_json["regions_class_order"]):
            seg[probabilities[region] > 0.5] = label
        return seg
    # softmax p_k is proportional to exp(z_k): d_k = z_k - z_0 <= 0 <=> p_k <= p_0, and argmax d = argmax p
    foreground = probabilities[1:]
    return np.where((foreground <= probabilities[:1]).all(0), 0, foreground.argmax(0) + 1)


@pytest.mark.e2e
@pytest.mark.parametrize("kind, trainer", [("brats", SMOKE), ("2d", f"nnUNetTrainerSiNGR{LEARNING_BUDGET}")])
def test_singr_train_predict_zero_threshold(kind, trainer, nnunet_env, trained_fold, tmp_path):
    """A region dataset (3d_fullres; smoke budget, also re-validated with --val) and a 2D label dataset (long enough
    to learn: it must beat the Dice of a network that did not learn): train, predict, check the rule."""
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    run = trained_fold(trainer, kind)
    assert "computed 6 missing or stale sing_" in run.stdout  # the trainer computed the maps and said so
    summary = run.folder / "validation" / "summary.json"
    if trainer == SMOKE:
        summary.unlink()
        run_command(["nnUNetv2_train", str(run.dataset_id), run.configuration, "0", "-tr", trainer, "-device", "cpu",
                     "--val"], nnunet_env)
        assert json.loads(summary.read_text())["metric_per_case"]  # written again by --val
    else:
        assert_learned(json.loads(summary.read_text()))
    out = tmp_path / "pred"
    run_command(["nnUNetv2_predict", "-i", str(run.raw_folder / "imagesTs"), "-o", str(out), "-d", str(run.dataset_id),
                 "-c", run.configuration, "-tr", trainer, "-f", "0", "-device", "cpu", "-npp", "1", "-nps", "1",
                 "--save_probabilities"], nnunet_env)
    dataset_json = json.loads((run.raw_folder / "dataset.json").read_text())
    ending = dataset_json["file_ending"]
    predictions = sorted(out.glob(f"*{ending}"))
    assert len(predictions) == 2
    reader = determine_reader_writer_from_dataset_json(dataset_json, str(predictions[0]))()
    for prediction in predictions:
        seg = reader.read_seg(str(prediction))[0][0]
        probabilities = np.load(out / (prediction.name[: -len(ending)] + ".npz"))["probabilities"]
        np.testing.assert_array_equal(seg, explicit_zero_threshold(probabilities, dataset_json))


@pytest.mark.e2e
def test_saturation_check_reads_a_trained_singr_fold(nnunet_env, trained_fold, tmp_path):
    """nnunet_ext_benchmark saturation reads a trained SiNGR fold's outputs on its validation cases."""
    run = trained_fold(f"nnUNetTrainerSiNGR{LEARNING_BUDGET}", "2d")  # the run of the test above
    trainer = run.folder.parent.name.split("__")[0]
    report = tmp_path / "saturation.json"
    checked = subprocess.run([sys.executable, "-m", "nnunet_ext.benchmarks", "saturation", "-d", str(run.dataset_id),
                              "-c", run.configuration, "-tr", trainer, "-f", "0", "--json", str(report)],
                             env=nnunet_env, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stderr[-2000:]
    result = json.loads(report.read_text())
    assert result["cases"] and set(result["maps"]) == {"1"}  # the synthetic 2d kind: one tumour class
    for stats in result["maps"].values():
        assert 0 <= stats["inside_saturated_below_0"] <= 1 and 0 <= stats["inside_above_0"] <= 1
