"""Cross-language Kafka IO (``--kafka-io=xlang``): Beam's Java KafkaIO behind wirestream's record types.

The native IO (:mod:`pipeline.kafkaio`) runs on every runner. On runners that run a Java SDK harness next to
the Python one (Dataflow Runner v2, Flink and Spark through the portable job server) the Java KafkaIO is an
alternative: its reader is the one Dataflow autoscales on (backlog per partition), and on Flink its offsets
are part of Flink's checkpoints.

Architecture::

    XlangReadFromKafka(config)
        KafkaIO   apache_beam.io.kafka.ReadFromKafka (with_metadata, commit_offset_in_finalize, CreateTime)
                  -> PCollection[Row(topic, partition, offset, timestamp, key, value, headers,
                                     timestampTypeId, timestampTypeName)]       (Java's schema, RowCoder)
        ToKafkaRecords  Row -> KafkaRecord                                        (RowCoder, no pickling)

    XlangWriteToKafka(config, topic)
        ToKafkaRows     OutboundMessage -> KafkaWriteRow(key, value, headers)      (RowCoder)
        KafkaIO         apache_beam.io.kafka.WriteToKafka (with_headers, ByteArraySerializer)

Offsets: with the Java reader, offsets are committed by KafkaIO itself when the runner finalizes the bundle
that read them (``commit_offset_in_finalize``: on Flink when a checkpoint completes, on Dataflow when the
read is durably committed). wirestream's own ``CommitOffsets`` stage is not used; the runner's state
(checkpoint or Dataflow's persistent state) holds everything in flight, so nothing is lost on restart.

Consumer and producer settings are librdkafka names in wirestream's options. Most have the same name in the
Java client and pass through as strings; the few that differ are translated (``sasl.username`` and
``sasl.password`` become ``sasl.jaas.config``; ``ssl.ca.location`` becomes a PEM trust store) and
librdkafka-only settings with no Java meaning are rejected with a :class:`~pipeline.errors.ConfigError`.

The expansion needs a Java expansion service at pipeline construction: ``--expansion-service host:port``
(e.g. the Flink job server's, or ``java -jar beam-sdks-java-io-expansion-service-2.77.0.jar 8097``);
without it Beam starts one from its IO expansion jar (Java and a Maven download required).
"""

from __future__ import annotations

import logging
import time
from typing import Any, List, Mapping, NamedTuple, Optional

import apache_beam as beam

from pipeline.errors import ConfigError
from pipeline.kafkaio import OutboundMessage, StartMode
from pipeline.records import Header, KafkaRecord, register_row_type

__all__ = [
    "XlangReadFromKafka",
    "XlangWriteToKafka",
    "KafkaWriteHeader",
    "KafkaWriteRow",
    "java_consumer_config",
    "java_producer_config",
    "record_from_row",
]

_LOGGER = logging.getLogger(__name__)

# librdkafka settings that have no equivalent in the Java client (or one that takes a different kind of
# value): rejected, naming the setting, rather than silently ignored by the Java consumer.
_LIBRDKAFKA_ONLY = frozenset({
    "enable.partition.eof", "queued.max.messages.kbytes", "queued.min.messages", "log.connection.close",
    "statistics.interval.ms", "socket.keepalive.enable", "api.version.request", "broker.version.fallback",
    "topic.metadata.refresh.interval.ms", "ssl.key.location", "ssl.certificate.location", "ssl.key.pem",
    "ssl.certificate.pem", "ssl.ca.pem", "sasl.kerberos.kinit.cmd", "enable.ssl.certificate.verification",
    "message.max.bytes", "linger.ms.jitter", "queue.buffering.max.messages", "queue.buffering.max.kbytes",
})
# librdkafka defaults our native clients set that mean nothing to Java: dropped, they were ours not the user's.
_NATIVE_DEFAULTS = frozenset({"enable.partition.eof", "queued.max.messages.kbytes", "log.connection.close"})
_CONSUMER_ONLY = frozenset({"group.id", "enable.auto.commit", "auto.offset.reset", "session.timeout.ms",
                            "isolation.level", "max.poll.interval.ms", "fetch.min.bytes", "fetch.max.bytes"})
_SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaWriteHeader(NamedTuple):
    """A header of a record written by the Java KafkaIO (``with_headers=True`` schema)."""

    key: str
    value: Optional[bytes]


class KafkaWriteRow(NamedTuple):
    """One record for the Java KafkaIO's ``kafka_write_with_headers``: key, value, headers.

    ``key`` is None for dead letters of messages that had no key (the dead-letter topic is not compacted).
    """

    key: Optional[bytes]
    value: bytes
    headers: List[KafkaWriteHeader]


register_row_type(KafkaWriteHeader)
register_row_type(KafkaWriteRow)


def _translate(conf: Mapping[str, Any], *, role: str) -> dict:
    out: dict = {}
    bad = sorted(k for k in conf if k in _LIBRDKAFKA_ONLY and k not in _NATIVE_DEFAULTS)
    if bad:
        raise ConfigError(f"--kafka-config {', '.join(bad)}: librdkafka-only setting(s) with no Java KafkaIO "
                          "equivalent; drop them for --kafka-io=xlang (or use --kafka-io=native)")
    for k, v in conf.items():
        if k in _NATIVE_DEFAULTS:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        reveal = getattr(v, "reveal", None)
        out[k] = reveal() if callable(reveal) else str(v)
    user, password = out.pop("sasl.username", None), out.pop("sasl.password", None)
    if user is not None or password is not None:
        mech = out.get("sasl.mechanism", out.get("sasl.mechanisms", "PLAIN")).upper()
        out.pop("sasl.mechanisms", None)
        out["sasl.mechanism"] = mech
        if mech == "PLAIN":
            module = "org.apache.kafka.common.security.plain.PlainLoginModule"
        elif mech in _SCRAM:
            module = "org.apache.kafka.common.security.scram.ScramLoginModule"
        else:
            raise ConfigError(f"--kafka-config sasl.mechanism={mech}: only PLAIN and SCRAM-SHA-256/512 are "
                              "translated for --kafka-io=xlang; pass sasl.jaas.config yourself")
        out.setdefault("sasl.jaas.config",
                       f'{module} required username="{user or ""}" password="{password or ""}";')
    ca = out.pop("ssl.ca.location", None)
    if ca is not None:
        out.setdefault("ssl.truststore.location", ca)
        out.setdefault("ssl.truststore.type", "PEM")
    if role == "producer":
        for k in _CONSUMER_ONLY:
            out.pop(k, None)
    return out


def java_consumer_config(consumer_config: Mapping[str, Any], *, commit: bool) -> dict:
    """The Java consumer settings for ``consumer_config`` (librdkafka names; all values strings)."""
    out = _translate(consumer_config, role="consumer")
    if not out.get("bootstrap.servers"):
        raise ConfigError("XlangReadFromKafka needs bootstrap.servers")
    if commit and not out.get("group.id"):
        raise ConfigError("XlangReadFromKafka commits offsets to a consumer group: group.id is required")
    # committed offsets first; a group without any starts from the earliest retained record
    out.setdefault("auto.offset.reset", "earliest")
    if commit:
        if out.get("enable.auto.commit", "false").lower() == "true":
            raise ConfigError("--kafka-config enable.auto.commit=true would commit offsets of records not yet "
                              "written; with --kafka-io=xlang KafkaIO commits on bundle finalization instead")
        out["enable.auto.commit"] = "false"
    return out


def java_producer_config(producer_config: Mapping[str, Any]) -> dict:
    """Java producer settings: idempotent, acks=all, lz4, 8 MiB requests (as the native writer)."""
    out = _translate(producer_config, role="producer")
    if not out.get("bootstrap.servers"):
        raise ConfigError("XlangWriteToKafka needs bootstrap.servers")
    for k, v in (("enable.idempotence", "true"), ("acks", "all"), ("compression.type", "lz4"),
                 ("max.request.size", str(8 * 1024 * 1024))):
        out.setdefault(k, v)
    return out


def record_from_row(row: Any) -> KafkaRecord:
    """A KafkaRecord from a row of the Java KafkaIO's with-metadata schema (fields read by name).

    ``covers_from`` and ``run_start`` are the record's own offset: the Java reader commits offsets itself,
    so the offset ranges are not used for commits.
    """
    ts = row.timestamp
    type_id = getattr(row, "timestampTypeId", 0)
    timestamp = int(ts) if ts is not None and ts >= 0 and type_id != -1 else None
    headers = [Header(h.key, h.value) for h in (row.headers or [])]
    offset = int(row.offset)
    return KafkaRecord(row.topic, int(row.partition), offset, timestamp, row.key, row.value, headers,
                       offset, offset)


