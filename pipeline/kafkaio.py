"""Native Python Kafka IO for Beam, on confluent-kafka (librdkafka).

Beam's own Python ``ReadFromKafka`` is cross-language (Java expansion service); this module is the
portable pure-Python connector, written the way Beam's IO modules are: composite PTransforms over a pure
reader.

Architecture::

    Impulse -> _ResolvePartitions (DoFn: topics -> one PartitionSpec per topic-partition, start/stop offsets)
            -> Reshuffle (spread partitions over workers)
            -> _ReadPartitionFn (splittable DoFn: restriction = offset range of one partition)
            => PCollection[KafkaRecord]   (or PCollection[List[KafkaRecord]], one fetch per element: batched)

    PCollection[OutboundMessage] (or of List[OutboundMessage]: batched) -> _WriteFn (idempotent producer, flush at bundle end, fail the bundle on any
            delivery error) => PCollection[Ack]   (acks of the inputs whose outputs are now durable)

    PCollection[Ack] -> CommitOffsets (keyed by partition; commits the contiguous prefix of handled offsets to
            the consumer group) -- offsets are committed only after every record below them was written,
            dropped as a duplicate or dead-lettered: a crash never loses an article.

Offsets and the dev broker: tansu answers ListOffsets wrongly, so the end of a partition is taken from the
high watermark of a fetch response (``get_watermark_offsets(cached=True)`` after a fetch), which is right on
every Kafka-protocol broker. Timestamp starts use ``offsets_for_times`` (correct on Apache Kafka, Redpanda,
MSK, Confluent Cloud; not on tansu).
"""

from __future__ import annotations

import enum
import logging
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam import coders
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms import userstate
from apache_beam.transforms.window import GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.errors import BrokerError, ConfigError, DeliveryError
from pipeline.records import Ack, Header, KafkaRecord, register_row_type

__all__ = [
    "StartMode",
    "StartSpec",
    "PartitionSpec",
    "OutboundMessage",
    "ReadFromKafka",
    "WriteToKafka",
    "CommitOffsets",
    "AckDropped",
    "merge_acks",
    "parse_start",
    "redact_config",
    "is_secret_key",
    "kafka_client",
    "close_clients",
]

_LOGGER = logging.getLogger(__name__)
_NAMESPACE = "wirestream"
_OPEN_END = sys.maxsize
# A setting whose name holds one of these is a secret: kept as a Secret when parsed (pipeline.options),
# blanked in logs and in the errors of kafka_client().
_SECRET_MARKERS = ("password", "secret", "key.pem", "private", "token", "credentials", "sasl.jaas",
                   "basic.auth.user.info")


def is_secret_key(key: str) -> bool:
    """Whether the setting ``key`` (librdkafka or schema registry) holds a secret."""
    k = key.lower()
    return any(m in k for m in _SECRET_MARKERS)


_LIVE_CLIENTS: "weakref.WeakSet" = weakref.WeakSet()


def close_clients(*, producers: bool = True) -> None:
    """Tear down the Kafka clients of DoFns in this process (in-process runners do not always call
    ``teardown``); afterwards no producer keeps reconnecting to a broker that has gone away.

    ``producers=False`` keeps the shared producers (flushed) for another run in this process.
    """
    for fn in list(_LIVE_CLIENTS):
        try:
            fn.teardown()
        except Exception as exc:  # noqa: BLE001 - best effort at shutdown
            _LOGGER.debug("teardown of %s failed: %s", type(fn).__name__, exc)
    if not producers:
        return
    with _PRODUCERS_LOCK:
        producers = list(_PRODUCERS.values())
        _PRODUCERS.clear()
    for producer in producers:
        try:
            producer.flush(10)
        except Exception as exc:  # noqa: BLE001 - best effort at shutdown
            _LOGGER.debug("flush of a shared producer failed: %s", exc)


#: Settings that only consumers accept: dropped when a job-wide Kafka config is used for a producer.
_CONSUMER_ONLY = ("group.id", "enable.auto.commit", "enable.partition.eof", "auto.offset.reset",
                  "session.timeout.ms", "queued.max.messages.kbytes")

_PRODUCERS: dict = {}
_PRODUCERS_LOCK = threading.Lock()


def producer_settings(config: Mapping[str, Any]) -> dict:
    """The librdkafka settings of wirestream's producers: idempotent, ``acks=all``, lz4, then ``config``
    (consumer-only keys dropped)."""
    # enable.sparse.connections off: the idempotent producer needs its producer id before it sends
    # anything, and librdkafka asks for it when a broker connection comes up or on a 500 ms timer. With
    # sparse connections (the default) no broker is connected until the first message waits, so a job's
    # first delivery waited up to 1 s (bench/bench_io.py: a 0.5 s flush stall in most runs); connected at
    # start-up, the id is there before the graph is built (:func:`warm_producer`). It costs a connection
    # to each broker of the cluster, which a producer writing every partition of a topic opens anyway.
    conf = {"enable.idempotence": True, "acks": "all", "linger.ms": 20, "compression.type": "lz4",
            "message.max.bytes": 8 * 1024 * 1024, "log.connection.close": False,
            "enable.sparse.connections": False}
    conf.update(config)
    for k in _CONSUMER_ONLY:
        conf.pop(k, None)
    return conf


