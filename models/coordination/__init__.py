"""Coordination: failure detectors (fixed timeout, phi accrual, SWIM), leases and fencing tokens."""

from .detectors import DetectorConfig, FailureDetector, phi
from .leases import LeaseClient, LockService, Storage, audit
from .swim import SwimConfig, SwimGroup

__all__ = ["DetectorConfig", "FailureDetector", "LeaseClient", "LockService", "Storage", "SwimConfig", "SwimGroup",
           "audit", "phi"]
