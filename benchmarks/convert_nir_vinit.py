"""What NIR consumers that start every membrane at 0 lose on a converted network.

Trains a small ReLU MLP (64-96-10) on the embedded 8x8 digits, converts it (no and
advanced calibration), exports it to NIR and runs the imported graph on the test split
with the initial membranes restored (spikeforge's importer) and set to 0 (what every
other NIR consumer does, NIR having no initial state). Writes
benchmarks/results/convert_nir_vinit.json.

    PYTHONPATH=. python benchmarks/convert_nir_vinit.py
"""

import json
import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.convert import convert
from spikeforge.data import get_dataset
from spikeforge.deploy import NIRExportWarning, from_nir, to_nir


def main() -> dict:
    b = get_dataset("digits8x8", None)
    (xtr, ytr), (xte, yte) = b.train.tensors, b.test.tensors
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Flatten(), nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10))
    opt = torch.optim.Adam(ann.parameters(), lr=0.01)
    for _ in range(200):
        idx = torch.randint(len(xtr), (128,))
        loss = F.cross_entropy(ann(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    ann.eval()
    with torch.no_grad():
        out = {"ann": float((ann(xte).argmax(1) == yte).float().mean()), "runs": []}
    for t in (4, 8, 32):
        for cal in ("none", "advanced"):
            snn = convert(ann, xtr[:256], time_steps=t, calibration=cal)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NIRExportWarning)
                net = from_nir(to_nir(snn, xtr.shape[1:]))
            xs = xte.unsqueeze(0).expand(t, *xte.shape)
            row = {"T": t, "calibration": cal}
            with torch.no_grad():
                row["converted"] = float((snn(xs).mean(0).argmax(1) == yte).float().mean())
                row["nir_with_v_init"] = float((net(xs).mean(0).argmax(1) == yte).float().mean())
                for n in net.initial_nodes:
                    net.initial_membrane(n).zero_()
                row["nir_v_init_0"] = float((net(xs).mean(0).argmax(1) == yte).float().mean())
            out["runs"].append(row)
            print(row)
    os.makedirs("benchmarks/results", exist_ok=True)
    with open("benchmarks/results/convert_nir_vinit.json", "w") as f:
        json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
