#!/usr/bin/env bash
# Scale check on a lent GPU machine, under 5 minutes (no Ray): sampling on CUDA against the CPU,
# sharpness on CUDA, exact k-NN on CUDA (faiss-gpu when it imports, else torch matmul + topk)
# against the same-shape matrix product. Writes $OUT/gpu_scale.json (scripts/gpu_scale.py).
#
# Prepare here (network): bash scripts/gpu_scale.sh --prepare   (wheels the GPU image may lack -> .whl/)
# On the GPU machine:      bash scripts/gpu_scale.sh               (device run's carry: [".whl"])
# Dry run on a CPU:        bash scripts/gpu_scale.sh --cpu         (small sizes, device cpu)
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PYTHON:-python3}
if [ "${1:-}" = "--prepare" ]; then
  # Pure-Python or manylinux wheels the GPU image may lack; faiss-gpu is not carried (too large): torch is the fallback.
  exec $PY -m pip download -q --no-deps -d .whl diffusers faiss-cpu importlib_metadata huggingface_hub safetensors
fi
if ls .whl/*.whl >/dev/null 2>&1 && ! $PY -c "import diffusers, faiss" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-scale-site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/gpu-scale-site:$PWD
else
  export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
fi
OUTDIR=${OUT:-.}
if [ "${1:-}" = "--cpu" ]; then
  exec timeout 280 $PY scripts/gpu_scale.py --device cpu --small --out "$OUTDIR"
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L
exec timeout 280 $PY scripts/gpu_scale.py --device cuda --out "$OUTDIR"
