"""The fused CPU backend (numba): IF, LIF/PLIF, ALIF and CubaLIF over ``[T, N]``; the
membrane floor ``v_min`` for IF/LIF (its own row variants, :mod:`.variants`).

The recurrences of :mod:`spikeforge.ops.spec`, fused over time, with the reference's
operation order in the compute dtype (float32; float64 for float64 input), so spikes
and final states equal the reference bit for bit; gradients follow the same equations
with the surrogate derivative. Training moves five passes over ``[T, N]`` (forward:
read x, write spikes; backward: read x, read grad spikes, write grad x) and saves only
``x`` and the initial state: the backward recomputes the state per chunk of neurons
into a scratch that stays in the last-level cache.

One job per module:

- :mod:`.support`: what the backend runs (read by dispatch; imports no numba).
- :mod:`.layout`: named constants (parameter/option vector layout, kind and reset
  codes, numba options).
- :mod:`.intrinsics`: 16-bit float conversions, typed loads/stores, non-temporal
  stores, the chunk counter, raw addresses and calls by address.
- :mod:`.surrogates`: the surrogate derivatives, defined once for the kernels.
- :mod:`.step`: per-step arithmetic of every kind (forward and backward).
- :mod:`.rows`, :mod:`.rows2`: row loops over a chunk's neurons (IF/LIF four steps
  per pass; ALIF/CubaLIF one).
- :mod:`.variants`: row functions compiled per variant on first use.
- :mod:`.drivers`, :mod:`.drivers2`: the parallel regions and time loops.
- :mod:`.host`: parameter vectors, chunking, threads, non-temporal-store rule, launch
  plans.
- :mod:`.entry`: the raw ``forward``/``backward`` entry points
  (:mod:`spikeforge.ops._autograd`).

Importing this package imports no numba; the kernels load on first use. Compilation
is cached on disk (``cache=True``). Measurements behind the design are in
``benchmarks/README.md`` ("CPU kernel design notes").
"""
