"""Cross-language Kafka IO without Java: configuration, payloads, and a run through a fake expansion service.

What can be checked here: the consumer/producer settings and topics the Java KafkaIO would receive (decoded
from the very payload sent to the expansion service), and that the graph around the external transforms
builds, survives the runner-API round trip and runs with rows in the Java with-metadata schema. What cannot:
the Java expansion and the Java reader themselves (no JVM, no Maven here).
"""

from __future__ import annotations

import dataclasses
import io
import json

import apache_beam as beam
import fastavro
import pytest
from apache_beam.io import kafka
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.builder import build_pipeline
from pipeline.errors import ConfigError
from pipeline.kafkaio import OutboundMessage, StartMode, StartSpec
from pipeline.options import Config, KafkaIO, Secret
from pipeline.records import Header, KafkaRecord
from pipeline.xlang import (KafkaWriteRow, XlangReadFromKafka, XlangWriteToKafka, java_consumer_config,
                            java_producer_config, record_from_row)

from . import xlang_fakes
from .xlang_fakes import decode_payload, fake_expansion_service, java_row


def _config(**kw) -> Config:
    base = dict(bootstrap_servers="k1:9092,k2:9092", input_topics=("raw-a", "raw-b"), output_topic="articles",
                dead_letter_topic="articles.dead-letter", group_id="wirestream-prod", kafka_io=KafkaIO.XLANG,
                expansion_service="localhost:8097", kafka_config={"security.protocol": "SASL_SSL",
                                                                  "sasl.mechanism": "SCRAM-SHA-512",
                                                                  "sasl.username": "ws",
                                                                  "sasl.password": Secret("pw")})
    base.update(kw)
    return Config(**base)


