"""Near-duplicate detection as a Beam stage: LSH band keys as keys of stateful DoFns.

Usage::

    res = articles | "NearDuplicates" >> NearDuplicates(threshold=0.5, horizon_seconds=7 * 86400)
    res["articles"], res["duplicates"], res["dead_letters"]

Architecture (the pure logic is :mod:`pipeline.neardup`)::

    Article ──Fingerprint──┬─> (article_id, _Part article + how many band replies to expect) ──┐
                           └─> (band key, fingerprint bytes) × bands                            │
                                   │ CompareInBand: stateful per band key                       │
                                   └─> (article_id, _Part band reply: best match or none) ─────┤
                                                            AssembleVerdict: stateful per article_id
                                                            counts replies, then emits the article

* ``CompareInBand`` buffers fingerprints and, when the watermark passes their element timestamp (an
  event-time timer), processes the buffered ones in (event time, article id) order: each is compared
  only with stored fingerprints that precede it in that order and lie within the horizon, then stored.
  Stored fingerprints are evicted by the horizon (pruned on every firing, cleared by a timer when the
  key goes idle) and capped at ``band_budget`` per key, so a hot band (a formula such as dividend
  notices) cannot grow without bound.
* ``AssembleVerdict`` is a counting join: the article arrives with the number of band replies to
  expect; when all have arrived it picks the best match (highest similarity, then earliest) as
  ``duplicate_of`` and the earliest story any match belongs to as ``story_id``. It needs no window, so
  it works the same in batch and unbounded runs.

Timeline of one band key (watermark W)::

    a1 (t=10:00) arrives      -> pending; timer at a1's timestamp
    a2 (t=10:05) arrives      -> pending
    W passes 10:05            -> a1 then a2, in (event time, id) order: a1 stored (no match),
                                 a2 compared with a1 (verified 0.93) and stored; replies emitted
    W passes last + horizon   -> stored fingerprints cleared

Determinism: verdicts depend only on the set of articles, not on bundles, workers or arrival order,
as long as an article does not arrive after the watermark has passed its element timestamp (see the
README, "Near-duplicates"). An earlier story that arrives late is compared with the stored stories
before it (it can still be a duplicate of an earlier one) but never retroactively becomes the original
of later copies that were already emitted; those keep their verdict. Such late fingerprints are
counted as ``near_dedup_late``.
"""

from __future__ import annotations

import enum
import logging
import struct
import typing
from typing import Iterable, NamedTuple, Optional, Tuple

import apache_beam as beam
from apache_beam import coders, pvalue
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.utils.timestamp import Duration, Timestamp

from pipeline.neardup import Fingerprint, Match, NearDupConfig, band_keys, best_match, combine, fingerprint_article
from pipeline.records import Article, ArticleCoder, DeadLetter
from pipeline.stages.common import (ARTICLES, DEAD_LETTERS, DUPLICATES, METRICS_NAMESPACE, cheap_state_cache_sizing,
                                    stage_dead_letter, typed)

__all__ = ["NearDuplicates", "NearDupMode"]

_LOGGER = logging.getLogger(__name__)
_STAGE = "near_dedup"
_BANDS = "bands"
_ARTICLE, _REPLY = 0, 1

try:  # one Enum for the CLI and the stage when the options module is there
    from pipeline.options import NearDupMode
except ImportError:  # pragma: no cover - the stage does not need the CLI
    class NearDupMode(enum.Enum):  # type: ignore[no-redef]
        DROP = "drop"
        TAG = "tag"


class _Part(NamedTuple):
    """One input of the per-article join: the article itself, or one band's reply."""

    kind: int
    article: Optional[bytes]  # ArticleCoder bytes (kind _ARTICLE)
    expected: int  # band replies to expect (kind _ARTICLE)
    match_id: Optional[str]
    match_ms: Optional[int]
    similarity: Optional[float]
    story_id: Optional[str]
    story_ms: Optional[int]


coders.registry.register_coder(_Part, coders.RowCoder)

_STORED_CODER = coders.ListCoder(coders.TupleCoder([coders.BytesCoder(), coders.VarIntCoder(),
                                                    coders.StrUtf8Coder()]))
