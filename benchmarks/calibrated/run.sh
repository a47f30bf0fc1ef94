#!/usr/bin/env bash
# Calibrated detectors and the sample-based membership / data-copying tests on every default
# model (1,000 samples, seed 0), then the opt-in model-based membership tests on the teacher,
# the CD student and the generalizing teacher-large. Rebuilds benchmarks/calibrated/.
set -eu
python -m membench run --model all --detector l2ratio,carlini,embedsim,digits-sim,nn-heldout,copying,mmd-heldout \
    --n-samples 1000 --results-dir benchmarks/calibrated --quiet
python -m membench run --model teacher,cd-student,teacher-large --detector membership \
    --n-samples 1000 --results-dir benchmarks/calibrated --quiet
