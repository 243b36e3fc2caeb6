"""Replication: the key-value store contract and workload, logical clocks, primary-backup,
leaderless eventual consistency, Dynamo quorums, CRDTs (Raft lives in ``raft``)."""

from .kv import KeyChooser, KVStore, KVStoreBase, KVWorkload, Uniform, Zipf

__all__ = ["KVStore", "KVStoreBase", "KVWorkload", "KeyChooser", "Uniform", "Zipf"]
