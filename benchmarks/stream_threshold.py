"""Where non-temporal stores start to pay: the CPU LIF forward followed by a read of its
spikes, with ordinary against streaming stores, over output sizes.

Each round evicts the caches with a copy of 128 MB, reads the input once (as the layer
before would leave it cached), then times ``forward`` plus ``spikes.sum()`` (the layer
after), once with ordinary and once with streaming stores, interleaved. Streaming skips
the read a normal store makes of each line, but leaves the output out of the cache for
the reader; the size where the ratio crosses 1 (if it does) is the value to give
``SPIKEFORGE_STREAM_MIN_MB`` on this machine (the kernels never stream by default).

    python benchmarks/stream_threshold.py      # -> results/stream_threshold_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from neurons import device_name  # benchmarks/neurons.py, beside this script

from spikeforge.ops.cpu import entry, host
from spikeforge.ops.spec import NeuronSpec


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes-mb", default="2,4,8,16,32,64")
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results", "stream_threshold_cpu.json"))
    args = ap.parse_args(argv)
    spec = NeuronSpec(kind="lif", reset="hard", detach_reset=True, surrogate="atan")
    flush_src = torch.ones(32 << 20)
    flush_dst = torch.empty_like(flush_src)
    saved = host.STREAM_MIN_BYTES
    rows = []
    try:
        for dtype in (torch.float32, torch.bfloat16):
            for mb in (int(v) for v in args.sizes_mb.split(",")):
                n = (mb << 20) // (args.T * dtype.itemsize)
                x = (torch.randn(args.T, n) * 1.5 + 0.5).to(dtype)
                times: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(args.rounds):
                    for stream in (False, True):
                        host.STREAM_MIN_BYTES = 0 if stream else -1
                        flush_dst.copy_(flush_src)
                        x.sum()
                        t0 = time.perf_counter()
                        s, _ = entry.forward(x, (None,), (0.5,), spec, need_state=False)
                        s.sum()
                        times[stream].append(time.perf_counter() - t0)
                        del s
                ordinary, streaming = (statistics.median(times[b]) * 1e3 for b in (False, True))
                row = dict(dtype=str(dtype).removeprefix("torch."), output_MB=mb,
                           ordinary_ms=ordinary, stream_ms=streaming,
                           stream_over_ordinary=streaming / ordinary)
                rows.append(row)
                print(f"{row['dtype']:9s} output {mb:4d} MB  ordinary {ordinary:7.3f} ms  "
                      f"streaming {streaming:7.3f} ms  ratio {streaming / ordinary:.2f}",
                      flush=True)
    finally:
        host.STREAM_MIN_BYTES = saved
    crossing = next((r["output_MB"] for r in rows if r["dtype"] == "float32"
                     and r["stream_over_ordinary"] < 1.0), None)
    result = dict(
        benchmark="LIF forward + sum of spikes, ordinary vs non-temporal stores",
        T=args.T, rounds=args.rounds, threads=torch.get_num_threads(),
        suggested_stream_min_mb=crossing,
        device=device_name("cpu"), torch=torch.__version__,
        load_average=os.getloadavg(), rows=rows,
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", args.out)
    return result


if __name__ == "__main__":
    main()
