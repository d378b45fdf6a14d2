"""Beam tests (TestPipeline + assert_that) for parse, exact dedup and the stage graph without IO."""

from __future__ import annotations

import json
import typing

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipeline.builder import build_stages
from pipeline.options import Config
from pipeline.records import KafkaRecord
from pipeline.stages.common import ARTICLES, DEAD_LETTERS, DUPLICATES
from pipeline.stages.dedup import ExactDedup
from pipeline.stages.parse import ParseArticles

DAY_MS = 24 * 3600 * 1000


def _rec(offset: int, value: bytes, ts: int = 1_700_000_000_000, partition: int = 0) -> KafkaRecord:
    return KafkaRecord("raw", partition, offset, ts, None, value, [], offset, 0)


def _article(aid: str, body: str, published: str = "2026-11-20T10:00:00Z", title: str = "T") -> bytes:
    return json.dumps({"id": aid, "title": title, "body": body, "published_at": published}).encode()


def _records(*values):
    return [TimestampedValue(_rec(i, v), 1_700_000_000 + i) for i, v in enumerate(values)]


def test_parse_routes_garbage_to_dead_letters_with_origin():
    with TestPipeline() as p:
        res = (p | beam.Create(_records(_article("a", "Body"), b"garbage")).with_output_types(KafkaRecord)
               | ParseArticles())
        assert_that(res[ARTICLES] | beam.Map(lambda a: (a["article_id"], a["body"])), equal_to([("a", "Body")]),
                    label="articles")
        assert_that(res[DEAD_LETTERS] | beam.Map(lambda d: (d["origin"]["offset"], d["value"], d["stage"],
                                                            d["error_type"])),
                    equal_to([(1, b"garbage", "parse", "InvalidJson")]), label="dead")


@pytest.mark.parametrize("expire_state, grouped", [(True, False), (False, False), (False, True)])
def test_exact_dedup_drops_copies_within_horizon_and_keeps_updates_and_old_reprints(expire_state, grouped):
    # expire_state only frees state (batch execution turns it off): the verdicts must not depend on it, nor
    # on the form (grouped: batch execution without keyed state)
    values = [
        _article("a", "Same text."),
        _article("a", "Same text."),  # redelivery
        _article("b", "Same   text.", published="2026-11-21T10:00:00Z"),  # another outlet, same text, a day later
        _article("a", "Corrected text."),  # update: same id, new content
        _article("c", "Same text.", published="2026-12-20T10:00:00Z"),  # a month later: a new occasion
    ]
    with TestPipeline() as p:
        parsed = p | beam.Create(_records(*values)).with_output_types(KafkaRecord) | ParseArticles()
        res = parsed[ARTICLES] | ExactDedup(horizon_seconds=7 * 24 * 3600, expire_state=expire_state,
                                            grouped=grouped)
        assert_that(res[ARTICLES] | beam.Map(lambda a: (a["article_id"], a["body"])),
                    equal_to([("a", "Same text."), ("a", "Corrected text."), ("c", "Same text.")]), label="kept")
        assert_that(res[DUPLICATES] | beam.Map(lambda a: (a["article_id"], a["dedup"]["duplicate_of"])),
                    equal_to([("a", "a"), ("b", "a")]), label="dups")



@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_ordered_exact_dedup_keeps_the_earliest_copy_whatever_the_arrival_order(reverse, grouped):
    # three copies of one article and one of another: by element time, then partition, then offset, the
    # first copy is (partition 1, offset 7) at t0; a copy at t0 on partition 2 and one a second later lose
    same, other = _article("a", "Same text."), _article("b", "Other text.")
    t0 = 1_700_000_000
    recs = [TimestampedValue(_rec(3, same, partition=0), t0 + 1), TimestampedValue(_rec(9, same, partition=2), t0),
            TimestampedValue(_rec(7, same, partition=1), t0), TimestampedValue(_rec(4, other, partition=0), t0 + 2)]
    with TestPipeline() as p:
        parsed = (p | beam.Create(recs[::-1] if reverse else recs).with_output_types(KafkaRecord)
                  | ParseArticles())
        res = parsed[ARTICLES] | ExactDedup(horizon_seconds=3600, ordered=True, expire_state=not grouped,
                                            grouped=grouped)

        def where(a):
            return a["article_id"], a["origin"]["partition"], a["origin"]["offset"]

        assert_that(res[ARTICLES] | beam.Map(where), equal_to([("a", 1, 7), ("b", 0, 4)]), label="kept")
        assert_that(res[DUPLICATES] | "dup origins" >> beam.Map(where), equal_to([("a", 2, 9), ("a", 0, 3)]),
                    label="dups")


