"""Triton kernels of the fused neurons, one file per job: :mod:`.arith` (per-step
arithmetic and the surrogate formulas), :mod:`.jit` (jitting, autotuning, launching),
:mod:`.lif` (IF/LIF/PLIF), :mod:`.alif` (adaptive threshold), :mod:`.cubalif`
(current-based LIF). The backend's entry points are in
:mod:`spikeforge.ops.triton_neuron`, what it runs in :mod:`spikeforge.ops.triton_support`.
"""
