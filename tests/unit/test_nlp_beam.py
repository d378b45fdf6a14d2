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
    # packed longest first (the first article of a pack is its longest), emitted in pairs of neighbours,
    # the pairs largest, smallest, second largest, ...
    index = {a["article_id"]: i for i, a in enumerate(arts)}
    packing_order = sorted(packs, key=lambda p: (-len(p[0]["body"]), index[p[0]["article_id"]]))
    lengths = [len(a["body"]) for pack in packing_order for a in pack]
    assert lengths == sorted(lengths, reverse=True)
    assert packs == nlp_stage._pairs_largest_and_smallest(packing_order)
    assert nlp_stage._pairs_largest_and_smallest(list(range(9, 0, -1))) == [9, 8, 1, 7, 6, 3, 2, 5, 4]
    assert nlp_stage._pairs_largest_and_smallest([4, 3, 2, 1]) == [4, 3, 2, 1]
    index = {a["article_id"]: i for i, a in enumerate(arts)}
    assert all(v.timestamp == Timestamp(10 + max(index[a["article_id"]] for a in v.value)) for v in out)
    with pytest.raises(ValueError, match="target_chars"):
        SpreadForNlp(target_chars=0)


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