def test_exact_dedup_ordered_needs_single_articles():
    with pytest.raises(ValueError, match="ordered=True needs batched=False"):
        ExactDedup(batched=True, ordered=True)


@pytest.mark.parametrize("opts", [{"batched": True}, {"ordered": False}, {"expire_state": True}])
def test_grouped_exact_dedup_only_for_ordered_single_articles_in_batch_execution(opts):
    with pytest.raises(ValueError, match="grouped=True needs"):
        ExactDedup(grouped=True, **dict({"expire_state": False}, **opts))


def test_stage_graph_without_io_accounts_for_every_record():
    config = Config.from_options(PipelineOptions([
        "--bootstrap-servers", "unused:9092", "--input-topic", "raw", "--output-topic", "out",
        "--no-boilerplate", "--no-near-dedup", "--no-nlp"]))
    values = [_article("a", "One."), _article("a", "One."), b"{}", _article("b", "Two.")]
    with TestPipeline() as p:
        out = build_stages(p | beam.Create(_records(*values)).with_output_types(KafkaRecord), config)
        assert_that(out.encoded | beam.Map(lambda m: m.key), equal_to([b"a", b"b"]), label="encoded")
        assert_that(out.duplicates | beam.Map(lambda a: a["article_id"]), equal_to(["a"]), label="dups")
        assert_that(out.dead_letters | beam.Map(lambda d: d["error_type"]), equal_to(["MissingBody"]), label="dead")
        # acks cover every input offset exactly once
        acks = (out.encoded | beam.Map(lambda m: m.ack.offset),
                out.duplicates | "dup offsets" >> beam.Map(lambda a: a["_ack"]["offset"]),
                out.dead_letters | "dead offsets" >> beam.Map(lambda d: d["_ack"]["offset"])) | beam.Flatten()
        assert_that(acks, equal_to([0, 1, 2, 3]), label="acks")


def _all_lists(got):
    assert got and set(got) == {"list"}, got


def test_batched_stage_graph_keeps_lists_and_accounts_for_every_record():
    # with no per-article stage, records go from read to write in lists (Config.batched_io)
    config = Config.from_options(PipelineOptions([
        "--bootstrap-servers", "unused:9092", "--input-topic", "raw", "--output-topic", "out",
        "--no-boilerplate", "--no-near-dedup", "--no-nlp"]))
    assert config.batched_io
    values = [_article("a", "One."), _article("a", "One."), b"{}", _article("b", "Two."), b"\xff",
              _article("c", "One.", title="Other title")]
    recs = [_rec(i, v) for i, v in enumerate(values)]
    batches = [TimestampedValue(recs[:3], 1_700_000_000), TimestampedValue(recs[3:], 1_700_000_003)]
    with TestPipeline() as p:
        out = build_stages(p | beam.Create(batches).with_output_types(typing.List[KafkaRecord]), config,
                           batched=True)
        assert_that(out.encoded | beam.Map(lambda ms: type(ms).__name__), lambda got: _all_lists(got),
                    label="lists")
        assert_that(out.encoded | beam.FlatMap(lambda ms: [m.key for m in ms]), equal_to([b"a", b"b", b"c"]),
                    label="encoded")
        assert_that(out.duplicates | beam.Map(lambda a: (a["article_id"], a["_ack"]["offset"])),
                    equal_to([("a", 1)]), label="dups")
        assert_that(out.dead_letters | beam.Map(lambda d: (d["origin"]["offset"], d["error_type"])),
                    equal_to([(2, "MissingBody"), (4, "InvalidEncoding")]), label="dead")
        acks = (out.encoded | beam.FlatMap(lambda ms: [m.ack.offset for m in ms]),
                out.duplicates | "dup offsets" >> beam.Map(lambda a: a["_ack"]["offset"]),
                out.dead_letters | "dead offsets" >> beam.Map(lambda d: d["_ack"]["offset"])) | beam.Flatten()
        assert_that(acks, equal_to(list(range(6))), label="acks")


