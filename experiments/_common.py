"""Helpers shared by several experiments (not an experiment: the registry skips ``_`` modules).
Experiments never import each other; what two of them share lives here or below."""

from __future__ import annotations

from simulator.runner import param, parameters


@parameters
class SlowDependencyParams:
    """The parameters of ``models.services.scenarios.slow_dependency`` that experiments expose."""

    duration_s: float = param(40.0, unit="s", gt=0, le=86_400, help="simulated time")
    slow_at: float = param(10.0, unit="s", ge=0, help="when the db slows down")
    slow_s: float = param(15.0, unit="s", gt=0, help="how long the db stays slow")
    slow_factor: float = param(50.0, unit="x", ge=1, le=1e6, help="service-time multiplier while slow")
    rate: float = param(200.0, unit="req/s", gt=0, le=1e6, help="requests per second to each endpoint")
    workers: int = param(20, unit="threads", ge=2, le=100_000, help="frontend worker threads")

    def __post_init__(self) -> None:
        if not self.slow_at + self.slow_s <= self.duration_s:
            raise ValueError(f"need slow_at + slow_s <= duration_s, got {self.slow_at} + {self.slow_s} > "
                             f"{self.duration_s}")
