#!/usr/bin/env bash
# Run the seeds study (membench/studies/seeds.py) in resumable parts, as two background queues,
# then the PD and CT students (one seed each, raw and corrected-EMA weights) in their own folders,
# and CD and CT students of 3,000 iterations (cd3000, ct3000: do the EMA readings plateau later?).
# Each part is one `membench study seeds --set only=PART` call: a finished part is skipped, so
# rerunning this script resumes where it stopped; the tables are rebuilt after every part.
# The order puts one student per teacher seed first, so a cut-short run still has three teachers.
#   nice -n 19 scripts/seeds_study.sh [OUT] [PID...]   (default OUT: benchmarks/seeds; PD and CT go
#   to OUT-pd, OUT-ct, OUT-cd3000 and OUT-ct3000; PIDs: processes to wait for first, e.g. parts already running)
set -u
OUT=${1:-benchmarks/seeds}
shift || true
PY=${PYTHON:-python}
COMMON=(--set teacher_seeds=0,1,2 --set distill_seeds=0,1 --set iterations=1500 --out "$OUT")
one() {  # one part of the CD study, or "pd"/"ct"/"cd3000"/"ct3000": that method's student of the seed-0 teacher
  local part=$1
  if [ "$part" = pd ] || [ "$part" = ct ] || [ "$part" = ct3000 ] || [ "$part" = cd3000 ]; then
    local it=1000; [ "$part" = pd ] && it=400  # the committed students' lengths (pd: per stage)
    [ "${part%3000}" != "$part" ] && it=3000
    mkdir -p "$OUT-$part"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $PY -m membench study seeds --set method="${part%3000}" --set teacher_seeds=0 \
      --set distill_seeds=0 --set iterations=$it --set disjoint=false --set early_step=0 --set euler_steps=1 \
      --out "$OUT-$part" >>"$OUT-$part/log.txt" 2>&1 || echo "part $part failed (see $OUT-$part/log.txt)"
  else
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $PY -m membench study seeds "${COMMON[@]}" --set only="$part" \
      >>"$OUT/log-$part.txt" 2>&1 || echo "part $part failed (see $OUT/log-$part.txt)"
  fi
}
run_queue() { for part in "$@"; do one "$part"; done; }
mkdir -p "$OUT"
for pid in "$@"; do while kill -0 "$pid" 2>/dev/null; do sleep 10; done; done
run_queue cd-t0-d0 cd-t0-d1 teacher-s2 cd-t2-d0 ct cd-t2-d1 ct3000 &
run_queue teacher-s1 cd-t1-d0 teacher-disjoint pd cd-t1-d1 cd3000 &
wait
