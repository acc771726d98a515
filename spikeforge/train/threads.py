"""How many CPU threads a run takes when the config says ``threads: null``.

On a machine shared with other busy processes, torch's default (one thread per core)
collapses: every parallel region waits at its barrier for the thread the scheduler
gave to the other process, and an epoch of the default run took 65-70 s beside one
busy process on 2 cores against 18-19 s with one thread (issue 19).
:func:`auto_threads` therefore takes the cores that are idle now: it samples the
idle time of the cores this process may run on (``/proc/stat``, restricted to
``os.sched_getaffinity``) over :data:`SAMPLE_SECONDS`, and rounds their sum. Alone
it returns every core, as before. Where ``/proc/stat`` is missing it uses the
one-minute load average instead. ``benchmarks/threads.py`` measures the choice
against every fixed setting (``benchmarks/results/threads_cpu.json``).
"""

from __future__ import annotations

import os
import time

#: Seconds over which idle time is sampled (cost paid once per run).
SAMPLE_SECONDS = 0.2


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


def auto_threads() -> int:
    """Threads for a run: the idle usable cores, rounded, at least 1 (all of them on
    an idle machine)."""
    cores = len(usable_cores())
    return max(1, min(cores, int(idle_cores() + 0.5)))
