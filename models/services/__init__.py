"""Services, load balancers, discovery and workloads."""

from .balancers import BALANCERS, make_balancer
from .dataloader import DataLoader
from .discovery import DiscoveryClient, DiscoveryConfig, Registry
from .service import Call, Endpoint, Service, fan_out_theory
from .workload import ClosedLoopUsers, Diurnal, PoissonClient, RateFn, Spike, Steps

__all__ = ["BALANCERS", "Call", "ClosedLoopUsers", "DataLoader", "DiscoveryClient", "DiscoveryConfig", "Diurnal",
           "Endpoint", "PoissonClient", "RateFn", "Registry", "Service", "Spike", "Steps", "fan_out_theory",
           "make_balancer"]
