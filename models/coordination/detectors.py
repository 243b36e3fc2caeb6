"""Failure detectors: a fixed heartbeat timeout and the phi-accrual detector.

A monitored node sends a heartbeat every ``interval_s`` to a monitor (one-way messages, so the
network's latency, loss and partitions, and the sender's pauses, all apply). The monitor
*suspects* the node when

- ``timeout``: no heartbeat arrived for ``threshold`` seconds (the classic fixed timeout);
- ``phi``: the suspicion level phi(t) = -log10(P_later(t - t_last)) exceeds ``threshold``,
  where P_later(d) = 1 - F(d) and F is the normal CDF with the mean and standard deviation of
  the last ``window`` heartbeat inter-arrival times (Hayashibara, Défago, Yared, Katayama,
  "The phi Accrual Failure Detector", SRDS 2004; the standard deviation is floored at
  ``min_std_s`` as in Akka's implementation, so perfectly regular heartbeats do not make phi
  infinitely sharp). phi = 1 means a 10% chance that the node is merely late, phi = 3 a 0.1%.
  ``acceptable_pause_s`` is added to the mean, as Akka's ``acceptable-heartbeat-pause``: the
  normal model of heartbeat gaps knows nothing of GC pauses, so without it they look impossible.

Suspicion is checked every ``check_s`` (and on every arrival, which clears it). The records
(``suspicions``: ``(start, end)`` intervals) let an experiment count false positives (while the
node was alive) and detection time (from a crash to the first suspicion that lasts).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator import Message, Simulation

HEARTBEAT = "fd.heartbeat"


@dataclass(frozen=True)
class DetectorConfig:
    """A failure detector's settings, times in seconds: ``kind`` "phi" (Hayashibara et al., SRDS
    2004) or "timeout"; ``threshold`` is the phi level, or the silence in seconds for "timeout";
    heartbeats every ``interval_s``, suspicion re-checked every ``check_s``.
    """
    kind: str = "phi"  # "phi" | "timeout"
    threshold: float = 8.0  # phi level, or seconds without a heartbeat for "timeout"
    interval_s: float = 0.1  # heartbeat period
    window: int = 100  # inter-arrival samples kept (phi)
    min_std_s: float = 0.01  # floor on the standard deviation (phi)
    check_s: float = 0.005  # how often the monitor re-evaluates suspicion
    acceptable_pause_s: float = 0.0  # phi: added to the mean gap (Akka's acceptable-heartbeat-pause)

    def __post_init__(self) -> None:
        if self.kind not in ("phi", "timeout"):
            raise ValueError(f"kind must be 'phi' or 'timeout', got {self.kind!r}")
        for n in ("threshold", "interval_s", "min_std_s", "check_s"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a finite number > 0, got {v!r}")
        if not (isinstance(self.acceptable_pause_s, (int, float)) and 0 <= self.acceptable_pause_s < math.inf):
            raise ValueError(f"acceptable_pause_s must be a finite number >= 0, got {self.acceptable_pause_s!r}")
        if not (isinstance(self.window, int) and self.window >= 2):
            raise ValueError(f"window must be an integer >= 2, got {self.window!r}")


def phi(elapsed_s: float, mean_s: float, std_s: float) -> float:
    """-log10 of the probability that a heartbeat comes later than ``elapsed_s`` after the
    last one, for normally distributed inter-arrival times (Hayashibara et al. 2004, eq. 1-2)."""
    p_later = 0.5 * math.erfc((elapsed_s - mean_s) / (std_s * math.sqrt(2.0)))
    return math.inf if p_later <= 0.0 else -math.log10(p_later)


class FailureDetector:
    """``monitor`` watches ``target``: the target's node sends heartbeats, the monitor suspects."""

    def __init__(self, sim: Simulation, monitor: str, target: str, config: DetectorConfig | None = None) -> None:
        self.sim, self.config = sim, config or DetectorConfig()
        self.monitor = sim.nodes.get(monitor) or sim.node(monitor)
        self.target = sim.nodes.get(target) or sim.node(target)
        self.last: float | None = None
        self.gaps: deque[float] = deque(maxlen=self.config.window)
        self.suspected_since: float | None = None
        self.suspicions: list[tuple[float, float]] = []  # closed intervals of suspicion
        self.heartbeats = 0
        self.monitor.on(HEARTBEAT, self._arrive)
        self.target.on_recover(self._beat)
        sim.at(0.0, self._beat)
        sim.at(self.config.check_s, self._check)

    # -- the target --------------------------------------------------------------------------
    def _beat(self) -> None:
        self.target.send(self.monitor.name, HEARTBEAT, None)
        self.target.after(self.config.interval_s, self._beat)

    # -- the monitor -------------------------------------------------------------------------
    def _arrive(self, msg: Message) -> None:
        now = self.sim.now
        if self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now
        self.heartbeats += 1
        if self.suspected_since is not None:  # trust again
            self.suspicions.append((self.suspected_since, now))
            self.suspected_since = None

    def level(self) -> float:
        """phi (or seconds since the last heartbeat, for ``timeout``) at the current time."""
        if self.last is None:
            return 0.0
        elapsed = self.sim.now - self.last
        c = self.config
        if c.kind == "timeout":
            return elapsed
        if len(self.gaps) < 2:  # no history yet: assume the nominal interval
            return phi(elapsed, c.interval_s + c.acceptable_pause_s, c.min_std_s)
        n = len(self.gaps)
        mean = sum(self.gaps) / n
        std = math.sqrt(max(sum((g - mean) ** 2 for g in self.gaps) / (n - 1), 0.0))
        return phi(elapsed, mean + c.acceptable_pause_s, max(std, c.min_std_s))

    def _check(self) -> None:
        if self.monitor.up and self.suspected_since is None and self.level() > self.config.threshold:
            self.suspected_since = self.sim.now
        self.sim.at(self.config.check_s, self._check)

    def intervals(self, until: float) -> list[tuple[float, float]]:
        """All suspicion intervals, the open one closed at ``until``."""
        out = list(self.suspicions)
        if self.suspected_since is not None:
            out.append((self.suspected_since, until))
        return out
