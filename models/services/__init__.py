"""Services, load balancers, discovery and workloads."""

from .workload import PoissonClient

__all__ = ["PoissonClient"]
