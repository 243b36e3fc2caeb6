"""Which consistency models a set of anomalies rules out.

The table follows Elle's ``elle.consistency-model`` (``direct-proscribed-anomalies`` and
``implied-anomalies``), which cites Adya's thesis and Adya, Liskov & O'Neil (ICDE 2000) for the PL-levels,
Cerone, Bernardi & Gotsman (CONCUR 2015) for ``internal``, Bailis et al. (VLDB 2014) for lost update, and
Cerone & Gotsman (PODC 2016) / Daudjee & Salem (VLDB 2006) for snapshot isolation forbidding every
cycle whose rw edges are never adjacent (G-nonadjacent, which includes G-single):

- read uncommitted (PL-1): G0 (and, Elle's additions, duplicate elements; ours: garbage reads)
- read committed (PL-2): + G1a, G1b, G1c (an incompatible order implies G1a)
- repeatable read (PL-2.99): + G2-item (G-single and G-nonadjacent on items imply it), lost update
- snapshot isolation: read committed + internal, G-single, G-nonadjacent, lost update (not G2-item:
  write skew is allowed)
- serializable (PL-3): all of the above
- with process order (strong session ...) or real time (strict serializable, strong snapshot isolation)
  the same cycles also may not use those edges (``G1c-process``, ``G2-item-realtime``, ...).
"""

from __future__ import annotations

RU = frozenset({"G0", "duplicate-elements", "garbage-read"})
RC = RU | {"G1a", "G1b", "G1c", "incompatible-order"}
RR = RC | {"G-single", "G-nonadjacent", "G2-item", "lost-update"}
SI = RC | {"internal", "G-single", "G-nonadjacent", "lost-update"}
SER = RR | SI
CYC_SI = frozenset({"G0", "G1c", "G-single", "G-nonadjacent"})
CYC_ALL = CYC_SI | {"G2-item"}

# model -> {level: forbidden base anomalies}; level "" is the data graph alone
FORBIDS: dict[str, dict[str, frozenset]] = {
    "strict-serializable": {"": SER, "process": CYC_ALL, "realtime": CYC_ALL},
    "strong-session-serializable": {"": SER, "process": CYC_ALL},
    "serializable": {"": SER},
    "strong-snapshot-isolation": {"": SI, "process": CYC_SI, "realtime": CYC_SI},
    "strong-session-snapshot-isolation": {"": SI, "process": CYC_SI},
    "snapshot-isolation": {"": SI},
    "repeatable-read": {"": RR},
    "read-committed": {"": RC},
    "read-uncommitted": {"": RU},
}
MODELS = tuple(FORBIDS)  # strongest first
REALTIME_MODELS = frozenset({"strict-serializable", "strong-snapshot-isolation"})


def split(anomaly: str) -> tuple[str, str]:
    for level in ("process", "realtime"):
        if anomaly.endswith("-" + level):
            return anomaly[: -len(level) - 1], level
    return anomaly, ""


def forbids(model: str, anomaly: str) -> bool:
    base, level = split(anomaly)
    return base in FORBIDS[model].get(level, ())


def _forbidden_pairs(model: str) -> set[tuple[str, str]]:
    return {(a, lvl) for lvl, s in FORBIDS[model].items() for a in s}


def compatible_models(anomalies, realtime: bool) -> list[str]:
    """Models no anomaly rules out, strongest first. Real-time models are judged only with real-time edges."""
    names = list(anomalies)
    return [m for m in MODELS if (realtime or m not in REALTIME_MODELS) and not any(forbids(m, a) for a in names)]


def strongest(models: list[str]) -> list[str]:
    """Those of ``models`` that no other one in the list implies (forbids a strict superset)."""
    fs = {m: _forbidden_pairs(m) for m in models}
    return [m for m in models if not any(fs[o] > fs[m] for o in models if o != m)]
