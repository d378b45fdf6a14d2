"""Exact deduplication: drop redeliveries and identical re-publications within a horizon.

An article is a duplicate when an article with the same normalized title+body hash
(``dedup.content_hash``) was seen within ``horizon`` of event time, whatever its id. A known id with new
content is an update and passes (it has a new hash); consumers key by article id.

Timeline for one hash (horizon H)::

    t0  first copy arrives       -> passes; stored as (id0, t0)
    t1  copy, |t1 - t0| <= H     -> duplicate of id0 (to the "duplicates" output, counted)
    t0 + H  watermark passes     -> entry forgotten: memory is bounded by the horizon
    t2  copy, |t2 - t0| > H      -> passes as a new first copy (same text, a different occasion)

Event time is ``published_at`` when the article has one, else its Kafka timestamp; expiry runs on the
element timestamps (Kafka time) so state is freed as the stream advances.

Which copy is the first (``ordered``, the default for single articles): the earliest by element (Kafka)
time, then topic, partition, offset -- not the first to arrive. Copies on different partitions reach the
step in whatever order the partitions' readers, bundles and workers happen to deliver them; judged as they
arrive, a replay with two workers could keep a different copy than one with one worker, and since the
boilerplate memory judges a publisher's articles in element-time order, the kept copy's time would then
change what is cut from *other* articles. So arrivals wait in the shard's state until the watermark passes
their one-second step, then are judged in that order (the same holding the boilerplate and near-dup stages
already do, so the pipeline's latency barely moves). The I/O-only path (``batched``) judges on arrival: it
has no stage that waits, and its lists would have to be held whole.

Shape (why it is batched): a key per hash would cost a keyed-state read per article, and on runners
without a warm state cache (the local runner's worker processes; any runner for a hash never seen, which
is nearly every hash) that read is a round trip to the runner: it was the largest cost of the I/O path.
So hashes are spread over ``shards`` keys and articles travel in batches::

    Article ─ BatchByShard (per bundle: one batch per shard and window, in arrival order)
            ─> [shard] DropExactCopies: per batch (ordered: per release of waiting articles) one version
               read; the new first copies are appended to the shard's state as one chunk
               (pipeline.dedup.Chunk) and the version rewritten
            ─> each article to "articles" or "duplicates", at its own element timestamp (ordered: at its
               release step's)

    bounded batch jobs (``grouped=True``; the builder's choice for replays not run ``--streaming``):
    Article ─ BatchByShard ─> GroupByShard (GroupByKey) ─> [shard] DropExactCopies: the shard's articles in
               the order the release timers would release them, judged step by step by the same code
               against one index held for the call; each out at its release step's time. No keyed state,
               so a local runner splits it over its workers by shard (a stateful step runs on one).

Per shard the state is a bag of chunks plus a version token (a random number rewritten with every
append). A worker keeps an in-memory index of the shards it served (:class:`pipeline.dedup.ShardIndex`)
labelled with the token it mirrors, and uses it only while the stored token still equals it; otherwise
(another worker served the shard, a bundle failed and was retried, a fresh process) it rebuilds the index
from the chunks. So the index is a cache that cannot go stale, whatever the runner does with bundles.

Warm start (``seeds``): a dict side input ``content_hash -> (article_id, event_ms)`` of what the sink already
holds (:mod:`pipeline.stages.warmstart`), consulted for hashes the shard does not hold. Being a side input it
is complete before any live record is processed: seeding cannot race the stream.
"""

from __future__ import annotations

import itertools
import random
from typing import Iterable, List, Tuple

import apache_beam as beam
from apache_beam import coders, pvalue
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.dedup import CHUNK_CODER, ShardIndex, shard_of
from pipeline.records import Article, ArticleCoder, DeadLetter
from pipeline.stages.common import (ARTICLES, DEAD_LETTERS, DUPLICATES, METRICS_NAMESPACE, ReleaseSteps, at_step,
                                    cheap_state_cache_sizing, element_micros, release_time, stage_dead_letter, typed)

__all__ = ["ExactDedup", "event_time_ms"]

