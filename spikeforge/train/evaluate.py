"""Evaluate a finished run at other numbers of time steps.

``evaluate_time_steps(run_dir, [1, 2, 4, 8, 16])`` rebuilds the run's model with
its final weights once per ``T``: static inputs are encoded over ``T`` steps,
event datasets are re-binned from their events into ``T`` frames (the dataset
is rebuilt with ``data.time_steps = T``), and a model trained with mixed
time-step training runs every stage at ``T``. Returns accuracy and mean firing
rate per ``T``, what ``spikeforge eval RUN_DIR --time-steps ...`` prints.
"""

from __future__ import annotations

import copy

from spikeforge.train.engine import Trainer, load_run_config, load_trained


def evaluate_time_steps(run_dir: str, time_steps: list[int]) -> list[dict]:
    """Test accuracy and mean firing rate of ``run_dir``'s final model at each ``T``."""
    if not time_steps or any(int(t) < 1 for t in time_steps):
        raise ValueError(f"time steps must be integers >= 1, got {time_steps}")
    state = load_trained(run_dir).model.state_dict()
    cfg = load_run_config(run_dir)
    rows = []
    for t in time_steps:
        c = copy.deepcopy(cfg)
        c.data.time_steps = int(t)
        trainer = Trainer(c, run_dir)
        trainer.model.load_state_dict(state)
        r = trainer.evaluate()
        rows.append(
            {"time_steps": int(t), "accuracy": r.accuracy, "mean_firing_rate": r.mean_firing_rate}
        )
    return rows
