"""The records that flow between stages, and their Beam coders.

* :class:`KafkaRecord` -- one message as read from Kafka (bytes plus origin). Row-coded.
* :class:`Article` -- a ``dict`` shaped like ``schemas/enriched_article.avsc`` plus an internal
  ``_ack`` field (which input offsets this record covers, for offset commits). Coded with fastavro
  against that schema: deterministic, compact, no pickling.
* :class:`DeadLetter` -- a ``dict`` shaped like ``schemas/dead_letter.avsc`` plus ``_ack``.
* :class:`Ack` -- "these input offsets are done" (written, dropped as duplicate, or dead-lettered).

Stages never mutate an input element: they copy (``Article(article)``) and set fields on the copy.
"""

from __future__ import annotations

import copy
import functools
import io
import json
from typing import Any, List, NamedTuple, Optional

import fastavro
from apache_beam import coders

from pipeline import __version__
from pipeline.avro import DEAD_LETTER, ENRICHED_ARTICLE, schema_json

__all__ = [
    "Header",
    "KafkaRecord",
    "Ack",
    "Article",
    "DeadLetter",
    "ArticleCoder",
    "DeadLetterCoder",
    "new_article",
    "new_dead_letter",
    "dead_letter_for_article",
    "ack_of",
]


class Header(NamedTuple):
    key: str
    value: Optional[bytes]


class KafkaRecord(NamedTuple):
    """A Kafka message and where it came from.

    ``covers_from`` .. ``offset`` is the offset range this record accounts for in its partition (the
    reader's previous position + 1 up to this offset; more than one offset where the log has gaps such as
    transaction markers). ``run_start`` is where this run started reading the partition.
    """

    topic: str
    partition: int
    offset: int
    timestamp: Optional[int]  # Kafka timestamp, ms since epoch
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Header]
    covers_from: int
    run_start: int


class Ack(NamedTuple):
    """Input offsets ``[covers_from, offset]`` of ``topic``/``partition`` are fully handled."""

    topic: str
    partition: int
    covers_from: int
    offset: int
    run_start: int


coders.registry.register_coder(Header, coders.RowCoder)
coders.registry.register_coder(KafkaRecord, coders.RowCoder)
coders.registry.register_coder(Ack, coders.RowCoder)

_ACK_FIELD = {
    "name": "_ack",
    "doc": "internal: input offsets this record covers",
    "type": ["null", {
        "type": "record", "name": "InternalAck", "fields": [
            {"name": "topic", "type": "string"},
            {"name": "partition", "type": "int"},
            {"name": "covers_from", "type": "long"},
            {"name": "offset", "type": "long"},
            {"name": "run_start", "type": "long"},
        ]}],
    "default": None,
}


_INTERNAL_FIELDS = [
    _ACK_FIELD,
    # The original message, so a later stage that fails on this article can dead-letter its bytes.
    {"name": "_key", "type": ["null", "bytes"], "default": None},
    {"name": "_value", "type": ["null", "bytes"], "default": None},
]


@functools.lru_cache(maxsize=None)
def _inflight_schema(name: str) -> Any:
    # In flight, times stay plain epoch-millisecond ints: drop logical types so fastavro does not
    # turn them into datetimes on decode.
    schema = json.loads(schema_json(name), object_hook=_without_logical_type)
    schema["name"] = "InFlight" + schema["name"]
    schema["fields"] = schema["fields"] + [copy.deepcopy(f) for f in _INTERNAL_FIELDS]
    return fastavro.parse_schema(schema)


def _without_logical_type(obj: dict) -> Any:
    if obj.get("logicalType") and obj.get("type") in ("long", "int"):
        return obj["type"]
    return obj


class Article(dict):
    """An enriched article in flight (a dict in the shape of enriched_article.avsc + ``_ack``)."""


class DeadLetter(dict):
    """A dead letter in flight (a dict in the shape of dead_letter.avsc + ``_ack``)."""


class _AvroDictCoder(coders.Coder):
    _schema_name: str
    _type: type

    def __init__(self):
        self._schema = _inflight_schema(self._schema_name)

    def encode(self, value):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self._schema, value)
        return buf.getvalue()

    def decode(self, encoded):
        return self._type(fastavro.schemaless_reader(io.BytesIO(encoded), self._schema, None))

    def is_deterministic(self):
        return True

    def to_type_hint(self):
        return self._type

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))

    def __reduce__(self):
        return (type(self), ())


class ArticleCoder(_AvroDictCoder):
    _schema_name = ENRICHED_ARTICLE
    _type = Article


class DeadLetterCoder(_AvroDictCoder):
    _schema_name = DEAD_LETTER
    _type = DeadLetter


coders.registry.register_coder(Article, ArticleCoder)
coders.registry.register_coder(DeadLetter, DeadLetterCoder)


def _ack_dict(rec: KafkaRecord) -> dict:
    return {"topic": rec.topic, "partition": rec.partition, "covers_from": rec.covers_from,
            "offset": rec.offset, "run_start": rec.run_start}


def _origin(rec: KafkaRecord) -> dict:
    return {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset, "timestamp": rec.timestamp}


def new_article(rec: KafkaRecord, *, article_id: str, raw_body: str, ingested_at: int, **fields: Any) -> Article:
    """A fresh Article for a parsed record: every stage field present and empty."""
    from pipeline.text import content_hash, sha256_hex

    art = Article(
        article_id=article_id,
        publisher=fields.get("publisher"),
        url=fields.get("url"),
        title=fields.get("title"),
        language=fields.get("language"),
        published_at=fields.get("published_at"),
        ingested_at=ingested_at,
        body=raw_body,
        raw_body_sha256=sha256_hex(raw_body),
        origin=_origin(rec),
        boilerplate=[],
        flags=list(fields.get("flags") or []),
        dedup={"content_hash": content_hash(fields.get("title"), raw_body), "signature": None,
               "duplicate_of": None, "similarity": None, "story_id": None},
        attributions=[],
        events=[],
        entities=[],
        pipeline_version=__version__,
        _ack=_ack_dict(rec),
        _key=rec.key,
        _value=rec.value,
    )
    return art


def new_dead_letter(rec: KafkaRecord, *, stage: str, error_type: str, reason: str, failed_at: int,
                    article_id: str | None = None) -> DeadLetter:
    return DeadLetter(
        origin=_origin(rec),
        key=rec.key,
        value=rec.value,
        stage=stage,
        error_type=error_type,
        reason=reason,
        failed_at=failed_at,
        article_id=article_id,
        pipeline_version=__version__,
        _ack=_ack_dict(rec),
    )


def dead_letter_for_article(article: Article, *, stage: str, error_type: str, reason: str,
                            failed_at: int) -> DeadLetter:
    """A dead letter for an article a later stage failed on, with the original message bytes."""
    return DeadLetter(
        origin=dict(article["origin"]),
        key=article.get("_key"),
        value=article.get("_value"),
        stage=stage,
        error_type=error_type,
        reason=reason,
        failed_at=failed_at,
        article_id=article.get("article_id"),
        pipeline_version=__version__,
        _ack=dict(article["_ack"]),
    )


def ack_of(record: dict) -> Ack:
    """The Ack for an Article or DeadLetter: its input offsets are done."""
    a = record["_ack"]
    return Ack(a["topic"], a["partition"], a["covers_from"], a["offset"], a["run_start"])
