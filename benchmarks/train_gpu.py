"""End-to-end training steps on a GPU: spikeforge beside the same network in SpikingJelly 2.0.

Two networks, each in fp32 and under bf16 autocast:

- VGGSNN (TET's event-frame network), T = 10, 2x128x128 frames, batch 16;
- Spikformer-tiny (1 block, embedding 64, 4 heads, MLP ratio 4), T = 4, 3x32x32, batch 64.

One "step" is forward, TET loss (per-step cross-entropy), backward and an Adam update.
For each (network, precision, engine) the script reports steps per second (median of
``--runs`` timed windows of ``--steps`` steps after warm-up, CUDA-synchronised) and peak
memory (``torch.cuda.max_memory_allocated`` over the timed steps). SpikingJelly's
networks use its multi-step ``LIFNode`` (tau 2, hard reset, ATan surrogate,
detach_reset; SpikingJelly 2.0 chooses its kernel for the device itself) and
``functional.reset_net`` after each step.

    python benchmarks/train_gpu.py                  # -> benchmarks/results/train_gpu.json
    bash benchmarks/gpu_train_run.sh                # the same as one device call
    python benchmarks/train_gpu.py --device cpu --quick   # a smoke run on the CPU

Writes the JSON after every row, ``"partial": true`` until the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spikeforge.functional.encoding import direct_encode  # noqa: E402
from spikeforge.models import build_model  # noqa: E402
from spikeforge.train.config import ModelConfig  # noqa: E402

CASES = {
    "vggsnn": dict(T=10, shape=(2, 128, 128), batch=16),
    "spikformer_tiny": dict(T=4, shape=(3, 32, 32), batch=64),
}


def tet(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """TET: mean over steps of the per-step cross-entropy (``out`` ``[T, B, C]``)."""
    t, b, c = out.shape
    return F.cross_entropy(out.float().reshape(t * b, c), y.repeat(t))


def spikeforge_model(name: str, case: dict, device):
    cfg = ModelConfig(name=name, detach_reset=True)
    model = build_model(name, case["shape"], 10, cfg, time_steps=case["T"]).to(device)
    return model, lambda x: model(x), lambda: None, "spikeforge"


def _sj_lif():
    from spikingjelly.activation_based import neuron, surrogate

    # SpikingJelly 2.0 picks its kernel for the device itself (no backend argument).
    return lambda: neuron.LIFNode(
        tau=2.0, detach_reset=True, surrogate_function=surrogate.ATan(), step_mode="m"
    )


def spikingjelly_model(name: str, case: dict, device):
    from spikingjelly.activation_based import functional, layer

    lif = _sj_lif()
    if name == "vggsnn":
        mods, c_in, side = [], case["shape"][0], case["shape"][1]
        for item in [64, 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A"]:
            if item == "A":
                mods.append(layer.AvgPool2d(2, step_mode="m"))
                side //= 2
                continue
            mods += [layer.Conv2d(c_in, item, 3, padding=1, bias=False, step_mode="m"),
                     layer.BatchNorm2d(item, step_mode="m"), lif()]
            c_in = item
        mods += [layer.Flatten(step_mode="m"), layer.Linear(c_in * side * side, 10, step_mode="m")]
        model = torch.nn.Sequential(*mods).to(device)

        def forward(x):
            return model(x)
    else:
        from spikingjelly.activation_based.model.spikformer import Spikformer

        model = Spikformer(T=case["T"], in_channels=3, img_size_h=32, img_size_w=32,
                           patch_size=4, num_classes=10, embed_dims=64, num_heads=4,
                           mlp_ratio=4.0, depths=1, spiking_neuron=None).to(device)
        functional.set_step_mode(model, "m")

        def forward(x):
            out = model(x[0])  # SJ's Spikformer repeats a static image over T itself
            return out.unsqueeze(0) if out.dim() == 2 else out
    return model, forward, lambda: functional.reset_net(model), "SpikingJelly 2.0"


ENGINES = {"spikeforge": spikeforge_model, "SpikingJelly": spikingjelly_model}


def time_case(name, engine, precision, args, device) -> dict:
    case = CASES[name]
    torch.manual_seed(0)
    model, forward, reset, label = ENGINES[engine](name, case, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(case["batch"], *case["shape"], device=device) < 0.3).float()
    xt = direct_encode(x, case["T"]).contiguous()
    y = torch.randint(0, 10, (case["batch"],), device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=bool(dtype)):
            loss = tet(forward(xt), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        reset()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rates = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        rates.append(args.steps / (time.perf_counter() - t0))
    row = {
        "model": name, "engine": label, "precision": precision, **{k: case[k] for k in ("T",)},
        "input": list(case["shape"]), "batch": case["batch"],
        "steps_per_s": statistics.median(rates), "steps_per_s_runs": rates,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if device.type == "cuda":
        row["peak_mem_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--models", default=",".join(CASES))
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--quick", action="store_true",
                   help="batch 2, T 2, 32x32 inputs, 1 run of 2 steps: a smoke run")
    p.add_argument("--out", default="benchmarks/results/train_gpu.json")
    args = p.parse_args()
    device = torch.device(args.device)
    if args.quick:
        for c in CASES.values():
            c.update(batch=2, T=2, shape=(c["shape"][0], 32, 32))
        args.steps, args.runs, args.warmup = 2, 1, 1
    result = {
        "benchmark": "train_gpu", "torch": torch.__version__, "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
        "command": " ".join(sys.argv), "quick": args.quick, "partial": True, "rows": [],
        "errors": [],
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    for name in args.models.split(","):
        for precision in args.precisions.split(","):
            for engine in args.engines.split(","):
                try:
                    row = time_case(name, engine, precision, args, device)
                    result["rows"].append(row)
                    print(json.dumps(row), flush=True)
                except Exception as e:  # record and go on: one engine's failure is a result
                    err = {"model": name, "engine": engine, "precision": precision,
                           "error": f"{type(e).__name__}: {e}"}
                    result["errors"].append(err)
                    print(json.dumps(err), flush=True)
                with open(args.out, "w") as f:
                    json.dump(result, f, indent=1)
    result["partial"] = False
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
