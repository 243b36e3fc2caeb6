"""Named random streams: one root seed, each stream derived from it and its *name*.

The stream called ``name`` under root seed ``seed`` is
``Generator(PCG64(SeedSequence(seed, spawn_key=(blake2b64(name),))))``. It depends on the
seed and the name only, never on creation order (``SeedSequence.spawn`` does depend on call
order, and numpy's docs call ``seed + i`` unsafe), so adding a component never shifts another's
numbers, and two arms of a comparison that use the same names share random numbers.

This module sits below :mod:`simulator.core` so that the parts ``Simulation`` assembles
(e.g. :func:`simulator.faults.random_nemesis`) can derive streams without importing it.
"""

from __future__ import annotations

import hashlib

import numpy as np


def name_key(name: str) -> int:
    """A stable 64-bit key for a stream name (never Python's salted ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def named_rng(seed: int, name: str) -> np.random.Generator:
    """A fresh generator of the stream called ``name`` under the root seed ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(name_key(name),))))
