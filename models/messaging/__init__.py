"""Messaging on the fault kernel: an SQS-like queue broker, a Kafka-like replicated partitioned log
with consumer groups, competing and idempotent consumers. Every broker, producer and consumer is a
kernel node, so crashes, pauses and partitions apply; deliveries are recorded in a
``simulator.history.delivery.DeliveryLog`` for the delivery checker."""

from .consumer import ConsumerConfig, HandlerConfig, Inbox, QueueConsumer
from .group import GroupConfig, GroupCoordinator, LogConsumer, OffsetSink, assign, lag_sampler
from .log import LogCluster, LogConfig, TopicConfig
from .producer import LogProducer, QueueProducer
from .pubsub import PUBLISH, Requester, Responder, Topic
from .queue import QueueBroker, QueueConfig

__all__ = ["ConsumerConfig", "GroupConfig", "GroupCoordinator", "HandlerConfig", "Inbox", "LogCluster", "LogConfig",
           "LogConsumer", "LogProducer", "OffsetSink", "PUBLISH", "QueueBroker", "QueueConfig", "QueueConsumer",
           "QueueProducer", "Requester", "Responder", "Topic", "TopicConfig", "assign", "lag_sampler"]
