"""Thread settings of the default run, alone and beside one busy process.

Issue 19: beside one CPU-bound process, an epoch of the default run took 65-70 s
with torch's default thread count and 18-19 s with ``threads=1`` (2 cores). This
script times training steps of the default config (``spikeforge train`` with no
arguments: ``default_cnn`` on ``mnist5k``, the fused CPU kernel) over

- thread counts (1 .. the usable cores) and ``auto`` (what ``threads: null`` picks,
  :func:`spikeforge.runtime.auto_threads`, asked at that moment),
- OpenMP's wait policy (``OMP_WAIT_POLICY``: ``auto``, what the ``spikeforge``
  command does, :func:`spikeforge.runtime.prepare_process`: ``PASSIVE`` when cores
  are busy at the start, else unset; ``unset``; ``PASSIVE``; ``ACTIVE``: whether
  threads at a barrier spin or sleep; read once when torch loads OpenMP, so each
  value runs in its own process),
- numba's threading layer (``NUMBA_THREADING_LAYER``: its default, which is ``omp``
  without tbb, and ``workqueue``; ``tbb`` where installed),

each alone and beside one busy process (a CPU-bound Python loop this script starts
and stops). Each setting runs ``--warmup`` steps, then ``--steps`` timed steps;
``--rounds`` repeats every process in a rotated order and the median counts. An
epoch is the step time times the 125 steps of the default epoch.

The defaults are the ``auto`` policy, numba's default layer and ``auto`` threads.
It then checks them against the issue's rule (beside a busy process an epoch
within 1.5x of the best setting; alone as fast as before, i.e. within 10% of torch's
default of all cores) and writes ``benchmarks/results/threads_cpu.json``::

    python benchmarks/threads.py                       # the full measurement
    python benchmarks/threads.py --steps 4 --warmup 1 --rounds 1 --out /tmp   # smoke
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STEPS_PER_EPOCH = 125  # 4,000 training digits / batch 32
POLICIES = ("auto", "unset", "PASSIVE", "ACTIVE")


def numba_layers() -> list[str]:
    """numba's threading layers to compare: its default (``omp`` where tbb is not
    installed, the JSON's ``numba_layer_used`` says), ``workqueue``, and ``tbb`` where
    installed (``--layers default,omp,workqueue`` names ``omp`` explicitly)."""
    layers = ["default", "workqueue"]
    try:
        import tbb  # noqa: F401

        layers.append("tbb")
    except ImportError:
        pass
    return layers


# ------------------------------------------------------------------ child process
def child(args) -> None:
    """Time the default run's training steps at each thread count; print JSON."""
    from spikeforge.runtime import auto_threads, prepare_process

    decided = prepare_process() if args.auto_policy else None  # before torch loads
    import torch

    from spikeforge.train import Trainer, load_config
    from spikeforge.train.batches import derived_seed, iterate_batches
    from spikeforge.train.batches import seeded_generator as _generator

    cfg = load_config(None, ["progress=false", "threads=1"])
    trainer = Trainer(cfg, os.path.join("/tmp", "unused"))  # fit() is never called
    gen = _generator(derived_seed(0, 0, 2))
    batches = itertools.cycle(list(itertools.islice(
        iterate_batches(trainer.bundle.train, cfg.data.batch_size, None), 20)))

    def steps(n: int) -> None:
        trainer.model.train()
        for _ in range(n):
            x, y = next(batches)
            x = trainer.bundle.train_transform(x, gen)
            loss = trainer.loss_fn(trainer.model(trainer.to_time_first(x, gen)), y)
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.optimizer.step()

    result = {}
    for setting in args.threads.split(","):
        n = auto_threads() if setting == "auto" else int(setting)
        torch.set_num_threads(n)
        steps(args.warmup)
        t0 = time.perf_counter()
        steps(args.steps)
        seconds = (time.perf_counter() - t0) / args.steps
        result[setting] = {"threads": n, "seconds_per_step": seconds}
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region ran
        layer = None
    print(json.dumps({"settings": result, "numba_layer": layer, "prepare_process": decided}))


