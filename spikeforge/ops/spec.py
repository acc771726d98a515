"""The switches every neuron path reads: one definition shared by the reference
and all kernels.

A multi-step neuron over ``[T, N]`` with membrane ``V`` computes, per step ``t``::

    H[t] = V[t-1] + k * (X[t] - (V[t-1] - V_rest))   LIF, decay_input=True
    H[t] = V[t-1] - k * (V[t-1] - V_rest) + X[t]      LIF, decay_input=False
    H[t] = V[t-1] + X[t]                              IF
    S[t] = Heaviside(H[t] - V_th)                     (surrogate gradient in backward)
    V[t] = H[t] * (1 - S[t]) + V_reset * S[t]         reset="hard"
    V[t] = H[t] - V_th * S[t]                         reset="soft"
    V[t] = H[t]                                       reset="none"

with ``k = 1/tau`` (LIF) or ``k = sigmoid(w)`` (PLIF), ``V_rest = V_reset`` for a
hard reset and ``0`` otherwise. With ``detach_reset`` the ``S[t]`` inside the
reset carries no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

RESET_KINDS = ("hard", "soft", "none")
NEURON_KINDS = ("if", "lif")
# Surrogate-gradient names understood by every kernel; the formulas are in
# spikeforge.functional.surrogate (the definitions) and mirrored, per backend,
# in the kernels, which are tested against them.
SURROGATE_NAMES = ("sigmoid", "atan", "fast_sigmoid", "rectangle", "triangle")


@dataclass(frozen=True)
class NeuronSpec:
    """Static options of a multi-step neuron (see the module docstring).

    ``kind``: ``"if"`` or ``"lif"``; ``v_threshold``: firing threshold ``V_th``;
    ``v_reset``: value a hard reset sets (ignored by soft/none resets, where the
    rest potential is 0); ``reset``: ``"hard"``, ``"soft"`` or ``"none"``;
    ``detach_reset``: no gradient through the reset; ``decay_input``: whether the
    leak factor also scales the input; ``surrogate``/``alpha``: the surrogate
    gradient name and its width/sharpness parameter.
    """

    kind: str = "lif"
    v_threshold: float = 1.0
    v_reset: float = 0.0
    reset: str = "hard"
    detach_reset: bool = False
    decay_input: bool = True
    surrogate: str = "atan"
    alpha: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in NEURON_KINDS:
            raise ValueError(f"NeuronSpec.kind must be one of {NEURON_KINDS}, got {self.kind!r}")
        if self.reset not in RESET_KINDS:
            raise ValueError(f"NeuronSpec.reset must be one of {RESET_KINDS}, got {self.reset!r}")
        if self.surrogate not in SURROGATE_NAMES:
            raise ValueError(
                f"NeuronSpec.surrogate must be one of {SURROGATE_NAMES}, got {self.surrogate!r}"
            )

    @property
    def v_rest(self) -> float:
        """Potential the leak pulls towards: ``v_reset`` for a hard reset, else 0."""
        return self.v_reset if self.reset == "hard" else 0.0

    @property
    def surrogate_id(self) -> int:
        """Index of the surrogate in :data:`SURROGATE_NAMES` (used by kernels)."""
        return SURROGATE_NAMES.index(self.surrogate)

    @property
    def reset_id(self) -> int:
        """Index of the reset kind in :data:`RESET_KINDS` (used by kernels)."""
        return RESET_KINDS.index(self.reset)
