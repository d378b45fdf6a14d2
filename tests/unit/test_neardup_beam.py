"""NearDuplicates as a Beam stage: drop and tag modes, determinism across orders, bundles and workers."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import Article, KafkaRecord, new_article
from pipeline.stages.common import ARTICLES, DEAD_LETTERS, DUPLICATES
from pipeline.stages.neardup import NearDuplicates

HOUR = 3600 * 1000
T0 = 1_760_000_000_000

LEDE = ("The port authority of Valmere said on Monday it would close the northern container terminal for "
        "six weeks from March 3 to repair storm damage to two cranes and the quay wall, diverting about 40 "
        "ships a week to the southern terminal.")
PARAS = [
    "Harbour master Ilse Brandt told reporters the repairs would cost 18 million euros, to be shared with "
    "the regional government, and that no jobs would be lost during the closure.",
    "Shipping lines including Nordvik and Castellan said they expected delays of one to two days for "
    "cargo bound for the city's industrial park while the work goes on.",
    "The storm in January brought gusts of 140 kilometres an hour and flooded parts of the old town, "
    "where clean-up work is still continuing along the river embankment.",
    "Union leaders welcomed the promise on jobs but asked for written guarantees for the 300 dockers who "
    "normally work the northern terminal, saying past promises had not been kept.",
]
OTHER = ("Farmers in the Dellwyn valley began the apple harvest two weeks early after an unusually warm "
         "summer, the regional growers' association said, forecasting a crop of 52,000 tonnes, up from "
         "47,000 last year, with prices steady at local markets and strong demand from export buyers.")


def _article(aid: str, title: str, body: str, published_at: int | None, offset: int = 0) -> Article:
    rec = KafkaRecord("wire", 0, offset, published_at, None, body.encode(), [], offset, 0)
    return new_article(rec, article_id=aid, raw_body=body, ingested_at=T0, title=title, published_at=published_at)


def _three_outlets() -> list[Article]:
    story = "\n".join([LEDE] + PARAS)
    trimmed = "\n".join([LEDE] + PARAS[:2] + PARAS[3:])  # one paragraph cut
    appended = story + "\nSupport independent local journalism: become a member of the Herald today."
    return [
        _article("outlet-a-1", "Valmere closes northern terminal for crane repairs", story, T0),
        _article("outlet-b-7", "Storm damage shuts Valmere container quay for six weeks", trimmed, T0 + 2 * HOUR, 1),
        _article("outlet-c-3", "Port of Valmere: north terminal to close", appended, T0 + 5 * HOUR, 2),
        _article("farm-1", "Apple harvest starts early in Dellwyn", OTHER, T0 + HOUR, 3),
    ]


def _summary(a: Article) -> tuple:
    d = a["dedup"]
    return (a["article_id"], d["duplicate_of"], d["story_id"], isinstance(d["signature"], bytes) and len(d["signature"]))


# The forms of the stage: streaming (keyed state and timers, state expires); batch execution of a bounded
# input (expire_state off) with the band step in keyed state and release timers, or grouped (the default
# there: no keyed state at all).
_FORMS = {"streaming": {}, "batch-timers": {"expire_state": False, "grouped_bands": False},
          "batch-grouped": {"expire_state": False}}


@pytest.mark.parametrize("form", sorted(_FORMS))
def test_three_outlets_one_story_drop_mode(form):
    # expire_state only frees state (batch execution turns it off) and the grouped band step releases as
    # the timers do: the verdicts must not depend on either
    arts = _three_outlets()
    with test_pipeline.TestPipeline() as p:
        res = p | beam.Create(arts) | NearDuplicates(**_FORMS[form])
        assert_that(res[ARTICLES] | "sa" >> beam.Map(_summary),
                    equal_to([("outlet-a-1", None, "outlet-a-1", 256), ("farm-1", None, "farm-1", 256)]),
                    label="originals")
        assert_that(res[DUPLICATES] | "sd" >> beam.Map(_summary),
                    equal_to([("outlet-b-7", "outlet-a-1", "outlet-a-1", 256),
                              ("outlet-c-3", "outlet-a-1", "outlet-a-1", 256)]), label="dups")
        assert_that(res[DUPLICATES] | "sim" >> beam.Map(lambda a: 0.5 <= a["dedup"]["similarity"] <= 1.0),
                    equal_to([True, True]), label="similarity")
        assert_that(res[DEAD_LETTERS], equal_to([]), label="no dead letters")


@pytest.mark.parametrize("form", ["streaming", "batch-grouped"])
def test_an_update_with_the_same_id_is_not_a_copy_and_is_not_lost(form):
    story = "\n".join([LEDE] + PARAS)
    corrected = story.replace("six weeks", "seven weeks")
    arts = [_article("outlet-a-1", "Valmere closes northern terminal", story, T0),
            _article("outlet-a-1", "CORRECTED-Valmere closes northern terminal", corrected, T0 + HOUR, 1),
            _article("outlet-a-1", "Valmere closes northern terminal", story, T0, 2)]  # same id, same time
    with test_pipeline.TestPipeline() as p:
        res = p | beam.Create(arts) | NearDuplicates(**_FORMS[form])
        assert_that(res[ARTICLES] | beam.Map(lambda a: (a["article_id"], a["origin"]["offset"],
                                                        a["dedup"]["duplicate_of"])),
                    equal_to([("outlet-a-1", 0, None), ("outlet-a-1", 1, None), ("outlet-a-1", 2, None)]))
        assert_that(res[DUPLICATES], equal_to([]), label="none dropped")


def test_tag_mode_keeps_copies_in_articles():
    arts = _three_outlets()
    with test_pipeline.TestPipeline() as p:
        res = p | beam.Create(arts) | NearDuplicates(mode="tag")
        assert_that(res[ARTICLES] | beam.Map(_summary),
                    equal_to([("outlet-a-1", None, "outlet-a-1", 256), ("farm-1", None, "farm-1", 256),
                              ("outlet-b-7", "outlet-a-1", "outlet-a-1", 256),
                              ("outlet-c-3", "outlet-a-1", "outlet-a-1", 256)]))
        assert_that(res[DUPLICATES], equal_to([]), label="none dropped")


def test_inputs_are_not_mutated():
    arts = _three_outlets()
    before = [dict(a["dedup"]) for a in arts]
    with test_pipeline.TestPipeline() as p:
        _ = p | beam.Create(arts) | NearDuplicates()
    assert [a["dedup"] for a in arts] == before


def test_bad_article_is_dead_lettered():
    # An article the coder cannot even carry through a pipeline: drive the DoFn directly.
    from apache_beam import pvalue

    from pipeline.neardup import NearDupConfig
    from pipeline.stages.neardup import _FingerprintFn

    bad = _article("broken", "t", "some words here", T0)
    bad["body"] = 12345  # not a string: fingerprinting raises
    fn = _FingerprintFn(NearDupConfig(), 1024)
    fn.setup()
    out = list(fn.process(bad))
    assert len(out) == 1 and isinstance(out[0], pvalue.TaggedOutput) and out[0].tag == DEAD_LETTERS
    assert (out[0].value["article_id"], out[0].value["stage"]) == ("broken", "near_dedup")
    good = list(fn.process(_three_outlets()[0]))
    tags = [o.tag if isinstance(o, pvalue.TaggedOutput) else "main" for o in good]
    assert tags.count("bands") == 32 and tags.count("homes") == 1 and tags.count("collect") == 1
    bands = [o.value for o in good if isinstance(o, pvalue.TaggedOutput) and o.tag == "bands"]
    assert all(0 <= shard < 1024 and len(data) > 16 for shard, data in bands)  # 16-byte entry + join key
    assert good[-1][0].split("\x1f")[0] == "outlet-a-1"


@pytest.mark.parametrize("bad", [{"threshold": 0}, {"horizon_seconds": -1}, {"mode": "keep"},
                                 {"bands": 40, "rows": 2}])
def test_bad_options_raise(bad):
    with pytest.raises(ValueError):
        NearDuplicates(**bad)


def _story_family(n_stories: int = 6) -> list[Article]:
    """Distinct stories, four copies each (full, trimmed, appended), with arrival order unlike publication order."""
    rng = random.Random(7)
    vocab = sorted(set(" ".join([LEDE, OTHER] + PARAS).replace(",", "").replace(".", "").split()))
    out = []
    for s in range(n_stories):
        paras = [" ".join(rng.choices(vocab, k=30)) + "." for _ in range(5)]
        t = T0 + s * 3 * HOUR
        for c in range(4):
            body = "\n".join(paras[: 5 - (c % 2)]) + ("\nDonate to keep us going." if c == 3 else "")
            out.append(_article(f"s{s}-c{c}", f"Headline {s}-{c}", body, t + rng.choice([0, 1, 2]) * HOUR, c))
    return out


def _expected(arts: list[Article]) -> set:
    from pipeline.neardup import NearDuplicateIndex, fingerprint_article, order_key

    idx = NearDuplicateIndex()
    res = set()
    for a in sorted(arts, key=order_key):
        v = idx.process(fingerprint_article(a))
        res.add((a["article_id"], v.duplicate_of, v.story_id))
    return res


def _verdicts(arts: list[Article], options=None, reshuffle=False, form="streaming") -> list:
    with test_pipeline.TestPipeline(options=options) as p:
        pc = p | beam.Create(arts)
        if reshuffle:
            pc = pc | beam.Reshuffle()
        res = pc | NearDuplicates(mode="tag", **_FORMS[form])
        assert_that(res[ARTICLES] | beam.Map(lambda a: (a["article_id"], a["dedup"]["duplicate_of"],
                                                        a["dedup"]["story_id"])),
                    equal_to(sorted(_expected(arts))))


@pytest.mark.parametrize("form", ["streaming", "batch-grouped"])
def test_deterministic_whatever_the_arrival_order(form):
    arts = _story_family()
    assert len({s for _, d, s in _expected(arts) if d is None}) == 6  # the family really has distinct stories
    for seed in (1, 2, 3):
        shuffled = list(arts)
        random.Random(seed).shuffle(shuffled)
        _verdicts(shuffled, reshuffle=seed == 2, form=form)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["streaming", "batch-grouped"])
def test_deterministic_multi_processing(form):
    arts = _story_family()
    random.Random(5).shuffle(arts)
    opts = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    _verdicts(arts, options=opts, reshuffle=True, form=form)


_COLLECTED: dict = {}


def _run_joins(arts: list, grouped: bool, mode: str, tag: str, **stage) -> tuple:
    """Every output of the stage (articles, duplicates, dead letters) and its counters, with the joins
    in keyed state or grouped (both in batch execution: expire_state off). ``arts``: articles, or
    ``(seconds, article)`` pairs (each article at that element time, in this order); ``stage``: more
    NearDuplicates arguments."""
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.transforms.window import TimestampedValue

    _COLLECTED.clear()

    def keep(name):
        def add(x):
            import sys  # this module itself, not a pickled copy of its globals

            sys.modules[__name__]._COLLECTED.setdefault(name, []).append(x)
        return add

    p = beam.Pipeline()
    pc = p | beam.Create(arts, reshuffle=False)
    if arts and isinstance(arts[0], tuple):
        pc = pc | "Stamp" >> beam.Map(lambda ta: TimestampedValue(ta[1], ta[0])).with_output_types(Article)
    res = pc | NearDuplicates(mode=mode, expire_state=False, grouped_joins=grouped, **stage)
    _ = res[ARTICLES] | "A" >> beam.Map(lambda a: (a["article_id"], repr(sorted(a["dedup"].items())),
                                                    a["body"])) | "KA" >> beam.Map(keep("articles"))
    _ = res[DUPLICATES] | "D" >> beam.Map(lambda a: (a["article_id"], repr(sorted(a["dedup"].items()))),
                                          ) | "KD" >> beam.Map(keep("duplicates"))
    _ = res[DEAD_LETTERS] | "L" >> beam.Map(lambda d: (d["article_id"], d["stage"], d["error_type"])
                                            ) | "KL" >> beam.Map(keep("dead"))
    result = p.run()
    result.wait_until_finish()
    counters = {m.key.metric.name: m.committed
                for m in result.metrics().query(MetricsFilter().with_namespace("wirestream"))["counters"]}
    out = {k: sorted(v) for k, v in _COLLECTED.items()}
    return out, counters


@pytest.mark.parametrize("mode", ["drop", "tag"])
def test_grouped_joins_decide_as_the_stateful_joins(mode, monkeypatch):
    # Batch execution groups the three joins instead of keeping them in keyed state; both must give the
    # same articles, verdicts, dead letters and counters, including a verification that raises (its
    # requester is dead-lettered) and an article without words (decided without a join).
    import pipeline.stages.neardup as stage

    real = stage.match

    def match(earlier, later, config):
        if later.article_id.startswith("s2-"):
            raise RuntimeError("forced verification failure")
        return real(earlier, later, config)

    monkeypatch.setattr(stage, "match", match)
    arts = _story_family(8) + [_article("empty", "t", "...", T0 + HOUR, 99)]
    random.Random(3).shuffle(arts)
    with_state = _run_joins(arts, False, mode, "state")
    grouped = _run_joins(arts, True, mode, "grouped")
    assert grouped == with_state
    out, counters = grouped
    assert out["dead"] and {d[0][:3] for d in out["dead"]} == {"s2-"}
    assert counters["near_duplicates"] >= 20 and counters["near_dedup_candidates"] > 0
    assert len(out["articles"]) + len(out.get("duplicates", [])) + len(out["dead"]) == len(arts)


def test_grouped_joins_only_in_batch_execution():
    with pytest.raises(ValueError):
        NearDuplicates(expire_state=True, grouped_joins=True)


def _corpus_articles(shared, n_reuters: int = 700) -> list:
    """Real articles as ``(Kafka seconds, Article)`` pairs, in scattered order: every wire article with a
    body, the first ``n_reuters`` Reuters stories with a body (dividend notices, price lines, retitled
    repeats) and every Reuters story of a labelled near-duplicate group (near_duplicates.jsonl). Each
    reaches Kafka 0 to 119 minutes and 0 to 750 ms (a hash of its id) after its publication (its event
    time), so copies published within two hours of each other often arrive before the story they copy."""
    import itertools
    import zlib

    from pipeline.corpus import read_jsonl
    from pipeline.parse import parse_iso_ms

    corpus = shared / "corpus"
    grouped = {i for g in read_jsonl(corpus / "near_duplicates.jsonl") for i in g["ids"]}
    stories = [s for s in read_jsonl(corpus / "wire_articles.jsonl") if s.get("body")]
    first = {s["id"] for s in itertools.islice((s for s in read_jsonl(corpus / "reuters21578.jsonl")
                                                 if s.get("body")), n_reuters)}
    stories += [s for s in read_jsonl(corpus / "reuters21578.jsonl")
                if s.get("body") and (s["id"] in first or s["id"] in grouped)]
    out = []
    for i, s in enumerate(stories):
        published = parse_iso_ms(s["published_at"]) if s.get("published_at") else None
        jitter = zlib.crc32(s["id"].encode())
        kafka_ms = (published or T0) + jitter % 120 * 60_000 + jitter // 120 % 4 * 250
        rec = KafkaRecord("raw", i % 4, i, kafka_ms, None, s["body"].encode(), [], i, 0)
        out.append((kafka_ms / 1000.0, new_article(
            rec, article_id=s["id"], raw_body=s["body"], title=s.get("title"), publisher=s.get("publisher"),
            ingested_at=kafka_ms, published_at=published)))
    return out


@pytest.mark.slow
def test_grouped_band_step_gives_what_the_release_timers_give(shared):
    """On real articles with labelled copy groups and retitled repeats, arriving up to two hours after
    publication, the batch form of the whole stage (band step and joins grouped, no keyed state) gives the
    same verdicts (duplicate_of, story_id, similarity), outputs and counters as the stage in keyed state with
    release timers. (The band budget's trims are compared in test_neardup_state.py.)

    The order matters here: a shard releases its entries one release step of element time after another,
    and a copy released before the story it copies is not its duplicate (nor is the story the copy's, being
    earlier), so releasing a shard's entries in another order (all at once, by event time, latest step
    first) changes verdicts and the ``near_dedup_late`` count. The reference is fed in element-time order:
    the local runner fires the timers a bundle set in the order they were set, not in time order, so fed
    scattered the timer form would release some later steps first, the earlier steps' entries with them.
    The grouped form does not depend on the arrival order (fed scattered here)."""
    from pipeline.neardup import NearDuplicateIndex, fingerprint_article, order_key

    arts = _corpus_articles(shared, n_reuters=300)
    in_time_order = sorted(arts, key=lambda ta: ta[0])
    assert arts != in_time_order
    with_timers = _run_joins(in_time_order, False, "drop", "state", grouped_bands=False)
    grouped = _run_joins(arts, True, "drop", "grouped")
    assert grouped == with_timers
    out, counters = grouped
    assert "dead" not in out and len(out["articles"]) + len(out["duplicates"]) == len(arts)
    assert counters["near_dedup_in"] == len(arts) and counters["near_dedup_late"] >= 300
    dups = {d[0] for d in out["duplicates"]}
    assert len(dups) >= 200  # labelled copy groups and repeats found
    # the release order shaped these verdicts: the pure index, deciding in event-time order, also finds
    # the copies that arrived (were released) before their story, which the stage does not
    index = NearDuplicateIndex(NearDuplicates().config)
    by_index = {a["article_id"] for _, a in sorted(arts, key=lambda ta: order_key(ta[1]))
                if index.process(fingerprint_article(a)).duplicate_of}
    assert dups < by_index and len(by_index - dups) >= 20
