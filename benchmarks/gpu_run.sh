#!/usr/bin/env bash
# The GPU benchmark in one command, for a lent H100/H200 (benchmarks/README.md):
#
#   bash benchmarks/gpu_prepare.sh            # here, once: the peers' wheels into .whl/
#   device run: bash benchmarks/gpu_run.sh    # carry [".whl"], timeout_s 600
#
# Installs the carried wheels (if any) into a scratch folder, puts the checkout on
# PYTHONPATH (nothing is installed into the machine's Python), then runs
# benchmarks/neurons.py: the Triton kernels checked against the reference on the GPU,
# then timed beside the floor, SpikingJelly 2.0 and snnTorch. The JSON and a log go to
# $OUT (the device tool's folder that comes back) or, without it, benchmarks/results/.
# Extra arguments go to neurons.py (e.g. --skip-check for a second run). DEVICE=cpu
# runs the same path on a CPU (how this script is tested without a GPU).
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
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv || true
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 benchmarks/neurons.py --device "$device" --out "$out/neurons_$device.json" "$@" 2>&1 \
  | tee "$out/neurons_$device.log"
