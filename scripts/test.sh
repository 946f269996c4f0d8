#!/usr/bin/env bash
# README command 2 (and CI's): set up the environment (idempotent) and run the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not e2e" for the fast unit tests only.
# The test files run on NNUNET_EXT_TEST_WORKERS processes (default 2; pytest-xdist, one file per process at a
# time, so a file's session fixtures and trained folds are shared by its tests); 0 runs them in this process.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest -n "${NNUNET_EXT_TEST_WORKERS:-2}" --dist loadfile "$@"