# Settings the Python client reads itself (not librdkafka) and wants typed, where --kafka-config gives text.
_BOOLEAN_CLIENT_SETTINGS = ("delivery.report.only.error",)


def _typed_client_settings(conf: dict) -> dict:
    for k in _BOOLEAN_CLIENT_SETTINGS:
        v = conf.get(k)
        if isinstance(v, str):
            if v.strip().lower() not in ("true", "false"):
                raise ConfigError(f"{k}={v!r}: expected true or false (--kafka-config)")
            conf[k] = v.strip().lower() == "true"
    return conf


def kafka_client(cls, conf: Mapping[str, Any], role: str):
    """``cls(conf)`` (a confluent-kafka Producer, Consumer or AdminClient; the Python client's own boolean
    settings read from text), or a ConfigError naming what the client refused, with the values of secret
    settings blanked out of its message. Every client wirestream makes goes through here (the embedded
    dev broker's own readiness probe aside)."""
    from confluent_kafka import KafkaException

    conf = _typed_client_settings(dict(conf))
    try:
        return cls(conf)
    except (KafkaException, TypeError, ValueError) as exc:
        err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        reason = err.str() if hasattr(err, "str") else str(exc)
        for k, v in conf.items():
            if isinstance(v, str) and v and is_secret_key(k):
                reason = reason.replace(v, "***")
        raise ConfigError(f"the Kafka client refused the {role} settings: {reason}; check --kafka-config and "
                          "--kafka-config-file (librdkafka's CONFIGURATION.md lists the valid ones)") from None


def shared_producer(config: Mapping[str, Any]):
    """The process's producer for these settings, created on first use and shared by every writer.

    One producer per process is how Kafka clients are meant to be used (thread-safe; batches across
    topics), and it matters for latency: an idempotent producer's first delivery waits for its producer
    id, which librdkafka requests on a timer (~0.5 s after start-up), so a producer per writer step paid
    that once per step and run. :func:`warm_producer` starts it early. Delivery errors stay per writer:
    each message carries its writer's callback.
    """
    from confluent_kafka import Producer

    conf = producer_settings(config)
    key = tuple(sorted((k, repr(v)) for k, v in conf.items()))
    with _PRODUCERS_LOCK:
        producer = _PRODUCERS.get(key)
        if producer is None:
            producer = _PRODUCERS[key] = kafka_client(Producer, conf, "producer")
        return producer


def warm_producer(config: Mapping[str, Any]) -> None:
    """Create the shared producer for ``config`` now (in this process), so that its producer id is ready
    by the time the first write flushes: a local run calls it before building the graph."""
    shared_producer(config).poll(0)


def redact_config(config: Mapping[str, Any]) -> dict:
    """A copy of a librdkafka config safe to log: secret values replaced by '***'."""
    return {k: ("***" if is_secret_key(k) else v) for k, v in config.items()}


class StartMode(enum.Enum):
    EARLIEST = "earliest"
    LATEST = "latest"
    COMMITTED = "committed"  # the group's committed offsets, else earliest
    TIMESTAMP = "timestamp"
    OFFSETS = "offsets"


@dataclass(frozen=True)
class StartSpec:
    """Where to start reading. ``timestamp_ms`` for TIMESTAMP; ``offsets`` ((topic|None, partition, offset), ...)
    for OFFSETS (partitions not listed start from the committed offsets, else earliest)."""

    mode: StartMode = StartMode.COMMITTED
    timestamp_ms: Optional[int] = None
    offsets: Tuple[Tuple[Optional[str], int, int], ...] = ()


