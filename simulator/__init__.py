"""splitbrain's kernel: a SimPy world of nodes, lossy networks, clocks, faults and records.

>>> from simulator import Simulation, LogNormal
>>> sim = Simulation(seed=7)
>>> net = sim.network(latency=LogNormal(median=0.002, sigma=0.5), loss=0.01)
"""

from .clock import PhysicalClock
from .core import Simulation
from .distributions import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Mixture,
    Normal,
    Pareto,
    Uniform,
)
from .faults import FaultSchedule, random_nemesis
from .metrics import RequestLog, availability, availability_by_side, latency_percentiles, red
from .network import Message, Network
from .node import NO_REPLY, OUTCOMES, Node, RpcError

__all__ = [
    "Constant", "Distribution", "Empirical", "Exponential", "FaultSchedule", "LogNormal",
    "Message", "Mixture", "NO_REPLY", "Network", "Node", "Normal", "OUTCOMES", "Pareto",
    "PhysicalClock", "RequestLog", "RpcError", "Simulation", "Uniform", "availability",
    "availability_by_side", "latency_percentiles", "random_nemesis", "red",
]

__version__ = "0.1.0"
