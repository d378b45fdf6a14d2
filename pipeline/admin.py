"""Topic administration with confluent-kafka's AdminClient: idempotent creation of wirestream's topics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pipeline.errors import BrokerError

__all__ = ["TopicSpec", "ensure_topics", "default_topics"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


def default_topics(input_topic: str, output_topic: str, dead_letter_topic: str, *, partitions: int = 6,
                   replication_factor: int = 3, duplicates_topic: str | None = None) -> list[TopicSpec]:
    """The production layout: raw input with time retention, the sink compacted by article id (latest
    version of each article wins), dead letters kept 30 days for a person to look at."""
    week = str(7 * 24 * 3600 * 1000)
    topics = [
        TopicSpec(input_topic, partitions, replication_factor, {"retention.ms": week, "cleanup.policy": "delete"}),
        TopicSpec(output_topic, partitions, replication_factor,
                  {"cleanup.policy": "compact", "min.compaction.lag.ms": str(24 * 3600 * 1000),
                   "max.message.bytes": str(8 * 1024 * 1024)}),
        TopicSpec(dead_letter_topic, 1, replication_factor,
                  {"retention.ms": str(30 * 24 * 3600 * 1000), "cleanup.policy": "delete",
                   "max.message.bytes": str(8 * 1024 * 1024)}),
    ]
    if duplicates_topic:
        topics.append(TopicSpec(duplicates_topic, partitions, replication_factor,
                                {"retention.ms": week, "cleanup.policy": "delete"}))
    return topics


def ensure_topics(admin_config: Mapping[str, Any], topics: Iterable[TopicSpec], *, timeout: float = 30.0
                  ) -> dict[str, str]:
    """Create the topics that do not exist; leave existing ones alone. Returns {name: 'created'|'exists'}."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    from pipeline.kafkaio import kafka_client

    admin = kafka_client(AdminClient, admin_config, "admin")
    existing = set(admin.list_topics(timeout=timeout).topics)
    todo = [t for t in topics if t.name not in existing]
    status = {t.name: "exists" for t in topics if t.name in existing}
    if not todo:
        return status
    futures = admin.create_topics([NewTopic(t.name, num_partitions=t.partitions,
                                            replication_factor=t.replication_factor, config=dict(t.config))
                                   for t in todo], request_timeout=timeout)
    for name, fut in futures.items():
        try:
            fut.result(timeout)
            status[name] = "created"
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if getattr(err, "code", lambda: None)() == KafkaError.TOPIC_ALREADY_EXISTS:
                status[name] = "exists"
            else:
                raise BrokerError(f"could not create topic {name!r}: {exc}") from exc
    _LOGGER.info("topics: %s", status)
    return status
