"""The ExtractFacts stage in a TestPipeline: fields filled on copies, a failure dead-lettered."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import Article
from pipeline.stages import nlp as nlp_stage
from pipeline.stages.nlp import ExtractFacts, _ExtractFactsFn


def _article(aid, body, boilerplate=()):
    return Article(article_id=aid, publisher="Example Wire", url=None, title="t", language="en",
                   published_at=1590624000000, ingested_at=1590624000000, body=body, raw_body_sha256="x",
                   origin={"topic": "raw", "partition": 0, "offset": 1, "timestamp": None},
                   boilerplate=list(boilerplate), flags=[],
                   dedup={"content_hash": "h", "signature": None, "duplicate_of": None, "similarity": None,
                          "story_id": None},
                   attributions=[], events=[], entities=[], pipeline_version="0",
                   _ack={"topic": "raw", "partition": 0, "covers_from": 1, "offset": 1, "run_start": 0},
                   _key=b"k", _value=b"v")


GOOD = "Poland condemned the attack on Monday, the state-run PAP news agency reported."
POISON = "This body makes the stub extractor raise."


@pytest.fixture()
def poisoned_extract(monkeypatch, nlp):
    """Make extraction raise for one article only, and reuse the session model in the DoFn."""
    import pipeline.nlp.extract as ex

    real = ex.extract_pieces

    def fake(pieces, **kw):
        if any(POISON in d.text for _, d in pieces):
            raise RuntimeError("forced failure")
        return real(pieces, **kw)

    monkeypatch.setattr(ex, "extract_pieces", fake)
    monkeypatch.setattr("pipeline.nlp.model.load_model", lambda name=None: nlp)


def test_stage_fills_fields_and_dead_letters_failures(poisoned_extract):
    with TestPipeline() as p:
        arts = p | beam.Create([_article("a1", GOOD), _article("a2", POISON), _article("a3", "Nothing here.")])
        out = arts | ExtractFacts(min_batch_size=3, max_batch_size=3)
        got = out["articles"] | "Summ" >> beam.Map(
            lambda a: (a["article_id"], sorted(x["source"] for x in a["attributions"]),
                       sorted((e["root_code"], e["actor1"]["country"]) for e in a["events"]), len(a["entities"]) > 0))
        assert_that(got, equal_to([("a1", ["PAP"], [("11", "POL")], True), ("a3", [], [], False)]), label="articles")
        dl = out["dead_letters"] | "DL" >> beam.Map(lambda d: (d["article_id"], d["stage"], d["value"],
                                                               d["error_type"]))
        assert_that(dl, equal_to([("a2", "nlp", b"v", "StageError:RuntimeError")]), label="dead_letters")


def test_dofn_directly_does_not_mutate_input(nlp, monkeypatch):
    monkeypatch.setattr("pipeline.nlp.model.load_model", lambda name=None: nlp)
    fn = _ExtractFactsFn(None, 16)
    fn.setup()
    raw = "Cookie notice here.\n" + GOOD
    art = _article("a1", raw[len("Cookie notice here.\n"):],
                   boilerplate=[{"kind": "cookie_notice", "text": "Cookie notice here.\n", "start": 0,
                                 "end": len("Cookie notice here.\n"), "rule": "cue:test"}])
    out = list(fn.process([art]))
    assert art["attributions"] == [] and len(out) == 1
    pap = out[0]["attributions"][0]
    assert raw[pap["start"]:pap["end"]] == "PAP"


@pytest.mark.parametrize("kw", [{"min_batch_size": 0}, {"min_batch_size": 9, "max_batch_size": 4},
                                {"spacy_model": ""}])
def test_bad_options_raise(kw):
    with pytest.raises(ValueError):
        ExtractFacts(**kw)


def test_module_does_no_work_at_import():
    assert nlp_stage._LOGGER.name == "pipeline.stages.nlp"


def test_spread_for_nlp_passes_every_article_once_in_packs_of_about_equal_size():
    from pipeline.stages.nlp import SpreadForNlp, _PackBySize

    arts = [_article(f"a{i}", "word " * (200 * (i % 7 + 1))) for i in range(40)]
    with TestPipeline() as p:
        out = (p | beam.Create(arts).with_output_types(Article) | SpreadForNlp(target_chars=5000)
               | beam.Map(lambda a: (a["article_id"], len(a["body"]))))
        assert_that(out, equal_to([(a["article_id"], len(a["body"])) for a in arts]))
    # the packing itself: at bundle end, longest articles first; full packs reach the target and stop at the
    # article that reaches it
    fn = _PackBySize(5000)
    fn.start_bundle()
    from apache_beam.utils.timestamp import Timestamp
    assert [v for i, a in enumerate(arts) for v in fn.process(a, timestamp=Timestamp(10 + i))] == []
    out = list(fn.finish_bundle())
    packs = [v.value for v in out]
    sizes = [sum(len(a["body"]) for a in pack) for pack in packs]
    assert sorted(a["article_id"] for pack in packs for a in pack) == sorted(a["article_id"] for a in arts)
    assert all(5000 <= s < 5000 + 7 * 1000 for s in sorted(sizes)[1:]), sizes  # all but the rest
    # packed longest first (the first article of a pack is its longest)
    index = {a["article_id"]: i for i, a in enumerate(arts)}
    packing_order = sorted(packs, key=lambda p: (-len(p[0]["body"]), index[p[0]["article_id"]]))
    lengths = [len(a["body"]) for pack in packing_order for a in pack]
    assert lengths == sorted(lengths, reverse=True)
    assert all(v.timestamp == Timestamp(10 + max(index[a["article_id"]] for a in v.value)) for v in out)
    # for the local runner's workers: (share, pack), every pack once
    fn = _PackBySize(5000, ways=2)
    fn.start_bundle()
    assert [v for i, a in enumerate(arts) for v in fn.process(a, timestamp=Timestamp(10 + i))] == []
    keyed = [v.value for v in fn.finish_bundle()]
    assert {w for w, _ in keyed} == {0, 1}
    assert sorted(a["article_id"] for _, pack in keyed for a in pack) == sorted(a["article_id"] for a in arts)
    with pytest.raises(ValueError, match="target_chars"):
        SpreadForNlp(target_chars=0)
    with pytest.raises(ValueError, match="ways"):
        SpreadForNlp(ways=0)


def test_spread_for_local_workers_passes_every_article_once():
    from pipeline.stages.nlp import SpreadForNlp

    arts = [_article(f"a{i}", "word " * (200 * (i % 7 + 1))) for i in range(40)]
    with TestPipeline() as p:
        out = (p | beam.Create(arts).with_output_types(Article) | SpreadForNlp(target_chars=5000, ways=2)
               | beam.Map(lambda a: a["article_id"]))
        assert_that(out, equal_to([a["article_id"] for a in arts]))


@pytest.mark.parametrize("ways", [1, 2, 3])
def test_packs_dealt_to_workers_give_each_about_the_same_work(ways):
    import random

    rng = random.Random(7)
    # wire-like: a few long articles in packs of their own, then packs near the 20k-character target
    sizes = sorted([90_000, 70_000, 52_000, 41_000, 33_000] + [rng.randint(20_000, 26_000) for _ in range(50)],
                   reverse=True)
    packs = [(size, [f"p{i}"], i) for i, size in enumerate(sizes)]
    dealt = nlp_stage._deal(packs, ways)
    assert sorted(p for _, _, p, _ in dealt) == sorted(p for _, p, _ in packs)  # each pack once
    assert all(ts == int(p[0][1:]) for _, _, p, ts in dealt)
    loads = [sum(size for w, size, _, _ in dealt if w == worker) for worker in range(ways)]
    assert sum(loads) == sum(sizes)
    # within a third of a pack of each other (pairs of neighbours dealt in turn, the larger always
    # first, had left one of two workers 19.5 k characters behind on these sizes)
    assert max(loads) - min(loads) <= 8_000, loads
    # groups largest, smallest, second largest...: no worker gets all the longest articles in a row
    assert sorted(size for _, size, _, _ in dealt[:ways]) == sorted(sizes[:ways])
    smallest = sizes[(len(sizes) - 1) // ways * ways:]
    assert sorted(size for _, size, _, _ in dealt[ways:ways + len(smallest)]) == sorted(smallest)


def test_model_load_starts_early_from_its_own_branch(monkeypatch):
    from pipeline.nlp import model

    started = []
    monkeypatch.setattr(model, "warm_shared_model", lambda name=None: started.append(name))
    fn = nlp_stage._WarmModelFn("some_model")
    fn.setup()
    assert started == ["some_model"] and list(fn.process(b"")) == []
    p = beam.Pipeline()
    arts = p | beam.Create([])
    _ = arts | "On" >> ExtractFacts()
    _ = arts | "Off" >> ExtractFacts(warm_model=False)
    labels = {t.full_label for t in p.transforms_stack[0].parts[-1].parts} | {
        t.full_label for t in p.transforms_stack[0].parts[-2].parts}
    assert "On/LoadModelEarly" in labels and not any(x.startswith("Off/Warm") for x in labels)
