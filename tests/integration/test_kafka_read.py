"""ReadFromKafka against the real broker, alone: every record exactly once across many checkpoints, and the
stop time honoured per partition (what the bounded replay's accounting rests on)."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from pipeline.kafkaio import ReadFromKafka, StartMode, StartSpec

_BASE_MS = 1_700_000_000_000


def _produce_timed(bootstrap: str, topic: str, n: int, partitions: int = 2) -> dict:
    """n records, record i at Kafka time _BASE_MS + i seconds, round-robin over the partitions;
    returns {(partition, offset): i}."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = [producer.send(topic, value=f"record {i}".encode(), partition=i % partitions,
                             timestamp_ms=_BASE_MS + i * 1000) for i in range(n)]
    producer.flush()
    where = {}
    for i, f in enumerate(futures):
        md = f.get(timeout=30)
        where[(md.partition, md.offset)] = i
    producer.close()
    return where


@pytest.mark.parametrize("batched", [False, True])
def test_small_calls_read_every_record_exactly_once(broker, topic_names, batched):
    where = _produce_timed(broker.bootstrap_servers, topic_names["input"], 150)
    config = {"bootstrap.servers": broker.bootstrap_servers, "group.id": topic_names["group"]}
    expected = [(p, o, f"record {i}".encode(), _BASE_MS + i * 1000) for (p, o), i in where.items()]
    with beam.Pipeline(runner="FnApiRunner") as p:
        # 7 records a call: the partition's restriction is checkpointed and resumed ~10 times each
        records = p | ReadFromKafka(config, [topic_names["input"]], start=StartSpec(StartMode.EARLIEST),
                                    bounded=True, max_records_per_call=7, batched=batched)
        if batched:
            records = records | beam.FlatMap(lambda batch: batch)
        got = records | beam.Map(lambda r: (r.partition, r.offset, r.value, r.timestamp))
        assert_that(got, equal_to(expected))  # equal_to compares as multisets: no loss, no repeat


def test_stop_time_ends_each_partition_at_its_first_record_at_or_after_it(broker, topic_names):
    where = _produce_timed(broker.bootstrap_servers, topic_names["input"], 60)
    stop_ms = _BASE_MS + 41 * 1000  # records 0..40 are before it
    config = {"bootstrap.servers": broker.bootstrap_servers, "group.id": topic_names["group"]}
    expected = [(p, o) for (p, o), i in where.items() if i < 41]
    with beam.Pipeline(runner="FnApiRunner") as p:
        records = p | ReadFromKafka(config, [topic_names["input"]], start=StartSpec(StartMode.EARLIEST),
                                    bounded=True, stop_timestamp_ms=stop_ms, max_records_per_call=5,
                                    batched=True)
        got = records | beam.FlatMap(lambda batch: [(r.partition, r.offset) for r in batch])
        assert_that(got, equal_to(expected))