def parse_start(text: str) -> StartSpec:
    """Parse ``--start``: earliest | latest | committed | ISO-8601 time | P:OFFSET[,P:OFFSET] | TOPIC:P:OFFSET,...

    >>> parse_start("0:5,1:7").offsets
    ((None, 0, 5), (None, 1, 7))
    """
    from pipeline.parse import parse_iso_ms

    t = text.strip()
    if t.lower() in {m.value for m in (StartMode.EARLIEST, StartMode.LATEST, StartMode.COMMITTED)}:
        return StartSpec(StartMode(t.lower()))
    if ":" in t and all(part.replace(":", "").replace("-", "").replace("_", "").replace(".", "").isalnum()
                        for part in t.split(",")) and not any(c in t for c in "T "):
        offsets = []
        try:
            for part in t.split(","):
                bits = part.strip().split(":")
                if len(bits) == 2:
                    offsets.append((None, int(bits[0]), int(bits[1])))
                elif len(bits) == 3:
                    offsets.append((bits[0], int(bits[1]), int(bits[2])))
                else:
                    raise ValueError(part)
        except ValueError as exc:
            raise ConfigError(f"--start {text!r}: expected PARTITION:OFFSET[,...] or TOPIC:PARTITION:OFFSET[,...]") from exc
        if any(o[2] < 0 or o[1] < 0 for o in offsets):
            raise ConfigError(f"--start {text!r}: partitions and offsets must be >= 0")
        return StartSpec(StartMode.OFFSETS, offsets=tuple(offsets))
    ms = parse_iso_ms(t)
    if ms is None:
        raise ConfigError(f"--start {text!r}: use earliest, latest, committed, an ISO-8601 time "
                          "(2026-11-28T10:00:00Z) or PARTITION:OFFSET pairs (0:42,1:17)")
    return StartSpec(StartMode.TIMESTAMP, timestamp_ms=ms)


class PartitionSpec(NamedTuple):
    """One topic-partition to read: offsets [start_offset, stop_offset) (stop -1: open-ended)."""

    topic: str
    partition: int
    start_offset: int
    stop_offset: int
    stop_timestamp_ms: int  # -1: none


register_row_type(PartitionSpec)


class OutboundMessage(NamedTuple):
    """A message to produce, with the Ack of the input it came from (None for messages that ack nothing)."""

    key: Optional[bytes]
    value: bytes
    headers: List[Header]
    ack: Optional[Ack]


register_row_type(OutboundMessage)


def _consumer(config: Mapping[str, Any], **overrides: Any):
    from confluent_kafka import Consumer

    conf = {"enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
            "queued.max.messages.kbytes": 8192, "session.timeout.ms": 6000,
            "group.id": "wirestream", "log.connection.close": False}
    conf.update(config)
    conf.update(overrides)
    return kafka_client(Consumer, conf, "consumer")


# ---------------------------------------------------------------------------------------------- reading


class _ResolvePartitions(beam.DoFn):
    """Impulse -> PartitionSpec per partition of the topics, with concrete start and stop offsets."""

    def __init__(self, config: Mapping[str, Any], topics: Sequence[str], start: StartSpec, bounded: bool,
                 stop_timestamp_ms: Optional[int], timeout_s: float):
        self._config = dict(config)
        self._topics = list(topics)
        self._start = start
        self._bounded = bounded
        self._stop_ts = stop_timestamp_ms
        self._timeout = timeout_s

    def process(self, _impulse) -> Iterable[PartitionSpec]:
        from confluent_kafka import TopicPartition

        consumer = _consumer(self._config)
        try:
            tps = []
            for topic in self._topics:
                md = consumer.list_topics(topic, timeout=self._timeout)
                tmd = md.topics.get(topic)
                if tmd is None or tmd.error is not None or not tmd.partitions:
                    raise BrokerError(f"input topic {topic!r} does not exist or has no partitions "
                                      f"({tmd.error if tmd is not None else 'not in metadata'}); create it first "
                                      "(deploy/kafka/create_topics.py) or check --input-topic")
                tps += [TopicPartition(topic, p) for p in sorted(tmd.partitions)]
            starts = self._start_offsets(consumer, tps)
            stops = _probe_high_watermarks(self._config, tps, self._timeout) if self._bounded else {}
            for tp in tps:
                key = (tp.topic, tp.partition)
                stop = stops.get(key, -1) if self._bounded else -1
                start = starts[key]
                if stop >= 0:
                    start = min(start, stop)
                yield PartitionSpec(tp.topic, tp.partition, start, stop,
                                    self._stop_ts if self._stop_ts is not None else -1)
        finally:
            consumer.close()

    def _start_offsets(self, consumer, tps) -> dict:
        from confluent_kafka import TopicPartition

        lows = {}
        for tp in tps:
            low, _high = consumer.get_watermark_offsets(tp, timeout=self._timeout, cached=False)
            lows[(tp.topic, tp.partition)] = max(low, 0)
        mode = self._start.mode
        if mode == StartMode.EARLIEST:
            return lows
        if mode == StartMode.LATEST:
            return _probe_high_watermarks(self._config, tps, self._timeout)
        if mode == StartMode.TIMESTAMP:
            found = consumer.offsets_for_times(
                [TopicPartition(tp.topic, tp.partition, self._start.timestamp_ms) for tp in tps],
                timeout=self._timeout)
            highs = None
            out = {}
            for tp in found:
                if tp.offset >= 0:
                    out[(tp.topic, tp.partition)] = tp.offset
                else:  # no record at or after the time: start at the end
                    highs = highs or _probe_high_watermarks(self._config, tps, self._timeout)
                    out[(tp.topic, tp.partition)] = highs[(tp.topic, tp.partition)]
            return out
        committed = {(tp.topic, tp.partition): tp.offset
                     for tp in consumer.committed(tps, timeout=self._timeout)}
        out = {k: (v if v is not None and v >= 0 else lows[k]) for k, v in committed.items()}
        if mode == StartMode.OFFSETS:
            for topic, part, off in self._start.offsets:
                for key in list(out):
                    if key[1] == part and (topic is None or topic == key[0]):
                        out[key] = off
        return out


