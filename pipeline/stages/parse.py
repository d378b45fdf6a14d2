"""Parse stage: KafkaRecord -> Article, or a dead letter with the bytes, origin and reason."""

from __future__ import annotations

import logging
from typing import List

import apache_beam as beam
from apache_beam import pvalue

from pipeline.errors import RecordError
from pipeline.parse import ParseLimits, parse_value
from pipeline.records import Article, DeadLetter, KafkaRecord, new_article, new_dead_letter
from pipeline.stages.common import ARTICLES, DEAD_LETTERS, METRICS_NAMESPACE, batch_outputs, now_ms, typed

__all__ = ["ParseArticles"]

_LOGGER = logging.getLogger(__name__)

#: Larger rejected messages are dead-lettered with their first this many bytes (a dead letter has to fit
#: the dead-letter topic's message size limit; a 20 MB message would otherwise fail every retry).
_DEAD_LETTER_VALUE_BYTES = 1024 * 1024


class _ParseFn(beam.DoFn):
    def __init__(self, limits: ParseLimits, schema_registry_url: str | None, registry_config: dict | None):
        self._limits = limits
        self._registry_url = schema_registry_url
        self._registry_config = dict(registry_config or {})
        self._confluent = None
        self._parsed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "parsed")
        self._rejected = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "parse_rejected")

    def setup(self):
        if self._registry_url:
            from pipeline.registry import confluent_decoder

            self._confluent = confluent_decoder(self._registry_url, self._registry_config)

    def process(self, rec: KafkaRecord):
        yield self._parse(rec)

    def _parse(self, rec: KafkaRecord):
        """The record's Article, or its dead letter as a tagged output."""
        try:
            fields = parse_value(rec.value, limits=self._limits, confluent_decoder=self._confluent)
        except RecordError as exc:
            self._rejected.inc()
            reason = str(exc)
            if rec.value is not None and len(rec.value) > _DEAD_LETTER_VALUE_BYTES:
                # the dead letter must fit the dead-letter topic, or writing it fails the bundle forever
                reason += (f" (dead letter keeps the first {_DEAD_LETTER_VALUE_BYTES} of {len(rec.value)} bytes; "
                           "the whole message stays at its origin offset)")
                rec = rec._replace(value=rec.value[:_DEAD_LETTER_VALUE_BYTES])
            return pvalue.TaggedOutput(DEAD_LETTERS, new_dead_letter(
                rec, stage="parse", error_type=exc.error_type, reason=reason, failed_at=now_ms()))
        except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the stream either
            self._rejected.inc()
            _LOGGER.warning("unexpected %s parsing %s[%d]@%d: %s", type(exc).__name__, rec.topic, rec.partition,
                            rec.offset, exc)
            return pvalue.TaggedOutput(DEAD_LETTERS, new_dead_letter(
                rec, stage="parse", error_type=f"StageError:{type(exc).__name__}",
                reason=f"parser raised {type(exc).__name__}: {exc}", failed_at=now_ms()))
        self._parsed.inc()
        return new_article(rec, article_id=fields.article_id, raw_body=fields.raw_body, ingested_at=now_ms(),
                           publisher=fields.publisher, url=fields.url, title=fields.title,
                           language=fields.language, published_at=fields.published_at, flags=fields.flags)


class _ParseBatchFn(_ParseFn):
    def process(self, recs: List[KafkaRecord]):
        return batch_outputs(self._parse(rec) for rec in recs)


class ParseArticles(beam.PTransform):
    """``PCollection[KafkaRecord]`` -> ``{"articles": PCollection[Article], "dead_letters": ...}``.

    Args:
      limits: size limits (:class:`~pipeline.parse.ParseLimits`).
      schema_registry_url: decode Confluent-framed Avro through this registry (optional).
      registry_config: extra schema-registry client settings (credentials...).
      batched: ``PCollection[List[KafkaRecord]]`` in, ``PCollection[List[Article]]`` out (one list per
        input list, without its rejects; see ``ReadFromKafka(batched=True)``). Dead letters are single.
    """

    def __init__(self, *, limits: ParseLimits = ParseLimits(), schema_registry_url: str | None = None,
                 registry_config: dict | None = None, batched: bool = False):
        super().__init__()
        self._fn = (_ParseBatchFn if batched else _ParseFn)(limits, schema_registry_url, registry_config)
        self._batched = batched

    def expand(self, records):
        out_type = List[Article] if self._batched else Article
        res = records | "Parse" >> beam.ParDo(self._fn).with_output_types(out_type).with_outputs(
            DEAD_LETTERS, main=ARTICLES)
        return {ARTICLES: res[ARTICLES], DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}
