"""Beam tests of StripBoilerplate: keyed memory state (warm-up, eviction, determinism), dead letters.

Within one publisher key Beam does not promise an order, so the assertions are chosen to hold for any
order: "a line in k articles is cut in exactly k - N + 1 of them", "evicted lines are never cut".
"""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.records import Article, KafkaRecord, new_article
from pipeline.stages.boilerplate import StripBoilerplate, strip_article
from pipeline.boilerplate import PublisherMemory, RuleSet
from pipeline.text import cut_spans

REPEATED = "Readers like you keep our correspondents in the field across the region"


def _article(i: int, body: str, publisher: str = "Harbor Post") -> Article:
    rec = KafkaRecord("in", 0, i, 1_700_000_000_000 + i, None, body.encode(), [], i, 0)
    return new_article(rec, article_id=f"a{i}", raw_body=body, ingested_at=1_700_000_000_000 + i,
                       publisher=publisher, title=f"Headline number {i}", published_at=1_700_000_000_000 + i)


def _body(i: int, repeated: bool, extra_lines: int = 0) -> str:
    lines = ["Advertisement"]  # an explicit cue: the page shows furniture
    if repeated:
        lines.append(REPEATED)
    lines += [f"Story {i}: the council met on day {i} and voted on the budget, officials said.",
              f"Paragraph two of story {i} explains the vote, the amendments and the next steps."]
    lines += [f"Unique closing line {i}-{k}" for k in range(extra_lines)]
    return "\n".join(lines) + "\n"


def _summary(article: dict):
    """(id, repeated line cut?) plus a contract check."""
    raw = next(a for a in _INPUT_BODIES if a[0] == article["article_id"])[1]
    assert article["body"] == cut_spans(raw, [(s["start"], s["end"]) for s in article["boilerplate"]])
    return article["article_id"], any(REPEATED in s["text"] for s in article["boilerplate"])


_INPUT_BODIES: list = []


def _run(articles, **opts):
    _INPUT_BODIES[:] = [(a["article_id"], a["body"]) for a in articles]
    return articles


def test_warm_up_threshold():
    # The repeated line is in 2 articles of publisher A (< N=3: stays) and 4 of publisher B (cut in 2).
    arts = _run([_article(i, _body(i, True), "A") for i in range(2)]
                + [_article(10 + i, _body(10 + i, True), "B") for i in range(4)]
                + [_article(20, _body(20, False), "B")])
    with TestPipeline() as p:
        out = p | beam.Create(arts) | StripBoilerplate(min_articles=3)
        cut = (out["articles"] | "Summ" >> beam.Map(_summary)
               | "Pub" >> beam.Map(lambda s: (s[0] in ("a0", "a1"), s[1]))
               | beam.combiners.Count.PerElement())
        assert_that(cut, equal_to([((True, False), 2), ((False, False), 3), ((False, True), 2)]))
        assert_that(out["dead_letters"], equal_to([]), label="NoDeadLetters")


def test_size_bound_evicts():
    # max_paragraphs=2: each article's later unique lines push the repeated fingerprint out of memory.
    arts = _run([_article(i, _body(i, True, extra_lines=3)) for i in range(4)])
    with TestPipeline() as p:
        out = p | beam.Create(arts) | StripBoilerplate(min_articles=2, max_paragraphs=2)
        cut = out["articles"] | beam.Map(_summary) | "Cut" >> beam.Map(lambda s: s[1])
        assert_that(cut, equal_to([False] * 4))


def test_same_input_twice_same_output():
    arts = _run([_article(i, _body(i, i % 2 == 0, extra_lines=i % 3)) for i in range(6)])
    results = []
    for _ in range(2):
        with TestPipeline() as p:
            out = p | beam.Create(arts) | StripBoilerplate(min_articles=2)
            got = out["articles"] | beam.Map(lambda a: (a["article_id"], a["body"], len(a["boilerplate"])))
            expected = _expected(arts)
            assert_that(got, equal_to(expected))
        results.append(expected)
    assert results[0] == results[1]


def _expected(arts):
    """What the pure core gives for the order used (single key, Create order)."""
    mem = PublisherMemory(min_articles=2)
    out = []
    for a in arts:
        b, n, _ = strip_article(a, mem, None)
        out.append((b["article_id"], b["body"], n))
    return out


def test_failures_become_dead_letters_and_inputs_are_not_mutated(monkeypatch):
    import pipeline.stages.boilerplate as stage

    real = stage.strip

    def flaky(raw, publisher, **kw):
        if "Story 2:" in raw:
            raise RuntimeError("boom")
        return real(raw, publisher, **kw)
    monkeypatch.setattr(stage, "strip", flaky)  # the in-process DirectRunner sees the patch
    good = _article(1, _body(1, False))
    bad = _article(2, _body(2, False))
    before = dict(good)
    with TestPipeline() as p:
        out = p | beam.Create([good, bad]) | StripBoilerplate()
        assert_that(out["dead_letters"] | beam.Map(lambda d: (d["article_id"], d["stage"])),
                    equal_to([("a2", "boilerplate")]), label="Dead")
        assert_that(out["articles"] | beam.Map(lambda a: (a["article_id"], len(a["boilerplate"]))),
                    equal_to([("a1", 1)]), label="Good")
    assert good == before


def test_strip_article_copies():
    art = _article(3, "Advertisement\nA story paragraph that is long enough to be a story.\n")
    out, n, all_boiler = strip_article(art, None, RuleSet.empty())
    assert n == 1 and not all_boiler and out is not art
    assert art["body"].startswith("Advertisement") and art["boilerplate"] == []


@pytest.mark.parametrize("opts", [{"min_articles": 1}, {"max_paragraphs": 0}, {"horizon_days": 0}])
def test_bad_options_raise(opts):
    with pytest.raises(ValueError):
        StripBoilerplate(**opts)
