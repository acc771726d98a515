#!/usr/bin/env bash
# The end-to-end training benchmark in one command, for a lent H100/H200:
#
#   bash benchmarks/gpu_prepare.sh                 # here, once: SpikingJelly's wheels into .whl/
#   device run: bash benchmarks/gpu_train_run.sh   # carry [".whl"], timeout_s 600
#
# Installs the carried wheels into a scratch folder, runs spikeforge from the checkout and
# writes $OUT/train_gpu.json and train_gpu.log (without $OUT: benchmarks/results/).
# DEVICE=cpu bash benchmarks/gpu_train_run.sh --quick runs the same path on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results}
device=${DEVICE:-cuda}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  site=$(mktemp -d /tmp/spikeforge-site.XXXXXX)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ "$device" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
fi
python3 benchmarks/train_gpu.py --device "$device" --out "$out/train_gpu_$device.json" "$@" 2>&1 \
  | tee "$out/train_gpu_$device.log"
