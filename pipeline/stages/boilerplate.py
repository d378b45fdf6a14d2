"""Boilerplate stage: cut donation appeals, newsletter boxes, menus and other furniture from the body.

A thin Beam shell over :mod:`pipeline.boilerplate` (pure Python). Architecture::

    articles --KeyByPublisher--> (publisher or "", Article)      # StrUtf8Coder x ArticleCoder
             --Strip--> stateful DoFn, one PublisherMemory per publisher in ReadModifyWriteState
             --> {"articles": cleaned copies, "dead_letters": failures}

Per article the DoFn runs the rules and cue layers, consults the publisher's memory, then observes the
article's paragraphs into it, and writes ``body`` (clean), ``boilerplate`` (removed spans with raw
offsets) and ``flags`` into a copy of the article. ``clean == cut_spans(raw, spans)``, so later stages map
offsets back with :class:`pipeline.text.OffsetMap`.

Determinism: the memory's verdicts depend on the order in which a publisher's articles reach the DoFn.
For a given per-publisher order they are deterministic (no wall clock: the memory's horizon runs on the
articles' event time, ``published_at`` else Kafka time else ingestion time). Beam does not promise an
order within a key, so two runs over the same unordered input may differ on articles near a memory's
warm-up; tests feed a single key order.

Usage::

    out = articles | "Boilerplate" >> StripBoilerplate(min_articles=2)
    clean, dead = out["articles"], out["dead_letters"]
"""

from __future__ import annotations

import logging
import typing
from pathlib import Path

import apache_beam as beam
from apache_beam import coders, pvalue
from apache_beam.transforms import userstate

from pipeline.boilerplate import ALL_BOILERPLATE, PublisherMemory, load_rules, strip
from pipeline.boilerplate.memory import DAY_MS
from pipeline.records import Article, DeadLetter
from pipeline.stages.common import ARTICLES, DEAD_LETTERS, METRICS_NAMESPACE, stage_dead_letter, typed

__all__ = ["StripBoilerplate", "strip_article"]

_LOGGER = logging.getLogger(__name__)
STAGE = "boilerplate"


def _event_time_ms(article: dict) -> int | None:
    return (article.get("published_at") or (article.get("origin") or {}).get("timestamp")
            or article.get("ingested_at"))


def strip_article(article: Article, memory: PublisherMemory | None, rules) -> tuple[Article, int, bool]:
    """A cleaned copy of ``article`` (input untouched), the number of spans cut, whether all_boilerplate."""
    raw = article["body"]
    res = strip(raw, article.get("publisher"), memory=memory, rules=rules,
                article_key=article.get("title") or article.get("article_id"),
                event_time_ms=_event_time_ms(article), title=article.get("title"))
    out = Article(article)
    out["body"] = res.body
    out["boilerplate"] = [s.as_dict() for s in res.removed]
    flags = list(article.get("flags") or [])
    flags += [f for f in res.flags if f not in flags]
    out["flags"] = flags
    return out, len(res.removed), ALL_BOILERPLATE in res.flags


class _StripFn(beam.DoFn):
    MEMORY = userstate.ReadModifyWriteStateSpec("memory", coders.BytesCoder())

    def __init__(self, *, rules_path: str | None, min_articles: int, max_paragraphs: int, horizon_ms: int):
        super().__init__()
        self._rules_path = rules_path
        self._mem_params = {"min_articles": min_articles, "max_paragraphs": max_paragraphs,
                            "horizon_ms": horizon_ms}
        self._rules = None
        self._in = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "boilerplate_in")
        self._out = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "boilerplate_out")
        self._failed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "boilerplate_failed")
        self._spans = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "spans_removed")
        self._all = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "all_boilerplate")

    def setup(self):
        self._rules = load_rules(self._rules_path)

    def process(self, element: typing.Tuple[str, Article], memory=beam.DoFn.StateParam(MEMORY)):
        _publisher, article = element
        self._in.inc()
        try:
            if self._rules is None:
                self.setup()
            mem = PublisherMemory.from_bytes(memory.read(), **self._mem_params)
            out, n_spans, all_boiler = strip_article(article, mem, self._rules)
            blob = mem.to_bytes()
        except Exception as exc:  # noqa: BLE001 - any failure of one record becomes a dead letter
            self._failed.inc()
            _LOGGER.warning("stage %s failed on article %s (%s: %s); dead-lettered",
                            STAGE, article.get("article_id"), type(exc).__name__, exc)
            yield pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(article, STAGE, exc))
            return
        memory.write(blob)
        self._out.inc()
        self._spans.inc(n_spans)
        if all_boiler:
            self._all.inc()
        yield out


class StripBoilerplate(beam.PTransform):
    """Strip boilerplate from ``PCollection[Article]``; returns ``{"articles", "dead_letters"}``.

    Args (keyword-only):
        rules_path: a boilerplate rules JSON file (format in :mod:`pipeline.boilerplate.rules`); None for
            the packaged ``pipeline/data/boilerplate_rules.json``.
        min_articles: memory warm-up: a paragraph is learned boilerplate once seen in this many distinct
            articles of the publisher (>= 2, the current article included).
        max_paragraphs: cap on fingerprints remembered per publisher (least recently seen dropped first).
        horizon_days: event-time horizon after which an unseen fingerprint is forgotten.
    """

    def __init__(self, *, rules_path: str | Path | None = None, min_articles: int = 2,
                 max_paragraphs: int = 5000, horizon_days: float = 30.0, label: str | None = None):
        super().__init__(label)
        if not isinstance(min_articles, int) or min_articles < 2:
            raise ValueError(f"min_articles must be an int >= 2, got {min_articles!r}")
        if not isinstance(max_paragraphs, int) or max_paragraphs < 1:
            raise ValueError(f"max_paragraphs must be an int >= 1, got {max_paragraphs!r}")
        if not horizon_days > 0:
            raise ValueError(f"horizon_days must be > 0, got {horizon_days!r}")
        if rules_path is not None:
            load_rules(rules_path)  # fail at construction, naming the file, not on a worker
        self._rules_path = None if rules_path is None else str(rules_path)
        self._min_articles = min_articles
        self._max_paragraphs = max_paragraphs
        self._horizon_ms = int(horizon_days * DAY_MS)

    def expand(self, articles):
        keyed = (articles
                 | "KeyByPublisher" >> beam.Map(lambda a: (a.get("publisher") or "", a))
                 .with_output_types(typing.Tuple[str, Article]))
        res = keyed | "Strip" >> beam.ParDo(_StripFn(
            rules_path=self._rules_path, min_articles=self._min_articles,
            max_paragraphs=self._max_paragraphs, horizon_ms=self._horizon_ms,
        )).with_output_types(Article).with_outputs(DEAD_LETTERS, main=ARTICLES)
        return {ARTICLES: res[ARTICLES], DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}