def _probe_high_watermarks(config: Mapping[str, Any], tps, timeout_s: float) -> dict:
    """High watermark of each partition, taken from a fetch response (one fetch per partition).

    Fetching is how the high watermark is learnt on every Kafka-protocol broker; ListOffsets(latest) is not
    used because some brokers (tansu) answer it wrongly. The fetches start at each partition's low
    watermark, looked up first: assigned at the logical beginning instead, the client resolved it only
    after ~500 ms. Nothing waits for more messages than have arrived (``consume()`` with a timeout returns
    early only once ``num_messages`` are there: waiting for one per partition cost a quarter of the runs of
    a 20,000-article replay 0.5 s), and the broker is asked to answer an empty fetch at once
    (``fetch.wait.max.ms``, 500 ms by default).
    """
    from confluent_kafka import KafkaError, TopicPartition

    consumer = _consumer(config, **{"group.id": "wirestream-probe", "enable.partition.eof": True,
                                    "fetch.wait.max.ms": 10})
    try:
        starts = []
        for tp in tps:
            low, _ = consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
            starts.append(TopicPartition(tp.topic, tp.partition, max(low, 0)))
        consumer.assign(starts)
        pending = {(tp.topic, tp.partition) for tp in tps}
        highs: dict = {}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msgs = consumer.consume(num_messages=500, timeout=0) or consumer.consume(num_messages=1, timeout=0.05)
            for msg in msgs:
                key = (msg.topic(), msg.partition())
                if key not in pending:
                    continue
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    raise BrokerError(f"fetching {key[0]}[{key[1]}] failed: {err}")
                _low, high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
                if high >= 0:
                    highs[key] = high
                    pending.discard(key)
                    consumer.pause([TopicPartition(*key)])
        if pending:
            raise BrokerError(f"no fetch answer for {sorted(pending)} within {timeout_s:.0f}s; is the broker "
                              "reachable and the partition leader up?")
        return highs
    finally:
        consumer.close()


class _CheckpointOnlyTracker(OffsetRestrictionTracker):
    """Offset-range tracker that splits only at checkpoints (fraction 0).

    A Kafka partition is consumed sequentially; refusing dynamic splits keeps every record's
    ``covers_from`` chain gap-free, which the offset committer relies on.
    """

    def try_split(self, fraction_of_remainder):
        if fraction_of_remainder != 0:
            return None
        return super().try_split(fraction_of_remainder)


class _PartitionRestrictionProvider(beam.transforms.core.RestrictionProvider):
    def initial_restriction(self, spec: PartitionSpec) -> OffsetRange:
        stop = spec.stop_offset if spec.stop_offset >= 0 else _OPEN_END
        return OffsetRange(spec.start_offset, max(stop, spec.start_offset))

    def create_tracker(self, restriction: OffsetRange):
        return _CheckpointOnlyTracker(restriction)

    def restriction_size(self, spec, restriction: OffsetRange) -> int:
        if restriction.stop >= _OPEN_END:
            return 1 << 20  # unknown backlog
        return max(0, restriction.stop - restriction.start)

    def split(self, spec, restriction):
        yield restriction

    def truncate(self, spec, restriction):
        # On drain, stop reading: nothing more is claimed.
        return None


