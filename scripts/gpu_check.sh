#!/usr/bin/env bash
# GPU path check, run once on a lent GPU machine: short training and distillation with
# `--device auto` (CUDA there) into a scratch folder, the harness on CUDA, the test suite.
# Measured 2026-11-27 on an H200: a full 6000-step teacher takes 190 s there (32 ms a step:
# this 0.7M-parameter UNet on 8x8 images is launch-bound), so the defaults are trained on CPU. Wheels for packages the GPU image lacks
# (diffusers, faiss-cpu, importlib_metadata) travel in .whl/.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
if ! python3 -c "import diffusers" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site2 .whl/hub/*.whl
  export PYTHONPATH=/tmp/site:/tmp/site2:$PWD
fi
nvidia-smi -L
python3 -c "import torch, diffusers, faiss; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'diffusers', diffusers.__version__)" || exit 1
M="python3 -m membench"
step() { local t0=$(date +%s.%N); echo "=== $*"; "$@" 2>&1 | tail -4; echo "--- rc=${PIPESTATUS[0]} $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"; }
step $M train --model teacher --out /tmp/gpu-teacher --steps 300 --quiet
step $M distill --teacher teacher --method cd:iterations=100 --out /tmp/gpu-cd --name gpu-cd --eval-samples 200 --quiet
step $M run --model all --detector all --n-samples 1000 --results-dir /tmp/res --quiet
cp /tmp/res/leaderboard.csv $OUT/ 2>/dev/null
step timeout 150 python3 -m pytest -q -x tests -p no:cacheprovider
