"""Process-wide CPU settings of a run: how many threads ``threads: null`` takes,
and OpenMP's wait policy.

On a machine shared with other busy processes, torch's default (one thread per core)
collapses: every parallel region waits at its barrier for the thread the scheduler
gave to the other process, and an epoch of the default run took 65-70 s beside one
busy process on 2 cores against 18-19 s with one thread (issue 19).
:func:`auto_threads` therefore takes the cores that are idle now: it samples the
idle time of the cores this process may run on (``/proc/stat``, restricted to
``os.sched_getaffinity``) over :data:`SAMPLE_SECONDS`, and rounds their sum. Alone
it returns every core, as before. Where ``/proc/stat`` is missing it uses the
one-minute load average instead.

When cores are busy at the start, :func:`prepare_process` (the ``spikeforge``
command calls it before torch is imported) also sets ``OMP_WAIT_POLICY=PASSIVE``
unless the user set it: threads that wait at a barrier then sleep instead of spinning
on a core that the other process needs (GNU OpenMP reads the variable once, when
torch loads it). On an idle machine nothing changes, so a run alone is as fast as
before. Load that arrives after the start is not followed.
``benchmarks/threads.py`` measures these defaults against every fixed setting
(``benchmarks/results/threads_cpu.json``).

This module imports nothing heavy (no torch), so the command can call it first.
"""

from __future__ import annotations

import os
import sys
import time

#: Seconds over which idle time is sampled (cost paid once per run).
SAMPLE_SECONDS = 0.2
#: A sample younger than this is reused (the command samples before importing torch,
#: the trainer asks again once the data are loaded).
REUSE_SECONDS = 120.0
_SAMPLE: list[tuple[float, float]] = []  # (time.monotonic() of the sample, idle cores)


def usable_cores() -> list[int]:
    """The CPU ids this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cpu_times(cores: list[int]) -> tuple[int, int] | None:
    """``(idle, total)`` jiffies summed over ``cores`` from ``/proc/stat``."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}" for c in cores}
    idle = total = 0
    for line in lines:
        parts = line.split()
        if parts and parts[0] in wanted:
            values = [int(v) for v in parts[1:]]
            idle += values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total += sum(values[:8])  # guest time is already counted in user
    return (idle, total) if total else None


def idle_cores(sample_seconds: float = SAMPLE_SECONDS) -> float:
    """How many of the usable cores were idle over the last ``sample_seconds``."""
    cores = usable_cores()
    before = _cpu_times(cores)
    if before is None:
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return max(0.0, len(cores) - busy)
    time.sleep(sample_seconds)
    after = _cpu_times(cores)
    d_idle, d_total = after[0] - before[0], after[1] - before[1]
    if d_total <= 0:
        return float(len(cores))
    return len(cores) * d_idle / d_total


def _idle_now() -> float:
    if _SAMPLE and time.monotonic() - _SAMPLE[0][0] < REUSE_SECONDS:
        return _SAMPLE[0][1]
    idle = idle_cores()
    _SAMPLE[:] = [(time.monotonic(), idle)]
    return idle


def auto_threads() -> int:
    """Threads for a run: the idle usable cores, rounded, at least 1 (all of them on
    an idle machine)."""
    cores = len(usable_cores())
    return max(1, min(cores, int(_idle_now() + 0.5)))


def prepare_process() -> dict:
    """Before torch is imported: when some usable cores are busy, set
    ``OMP_WAIT_POLICY=PASSIVE`` (unless already set). Returns what it found and did."""
    cores = len(usable_cores())
    idle = _idle_now()
    busy = idle < cores - 0.5
    policy = os.environ.get("OMP_WAIT_POLICY")
    if busy and policy is None and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = policy = "PASSIVE"
    return {"cores": cores, "idle_cores": idle, "omp_wait_policy": policy}
