"""What the CPU backend runs (read by :mod:`spikeforge.ops.dispatch`; no numba import)."""

from spikeforge.ops.support import BackendSupport

SUPPORT = BackendSupport(
    backend="cpu",
    kinds=("if", "lif", "alif", "cubalif"),
    v_leak=True,
    v_min=("if", "lif"),  # the membrane floor (variants.py); ALIF/CubaLIF take the reference
    tensor_params={"lif": ("k",)},
)
