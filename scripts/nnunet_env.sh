# Sourced by scripts/demo.sh: nnU-Net's environment variables for this checkout.
# Keeps values the user already exported; otherwise uses folders under <repo>/work_dirs/.
# nnUNet_extTrainer gets the trainer folder that nnunet_ext_trainer_path prints (for the editable
# install of scripts/setup_env.sh: <repo>/trainers, which is also the fallback).
_NNUNET_EXT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export nnUNet_raw="${nnUNet_raw:-$_NNUNET_EXT_ROOT/work_dirs/nnUNet_raw}"
export nnUNet_preprocessed="${nnUNet_preprocessed:-$_NNUNET_EXT_ROOT/work_dirs/nnUNet_preprocessed}"
export nnUNet_results="${nnUNet_results:-$_NNUNET_EXT_ROOT/work_dirs/nnUNet_results}"
mkdir -p "$nnUNet_raw" "$nnUNet_preprocessed" "$nnUNet_results"
_NNUNET_EXT_TRAINERS="$("$_NNUNET_EXT_ROOT/.venv/bin/nnunet_ext_trainer_path" 2>/dev/null)" \
    || _NNUNET_EXT_TRAINERS="$_NNUNET_EXT_ROOT/trainers"
case ":${nnUNet_extTrainer:-}:" in
    *":$_NNUNET_EXT_TRAINERS:"*) ;;
    *) export nnUNet_extTrainer="${nnUNet_extTrainer:+$nnUNet_extTrainer:}$_NNUNET_EXT_TRAINERS" ;;
esac
unset _NNUNET_EXT_ROOT _NNUNET_EXT_TRAINERS