class _ReadPartitionFn(beam.DoFn):
    """Splittable DoFn reading one Kafka partition per element, one offset range per restriction.

    Each call reads for at most ``max_records`` records or ``max_seconds`` and then checkpoints, so
    downstream stages see data continuously in unbounded mode. An idle partition defers for
    ``idle_poll_seconds`` and advances its watermark to wall time minus ``idle_watermark_lag_seconds``.
    """

    def __init__(self, config: Mapping[str, Any], *, bounded: bool, max_records: int, max_seconds: float,
                 idle_poll_seconds: float, idle_watermark_lag_seconds: float, counter: str = "read",
                 batched: bool = False):
        self._config = dict(config)
        self._bounded = bounded
        self._batched = batched
        self._max_records = max_records
        self._max_seconds = max_seconds
        self._idle_poll = idle_poll_seconds
        self._idle_lag = idle_watermark_lag_seconds
        self._consumers: dict = {}
        self._read = beam.metrics.Metrics.counter(_NAMESPACE, counter)
        self._bytes = beam.metrics.Metrics.counter(_NAMESPACE, f"{counter}_bytes")

    def setup(self):
        self._consumers = {}
        _LIVE_CLIENTS.add(self)

    def teardown(self):
        for consumer, _pos in self._consumers.values():
            try:
                consumer.close()
            except Exception:  # noqa: BLE001 - closing on shutdown
                pass
        self._consumers = {}

    def _consumer_at(self, topic: str, partition: int, offset: int):
        from confluent_kafka import TopicPartition

        key = (topic, partition)
        entry = self._consumers.get(key)
        if entry is None:
            consumer = _consumer(self._config)
            consumer.assign([TopicPartition(topic, partition, offset)])
            self._consumers[key] = [consumer, offset]
            return consumer
        consumer, pos = entry
        if pos != offset:
            consumer.seek(TopicPartition(topic, partition, offset))
            entry[1] = offset
        return consumer

    @beam.DoFn.unbounded_per_element()
    def process(self, spec: PartitionSpec,
                tracker=beam.DoFn.RestrictionParam(_PartitionRestrictionProvider()),
                watermark=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())):
        restriction = tracker.current_restriction()
        if restriction.start >= restriction.stop:
            return
        for fetched in self._fetch(spec, tracker, watermark):
            if self._batched:
                # one element per fetch, stamped with its earliest record; the watermark follows it
                earliest = _event_time(min((ms for _, ms in fetched if ms is not None), default=None))
                if any(ms is None for _, ms in fetched):
                    earliest = min(earliest, Timestamp.now())
                self._advance(watermark, earliest)
                yield TimestampedValue([rec for rec, _ in fetched], earliest)
            else:
                for rec, ms in fetched:
                    ts = _event_time(ms)
                    self._advance(watermark, ts)
                    yield TimestampedValue(rec, ts)

    @staticmethod
    def _advance(watermark, event_time) -> None:
        cur = watermark.current_watermark()
        if cur is None or event_time > cur:
            watermark.set_watermark(event_time)

    def _fetch(self, spec: PartitionSpec, tracker, watermark):
        """Yields what each fetch brought, claimed: a list of ``(record, Kafka timestamp ms or None)``."""
        from confluent_kafka import KafkaError

        restriction = tracker.current_restriction()
        pos = restriction.start
        consumer = self._consumer_at(spec.topic, spec.partition, pos)
        entry = self._consumers[(spec.topic, spec.partition)]
        deadline = time.monotonic() + self._max_seconds
        emitted = 0
        quiet_since = time.monotonic()
        while True:
            # consume() with a timeout returns early only when num_messages are ready, so take what the
            # client has already fetched without waiting, and wait only for the next single record (or the
            # partition-end event) when nothing is there: a short partition must not cost a poll interval.
            msgs = consumer.consume(num_messages=min(500, self._max_records), timeout=0)
            if not msgs:
                msgs = consumer.consume(num_messages=1, timeout=0.05)
            now = time.monotonic()
            if msgs:
                quiet_since = now
            idle = not msgs and now - quiet_since >= self._idle_poll
            out: list = []
            done = False
            end_claim = None  # claimed after the records: a position at or past the range's end
            nbytes = 0
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        idle = True
                        if restriction.stop < _OPEN_END and msg.offset() >= restriction.stop:
                            end_claim = restriction.stop  # finished: nothing left in range
                            entry[1] = msg.offset()
                            done = True
                            break
                        continue
                    if err.fatal() or not err.retriable():
                        raise BrokerError(f"reading {spec.topic}[{spec.partition}] at offset {pos}: {err}")
                    _LOGGER.warning("retriable error reading %s[%d]: %s", spec.topic, spec.partition, err)
                    continue
                off = msg.offset()
                if off < pos:
                    continue  # already handled (re-fetch after a seek)
                ts_type, ts = msg.timestamp()
                ts = ts if ts_type != 0 and ts >= 0 else None
                if spec.stop_timestamp_ms >= 0 and ts is not None and ts >= spec.stop_timestamp_ms:
                    end_claim = max(off, restriction.stop)  # stop time reached: done
                    done = True
                    break
                if off >= restriction.stop:
                    end_claim = off  # past the range (offsets may skip its last positions): done
                    done = True
                    break
                value = msg.value()
                rec = KafkaRecord(spec.topic, spec.partition, off, ts, msg.key(), value,
                                  [Header(k, v) for k, v in (msg.headers() or [])], pos, spec.start_offset)
                pos = off + 1
                nbytes += len(value or b"")
                out.append((rec, ts))
                if pos >= restriction.stop:
                    # the range's last record: done, without waiting for the partition-end event (a broker
                    # answers a fetch at the log end only after fetch.wait.max.ms, 500 ms by default)
                    end_claim = restriction.stop
                    done = True
                    break
            # One claim for the fetch's records (its last offset claims those before it), not one per
            # record: a lock and a check each, ~1.5 % of the I/O path. If the runner checkpointed the
            # range meanwhile and the claim fails, none of them is emitted: they lie in the residual,
            # which starts after the last offset claimed before and reads them again.
            if out and not tracker.try_claim(out[-1][0].offset):
                entry[1] = pos
                return
            if end_claim is not None:
                tracker.try_claim(end_claim)
            if out:
                entry[1] = pos
                emitted += len(out)
                self._read.inc(len(out))
                self._bytes.inc(nbytes)
                yield out
            if done:
                return
            if idle:
                if not self._bounded:
                    lagged = Timestamp.now() - Duration(seconds=self._idle_lag)
                    self._advance(watermark, lagged)
                    tracker.defer_remainder(Duration(seconds=self._idle_poll))
                    return
                if time.monotonic() >= deadline and emitted:
                    tracker.defer_remainder()
                    return
            elif emitted >= self._max_records or time.monotonic() >= deadline:
                tracker.defer_remainder()
                return


