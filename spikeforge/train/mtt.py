"""Mixed time-step training (MTT): one network, many numbers of time steps.

Du, Wu, Deng, Gu, "Temporal Flexibility in Spiking Neural Networks: Towards
Generalization Across Time Steps and Deployment Friendliness", ICLR 2025
(arXiv 2503.17394). The network is cut into stages; every training iteration
draws ``s`` temporal configurations, each giving every stage its own number of
time steps, runs the batch through the shared weights once per configuration
and back-propagates the sum of the ``s`` losses (one optimizer step). Between
two stages a communication module maps the ``T_in`` output steps of one stage
onto the ``T_out`` input steps of the next with the paper's fixed table
(:func:`communication_table`). A network trained this way keeps its accuracy
across ``T`` and when deployed fully event-driven, with no time step at all.

How this follows the authors' code (``brain-intelligence-lab/
temporal_flexibility_in_SNN``, ``train-time-stepped/models.py`` and
``utils.py``), and where it differs:

- the table is theirs (``table_spwn``): when ``T_out < T_in`` output step ``i``
  sums the input steps ``round(i * T_in / T_out) .. round((i+1) T_in / T_out) - 1``
  (spike counts are preserved); when ``T_out > T_in`` each input step is copied
  to the ``round``-delimited run of output steps it covers;
- their stages are fixed by the model class (a ``TimeTrans`` module at the head
  of each residual block); here any module of any model is a cut point, named in
  the config (``mtt.cut_points``), and the table is applied by a forward
  pre-hook, so no model code changes;
- their time-stepped sampler (``train-time-stepped/utils.py``) draws each
  stage's ``T`` uniformly from ``[min_T, max_T]`` (or multiples of a factor);
  their event-driven one (``train-event-driven/utils.py``, ``UniformTimeSampler``)
  keeps the first stage at the input's ``T`` and draws only the later stages
  from ``[1, T]``. Ours draws from an explicit set (``mtt.time_steps``):
  independently per stage (``sampler: independent``), one ``T`` for all stages
  (``sampler: shared``), or the first stage at the set's largest ``T`` and the
  others independently (``sampler: input_max``, their event-driven sampler);
- static inputs are encoded directly at the first stage's ``T`` (as they repeat
  the image ``in_T`` times); event frames, built at ``data.time_steps``, pass
  through the table into the first stage;
- they re-estimate batch-norm statistics at each evaluation ``T``; we leave batch
  norm alone (the event-driven networks MTT is for have none);
- their event-driven networks fire ``floor(H / V_th)`` spikes per step (sinabs
  ``MultiSpike``; ``model.neuron=if_multi`` here), and are fine-tuned with MTT
  from a network trained at a fixed ``T``; with one spike per step at most, the
  table's sums saturate a stage run at a small ``T`` (``benchmarks/README.md``,
  ``mtt_nmnist_sim.py``, has the measurements).
"""

from __future__ import annotations

import torch
from torch import nn

SAMPLERS = ("independent", "shared", "input_max")


def communication_table(t_in: int, t_out: int) -> list[list[int]]:
    """``table[i]``: the input steps whose sum is output step ``i`` (the paper's
    ``table_spwn``). Every input step appears in exactly one output step when
    ``t_out <= t_in``; when ``t_out > t_in`` every output step copies one input step.
    """
    if t_in < 1 or t_out < 1:
        raise ValueError(f"time steps must be >= 1, got T_in={t_in}, T_out={t_out}")
    eps = 1e-5
    fewer, more, expand = (t_in, t_out, True) if t_in <= t_out else (t_out, t_in, False)
    table: list[list[int]] = []
    last = 0
    for i in range(fewer):
        nearest = round((i + 1) * more / fewer - eps)
        if expand:
            table.extend([i] for _ in range(last, nearest))
        else:
            table.append(list(range(last, nearest)))
        last = nearest
    return table