_PENDING_CODER = coders.TupleCoder([coders.VarIntCoder(), coders.BytesCoder()])


def _join_key(article: Article) -> str:
    """Key of one input record in the verdict join: its article id plus its Kafka origin, so two records
    with the same article id (an update, a redelivery past the exact-dedup horizon) never share a join."""
    o = article["origin"]
    return f"{article['article_id']}\x1f{o['topic']}\x1f{o['partition']}\x1f{o['offset']}"


def _pack(join_key: str, fingerprint: bytes) -> bytes:
    jk = join_key.encode("utf-8")
    return struct.pack("<I", len(jk)) + jk + fingerprint


def _unpack(payload: bytes) -> Tuple[str, bytes]:
    (n,) = struct.unpack_from("<I", payload, 0)
    return payload[4:4 + n].decode("utf-8"), payload[4 + n:]


def _reply(m: Optional[Match]) -> _Part:
    if m is None:
        return _Part(_REPLY, None, 0, None, None, None, None, None)
    return _Part(_REPLY, None, 0, m.article_id, m.event_ms, m.similarity, m.story_id, m.story_ms)


class _FingerprintFn(beam.DoFn):
    """Article -> its fingerprint under each band key, and itself (with the signature) to the join."""

    def __init__(self, config: NearDupConfig):
        self._config = config
        self._in = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "near_dedup_in")
        self._coder = ArticleCoder()

    def process(self, article: Article) -> Iterable:
        self._in.inc()
        try:
            fp = fingerprint_article(article, self._config)
            out = Article(article)
            dedup = dict(article.get("dedup") or {})
            dedup["signature"] = fp.signature if fp is not None else b""
            out["dedup"] = dedup
            keys = band_keys(fp.signature, self._config) if fp is not None else []
            data = fp.to_bytes() if fp is not None else b""
            encoded = self._coder.encode(out)
        except Exception as exc:  # noqa: BLE001 - one bad article becomes a dead letter
            _LOGGER.warning("near_dedup failed on article %s (%s: %s); dead-lettered",
                            article.get("article_id"), type(exc).__name__, exc)
            yield pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(article, _STAGE, exc))
            return
        join_key = _join_key(article)
        payload = _pack(join_key, data)
        for key in keys:
            yield pvalue.TaggedOutput(_BANDS, (key, payload))
        yield (join_key, _Part(_ARTICLE, encoded, len(keys), None, None, None, None, None))


