"""Named constants the CPU kernels share: the layout of the per-call parameter and
option vectors, the kind and reset codes, and numba's compile options.

Kernels compare options with these names (``reset == HARD``), never with positions in
a tuple of names; numba folds the module-level integers into the compiled code as
constants, so a variant compiled with ``reset = HARD`` has no branch left.
"""

from spikeforge.ops.spec import Reset

# Reset codes (spikeforge.ops.spec.Reset as plain ints).
HARD, SOFT, NONE = int(Reset.HARD), int(Reset.SOFT), int(Reset.NONE)

# Kernel kind codes.
KIND_IF, KIND_LIF, KIND_ALIF, KIND_CUBALIF = 0, 1, 2, 3
KIND_CODES = {"if": KIND_IF, "lif": KIND_LIF, "alif": KIND_ALIF, "cubalif": KIND_CUBALIF}

# Indices into the per-call parameter vector (compute dtype). Every constant the loops
# use comes from here so that no float64 literal widens float32 arithmetic. ``K`` is the
# membrane leak (LIF's k, ALIF's k, CubaLIF's k_mem) and ``OMK = 1 - K``; ``RHO`` and
# ``BETA`` are ALIF's adaptation decay and threshold step; ``KSYN`` and ``OMKSYN`` CubaLIF's
# current leak and ``1 - k_syn``; ``REST1``/``REST2`` the rest values of
# the two-state kinds' states (ALIF ``(V_rest, 0)``, CubaLIF ``(0, V_rest)``);
# ``C1 = pi/2 alpha``, ``C2 = alpha/2``; ``VMIN`` the membrane floor ``V_min`` (read only by
# the floored row variants; 0 when the spec has no floor).
(P_K, P_VTH, P_VRESET, P_VREST, P_ALPHA, P_C1, P_C2, P_ONE, P_ZERO, P_OMK, P_INV_ALPHA,
 P_RHO, P_BETA, P_KSYN, P_OMKSYN, P_REST1, P_REST2, P_VMIN) = range(18)
N_PARAMS = 18

# Indices into the per-call option vector (int64). The row functions do not read kind,
# decay, reset and floor from here (they are compiled per variant); the backward drivers
# read them for the gradient factors and the learnable-leak gradient. ``FLOOR``: the spec
# has a membrane floor ``v_min``.
(O_KIND, O_DECAY, O_RESET, O_DETACH, O_HAS_V0, O_HAS_GV, O_NEED_GK, O_NEED_GX, O_NEED_GV0,
 O_STREAM, O_HAS_S2, O_HAS_GS2, O_NEED_GS2, O_FLOOR) = range(14)
N_OPTS = 14
# (``S2`` is the second state of the two-state kinds: ALIF's ``A``, CubaLIF's ``I``.)

# numba options. Row functions are separate (not inlined) functions on purpose: each is
# small enough for LLVM to unswitch its loop-invariant option branches and vectorise the
# loop (inlined into one big kernel they stayed scalar). ``error_model="numpy"`` drops
# Python's zero-division check, which also blocks vectorisation.
ROW = dict(cache=True, error_model="numpy", inline="never", nogil=True)
INLINE = dict(cache=True, error_model="numpy", inline="always")
SERIAL = dict(cache=True, nogil=True, error_model="numpy")
PARALLEL = dict(parallel=True, cache=True, nogil=True, error_model="numpy")
