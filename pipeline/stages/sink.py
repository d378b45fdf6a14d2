"""Encoding for the sinks: Article / DeadLetter -> OutboundMessage (Avro, key = article id).

Headers on every message: ``content-type`` (``application/vnd.wirestream.<schema>+avro``), ``avro.schema``
(the schema name in ``schemas/``), ``avro.fingerprint`` (hex CRC-64-AVRO, single-object framing) and
``wirestream.version``.
"""

from __future__ import annotations

from typing import List

import apache_beam as beam
from apache_beam import pvalue

from pipeline import __version__
from pipeline.avro import DEAD_LETTER, ENRICHED_ARTICLE, SingleObjectEncoder, fingerprint
from pipeline.kafkaio import OutboundMessage
from pipeline.records import DeadLetter, Header, ack_of
from pipeline.stages.common import (ARTICLES, DEAD_LETTERS, METRICS_NAMESPACE, batch_outputs, stage_dead_letter,
                                    typed)

__all__ = ["EncodeArticles", "EncodeDeadLetters", "public_record"]

_INTERNAL = ("_ack", "_key", "_value")


def public_record(record: dict) -> dict:
    """The record without in-flight internals, as written to the sink."""
    return {k: v for k, v in record.items() if k not in _INTERNAL}


class _EncodeFn(beam.DoFn):
    def __init__(self, schema_name: str, topic: str, registry_url: str | None, registry_config: dict | None,
                 key_field: str | None):
        self._schema_name = schema_name
        self._topic = topic
        self._registry_url = registry_url
        self._registry_config = dict(registry_config or {})
        self._key_field = key_field
        self._encode = None
        self._failed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, f"encode_failed_{schema_name}")

    def setup(self):
        if self._registry_url:
            from pipeline.registry import confluent_encoder

            encode = confluent_encoder(self._registry_url, self._registry_config, self._schema_name, self._topic)
            self._encode = lambda record: encode(public_record(record))
            framing = b"confluent"
        else:
            # the compiled writer reads the schema's fields only: in-flight internals need no copy-out
            self._encode = SingleObjectEncoder(self._schema_name)
            framing = b"single-object"
        self._headers = [
            Header("content-type", f"application/vnd.wirestream.{self._schema_name}+avro".encode()),
            Header("avro.schema", self._schema_name.encode()),
            Header("avro.framing", framing),
            Header("avro.fingerprint", fingerprint(self._schema_name).hex().encode()),
            Header("wirestream.version", __version__.encode()),
        ]

    def process(self, record: dict):
        yield self._message(record)

    def _message(self, record: dict):
        """The record's OutboundMessage, or (an article that cannot be encoded) its dead letter."""
        try:
            value = self._encode(record)
        except Exception as exc:  # noqa: BLE001 - SchemaError or registry failure: dead-letter the article
            if self._schema_name == DEAD_LETTER:
                raise  # a dead letter that cannot be encoded must fail loudly, never vanish
            self._failed.inc()
            return pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(record, "encode", exc))
        if self._key_field:
            key = record.get(self._key_field)
            key = key.encode("utf-8") if key else None
        else:
            key = record.get("key")  # dead letters keep the original message key
        return OutboundMessage(key, value, self._headers, ack_of(record))  # one headers list, never mutated


class _EncodeBatchFn(_EncodeFn):
    def process(self, records: List[dict]):
        return batch_outputs(self._message(record) for record in records)


class EncodeArticles(beam.PTransform):
    """``PCollection[Article]`` -> ``{"articles": PCollection[OutboundMessage], "dead_letters": ...}``.

    ``batched``: lists in, lists out (``PCollection[List[Article]]`` -> ``PCollection[List[OutboundMessage]]``);
    dead letters stay single.
    """

    def __init__(self, *, topic: str, schema_registry_url: str | None = None, registry_config: dict | None = None,
                 batched: bool = False):
        super().__init__()
        self._fn = (_EncodeBatchFn if batched else _EncodeFn)(ENRICHED_ARTICLE, topic, schema_registry_url,
                                                              registry_config, "article_id")
        self._batched = batched

    def expand(self, articles):
        out_type = List[OutboundMessage] if self._batched else OutboundMessage
        res = articles | "Encode" >> beam.ParDo(self._fn).with_output_types(out_type).with_outputs(
            DEAD_LETTERS, main=ARTICLES)
        return {ARTICLES: res[ARTICLES], DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}


class EncodeDeadLetters(beam.PTransform):
    """``PCollection[DeadLetter]`` -> ``PCollection[OutboundMessage]`` (key = the original message key)."""

    def __init__(self, *, topic: str, schema_registry_url: str | None = None, registry_config: dict | None = None):
        super().__init__()
        self._fn = _EncodeFn(DEAD_LETTER, topic, schema_registry_url, registry_config, None)

    def expand(self, dead_letters):
        return dead_letters | "Encode" >> beam.ParDo(self._fn).with_output_types(OutboundMessage)