def test_ordered_exact_dedup_judges_a_late_copy_when_it_comes_and_loses_nothing():
    # The copy at t0 arrives after the watermark passed t0 + 10: the copy at t0 + 5 was already judged the
    # first. The late one waits for its own step's timer, which is behind the watermark and fires at once:
    # it is judged then (a duplicate of the copy that went out), not held forever and not lost.
    from apache_beam.options.pipeline_options import StandardOptions
    from apache_beam.testing.test_stream import TestStream

    same, other = _article("a", "Same text."), _article("b", "Other text.")
    t0 = 1_700_000_000
    stream = (TestStream(coder=beam.coders.registry.get_coder(KafkaRecord))
              .advance_watermark_to(t0 - 1)
              .add_elements([TimestampedValue(_rec(5, same, partition=1), t0 + 5),
                             TimestampedValue(_rec(6, other, partition=1), t0 + 6)])
              .advance_watermark_to(t0 + 10)
              .add_elements([TimestampedValue(_rec(2, same, partition=0), t0)])
              .advance_watermark_to_infinity())
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(options=options) as p:
        parsed = p | stream | ParseArticles()
        res = parsed[ARTICLES] | ExactDedup(horizon_seconds=3600, ordered=True)

        def where(a):
            return a["article_id"], a["origin"]["partition"], a["origin"]["offset"]

        assert_that(res[ARTICLES] | beam.Map(where), equal_to([("a", 1, 5), ("b", 1, 6)]), label="kept")
        assert_that(res[DUPLICATES] | "dup origins" >> beam.Map(where), equal_to([("a", 0, 2)]), label="dups")


# The grouped form of ordered exact dedup (bounded batch jobs): the same copies kept, at the same times.

_COLLECTED: dict = {}


def _collect(row, key):
    _COLLECTED.setdefault(key, []).append(row)  # module-level: shared with the in-process runner's worker


class _Where(beam.DoFn):
    """(output, id, topic, partition, offset, element micros, duplicate_of) of a dedup output."""

    def __init__(self, tag):
        self._tag = tag

    def process(self, a, timestamp=beam.DoFn.TimestampParam):
        o = a["origin"]
        yield (self._tag, a["article_id"], o["topic"], o["partition"], o["offset"], int(timestamp.micros),
               a["dedup"]["duplicate_of"])


def _run_dedup(stamped: list, grouped: bool, horizon_seconds: float, seeds=None) -> list:
    """Every output of ExactDedup (ordered, batch execution) over ``(seconds, Article)`` pairs, sorted."""
    key = f"grouped={grouped}"
    _COLLECTED.pop(key, None)
    with TestPipeline() as p:
        side = p | "Seeds" >> beam.Create(seeds) if seeds is not None else None
        res = (p | beam.Create(stamped, reshuffle=False) | beam.Map(lambda ta: TimestampedValue(ta[1], ta[0]))
               | ExactDedup(horizon_seconds=horizon_seconds, seeds=side, expire_state=False, grouped=grouped))
        rows = [res[ARTICLES] | "WhereKept" >> beam.ParDo(_Where("kept")),
                res[DUPLICATES] | "WhereDup" >> beam.ParDo(_Where("dup")),
                res[DEAD_LETTERS] | "WhereDead" >> beam.Map(lambda d: ("dead", d["article_id"]))]
        rows | beam.Flatten() | beam.Map(_collect, key)
    return sorted(_COLLECTED.pop(key, []))


def _wire_article(story: dict, aid: str, topic: str, partition: int, offset: int, kafka_ms: int,
                  published_ms: int):
    from pipeline.records import new_article

    rec = KafkaRecord(topic, partition, offset, kafka_ms, None, story["body"].encode(), [], offset, 0)
    return kafka_ms / 1000.0, new_article(rec, article_id=aid, raw_body=story["body"], title=story.get("title"),
                                          publisher=story.get("publisher"), ingested_at=kafka_ms,
                                          published_at=published_ms)


