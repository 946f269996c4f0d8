#!/usr/bin/env bash
# README command 2 (and CI's): set up the environment (idempotent) and run the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not e2e" for the fast unit tests only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
