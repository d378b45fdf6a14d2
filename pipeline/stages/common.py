"""What every article stage shares: output tags, error routing, counters.

A stage is a composite ``PTransform`` over ``PCollection[Article]`` whose ``expand`` returns a dict::

    {"articles": PCollection[Article], "dead_letters": PCollection[DeadLetter]}
    # dedup stages add "duplicates": PCollection[Article] (dropped copies, kept for the accounts)

Its per-element work is an :class:`ArticleStageFn`: ``apply(article)`` returns the new Article (a copy,
inputs are never mutated). Any exception becomes a dead letter naming the stage and the exception, and the
stream goes on: one poisonous article never stops the pipeline.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.utils.timestamp import Timestamp

from pipeline.records import Article, DeadLetter, dead_letter_for_article

__all__ = [
    "ARTICLES",
    "DEAD_LETTERS",
    "DUPLICATES",
    "METRICS_NAMESPACE",
    "now_ms",
    "cheap_state_cache_sizing",
    "release_time",
    "element_micros",
    "ReleaseSteps",
    "at_step",
    "stage_dead_letter",
    "ArticleStageFn",
    "apply_stage_fn",
    "batch_outputs",
    "typed",
]

_LOGGER = logging.getLogger(__name__)

ARTICLES = "articles"
DEAD_LETTERS = "dead_letters"
DUPLICATES = "duplicates"
METRICS_NAMESPACE = "wirestream"


def cheap_state_cache_sizing() -> None:
    """Make the SDK harness's user-state cache size entries cheaply. Call from a stateful DoFn's setup().

    Beam's state cache weighs every value it caches with ``objsize.get_deep_size``, which walks the
    globals of every loaded module on each call: with Beam and spaCy loaded that cost 32 of 48 seconds of
    a 3,000-article replay (cProfile, bench/bench_io.py). The weight only steers cache eviction, so an
    estimate from the value's encoded-ish size is enough. Idempotent; per worker process.
    """
    global _SIZING_PATCHED
    if _SIZING_PATCHED:
        return
    try:
        from apache_beam.runners.worker import statecache
    except ImportError:  # pragma: no cover - other SDK layouts
        return
    statecache.get_deep_size = _estimate_size
    _SIZING_PATCHED = True


_SIZING_PATCHED = False


def _estimate_size(*objs) -> int:
    total = 0
    stack = list(objs)
    seen = 0
    while stack and seen < 10_000:
        o = stack.pop()
        seen += 1
        if isinstance(o, (bytes, str, bytearray)):
            total += 49 + len(o)
        elif isinstance(o, dict):
            total += 64 + 32 * len(o)
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            total += 56 + 8 * len(o)
            stack.extend(o)
        else:
            total += sys.getsizeof(o, 64)
    return max(total, 1)


#: Stateful stages release what they hold in one-second steps of element time: one timer firing per key
#: and second rather than per distinct Kafka timestamp. On the local runner timer firings dominated the
#: boilerplate memory (a one-publisher replay went quadratic) and the near-dup shards (59 -> 165 stories/s
#: with steps). A firing still releases exactly what lies up to its step, so results do not depend on
#: arrival order.
RELEASE_STEP_MICROS = 1_000_000


def release_time(micros: int) -> int:
    """The end of the release step that holds ``micros`` (a step boundary at or after it)."""
    return -(-micros // RELEASE_STEP_MICROS) * RELEASE_STEP_MICROS


def element_micros(timestamp) -> int:
    """An element timestamp in microseconds, clamped at 0: bounded sources stamp MIN_TIMESTAMP, and timers
    need a real time."""
    return max(int(timestamp.micros), 0)


def at_step(outputs: Iterable, step: int) -> Iterable:
    """``outputs`` of a DoFn (tagged or main) timestamped with release step ``step`` (micros): how the
    grouped (batch) forms of the held stages emit what their release timer would have emitted at ``step``."""
    at = Timestamp(micros=step)
    for out in outputs:
        if isinstance(out, pvalue.TaggedOutput):
            yield pvalue.TaggedOutput(out.tag, beam.window.TimestampedValue(out.value, at))
        else:
            yield beam.window.TimestampedValue(out, at)


class ReleaseSteps:
    """Arms the release timers of a stateful DoFn: one timer per key and release step.

    Each step has its own timer (dynamic timer tag = the step's time), so arming a step needs no state:
    with a single timer per key, every arriving element had to read "when does the timer fire now" to
    decide whether to move it, a keyed-state read per key and bundle (a round trip to the runner where
    the state cache is cold) plus a write per step. A firing releases what lies up to its step; a step
    whose items an earlier firing released finds nothing. Setting a timer again is idempotent (same key,
    family and tag); :meth:`arm` also skips the steps this bundle has already set and not yet seen fire.
    Call :meth:`new_bundle` from ``start_bundle`` and :meth:`fired` from the timer callback.
    """

    def __init__(self):
        self._armed: set = set()

    def new_bundle(self) -> None:
        self._armed = set()

    def arm(self, release, key, micros: int) -> None:
        """An item at ``micros`` is pending under ``key``: make sure its step's timer is set."""
        due = release_time(micros)
        if (key, due) in self._armed:
            return
        self._armed.add((key, due))
        release.set(Timestamp(micros=due), dynamic_timer_tag=str(due))

    def fired(self, key, fired) -> None:
        """The timer of ``key``'s step at ``fired`` fired: an item arriving for that step later in this
        bundle must set it again."""
        self._armed.discard((key, int(fired.micros)))


def now_ms() -> int:
    return int(time.time() * 1000)


def stage_dead_letter(article: Article, stage: str, exc: BaseException) -> DeadLetter:
    """Dead letter for an article that made ``stage`` raise ``exc``."""
    reason = (f"stage {stage!r} raised {type(exc).__name__}: {exc}. The article is kept here with its "
              "original bytes; fix the input or the stage and re-send it to the input topic.")
    return dead_letter_for_article(article, stage=stage, error_type=f"StageError:{type(exc).__name__}",
                                   reason=reason[:4000], failed_at=now_ms())


class ArticleStageFn(beam.DoFn):
    """Base DoFn for a stateless per-article stage.

    Subclasses set ``stage`` and implement :meth:`apply`. Counters: ``<stage>_in``, ``<stage>_out``,
    ``<stage>_failed`` in the ``wirestream`` namespace.
    """

    stage = "stage"

    def __init__(self):
        super().__init__()
        self._in = beam.metrics.Metrics.counter(METRICS_NAMESPACE, f"{self.stage}_in")
        self._out = beam.metrics.Metrics.counter(METRICS_NAMESPACE, f"{self.stage}_out")
        self._failed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, f"{self.stage}_failed")

    def apply(self, article: Article) -> Article:  # pragma: no cover - abstract
        raise NotImplementedError

    def process(self, article: Article) -> Iterable:
        self._in.inc()
        try:
            out = self.apply(article)
        except Exception as exc:  # noqa: BLE001 - any failure of one record becomes a dead letter
            self._failed.inc()
            _LOGGER.warning("stage %s failed on article %s (%s: %s); dead-lettered",
                            self.stage, article.get("article_id"), type(exc).__name__, exc)
            yield pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(article, self.stage, exc))
            return
        self._out.inc()
        yield out


def apply_stage_fn(articles: beam.PCollection, fn: beam.DoFn, label: str) -> dict:
    """Apply a stage DoFn with the dead-letter output wired; returns the stage output dict."""
    res = articles | label >> beam.ParDo(fn).with_output_types(Article).with_outputs(DEAD_LETTERS, main=ARTICLES)
    return {ARTICLES: res[ARTICLES], DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}


def batch_outputs(results: Iterable) -> Iterable:
    """The outputs of a step over a list of items, from each item's result: tagged outputs (dead letters)
    one by one, the rest together as one list (none if empty)."""
    main = []
    for r in results:
        if isinstance(r, pvalue.TaggedOutput):
            yield r
        else:
            main.append(r)
    if main:
        yield main


def typed(pcoll: beam.PCollection, element_type: type) -> beam.PCollection:
    """Declare the element type of a tagged output, so Beam picks our deterministic coder for it
    (tagged outputs of a ParDo carry no type hint of their own)."""
    pcoll.element_type = element_type
    return pcoll