def test_read_is_built_with_the_consumer_config_topics_and_commit_in_finalize():
    read = XlangReadFromKafka(_config())
    ext = read.kafka_transform()
    assert isinstance(ext, kafka.ReadFromKafka)
    assert ext._urn == kafka.ReadFromKafka.URN_WITH_METADATA  # with_metadata=True
    assert ext._expansion_service == "localhost:8097"
    conf = decode_payload(ext._payload)  # exactly what the Java expansion service receives
    assert list(conf["topics"]) == ["raw-a", "raw-b"]
    assert conf["commit_offset_in_finalize"] is True
    assert conf["timestamp_policy"] == "CreateTime"
    consumer = dict(conf["consumer_config"])
    assert consumer["bootstrap.servers"] == "k1:9092,k2:9092"
    assert consumer["group.id"] == "wirestream-prod"
    assert consumer["enable.auto.commit"] == "false" and consumer["auto.offset.reset"] == "earliest"
    assert consumer["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                            'username="ws" password="pw";')
    assert "sasl.password" not in consumer and "sasl.username" not in consumer
    assert conf["start_read_time"] is None  # committed offsets


@pytest.mark.parametrize("start, expected", [
    (StartSpec(StartMode.EARLIEST), 0),
    (StartSpec(StartMode.TIMESTAMP, timestamp_ms=1795860000000), 1795860000000),
])
def test_start_maps_to_start_read_time(start, expected):
    conf = decode_payload(XlangReadFromKafka(_config(start=start)).kafka_transform()._payload)
    assert conf["start_read_time"] == expected


def test_no_commit_leaves_offsets_alone():
    conf = decode_payload(XlangReadFromKafka(_config(commit_offsets=False)).kafka_transform()._payload)
    assert conf["commit_offset_in_finalize"] is False


@pytest.mark.parametrize("kw, message", [
    ({"bounded": True}, "no end bound"),
    ({"stop_ms": 1}, "no end bound"),
    ({"start": StartSpec(StartMode.OFFSETS, offsets=((None, 0, 5),))}, "explicit offsets"),
    ({"kafka_config": {"ssl.key.location": "/k.pem"}}, "ssl.key.location"),
    ({"kafka_config": {"enable.auto.commit": "true"}}, "enable.auto.commit"),
    ({"kafka_config": {"sasl.mechanism": "GSSAPI", "sasl.username": "u"}}, "GSSAPI"),
])
def test_read_rejects_what_the_java_reader_cannot_do(kw, message):
    with pytest.raises(ConfigError, match=message):
        XlangReadFromKafka(_config(**kw))


def test_write_is_built_with_headers_and_an_idempotent_producer():
    write = XlangWriteToKafka(_config(), "articles")
    ext = write.kafka_transform()
    assert ext._urn == kafka.WriteToKafka.URN_WITH_HEADERS
    conf = decode_payload(ext._payload)
    assert conf["topic"] == "articles"
    assert conf["key_serializer"] == conf["value_serializer"] == kafka.WriteToKafka.byte_array_serializer
    producer = dict(conf["producer_config"])
    assert producer["enable.idempotence"] == "true" and producer["acks"] == "all"
    assert "group.id" not in producer and "auto.offset.reset" not in producer


def test_translation_drops_our_native_defaults_and_keeps_user_settings():
    conf = java_consumer_config({"bootstrap.servers": "b:1", "group.id": "g", "enable.partition.eof": True,
                                 "ssl.ca.location": "/ca.pem", "client.id": "ws-1"}, commit=True)
    assert "enable.partition.eof" not in conf
    assert conf["ssl.truststore.location"] == "/ca.pem" and conf["ssl.truststore.type"] == "PEM"
    assert conf["client.id"] == "ws-1"
    assert all(isinstance(v, str) for v in conf.values())
    assert java_producer_config({"bootstrap.servers": "b:1", "acks": "1"})["acks"] == "1"  # user wins


def test_record_from_java_row():
    row = java_row("raw", 3, 41, b'{"id": 1}', key=b"k", headers=[("h", b"v")])
    rec = record_from_row(row)
    assert rec == KafkaRecord("raw", 3, 41, 1_700_000_000_000, b"k", b'{"id": 1}', [Header("h", b"v")], 41, 41)
    assert record_from_row(row._replace(timestampTypeId=-1, headers=None)).timestamp is None


def _articles():
    bodies = [("a1", "Moscow", "The ministry said on Tuesday that the talks would resume next week.\n"
                                "Officials declined to comment further."),
              ("a2", "Kyiv", "Heavy rain flooded the lower districts of the city overnight.\n"
                             "Rescue teams evacuated two hundred residents.")]
    return [json.dumps({"id": i, "title": t, "body": b, "publisher": "wire"}).encode() for i, t, b in bodies]


def test_pipeline_runs_through_the_fake_expansion_service(monkeypatch):
    """The whole graph in xlang mode: Java-schema rows in, our stages, Java write rows out."""
    values = _articles()
    rows = [java_row("raw-a", 0, i, v) for i, v in enumerate(values)]
    rows.append(java_row("raw-a", 0, 2, values[0]))  # a redelivery: dropped by exact dedup
    rows.append(java_row("raw-a", 0, 3, b"not json"))  # dead-lettered
    monkeypatch.setattr(xlang_fakes, "ROWS_TO_READ", rows)
    xlang_fakes.WRITTEN.clear()
    xlang_fakes.REQUESTS.clear()
    config = dataclasses.replace(_config(nlp=False), expansion_service=fake_expansion_service())

    p = beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([]))
    build_pipeline(p, config)
    p.run().wait_until_finish()

    urns = [u for u, _ in xlang_fakes.REQUESTS]
    assert urns.count(kafka.ReadFromKafka.URN_WITH_METADATA) == 1
    assert urns.count(kafka.WriteToKafka.URN_WITH_HEADERS) == 2  # articles + dead letters
    out = xlang_fakes.WRITTEN["articles"]
    assert sorted(r.key for r in out) == [b"a1", b"a2"]
    headers = {h.key: h.value for h in out[0].headers}
    assert headers["content-type"] == b"application/vnd.wirestream.enriched_article+avro"
    from pipeline.avro import ENRICHED_ARTICLE, load_schema

    schema = fastavro.parse_schema(load_schema(ENRICHED_ARTICLE))
    decoded = fastavro.schemaless_reader(io.BytesIO(out[0].value[10:]), schema, None)
    assert decoded["article_id"] in ("a1", "a2") and decoded["origin"]["topic"] == "raw-a"
    dead = xlang_fakes.WRITTEN["articles.dead-letter"]
    assert len(dead) == 1 and dead[0].key is None


def test_write_rows_are_row_coded():
    msg = OutboundMessage(b"k", b"v", [Header("h", b"1")], None)
    coder = beam.coders.registry.get_coder(KafkaWriteRow)
    assert isinstance(coder, beam.coders.RowCoder)
    from pipeline.xlang import _row_for

    row = _row_for(msg)
    assert coder.decode(coder.encode(row)) == row
