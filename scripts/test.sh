#!/usr/bin/env bash
# README command 2 (and CI's): set up the environment (idempotent) and run the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not e2e" for the fast unit tests only.
# The test files run on NNUNET_EXT_TEST_WORKERS processes (pytest-xdist, one file per process at a time, so a file's
# session fixtures and trained folds are shared by its tests); 0 runs them in this process. Default 3 on 2 cores: a
# third process keeps the cores busy while the others wait (on a lock, a spawned pool, a file); the whole suite
# took 646 s with 3 and 681 s with 2 (same commit, idle 2-core machine, 2026-12-06).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest -n "${NNUNET_EXT_TEST_WORKERS:-3}" --dist loadfile "$@"