def _reuters_with_copies(shared, n: int = 2000) -> list:
    """The first ``n`` Reuters stories with a body (21 repeated texts among them), at scattered Kafka times
    about three to a one-second release step, on four partitions; plus an exact copy (another id) of every
    25th story: on another partition at the same Kafka time, on a topic that sorts first at the same time,
    0.4 s earlier, 3 s later, or published two days later (beyond the horizon)."""
    import datetime as dt
    import itertools

    from pipeline.corpus import read_jsonl

    stories = [s for s in itertools.islice(read_jsonl(shared / "corpus" / "reuters21578.jsonl"), 3 * n)
               if s.get("body")][:n]
    t0 = 1_700_000_000_000
    out = []
    for i, s in enumerate(stories):
        published = s.get("published_at")
        pub_ms = (int(dt.datetime.fromisoformat(published.replace("Z", "+00:00")).timestamp() * 1000)
                  if published else None)
        kafka_ms = t0 + (i * 7919 % n) * 350
        out.append(_wire_article(s, s["id"], "raw", i % 4, i // 4, kafka_ms, pub_ms))
        if i % 25:
            continue
        variant = (i // 25) % 5
        at, topic, partition, pub = kafka_ms, "raw", 5, pub_ms
        if variant == 1:
            topic = "mirror"  # sorts before "raw": at the same time this copy is the first
        elif variant == 2:
            at = kafka_ms - 400
        elif variant == 3:
            at = kafka_ms + 3_000
        elif variant == 4 and pub_ms is not None:
            pub = pub_ms + 2 * 86_400_000
        out.append(_wire_article(s, f"copy-{variant}-{s['id']}", topic, partition, 10_000 + i, at, pub))
    return out


def test_grouped_batch_form_keeps_what_the_release_timers_keep(shared):
    """On real wire stories with natural and injected exact copies and warm-start seeds, the GroupByKey
    form (batch execution) keeps the same copies as the keyed-state form with its release timers, calls the
    same articles duplicates of the same first copies, and emits every output at its release step's time.

    Times: the local runner fires the timers one bundle set in the order they were set, not in time order,
    so where a shard's later step was armed first its firing releases the earlier steps' articles too, at
    its own (later) time; the verdicts do not change (each firing releases the next run of the sorted
    list). With the articles arriving in time order the timers fire in time order and every output of the
    timer form is at its step's time: that run is the reference for the times."""
    from pipeline.stages.common import release_time

    arts = _reuters_with_copies(shared)
    in_time_order = sorted(arts, key=lambda ta: ta[0])
    assert arts != in_time_order
    # warm start: some texts were written before (as of their own publication; some three days before,
    # beyond the horizon)
    seeds = [(a["dedup"]["content_hash"], (f"seeded-{k}", a["published_at"] - (k % 2) * 3 * 86_400_000))
             for k, (_t, a) in enumerate(arts[7::40]) if a["published_at"]]
    grouped = _run_dedup(arts, True, 86_400, seeds)
    with_timers = _run_dedup(in_time_order, False, 86_400, seeds)
    with_timers_scattered = _run_dedup(arts, False, 86_400, seeds)
    kept = [r for r in grouped if r[0] == "kept"]
    dups = [r for r in grouped if r[0] == "dup"]
    assert len(kept) + len(dups) == len(arts) and not [r for r in grouped if r[0] == "dead"]
    # the case exercises the order: copies that were first by time or by topic won, the later ones lost
    assert sum(1 for r in dups if r[6].startswith("copy-")) >= 20
    assert sum(1 for r in dups if r[1].startswith("copy-")) >= 20
    assert sum(1 for r in dups if r[1].startswith("reuters-") and r[6].startswith("reuters-")) >= 10
    assert sum(1 for r in kept if r[1].startswith("copy-4-")) >= 10  # beyond the horizon: both pass
    assert sum(1 for r in dups if r[6].startswith("seeded-")) >= 20
    micros = {(a["article_id"], a["origin"]["topic"]): int(round(t * 1e6)) for t, a in arts}
    assert all(r[5] == release_time(micros[r[1], r[2]]) for r in grouped)  # each at its release step
    assert grouped == with_timers

    def verdicts(rows):
        return sorted(r[:5] + r[6:] for r in rows)

    assert verdicts(with_timers_scattered) == verdicts(grouped)


@pytest.mark.parametrize("grouped", [False, True])
def test_exact_dedup_horizon_is_inclusive_and_copies_further_apart_both_pass(grouped):
    """Event times (published_at) exactly a horizon apart: a copy; a millisecond more: both pass, and the
    later one is the first copy from then on. Same in both forms (batch execution)."""
    from pipeline.records import new_article

    h_ms, t0, pub = 3_600_000, 1_700_000_000_000, 1_600_000_000_000
    arts = []
    for i, (aid, published) in enumerate([("a", pub), ("b", pub + h_ms), ("c", pub + h_ms + 1),
                                          ("d", pub + 2 * h_ms + 1), ("e", pub - 1)]):
        rec = KafkaRecord("raw", 0, i, t0 + i * 1000, None, b"Same text.", [], i, 0)
        arts.append((rec.timestamp / 1000.0, new_article(rec, article_id=aid, raw_body="Same text.", title="T",
                                                         ingested_at=t0, published_at=published)))
    got = _run_dedup(arts, grouped, h_ms / 1000)
    step = 1_000_000
    # e (published before a, arriving last) is more than a horizon from c, the first copy it meets
    assert got == [("dup", "b", "raw", 0, 1, (t0 + 1000) * 1000, "a"),
                   ("dup", "d", "raw", 0, 3, (t0 + 3000) * 1000, "c"),
                   ("kept", "a", "raw", 0, 0, t0 * 1000, None),
                   ("kept", "c", "raw", 0, 2, (t0 + 2000) * 1000, None),
                   ("kept", "e", "raw", 0, 4, (t0 + 4000) * 1000, None)]
    assert all(r[5] % step == 0 for r in got)
