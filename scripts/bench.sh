#!/usr/bin/env bash
# Every benchmark (benchmarks/, out of CI), then the ratio table.
#   scripts/bench.sh                 # all of them; writes benchmarks/results/{benchmarks.json,ratios.md,ratios.json}
#   scripts/bench.sh -k knn          # a subset (pytest's -k); extra arguments go to pytest
# Uses .venv/bin/python when there is one, else python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
mkdir -p benchmarks/results
PYTHONPATH=. "$PY" -m pytest benchmarks -q -p no:cacheprovider --benchmark-only \
    --benchmark-json=benchmarks/results/benchmarks.json "$@"
"$PY" benchmarks/report.py benchmarks/results/benchmarks.json
