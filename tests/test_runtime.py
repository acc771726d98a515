"""threads=null takes the idle cores; OMP_WAIT_POLICY=PASSIVE only when cores are busy."""

from __future__ import annotations

import sys

import pytest

from spikeforge import runtime


@pytest.fixture
def two_cores(monkeypatch):
    """Two usable cores whose /proc/stat idle share over the sample is ``share[0]``."""
    share = [1.0]
    samples = iter(range(10**6))

    def fake_times(cores):
        i = next(samples)
        total = 1000 * i
        return int(total * share[0]), total

    monkeypatch.setattr(runtime, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(runtime, "_cpu_times", fake_times)
    monkeypatch.setattr(runtime, "SAMPLE_SECONDS", 0.0)
    monkeypatch.setattr(runtime, "_SAMPLE", [])
    monkeypatch.setenv("OMP_WAIT_POLICY", "")  # so that the undo restores the variable
    monkeypatch.delenv("OMP_WAIT_POLICY")
    return share


@pytest.mark.parametrize("idle_share, threads", [(1.0, 2), (0.8, 2), (0.5, 1), (0.2, 1), (0.0, 1)])
def test_auto_threads_takes_the_idle_cores(two_cores, idle_share, threads):
    two_cores[0] = idle_share
    assert runtime.idle_cores() == pytest.approx(2 * idle_share)
    assert runtime.auto_threads() == threads


def test_the_sample_is_reused(two_cores):
    two_cores[0] = 0.5
    assert runtime.auto_threads() == 1
    two_cores[0] = 1.0  # within REUSE_SECONDS the first sample stands
    assert runtime.auto_threads() == 1


def test_passive_wait_only_when_busy_and_before_torch(two_cores, monkeypatch):
    import os

    import torch  # noqa: F401  (as in a process that has loaded it)

    two_cores[0] = 1.0
    assert runtime.prepare_process()["omp_wait_policy"] is None
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setattr(runtime, "_SAMPLE", [])
    two_cores[0] = 0.5
    assert runtime.prepare_process()["omp_wait_policy"] is None  # torch is loaded here
    monkeypatch.setattr(runtime, "_SAMPLE", [])
    monkeypatch.delitem(sys.modules, "torch")
    assert runtime.prepare_process()["omp_wait_policy"] == "PASSIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice stands
    assert runtime.prepare_process()["omp_wait_policy"] == "ACTIVE"
