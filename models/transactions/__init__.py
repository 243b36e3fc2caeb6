"""Transactions across services: local transactions, orchestrated sagas, two-phase commit with
presumed abort, idempotency keys, and the transactional outbox vs dual writes — all on the fault
kernel (every service is a node that crashes, pauses and is partitioned), with a checker of the
business invariants. Choreographed sagas, event sourcing and CQRS would sit beside these modules
and reuse :mod:`.shop` (the participants) and :mod:`.invariants`."""

from .invariants import check_invariants, inconsistency_windows, twopc_metrics
from .local import LocalStore, LocalTxn, LockConflict
from .saga import SagaConfig, SagaOrchestrator, SagaStep
from .shop import BusinessError, Order, Participant, Shop, ShopConfig
from .twopc import Coordinator, TwoPCConfig, TwoPCParticipant
from .world import OrderClient, TxWorld, build_world

__all__ = ["BusinessError", "Coordinator", "LocalStore", "LocalTxn", "LockConflict", "Order", "OrderClient",
           "Participant", "SagaConfig", "SagaOrchestrator", "SagaStep", "Shop", "ShopConfig", "TwoPCConfig",
           "TwoPCParticipant", "TxWorld", "build_world", "check_invariants", "inconsistency_windows",
           "twopc_metrics"]