def _event_time(ms: Optional[int]) -> Timestamp:
    """A record's element time: its Kafka timestamp, else (the record has none) now."""
    return Timestamp.of(ms / 1000.0) if ms is not None else Timestamp.now()


class ReadFromKafka(beam.PTransform):
    """Read Kafka topics as ``PCollection[KafkaRecord]`` (element timestamps = Kafka timestamps).

    Args:
      consumer_config: librdkafka settings (``bootstrap.servers``, ``group.id``, security...), passed through.
      topics: topics to read.
      start: where to start (:class:`StartSpec`; default the group's committed offsets, else earliest).
      bounded: stop at the end offsets seen at start (replay); otherwise run until cancelled.
      stop_timestamp_ms: stop each partition at the first record at or after this time.
      max_records_per_call / max_seconds_per_call: checkpoint granularity of the splittable DoFn.
      idle_poll_seconds: how long an idle partition waits before polling again (unbounded mode).
      idle_watermark_lag_seconds: an idle partition's watermark is wall time minus this.
      metadata_timeout_seconds: timeout for metadata and fetch probes at start.
      counter: name of the Beam counter of records read (``read`` is the job's input in the run summary;
        an auxiliary read such as the dedup warm start must count under another name).
      batched: emit ``PCollection[List[KafkaRecord]]``, the records of one fetch of one partition per
        element (stamped with the earliest record's time), instead of one element per record. On the
        Python SDK each element costs several microseconds per step it passes; an I/O-bound job whose
        steps all take batches saves most of that (bench/bench_io.py).
    """

    def __init__(self, consumer_config: Mapping[str, Any], topics: Sequence[str], *,
                 start: StartSpec = StartSpec(), bounded: bool = False, stop_timestamp_ms: Optional[int] = None,
                 max_records_per_call: int = 2000, max_seconds_per_call: float = 2.0,
                 idle_poll_seconds: float = 1.0, idle_watermark_lag_seconds: float = 5.0,
                 metadata_timeout_seconds: float = 30.0, counter: str = "read", batched: bool = False):
        super().__init__()
        if not consumer_config.get("bootstrap.servers"):
            raise ConfigError("ReadFromKafka needs consumer_config['bootstrap.servers']")
        if isinstance(topics, str) or not topics:
            raise ConfigError(f"ReadFromKafka needs a list of topics, got {topics!r}")
        if max_records_per_call < 1 or max_seconds_per_call <= 0:
            raise ConfigError("max_records_per_call and max_seconds_per_call must be positive")
        self._config = dict(consumer_config)
        self._topics = list(topics)
        self._start = start
        self._bounded = bounded
        self._stop_ts = stop_timestamp_ms
        self._max_records = max_records_per_call
        self._max_seconds = max_seconds_per_call
        self._idle_poll = idle_poll_seconds
        self._idle_lag = idle_watermark_lag_seconds
        self._timeout = metadata_timeout_seconds
        self._counter = counter
        self._batched = batched

    def expand(self, pbegin):
        return (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "ResolvePartitions" >> beam.ParDo(_ResolvePartitions(
                self._config, self._topics, self._start, self._bounded, self._stop_ts, self._timeout))
            .with_output_types(PartitionSpec)
            | "SpreadPartitions" >> beam.Reshuffle()
            | "ReadPartitions" >> beam.ParDo(_ReadPartitionFn(
                self._config, bounded=self._bounded, max_records=self._max_records,
                max_seconds=self._max_seconds, idle_poll_seconds=self._idle_poll,
                idle_watermark_lag_seconds=self._idle_lag, counter=self._counter, batched=self._batched))
            .with_output_types(List[KafkaRecord] if self._batched else KafkaRecord)
        )