#: A batch: (element timestamp in micros, article) pairs of one shard, in arrival order.
_Batch = List[Tuple[int, Article]]


def event_time_ms(article: dict) -> int:
    """The article's event time: published_at, else the Kafka timestamp, else ingestion time."""
    return article.get("published_at") or article["origin"].get("timestamp") or article["ingested_at"]


class _BatchByShardFn(beam.DoFn):
    """Collects a bundle's articles into one batch per (window, shard); a batch is sent when it holds
    ``max_batch`` articles or the bundle ends, stamped with its earliest element time (so the watermark
    downstream cannot pass any article in it before it is handled)."""

    def __init__(self, shards: int, max_batch: int, batched_input: bool):
        self._shards = shards
        self._max_batch = max_batch
        self._batched_input = batched_input
        self._buffers: dict = {}

    def start_bundle(self):
        self._buffers = {}

    def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        if not self._batched_input:
            return self._add(element, element_micros(timestamp), window)
        out = []
        batch_micros = element_micros(timestamp)
        for article in element:
            # a batch carries its earliest time: each article gets back the time it had as a record
            kafka_ms = (article.get("origin") or {}).get("timestamp")
            out.extend(self._add(article, kafka_ms * 1000 if kafka_ms is not None else batch_micros, window))
        return out

    def _add(self, article: Article, micros: int, window) -> list:
        try:
            shard = shard_of(article["dedup"]["content_hash"], self._shards)
        except Exception:  # noqa: BLE001 - a malformed hash: shard 0, the dedup step dead-letters it
            shard = "0"
        key = (window, shard)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = []
        buf.append((micros, article))
        if len(buf) < self._max_batch:
            return []
        del self._buffers[key]
        return [self._emit(window, shard, buf)]

    def finish_bundle(self):
        buffers, self._buffers = self._buffers, {}
        for (window, shard), buf in buffers.items():
            yield self._emit(window, shard, buf)

    @staticmethod
    def _emit(window, shard: str, buf: _Batch) -> WindowedValue:
        earliest = min(micros for micros, _ in buf)
        return WindowedValue((shard, buf), Timestamp(micros=earliest), [window])


