"""SWIM: scalable weakly-consistent infection-style membership (Das, Gupta, Motivala, DSN 2002).

Every member runs the same protocol period ``period_s`` (T'):

1. **Direct probe.** It picks the next member of its own randomised round-robin list (§4.3: each
   member is probed by a given prober within ``2 (n - 1) - 1`` periods) and pings it, waiting
   ``ping_timeout_s`` for the ack.
2. **Indirect probes.** Without an ack it asks ``k`` other members, chosen at random, to ping the
   target on its behalf (``ping-req``); any of them relays the target's ack. This is what keeps a
   member that one prober cannot reach (a one-way loss, a congested link) from being declared dead.
3. **Suspicion** (§4.2). If no ack at all arrived by the end of the period the target is *suspected*,
   not failed: the suspicion is disseminated, and a suspected member that hears of it refutes it
   with a higher *incarnation number*. Only a suspicion that stays unrefuted for
   ``suspicion_periods`` periods is *confirmed* as a failure. ``suspicion_periods=0`` disables the
   mechanism (the basic SWIM of §3: the prober declares failure at once).
4. **Dissemination** (§4.1), infection-style: membership updates ride on the ping, ping-req and
   ack messages (at most ``piggyback`` per message), each retransmitted ``retransmit_mult x
   log2(n + 1)`` times by every member that learnt it. Precedence rules as in §4.2: a
   confirmation overrides everything; ``alive(inc=i)`` overrides suspect/alive with a lower
   incarnation; ``suspect(inc=i)`` overrides suspect with a lower and alive with a lower or
   equal incarnation.

``k=0, suspicion_periods=0`` is a plain direct-probe (ping with timeout) detector, for comparison.
Records: ``events`` — ``(time, observer, member, status, incarnation)`` for every change of an
observer's view (``suspect``, ``failed``, ``alive``). Expected time to the first detection of a
crash by some member, with n large: ``T' x e / (e - 1)`` (§3.1), plus the suspicion timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator import NO_REPLY

if TYPE_CHECKING:
    from simulator import Message, Simulation

PING, PING_REQ = "swim.ping", "swim.ping_req"
ALIVE, SUSPECT, FAILED = "alive", "suspect", "failed"


@dataclass(frozen=True)
class SwimConfig:
    """SWIM's settings (Das, Gupta, Motivala, DSN 2002): protocol period ``period_s`` (T') and
    direct-probe timeout ``ping_timeout_s`` in seconds, ``k`` indirect probes, suspicion timeout
    in periods (§4.2), ``piggyback`` updates per message, each sent
    ``retransmit_mult x log2(n + 1)`` times (§4.1).
    """
    period_s: float = 1.0  # protocol period T'
    ping_timeout_s: float = 0.2  # direct-probe timeout (must leave room for the indirect round)
    k: int = 3  # indirect probes per period (0: direct only)
    suspicion_periods: float = 3.0  # suspicion timeout, in protocol periods (0: declare failure at once)
    piggyback: int = 6  # updates carried per message
    retransmit_mult: float = 3.0  # each update is sent retransmit_mult x log2(n + 1) times per member

    def __post_init__(self) -> None:
        for n in ("period_s", "ping_timeout_s", "retransmit_mult"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a finite number > 0, got {v!r}")
        if not 3 * self.ping_timeout_s <= self.period_s:
            raise ValueError(f"need 3 x ping_timeout_s <= period_s (a ping-req round trip takes two pings), "
                             f"got ping_timeout_s={self.ping_timeout_s}, period_s={self.period_s}")
        if not (isinstance(self.k, int) and self.k >= 0):
            raise ValueError(f"k must be an integer >= 0, got {self.k!r}")
        if not (isinstance(self.suspicion_periods, (int, float)) and 0 <= self.suspicion_periods < math.inf):
            raise ValueError(f"suspicion_periods must be a finite number >= 0, got {self.suspicion_periods!r}")
        if not (isinstance(self.piggyback, int) and self.piggyback >= 0):
            raise ValueError(f"piggyback must be an integer >= 0, got {self.piggyback!r}")


class _Member:
    def __init__(self, group: SwimGroup, name: str) -> None:
        self.g, self.name = group, name
        self.node = group.sim.nodes.get(name) or group.sim.node(name)
        self.u = group.sim.uniforms(f"swim.{name}")
        self.view: dict[str, tuple[str, int]] = {m: (ALIVE, 0) for m in group.names if m != name}
        self.incarnation = 0
        self.buffer: dict[str, list] = {}  # member -> [status, incarnation, sends left]
        self.order: list[str] = []
        self.node.on(PING, self._on_ping)
        self.node.on(PING_REQ, self._on_ping_req)
        self.node.on_recover(self._rejoin)

    # -- dissemination ---------------------------------------------------------------------------
    def _queue(self, member: str, status: str, inc: int) -> None:
        self.buffer[member] = [status, inc, self.g.retransmits]

    def _updates(self) -> list[tuple[str, str, int]]:
        best = sorted(self.buffer.items(), key=lambda kv: -kv[1][2])[: self.g.config.piggyback]
        out = []
        for m, rec in best:
            out.append((m, rec[0], rec[1]))
            rec[2] -= 1
            if rec[2] <= 0:
                del self.buffer[m]
        return out

    def _merge(self, updates) -> None:
        for m, status, inc in updates or ():
            self.apply(m, status, inc)

    def apply(self, m: str, status: str, inc: int) -> None:
        """Apply one membership update with SWIM's precedence rules (§4.2)."""
        if m == self.name:
            if status in (SUSPECT, FAILED) and inc >= self.incarnation:
                self.incarnation = inc + 1  # refute: I am alive, with a newer incarnation
                self._queue(m, ALIVE, self.incarnation)
            return
        old, old_inc = self.view[m]
        if old == FAILED:
            return
        if status == FAILED or (status == ALIVE and inc > old_inc) or \
                (status == SUSPECT and (inc > old_inc or (old == ALIVE and inc == old_inc))):
            self._set(m, status, inc)

    def _set(self, m: str, status: str, inc: int) -> None:
        self.view[m] = (status, inc)
        self._queue(m, status, inc)
        self.g.events.append((self.g.sim.now, self.name, m, status, inc))
        if status == SUSPECT:
            wait = self.g.config.suspicion_periods * self.g.config.period_s

            def expire() -> None:
                if self.view[m] == (SUSPECT, inc):
                    self._set(m, FAILED, inc)
            self.node.after(wait, expire)

    # -- probing -----------------------------------------------------------------------------------
    def _shuffled(self, items: list[str]) -> list[str]:
        items = list(items)
        for i in range(len(items) - 1, 0, -1):  # Fisher-Yates on the member's own stream
            j = int(self.u() * (i + 1))
            items[i], items[j] = items[j], items[i]
        return items

    def _next_target(self) -> str | None:
        for _ in range(2):
            while self.order:
                t = self.order.pop()
                if self.view[t][0] != FAILED:
                    return t
            self.order = self._shuffled([m for m, (s, _) in self.view.items() if s != FAILED])
        return None

    def tick(self) -> None:
        c = self.g.config
        self.node.after(c.period_s, self.tick)
        target = self._next_target()
        if target is None:
            return
        acked = [False]

        def ack(outcome: str, value) -> None:
            if outcome == "ok":
                acked[0] = True
                self._merge(value)

        def direct(outcome: str, value) -> None:
            ack(outcome, value)
            if acked[0] or c.k == 0:
                return
            others = [m for m, (s, _) in self.view.items() if m != target and s != FAILED]
            for h in self._shuffled(others)[: c.k]:
                self.node.call(h, PING_REQ, (target, self._updates()), c.period_s - 2 * c.ping_timeout_s, ack)

        def end_of_period() -> None:
            if not acked[0] and self.view[target][0] == ALIVE:
                inc = self.view[target][1]
                self._set(target, SUSPECT if c.suspicion_periods > 0 else FAILED, inc)

        self.node.call(target, PING, self._updates(), c.ping_timeout_s, direct)
        self.node.after(c.period_s * 0.999, end_of_period)

    def _on_ping(self, msg: Message):
        self._merge(msg.payload)
        return self._updates()

    def _on_ping_req(self, msg: Message):
        target, updates = msg.payload
        self._merge(updates)

        def relayed(outcome: str, value) -> None:
            if outcome == "ok":
                self._merge(value)
                self.node.reply(msg, self._updates())
        self.node.call(target, PING, self._updates(), self.g.config.ping_timeout_s, relayed)
        return NO_REPLY

    def _rejoin(self) -> None:
        self.incarnation += 1
        self._queue(self.name, ALIVE, self.incarnation)
        self.node.after(self.g.config.period_s * self.u(), self.tick)


