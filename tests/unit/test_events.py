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


# -- genre rules: written sentences (positives and look-alike negatives) --------------------------------------

def _by_root(evs, root):
    return [e for e in evs if e["root_code"] == root]


@pytest.mark.parametrize("text, root, country", [
    ("The convoy was attacked by Serbian forces near the border on Monday.", "19", "SRB"),  # passive agent
    ("Japan's withdrawal from the consortium surprised investors.", "08", "JPN"),  # possessive on a noun
    ("Finland said it would expel two diplomats over the affair.", "17", "FIN"),  # "X said it ..." -> X
    ("The IMF slashed its growth forecast for Brazil on Tuesday.", "01", None),  # international actor, null
    ("Japan lodged a formal protest with Russia over the drills.", "11", "JPN"),  # verb + modifiers + noun
    ("Spain voiced support for the ceasefire plan on Friday.", "05", "ESP"),
    ("Russia launched a full-scale invasion of the neighbouring country.", "19", "RUS"),
    ("Nearby countries have taken in thousands of refugees.", "07", None),  # generic plural subject
    ("Moscow summoned the Estonian ambassador and lodged a strong protest.", "11", "RUS"),  # coordinated verbs
    ("The minister spoke to reporters after Chile recalled its ambassador from Peru.", "16", "CHL"),
])
def test_genre_rules(nlp, text, root, country):
    assert (root, country) in _keys(_events(nlp, text))


def test_passive_without_agent_is_not_the_victims_event(nlp):
    evs = _events(nlp, "The town of Chasiv Yar was shelled overnight, regional officials said.")
    assert not _by_root(evs, "19")


def test_passive_agent_is_actor_not_subject(nlp):
    evs = _events(nlp, "Azerbaijan was accused by Armenia of shelling border villages.")
    assert ("11", "ARM") in _keys(evs) and ("11", "AZE") not in _keys(evs)


def test_two_sided_talks_give_one_event_per_party(nlp):
    evs = _events(nlp, "Talks between Poland and Lithuania on the pipeline resumed in Vilnius on Monday.")
    assert {("04", "POL"), ("04", "LTU")} <= _keys(evs)


def test_hyphenated_mediator(nlp):
    evs = _events(nlp, "The deal followed Norway-mediated talks in Oslo.")
    assert ("04", "NOR") in _keys(evs)


def test_joint_subject_and_planned_infinitive(nlp):
    evs = _events(nlp, "Russia and China agreed to expand military cooperation.")
    assert {("03", "RUS"), ("03", "CHN")} <= _keys(evs)


def test_planned_visit(nlp):
    evs = _events(nlp, "The Chinese president will visit Brazil next month.")
    visit = [e for e in evs if e["code"] == "042"]
    assert visit and visit[0]["actor1"]["country"] == "CHN" and visit[0]["modality"] == "planned"


def test_negated_attack(nlp):
    evs = _events(nlp, "Serbia did not attack the convoy, the ministry said.")
    att = _by_root(evs, "19")
    assert att and att[0]["negated"] is True and att[0]["actor1"]["country"] == "SRB"


def test_content_of_an_appeal_is_not_an_event(nlp):
    evs = _events(nlp, "Japan urged Beijing to release the detained businessman.")
    assert ("02", "JPN") in _keys(evs) and not _by_root(evs, "08")


@pytest.mark.parametrize("text", [
    "Support for the ruling party fell sharply, a poll showed.",  # "support" as a plain noun
    "Since Russia's invasion, bread prices have doubled.",  # a background reference, not an event
    "Prices are expected to rise further next year, the central bank said.",  # "expected" is not a demand
    "The storm destroyed 200 houses, the Indonesian disaster agency said.",  # no named attacker
    "The Polish minister said the talks were useful.",  # reporting verb + a noun without a party
])
def test_look_alikes_are_not_events(nlp, text):
    evs = _events(nlp, text)
    assert not [e for e in evs if e["root_code"] in ("05", "19", "10", "18", "04")], evs


def test_government_speaker_reports_its_own_strike(nlp):
    own = _events(nlp, "Russia's Defence Ministry said missiles destroyed Ukrainian fuel depots overnight.")
    assert ("19", "RUS") in _keys(own)
    victim = _events(nlp, "Ukraine's air force said missiles destroyed Ukrainian fuel depots overnight.")
    assert ("19", "UKR") not in _keys(victim)


def test_offsets_and_keys_on_synthetic_articles(nlp, synthetic_dev):
    """Every event of the synthetic dev articles (read at test time) points at its trigger in the raw body."""
    keys = {"code", "root_code", "label", "trigger", "actor1", "actor2", "location", "date_text", "date", "sentence",
            "start", "end", "attributed_to", "negated", "modality"}
    n = 0
    for art in synthetic_dev:
        for e in _events(nlp, art["body"], art.get("published_at")):
            assert set(e) == keys
            assert art["body"][e["start"]:e["end"]] == e["trigger"]
            assert e["root_code"] == e["code"][:2] and len(e["code"]) == 3
            n += 1
    assert n > 20
