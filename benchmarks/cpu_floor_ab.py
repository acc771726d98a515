"""A/B of the membrane floor ``v_min`` on the numba CPU kernel: LIF forward+backward over
``[T, N]`` float32 without the floor, on the code before the floor existed (A, a
checkout given by ``--before``) and after it (B, this tree), and with the floor (B).

The unfloored rows compile to the same assembly before and after
(``benchmarks/cpu_rows_asm.py``), so A and B unfloored should time the same; the floored
rows add one compare and select per step in the forward and recompute, and in the
gradient one reset and compare (the clip mask) per step.

Each measurement runs in its own process (``PYTHONPATH`` = the tree), rounds rotated,
``--reps`` timed calls after ``--warmup``; the median per process, then the median
over rounds. Writes ``benchmarks/results/cpu_floor_ab.json``::

    git archive 3fc9720 | tar -x -C /tmp/before    # the tree before the floor
    python benchmarks/cpu_floor_ab.py --before /tmp/before --reps 20 --rounds 6  # [16, 1M]
    python benchmarks/cpu_floor_ab.py --before /tmp/before --n 65536 --reps 3 --rounds 1 \\
        --out /tmp                                                  # smoke

(numba writes its cache into the ``--before`` tree: give it a copy, not a live checkout.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = HERE.parent

CHILD = r"""
import json, sys, time, torch
from spikeforge.ops import dispatch
from spikeforge.ops.spec import NeuronSpec
T, N, reps, warmup, floor = (int(a) for a in sys.argv[1:6])
kw = dict(v_min=-0.5) if floor else {}
spec = NeuronSpec(kind="lif", reset="hard", surrogate="atan", **kw)
g = torch.Generator().manual_seed(0)
x = (torch.randn(T, N, generator=g) * 0.8 + 0.3).requires_grad_()
gs = torch.randn(T, N, generator=g)
times = []
for i in range(warmup + reps):
    t0 = time.perf_counter()
    s, _ = dispatch.multistep("cpu", x, None, (0.5,), spec, False)
    s.backward(gs)
    t1 = time.perf_counter()
    x.grad = None
    if i >= warmup:
        times.append(t1 - t0)
times.sort()
print(json.dumps({"median_s": times[len(times) // 2], "min_s": times[0]}))
"""


def run_one(tree: str, T: int, n: int, reps: int, warmup: int, floor: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", CHILD, str(T), str(n), str(reps), str(warmup),
                          str(int(floor))], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="a checkout of spikeforge without the floor")
    ap.add_argument("--t", type=int, default=16)
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    cases = [("A_unfloored", args.before, False), ("B_unfloored", str(TREE), False),
             ("B_floored", str(TREE), True)]
    res: dict = {name: [] for name, _, _ in cases}
    for r in range(args.rounds):
        for name, tree, floor in cases[r % 3:] + cases[:r % 3]:  # rotated order
            res[name].append(run_one(tree, args.t, args.n, args.reps, args.warmup, floor))
            print(name, res[name][-1], flush=True)
    summary = {name: statistics.median(m["median_s"] for m in runs) for name, runs in res.items()}
    out = {
        "what": "LIF hard/atan fwd+bwd, float32, numba CPU kernel; A = --before tree",
        "T": args.t, "N": args.n, "reps": args.reps, "rounds": args.rounds,
        "cores": os.cpu_count(), "median_s": summary,
        "B_unfloored_over_A": summary["B_unfloored"] / summary["A_unfloored"],
        "B_floored_over_B_unfloored": summary["B_floored"] / summary["B_unfloored"],
        "runs": res,
        "command": "python benchmarks/cpu_floor_ab.py " + " ".join(argv or sys.argv[1:]),
    }
    path = Path(args.out) / "cpu_floor_ab.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("median_s", "B_unfloored_over_A",
                                           "B_floored_over_B_unfloored")}, indent=2))
    print("wrote", path)


if __name__ == "__main__":
    main()
