"""Boilerplate stage: cut donation appeals, newsletter boxes, menus and other furniture from the body.

A thin Beam shell over :mod:`pipeline.boilerplate` (pure Python). Architecture::

    articles --KeyByPublisher--> (publisher or "", Article)      # StrUtf8Coder x ArticleCoder
             --Strip--> stateful DoFn: per publisher one bag holds its PublisherMemory and the arrivals,
                        buffered until an event-time timer releases them in order
             --> {"articles": cleaned copies, "dead_letters": failures}

    bounded batch jobs (``grouped=True``; the builder's choice for replays):
    articles --KeyByPublisher--> (publisher, (element micros, Article)) --GroupByPublisher-->
             --Strip--> the same judging, in the order and at the times the release timers would give

Per article the DoFn runs the rules and cue layers, consults the publisher's memory, then observes the
article's paragraphs into it, and writes ``body`` (clean), ``boilerplate`` (removed spans with raw
offsets) and ``flags`` into a copy of the article. ``clean == cut_spans(raw, spans)``, so later stages map
offsets back with :class:`pipeline.text.OffsetMap`.

Determinism under replay: the memory's verdicts depend on the order in which a publisher's articles are
judged, so that order is made a function of the articles alone, not of how Kafka partitions interleave,
bundle sizes or worker count (the way :mod:`pipeline.stages.neardup` orders its band shards). An arriving
article is appended to the key's bag (ArticleCoder bytes, next to the memory) and an event-time timer is set at its
element timestamp (the Kafka timestamp; in the full pipeline rounded up to its second, the release step
of exact dedup before this stage); when the watermark passes it, every buffered article whose
element time is at or before the fired time is judged, in (element time, event time = ``published_at``
else Kafka time else ingestion time, article id, topic, partition, offset) order, against the memory,
which is read once and written once per release. The timer always sits at the earliest pending time, so
without late data each release holds exactly one element time: the order is the same whichever way the
watermark advanced. The memory itself reads no wall clock (its horizon runs on event time).

Timeline (publisher P; element times = Kafka times; W = watermark)::

    b (Kafka 10:05, published 09:00) arrives      -> pending {b}, timer at 10:05
    a (Kafka 10:00, published 09:30) arrives      -> pending {a, b}, timer moved to 10:00
    W passes 10:00 -> release a: judged against the memory, emitted, its paragraphs observed; timer 10:05
    c (Kafka 10:05, published 08:00) arrives      -> pending {b, c}
    W passes 10:05 -> release c then b (same element time: event time 08:00 before 09:00)
    d (Kafka 10:01) arrives after W passed 10:05  -> late: its timer (10:01) is behind W and fires at once;
                                                     judged against the memory as it stands (after a, c,
                                                     b), emitted, counted boilerplate_late

Had a, b, c come in any other order, or in other bundles or on other workers, the memory would have
judged a, c, b all the same. Late articles: an article that arrives after the watermark has passed its
Kafka timestamp is not held back: its release timer is behind the watermark and fires at once, so it is
cut against the publisher's memory as it then stands and counted in ``boilerplate_late``; its own cuts
(and what the memory learns from it) can differ from a replay in which it was on time; articles already
emitted are never revised. (An article is taken as late when a release at or after its element time had
already fired for its publisher; arrivals are never read on arrival, so this is told at its release.)

Cost: an article waits until the watermark passes its Kafka timestamp (the near-dup stage waits for the
same); state per publisher is the memory plus the articles not yet released. On the local runner each
distinct Kafka timestamp of a publisher is one more timer round at the end of a bounded run.

Counters (namespace ``wirestream``): ``boilerplate_in``, ``boilerplate_out``, ``boilerplate_failed``
(dead letters), ``boilerplate_late``, ``spans_removed``, ``all_boilerplate``.

Usage::

    out = articles | "Boilerplate" >> StripBoilerplate(min_articles=2)
    clean, dead = out["articles"], out["dead_letters"]
"""

