#!/usr/bin/env bash
# README command 1: set up the environment (idempotent) and run the demo on the embedded synthetic
# dataset: generate -> nnUNetv2_plan_and_preprocess -> short CPU training -> nnUNetv2_predict ->
# Dice/HD95 table + figure. Extra arguments go to nnunet_ext_demo (e.g. --overwrite, --kind binary).
#
# nnU-Net folders default to <repo>/work_dirs/ unless nnUNet_raw / nnUNet_preprocessed /
# nnUNet_results are already set; the trainer folder (nnunet_ext_trainer_path) is added to nnUNet_extTrainer.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
source "$ROOT/scripts/nnunet_env.sh"
exec "$ROOT/.venv/bin/nnunet_ext_demo" --output "$ROOT/demo_output" "$@"
