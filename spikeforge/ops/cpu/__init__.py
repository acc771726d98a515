"""The fused CPU backend (numba). :mod:`.support` says what it runs; the kernels load
on first use (importing this package imports no numba)."""
