# Sourced by scripts/demo.sh: nnU-Net's environment variables for this checkout.
# Keeps values the user already exported; otherwise uses folders under <repo>/work_dirs/.
_NNUNET_EXT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export nnUNet_raw="${nnUNet_raw:-$_NNUNET_EXT_ROOT/work_dirs/nnUNet_raw}"
export nnUNet_preprocessed="${nnUNet_preprocessed:-$_NNUNET_EXT_ROOT/work_dirs/nnUNet_preprocessed}"
export nnUNet_results="${nnUNet_results:-$_NNUNET_EXT_ROOT/work_dirs/nnUNet_results}"
mkdir -p "$nnUNet_raw" "$nnUNet_preprocessed" "$nnUNet_results"
case ":${nnUNet_extTrainer:-}:" in
    *":$_NNUNET_EXT_ROOT/trainers:"*) ;;
    *) export nnUNet_extTrainer="${nnUNet_extTrainer:+$nnUNet_extTrainer:}$_NNUNET_EXT_ROOT/trainers" ;;
esac
unset _NNUNET_EXT_ROOT
