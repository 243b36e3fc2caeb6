"""Protocols for the workbench (``simulator.workbench``): Maelstrom's services (lin-kv, seq-kv, lww-kv,
lin-tso) and a reference node per workload with named wrong variants (``splitbrain test --node
reference[:VARIANT]``)."""

from .reference import REFERENCE, reference, variants
from .services import SERVICES

__all__ = ["REFERENCE", "SERVICES", "reference", "variants"]
