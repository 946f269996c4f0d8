#!/usr/bin/env bash
# Every GPU measurement of the speed issue in one run, for a GPU machine lent for a few minutes:
# `nnunet_ext_benchmark all --device cuda --gpu-check` (SiNG and GeoLS maps and the precompute hook
# on CPU and CUDA, training / loader / predict ratios against nnU-Net's default trainer) writing
# one results.json with the hardware record.
#
# On the device tool's machine (bare Python 3.12 with torch and CUDA, no package index):
#   here, once:  bash scripts/device_wheels.sh          (fills .whl/, about 45 MB)
#   there:       run(command="bash scripts/device_check.sh", carry=[".whl"], timeout_s=600)
# The wheels go to /tmp/site, FastGeodis is built there for the GPU it finds (its kernels need
# CUDA's compiler at build time), and the results come back from $OUT: results.json / results.md
# and each part's Markdown. On a workstation whose environment has everything (scripts/setup_env.sh
# on a GPU machine), run it without .whl/; OUT defaults to benchmark_output/device_check.
#
# Each step has its own time limit (install about 1 min, FastGeodis' build at most 200 s, the parts at
# most 300 s; the suite writes results.json after each part), so that the whole ends inside the device
# tool's 10-minute command limit with whatever finished.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/benchmark_output/device_check}"
WORK="${DEVICE_CHECK_WORK:-/tmp/nnunet_ext_device_check}"
# the project's environment where there is one (a workstation), else the machine's python3 (the device tool)
[[ -x "$ROOT/.venv/bin/python" ]] && default_python="$ROOT/.venv/bin/python" || default_python=python3
PYTHON="${PYTHON:-$default_python}"
SITE=/tmp/site
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
cd "$ROOT" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$OUT/nvidia_smi.txt"

if [[ -d .whl ]] && ! "$PYTHON" -c "import nnunetv2, nnunet_ext, FastGeodis" 2>/dev/null; then
    echo "[device_check] installing the carried wheels into $SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
        || { echo "[device_check] FAILED: pip could not install .whl/ (rebuild it: bash scripts/device_wheels.sh)"; exit 1; }
    # this checkout itself (its console scripts run the parts' stages), built from the tree that travelled
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE" "$ROOT" \
        || { echo "[device_check] FAILED: pip could not install this checkout"; exit 1; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
    echo "[device_check] building FastGeodis for this GPU"
    rm -rf "$WORK/fastgeodis" && mkdir -p "$WORK/fastgeodis"
    tar -xzf .whl/[Ff]ast[Gg]eodis-*.tar.gz -C "$WORK/fastgeodis" --strip-components 1
    capability="$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"
    # one architecture, compiled in parallel: minutes instead of the default list's many
    (cd "$WORK/fastgeodis" && FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$capability" MAX_JOBS="$(nproc)" timeout 200 \
        "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE" .) \
        > "$OUT/fastgeodis_build.log" 2>&1 \
        || { echo "[device_check] FAILED: FastGeodis did not build (see fastgeodis_build.log)"; exit 1; }
fi
"$PYTHON" -c "
import torch, FastGeodis
x = torch.ones(1, 1, 4, 4, 4, device='cuda')
FastGeodis.generalised_geodesic3d(x, x, [1.0, 1.0, 1.0], 1e10, 0.5, 1)
print('FastGeodis on', torch.cuda.get_device_name(0))" || { echo "[device_check] FAILED: no CUDA device, or FastGeodis built without its CUDA kernels"; exit 1; }

# each part sets its own nnU-Net folders (under --out) and nnUNet_extTrainer
timeout 300 "$PYTHON" -m nnunet_ext.benchmarks all --device cuda --gpu-check --out "$WORK/results" \
    > "$OUT/benchmark.log" 2>&1
status=$?
grep -E "^\[benchmark\]|^written|rror" "$OUT/benchmark.log"
cp "$WORK/results/results.json" "$WORK/results/results.md" "$OUT/" 2>/dev/null
for part in targets training; do
    cp "$WORK/results/$part/"*.md "$OUT/" 2>/dev/null
done
echo "[device_check] exit $status; results in $OUT"
exit "$status"
