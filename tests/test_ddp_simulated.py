"""Our map trainers under nnU-Net's multi-GPU training (``nnUNetv2_train -num_gpus 2``, DDP), simulated on the CPU.

nnU-Net's ``run_ddp`` starts one process per GPU; each builds its own trainer and data loader with its share of
the plans' batch size, the network is wrapped in DDP, the losses and the pseudo-Dice counts are all-gathered at the
end of an epoch, and only rank 0 writes the training log, the checkpoints and ``progress.png``. Here two processes
do what ``run_ddp`` does with torch's ``gloo`` backend instead of NCCL. Of nnU-Net only the device choice is
patched (under DDP its trainer takes ``cuda:<rank>`` and gives DDP ``device_ids=[rank]``, both wrong for a CPU
module); of ours, recorders and two arrangements: rank 1 takes the maps' lock first, and rank 1's saturation count
is made all-saturated, so that a per-rank value would show.
What is checked: each rank's training loss is the loss of one process (no DDP) on that rank's batch with the same
weights; the maps are computed once, by one rank, and rank 0's log says so; the health guard's wrong-side
saturation is taken over every rank's validation batches, as nnU-Net's pseudo-Dice; the log and ``progress.png``
come from rank 0 only. nnU-Net's final validation (its predictor, untouched by our trainers) is not run.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from nnunetv2.run.run_training import get_trainer_from_args
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel

pytestmark = pytest.mark.e2e

WORLD_SIZE = 2
#: the plans' batch size for this test: nnU-Net splits it over the ranks, one case each
GLOBAL_BATCH_SIZE = 2


def _rank_process(rank: int, trainer_name: str, dataset_id: int, configuration: str, records: str) -> None:
    """One of nnU-Net's DDP processes (``nnunetv2.run.run_training.run_ddp`` without the final validation), on the
    CPU with gloo; records what the test compares under ``records``."""
    from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as nnunet_trainer_module

    from nnunet_ext import precompute
    from nnunet_ext.training import health
    from nnunet_ext.training.progress_logger import CurvesLocalLogger

    folder = Path(records)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=WORLD_SIZE)
    # nnU-Net's device choice: DDP of a CPU module takes no device_ids
    nnunet_trainer_module.DDP = lambda module, device_ids: DistributedDataParallel(module)

    compute_maps = precompute.case_maps

    def counted_case_maps(data, seg, config_folder, case, *args, **kwargs):
        with open(folder / f"maps_rank{rank}.txt", "a") as log:
            log.write(f"{case}\n")
        return compute_maps(data, seg, config_folder, case, *args, **kwargs)

    precompute.case_maps = counted_case_maps

    # rank 1 takes the maps' lock first: the case where rank 0, which writes the log, did not compute them
    file_lock, rank_1_locked = precompute.FileLock, folder / "rank_1_holds_the_lock"

    @contextmanager
    def rank_1_first(path):
        while rank == 0 and not rank_1_locked.exists():
            time.sleep(0.05)
        with file_lock(path):
            rank_1_locked.touch()
            yield

    precompute.FileLock = rank_1_first

    # rank 1 finds every validation foreground voxel saturated, rank 0 its real count: the guard's fraction must
    # take both ranks' counts, as nnU-Net's pseudo-Dice takes both ranks' tp / fp / fn
    measure = health.wrong_side_saturation

    def rank_dependent_saturation(*args, **kwargs):
        saturated, voxels = measure(*args, **kwargs)
        return (voxels if rank == 1 else saturated), voxels

    health.wrong_side_saturation = rank_dependent_saturation

    plot = CurvesLocalLogger.plot_progress_png

    def recorded_plot(self, output_folder):
        (folder / f"plot_rank{rank}.txt").write_text(output_folder)
        return plot(self, output_folder)

    CurvesLocalLogger.plot_progress_png = recorded_plot

    trainer = get_trainer_from_args(str(dataset_id), configuration, 0, trainer_name, "nnUNetPlans", False)
    assert trainer.is_ddp and trainer.local_rank == rank
    trainer.device, trainer.grad_scaler = torch.device("cpu"), None  # nnU-Net's device choice: cuda:<rank>

    train_step, steps = trainer.train_step, []

    def recorded_train_step(batch: dict) -> dict:
        weights = {k: v.detach().clone() for k, v in trainer.network.module.state_dict().items()}
        inputs = {k: [t.clone() for t in v] if isinstance(v, list) else v for k, v in batch.items()}
        inputs["data"] = batch["data"].clone()
        result = train_step(batch)
        torch.save({"batch": inputs, "weights": weights, "loss": float(result["loss"])},
                   folder / f"step_rank{rank}_{len(steps)}.pt")
        steps.append(result)
        return result

    trainer.train_step = recorded_train_step

    validation_end = trainer.on_validation_epoch_end

    def recorded_validation_end(val_outputs: list[dict]):
        torch.save([{k: o[k] for k in ("saturated_foreground", "foreground_voxels")} for o in val_outputs],
                   folder / f"validation_rank{rank}.pt")
        return validation_end(val_outputs)

    trainer.on_validation_epoch_end = recorded_validation_end

    trainer.run_training()
    torch.save({key: trainer.logger.get_value(key, step=None)
                for key in ("train_losses", "wrong_side_saturated", "dice_per_class_or_region")},
               folder / f"logging_rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture
def ddp_dataset(nnunet_env, tiny_dataset, tmp_path, monkeypatch):
    """(dataset id, configuration, results folder): a copy of the tiny BraTS-like dataset without maps and with a
    batch size of GLOBAL_BATCH_SIZE, as the environment of this process and of the ones it spawns."""
    dataset_id, configuration, raw_folder = tiny_dataset("brats")
    preprocessed, results = tmp_path / "nnUNet_preprocessed", tmp_path / "nnUNet_results"
    copy = preprocessed / raw_folder.name
    shutil.copytree(Path(nnunet_env["nnUNet_preprocessed"]) / raw_folder.name, copy,
                    ignore=shutil.ignore_patterns("nnunet_ext_targets"))
    plans = json.loads((copy / "nnUNetPlans.json").read_text())
    plans["configurations"][configuration]["batch_size"] = GLOBAL_BATCH_SIZE
    (copy / "nnUNetPlans.json").write_text(json.dumps(plans, indent=1))
    results.mkdir()
    for name, value in {**nnunet_env, "nnUNet_preprocessed": str(preprocessed), "nnUNet_results": str(results),
                        "nnUNet_n_proc_DA": "0", "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)
    return dataset_id, configuration, results


@pytest.mark.parametrize("trainer_name", ["nnUNetTrainerSiNGR_1epoch_2iters", "nnUNetTrainerRRW_1epoch_2iters"])
def test_two_ranks_train_as_one_process_per_share(trainer_name, ddp_dataset, tmp_path):
    dataset_id, configuration, results = ddp_dataset
    records = tmp_path / "records"
    records.mkdir()
    mp.spawn(_rank_process, args=(trainer_name, dataset_id, configuration, str(records)), nprocs=WORLD_SIZE, join=True)

    # the maps: computed once, each case by the rank that took the lock first (1), and rank 0's log says so
    assert not (records / "maps_rank0.txt").exists()
    cases = (records / "maps_rank1.txt").read_text().split()
    assert len(cases) == len(set(cases)) == 6, cases
    output_folder = next(results.glob(f"*/{trainer_name}__nnUNetPlans__{configuration}/fold_0"))
    logs = list(output_folder.glob("training_log_*.txt"))
    assert len(logs) == 1, logs  # rank 1 names a log file too, but nnU-Net lets rank 0 alone write
    log = logs[0].read_text()
    assert log.count("computed 6 missing or stale") == 1, log
    assert log.count("wrong-side saturated foreground") == 1, log

    # progress.png: drawn by rank 0 only, with our curves
    assert [rank for rank in range(WORLD_SIZE) if (records / f"plot_rank{rank}.txt").is_file()] == [0]
    assert (output_folder / "progress.png").is_file()

    # the health guard: wrong-side saturation over both ranks' validation batches, the same on each rank (rank 0
    # alone would log its own fraction, about 0, rank 1 alone 1)
    counts = [torch.load(records / f"validation_rank{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]
    saturated = np.sum([o["saturated_foreground"] for per_rank in counts for o in per_rank], 0)
    foreground = np.sum([o["foreground_voxels"] for per_rank in counts for o in per_rank], 0)
    logged = [torch.load(records / f"logging_rank{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]
    for per_rank in logged:
        np.testing.assert_allclose(per_rank["wrong_side_saturated"][-1],
                                   np.where(foreground > 0, saturated / np.maximum(foreground, 1), np.nan))
    assert logged[0]["dice_per_class_or_region"] == logged[1]["dice_per_class_or_region"]  # nnU-Net's all-gather

    # the loss: each rank's is that of one process (no DDP) on the rank's share of the batch with the same weights
    steps = [[torch.load(records / f"step_rank{rank}_{i}.pt", weights_only=False) for i in range(2)]
             for rank in range(WORLD_SIZE)]
    assert all(step["batch"]["data"].shape[0] == GLOBAL_BATCH_SIZE // WORLD_SIZE for s in steps for step in s)
    for i in range(2):  # DDP keeps the ranks' weights equal: every parameter got its averaged gradient
        assert all(torch.equal(steps[0][i]["weights"][k], steps[1][i]["weights"][k]) for k in steps[0][i]["weights"])
    single = get_trainer_from_args(str(dataset_id), configuration, 0, trainer_name, "nnUNetPlans", False,
                                   device=torch.device("cpu"))
    single.initialize()
    assert not single.is_ddp and single.batch_size == GLOBAL_BATCH_SIZE
    for step in (step for per_rank in steps for step in per_rank):
        single.network.load_state_dict(step["weights"])
        # rtol: under DDP nnU-Net weights the lowest deep-supervision output 1e-6 instead of 0 (its DDP needs every
        # parameter in the loss)
        assert single.train_step(step["batch"])["loss"] == pytest.approx(step["loss"], rel=1e-4)
    # nnU-Net's logged training loss is the mean over both ranks' steps
    assert logged[0]["train_losses"][-1] == pytest.approx(np.mean([s["loss"] for r in steps for s in r]), rel=1e-6)
