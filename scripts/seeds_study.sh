#!/usr/bin/env bash
# Run the seeds study (membench/studies/seeds.py) in resumable parts, as two background queues.
# Each part is one `membench study seeds --set only=PART` call: a finished part is skipped, so
# rerunning this script resumes where it stopped; the tables are rebuilt after every part.
#   nice -n 19 scripts/seeds_study.sh [OUT] [PID...]   (default OUT: benchmarks/seeds;
#   PIDs: processes to wait for first, e.g. parts already running)
set -u
OUT=${1:-benchmarks/seeds}
shift || true
PY=${PYTHON:-python}
COMMON=(--set teacher_seeds=0,1,2 --set distill_seeds=0,1 --set iterations=1500 --out "$OUT")
run_queue() {
  for part in "$@"; do
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $PY -m membench study seeds "${COMMON[@]}" --set only="$part" \
      >>"$OUT/log-$part.txt" 2>&1 || echo "part $part failed (see $OUT/log-$part.txt)"
  done
}
mkdir -p "$OUT"
for pid in "$@"; do while kill -0 "$pid" 2>/dev/null; do sleep 10; done; done
run_queue cd-t0-d0 cd-t0-d1 teacher-s2 cd-t2-d0 cd-t2-d1 &
run_queue teacher-s1 cd-t1-d0 teacher-disjoint cd-t1-d1 &
wait
