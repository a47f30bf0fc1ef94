#!/usr/bin/env bash
# Model-based membership tests (loss-mia, pia, secmi) on the CD student of the seeds study read
# from its raw and bias-corrected EMA weights (is membership distilled or inherited from the
# teacher's starting weights?), its saved EMA (= the committed cd-student's weights: a check),
# the committed PD and CT students, the seeds study's PD student from its raw and corrected-EMA
# weights (benchmarks/seeds-pd, the committed pd-student's configuration), and the null: the seeds study's teacher trained on the *next*
# 64 digits (teacher-disjoint), tested against the default 64 as members, which it never saw.
# Needs benchmarks/seeds/parts/{cd-t0-d0,teacher-disjoint} and benchmarks/seeds-pd/parts/pd-t0-d0
# (scripts/seeds_study.sh).
# Rebuilds benchmarks/seeds-membership/ (records, leaderboard.csv).
set -eu
export MEMBENCH_HOME=${MEMBENCH_HOME:-$(mktemp -d)}  # the imports go to a scratch registry
for v in raw ema-corrected; do
  python -m membench import benchmarks/seeds/parts/cd-t0-d0/variants/$v --name cd-t0-d0-$v \
      --train "digits:holdout=300,n=64,seed=0" --teacher teacher --method cd --force
done
for v in raw ema-corrected; do
  python -m membench import benchmarks/seeds-pd/parts/pd-t0-d0/variants/$v --name pd-t0-d0-$v \
      --train "digits:holdout=300,n=64,seed=0" --teacher teacher --method pd --force
done
python -m membench import benchmarks/seeds/parts/cd-t0-d0 --name cd-t0-d0-ema \
    --train "digits:holdout=300,n=64,seed=0" --teacher teacher --method cd --force
python -m membench import benchmarks/seeds/parts/teacher-disjoint --name teacher-disjoint-null \
    --train "digits:holdout=300,n=64,seed=0" --role teacher --force
python -m membench run --model cd-t0-d0-raw,cd-t0-d0-ema-corrected,cd-t0-d0-ema,pd-student,pd-t0-d0-raw,pd-t0-d0-ema-corrected,ct-student,teacher-disjoint-null \
    --detector membership --n-samples 1000 --no-quality --results-dir benchmarks/seeds-membership --quiet
