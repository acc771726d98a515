"""A time-step-free, fully event-driven simulator of trained feed-forward SNNs.

Asynchronous neuromorphic chips have no clock: each spike is processed when it
arrives, and only the neurons it reaches are updated. :class:`EventDrivenSimulator`
runs a network lowered by :func:`spikeforge.deploy.lower_model` (Linear / Conv /
average or max pooling / flatten with IF or LIF neurons, batch norm folded into
the weights) that way, in two modes:

- ``mode="events"`` (no clock): input events ``(t, index)`` in time order; an
  event reaching a layer updates only its targets; a LIF neuron leaks exactly
  between the updates it receives, with the per-step factor ``1 - k`` of the
  trained network turned into continuous time by the step duration ``dt``:
  ``V(t') = V_rest + (V(t) - V_rest) (1 - k)^((t' - t) / dt)``; an input spike
  adds ``w`` (``k w`` with ``decay_input``); a neuron at or above threshold fires
  at once (several times with a soft reset if its membrane stays above
  threshold) and its spike is delivered depth-first, or after ``delay``.
  Neurons of layers with a bias (e.g. folded batch norm) would need a clock to
  integrate it; such a network is refused in this mode (train with
  ``bias=False`` and no batch norm, as event-driven chips expect) -- except the
  readout, whose bias is added once per ``dt`` of the recording. A membrane
  floor (``v_min``, sinabs ``min_v_mem``, Speck's ``threshold_low``) clips the
  membrane after every delivered event, as the chip does per synaptic operation.
- ``mode="grid"``: the same machinery with events batched on the time grid and
  the discrete leak; reproduces the clock-driven network's spikes exactly (a
  property test checks it on random networks), the floor applied after each
  step's summed input as in training.

The decision is the readout's argmax (its output summed over the sample) or,
without a readout, the output neuron with the most spikes. Each run reports the
events processed (input events and spikes delivered), the synaptic operations
(one per target an event reaches) and the latency to the decision (the time of
the last change of the leading class).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from spikeforge.data.frames import frame_windows
from spikeforge.deploy import kernels
from spikeforge.deploy.lower import DeploymentError, LoweredNetwork

MODES = ("events", "grid")


@dataclass
class SampleResult:
    """One sample's run: ``prediction``, ``scores`` (readout sums or output spike
    counts), ``out_counts`` (spikes of the last neuron layer; grid mode: also
    ``raster`` ``[T, n]``, its spikes per step), ``sops``,
    ``events`` (input events plus spikes delivered), ``decision_time`` (step in
    grid mode, the events' time unit otherwise; -1 when nothing reached the output)."""

    prediction: int
    scores: np.ndarray
    out_counts: np.ndarray
    sops: int
    events: int
    decision_time: float
    raster: np.ndarray | None = None


@dataclass
class DatasetResult:
    """Accuracy and costs over a dataset, means per sample."""

    accuracy: float
    samples: int
    sops_per_sample: float
    events_per_sample: float
    events_per_second: float
    mean_decision_time: float
    mode: str
    seconds: float
    per_sample: list[SampleResult] = field(default_factory=list, repr=False)


class EventDrivenSimulator:
    """Run a :class:`~spikeforge.deploy.lower.LoweredNetwork` event by event.

    Args:
        net: the lowered network (``lower_model(model, input_shape)``).
        mode: ``"events"`` (no clock) or ``"grid"`` (exact clock-driven equivalent).
        delay: synaptic delay in the events' time unit (``"events"`` mode; 0 =
            depth-first delivery at the same instant).

    Example::

        net = lower_model(trained_model, (2, 34, 34))
        sim = EventDrivenSimulator(net, mode="events")
        result = sim.run_sample(times_us, indices, dt=window_us)
    """

    def __init__(self, net: LoweredNetwork, mode: str = "events", delay: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        self.net, self.mode, self.delay = net, mode, float(delay)
        for st in net.stages:
            n = st.neurons
            if n is not None and n.v_rest >= n.v_threshold:
                raise DeploymentError(
                    f"layer {n.name!r}: rest potential {n.v_rest} >= threshold {n.v_threshold} "
                    "fires with no input at all; not deployable event-driven"
                )
            if mode == "events" and n is not None and np.any(st.bias != 0):
                raise DeploymentError(
                    f"layer {n.name!r} receives a bias (from {', '.join(st.names)}: a Linear/"
                    "Conv bias or folded batch norm); mode='events' has no clock to integrate "
                    "it: train the layers before neurons with bias=False and no batch norm, "
                    "or use mode='grid'"
                )
        self._pack()

    def _pack(self) -> None:
        stages = self.net.stages
        kinds, rowptr, row_off, cols, vals, out_off, bias, dense = [], [], [], [], [], [0], [], []
        prm = {k: [] for k in ("is_lif", "k", "decay_input", "v_th", "v_reset", "v_rest", "reset",
                               "strict", "v_min")}
        multi = []
        base = 0
        for st in stages:
            if st.pool is not None:
                kinds.append(kernels.OR_POOL)
                ok = st.pool >= 0
                ptr = np.concatenate([[0], np.cumsum(ok)]).astype(np.int64)
                c = st.pool[ok].astype(np.int64)
                w = np.ones(len(c))
                b = np.zeros(st.n_out)
            else:
                kinds.append(kernels.READOUT if st.neurons is None else kernels.NEURONS)
                ptr = st.weight.indptr.astype(np.int64)
                c = st.weight.indices.astype(np.int64)
                w = st.weight.data.astype(np.float64)
                b = st.bias.astype(np.float64)
            row_off.append(sum(len(p) for p in rowptr))
            rowptr.append(ptr + base)
            cols.append(c)
            vals.append(w)
            base += len(c)
            out_off.append(out_off[-1] + st.n_out)
            bias.append(b)
            n = st.neurons
            # an initial membrane at threshold fires with no input: update the layer
            dense.append(bool(n is not None and (np.any(b != 0) or (
                n.v_init is not None and np.any(n.v_init >= n.v_threshold)))))
            prm["is_lif"].append(bool(n is not None and n.is_lif))
            prm["k"].append(n.k if n else 0.0)
            prm["decay_input"].append(bool(n.decay_input) if n else False)
            prm["v_th"].append(n.v_threshold if n else np.inf)
            prm["v_reset"].append(n.v_reset if n else 0.0)
            prm["v_rest"].append(n.v_rest if n else 0.0)
            prm["reset"].append(kernels.__dict__[n.reset.upper()] if n else kernels.NONE)
            prm["strict"].append(bool(n.fire_strict) if n else False)
            prm["v_min"].append(-np.inf if n is None or n.v_min is None else n.v_min)
            multi.append(bool(n is not None and n.multi_spike))
        self._kind = np.array(kinds, np.int64)
        self._rowptr = np.concatenate(rowptr).astype(np.int64)
        self._row_off = np.array(row_off, np.int64)
        self._cols = np.concatenate(cols).astype(np.int64)
        self._vals = np.concatenate(vals).astype(np.float64)
        self._out_off = np.array(out_off, np.int64)
        self._bias = np.concatenate(bias).astype(np.float64)
        self._dense = np.array(dense, np.bool_)
        self._p = (
            np.array(prm["is_lif"], np.bool_),
            np.array(prm["k"], np.float64),
            np.array(prm["decay_input"], np.bool_),
            np.array(prm["v_th"], np.float64),
            np.array(prm["v_reset"], np.float64),
            np.array(prm["v_rest"], np.float64),
            np.array(prm["reset"], np.int64),
            np.array(prm["strict"], np.bool_),
            np.array(prm["v_min"], np.float64),
        )
        self._multi = np.array(multi, np.bool_)
        self._v0 = np.concatenate(
            [np.full(st.n_out, st.neurons.v_rest) if st.neurons and st.neurons.v_init is None
             else st.neurons.v_init.astype(np.float64) if st.neurons else np.zeros(st.n_out)
             for st in stages]
        )
        last_neurons = [i for i, st in enumerate(stages) if st.neurons is not None][-1]
        self._n_out_spk = stages[last_neurons].n_out
        self.n_classes = stages[-1].n_out

    def _state(self):
        n_total = self._out_off[-1]
        return (
            self._v0.copy(),
            np.full(n_total, -1 if self.mode == "grid" else 0, np.int64 if self.mode == "grid"
                    else np.float64),
            np.zeros(self.n_classes),
            np.zeros(self._n_out_spk, np.int64),
            np.zeros(3, np.int64),
        )

    def run_sample(
        self, times, indices, n_steps: int | None = None, dt: float = 1.0
    ) -> SampleResult:
        """Run one sample given its input events: ``times`` (sorted; grid mode:
        integer steps ``< n_steps``) and flat input ``indices`` (into
        ``input_shape`` in C order). ``dt``: duration of one trained time step in
        the unit of ``times`` (events mode). For a spiking output the last neuron
        stage's spike counts are the scores."""
        idx = np.ascontiguousarray(indices, np.int64)
        n_in = int(np.prod(self.net.input_shape))
        if len(idx) and (idx.min() < 0 or idx.max() >= n_in):
            raise ValueError(f"input indices must lie in [0, {n_in}) for input shape "
                             f"{self.net.input_shape}")
        v, t_last, acc, out_counts, counters = self._state()
        common = (self._kind, self._rowptr, self._row_off, self._cols, self._vals, self._out_off)
        if self.mode == "grid":
            steps = np.ascontiguousarray(times, np.int64)
            if n_steps is None:
                n_steps = int(steps.max()) + 1 if len(steps) else 1
            if len(steps) and (np.any(np.diff(steps) < 0) or steps.min() < 0 or
                               steps.max() >= n_steps):
                raise ValueError("grid-mode event steps must be sorted and in [0, n_steps)")
            raster = np.zeros((int(n_steps), self._n_out_spk), np.int8)
            when = kernels.run_grid(steps, idx, int(n_steps), *common, self._bias, self._dense,
                                    *self._p, self._multi, v, t_last, acc, out_counts, counters,
                                    raster)
        else:
            tt = np.ascontiguousarray(times, np.float64)
            if len(tt) and np.any(np.diff(tt) < 0):
                raise ValueError("event times must be sorted ascending")
            if not dt > 0:
                raise ValueError(f"dt must be > 0, got {dt}")
            when = kernels.run_events(tt, idx, float(dt), self.delay, *common, *self._p,
                                      v, t_last, acc, out_counts, counters)
            if self.net.readout and len(tt):
                span = (tt[-1] - tt[0]) / dt if len(tt) > 1 else 1.0
                acc += self._bias[self._out_off[-2]:] * max(span, 1.0)
        scores = acc if self.net.readout else out_counts.astype(np.float64)
        return SampleResult(
            raster=raster if self.mode == "grid" else None,
            prediction=int(np.argmax(scores)),
            scores=scores,
            out_counts=out_counts,
            sops=int(counters[kernels.SOPS]),
            events=int(counters[kernels.EVENTS]),
            decision_time=float(when),
        )


def vision_indices(events: np.ndarray, input_shape) -> np.ndarray:
    """Flat input index ``p*H*W + y*W + x`` of vision events for an input ``[P, H, W]``
    (the layout of the frames the network was trained on)."""
    p_, h, w = input_shape
    if events["p"].max(initial=0) >= p_:
        raise ValueError(f"event polarity {int(events['p'].max())} does not fit {p_} channels")
    return (events["p"].astype(np.int64) * h + events["y"]) * w + events["x"]


def grid_steps(t: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Step of each event when binned like the frames (``frame_windows`` with
    ``n_time_bins``): returns ``(keep, steps)`` (events past the last bin are dropped,
    as the frames drop them)."""
    starts, ends = frame_windows(t, n_time_bins=n_steps)
    steps = np.full(len(t), -1, np.int64)
    for b in range(n_steps):
        steps[starts[b]:ends[b]] = b
    keep = steps >= 0
    return keep, steps[keep]


def simulate_dataset(
    sim: EventDrivenSimulator,
    dataset,
    time_steps: int,
    limit: int | None = None,
    keep_samples: bool = False,
) -> DatasetResult:
    """Run every sample of a raw-event dataset (``spikeforge.data.get_raw_events``)
    through ``sim``. ``time_steps`` is the trained network's ``T``: in grid mode the
    events are binned into that many steps like the frames; in events mode one
    step lasts ``(t_last - t_first) // T`` of the recording (the frames' bin)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    correct, sops, events, latency, results = 0, 0, 0, 0.0, []
    t0 = time.perf_counter()
    for i in range(n):
        ev, label = dataset[i]
        if len(ev) == 0:
            res = SampleResult(0, np.zeros(sim.n_classes), np.zeros(0, np.int64), 0, 0, -1.0)
        else:
            idx = vision_indices(ev, sim.net.input_shape)
            t = ev["t"]
            if sim.mode == "grid":
                keep, steps = grid_steps(t, time_steps)
                res = sim.run_sample(steps, idx[keep], n_steps=time_steps)
            else:
                dt = max(float((t[-1] - t[0]) // time_steps), 1.0)
                res = sim.run_sample(t - t[0], idx, dt=dt)
                res.decision_time = res.decision_time / dt if res.decision_time >= 0 else -1.0
        correct += int(res.prediction == int(label))
        sops += res.sops
        events += res.events
        latency += max(res.decision_time, 0.0)
        if keep_samples:
            results.append(res)
    secs = time.perf_counter() - t0
    return DatasetResult(
        accuracy=correct / max(n, 1),
        samples=n,
        sops_per_sample=sops / max(n, 1),
        events_per_sample=events / max(n, 1),
        events_per_second=events / secs if secs > 0 else 0.0,
        mean_decision_time=latency / max(n, 1),
        mode=sim.mode,
        seconds=secs,
        per_sample=results,
    )
