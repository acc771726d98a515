"""What a fused backend runs: one declaration per backend, read by dispatch.

Each backend states, in one :class:`BackendSupport` value in a light module of its own
(no numba or Triton import, so asking costs nothing), the kernel kinds, dtypes, reset
rules, surrogates and options it implements, and which parameters may be tensors
(which then receive a gradient). :meth:`BackendSupport.unsupported` answers with a
sentence naming the first thing it cannot run, or ``None``; dispatch never guesses a
kind from "not IF".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from spikeforge.ops.spec import PARAM_NAMES, RESET_KINDS, SURROGATE_NAMES, NeuronSpec

ALL_FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class BackendSupport:
    """The neuron kinds and options a backend runs.

    Args:
        backend: the backend's name (``"cpu"``, ``"triton"``).
        kinds: kernel kinds it implements (:data:`~spikeforge.ops.spec.KERNEL_KINDS`).
        dtypes: input dtypes it accepts.
        resets / surrogates: reset rules and surrogate names it implements.
        v_leak / reset_delay / fire_strict / v_min: whether it runs a spec with that
            option set (``v_leak`` or the membrane floor ``v_min`` not ``None``,
            ``reset_delay`` or ``fire_strict`` true): ``True`` for every kind it runs, or
            a tuple of the kinds it runs the option for. The CPU backend runs ``v_min``
            for IF/LIF; a floored neuron of any other kind or backend takes the reference
            under ``"auto"``.
        tensor_params: per kind, the names of parameters that may be tensors (0-d or
            one element; they receive a gradient); every other parameter must be a number.
    """

    backend: str
    kinds: tuple[str, ...]
    dtypes: tuple[torch.dtype, ...] = ALL_FLOAT_DTYPES
    resets: tuple[str, ...] = RESET_KINDS
    surrogates: tuple[str, ...] = SURROGATE_NAMES
    v_leak: bool | tuple[str, ...] = False
    reset_delay: bool | tuple[str, ...] = False
    fire_strict: bool | tuple[str, ...] = False
    v_min: bool | tuple[str, ...] = False
    tensor_params: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def unsupported(self, spec: NeuronSpec, dtype: torch.dtype, params=None) -> str | None:
        """``None`` when this backend runs ``spec`` for inputs of ``dtype`` with
        ``params`` (a tuple, or ``None`` to skip the parameter check), else a sentence
        naming what it cannot run."""
        b = f"backend {self.backend!r}"
        if spec.kind not in self.kinds:
            return f"{b} does not run neuron kind {spec.kind!r} (it runs {self.kinds})"
        if dtype not in self.dtypes:
            return f"{b} does not run dtype {dtype} (it runs {self.dtypes})"
        if spec.reset not in self.resets:
            return f"{b} does not run reset {spec.reset!r} for kind {spec.kind!r}"
        if spec.surrogate not in self.surrogates:
            return f"{b} does not run surrogate {spec.surrogate!r}"
        for opt, on in (("v_leak", spec.v_leak is not None), ("reset_delay", spec.reset_delay),
                        ("fire_strict", spec.fire_strict),
                        ("v_min", getattr(spec, "v_min", None) is not None)):
            runs = getattr(self, opt)
            if on and not (spec.kind in runs if isinstance(runs, tuple) else runs):
                return f"{b} does not run option {opt} (neuron kind {spec.kind!r})"
        if params is None:
            return None
        names = PARAM_NAMES[spec.kind]
        if len(params) != len(names):
            return (f"neuron kind {spec.kind!r} takes params {names}, got {len(params)} "
                    "value(s)")
        tensors_ok = self.tensor_params.get(spec.kind, ())
        for name, p in zip(names, params):
            if isinstance(p, torch.Tensor) and name not in tensors_ok:
                return (f"{b} runs parameter {name!r} of kind {spec.kind!r} only as a number, "
                        "not a tensor")
        return None