class _CompareInBandFn(beam.DoFn):
    """Per band key: compare each fingerprint with the stored ones before it, in (event time, id) order.

    State: ``pending`` fingerprints waiting for the watermark; ``stored`` (fingerprint, story time,
    story id) of one horizon, at most ``band_budget``; ``fire_at`` the pending timer's time.
    """

    PENDING = userstate.BagStateSpec("pending", _PENDING_CODER)
    STORED = userstate.ReadModifyWriteStateSpec("stored", _STORED_CODER)
    FIRE_AT = userstate.ReadModifyWriteStateSpec("fire_at", coders.VarIntCoder())
    RELEASED = userstate.ReadModifyWriteStateSpec("released", coders.VarIntCoder())
    RELEASE = userstate.TimerSpec("release", TimeDomain.WATERMARK)
    EXPIRE = userstate.TimerSpec("expire", TimeDomain.WATERMARK)

    def __init__(self, config: NearDupConfig):
        self._config = config
        self._late = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "near_dedup_late")
        self._trimmed = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "near_dedup_band_budget_dropped")

    def setup(self):
        cheap_state_cache_sizing()

    def process(self, element: Tuple[str, bytes], timestamp=beam.DoFn.TimestampParam,
                pending=beam.DoFn.StateParam(PENDING), fire_at=beam.DoFn.StateParam(FIRE_AT),
                released=beam.DoFn.StateParam(RELEASED), release=beam.DoFn.TimerParam(RELEASE)):
        _key, data = element
        micros = max(int(timestamp.micros), 0)
        done = released.read()
        if done is not None and micros <= done:
            self._late.inc()  # the watermark already passed it: later stories may have been decided
        pending.add((micros, data))
        current = fire_at.read()
        if current is None or micros < current:
            fire_at.write(micros)
            release.set(Timestamp(micros=micros))

    @userstate.on_timer(RELEASE)
    def on_release(self, fired=beam.DoFn.TimestampParam, pending=beam.DoFn.StateParam(PENDING),
                   stored=beam.DoFn.StateParam(STORED), fire_at=beam.DoFn.StateParam(FIRE_AT),
                   released=beam.DoFn.StateParam(RELEASED), release=beam.DoFn.TimerParam(RELEASE),
                   expire=beam.DoFn.TimerParam(EXPIRE)):
        cfg = self._config
        now = int(fired.micros)
        ready, waiting = [], []
        for micros, data in pending.read():
            (ready if micros <= now else waiting).append((micros, data))
        pending.clear()
        for item in waiting:
            pending.add(item)
        if waiting:
            nxt = min(m for m, _ in waiting)
            fire_at.write(nxt)
            release.set(Timestamp(micros=nxt))
        else:
            fire_at.clear()
        released.write(max(now, released.read() or now))
        if not ready:
            return
        kept = [(Fingerprint.from_bytes(d), ms, sid) for d, ms, sid in (stored.read() or [])]
        new = sorted(((jk, Fingerprint.from_bytes(d)) for jk, d in (_unpack(p) for _, p in ready)),
                     key=lambda x: (x[1].order, x[0]))
        for join_key, fp in new:
            roots = {s.article_id: (ms, sid) for s, ms, sid in kept}
            m = best_match(fp, (s for s, _, _ in kept), cfg, roots)
            story_ms, story = (m.story_ms, m.story_id) if m is not None else (fp.event_ms, fp.article_id)
            kept.append((fp, story_ms, story))
            yield (join_key, _reply(m))
        newest = max(s.event_ms for s, _, _ in kept)
        kept = [k for k in kept if newest - k[0].event_ms <= cfg.horizon_ms]
        kept.sort(key=lambda k: k[0].order)
        if len(kept) > cfg.band_budget:
            self._trimmed.inc(len(kept) - cfg.band_budget)
            kept = kept[-cfg.band_budget:]
        stored.write([(s.to_bytes(), ms, sid) for s, ms, sid in kept])
        expire.set(fired + Duration(micros=cfg.horizon_ms * 1000))

    @userstate.on_timer(EXPIRE)
    def on_expire(self, stored=beam.DoFn.StateParam(STORED), fire_at=beam.DoFn.StateParam(FIRE_AT)):
        if fire_at.read() is None:  # idle for a whole horizon: nothing stored can match anything new
            stored.clear()


class _AssembleVerdictFn(beam.DoFn):
    """Per article id: wait for the article and all its band replies, then emit it with its verdict."""

    ARTICLE = userstate.ReadModifyWriteStateSpec("article", coders.BytesCoder())
    EXPECTED = userstate.ReadModifyWriteStateSpec("expected", coders.VarIntCoder())
    REPLIES = userstate.BagStateSpec("replies", coders.RowCoder.from_type_hint(_Part, None))
    # A plain counter: a CombiningValueState over builtin sum keeps a list accumulator that VarIntCoder
    # cannot encode once the runner commits it.
    COUNT = userstate.ReadModifyWriteStateSpec("count", coders.VarIntCoder())

    def __init__(self, mode: "NearDupMode"):
        self._mode = mode
        self._coder = ArticleCoder()
        self._dups = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "near_duplicates")
        self._out = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "near_dedup_out")

    def setup(self):
        cheap_state_cache_sizing()

    def process(self, element: Tuple[str, _Part], article_state=beam.DoFn.StateParam(ARTICLE),
                expected=beam.DoFn.StateParam(EXPECTED), replies=beam.DoFn.StateParam(REPLIES),
                count=beam.DoFn.StateParam(COUNT)):
        _join_key, part = element
        if part.kind == _ARTICLE:
            article_state.write(part.article)
            expected.write(part.expected)
        else:
            if part.match_id is not None:
                replies.add(part)
            count.write((count.read() or 0) + 1)
        data, want = article_state.read(), expected.read()
        if data is None or (count.read() or 0) < want:
            return
        matches = [Match(p.match_id, p.match_ms, p.similarity, p.story_id, p.story_ms) for p in replies.read()]
        for state in (article_state, expected, replies, count):
            state.clear()
        article = self._coder.decode(data)
        try:
            verdict = combine(article["article_id"], matches)
            out = Article(article)
            out["dedup"] = dict(article["dedup"], duplicate_of=verdict.duplicate_of,
                                similarity=verdict.similarity, story_id=verdict.story_id)
        except Exception as exc:  # noqa: BLE001
            yield pvalue.TaggedOutput(DEAD_LETTERS, stage_dead_letter(article, _STAGE, exc))
            return
        if verdict.duplicate_of is not None:
            self._dups.inc()
            if self._mode is NearDupMode.DROP:
                yield pvalue.TaggedOutput(DUPLICATES, out)
                return
        self._out.inc()
        yield out


