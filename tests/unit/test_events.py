"""CAMEO event rules: the seed article (read at test time), written sentences, dates and modality."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.nlp.extract import extract
from pipeline.nlp.events import parse_published, resolve_date


def _events(nlp, text, published_at="2024-03-14"):
    return extract(nlp(text), published_at=published_at)[1]


def _keys(evs):
    return {(e["root_code"], e["actor1"]["country"]) for e in evs}


def test_seed_events(nlp, seed_article):
    evs = _events(nlp, seed_article["body"], seed_article["published_at"])
    keys = _keys(evs)
    # Russia coordinating with France / inviting leaders: 03-05 family, actor RUS
    assert {("05", "RUS"), ("03", "RUS")} <= keys
    coord = next(e for e in evs if e["root_code"] == "05")
    assert coord["actor2"]["country"] == "FRA" and coord["attributed_to"] == "Kremlin"
    invite = next(e for e in evs if e["code"] == "036" and e["sentence"] == 0)
    assert invite["modality"] == "planned"
    # Putin's announcement, dated the Tuesday before publication
    ann = next(e for e in evs if e["root_code"] == "01")
    assert ann["actor1"]["text"] == "Vladimir Putin" and ann["actor1"]["code"] == "RUSGOV"
    assert ann["date"] == "2020-05-26"
    for e in evs:
        assert set(e) == {"code", "root_code", "label", "trigger", "actor1", "actor2", "location", "date_text",
                          "date", "sentence", "start", "end", "attributed_to", "negated", "modality"}
        assert seed_article["body"][e["start"]:e["end"]] == e["trigger"]


def test_seed_confirmation_attributed_to_tass(nlp, seed_article):
    evs = _events(nlp, seed_article["body"], seed_article["published_at"])
    kgz = [e for e in evs if e["actor1"]["country"] == "KGZ"]
    assert kgz and kgz[0]["root_code"] == "03" and kgz[0]["attributed_to"] == "TASS"


@pytest.mark.parametrize("text, root, country", [
    ("Poland condemned the drone incursion on Sunday.", "11", "POL"),
    ("Hungary accused Brussels of blackmail over the frozen funds.", "11", "HUN"),
    ("The Kremlin denied that troops had crossed the border.", "01", "RUS"),
    ("Japan urged Beijing to release the detained businessman.", "02", "JPN"),
    ("Canada imposed sanctions on six Iranian officials on Monday.", "16", "CAN"),
    ("Russian forces shelled the town overnight, local officials said.", "19", "RUS"),
    ("Turkey threatened to block the accession talks.", "13", "TUR"),
])
def test_written_sentences(nlp, text, root, country):
    assert (root, country) in _keys(_events(nlp, text))


def test_capital_is_the_government(nlp):
    evs = _events(nlp, "Washington imposed new sanctions on the shipping firms.")
    assert evs and evs[0]["actor1"]["code"] == "USAGOV" and evs[0]["actor1"]["country"] == "USA"


def test_joint_action_gives_one_event_per_party(nlp):
    evs = _events(nlp, "Norway and Sweden pledged 300 million euros to rebuild the grid.")
    assert {("03", "NOR"), ("03", "SWE")} <= _keys(evs)


def test_reporting_verb_alone_is_not_an_event(nlp):
    assert _events(nlp, 'The weather was mild, the Italian minister said. "It was a good year," he told reporters.') == []


def test_negation_and_modality(nlp):
    neg = _events(nlp, "Germany did not impose sanctions on the bank.")
    assert neg and neg[0]["negated"] is True
    plan = _events(nlp, "France will sign the agreement with Morocco next week.")
    assert plan and plan[0]["modality"] == "planned"
    hyp = _events(nlp, "Officials fear that Serbia could attack the convoy.")
    assert hyp and hyp[0]["modality"] == "hypothetical"


@pytest.mark.parametrize("text, expected", [
    ("Thursday", "2020-05-28"), ("on Tuesday", "2020-05-26"), ("June 24", "2020-06-24"), ("9 May", "2020-05-09"),
    ("last month", None), ("May", None), ("2019", None), ("yesterday", "2020-05-27"),
])
def test_resolve_date(text, expected):
    assert resolve_date(text, dt.date(2020, 5, 28)) == expected


def test_parse_published_forms():
    assert parse_published(1590624000000) == dt.date(2020, 5, 28)
    assert parse_published("2022-04-19T20:17:06") == dt.date(2022, 4, 19)
    assert parse_published("2025-10-08T17:05:00Z") == dt.date(2025, 10, 8)
    assert parse_published(None) is None