from __future__ import annotations

import itertools
import logging
import typing
from pathlib import Path
from typing import Iterable

import apache_beam as beam
from apache_beam import coders, pvalue
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain

from pipeline.boilerplate import ALL_BOILERPLATE, PublisherMemory, load_rules, strip
from pipeline.boilerplate.memory import DAY_MS
from pipeline.records import Article, ArticleCoder, DeadLetter
from pipeline.stages.common import (ARTICLES, DEAD_LETTERS, METRICS_NAMESPACE, at_step, cheap_state_cache_sizing,
                                    element_micros, release_time, ReleaseSteps,
                                    stage_dead_letter, typed)
from pipeline.stages.dedup import event_time_ms

__all__ = ["StripBoilerplate", "strip_article"]

_LOGGER = logging.getLogger(__name__)
STAGE = "boilerplate"


def _event_time_ms(article: dict) -> int | None:
    return (article.get("published_at") or (article.get("origin") or {}).get("timestamp")
            or article.get("ingested_at"))


# A pending article: its element time (micros, clamped at 0) and the article, ArticleCoder bytes (decoded
# only when released).
_PENDING_CODER = coders.TupleCoder([coders.VarIntCoder(), coders.BytesCoder()])




def _order_key(micros: int, article: Article) -> tuple:
    """Release order: (element time, event time, article id, Kafka topic, partition, offset)."""
    try:
        t = int(event_time_ms(article) or 0)
    except (KeyError, TypeError, ValueError):
        t = 0
    origin = article.get("origin") or {}
    return (micros, t, str(article.get("article_id") or ""), str(origin.get("topic") or ""),
            int(origin.get("partition") or 0), int(origin.get("offset") or 0))


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


class _Held:
    """A publisher's state as this bundle left it: its memory bytes, the articles waiting for release and
    the latest time released to."""

    __slots__ = ("memory", "pending", "released")

    def __init__(self):
        self.memory: bytes | None = None
        self.pending: list = []  # (element micros, ArticleCoder bytes)
        self.released: int | None = None  # micros


class _JudgeFn(beam.DoFn):
    """What both forms of the stage share: the rules, the memory settings, the counters, and :meth:`_judge`,
    which strips a publisher's articles in a given order against its memory."""

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

    def _judge(self, h: _Held, articles: list) -> Iterable:
        """Strip ``articles`` in this order against the publisher's memory ``h.memory``, which is replaced
        by what they leave (the caller writes it).

        A failing article is dead-lettered and leaves the memory as if it had never been seen: the memory
        is rebuilt from the stored bytes by replaying the articles before it that succeeded (rare, and the
        pure core is deterministic, so the replay gives the same memory)."""
        if self._rules is None:
            self.setup()
        stored = h.memory
        mem = None
        good: list = []
        for article in articles:
            try:
                if mem is None:
                    mem = PublisherMemory.from_bytes(stored, **self._mem_params)
                out, n_spans, all_boiler = strip_article(article, mem, self._rules)
            except Exception as exc:  # noqa: BLE001 - any failure of one record becomes a dead letter
                self._failed.inc()
                _LOGGER.warning("stage %s failed on article %s (%s: %s); dead-lettered",
                                STAGE, article.get("article_id"), type(exc).__name__, exc)
                yield pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(article, STAGE, exc))
                mem = self._replay(stored, good)
                continue
            good.append(article)
            self._out.inc()
            self._spans.inc(n_spans)
            if all_boiler:
                self._all.inc()
            yield out
        if good and mem is not None:
            h.memory = mem.to_bytes()

    def _replay(self, stored: bytes | None, articles: list) -> PublisherMemory | None:
        try:
            mem = PublisherMemory.from_bytes(stored, **self._mem_params)
        except Exception:  # noqa: BLE001 - unreadable stored memory: every article fails the same way
            return None
        for article in articles:
            strip_article(article, mem, self._rules)
        return mem


