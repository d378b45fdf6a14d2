"""Warm start of the exact-dedup memory from the sink topic (``--dedup-warm-start``).

A restarted job forgets which content hashes it has written (its keyed state is gone), so the records it
re-reads from the uncommitted window, and any copy that arrives later within the horizon, would pass the
exact-dedup stage again. The sink topic remembers: every record it holds carries ``dedup.content_hash``,
its ``article_id`` and its event time. Architecture::

    ReadFromKafka(sink topic, earliest .. end at start, bounded)       # pipeline.kafkaio, no commits
      -> DecodeSeeds: Avro -> (content_hash, (article_id, event_ms))   # inputs older than the horizon dropped
      -> LatestPerHash: one seed per hash (the latest event time)
      => PCollection[(str, (str, int))]  -> ExactDedup(seeds=...) reads it as a dict side input

Ordering: a side input is complete before the stage reading it processes any element (in batch, and in
streaming for a bounded side input in the global window), so no live record can pass the dedup stage
before the memory it should be checked against is loaded. A seed only takes effect for a hash whose keyed
state is empty; the state, once written by a live record, wins.

Cost: one read of the sink topic from its start at job start (a compacted sink keeps one record per
article). The bounded rounds of a local unbounded job use :class:`SinkSeeds` instead, which keeps the seeds
and its place in the sink between rounds and reads only the new records. Sink records that do not decode (another producer, a future schema) are skipped and counted as
``warm_start_skipped``; they cannot make the job fail.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple

import apache_beam as beam

from pipeline.kafkaio import ReadFromKafka, StartMode, StartSpec
from pipeline.records import KafkaRecord
from pipeline.stages.common import METRICS_NAMESPACE, now_ms

__all__ = ["Seed", "seed_from_record", "ReadDedupSeeds", "SinkSeeds"]

_LOGGER = logging.getLogger(__name__)

#: (content_hash, (article_id, event time ms))
Seed = Tuple[str, Tuple[str, int]]


def _ms(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp() * 1000)
    return int(value)


def seed_from_record(record: Mapping[str, Any]) -> Optional[Seed]:
    """The dedup seed of one decoded sink record (enriched_article), or None if it carries no hash.

    The event time is the one :func:`pipeline.stages.dedup.event_time_ms` gives the live article:
    ``published_at``, else the input's Kafka timestamp, else ``ingested_at``.
    """
    dedup = record.get("dedup") or {}
    h = dedup.get("content_hash")
    aid = record.get("article_id")
    if not h or not aid:
        return None
    t = (_ms(record.get("published_at")) or _ms((record.get("origin") or {}).get("timestamp"))
         or _ms(record.get("ingested_at")))
    if t is None:
        return None
    return h, (aid, t)


def _horizon_ms(who: str, sink_topic: str, horizon_seconds: float) -> int:
    """The checked constructor arguments of a warm-start reader: the horizon in ms."""
    if not sink_topic:
        raise ValueError(f"{who} needs the sink topic")
    if horizon_seconds <= 0:
        raise ValueError(f"horizon_seconds must be positive, got {horizon_seconds!r}")
    return int(horizon_seconds * 1000)


def sink_decoder(registry_url: Optional[str], registry_config: Optional[Mapping[str, Any]]
                 ) -> Callable[[bytes], dict]:
    """Decoder of sink records (enriched_article; single-object, or Confluent framing with a registry)."""
    from pipeline.avro import ENRICHED_ARTICLE, decode_any

    confluent = None
    if registry_url:
        from pipeline.registry import confluent_decoder

        confluent = confluent_decoder(registry_url, dict(registry_config or {}))
    return lambda value: decode_any(value, names=(ENRICHED_ARTICLE,), confluent=confluent)


def decode_seed(decode: Callable[[bytes], dict], value: Optional[bytes], where: str = "a sink record"
                ) -> Tuple[Optional[Seed], Optional[dict]]:
    """(seed, decoded record) of one sink message; (None, ...) for one that carries no seed or does not
    decode (another producer, a future schema): a foreign record on the sink must not stop the job."""
    try:
        record = decode(value) if value else None
        return (seed_from_record(record) if record else None), record
    except Exception as exc:  # noqa: BLE001
        _LOGGER.debug("warm start: skipping %s (%s: %s)", where, type(exc).__name__, exc)
        return None, None


class _DecodeSeedsFn(beam.DoFn):
    def __init__(self, horizon_ms: int, registry_url: Optional[str], registry_config: Optional[dict],
                 clock: Callable[[], int] = now_ms):
        self._horizon = horizon_ms
        self._registry_url = registry_url
        self._registry_config = dict(registry_config or {})
        self._clock = clock
        self._decode = None
        self._seeds = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "warm_start_seeds")
        self._skipped = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "warm_start_skipped")

    def setup(self):
        self._decode = sink_decoder(self._registry_url, self._registry_config)
        self._oldest = self._clock() - self._horizon

    def process(self, rec: KafkaRecord) -> Iterable[Seed]:
        seed, record = decode_seed(self._decode, rec.value, f"{rec.topic}[{rec.partition}]@{rec.offset}")
        if seed is None:
            self._skipped.inc()
            return
        ingested = input_time_ms(record)
        if ingested is not None and ingested < self._oldest:
            return
        self._seeds.inc()
        yield seed


def input_time_ms(record: Mapping[str, Any]) -> Optional[int]:
    """When the record's input reached the job (its Kafka time, else ingestion time). The live stage keeps a
    hash for the horizon after it (its expiry timer runs on element timestamps), so a seed whose input is
    older than the horizon would already be forgotten."""
    return _ms((record.get("origin") or {}).get("timestamp")) or _ms(record.get("ingested_at"))


class SinkSeeds:
    """The warm-start seeds of a sink topic, kept current between the bounded rounds of a local job.

    :class:`ReadDedupSeeds` reads the whole sink topic, which is right once per job but not once per round:
    the rounds of a long local unbounded run would each re-read everything written so far. This reader
    (driver side, plain confluent-kafka) keeps its position and the seeds between rounds, so each
    :meth:`refresh` reads only what was written since the last one, and forgets seeds whose input is older
    than the horizon. The seeds are handed to the round's pipeline as a created side input.

    Partition ends are learnt from end-of-partition events (every Kafka-protocol broker answers them
    correctly; ListOffsets is not used, see :mod:`pipeline.kafkaio`). Records that do not decode are skipped.
    """

    def __init__(self, consumer_config: Mapping[str, Any], sink_topic: str, *, horizon_seconds: float,
                 schema_registry_url: Optional[str] = None, registry_config: Optional[dict] = None,
                 clock: Callable[[], int] = now_ms):
        self._horizon = _horizon_ms("SinkSeeds", sink_topic, horizon_seconds)
        self._config = dict(consumer_config)
        self._topic = sink_topic
        self._clock = clock
        self._decode = sink_decoder(schema_registry_url, registry_config)
        self._positions: dict = {}  # partition -> next offset to read
        self._seeds: dict = {}  # content hash -> (article_id, event_ms, input_ms)
        self._consumer = None
        self.read = 0  # sink records read so far (all refreshes)

    def refresh(self, timeout_s: float = 60.0) -> list:
        """Read the sink from where the last refresh stopped to its current end; the live seeds."""
        from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

        from pipeline.errors import BrokerError
        from pipeline.kafkaio import _consumer

        if self._consumer is None:
            # a short long-poll: a fetch at a partition's end is answered after fetch.wait.max.ms
            self._consumer = _consumer(self._config, **{"enable.partition.eof": True, "fetch.wait.max.ms": 20})
        c = self._consumer
        md = c.list_topics(self._topic, timeout=timeout_s).topics.get(self._topic)
        if md is None or md.error is not None:
            raise BrokerError(f"warm start: sink topic {self._topic!r} is not readable "
                              f"({md.error if md is not None else 'not found'})")
        parts = sorted(md.partitions)
        c.assign([TopicPartition(self._topic, p, self._positions.get(p, OFFSET_BEGINNING)) for p in parts])
        pending = set(parts)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise BrokerError(f"warm start: no end of {self._topic!r} partitions {sorted(pending)} within "
                                  f"{timeout_s:.0f}s; is the broker reachable?")
            for msg in c.consume(num_messages=500, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        self._positions[msg.partition()] = msg.offset()
                        pending.discard(msg.partition())
                    elif err.fatal() or not err.retriable():
                        raise BrokerError(f"warm start: reading {self._topic}[{msg.partition()}]: {err}")
                    continue
                self._positions[msg.partition()] = msg.offset() + 1
                self.read += 1
                self._add(msg.value())
        oldest = self._clock() - self._horizon
        self._seeds = {h: v for h, v in self._seeds.items() if v[2] is None or v[2] >= oldest}
        return [(h, (aid, t)) for h, (aid, t, _i) in self._seeds.items()]

    def _add(self, value: Optional[bytes]) -> None:
        seed, record = decode_seed(self._decode, value)
        if seed is None:
            return
        h, latest = seed
        old = self._seeds.get(h)
        if old is not None:
            latest = _latest([latest, old[:2]])  # one seed per hash, as LatestPerHash
            if latest == old[:2]:
                return
        self._seeds[h] = (*latest, input_time_ms(record))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def _latest(seeds: Iterable[Tuple[str, int]]) -> Tuple[str, int]:
    return max(seeds, key=lambda s: (s[1], s[0]))


class ReadDedupSeeds(beam.PTransform):
    """``PBegin`` -> ``PCollection[(content_hash, (article_id, event_ms))]`` from the sink topic.

    Args:
      consumer_config: librdkafka settings of the job (its group is not used: nothing is committed).
      sink_topic: the output topic of the job.
      horizon_seconds: the exact-dedup horizon; seeds whose input (Kafka time) is older are dropped, as the
        live stage's memory of them would have expired.
      schema_registry_url / registry_config: to decode Confluent-framed sink records.
    """

    def __init__(self, consumer_config: Mapping[str, Any], sink_topic: str, *, horizon_seconds: float,
                 schema_registry_url: Optional[str] = None, registry_config: Optional[dict] = None):
        super().__init__()
        self._horizon_ms = _horizon_ms("ReadDedupSeeds", sink_topic, horizon_seconds)
        self._config = dict(consumer_config)
        self._topic = sink_topic
        self._registry_url = schema_registry_url
        self._registry_config = registry_config

    def expand(self, pbegin):
        records = pbegin | "ReadSink" >> ReadFromKafka(self._config, [self._topic], start=StartSpec(StartMode.EARLIEST),
                                                       bounded=True, counter="warm_start_read")
        records.is_bounded = True
        return (records
                | "DecodeSeeds" >> beam.ParDo(_DecodeSeedsFn(self._horizon_ms, self._registry_url,
                                                             self._registry_config)).with_output_types(Seed)
                | "LatestPerHash" >> beam.CombinePerKey(_latest).with_output_types(Seed))
