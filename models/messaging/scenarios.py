"""Ready-made worlds for experiments, tests and benchmarks: a Kafka-like log with a producer, a
consumer group and (for effectively-once) a sink, all recording into one delivery log."""

from __future__ import annotations

from dataclasses import dataclass

from simulator import Distribution, Exponential, LogNormal, Simulation
from simulator.history.delivery import DeliveryLog

from .consumer import Inbox
from .group import GroupConfig, GroupCoordinator, LogConsumer, OffsetSink
from .log import LogCluster, LogConfig, TopicConfig
from .producer import LogProducer


@dataclass
class LogWorld:
    """A built log world: the cluster, its producer, coordinator and consumers, the optional offset
    sink (effectively-once) and the delivery log they all record into.
    """
    sim: Simulation
    cluster: LogCluster
    producer: LogProducer
    coordinator: GroupCoordinator
    consumers: list[LogConsumer]
    sink: OffsetSink | None
    log: DeliveryLog
    topic: str = "events"

    def committed(self, partition: int) -> int:
        """The offset consumption will resume from (the sink's, for effectively-once)."""
        src = self.sink.offsets if self.sink is not None else self.coordinator.committed
        return src.get(partition, 0)


def log_world(seed: int, *, brokers: int = 3, partitions: int = 6, replication_factor: int = 3,
              min_insync_replicas: int = 2, unclean_leader_election: bool = False, acks: str = "all",
              idempotent: bool = True, rate: float = 1000.0, keys: int = 50, stop_at: float = 10.0,
              consumers: int = 3, commit: str = "after", session_timeout_s: float = 2.0,
              heartbeat_interval_s: float = 0.3, max_poll_records: int = 50,
              service: Distribution | float = Exponential(0.0005), latency: Distribution | float | None = None,
              log_config: LogConfig | None = None, request_timeout_s: float = 1.0, linger_s: float = 0.005,
              batch_size: int = 100, tick_s: float | None = None, limit: int | None = None,
              inbox_ttl_s: float | None = None) -> LogWorld:
    """A 3-broker log, one producer, ``consumers`` group members (plus a sink for
    ``commit="transactional"``, an inbox shared by the members with ``inbox_ttl_s``)."""
    sim = Simulation(seed=seed)
    sim.network(latency=LogNormal(median=0.001, sigma=0.3) if latency is None else latency)
    topic = "events"
    cluster = LogCluster(sim, "kafka", brokers=brokers, config=log_config or LogConfig(broker_session_timeout_s=1.0),
                         topics={topic: TopicConfig(partitions, replication_factor, min_insync_replicas,
                                                    unclean_leader_election)})
    log = DeliveryLog()
    producer = LogProducer(sim, "producer", cluster, topic, rate=rate, log=log, keys=keys, acks=acks,
                           idempotent=idempotent, stop_at=stop_at, request_timeout_s=request_timeout_s,
                           linger_s=linger_s, batch_size=batch_size, tick_s=tick_s, limit=limit)
    gcfg = GroupConfig(session_timeout_s=session_timeout_s, heartbeat_interval_s=heartbeat_interval_s, commit=commit,
                       max_poll_records=max_poll_records)
    coord = GroupCoordinator(sim, "coordinator", partitions, gcfg)
    sink = OffsetSink(sim, "sink", log) if commit == "transactional" else None
    inbox = None if inbox_ttl_s is None else Inbox(sim, inbox_ttl_s)
    cons = [LogConsumer(sim, f"consumer{i}", cluster, topic, "coordinator", log=log, service=service, config=gcfg,
                        sink=None if sink is None else "sink", inbox=inbox) for i in range(consumers)]
    return LogWorld(sim, cluster, producer, coord, cons, sink, log, topic)
