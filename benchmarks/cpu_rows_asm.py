"""Dump the assembly of some CPU-kernel row variants, to compare two trees' rows (the
membrane floor's claim: the unfloored rows compile to the same code as before it).

Compiles into a fresh numba cache (``inspect_asm`` needs a compile, not a cache load)
and writes one ``<row name>.s`` per row under ``--out``, numba's per-process symbol
counter (``B<n>v<n>B`` in mangled names) replaced by ``BvB``. Compare two trees::

    d=$(mktemp -d); NUMBA_CACHE_DIR=$d/c0 PYTHONPATH=/work/main \\
        python benchmarks/cpu_rows_asm.py --out $d/before
    NUMBA_CACHE_DIR=$d/c1 PYTHONPATH=$PWD python benchmarks/cpu_rows_asm.py --out $d/after
    diff -r $d/before $d/after && echo same

Rows: LIF hard (decay_input) float32, IF soft bfloat16, LIF none (no decay_input)
float16: forward, recompute, and the atan gradient rows of each format.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from spikeforge.ops.cpu import variants as V
from spikeforge.ops.spec import NeuronSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for spec, fmt in ((NeuronSpec(kind="lif", reset="hard"), "float32"),
                      (NeuronSpec(kind="if", reset="soft"), "bfloat16"),
                      (NeuronSpec(kind="lif", reset="none", decay_input=False), "float16")):
        key, sigs = V._form_key(spec), V._row_sigs(fmt)
        for rows in (V._form_rows(key, fmt), V._charge_rows(key, fmt),
                     V._grad_rows(spec.surrogate_id, fmt)):
            for role, disp in rows.items():
                if role.endswith("_addr"):
                    continue
                asm = re.sub(r"B\d+v\d+B", "BvB", disp.inspect_asm(sigs[role].args))
                (out / f"{disp.py_func.__name__}.s").write_text(asm)
                print(disp.py_func.__name__, len(asm))


if __name__ == "__main__":
    main()
