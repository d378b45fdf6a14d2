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
article). Sink records that do not decode (another producer, a future schema) are skipped and counted as
``warm_start_skipped``; they cannot make the job fail.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple

import apache_beam as beam

from pipeline.kafkaio import ReadFromKafka, StartMode, StartSpec
from pipeline.records import KafkaRecord
from pipeline.stages.common import METRICS_NAMESPACE, now_ms

__all__ = ["Seed", "seed_from_record", "ReadDedupSeeds"]

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
        from pipeline.avro import ENRICHED_ARTICLE, decode_any

        confluent = None
        if self._registry_url:
            from pipeline.registry import confluent_decoder

            confluent = confluent_decoder(self._registry_url, self._registry_config)
        self._decode = lambda value: decode_any(value, names=(ENRICHED_ARTICLE,), confluent=confluent)
        self._oldest = self._clock() - self._horizon

    def process(self, rec: KafkaRecord) -> Iterable[Seed]:
        try:
            record = self._decode(rec.value) if rec.value else None
            seed = seed_from_record(record) if record else None
        except Exception as exc:  # noqa: BLE001 - a foreign record on the sink must not stop the job
            _LOGGER.debug("warm start: skipping %s[%d]@%d (%s)", rec.topic, rec.partition, rec.offset, exc)
            seed = None
        if seed is None:
            self._skipped.inc()
            return
        # The live stage keeps a hash for the horizon after the input's Kafka time (its expiry timer runs on
        # element timestamps); a seed whose input is older than that would already be forgotten.
        ingested = _ms((record.get("origin") or {}).get("timestamp")) or _ms(record.get("ingested_at"))
        if ingested is not None and ingested < self._oldest:
            return
        self._seeds.inc()
        yield seed


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
        if not sink_topic:
            raise ValueError("ReadDedupSeeds needs the sink topic")
        if horizon_seconds <= 0:
            raise ValueError(f"horizon_seconds must be positive, got {horizon_seconds!r}")
        self._config = dict(consumer_config)
        self._topic = sink_topic
        self._horizon_ms = int(horizon_seconds * 1000)
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
