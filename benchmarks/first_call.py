"""Cold-cache cost of the CPU kernel's first calls: the first forward of the default LIF
(what inference compiles), then the first forward+backward (what training adds).

    d=$(mktemp -d); NUMBA_CACHE_DIR=$d PYTHONPATH=<tree> python benchmarks/first_call.py <label>

One JSON line; run it for two trees under the same load to compare them.
"""

import json
import sys
import time

import torch

from spikeforge.neurons import LIF


def main(label: str) -> dict:
    """Seconds of the first no-grad forward and of the first training step after it."""
    x = torch.randn(4, 32, 1000)
    lif = LIF(tau=2.0)
    t = time.perf_counter()
    with torch.no_grad():
        lif(x)
    t_fwd = time.perf_counter() - t
    xg = x.clone().requires_grad_()
    t = time.perf_counter()
    lif(xg).sum().backward()
    t_train = time.perf_counter() - t
    return {"tree": label, "first_forward_s": round(t_fwd, 1),
            "then_first_train_step_s": round(t_train, 1)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else ".")))