# ----------------------------------------------------------------- parent process
def run_child(policy: str, layer: str, threads: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("NUMBA_THREADING_LAYER", None)
    if policy not in ("unset", "auto"):
        env["OMP_WAIT_POLICY"] = policy
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    cmd = [sys.executable, __file__, "--child", "--threads", threads,
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if policy == "auto":
        cmd.append("--auto-policy")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(condition: str, args) -> list[dict]:
    """Every (policy, layer) process, ``rounds`` times in rotated order; medians."""
    from spikeforge.runtime import usable_cores

    cores = len(usable_cores())
    threads = ",".join(["auto", *map(str, range(1, cores + 1))])
    combos = list(itertools.product(args.policies.split(","), args.layers.split(",")))
    times: dict = {}
    busy = None
    if condition == "busy":
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(2.0)  # let it hold its core before auto_threads looks
    try:
        for r in range(args.rounds):
            for policy, layer in combos[r % len(combos):] + combos[: r % len(combos)]:
                out = run_child(policy, layer, threads, args)
                key = (policy, layer)
                entry = times.setdefault(key, {"numba_layer_used": None, "runs": {}})
                if "error" in out:
                    entry["error"] = out["error"]
                    continue
                entry["numba_layer_used"] = out["numba_layer"]
                entry["prepare_process"] = out["prepare_process"]
                for s, v in out["settings"].items():
                    entry["runs"].setdefault(s, []).append(v)
                print(f"  {condition:5s} {policy:7s} {layer:9s} " + "  ".join(
                    f"{s}({v['threads']}): {v['seconds_per_step'] * 1e3:6.1f} ms"
                    for s, v in out["settings"].items()), flush=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    rows = []
    for (policy, layer), entry in times.items():
        for s, runs in entry["runs"].items():
            sec = statistics.median(v["seconds_per_step"] for v in runs)
            rows.append({"condition": condition, "omp_wait_policy": policy, "numba_layer": layer,
                         "numba_layer_used": entry["numba_layer_used"], "threads_setting": s,
                         "prepare_process": entry.get("prepare_process"),
                         "threads": [v["threads"] for v in runs],
                         "seconds_per_step": sec, "epoch_seconds": sec * STEPS_PER_EPOCH})
        if "error" in entry:
            rows.append({"condition": condition, "omp_wait_policy": policy,
                         "numba_layer": layer, "error": entry["error"]})
    return rows


def verdict(rows: list[dict], cores: int) -> dict:
    """The defaults (auto threads, wait policy and numba layer left as they are)
    against the best setting beside a busy process and torch's default alone."""
    def pick(cond, policy="auto", layer="default", threads="auto"):
        return next((r for r in rows if r.get("condition") == cond
                     and r.get("omp_wait_policy") == policy and r.get("numba_layer") == layer
                     and r.get("threads_setting") == threads), None)

    out = {}
    for cond in ("alone", "busy"):
        ok = [r for r in rows if r.get("condition") == cond and "epoch_seconds" in r]
        if not ok:
            continue
        best = min(ok, key=lambda r: r["epoch_seconds"])
        default = pick(cond)
        before = pick(cond, "unset", threads=str(cores))  # what threads: null meant before
        out[cond] = {
            "best": {k: best[k] for k in ("omp_wait_policy", "numba_layer", "threads_setting",
                                          "epoch_seconds")},
            "default_epoch_seconds": default and default["epoch_seconds"],
            "default_threads": default and default["threads"],
            "previous_default_epoch_seconds": before and before["epoch_seconds"],
            "default_over_best": default and default["epoch_seconds"] / best["epoch_seconds"],
        }
        if before and default:
            out[cond]["default_over_previous"] = default["epoch_seconds"] / before["epoch_seconds"]
    busy_ok = out.get("busy", {}).get("default_over_best")
    alone_ok = out.get("alone", {}).get("default_over_previous")
    out["meets_rule"] = bool(busy_ok and busy_ok <= 1.5 and alone_ok and alone_ok <= 1.10)
    return out


def main() -> None:
    """Command-line entry (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", default="1", help=argparse.SUPPRESS)
    p.add_argument("--auto-policy", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=25, help="timed steps per setting")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    p.add_argument("--rounds", type=int, default=2, help="repeats of every process")
    p.add_argument("--policies", default=",".join(POLICIES), help="OMP_WAIT_POLICY values")
    p.add_argument("--layers", default=",".join(numba_layers()), help="numba threading layers")
    p.add_argument("--conditions", default="alone,busy")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    args = p.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, ROOT)
    import torch

    from spikeforge.runtime import usable_cores

    cores = len(usable_cores())
    load = os.getloadavg()
    print(f"{cores} usable cores, load average {load[0]:.2f} at the start", flush=True)
    rows = []
    for cond in args.conditions.split(","):
        rows += measure(cond, args)
    result = {
        "benchmark": "threads",
        "command": "python benchmarks/threads.py " + " ".join(sys.argv[1:]),
        "usable_cores": cores, "cpu_count": os.cpu_count(),
        "load_average_at_start": load, "load_average_at_end": os.getloadavg(),
        "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds,
        "steps_per_epoch": STEPS_PER_EPOCH,
        "defaults": {"threads": "auto (spikeforge.runtime.auto_threads)",
                     "omp_wait_policy": "auto (spikeforge.runtime.prepare_process)",
                     "numba_layer": "default"},
        "verdict": verdict(rows, cores),
        "rows": rows, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
    }
    with open("/proc/cpuinfo") as f:
        result["machine"] = next((ln.split(":", 1)[1].strip() for ln in f
                                  if ln.startswith("model name")), None)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "threads_cpu.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result["verdict"], indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