# ---------------------------------------------------------------------------------------------- writing


class _WriteFn(beam.DoFn):
    def __init__(self, config: Mapping[str, Any], topic: str, flush_timeout_s: float, counter: str):
        self._config = dict(config)
        self._topic = topic
        self._flush_timeout = flush_timeout_s
        self._producer = None
        self._errors: list = []
        self._acks: list = []
        self._written = beam.metrics.Metrics.counter(_NAMESPACE, counter)

    def setup(self):
        _LIVE_CLIENTS.add(self)
        self._producer = shared_producer(self._config)

    def start_bundle(self):
        errors = self._errors = []
        self._acks = []
        self._count = 0

        def on_delivery(err, msg):
            # bound to this bundle's list: another writer's flush of the shared producer may run it
            if err is not None:
                errors.append(err)

        self._on_delivery = on_delivery

    def process(self, msg: OutboundMessage):
        self._produce(msg)
        self._producer.poll(0)

    def _produce(self, msg: OutboundMessage) -> None:
        while True:
            try:
                # Header is a (key, value) tuple: a list of them is what produce() takes
                headers = msg.headers if type(msg.headers) is list else list(msg.headers)
                self._producer.produce(self._topic, value=msg.value, key=msg.key, headers=headers,
                                       on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain
        self._count += 1
        if msg.ack is not None:
            self._acks.append(msg.ack)

    def finish_bundle(self):
        remaining = self._producer.flush(self._flush_timeout)
        if self._errors or remaining:
            first = self._errors[0] if self._errors else None
            raise DeliveryError(
                f"{len(self._errors)} message(s) to topic {self._topic!r} were not delivered"
                f"{f' (first error: {first})' if first else ''}"
                f"{f'; {remaining} still queued after {self._flush_timeout:.0f}s' if remaining else ''}. "
                "The bundle fails so the runner retries it; no offsets of these inputs are committed. "
                "Check that the topic exists, the broker is reachable and message.max.bytes allows the record.")
        self._written.inc(self._count)
        for ack in merge_acks(self._acks):
            yield WindowedValue(ack, GlobalWindow().max_timestamp(), [GlobalWindow()])

    def teardown(self):
        if self._producer is not None:
            self._producer.flush(self._flush_timeout)  # shared: flushed, not closed (close_clients drops it)
            self._producer = None


class _WriteBatchFn(_WriteFn):
    def process(self, msgs: List[OutboundMessage]):
        for msg in msgs:
            self._produce(msg)
        self._producer.poll(0)


class WriteToKafka(beam.PTransform):
    """Produce ``PCollection[OutboundMessage]`` to ``topic``; returns ``PCollection[Ack]``.

    Idempotent producer (``enable.idempotence``, ``acks=all``). Flushes at the end of every bundle and
    fails the bundle on any delivery error so the runner retries it -- never drops silently. The acks of
    the written messages' inputs are emitted only after a successful flush.

    Args:
      producer_config: librdkafka settings, passed through (consumer-only keys are dropped).
      topic: the topic to write.
      flush_timeout_seconds: how long to wait for deliveries at bundle end.
      counter: name of the Beam counter of written messages.
      batched: the input is ``PCollection[List[OutboundMessage]]`` (see ``ReadFromKafka(batched=True)``).
    """

    def __init__(self, producer_config: Mapping[str, Any], topic: str, *, flush_timeout_seconds: float = 60.0,
                 counter: str = "written", batched: bool = False):
        super().__init__()
        if not topic:
            raise ConfigError("WriteToKafka needs a topic")
        self._config = dict(producer_config)
        self._topic = topic
        self._flush_timeout = flush_timeout_seconds
        self._counter = counter
        self._batched = batched

    def expand(self, pcoll):
        fn = (_WriteBatchFn if self._batched else _WriteFn)(self._config, self._topic, self._flush_timeout,
                                                            self._counter)
        return pcoll | "Produce" >> beam.ParDo(fn).with_output_types(Ack)


# ---------------------------------------------------------------------------------------------- commits


def merge_acks(acks: Iterable[Ack]) -> List[Ack]:
    """Coalesce acks of one bundle: adjacent or overlapping offset ranges of a partition become one Ack.

    A bundle's acks are mostly contiguous runs, so this turns thousands of acks into a handful and keeps
    the keyed commit stage off the per-record path.
    """
    by_part: dict = {}
    for a in acks:
        by_part.setdefault((a.topic, a.partition, a.run_start), []).append((a.covers_from, a.offset))
    out: List[Ack] = []
    for (topic, partition, run_start), spans in sorted(by_part.items()):
        spans.sort()
        cur_a, cur_b = spans[0]
        for a, b in spans[1:]:
            if a <= cur_b + 1:
                cur_b = max(cur_b, b)
            else:
                out.append(Ack(topic, partition, cur_a, cur_b, run_start))
                cur_a, cur_b = a, b
        out.append(Ack(topic, partition, cur_a, cur_b, run_start))
    return out


class _Intervals:
    """Pure: handled offset intervals of one partition, and the contiguous prefix from ``run_start``."""

    def __init__(self, run_start: int, spans: Optional[List[Tuple[int, int]]] = None):
        self.run_start = run_start
        self.spans = sorted(spans or [])

    def add(self, a: int, b: int) -> None:
        self.spans.append((a, b))
        self.spans.sort()
        merged: List[Tuple[int, int]] = []
        for s, e in self.spans:
            if merged and s <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.spans = merged

    def committable(self) -> Optional[int]:
        """The offset to commit (last contiguous handled offset + 1), or None."""
        if self.spans and self.spans[0][0] <= self.run_start:
            return self.spans[0][1] + 1
        return None

    def compact(self) -> None:
        """Forget the committed prefix (keeps state small)."""
        c = self.committable()
        if c is not None:
            self.run_start = c
            self.spans = self.spans[1:]


_SPANS_CODER = coders.TupleCoder([coders.VarIntCoder(),
                                  coders.IterableCoder(coders.TupleCoder([coders.VarIntCoder(), coders.VarIntCoder()]))])


class _CommitFn(beam.DoFn):
    STATE = userstate.ReadModifyWriteStateSpec("intervals", _SPANS_CODER)

    def __init__(self, config: Mapping[str, Any]):
        self._config = dict(config)
        self._consumer = None
        self._pending: dict = {}
        self._committed = beam.metrics.Metrics.counter(_NAMESPACE, "offsets_committed")

    def setup(self):
        from pipeline.stages.common import cheap_state_cache_sizing

        cheap_state_cache_sizing()
        self._consumer = _consumer(self._config)
        _LIVE_CLIENTS.add(self)

    def start_bundle(self):
        self._pending = {}

    def process(self, element: Tuple[str, Ack], state=beam.DoFn.StateParam(STATE)):
        _key, ack = element
        stored = state.read()
        iv = _Intervals(stored[0], list(stored[1])) if stored else _Intervals(ack.run_start)
        before = iv.committable()
        iv.add(ack.covers_from, ack.offset)
        after = iv.committable()
        if after is not None and after != before:
            self._pending[(ack.topic, ack.partition)] = after
        iv.compact()
        state.write((iv.run_start, iv.spans))

    def finish_bundle(self):
        if not self._pending:
            return
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._pending.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Not fatal for the data: the next commit covers these offsets; a restart re-reads a little more.
            _LOGGER.warning("offset commit failed (%s); will be retried with the next commit", exc)
            return
        self._committed.inc(len(offsets))
        _LOGGER.debug("committed %s", {f"{tp.topic}[{tp.partition}]": tp.offset for tp in offsets})

    def teardown(self):
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class CommitOffsets(beam.PTransform):
    """Commit input offsets to the consumer group once everything below them is handled.

    Input: ``PCollection[Ack]`` from every terminal branch (sink writes, duplicates, dead letters). Keyed
    by topic-partition; each key keeps the handled offset intervals above its last commit (bounded by
    what is in flight) and commits the contiguous prefix at the end of each bundle.

    Args:
      consumer_config: librdkafka settings including ``group.id``.
    """

    def __init__(self, consumer_config: Mapping[str, Any]):
        super().__init__()
        if not consumer_config.get("group.id"):
            raise ConfigError("CommitOffsets needs consumer_config['group.id']")
        self._config = dict(consumer_config)

    def expand(self, acks):
        return (
            acks
            | "KeyByPartition" >> beam.Map(lambda a: (f"{a.topic}\x00{a.partition}", a))
            .with_output_types(Tuple[str, Ack])
            # emits nothing; typed so that no pickling fallback coder is inferred for its (empty) output
            | "Commit" >> beam.ParDo(_CommitFn(self._config)).with_output_types(bytes)
        )


class _AckFn(beam.DoFn):
    def __init__(self, counter: str):
        self._name = counter
        self._counter = beam.metrics.Metrics.counter(_NAMESPACE, counter)
        self._acks: list = []

    def start_bundle(self):
        self._acks = []

    def process(self, record):
        from pipeline.records import ack_of

        self._counter.inc()
        self._acks.append(ack_of(record))

    def finish_bundle(self):
        for ack in merge_acks(self._acks):
            yield WindowedValue(ack, GlobalWindow().max_timestamp(), [GlobalWindow()])


class AckDropped(beam.PTransform):
    """Records that end here (dropped duplicates): count them and ack their input offsets."""

    def __init__(self, counter: str):
        super().__init__()
        self._counter = counter

    def expand(self, records):
        return records | "Ack" >> beam.ParDo(_AckFn(self._counter)).with_output_types(Ack)