class NearDuplicates(beam.PTransform):
    """``PCollection[Article]`` -> ``{"articles", "duplicates", "dead_letters"}``: one record per story.

    Every article gets ``dedup.signature`` (MinHash bytes of its clean body) and ``dedup.story_id`` (its
    own id when it is the original). A near-duplicate also gets ``duplicate_of`` and ``similarity``; in
    mode ``drop`` it goes to "duplicates", in mode ``tag`` it stays in "articles".

    Args:
        threshold: minimum similarity (estimated containment of the smaller body in the larger), (0, 1].
        horizon_seconds: stories further apart in event time are never merged.
        num_perm: MinHash permutations (signature bytes = 4 * num_perm).
        bands: LSH bands, the number of band keys (and band replies) per article.
        rows: signature minima per band; ``bands * rows <= num_perm``.
        band_budget: most fingerprints kept per band key.
        mode: :class:`NearDupMode` (or its value ``"drop"`` / ``"tag"``).
    """

    def __init__(self, *, threshold: float = NearDupConfig.threshold,
                 horizon_seconds: float = NearDupConfig.horizon_ms / 1000.0,
                 num_perm: int = NearDupConfig.num_perm, bands: int = NearDupConfig.bands,
                 rows: int = NearDupConfig.rows, band_budget: int = NearDupConfig.band_budget,
                 mode: "NearDupMode | str" = NearDupMode.DROP):
        super().__init__()
        if horizon_seconds is None or horizon_seconds < 0:
            raise ValueError(f"horizon_seconds must be >= 0, got {horizon_seconds!r}")
        try:
            self._mode = mode if isinstance(mode, NearDupMode) else NearDupMode(mode)
        except ValueError as exc:
            raise ValueError(f"mode must be one of {[m.value for m in NearDupMode]}, got {mode!r}") from exc
        self._config = NearDupConfig(threshold=threshold, horizon_ms=int(horizon_seconds * 1000),
                                     num_perm=num_perm, bands=bands, rows=rows, band_budget=band_budget)

    @property
    def config(self) -> NearDupConfig:
        return self._config

    def expand(self, articles):
        fps = articles | "Fingerprint" >> beam.ParDo(_FingerprintFn(self._config)).with_output_types(
            typing.Tuple[str, _Part]).with_outputs(_BANDS, DEAD_LETTERS, main="parts")
        bands = typed(fps[_BANDS], beam.typehints.Tuple[str, bytes])
        replies = bands | "CompareInBand" >> beam.ParDo(_CompareInBandFn(self._config)).with_output_types(
            typing.Tuple[str, _Part])
        verdicts = (
            (fps["parts"], replies)
            | "JoinReplies" >> beam.Flatten().with_output_types(typing.Tuple[str, _Part])
            | "AssembleVerdict" >> beam.ParDo(_AssembleVerdictFn(self._mode)).with_output_types(Article)
            .with_outputs(DUPLICATES, DEAD_LETTERS, main=ARTICLES)
        )
        dead = ((typed(fps[DEAD_LETTERS], DeadLetter), typed(verdicts[DEAD_LETTERS], DeadLetter))
                | "DeadLetters" >> beam.Flatten().with_output_types(DeadLetter))
        return {ARTICLES: verdicts[ARTICLES], DUPLICATES: typed(verdicts[DUPLICATES], Article),
                DEAD_LETTERS: dead}
