"""Client-side load balancers: random, round robin, least outstanding, power of two choices.

Each balancer picks one of ``instances`` and is told when a request it routed finishes
(``done``), so the outstanding counts are the caller's own view, as in Envoy's
LEAST_REQUEST or Finagle's P2C (Mitzenmacher, "The Power of Two Choices in Randomized Load
Balancing", 2001). Randomness comes from a named stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

BALANCERS = ("random", "round_robin", "least_outstanding", "p2c")


class Balancer:
    """A client-side load balancer over ``instances``, drawing from the uniform stream ``u``; it
    keeps the caller's own ``outstanding`` (in flight) and ``routed`` (total) counts per
    instance.
    """
    def __init__(self, instances: Sequence[str], u: Callable[[], float]) -> None:
        if not instances:
            raise ValueError("instances must name at least one instance")
        self.instances = list(instances)
        self.outstanding = dict.fromkeys(self.instances, 0)
        self.routed = dict.fromkeys(self.instances, 0)
        self._u = u

    def pick(self) -> str:  # pragma: no cover
        """The policy: which instance the next request goes to (subclasses define it)."""
        raise NotImplementedError

    def choose(self) -> str:
        """Pick an instance for one request and count it as outstanding and routed."""
        i = self.pick()
        self.outstanding[i] += 1
        self.routed[i] += 1
        return i

    def done(self, instance: str) -> None:
        """A request routed to ``instance`` has finished: one fewer outstanding."""
        self.outstanding[instance] -= 1

    def set_instances(self, instances: Sequence[str]) -> None:
        """Replace the instance list (service discovery refresh); keeps counts of known ones."""
        if not instances:
            return  # keep the last known list rather than route nowhere
        self.instances = list(instances)
        for i in self.instances:
            self.outstanding.setdefault(i, 0)
            self.routed.setdefault(i, 0)


class RandomBalancer(Balancer):
    """Uniformly random choice among the instances."""
    def pick(self) -> str:
        """An instance drawn uniformly at random."""
        return self.instances[int(self._u() * len(self.instances))]


class RoundRobin(Balancer):
    """The instances in turn (Envoy's ROUND_ROBIN without weights)."""
    def __init__(self, instances: Sequence[str], u: Callable[[], float]) -> None:
        super().__init__(instances, u)
        self._next = 0

    def pick(self) -> str:
        """The next instance in turn, wrapping around."""
        i = self.instances[self._next % len(self.instances)]
        self._next += 1
        return i


class LeastOutstanding(Balancer):
    """Fewest requests in flight from this caller; ties broken at random."""

    def pick(self) -> str:
        """An instance with the fewest requests in flight, ties drawn at random."""
        o = self.outstanding
        best = min(o[i] for i in self.instances)
        ties = [i for i in self.instances if o[i] == best]
        return ties[int(self._u() * len(ties))]


class PowerOfTwo(Balancer):
    """Two distinct instances at random; the one with fewer requests in flight."""

    def pick(self) -> str:
        """Of two distinct instances drawn at random, the one with fewer requests in flight
        (Mitzenmacher 2001).
        """
        n = len(self.instances)
        if n == 1:
            return self.instances[0]
        a = int(self._u() * n)
        b = int(self._u() * (n - 1))
        b = b + 1 if b >= a else b
        ia, ib = self.instances[a], self.instances[b]
        return ia if self.outstanding[ia] <= self.outstanding[ib] else ib


def make_balancer(kind: str, instances: Sequence[str], u: Callable[[], float]) -> Balancer:
    """A balancer by name: one of ``BALANCERS`` ("random", "round_robin", "least_outstanding",
    "p2c").
    """
    cls = {"random": RandomBalancer, "round_robin": RoundRobin, "least_outstanding": LeastOutstanding,
           "p2c": PowerOfTwo}.get(kind)
    if cls is None:
        raise ValueError(f"balancer must be one of {BALANCERS}, got {kind!r}")
    return cls(instances, u)
