"""A business flow as a chain of services, called synchronously (RPC) or decoupled by queues.

The same three steps — accept an order, charge the payment, reserve the inventory — wired two
ways, so an experiment can compare them under the same faults:

- **Synchronous** (:class:`RpcStage`): each service does its local work, calls the next one and
  answers only when that call answered ``ok``; the caller's answer depends on every service
  downstream being up ("temporal coupling").
- **Asynchronous** (:class:`QueueFrontDoor`, :class:`QueueRelay`, then a
  :class:`~models.messaging.consumer.QueueConsumer`): the front door answers once the broker has
  *stored* the order; a relay consumes one queue, does its work, sends to the next queue and only
  then deletes its input (at-least-once hand-off; a crash between the two repeats the send). The
  user is answered before the downstream state changes: eventual consistency (Hohpe & Woolf,
  *Enterprise Integration Patterns*, "Message Channel" / "Guaranteed Delivery"; Richardson,
  *Microservices Patterns*, ch. 3 on synchronous vs asynchronous communication).

Both wirings record into one :class:`~simulator.history.delivery.DeliveryLog`: ``send`` when the
order reaches the front door, ``ack`` when the front door answers ``ok``, ``process`` when the
last service applied it — so ``process - ack`` is how stale the downstream state is when the user
is told "done".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator import NO_REPLY, Distribution
from simulator.history.delivery import DeliveryLog

from .consumer import ConsumerConfig, HandlerConfig, PollingSlots
from .queue import CHANGE_VISIBILITY, DELETE, SEND

if TYPE_CHECKING:
    from simulator import Message, Simulation


def _check_timeout(name: str, v: float) -> None:
    if not (isinstance(v, (int, float)) and 0 < v < float("inf")):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {v!r}")


class RpcStage:
    """A service in a synchronous chain: serves ``op``; does ``work``; calls ``next_op`` on
    ``next_node`` (timeout ``timeout_s``) and answers ``ok`` only if that answered ``ok``, else
    ``error`` (the caller cannot tell whether the downstream effect happened). With ``log``: the
    first stage (``first=True``) records ``send``/``ack`` of a fresh order id, the last stage
    (no ``next_node``) records ``process``. Threads are unbounded (no pool limit)."""

    def __init__(self, sim: Simulation, name: str, op: str, *, work: Distribution | float = 0.0,
                 next_node: str | None = None, next_op: str | None = None, timeout_s: float = 1.0,
                 log: DeliveryLog | None = None, first: bool = False) -> None:
        _check_timeout("timeout_s", timeout_s)
        if (next_node is None) != (next_op is None):
            raise ValueError("next_node and next_op must be given together")
        self.sim, self.name, self.log, self.first = sim, name, log, first
        self.next_node, self.next_op, self.timeout_s = next_node, next_op, float(timeout_s)
        self.node = sim.nodes.get(name) or sim.node(name)
        self._work = sim.sampler(work, f"stage.{name}.work")
        self.answered = {"ok": 0, "error": 0}
        self.node.on(op, self._on_request)

    def _on_request(self, msg: Message):
        node, sim, log = self.node, self.sim, self.log
        if self.first:
            oid = log.new_id() if log is not None else None
            if log is not None:
                log.send(oid, 0, sim.now)
        else:
            oid = msg.payload

        def answer(ok: bool) -> None:
            self.answered["ok" if ok else "error"] += 1
            if ok and self.first and log is not None:
                log.ack(oid, 0, sim.now)
            node.reply(msg, oid, "ok" if ok else "error")

        def worked() -> None:
            if self.next_node is None:
                if log is not None:
                    log.process(oid, 0, sim.now)
                answer(True)
                return
            node.call(self.next_node, self.next_op, oid, self.timeout_s, lambda o, v: answer(o == "ok"))

        node.after(self._work() * node.slow_factor, worked)
        return NO_REPLY


class QueueFrontDoor:
    """Serves ``op``: does ``work``, sends a fresh order id to ``queue`` on ``broker`` and answers
    ``ok`` once the broker acknowledged (stored) it, ``error`` if the send failed or timed out."""

    def __init__(self, sim: Simulation, name: str, op: str, broker: str, queue: str, *, log: DeliveryLog,
                 work: Distribution | float = 0.0, timeout_s: float = 1.0) -> None:
        _check_timeout("timeout_s", timeout_s)
        self.sim, self.name, self.broker, self.queue, self.log = sim, name, broker, queue, log
        self.timeout_s = float(timeout_s)
        self.node = sim.nodes.get(name) or sim.node(name)
        self._work = sim.sampler(work, f"stage.{name}.work")
        self.answered = {"ok": 0, "error": 0}
        self.node.on(op, self._on_request)

    def _on_request(self, msg: Message):
        node, sim, log = self.node, self.sim, self.log
        oid = log.new_id()
        log.send(oid, 0, sim.now)

        def stored(outcome: str, _v) -> None:
            ok = outcome == "ok"
            self.answered["ok" if ok else "error"] += 1
            if ok:
                log.ack(oid, 0, sim.now)
            node.reply(msg, oid, "ok" if ok else "error")

        node.after(self._work() * node.slow_factor,
                   lambda: node.call(self.broker, SEND, (self.queue, oid, 0, None, None), self.timeout_s, stored))
        return NO_REPLY


class QueueRelay(PollingSlots):
    """A consumer of ``source`` that does its work per message (``handler.service``), sends the
    message (same id and group) to ``target`` and deletes it from ``source`` once the broker
    acknowledged the send; a failed send nacks it (``config.on_failure``) for a later retry.
    ``relayed`` holds ``(msg_id, time)`` per forwarded message (a redelivery forwards again); ``queue`` is
    ``source`` (the queue its slots poll)."""

    def __init__(self, sim: Simulation, name: str, broker: str, source: str, target: str, *,
                 handler: HandlerConfig | None = None, config: ConsumerConfig | None = None) -> None:
        self.sim, self.name, self.broker, self.queue, self.target = sim, name, broker, source, target
        self.node = sim.nodes.get(name) or sim.node(name)
        self.handler = handler or HandlerConfig()
        self.config = config or ConsumerConfig()
        self._service = sim.sampler(self.handler.service, f"relay.{name}.service")
        self.relayed: list[tuple] = []
        self.node.on_recover(self._start)
        sim.at(0.0, self._start)

    def _handle(self, batch: list, i: int) -> None:
        if i >= len(batch):
            self._poll()
            return
        receipt, msg_id, group = batch[i][:3]
        node, c = self.node, self.config

        def sent(outcome: str, _v) -> None:
            if outcome == "ok":
                self.relayed.append((msg_id, self.sim.now))
                node.call(self.broker, DELETE, (self.queue, receipt), c.rpc_timeout_s,
                          lambda o, v: self._handle(batch, i + 1))
                return
            if c.on_failure == "nack":
                node.call(self.broker, CHANGE_VISIBILITY, (self.queue, receipt, 0.0), c.rpc_timeout_s,
                          lambda o, v: None)
            self._handle(batch, i + 1)

        node.after(self._service() * node.slow_factor,
                   lambda: node.call(self.broker, SEND, (self.target, msg_id, group, None, None), c.rpc_timeout_s,
                                     sent))
