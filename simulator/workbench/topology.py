"""Broadcast topologies, as Maelstrom computes them (``maelstrom.workload.broadcast``): ``grid`` (a
roughly square grid, at most 4 neighbours), ``line``, ``total``, and trees of branch factor 2, 3, 4
(``tree`` = ``tree2``), filled breadth first; each maps a node to its neighbours."""

from __future__ import annotations

import math
from collections.abc import Sequence


def grid(nodes: Sequence[str]) -> dict[str, list[str]]:
    n = len(nodes)
    side = math.ceil(math.sqrt(n))

    def at(i: int, j: int) -> str | None:
        if 0 <= i and 0 <= j < side and i * side + j < n:
            return nodes[i * side + j]
        return None

    out = {}
    for i in range(side):
        for j in range(side):
            me = at(i, j)
            if me is not None:
                out[me] = [x for x in (at(i + 1, j), at(i - 1, j), at(i, j + 1), at(i, j - 1)) if x is not None]
    return out


def line(nodes: Sequence[str]) -> dict[str, list[str]]:
    n = len(nodes)
    if n < 2:
        return {}
    return {x: [nodes[k] for k in (i - 1, i + 1) if 0 <= k < n] for i, x in enumerate(nodes)}


def total(nodes: Sequence[str]) -> dict[str, list[str]]:
    return {x: [y for y in nodes if y != x] for x in nodes}


def tree(nodes: Sequence[str], b: int) -> dict[str, list[str]]:
    """Node i's children are b*i+1 .. b*i+b (breadth-first fill, as Maelstrom's tiers)."""
    n = len(nodes)
    out: dict[str, list[str]] = {}
    for i, x in enumerate(nodes):
        parent = [nodes[(i - 1) // b]] if i > 0 else []
        kids = [nodes[c] for c in range(b * i + 1, min(n, b * i + b + 1))]
        out[x] = parent + kids
    return out


TOPOLOGIES = {"grid": grid, "line": line, "total": total, "tree": lambda ns: tree(ns, 2),
              "tree2": lambda ns: tree(ns, 2), "tree3": lambda ns: tree(ns, 3), "tree4": lambda ns: tree(ns, 4)}


def topology(name: str, nodes: Sequence[str]) -> dict[str, list[str]]:
    if name not in TOPOLOGIES:
        raise ValueError(f"topology {name!r} is not known; allowed: {', '.join(TOPOLOGIES)}")
    return TOPOLOGIES[name](list(nodes))
