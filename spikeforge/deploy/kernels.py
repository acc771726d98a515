"""numba loops of the event-driven simulator (:mod:`spikeforge.deploy.event_driven`).

A lowered network (:mod:`spikeforge.deploy.lower`) is packed into flat arrays:
stage ``l`` has kind ``KIND[l]`` (:data:`NEURONS`, :data:`READOUT` or
:data:`OR_POOL`), a CSR block whose row ``i`` (the targets of input ``i``) spans
``cols/vals[rowptr[row_off[l] + i] : rowptr[row_off[l] + i + 1]]``, and its
outputs at ``out_off[l] .. out_off[l + 1]`` of the state arrays. Work is done
only where a spike arrives: the cost is the number of synaptic events, not
neurons x time steps.

Two loops:

- :func:`run_grid`: events on a time grid, batched per step and layer, the
  discrete update of :mod:`spikeforge.functional.neuron` applied lazily (a
  neuron is brought up to date, step by step with zero input, only when input
  reaches it). Equal to the clock-driven network spike for spike, given that a
  neuron with zero input can only fire on the step right after an update
  (``V_rest < V_th``), which is tracked. A multi-spike layer fires
  ``floor(H / V_th)`` spikes in a step, delivered as that many events. A membrane
  floor ``v_min`` (``-inf``: none) clips after each step's summed input and reset,
  the zero-input steps of the catch-up included: as the clock-driven neuron does.
- :func:`run_events`: no clock. Events in time order; each one updates only the
  neurons it projects to, which leak exactly (``V_rest + (V - V_rest) d^(dt'/dt)``,
  ``d = 1 - k`` the per-step factor) since their last update; a neuron that
  crosses threshold fires at once and its spike is delivered depth-first
  (``delay == 0``, as on asynchronous chips) or ``delay`` later. The membrane
  floor clips after each delivered event (after its spikes and resets), as an
  asynchronous chip clips its state at ``threshold_low`` per synaptic operation:
  an inhibitory event is cut at the floor at once, where a clock-driven step would
  first sum it with the excitatory input of the same step.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit

NEURONS, READOUT, OR_POOL = 0, 1, 2
HARD, SOFT, NONE = 0, 1, 2
#: counters[...] slots
SOPS, EVENTS, OUT_SPIKES = 0, 1, 2
#: A neuron fed by one instant can fire at most this many times at once (soft reset).
MAX_BURST = 1000


@njit(cache=True, inline="always")
def _charge(v, x, is_lif, k, decay_input, v_rest):
    # Same operation order as functional.neuron.charge: float64 results agree bit for bit.
    if not is_lif:
        return v + x
    if decay_input:
        return v + k * (x - (v - v_rest))
    return v - k * (v - v_rest) + x


@njit(cache=True, inline="always")
def _reset(h, reset, v_th, v_reset):
    if reset == HARD:
        return v_reset
    if reset == SOFT:
        return h - v_th
    return h


@njit(cache=True, inline="always")
def _fires(h, v_th, strict):
    # strict: NIR, snnTorch and Norse fire at H > V_th; spikeforge and SpikingJelly at >=.
    return h > v_th if strict else h >= v_th


@njit(cache=True)
def _argmax_first(a):
    best = 0
    for j in range(1, a.shape[0]):
        if a[j] > a[best]:
            best = j
    return best


@njit(cache=True)
def run_grid(
    ev_step, ev_idx, n_steps, kind, rowptr, row_off, cols, vals, out_off, bias, dense,
    is_lif, k, decay_input, v_th, v_reset, v_rest, reset, strict, v_min, multi, v, t_last,
    acc, out_counts, counters, out_raster,
):
    """Run one sample on the grid: ``ev_step``/``ev_idx`` (sorted by step) are the
    input events. ``v``/``t_last`` hold the state (rest / -1 on entry); ``acc``
    receives the readout's output summed over the steps, ``out_counts`` the spikes
    of the last neuron stage and ``out_raster[t, j]`` its spikes per step. Returns
    the step of the last change of the decision (the readout's argmax, else the
    most-spiking output)."""
    n_stages = kind.shape[0]
    n_total = v.shape[0]
    xbuf = np.zeros(n_total)
    mark = np.zeros(n_total, np.bool_)
    pend_idx = np.empty(n_total, np.int64)  # per stage: neurons due to fire with no input
    pend_cnt = np.zeros(n_stages, np.int64)
    touched = np.empty(n_total, np.int64)
    active = np.empty(max(ev_idx.shape[0], n_total), np.int64)
    nxt = np.empty(max(ev_idx.shape[0], n_total), np.int64)
    # spikes each entry of active/nxt stands for (> 1: a multi-spike neuron's count)
    act_n = np.ones(max(ev_idx.shape[0], n_total), np.int64)
    nxt_n = np.ones(max(ev_idx.shape[0], n_total), np.int64)
    last_stage = n_stages - 1
    last_neuron_stage = 0
    for l in range(n_stages):
        if kind[l] == NEURONS:
            last_neuron_stage = l
    decision, decided_at = -1, -1
    e = 0
    for t in range(n_steps):
        n_act = 0
        while e < ev_step.shape[0] and ev_step[e] == t:
            active[n_act] = ev_idx[e]
            act_n[n_act] = 1
            n_act += 1
            e += 1
        counters[EVENTS] += n_act
        for l in range(n_stages):
            o = out_off[l]
            n_out = out_off[l + 1] - o
            n_t = 0
            for a in range(n_act):
                r = row_off[l] + active[a]
                m_a = act_n[a]
                for p in range(rowptr[r], rowptr[r + 1]):
                    j = cols[p]
                    if not mark[o + j]:
                        mark[o + j] = True
                        touched[n_t] = j
                        n_t += 1
                    xbuf[o + j] += vals[p] if m_a == 1 else vals[p] * m_a
                    counters[SOPS] += m_a
            n_nxt = 0
            n_spk = 0
            if kind[l] == OR_POOL:
                for a in range(n_t):
                    j = touched[a]
                    mark[o + j] = False
                    xbuf[o + j] = 0.0
                    nxt[n_nxt] = j
                    nxt_n[n_nxt] = 1
                    n_nxt += 1
                    n_spk += 1
            elif kind[l] == READOUT:
                for a in range(n_t):
                    j = touched[a]
                    mark[o + j] = False
                    acc[j] += xbuf[o + j]
                    xbuf[o + j] = 0.0
                for j in range(n_out):  # the readout's bias arrives every step
                    acc[j] += bias[o + j]
                c = _argmax_first(acc)
                if c != decision:
                    decision, decided_at = c, t
            else:
                # Dense stages (a bias reaches every neuron every step) update all;
                # the others only the neurons touched now or due to fire with no input.
                if dense[l]:
                    n_t = 0
                    for j in range(n_out):
                        touched[n_t] = j
                        n_t += 1
                else:
                    for a in range(pend_cnt[l]):
                        j = pend_idx[o + a]
                        if not mark[o + j]:
                            mark[o + j] = True
                            touched[n_t] = j
                            n_t += 1
                pend_cnt[l] = 0
                for a in range(n_t):
                    j = touched[a]
                    g = o + j
                    x = xbuf[g] + bias[g]
                    xbuf[g] = 0.0
                    mark[g] = False
                    vv = v[g]
                    if is_lif[l] and not dense[l]:
                        for _ in range(t_last[g] + 1, t):
                            vv = max(_charge(vv, 0.0, True, k[l], decay_input[l], v_rest[l]),
                                     v_min[l])
                    h = _charge(vv, x, is_lif[l], k[l], decay_input[l], v_rest[l])
                    if _fires(h, v_th[l], strict[l]):
                        cnt = 1
                        if multi[l]:  # the clock-driven expression: floor(H / V_th) spikes
                            cnt = int(np.floor(h / v_th[l]))
                            vv = h - v_th[l] * cnt
                        else:
                            vv = _reset(h, reset[l], v_th[l], v_reset[l])
                        nxt[n_nxt] = j
                        nxt_n[n_nxt] = cnt
                        n_nxt += 1
                        n_spk += cnt
                        if l == last_neuron_stage:
                            out_counts[j] += cnt
                            out_raster[t, j] = min(cnt, 127)
                    else:
                        vv = h
                    vv = max(vv, v_min[l])  # the membrane floor (-inf: none)
                    v[g] = vv
                    t_last[g] = t
                    nh = _charge(vv, 0.0, is_lif[l], k[l], decay_input[l], v_rest[l])
                    if _fires(nh, v_th[l], strict[l]) and not dense[l]:
                        pend_idx[o + pend_cnt[l]] = j
                        pend_cnt[l] += 1
                if l == last_stage and n_nxt > 0:  # no readout: the output spikes decide
                    c = _argmax_first(out_counts)
                    if c != decision:
                        decision, decided_at = c, t
            counters[EVENTS] += n_spk if l < last_stage else 0
            for a in range(n_nxt):
                active[a] = nxt[a]
                act_n[a] = nxt_n[a]
            n_act = n_nxt
    return decided_at


@njit(cache=True)
def run_events(
    ev_time, ev_idx, dt, delay, kind, rowptr, row_off, cols, vals, out_off,
    is_lif, k, decay_input, v_th, v_reset, v_rest, reset, strict, v_min, v, t_last, acc,
    out_counts, counters,
):
    """Run one sample without a clock (see the module docstring): ``ev_time``
    (sorted) and ``ev_idx`` are the input events, ``dt`` the duration of one time
    step of the trained network (sets the leak per unit of time), ``delay`` the
    synaptic delay (0: depth-first, at once). Returns the time of the last change
    of the decision."""
    n_stages = kind.shape[0]
    last_stage = n_stages - 1
    last_neuron_stage = 0
    for l in range(n_stages):
        if kind[l] == NEURONS:
            last_neuron_stage = l
    decision, decided_at = -1, -1.0
    # Pending deliveries: a stack (delay 0) or a heap keyed by (time, sequence).
    stack_l = np.empty(1024, np.int64)
    stack_i = np.empty(1024, np.int64)
    heap = [(0.0, 0, 0, 0)]
    heap.pop()
    seq = 0
    pool_time = np.full(v.shape[0], -1.0)
    e = 0
    n_in = ev_time.shape[0]
    while e < n_in or len(heap) > 0:
        if len(heap) > 0 and (e >= n_in or heap[0][0] <= ev_time[e]):
            t, _, l0, i0 = heapq.heappop(heap)
        else:
            t, l0, i0 = ev_time[e], 0, ev_idx[e]
            e += 1
        sp = 0
        stack_l[0], stack_i[0] = l0, i0
        sp = 1
        while sp > 0:
            sp -= 1
            l, i = stack_l[sp], stack_i[sp]
            counters[EVENTS] += 1
            o = out_off[l]
            r = row_off[l] + i
            for p in range(rowptr[r], rowptr[r + 1]):
                j = cols[p]
                g = o + j
                counters[SOPS] += 1
                fired = 0
                if kind[l] == READOUT:
                    acc[j] += vals[p]
                    c = _argmax_first(acc)
                    if c != decision:
                        decision, decided_at = c, t
                    continue
                if kind[l] == OR_POOL:
                    if pool_time[g] != t:  # OR: one spike per window per instant
                        pool_time[g] = t
                        fired = 1
                else:
                    vv = v[g]
                    if is_lif[l] and t > t_last[g]:
                        vv = v_rest[l] + (vv - v_rest[l]) * (1.0 - k[l]) ** ((t - t_last[g]) / dt)
                    t_last[g] = t
                    vv += (k[l] if (is_lif[l] and decay_input[l]) else 1.0) * vals[p]
                    while _fires(vv, v_th[l], strict[l]) and fired < MAX_BURST:
                        fired += 1
                        vv = _reset(vv, reset[l], v_th[l], v_reset[l])
                        if reset[l] != SOFT:
                            break
                    v[g] = max(vv, v_min[l])  # floor after every event (-inf: none)
                if fired == 0:
                    continue
                if l == last_neuron_stage:
                    out_counts[j] += fired
                if l == last_stage:  # no readout: the output spikes decide
                    c = _argmax_first(out_counts)
                    if c != decision:
                        decision, decided_at = c, t
                    continue
                for _ in range(fired):
                    if delay > 0:
                        seq += 1
                        heapq.heappush(heap, (t + delay, seq, l + 1, j))
                    else:
                        if sp == stack_l.shape[0]:
                            stack_l = np.concatenate((stack_l, np.empty_like(stack_l)))
                            stack_i = np.concatenate((stack_i, np.empty_like(stack_i)))
                        stack_l[sp], stack_i[sp] = l + 1, j
                        sp += 1
    return decided_at
