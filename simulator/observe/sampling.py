"""Trace sampling (head and tail) and a bounded log-shipping buffer: which records survive.

Head sampling is OpenTelemetry's ``TraceIdRatioBased`` sampler (OpenTelemetry specification, "Trace SDK:
Sampling"; opentelemetry.io "Sampling"): the decision is made when the trace starts, from the trace id
alone, so every service reaches the same one and nothing about the outcome is known. As in the spec's
consistent-probability form, the trace id's lowest 56 bits are compared with ``ratio x 2^56``.

Tail sampling is the OpenTelemetry Collector's ``tail_sampling`` processor (opentelemetry-collector-
contrib, processor/tailsamplingprocessor): spans are held until ``decision_wait`` after a trace's first
span, then policies decide — here ``status_code`` (keep ERROR), ``latency`` (keep traces slower than a
threshold) and ``probabilistic`` for the rest, under a ``rate_limiting`` budget of kept traces per
second (what storage costs).

:class:`LogBuffer` is a shipper's bounded buffer between producers and a central pipeline that drains
``drain_rate`` lines per second; when full it applies back-pressure (the producer waits: nothing is
lost, lines are late), drops the newest line (tail drop) or drops the oldest one (Fluent Bit's and
Vector's buffer options ``when_full: block | drop_newest``; ring buffers drop the oldest).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .spans import otel_ids

if TYPE_CHECKING:
    from simulator import Simulation


def head_sampled(seed: int | str, traces: int, ratio: float) -> np.ndarray:
    """``TraceIdRatioBased(ratio)`` decisions for traces ``0 .. traces-1`` of run ``seed`` (their OTLP ids)."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"ratio must be in [0, 1], got {ratio!r}")
    threshold = ratio * 2 ** 56
    low = np.array([int.from_bytes(otel_ids(seed, n, trace=True)[9:], "big") for n in range(traces)],
                   dtype=np.float64)
    return low < threshold


def tail_sampled(start: np.ndarray, interesting: np.ndarray, budget_per_s: float, u: np.ndarray,
                 window_s: float = 1.0) -> np.ndarray:
    """Tail decisions: within each ``window_s`` of trace starts, keep interesting traces (errors, slow) first,
    up to the budget ``round(budget_per_s x window_s)``; fill the rest of the budget with a uniform random share of
    the others (``u``: one U[0,1) per trace). The probabilistic remainder is set per window to what the
    budget leaves (a collector tunes it from the traffic it sees)."""
    if budget_per_s <= 0:
        raise ValueError(f"budget_per_s must be > 0 traces per second, got {budget_per_s!r}")
    keep = np.zeros(len(start), dtype=bool)
    win = np.floor(np.asarray(start) / window_s).astype(np.int64)
    cap = budget_per_s * window_s
    order = np.argsort(win, kind="stable")
    bounds = np.flatnonzero(np.diff(win[order])) + 1
    for idx in np.split(order, bounds):
        if not len(idx):
            continue
        hot, rest = idx[interesting[idx]], idx[~interesting[idx]]
        budget = int(round(cap))
        if len(hot) >= budget:  # the budget binds: a random subset of the interesting traces
            keep[hot[np.argsort(u[hot])[:budget]]] = True
            continue
        keep[hot] = True
        left = budget - len(hot)
        if len(rest):
            q = min(1.0, left / len(rest))
            keep[rest[u[rest] < q]] = True
    return keep


class LogBuffer:
    """A bounded buffer of ``capacity`` log lines drained at ``drain_rate`` lines/s (one line each
    ``1/drain_rate`` s) with a ``when_full`` policy: ``"block"`` (back-pressure), ``"drop_newest"``,
    ``"drop_oldest"``. ``emit(line)`` offers a line; per line it records when it was delivered (NaN if
    dropped)."""

    POLICIES = ("block", "drop_newest", "drop_oldest")

    def __init__(self, sim: Simulation, capacity: int, drain_rate: float, when_full: str = "block") -> None:
        if when_full not in self.POLICIES:
            raise ValueError(f"when_full must be one of {self.POLICIES}, got {when_full!r}")
        if not (isinstance(capacity, int) and capacity >= 1):
            raise ValueError(f"capacity must be an integer >= 1 lines, got {capacity!r}")
        if not (math.isfinite(drain_rate) and drain_rate > 0):
            raise ValueError(f"drain_rate must be > 0 lines per second, got {drain_rate!r}")
        self.sim, self.capacity, self.gap, self.when_full = sim, capacity, 1.0 / drain_rate, when_full
        self.buf: deque[int] = deque()
        self.blocked: deque[int] = deque()  # producers waiting (back-pressure)
        self.delivered: dict[int, float] = {}
        self.dropped: list[int] = []
        self._busy = False

    def emit(self, line: int) -> None:
        if len(self.buf) < self.capacity:
            self.buf.append(line)
        elif self.when_full == "block":
            self.blocked.append(line)
        elif self.when_full == "drop_newest":
            self.dropped.append(line)
        else:
            self.dropped.append(self.buf.popleft())
            self.buf.append(line)
        if not self._busy:
            self._busy = True
            self.sim.at(self.gap, self._drain)

    def _drain(self) -> None:
        if self.buf:
            self.delivered[self.buf.popleft()] = self.sim.now
            if self.blocked:
                self.buf.append(self.blocked.popleft())
        if self.buf:
            self.sim.at(self.gap, self._drain)
        else:
            self._busy = False


def tail_kept_fraction(mean_interesting: float, budget: int) -> float:
    """Closed form: the share of interesting traces a per-window budget keeps, ``E[min(H, b)] / E[H]`` with
    ``H ~ Poisson(mean_interesting)`` per window — 1 while the budget holds, ``b / mean`` when it binds."""
    if mean_interesting <= 0:
        return 1.0
    k = np.arange(0, budget)
    logpmf = -mean_interesting + k * math.log(mean_interesting) - np.array([math.lgamma(x + 1) for x in k])
    pmf = np.exp(logpmf)
    e_min = float((k * pmf).sum() + budget * (1 - pmf.sum()))
    return e_min / mean_interesting
