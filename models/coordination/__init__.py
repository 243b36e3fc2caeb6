"""Coordination: failure detectors (fixed timeout, phi accrual), leases and fencing tokens."""

from .detectors import DetectorConfig, FailureDetector, phi
from .leases import LeaseClient, LockService, Storage, audit

__all__ = ["DetectorConfig", "FailureDetector", "LeaseClient", "LockService", "Storage", "audit", "phi"]