def communication_matrix(t_in: int, t_out: int, dtype=torch.float32, device=None):
    """The table as a 0/1 matrix ``M`` ``[t_out, t_in]``: ``y[i] = sum_j M[i, j] x[j]``."""
    m = torch.zeros(t_out, t_in, dtype=dtype, device=device)
    for i, js in enumerate(communication_table(t_in, t_out)):
        m[i, js] = 1
    return m


def retime(x: torch.Tensor, t_out: int) -> torch.Tensor:
    """Map time-first ``x`` ``[T_in, ...]`` to ``[t_out, ...]`` by the communication
    table; ``x`` itself when ``T_in == t_out`` (so a configuration equal to the fixed
    ``T`` is exactly standard training)."""
    t_in = x.shape[0]
    if t_in == t_out:
        return x
    m = communication_matrix(t_in, t_out, x.dtype, x.device)
    return (m @ x.reshape(t_in, -1)).reshape(t_out, *x.shape[1:])


class MixedTimeSteps:
    """Cut ``model`` into stages before the named modules and run each stage at its
    own number of time steps (see the module docstring).

    ``time_steps`` holds one ``T`` per stage: stage 0 starts at the model's input,
    stage ``k`` at ``cut_points[k-1]``. Use as a context manager (hooks removed on
    exit) or call :meth:`close`.

    Example::

        mtt = MixedTimeSteps(model, ["features.4"])
        mtt.set([4, 2])        # input stage at T=4, from features.4 on at T=2
        out = model(retime(x, 4))
    """

    def __init__(self, model: nn.Module, cut_points: list[str]) -> None:
        modules = dict(model.named_modules())
        unknown = [c for c in cut_points if c not in modules or c == ""]
        if unknown:
            raise ValueError(
                f"mtt.cut_points names {unknown} that are not modules of the model; "
                f"modules: {', '.join(n for n in modules if n)}"
            )
        self.model = model
        self.cut_points = list(cut_points)
        self.stage_steps: list[int] = [0] * (len(cut_points) + 1)
        self._hooks = [
            modules[name].register_forward_pre_hook(self._hook(k + 1))
            for k, name in enumerate(cut_points)
        ]

    @property
    def n_stages(self) -> int:
        return len(self.cut_points) + 1

    def _hook(self, stage: int):
        def pre(module, args):
            t_out = self.stage_steps[stage]
            if t_out < 1 or not args or not isinstance(args[0], torch.Tensor):
                return None
            return (retime(args[0], t_out), *args[1:])

        return pre

    def set(self, time_steps) -> None:
        """Give each stage its ``T`` (a list, one per stage, or one int for all)."""
        if isinstance(time_steps, int):
            time_steps = [time_steps] * self.n_stages
        if len(time_steps) != self.n_stages:
            raise ValueError(f"need {self.n_stages} time steps (one per stage), got {time_steps}")
        if any(int(t) < 1 for t in time_steps):
            raise ValueError(f"time steps must be >= 1, got {time_steps}")
        self.stage_steps = [int(t) for t in time_steps]

    def sample(self, choices: list[int], sampler: str, generator: torch.Generator) -> list[int]:
        """Draw one temporal configuration: each stage's ``T`` uniformly from
        ``choices`` (``independent``), one ``T`` for every stage (``shared``), or
        stage 0 at ``max(choices)`` and the later stages uniformly (``input_max``)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"mtt.sampler must be one of {SAMPLERS}, got {sampler!r}")
        n = 1 if sampler == "shared" else self.n_stages
        idx = torch.randint(len(choices), (n,), generator=generator).tolist()
        steps = [int(choices[i]) for i in idx]
        if sampler == "input_max":
            steps[0] = max(int(c) for c in choices)
        return steps * self.n_stages if sampler == "shared" else steps

    def close(self) -> None:
        """Remove the pre-hooks: the model runs every module at its input's ``T`` again."""
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def __enter__(self) -> MixedTimeSteps:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
