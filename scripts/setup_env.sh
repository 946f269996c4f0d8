#!/usr/bin/env bash
# Creates (or checks) the project's virtual environment in .venv with pinned dependencies.
#
# Idempotent: a stamp file records a hash of everything that defines the environment
# (requirements.txt, constraints.txt, pyproject.toml, this script); when it matches, nothing is
# reinstalled and the script returns in well under a second. Any failure stops with one line
# saying what failed and what to do.
#
# Environment knobs:
#   NNUNET_EXT_VENV   where to create the environment (default: <repo>/.venv)
#   PYTHON            interpreter used to create it (default: python3, must be >= 3.10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NNUNET_EXT_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.nnunet_ext_setup_stamp"
FASTGEODIS_VERSION="1.0.5"

fail() {
    echo "[setup] FAILED: $1" >&2
    echo "[setup] fix: $2" >&2
    exit 1
}

wanted_stamp="$(cd "$ROOT" && cat requirements.txt constraints.txt pyproject.toml scripts/setup_env.sh | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$wanted_stamp" && -x "$VENV/bin/python" ]]; then
    echo "[setup] $VENV is up to date"
    exit 0
fi

command -v "$PYTHON" >/dev/null || fail "no '$PYTHON' on PATH" "install Python >= 3.10 or set PYTHON=/path/to/python3"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || fail "$("$PYTHON" --version 2>&1) is too old" "nnU-Net 2.8 needs Python >= 3.10; set PYTHON=/path/to/python3.11"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[setup] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV" || fail "could not create $VENV" "install the venv module (Debian: apt-get install python3-venv) and re-run"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

echo "[setup] installing pinned dependencies (torch, nnunetv2, ...): a few minutes the first time"
"${PIP[@]}" install -q -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt" \
    || fail "pip could not install requirements.txt" "check network access to PyPI, then re-run scripts/setup_env.sh (delete .venv to start from scratch)"

# FastGeodis (the package's optional extra "fast"; without it a PyTorch raster scan computes the same maps,
# slower) is built here for this environment, which the tests and benchmarks compare against. It ships only as
# a source archive whose build imports torch, so it is built against the torch installed above (no build
# isolation, no wheel cache: a cached wheel may have been built against another torch; setuptools < 81 from
# requirements.txt, since its setup.py imports pkg_resources). Its setup.py compiles CUDA kernels only when
# torch sees a GPU at build time (or FORCE_CUDA=1 with a CUDA toolkit). A stamp records the torch it was built
# against.
TORCH_VERSION="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
FASTGEODIS_STAMP="$VENV/.fastgeodis_built_against_torch"
if [[ "$(cat "$FASTGEODIS_STAMP" 2>/dev/null)" != "$TORCH_VERSION" ]] || ! "$VENV/bin/python" -c "import FastGeodis" 2>/dev/null; then
    echo "[setup] building FastGeodis $FASTGEODIS_VERSION against torch $TORCH_VERSION (about 2 minutes on 2 cores)"
    "${PIP[@]}" install -q --no-build-isolation --no-cache-dir --force-reinstall --no-deps "fastgeodis==$FASTGEODIS_VERSION" \
        || fail "FastGeodis $FASTGEODIS_VERSION did not build" "it needs a C++ compiler and Python headers (Debian: apt-get install build-essential python3-dev); re-run scripts/setup_env.sh"
    echo "$TORCH_VERSION" > "$FASTGEODIS_STAMP"
fi

echo "[setup] installing nnunet-ext (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT" \
    || fail "pip could not install nnunet-ext from $ROOT" "run 'git status' for a broken checkout, then re-run scripts/setup_env.sh"

"$VENV/bin/python" -c "
import torch, torchvision, FastGeodis, nnunetv2, nnunet_ext, nnunet_ext.preprocessing, brats_evaluation, panoptica
FastGeodis.generalised_geodesic3d(torch.zeros(1, 1, 4, 4, 4), torch.ones(1, 1, 4, 4, 4), [1.0, 1.0, 1.0], 1e10, 0.5, 1)
" \
    || fail "the environment does not import" "delete $VENV and re-run scripts/setup_env.sh"
"$VENV/bin/nnUNetv2_train" -h >/dev/null || fail "nnUNetv2_train -h does not run" "delete $VENV and re-run scripts/setup_env.sh"

echo "$wanted_stamp" > "$STAMP"
echo "[setup] ready: $VENV"
