"""Persistent (keep-alive) HTTP connections with two idle timers: the proxy's and the backend's.

A proxy or client pool keeps a connection open between requests and closes it after ``idle_timeout_s``
of idleness (AWS ALB's *idle timeout*, default 60 s; nginx's upstream ``keepalive_timeout``, default 60 s).
The backend closes a connection it has not used for ``keep_alive_s`` (Node.js ``server.keepAliveTimeout``,
default 5 s; Apache ``KeepAliveTimeout``, 5 s; gunicorn ``--keep-alive``, 2 s). If the backend's timer is the
shorter one, the proxy can write a request on a connection the backend has just closed: the backend answers
with a TCP RST and the proxy returns 502 (AWS, "Troubleshoot your Application Load Balancers", *HTTP 502*:
"the target closed the connection with a TCP RST or a TCP FIN while the load balancer had an outstanding
request"; ALB docs, "Connection idle timeout": "we recommend that you configure the idle timeout of your
application to be larger than the idle timeout configured for the load balancer").

The race, precisely: the backend starts its keep-alive timer when it sends a response; the proxy starts its
idle timer when that response arrives (one network delay later). A request written after an idle gap ``g``
(proxy clock) reaches the backend ``g + 2d`` after the backend's timer started (``d``: one-way delay), so it
meets a closed connection iff ``g + 2d > keep_alive_s`` and the proxy had not closed it itself
(``g <= idle_timeout_s``). The proxy does not read the backend's FIN before writing (the case the AWS text
describes; a pool that polls its idle sockets for EOF, as Go's ``net/http`` does, shrinks the window to the
FIN's flight time) and does not retry the failed request. The next request after a 502, or after the proxy's
own idle close, opens a fresh connection (a handshake: one round trip) and cannot meet a stale one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from simulator import NO_REPLY, Message, Node, Simulation

Callback = Callable[[str, Any], None]
RESET = "connection reset by peer"


class KeepAliveBackend:
    """A backend node ``name`` serving ``op`` after ``work_s`` on persistent connections, each closed
    by the backend ``keep_alive_s`` after its last response. A request that arrives on a connection the
    backend has closed is answered with an RST (outcome ``error``, value ``RESET``)."""

    def __init__(self, sim: Simulation, name: str, *, keep_alive_s: float, work_s: float = 0.001,
                 op: str = "http") -> None:
        for n, v in (("keep_alive_s", keep_alive_s), ("work_s", work_s)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{n} must be a finite number of seconds >= 0, got {v!r}")
        self.sim, self.keep_alive_s, self.work_s = sim, keep_alive_s, work_s
        self.node = sim.node(name)
        self.last_response: dict[int, float] = {}  # connection id -> when its keep-alive timer started
        self.resets = 0
        self.node.on(op, self._handle)

    def _handle(self, msg: Message):
        conn = msg.payload["conn"]
        last = self.last_response.get(conn)
        if last is not None and self.sim.now > last + self.keep_alive_s:
            self.resets += 1
            del self.last_response[conn]
            self.node.reply(msg, RESET, "error")
            return NO_REPLY

        def respond() -> None:
            self.last_response[conn] = self.sim.now
            self.node.reply(msg, "200 ok")

        self.last_response.pop(conn, None)  # busy: not idle while the request is served
        self.node.after(self.work_s, respond)
        return NO_REPLY


class KeepAlivePool:
    """A proxy's single persistent connection per destination (requests beyond it wait, FIFO), closed by
    the proxy after ``idle_timeout_s`` idle. Implements the ``Caller`` protocol. A request on a connection
    the backend has closed fails with ``error`` ("502 bad gateway"); counters: ``connects``, ``bad_gateway``,
    ``idle_closes``."""

    def __init__(self, sim: Simulation, *, idle_timeout_s: float, timeout_s: float = 30.0, op: str = "http") -> None:
        if not (isinstance(idle_timeout_s, (int, float)) and idle_timeout_s > 0):
            raise ValueError(f"idle_timeout_s must be > 0 seconds, got {idle_timeout_s!r}")
        self.sim, self.idle_timeout_s, self.timeout_s, self.op = sim, idle_timeout_s, timeout_s, op
        self._conn: dict[str, tuple[int, float] | None] = {}  # dst -> (connection id, idle since) or None
        self._busy: set[str] = set()
        self._waiting: dict[str, deque] = {}
        self._ids = 0
        self.connects = self.bad_gateway = self.idle_closes = 0

    def call(self, node: Node, dst: str, op: str, payload: Any, callback: Callback, *,
             rid: int | None = None, deadline: float | None = None) -> None:
        """Send one request to ``dst`` on its persistent connection (opening one if there is none,
        or if the proxy's idle timer closed it), FIFO behind a request in flight."""
        if dst in self._busy:
            self._waiting.setdefault(dst, deque()).append((node, callback))
            return
        self._busy.add(dst)
        self._send(node, dst, callback)

    def _send(self, node: Node, dst: str, callback: Callback) -> None:
        now = self.sim.now
        c = self._conn.get(dst)
        if c is not None and now - c[1] > self.idle_timeout_s:
            self.idle_closes += 1  # the proxy closed it when its idle timer fired
            c = None
        if c is None:
            self._ids += 1
            conn = self._ids
            self.connects += 1

            def connected(outcome: str, value: Any) -> None:
                if outcome != "ok":
                    self._done(node, dst, None, callback, "unreachable", value)
                else:
                    self._request(node, dst, conn, callback)

            node.call(dst, "__connect__", None, self.timeout_s, connected)
            return
        self._request(node, dst, c[0], callback)

    def _request(self, node: Node, dst: str, conn: int, callback: Callback) -> None:
        def back(outcome: str, value: Any) -> None:
            if outcome == "error" and value == RESET:
                self.bad_gateway += 1
                self._done(node, dst, None, callback, "error", "502 bad gateway")
            elif outcome == "ok":
                self._done(node, dst, (conn, self.sim.now), callback, outcome, value)
            else:
                self._done(node, dst, None, callback, outcome, value)

        node.call(dst, self.op, {"conn": conn}, self.timeout_s, back)

    def _done(self, node: Node, dst: str, conn, callback: Callback, outcome: str, value: Any) -> None:
        self._conn[dst] = conn
        q = self._waiting.get(dst)
        if q:
            nxt_node, nxt_cb = q.popleft()
            self.sim.at(0.0, lambda: self._send(nxt_node, dst, nxt_cb))
        else:
            self._busy.discard(dst)
        callback(outcome, value)


def stale_connection_probability(rate: float, keep_alive_s: float, idle_timeout_s: float,
                                 one_way_s: float = 0.0) -> tuple[float, float]:
    """``(q, pi)`` for Poisson requests at ``rate`` per second on one connection: ``q`` = P(an idle gap
    falls in the window (K - 2d, I]) = e^{-r(K-2d)} - e^{-rI} (0 if I <= K - 2d), the chance a request
    meets a closed connection given that one is open; ``pi = q / (1 + q)`` per request, since the request
    after a 502 opens a fresh connection (a renewal argument: pi = q (1 - pi))."""
    lo = max(0.0, keep_alive_s - 2 * one_way_s)
    q = max(0.0, math.exp(-rate * lo) - math.exp(-rate * idle_timeout_s)) if idle_timeout_s > lo else 0.0
    return q, q / (1 + q)
