"""Services, load balancers, discovery and workloads."""

from .balancers import BALANCERS, make_balancer
from .service import Call, Endpoint, Service, fan_out_theory
from .workload import PoissonClient

__all__ = ["BALANCERS", "Call", "Endpoint", "PoissonClient", "Service", "fan_out_theory", "make_balancer"]
