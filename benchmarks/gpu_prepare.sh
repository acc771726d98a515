#!/usr/bin/env bash
# Run here, on a machine with pip's registry, before lending a GPU: fetch the wheels the
# GPU machine lacks (the peers SpikingJelly 2.0 and snnTorch 1.0, and loguru, which
# SpikingJelly imports) into .whl/, which git ignores, so that one device call can carry
# them. Everything else the benchmark needs (torch, triton, numba, numpy, pyyaml,
# safetensors, rich) is on that machine's image already; spikeforge runs from the
# checkout. Pure-Python wheels: no platform to match.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
  spikingjelly==2.0.0 snntorch==1.0.0 loguru==0.7.3
ls -l .whl