class _JudgeCopiesFn(beam.DoFn):
    """What every form of the step shares: the horizon, the counters, and :meth:`_judge`, which checks a
    shard's articles in a given order against its index. No state: the keyed-state forms below add it,
    the grouped form (:class:`_DropExactCopiesGroupedFn`) keeps the index only while it judges a shard."""

    def __init__(self, horizon_ms: int, batched_output: bool = False):
        self._horizon = horizon_ms
        self._batched_output = batched_output
        self._in = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "dedup_in")
        self._dups = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "exact_duplicates")

    def _judge(self, index: ShardIndex, batch: _Batch, seeds, *, stamp: bool = True) -> list:
        """Check ``batch`` in its order against ``index`` (the first copies are added to it); the outputs.

        ``stamp``: each kept article and duplicate goes out at its own element time (else at the time of
        the call: a timer's; the grouped form stamps them itself)."""
        self._in.inc(len(batch))
        out = []
        kept = [] if self._batched_output else out
        for micros, article in batch:
            try:
                t = event_time_ms(article)
                key = article["dedup"]["content_hash"]
                seen = index.check(key, t, seeds)
            except Exception as exc:  # noqa: BLE001
                out.append(pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(article, "dedup", exc)))
                continue
            if seen is not None:
                self._dups.inc()
                dup = Article(article)
                dup["dedup"] = dict(article["dedup"], duplicate_of=seen.article_id, similarity=1.0,
                                    story_id=seen.article_id)
                out.append(pvalue.TaggedOutput(
                    DUPLICATES, beam.window.TimestampedValue(dup, Timestamp(micros=micros)) if stamp else dup))
                continue
            index.add(key, article["article_id"], t, micros // 1000)
            kept.append(article if self._batched_output or not stamp
                        else beam.window.TimestampedValue(article, Timestamp(micros=micros)))
        if self._batched_output and kept:
            out.append(kept)  # at the batch's (earliest) time
        return out


class _DropExactCopiesFn(_JudgeCopiesFn):
    CHUNKS = userstate.BagStateSpec("chunks", CHUNK_CODER)
    VERSION = userstate.ReadModifyWriteStateSpec("version", coders.VarIntCoder())
    EXPIRY = userstate.TimerSpec("exact_dedup_expiry", TimeDomain.WATERMARK)

    def __init__(self, horizon_ms: int, expire_state: bool = True, batched_output: bool = False):
        super().__init__(horizon_ms, batched_output)
        self._expire_state = expire_state
        self._indexes: dict = {}
        self._rebuilt = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "dedup_index_rebuilds")

    def setup(self):
        cheap_state_cache_sizing()
        self._indexes = {}
        self._random = random.Random()

    def _index(self, shard: str, chunks, version) -> ShardIndex:
        token = version.read()
        index = self._indexes.get(shard)
        if index is not None and token is not None and index.token == token:
            return index
        if token is None:
            index = ShardIndex(self._horizon)
        else:
            self._rebuilt.inc()
            index = ShardIndex.from_chunks(self._horizon, token, chunks.read())
        self._indexes[shard] = index
        return index

    def _save(self, index: ShardIndex, chunks, version, *, rewrite=None) -> None:
        if rewrite is not None:
            chunks.clear()
            if rewrite.hashes:
                chunks.add(rewrite)
        else:
            chunk = index.take_chunk()
            if chunk is None:
                return
            chunks.add(chunk)
        index.token = self._random.getrandbits(62) + 1
        version.write(index.token)

    def process(self, element: Tuple[str, _Batch], chunks=beam.DoFn.StateParam(CHUNKS),
                version=beam.DoFn.StateParam(VERSION), expiry=beam.DoFn.TimerParam(EXPIRY), seeds=None):
        shard, batch = element
        return self._check(shard, batch, chunks, version, expiry, seeds)

    def _check(self, shard: str, batch: _Batch, chunks, version, expiry, seeds, *, stamp: bool = True) -> list:
        """Judge ``batch`` in its order against the shard's index (:meth:`_judge`), store what it added and
        set the expiry timer; the outputs."""
        index = self._index(shard, chunks, version)
        out = self._judge(index, batch, seeds, stamp=stamp)
        self._save(index, chunks, version)
        if self._expire_state and index.oldest_element_ms is not None:
            expiry.set(Timestamp(micros=(index.oldest_element_ms + self._horizon) * 1000))
        return out

    @userstate.on_timer(EXPIRY)
    def expire(self, key=beam.DoFn.KeyParam, fired=beam.DoFn.TimestampParam,
               chunks=beam.DoFn.StateParam(CHUNKS), version=beam.DoFn.StateParam(VERSION),
               expiry=beam.DoFn.TimerParam(EXPIRY)):
        index = self._index(key, chunks, version)
        kept = index.expire(int(fired.micros) // 1000)
        self._save(index, chunks, version, rewrite=kept)
        if index.oldest_element_ms is not None:
            expiry.set(Timestamp(micros=(index.oldest_element_ms + self._horizon) * 1000))



def _copy_order(micros: int, article: Article) -> tuple:
    """Which of several copies is the first: (element time, topic, partition, offset)."""
    origin = article.get("origin") or {}
    return (micros, str(origin.get("topic") or ""), int(origin.get("partition") or 0),
            int(origin.get("offset") or 0))


# A waiting article: element micros, ArticleCoder bytes, its hash's warm-start seed (timers see no side input)
_PENDING_CODER = coders.TupleCoder([
    coders.VarIntCoder(), coders.BytesCoder(),
    coders.NullableCoder(coders.TupleCoder([coders.StrUtf8Coder(), coders.VarIntCoder()]))])


class _DropExactCopiesInOrderFn(_DropExactCopiesFn):
    """:class:`_DropExactCopiesFn` judging in element-time order: the first copy survives, whatever order
    partitions, bundles and workers deliver copies in.

    Arriving articles wait in the shard's ``pending`` bag; a release timer per one-second step of element
    time (:class:`ReleaseSteps`) judges, once the watermark passes it, every waiting article at or before it
    in :func:`_copy_order`, and emits the kept ones and the duplicates at the step's time. An article that
    arrives after its step was released (late data) waits for the next firing, which comes at once."""

    PENDING = userstate.BagStateSpec("pending", _PENDING_CODER)
    RELEASE = userstate.TimerSpec("exact_dedup_release", TimeDomain.WATERMARK)

    def __init__(self, horizon_ms: int, expire_state: bool = True):
        super().__init__(horizon_ms, expire_state, batched_output=False)
        self._steps = ReleaseSteps()
        self._coder = ArticleCoder()

    def start_bundle(self):
        self._steps.new_bundle()

    def process(self, element: Tuple[str, _Batch], pending=beam.DoFn.StateParam(PENDING),
                release=beam.DoFn.TimerParam(RELEASE), seeds=None):
        shard, batch = element
        for micros, article in batch:
            seed = None
            if seeds:
                got = seeds.get((article.get("dedup") or {}).get("content_hash"))
                seed = (got[0], got[1]) if got is not None else None
            pending.add((micros, self._coder.encode(article), seed))
            self._steps.arm(release, shard, micros)

    @userstate.on_timer(RELEASE)
    def on_release(self, key=beam.DoFn.KeyParam, fired=beam.DoFn.TimestampParam,
                   pending=beam.DoFn.StateParam(PENDING), chunks=beam.DoFn.StateParam(_DropExactCopiesFn.CHUNKS),
                   version=beam.DoFn.StateParam(_DropExactCopiesFn.VERSION),
                   expiry=beam.DoFn.TimerParam(_DropExactCopiesFn.EXPIRY)):
        self._steps.fired(key, fired)
        now = int(fired.micros)
        waiting = list(pending.read())
        ready = [w for w in waiting if w[0] <= now]
        if not ready:
            return []  # an earlier firing released this step's articles
        pending.clear()
        for w in waiting:
            if w[0] > now:
                pending.add(w)
        batch, seeds = [], {}
        for micros, data, seed in ready:
            article = self._coder.decode(data)
            batch.append((micros, article))
            if seed is not None:
                seeds[article["dedup"]["content_hash"]] = seed
        batch.sort(key=lambda ma: _copy_order(*ma))
        return self._check(key, batch, chunks, version, expiry, seeds, stamp=False)


class _DropExactCopiesGroupedFn(_JudgeCopiesFn):
    """Batch execution: one shard's articles, grouped, judged as the release timers of
    :class:`_DropExactCopiesInOrderFn` would judge them.

    The timers release a shard's waiting articles one step of element time at a time, each step sorted by
    :func:`_copy_order` and judged against the shard's index. In a bounded batch job every article has
    arrived before the first timer fires, so the same order is the sorted list cut into release steps; each
    step is judged here by the same :meth:`_JudgeCopiesFn._judge` against one index that lives for the call
    (as the stored one lives across the releases), and its outputs leave at the step's time, the timer's.
    (The local FnApiRunner fires the timers a bundle set in the order they were set, not in time order:
    where a shard's later step was armed first, its firing releases the earlier steps' articles too, at its
    own later time. The verdicts are the same, each firing taking the next run of the sorted list; only
    those times differ, and here they are always the steps'.)
    Warm-start seeds come from the side input (the timer form carries each article's seed through state).
    No keyed state and no expiry (batch execution keeps a shard's entries to the end either way): on the
    local runner a GroupByKey's consumers are split over the workers by key, a stateful stage runs on one.
    """

    def process(self, element: Tuple[str, Iterable[_Batch]], seeds=None):
        shard, batches = element
        items = sorted(itertools.chain.from_iterable(batches), key=lambda ma: _copy_order(*ma))
        index = ShardIndex(self._horizon)
        for step, group in itertools.groupby(items, key=lambda ma: release_time(ma[0])):
            yield from at_step(self._judge(index, list(group), seeds, stamp=False), step)


class ExactDedup(beam.PTransform):
    """``PCollection[Article]`` -> ``{"articles", "duplicates", "dead_letters"}``.

    Args:
      horizon_seconds: how far apart in event time two identical articles still count as one.
      seeds: optional ``PCollection[(content_hash, (article_id, event_ms))]`` of articles already written
        (warm start); read as a dict side input.
      expire_state: forget a hash a horizon (of element time) after it was seen (an event-time timer per
        shard). Off for batch execution (a bounded replay not run ``--streaming``), where event-time timers
        fire only once the input is exhausted and would free state only when the job ends anyway. Whether
        an article is a duplicate never depends on it: the horizon is checked against the stored time.
      shards: keys the hashes are spread over (parallelism of the step on distributed runners; more shards
        mean smaller batches).
      max_batch: most articles per batch.
      batched: ``PCollection[List[Article]]`` in and, for "articles", out: one list per shard batch
        (see ``ReadFromKafka(batched=True)``); duplicates and dead letters stay single.
      ordered: judge copies in element-time order (the first copy survives: earliest Kafka time, then
        topic, partition, offset), waiting for the watermark as the boilerplate and near-dup stages do, so
        the outcome does not depend on how partitions, bundles or workers interleave; articles then leave
        at the end of their one-second release step. Else (the default with ``batched``, the I/O path
        with no later stage that waits) copies are judged as they arrive and the first to arrive survives.
        None: ``not batched``.
      grouped: judge each shard's articles after a GroupByKey instead of through keyed state and release
        timers: for a bounded batch job only (every article is there before any would be released; needs
        ``ordered``, ``batched=False`` and ``expire_state=False``), where it keeps the same copies, emits
        each at its release step's time (tests) and, having no keyed state, is split over a local runner's
        workers by shard.
    """

    def __init__(self, *, horizon_seconds: float = 7 * 24 * 3600, seeds: beam.PCollection | None = None,
                 expire_state: bool = True, shards: int = 32, max_batch: int = 500, batched: bool = False,
                 ordered: bool | None = None, grouped: bool = False):
        super().__init__()
        if horizon_seconds <= 0:
            raise ValueError(f"horizon_seconds must be positive, got {horizon_seconds!r}")
        if shards < 1 or max_batch < 1:
            raise ValueError(f"shards and max_batch must be positive, got {shards!r}, {max_batch!r}")
        self._horizon_ms = int(horizon_seconds * 1000)
        self._seeds = seeds
        self._expire_state = bool(expire_state)
        self._shards = shards
        self._max_batch = max_batch
        self._batched = batched
        self._ordered = (not batched) if ordered is None else bool(ordered)
        if self._ordered and batched:
            raise ValueError("ordered=True needs batched=False: lists are judged as they arrive")
        self._grouped = bool(grouped)
        if self._grouped and (batched or not self._ordered or self._expire_state):
            raise ValueError("grouped=True needs batched=False, ordered and expire_state=False "
                             "(batch execution of a bounded input)")

    def expand(self, articles):
        side = {"seeds": beam.pvalue.AsDict(self._seeds)} if self._seeds is not None else {}
        batches = (
            articles
            | "BatchByShard" >> beam.ParDo(_BatchByShardFn(self._shards, self._max_batch, self._batched))
            .with_output_types(Tuple[str, _Batch]))
        if self._grouped:
            batches = batches | "GroupByShard" >> beam.GroupByKey()
            fn = _DropExactCopiesGroupedFn(self._horizon_ms)
        elif self._ordered:
            fn = _DropExactCopiesInOrderFn(self._horizon_ms, self._expire_state)
        else:
            fn = _DropExactCopiesFn(self._horizon_ms, self._expire_state, self._batched)
        res = (
            batches
            | "DropExactCopies" >> beam.ParDo(fn, **side)
            .with_output_types(List[Article] if self._batched else Article)
            .with_outputs(DUPLICATES, DEAD_LETTERS, main=ARTICLES)
        )
        return {ARTICLES: res[ARTICLES], DUPLICATES: typed(res[DUPLICATES], Article),
                DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}