class _StripFn(_JudgeFn):
    """Per publisher: buffer arriving articles, release them in event-time order when the watermark passes.

    State: ``publisher``, one bag of ``(0, memory)`` (the publisher's :class:`PublisherMemory` bytes),
    ``(element micros + 1, article)`` (articles waiting for the watermark) and ``(-1 - micros, b"")`` (the
    latest time released to: an article at or before it arrived after the watermark passed it, late).
    Arrivals are appended unread; a release reads the bag once and rewrites it once. Each read and each
    cell a bundle commits is a round trip to the runner where the state cache is cold (a keyed read per
    publisher and bundle was 120 of a 300-article replay's 992 round trips, in its one-worker stage); the
    bundle keeps what it read. One release timer per pending step (:class:`ReleaseSteps`).
    """

    HELD = userstate.BagStateSpec("publisher", _PENDING_CODER)
    RELEASE = userstate.TimerSpec("boilerplate_release", TimeDomain.WATERMARK)
    # Timer family ids must be unique in the pipeline: the local FnApiRunner buffers written timers by family
    # id, and a second "release" family (near-dup's shards, int keys) made it decode our str-keyed timers
    # with the wrong coder (UnicodeDecodeError in _collect_written_timers).

    def __init__(self, **params):
        super().__init__(**params)
        self._steps = ReleaseSteps()
        self._held: dict = {}
        self._coder = ArticleCoder()
        self._late = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "boilerplate_late")

    def setup(self):
        cheap_state_cache_sizing()
        super().setup()

    def start_bundle(self):
        self._steps.new_bundle()
        self._held = {}  # publisher -> its _Held, as this bundle left it, once read

    def _state(self, publisher: str, cell) -> _Held:
        h = self._held.get(publisher)
        if h is None:
            h = self._held[publisher] = _Held()
            for t, data in cell.read():
                if t > 0:
                    h.pending.append((t - 1, data))
                elif t == 0:
                    h.memory = data
                else:  # the one release mark (_rewrite writes at most one)
                    h.released = -1 - t
        return h

    @staticmethod
    def _rewrite(cell, h: _Held) -> None:
        cell.clear()
        if h.memory is not None:
            cell.add((0, h.memory))
        if h.released is not None:
            cell.add((-1 - h.released, b""))
        for micros, data in h.pending:
            cell.add((micros + 1, data))

    def process(self, element: typing.Tuple[str, Article], timestamp=beam.DoFn.TimestampParam,
                held=beam.DoFn.StateParam(HELD), release=beam.DoFn.TimerParam(RELEASE)):
        publisher, article = element
        self._in.inc()
        micros = element_micros(timestamp)
        # Every arrival waits, late ones too: a late article's step is behind the watermark, so its timer
        # fires at once and it is judged then, in order with whatever else is waiting.
        data = self._coder.encode(article)
        held.add((micros + 1, data))
        h = self._held.get(publisher)
        if h is not None:
            h.pending.append((micros, data))
        self._steps.arm(release, publisher, micros)

    @userstate.on_timer(RELEASE)
    def on_release(self, key=beam.DoFn.KeyParam, fired=beam.DoFn.TimestampParam,
                   held=beam.DoFn.StateParam(HELD)):
        self._steps.fired(key, fired)
        now = int(fired.micros)
        h = self._state(key, held)
        before = h.released
        h.released = now if before is None else max(before, now)
        ready = [(m, d) for m, d in h.pending if m <= now]
        if not ready:
            if h.released != before:
                self._rewrite(held, h)  # an earlier firing released this step's articles; keep the mark
            return
        h.pending = [(m, d) for m, d in h.pending if m > now]
        batch = []
        for m, d in ready:
            article = self._coder.decode(d)
            if before is not None and m <= before:
                # Late: the watermark passed it and articles after it were already judged; it meets the
                # memory as it stands (it cannot change verdicts already emitted).
                self._late.inc()
                _LOGGER.debug("stage %s: late article %s (element time %d us, released to %d us)",
                              STAGE, article.get("article_id"), m, before)
            batch.append((_order_key(m, article), article))
        batch.sort(key=lambda x: x[0])
        yield from self._judge(h, [a for _, a in batch])
        self._rewrite(held, h)


