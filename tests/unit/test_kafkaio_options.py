"""Pure parts of the Kafka IO and the option parsing."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.errors import ConfigError
from pipeline.kafkaio import ReadFromKafka, StartMode, _Intervals, parse_start, redact_config
from pipeline.options import Config, KafkaIO, Secret


def test_parse_start_forms():
    assert parse_start("earliest").mode == StartMode.EARLIEST
    assert parse_start("committed").mode == StartMode.COMMITTED
    assert parse_start("0:5,1:7").offsets == ((None, 0, 5), (None, 1, 7))
    assert parse_start("raw:2:9").offsets == (("raw", 2, 9),)
    ts = parse_start("2026-11-28T10:00:00Z")
    assert ts.mode == StartMode.TIMESTAMP and ts.timestamp_ms == 1795860000000
    with pytest.raises(ConfigError, match="--start"):
        parse_start("yesterday")


def test_intervals_commit_only_the_contiguous_prefix():
    iv = _Intervals(run_start=10)
    iv.add(13, 14)  # arrives before 10..12: nothing committable yet
    assert iv.committable() is None
    iv.add(10, 10)
    assert iv.committable() == 11
    iv.add(11, 12)  # fills the gap: 10..14 handled
    assert iv.committable() == 15
    iv.compact()
    assert iv.spans == [] and iv.run_start == 15
    iv.add(17, 20)  # gap at 15..16 (say, transaction markers covered by the next record)
    assert iv.committable() is None
    iv.add(15, 16)
    assert iv.committable() == 21


def test_secrets_never_print():
    s = Secret("hunter2")
    assert "hunter2" not in repr({"sasl.password": s})
    assert redact_config({"sasl.password": "x", "ssl.key.password": "y", "client.id": "z"}) == {
        "sasl.password": "***", "ssl.key.password": "***", "client.id": "z"}


def _config(*extra):
    return Config.from_options(PipelineOptions(["--bootstrap-servers", "b:9092", "--input-topic", "in",
                                                "--output-topic", "out", *extra]))


def test_config_from_options():
    c = _config("--kafka-config", "security.protocol=SASL_SSL", "--kafka-config", "sasl.password=s3cret",
                "--input-topic", "in2,in3", "--bounded")
    assert c.input_topics == ("in", "in2", "in3")
    assert c.dead_letter_topic == "out.dead-letter"
    assert c.consumer_config["sasl.password"] == "s3cret"  # revealed only to librdkafka
    assert "s3cret" not in repr(c)
    assert c.bounded and c.kafka_io == KafkaIO.NATIVE


@pytest.mark.parametrize("args, message", [
    (["--kafka-config", "novalue"], "KEY=VALUE"),
    (["--stop", "soon"], "--stop"),
    (["--dedup-horizon-hours", "0"], "horizon"),
    (["--near-dup-threshold", "1.5"], "threshold"),
    (["--kafka-io", "xlang"], "expansion service"),
    (["--kafka-config-file", "/nonexistent.properties"], "does not exist"),
    (["--bounded", "--start", "latest"], "reads nothing"),
])
def test_config_errors_name_the_option(args, message):
    with pytest.raises(ConfigError, match=message):
        _config(*args)


def test_read_from_kafka_validates_arguments():
    with pytest.raises(ConfigError, match="bootstrap"):
        ReadFromKafka({}, ["t"])
    with pytest.raises(ConfigError, match="list of topics"):
        ReadFromKafka({"bootstrap.servers": "b"}, "t")


def test_merge_acks_coalesces_adjacent_ranges_per_partition():
    from pipeline.kafkaio import merge_acks
    from pipeline.records import Ack

    acks = [Ack("t", 0, 5, 5, 0), Ack("t", 0, 3, 4, 0), Ack("t", 0, 8, 9, 0), Ack("t", 1, 0, 0, 0),
            Ack("t", 0, 6, 6, 0)]
    assert merge_acks(acks) == [Ack("t", 0, 3, 6, 0), Ack("t", 0, 8, 9, 0), Ack("t", 1, 0, 0, 0)]
    assert merge_acks([]) == []


def test_client_settings_are_typed_and_refusals_are_config_errors_without_secrets():
    from confluent_kafka import Consumer, Producer

    from pipeline.kafkaio import kafka_client, producer_settings

    # the Python client's own boolean settings arrive as text from --kafka-config
    p = kafka_client(Producer, producer_settings({"bootstrap.servers": "127.0.0.1:1",
                                                  "delivery.report.only.error": "true"}), "producer")
    p.flush(0)
    with pytest.raises(ConfigError, match="delivery.report.only.error='maybe': expected true or false"):
        kafka_client(Producer, {"delivery.report.only.error": "maybe"}, "producer")
    # what librdkafka refuses is named, one line, with secret values blanked
    with pytest.raises(ConfigError, match='consumer settings: No such configuration property: "foo.bar"') as info:
        kafka_client(Consumer, {"group.id": "g", "foo.bar": "1", "sasl.password": "hunter2"}, "consumer")
    assert "hunter2" not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(ConfigError, match="Invalid value") as info:
        kafka_client(Producer, {"linger.ms": "soon", "sasl.password": "soon"}, "producer")
    assert "soon" not in str(info.value)
    # topic creation (wirestream produce, deploy/kafka/create_topics.py) goes through the same door
    from pipeline.admin import TopicSpec, ensure_topics

    with pytest.raises(ConfigError, match='admin settings: No such configuration property: "foo.bar"'):
        ensure_topics({"bootstrap.servers": "127.0.0.1:1", "foo.bar": "1"}, [TopicSpec("t", 1)], timeout=1)
