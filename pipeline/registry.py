"""Confluent Schema Registry framing (optional; ``pip install 'wirestream[registry]'``).

Only used with ``--schema-registry-url``: values are framed ``00`` + schema id + datum through
confluent-kafka's ``AvroSerializer`` (subject ``<topic>-value``), and Confluent-framed input is decoded with
``AvroDeserializer``.
"""

from __future__ import annotations

from typing import Callable, Mapping

from pipeline.avro import schema_json
from pipeline.errors import ConfigError, DecodeError

__all__ = ["confluent_encoder", "confluent_decoder"]


def _client(url: str, config: Mapping[str, str]):
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise ConfigError("--schema-registry-url needs the registry extra: pip install 'wirestream[registry]'") from exc
    return SchemaRegistryClient({"url": url, **dict(config)})


def confluent_encoder(url: str, config: Mapping[str, str], schema_name: str, topic: str) -> Callable[[dict], bytes]:
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    ser = AvroSerializer(_client(url, config), schema_json(schema_name), conf={"auto.register.schemas": True})
    ctx = SerializationContext(topic, MessageField.VALUE)
    return lambda record: ser(record, ctx)


def confluent_decoder(url: str, config: Mapping[str, str]) -> Callable[[bytes], dict]:
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    de = AvroDeserializer(_client(url, config))
    ctx = SerializationContext("input", MessageField.VALUE)

    def decode(data: bytes) -> dict:
        try:
            return de(data, ctx)
        except Exception as exc:  # noqa: BLE001 - SerializationError and registry errors
            raise DecodeError(f"Confluent-framed Avro could not be decoded via the registry: {exc}",
                              error_type="BadAvro") from exc

    return decode
