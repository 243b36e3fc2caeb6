"""Physical clocks: offset, drift (ppm), periodic NTP-like sync with bounded error, jumps.

Between syncs a clock reads ``base + (t - t_base) * (1 + drift_ppm * 1e-6)``: its error
grows linearly at the drift rate. A sync (every ``sync_interval_s``) resets the reading to
true time plus an error drawn uniformly from ``[-sync_error_s, +sync_error_s]``, so after
syncing the error is bounded by ``sync_error_s + drift * sync_interval_s``. ``jump(delta)``
steps the clock (a leap, an operator, a bad NTP server).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import Simulation


def _finite(name: str, v: float, lo: float = -math.inf) -> float:
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= lo):
        raise ValueError(f"{name} must be a finite number >= {lo}, got {v!r}")
    return float(v)


class PhysicalClock:
    """A node's wall clock. ``now()`` is what the node sees; ``sim.now`` is the truth."""

    def __init__(
        self,
        sim: Simulation,
        *,
        offset_s: float = 0.0,
        drift_ppm: float = 0.0,
        sync_interval_s: float | None = None,
        sync_error_s: float = 0.0,
        name: str = "clock",
        _since: float | None = None,
    ) -> None:
        self.sim = sim
        self.drift_ppm = _finite("drift_ppm", drift_ppm)
        if abs(self.drift_ppm) >= 1e6:
            raise ValueError(f"drift_ppm must be in (-1e6, 1e6), got {drift_ppm}")
        self._rate = 1.0 + self.drift_ppm * 1e-6
        # ``_since``: the true time the clock was set (now, unless made later for a node that
        # existed before: Node makes its default clock on first read, as of the node's birth).
        since = sim.now if _since is None else _since
        self._base = since + _finite("offset_s", offset_s)
        self._t_base = since
        self.sync_error_s = _finite("sync_error_s", sync_error_s, 0.0)
        self.sync_interval_s = None
        self.syncs = 0
        if sync_interval_s is not None:
            self.sync_interval_s = _finite("sync_interval_s", sync_interval_s, 0.0)
            if self.sync_interval_s <= 0:
                raise ValueError(f"sync_interval_s must be > 0, got {sync_interval_s}")
            self._u = sim.uniforms(f"clock.sync.{name}")
            sim.at(self.sync_interval_s, self._sync)

    def now(self) -> float:
        """This clock's reading at the current true time."""
        return self._base + (self.sim.now - self._t_base) * self._rate

    def error(self) -> float:
        """Reading minus true time (positive: the clock is ahead)."""
        return self.now() - self.sim.now

    def jump(self, delta_s: float) -> None:
        """Step the clock by ``delta_s`` seconds (negative steps it back)."""
        self._base += _finite("delta_s", delta_s)

    def _sync(self) -> None:
        err = (2 * self._u() - 1) * self.sync_error_s
        self._t_base = self.sim.now
        self._base = self.sim.now + err
        self.syncs += 1
        self.sim.at(self.sync_interval_s, self._sync)

    @property
    def error_bound_after_sync(self) -> float:
        """The worst error once synced: sync error plus drift over one interval."""
        if self.sync_interval_s is None:
            return math.inf
        return self.sync_error_s + abs(self._rate - 1) * self.sync_interval_s
