#!/usr/bin/env bash
# The GPU benchmark in one command, for a lent H100/H200 (benchmarks/README.md):
#
#   bash benchmarks/gpu_prepare.sh            # here, once: the peers' wheels into .whl/
#   device run: bash benchmarks/gpu_run.sh    # carry [".whl"], timeout_s 600
#
# Installs the carried wheels (if any) into a scratch folder, puts the checkout on
# PYTHONPATH (nothing is installed into the machine's Python), then runs two stages,
# each under its own time limit so that one cannot eat the other's time:
#   check    benchmarks/triton_check.py: the Triton kernels of every kind (IF, LIF, ALIF,
#            CubaLIF) against the reference on the GPU; a mismatch stops the script
#   neurons  benchmarks/neurons.py --skip-check: LIF beside the floor, SpikingJelly 2.0
#            and snnTorch, and the ALIF and CubaLIF rows (fused vs their reference), all
#            on the Triton backend (its JSON is rewritten after every configuration, so a
#            run cut off by its limit keeps its rows)
# STAGES="neurons" (say) runs a subset, e.g. in a second call. The JSON files and logs go
# to $OUT (the device tool's folder that comes back) or, without it, benchmarks/results/.
# Extra arguments go to neurons.py. DEVICE=cpu runs the same path on a CPU, the check in
# Triton's interpreter with --quick (how this script is tested without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results}
device=${DEVICE:-cuda}
stages=${STAGES:-check neurons}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  site=$(mktemp -d /tmp/spikeforge-site.XXXXXX)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
triton_env=() quick=()
if [ "$device" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv || true
else
  triton_env=(env TRITON_INTERPRET=1) quick=(--quick)
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
for stage in $stages; do
  case $stage in
    check)
      timeout 200 "${triton_env[@]}" python3 benchmarks/triton_check.py --device "$device" \
        "${quick[@]}" --out "$out/triton_check_$device.json" 2>&1 | tee "$out/triton_check_$device.log" ;;
    neurons)
      timeout 380 python3 benchmarks/neurons.py --device "$device" --skip-check \
        --out "$out/neurons_$device.json" "$@" 2>&1 | tee "$out/neurons_$device.log" \
        || echo "neurons: stopped (time limit or error); its JSON keeps the rows so far" ;;
    *) echo "unknown stage $stage (check, neurons)"; exit 2 ;;
  esac
done
