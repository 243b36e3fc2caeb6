"""Replication: the key-value store contract and workload, logical clocks, primary-backup,
leaderless eventual consistency, Dynamo quorums, CRDTs and Raft (``consensus``)."""

from .clocks import HybridLogicalClock, LamportClock, VectorClock
from .consensus import RaftCluster, RaftConfig
from .crdt import CounterClients, CRDTStore, GCounter, LWWRegister, ORSet, PNCounter
from .eventual import EventualStore
from .kv import KeyChooser, KVStore, KVStoreBase, KVWorkload, Uniform, Zipf
from .primary_backup import PrimaryBackup
from .quorum import QuorumStore, miss_probability

__all__ = [
    "CRDTStore", "CounterClients", "EventualStore", "GCounter", "HybridLogicalClock", "KVStore", "KVStoreBase",
    "KVWorkload", "KeyChooser", "LWWRegister", "LamportClock", "ORSet", "PNCounter", "PrimaryBackup",
    "QuorumStore", "RaftCluster", "RaftConfig", "Uniform", "VectorClock", "Zipf", "miss_probability",
]
