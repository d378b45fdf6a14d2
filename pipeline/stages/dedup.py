"""Exact deduplication: drop redeliveries and identical re-publications within a horizon.

An article is a duplicate when an article with the same normalized title+body hash
(``dedup.content_hash``) was seen within ``horizon`` of event time, whatever its id. A known id with new
content is an update and passes (it has a new hash); consumers key by article id.

Keyed by content hash; per key the state holds the first copy's id and event time. Timeline for one key
(horizon H)::

    t0  first copy arrives       -> passes; state = (id0, t0); timer at t0 + H
    t1  copy, |t1 - t0| <= H     -> duplicate of id0 (to the "duplicates" output, counted)
    t0 + H  watermark passes     -> state cleared: memory is bounded by the horizon
    t2  copy, |t2 - t0| > H      -> passes as a new first copy (same text, a different occasion)

Event time is ``published_at`` when the article has one, else its Kafka timestamp; the timer runs on the
element timestamps (Kafka time) so state is freed as the stream advances.

Warm start (``seeds``): a dict side input ``content_hash -> (article_id, event_ms)`` of what the sink already
holds (:mod:`pipeline.stages.warmstart`). A key whose state is empty consults it first, so after a restart a
re-read record, or a later copy, of an article already written is a duplicate. Being a side input it is
complete before any live record is processed: seeding cannot race the stream.
"""

from __future__ import annotations

from typing import Tuple

import apache_beam as beam
from apache_beam import coders, pvalue
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Duration

from pipeline.records import Article
from pipeline.stages.common import (ARTICLES, DEAD_LETTERS, DUPLICATES, METRICS_NAMESPACE, cheap_state_cache_sizing,
                                    stage_dead_letter, typed)
from pipeline.records import DeadLetter

__all__ = ["ExactDedup", "event_time_ms"]


def event_time_ms(article: dict) -> int:
    """The article's event time: published_at, else the Kafka timestamp, else ingestion time."""
    return article.get("published_at") or article["origin"].get("timestamp") or article["ingested_at"]


class _ExactDedupFn(beam.DoFn):
    FIRST = userstate.ReadModifyWriteStateSpec(
        "first", coders.TupleCoder([coders.StrUtf8Coder(), coders.VarIntCoder()]))
    EXPIRY = userstate.TimerSpec("exact_dedup_expiry", TimeDomain.WATERMARK)

    def __init__(self, horizon_ms: int, expire_state: bool = True):
        self._horizon = horizon_ms
        self._expire_state = expire_state
        self._in = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "dedup_in")
        self._dups = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "exact_duplicates")

    def setup(self):
        cheap_state_cache_sizing()

    def process(self, element: Tuple[str, Article], timestamp=beam.DoFn.TimestampParam,
                first=beam.DoFn.StateParam(FIRST), expiry=beam.DoFn.TimerParam(EXPIRY), seeds=None):
        key, article = element
        self._in.inc()
        try:
            t = event_time_ms(article)
            seen = first.read()
            if seen is None and seeds:
                seen = seeds.get(key)  # written before this job started (warm start)
        except Exception as exc:  # noqa: BLE001
            yield pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(article, "dedup", exc))
            return
        if seen is not None and abs(t - seen[1]) <= self._horizon:
            self._dups.inc()
            out = Article(article)
            out["dedup"] = dict(article["dedup"], duplicate_of=seen[0], similarity=1.0, story_id=seen[0])
            yield pvalue.TaggedOutput(DUPLICATES, out)
            return
        first.write((article["article_id"], t))
        if self._expire_state:
            expiry.set(timestamp + Duration(seconds=self._horizon / 1000.0))
        yield article

    @userstate.on_timer(EXPIRY)
    def expire(self, first=beam.DoFn.StateParam(FIRST)):
        first.clear()


class ExactDedup(beam.PTransform):
    """``PCollection[Article]`` -> ``{"articles", "duplicates", "dead_letters"}``.

    Args:
      horizon_seconds: how far apart in event time two identical articles still count as one.
      seeds: optional ``PCollection[(content_hash, (article_id, event_ms))]`` of articles already written
        (warm start); read as a dict side input.
      expire_state: free a hash's state a horizon after it was seen (an event-time timer per hash). Off for
        batch execution (a bounded replay not run ``--streaming``), where event-time timers fire only once
        the input is exhausted and would free state only when the job ends anyway. Whether an article is
        a duplicate never depends on it: the horizon is checked against the stored time.
    """

    def __init__(self, *, horizon_seconds: float = 7 * 24 * 3600, seeds: beam.PCollection | None = None,
                 expire_state: bool = True):
        super().__init__()
        if horizon_seconds <= 0:
            raise ValueError(f"horizon_seconds must be positive, got {horizon_seconds!r}")
        self._horizon_ms = int(horizon_seconds * 1000)
        self._seeds = seeds
        self._expire_state = bool(expire_state)

    def expand(self, articles):
        side = {"seeds": beam.pvalue.AsDict(self._seeds)} if self._seeds is not None else {}
        res = (
            articles
            | "KeyByContent" >> beam.Map(lambda a: (a["dedup"]["content_hash"], a)).with_output_types(
                Tuple[str, Article])
            | "DropExactCopies" >> beam.ParDo(_ExactDedupFn(self._horizon_ms, self._expire_state), **side).with_output_types(Article)
            .with_outputs(DUPLICATES, DEAD_LETTERS, main=ARTICLES)
        )
        return {ARTICLES: res[ARTICLES], DUPLICATES: typed(res[DUPLICATES], Article),
                DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}
