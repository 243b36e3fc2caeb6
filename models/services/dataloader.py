"""A DataLoader: per-key loads coalesced into one batched call (GraphQL's answer to N+1 resolvers).

Source: the reference implementation's documentation (graphql/dataloader, README, "Batching"):
"DataLoader will coalesce all individual loads which occur within a single frame of execution (a
single tick of the event loop) and then call your batch function with all requested keys"; the
batch function returns one value per key, in the keys' order; ``maxBatchSize`` splits a large batch
into several calls; a loader also caches (memoizes) each key, so a key asked twice in one request is
loaded once.

Here "a tick" is the current instant of simulated time: the first ``load`` of a batch schedules the
dispatch ``node.after(0, ...)``, which runs after every other callback already due now — every
resolver the same event started. The batched call sends ``{"keys": [...]}`` to ``op`` on ``dst`` and
expects a list of values back, one per key (the batch function's contract). A failed batch fails
every key in it with the call's outcome.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

from simulator import Node

Callback = Callable[[str, Any], None]


class DataLoader:
    """Collects ``load(key, callback)`` calls made at the same instant on ``node`` and sends them
    as one call (or ``ceil(n / max_batch_size)`` calls) to ``op`` on ``dst``. ``calls`` counts the
    batched calls sent, ``keys_loaded`` the distinct keys in them."""

    def __init__(self, node: Node, dst: str, op: str = "get_many", *, timeout_s: float = math.inf,
                 max_batch_size: int | None = None, cache: bool = True) -> None:
        if max_batch_size is not None and not (isinstance(max_batch_size, int) and max_batch_size >= 1):
            raise ValueError(f"max_batch_size must be an integer >= 1 or None, got {max_batch_size!r}")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds (math.inf for none), got {timeout_s!r}")
        self.node, self.dst, self.op = node, dst, op
        self.timeout_s, self.max_batch_size, self.cache = timeout_s, max_batch_size, cache
        self._queue: dict[Hashable, list[Callback]] = {}
        self._cached: dict[Hashable, tuple[str, Any]] = {}
        self.calls = 0
        self.keys_loaded = 0

    def load(self, key: Hashable, callback: Callback) -> None:
        """Ask for ``key``; ``callback(outcome, value)`` once its batch is answered (at once from
        the cache if this loader already has it)."""
        if self.cache and key in self._cached:
            callback(*self._cached[key])
            return
        first = not self._queue
        self._queue.setdefault(key, []).append(callback)  # a key asked twice rides in the batch once
        if first:
            self.node.after(0.0, self._dispatch)

    def _dispatch(self) -> None:
        batch, self._queue = self._queue, {}
        keys = list(batch)
        size = self.max_batch_size or len(keys)
        for i in range(0, len(keys), size):
            chunk = keys[i:i + size]
            self.calls += 1
            self.keys_loaded += len(chunk)
            self.node.call(self.dst, self.op, {"keys": chunk}, self.timeout_s,
                           lambda o, v, chunk=chunk: self._answer(chunk, batch, o, v))

    def _answer(self, chunk: list, batch: dict, outcome: str, values: Any) -> None:
        ok = outcome == "ok" and isinstance(values, list) and len(values) == len(chunk)
        for j, key in enumerate(chunk):
            res = ("ok", values[j]) if ok else (outcome if outcome != "ok" else "error", None)
            if self.cache and ok:
                self._cached[key] = res
            for cb in batch[key]:
                cb(*res)