class SwimGroup:
    """SWIM among the nodes ``names`` (created if missing); each starts at a random phase."""

    def __init__(self, sim: Simulation, names: list[str], config: SwimConfig | None = None) -> None:
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"names must list at least 2 distinct members, got {names!r}")
        self.sim, self.names, self.config = sim, list(names), config or SwimConfig()
        if self.config.k > len(names) - 2:
            raise ValueError(f"k must be <= members - 2 = {len(names) - 2}, got {self.config.k}")
        self.retransmits = max(1, math.ceil(self.config.retransmit_mult * math.log2(len(names) + 1)))
        self.events: list[tuple[float, str, str, str, int]] = []
        self.members = {n: _Member(self, n) for n in names}
        for m in self.members.values():
            m.node.after(self.config.period_s * m.u(), m.tick)

    def view(self, observer: str, member: str) -> str:
        """``observer``'s current view of ``member``: "alive", "suspect" or "failed"."""
        return self.members[observer].view[member][0]

    def first(self, member: str, status: str, after: float = 0.0, observer: str | None = None) -> float:
        """Time of the first ``status`` event about ``member`` (by ``observer`` if given), or inf."""
        ts = [t for t, o, m, s, _ in self.events
              if m == member and s == status and t >= after and (observer is None or o == observer)]
        return min(ts, default=math.inf)
