"""What the Triton backend runs (read by :mod:`spikeforge.ops.dispatch`; no Triton
import). Owned by the Triton kernels' author: widen it as kernels land."""

from spikeforge.ops.support import BackendSupport

SUPPORT = BackendSupport(
    backend="triton",
    kinds=("if", "lif"),
    v_leak=True,
    tensor_params={"lif": ("k",)},
)
