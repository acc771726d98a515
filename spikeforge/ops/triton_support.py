"""What the Triton backend runs (read by :mod:`spikeforge.ops.dispatch`; no Triton
import): every kernel kind with every reset, surrogate, detach_reset and decay_input, a
leak target ``v_leak`` and the strict tie rule ``fire_strict``, in float32, float64,
bfloat16 and float16; not snnTorch's delayed reset (``reset_delay``). Only LIF's leak
``k`` may be a tensor (PLIF; it receives a gradient); ALIF's and CubaLIF's parameters
are numbers."""

from spikeforge.ops.support import BackendSupport

SUPPORT = BackendSupport(
    backend="triton",
    kinds=("if", "lif", "alif", "cubalif"),
    v_leak=True,
    fire_strict=True,
    tensor_params={"lif": ("k",)},
)