class _StripGroupedFn(_JudgeFn):
    """Batch execution: one publisher's articles, grouped, judged as the release timers would judge them.

    The timers of :class:`_StripFn` release a publisher's articles one step at a time, each step sorted by
    :func:`_order_key` and judged against the memory read from its stored bytes and written back after.
    In a bounded job every article has arrived before the first timer fires, so the same order is the
    sorted list cut into steps; each step is judged here by the same :meth:`_JudgeFn._judge`, the memory
    going through its bytes between steps as it does through state, and each output leaves at its step's
    time, the timer's. No keyed state: on the local runner a GroupByKey's consumers are split over the
    workers by key (a stateful stage runs on one), and the 480 state round trips of a 300-article replay
    are gone.
    """

    def process(self, element):
        publisher, timed = element
        items = sorted(timed, key=lambda mt: _order_key(mt[0], mt[1]))
        self._in.inc(len(items))
        h = _Held()
        for step, group in itertools.groupby(items, key=lambda mt: release_time(mt[0])):
            yield from at_step(self._judge(h, [article for _, article in group]), step)


class StripBoilerplate(beam.PTransform):
    """Strip boilerplate from ``PCollection[Article]``; returns ``{"articles", "dead_letters"}``.

    Args (keyword-only):
        rules_path: a boilerplate rules JSON file (format in :mod:`pipeline.boilerplate.rules`); None for
            the packaged ``pipeline/data/boilerplate_rules.json``.
        min_articles: memory warm-up: a paragraph is learned boilerplate once seen in this many distinct
            articles of the publisher (>= 2, the current article included).
        max_paragraphs: cap on fingerprints remembered per publisher (least recently seen dropped first).
        horizon_days: event-time horizon after which an unseen fingerprint is forgotten.
        grouped: judge each publisher's articles after a GroupByKey instead of through keyed state and
            release timers: for a bounded batch job only (every article is there before any would be
            released), where it gives the same cuts at the same element times (tests) and, having no keyed
            state, is split over a local runner's workers by key.
    """

    def __init__(self, *, rules_path: str | Path | None = None, min_articles: int = 2,
                 max_paragraphs: int = 5000, horizon_days: float = 30.0, grouped: bool = False,
                 label: str | None = None):
        super().__init__(label)
        self._grouped = bool(grouped)
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
        params = {"rules_path": self._rules_path, "min_articles": self._min_articles,
                  "max_paragraphs": self._max_paragraphs, "horizon_ms": self._horizon_ms}
        if self._grouped:
            grouped = (articles
                       | "KeyByPublisher" >> beam.ParDo(_KeyWithTimeFn())
                       .with_output_types(typing.Tuple[str, typing.Tuple[int, Article]])
                       | "GroupByPublisher" >> beam.GroupByKey())
            fn = _StripGroupedFn(**params)
        else:
            grouped = (articles
                       | "KeyByPublisher" >> beam.Map(lambda a: (_publisher(a), a))
                       .with_output_types(typing.Tuple[str, Article]))
            fn = _StripFn(**params)
        res = grouped | "Strip" >> beam.ParDo(fn).with_output_types(Article).with_outputs(DEAD_LETTERS, main=ARTICLES)
        return {ARTICLES: res[ARTICLES], DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}


def _publisher(article: Article) -> str:
    """The stage's key: the article's publisher ("" when it has none)."""
    return article.get("publisher") or ""


class _KeyWithTimeFn(beam.DoFn):
    """(publisher, (element micros, article)): a GroupByKey keeps no element times, the order needs them."""

    def process(self, article, timestamp=beam.DoFn.TimestampParam):
        yield (_publisher(article), (element_micros(timestamp), article))
