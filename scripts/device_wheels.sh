#!/usr/bin/env bash
# Fills .whl/ (git-ignored) with what scripts/device_check.sh installs on a GPU machine that has
# Python 3.12, torch, CUDA's compiler and the scientific stack but no package index: nnU-Net, its
# helpers and ours, at the versions of constraints.txt, plus FastGeodis' source (built there, for
# the GPU it finds). Run it here, once, where PyPI is reachable; then carry .whl with the check.
#
# The device tool carries at most 64 MiB, and SimpleITK's wheel alone is 53 MB: the large wheels
# are rewritten with LZMA compression (pip reads any compression the zip format allows), which
# brings the kit to about 45 MB. Packages the GPU machine already has (numpy, scipy, scikit-image,
# pandas, matplotlib, tifffile, rich, httpx, ...) are not fetched.
#
#   PY_VERSION   the GPU machine's Python (default 3.12)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.whl"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
PY_VERSION="${PY_VERSION:-3.12}"
# compiled wheels for that Python; pure-Python ones; sources built there
BINARY=(simpleitk blosc2 ndindex numexpr edt connected-components-3d)
PURE=(nnunetv2 acvl_utils batchgenerators batchgeneratorsv2 dynamic_network_architectures monai nibabel graphviz
      yacs)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64)

pinned() {  # NAME==VERSION from constraints.txt (names compared case- and -/_-insensitively), else NAME
    awk -F'==' -v want="$1" 'function norm(s) { s = tolower(s); gsub(/_/, "-", s); return s }
        NF == 2 && norm($1) == norm(want) { print; found = 1; exit } END { if (!found) print want }' \
        "$ROOT/constraints.txt"
}

rm -rf "$OUT" && mkdir -p "$OUT"
PIP=("$PYTHON" -m pip --disable-pip-version-check -q)
platform_args=(--only-binary=:all: --python-version "$PY_VERSION" --implementation cp)
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
for name in "${BINARY[@]}"; do
    "${PIP[@]}" download --no-deps "${platform_args[@]}" -d "$OUT" "$(pinned "$name")"
done
for name in "${PURE[@]}"; do  # some exist only as source archives: build a pure-Python wheel of each
    "${PIP[@]}" wheel --no-deps -w "$OUT" "$(pinned "$name")"
done
FASTGEODIS="$(grep -E '^FASTGEODIS_VERSION=' "$ROOT/scripts/setup_env.sh" | cut -d'"' -f2)"
"${PIP[@]}" download --no-deps --no-binary=:all: --no-build-isolation -d "$OUT" "fastgeodis==$FASTGEODIS"

"$PYTHON" - "$OUT" <<'EOF'
import sys, zipfile
from pathlib import Path

for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    if wheel.stat().st_size < 1_000_000:
        continue
    packed = wheel.with_suffix(".lzma")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_LZMA) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info), compress_type=zipfile.ZIP_LZMA)
    before = wheel.stat().st_size
    packed.replace(wheel)
    print(f"{wheel.name}: {before / 1e6:.1f} -> {wheel.stat().st_size / 1e6:.1f} MB (LZMA)")
EOF
du -sh "$OUT"
