"""Helpers for integration tests: an independent client (kafka-python) and Avro decoding from the .avsc files."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def load_avsc(name: str):
    return fastavro.parse_schema(json.loads((SCHEMAS / f"{name}.avsc").read_text()))


def decode_single_object(data: bytes, schema) -> dict:
    """Decode Avro single-object encoding by the spec: C3 01, 8-byte fingerprint, datum."""
    assert data[:2] == b"\xc3\x01", data[:10]
    return fastavro.schemaless_reader(io.BytesIO(data[10:]), schema, None)


def produce(bootstrap: str, topic: str, values, keys=None, partitions: int = 2) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = [producer.send(topic, value=v, key=(keys[i] if keys else None)) for i, v in enumerate(values)]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    producer.close()


def read_all(bootstrap: str, topic: str, idle_ms: int = 3000) -> list:
    """Every message of a topic from the beginning, read by kafka-python (not our code)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=idle_ms, group_id=None)
    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out = list(consumer)
    consumer.close()
    return out


def committed(bootstrap: str, group: str, topic: str) -> dict:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    parts = consumer.partitions_for_topic(topic) or set()
    out = {p: consumer.committed(TopicPartition(topic, p)) for p in sorted(parts)}
    consumer.close()
    return out


def fingerprint_of(data: bytes) -> int:
    return struct.unpack("<Q", data[2:10])[0]