def _row_for(msg: OutboundMessage) -> KafkaWriteRow:
    return KafkaWriteRow(msg.key, msg.value, [KafkaWriteHeader(h.key, h.value) for h in msg.headers])


def _start_read_time(config) -> Optional[int]:
    start = config.start
    if start.mode == StartMode.TIMESTAMP:
        return start.timestamp_ms
    if start.mode == StartMode.EARLIEST:
        return 0  # offsets_for_times(0) is the earliest retained offset, whatever the group committed
    if start.mode == StartMode.LATEST:
        # the Java reader prefers committed offsets over auto.offset.reset, so "latest" is "from now"
        return int(time.time() * 1000)
    if start.mode == StartMode.OFFSETS:
        raise ConfigError("--kafka-io=xlang cannot start at explicit offsets; use a time, committed or earliest")
    return None  # COMMITTED: the group's offsets, else auto.offset.reset=earliest


class XlangReadFromKafka(beam.PTransform):
    """Beam's Java KafkaIO read, as ``PCollection[KafkaRecord]`` (element timestamps = Kafka CreateTime).

    Args:
      config: the job's :class:`pipeline.options.Config` (bootstrap servers, topics, group, start, Kafka
        settings, expansion service).
    """

    def __init__(self, config, *, label: Optional[str] = None):
        super().__init__(label)
        if config.bounded or config.stop_ms is not None:
            raise ConfigError("XlangReadFromKafka has no end bound (--bounded / --stop): use the native IO")
        if not config.input_topics:
            raise ConfigError("XlangReadFromKafka needs at least one input topic")
        self._commit = bool(config.commit_offsets)
        self._consumer_config = java_consumer_config(config.consumer_config, commit=self._commit)
        self._topics = list(config.input_topics)
        self._start_read_time = _start_read_time(config)
        self._expansion_service = config.expansion_service

    @property
    def consumer_config(self) -> dict:
        return dict(self._consumer_config)

    @property
    def topics(self) -> list:
        return list(self._topics)

    def kafka_transform(self):
        """The wrapped ``apache_beam.io.kafka.ReadFromKafka`` (built here, expanded in ``expand``)."""
        from apache_beam.io import kafka

        return kafka.ReadFromKafka(
            consumer_config=self._consumer_config,
            topics=self._topics,
            start_read_time=self._start_read_time,
            commit_offset_in_finalize=self._commit,
            timestamp_policy=kafka.ReadFromKafka.create_time_policy,
            with_metadata=True,
            expansion_service=self._expansion_service,
        )

    def expand(self, pbegin):
        rows = pbegin | "KafkaIO" >> self.kafka_transform()
        return rows | "ToKafkaRecords" >> beam.Map(record_from_row).with_output_types(KafkaRecord)


class XlangWriteToKafka(beam.PTransform):
    """Write ``PCollection[OutboundMessage]`` to ``topic`` with Beam's Java KafkaIO (key, value, headers).

    Returns nothing usable: offsets are committed by the reader (see the module docstring).

    Args:
      config: the job's :class:`pipeline.options.Config`.
      topic: the topic to write.
    """

    def __init__(self, config, topic: str, *, label: Optional[str] = None):
        super().__init__(label)
        if not topic:
            raise ConfigError("XlangWriteToKafka needs a topic")
        self._producer_config = java_producer_config(config.producer_config)
        self._topic = topic
        self._expansion_service = config.expansion_service

    @property
    def producer_config(self) -> dict:
        return dict(self._producer_config)

    def kafka_transform(self):
        from apache_beam.io import kafka

        return kafka.WriteToKafka(producer_config=self._producer_config, topic=self._topic, with_headers=True,
                                  expansion_service=self._expansion_service)

    def expand(self, messages):
        rows = messages | "ToKafkaRows" >> beam.Map(_row_for).with_output_types(KafkaWriteRow)
        return rows | "KafkaIO" >> self.kafka_transform()
