"""All stages on, through the real broker: the seed-style Moscow Times article and two outlets' copies.

Asserts what issues 3, 4 and 5 promise end to end: the donation appeal is cut with an audit whose offsets
point into the raw body, the three copies leave as one record, and the agencies, the Kremlin spokesman
and the parade events are tagged. The seed text is read from ../shared (never copied into the repo).
"""

from __future__ import annotations

import json

import pytest

from pipeline.run import run_job

from .kafka_helpers import decode_single_object, load_avsc, produce, read_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APPEAL_START = "A Message from The Moscow Times:"


@pytest.fixture(scope="module")
def seed(shared):
    path = next((shared / "seeds").glob("*.txt"))
    return path.read_text(encoding="utf-8")


def _copies(seed: str) -> list[dict]:
    story = seed[: seed.index(APPEAL_START)].rstrip("\n").split("\n")
    b_body = "\n".join(story[:-2] + ["Sign up for our daily briefing and get the news in your inbox."])
    c_body = "\n".join(["Share this story"] + story[:6] + story[7:-1] + ["Read more: Victory Day in pictures"])
    return [
        {"id": "seed-moscow-times", "publisher": "The Moscow Times", "title":
         "Russia in Talks With France Over Leaders Attending Victory Parade", "published_at": "2020-05-28T12:00:00Z",
         "language": "en", "body": seed},
        {"id": "copy-b", "publisher": "Baltic Wire Digest", "title": "Kremlin sounds out France on June 24 parade",
         "published_at": "2020-05-28T15:30:00Z", "language": "en", "body": b_body},
        {"id": "copy-c", "publisher": "Steppe Observer Online", "title": "Moscow re-invites leaders to parade",
         "published_at": "2020-05-29T08:00:00Z", "language": "en", "body": c_body},
    ]


def test_seed_article_and_its_copies(broker, topic_names, seed):
    copies = _copies(seed)
    produce(broker.bootstrap_servers, topic_names["input"], [json.dumps(c).encode() for c in copies])
    summary = run_job(["--bootstrap-servers", broker.bootstrap_servers, "--input-topic", topic_names["input"],
                       "--output-topic", topic_names["output"], "--dead-letter-topic", topic_names["dead"],
                       "--duplicates-topic", topic_names["dups"], "--group-id", topic_names["group"],
                       "--bounded", "--start", "earliest"])
    assert summary.balanced and (summary.read, summary.written, summary.duplicates) == (3, 1, 2), summary.line()

    schema = load_avsc("enriched_article")
    out = [decode_single_object(m.value, schema) for m in read_all(broker.bootstrap_servers, topic_names["output"])]
    assert [r["article_id"] for r in out] == ["seed-moscow-times"]
    rec = out[0]

    # boilerplate: the appeal is gone, the story intact, the audit points into the raw body
    appeal_at = seed.index(APPEAL_START)
    assert rec["body"].rstrip("\n") == seed[:appeal_at].rstrip("\n")
    cuts = rec["boilerplate"]
    assert cuts and all(c["kind"] == "donation_appeal" for c in cuts)
    assert all(seed[c["start"]:c["end"]] == c["text"] for c in cuts)
    assert min(c["start"] for c in cuts) == appeal_at and max(c["end"] for c in cuts) == len(seed)
    assert "Remind me later." in cuts[-1]["text"]

    # attributions: the two agencies as channels, Peskov as a person source
    by_source = {(a["source"], a["kind"]) for a in rec["attributions"]}
    assert {("TASS", "news_agency"), ("RIA Novosti", "news_agency"), ("Dmitry Peskov", "person")} <= by_source
    tass = next(a for a in rec["attributions"] if a["source"] == "TASS")
    assert tass["descriptor"] == "state-run" and seed[tass["start"]:tass["end"]] == tass["text"]

    # events: Russia with France (03/04/05 family), Putin's announcement (01), one reported by TASS
    events = rec["events"]
    assert any(e["root_code"] in ("03", "04", "05") and e["actor1"]["country"] == "RUS"
               and (e["actor2"] or {}).get("country") == "FRA" for e in events)
    assert any(e["root_code"] == "01" and "Putin" in e["actor1"]["text"] for e in events)
    assert any(e["attributed_to"] == "TASS" for e in events)
    assert all(seed[e["start"]:e["end"]] == e["trigger"] for e in events)

    # the copies: dropped as near-duplicates of the seed, on the duplicates topic with the verdict
    dups = [decode_single_object(m.value, schema) for m in read_all(broker.bootstrap_servers, topic_names["dups"])]
    assert sorted(d["article_id"] for d in dups) == ["copy-b", "copy-c"]
    assert all(d["dedup"]["duplicate_of"] == "seed-moscow-times" and d["dedup"]["story_id"] == "seed-moscow-times"
               and 0.5 <= d["dedup"]["similarity"] <= 1 for d in dups)
