"""End to end against the real broker: real corpus articles and malformed messages in, Avro out.

The sink and dead-letter topics are read back with kafka-python (an independent client) and decoded with
the schemas/*.avsc files directly.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from datetime import datetime

import fastavro
import pytest

from pipeline.corpus import read_jsonl
from pipeline.run import run_job

from .kafka_helpers import committed, decode_single_object, load_avsc, produce, read_all

pytestmark = pytest.mark.integration

MALFORMED = {
    b"plain text, not an article": "InvalidJson",
    b'["a", "list"]': "WrongShape",
    b'{"id": "no-body", "title": "A headline only"}': "MissingBody",
    b'{"id": "typed", "body": 42}': "WrongFieldType",
    b'{"id": "bad-utf8", "body": "caf\xe9"}': "InvalidEncoding",
    b"": "EmptyMessage",
}


def _corpus_messages(shared):
    wire = [a for a in read_jsonl(shared / "corpus" / "wire_articles.jsonl") if a.get("body")][:40]
    reuters = {a["id"]: a for a in read_jsonl(shared / "corpus" / "reuters21578.jsonl")}
    groups = [g for g in read_jsonl(shared / "corpus" / "near_duplicates.jsonl") if g["kind"] == "exact_duplicate"]
    chosen, expected_dups = [], 0
    for g in groups[:8]:
        members = [reuters[i] for i in g["ids"] if i in reuters]
        times = [datetime.fromisoformat(m["published_at"].replace("Z", "+00:00")) for m in members]
        if (max(times) - min(times)).days >= 7:
            continue
        chosen += members
        expected_dups += len(members) - 1
    plain = [a for a in list(reuters.values())[:60] if a.get("body")]
    articles = wire + chosen + plain
    seen = set()
    unique = []
    for a in articles:  # the plain slice may overlap a chosen group
        if a["id"] not in seen:
            seen.add(a["id"])
            unique.append(a)
    fields = ("id", "publisher", "url", "title", "published_at", "body", "html")
    values = [json.dumps({k: a.get(k) for k in fields}).encode() for a in unique]
    return unique, values, expected_dups


def _run(broker, names, *extra):
    return run_job(["--bootstrap-servers", broker.bootstrap_servers, "--input-topic", names["input"],
                    "--output-topic", names["output"], "--dead-letter-topic", names["dead"],
                    "--group-id", names["group"], "--bounded", "--no-boilerplate", "--no-near-dedup", "--no-nlp",
                    *extra])


def test_corpus_and_garbage_are_all_accounted_for(broker, topic_names, shared, tmp_path):
    articles, values, expected_dups = _corpus_messages(shared)
    redelivered = values[:3]  # Kafka redeliveries: the same bytes again
    inputs = values + redelivered + list(MALFORMED)
    produce(broker.bootstrap_servers, topic_names["input"], inputs)
    produce(broker.bootstrap_servers, topic_names["output"], [])
    produce(broker.bootstrap_servers, topic_names["dead"], [], partitions=1)

    # stages off: records travel as lists from read to write (Config.batched_io); --output-file unbatches
    summary = _run(broker, topic_names, "--output-file", str(tmp_path / "replay"))

    assert summary.read == len(inputs)
    assert summary.balanced, summary.line()
    assert summary.duplicates == expected_dups + len(redelivered)
    assert summary.dead_lettered == len(MALFORMED)

    enriched = load_avsc("enriched_article")
    out = [decode_single_object(m.value, enriched) for m in read_all(broker.bootstrap_servers, topic_names["output"])]
    assert len(out) == summary.written == len(articles) - expected_dups
    assert {r["article_id"] for r in out} <= {a["id"] for a in articles}
    by_id = {a["id"]: a for a in articles}
    for r in out:
        assert r["body"] == by_id[r["article_id"]]["body"]  # stages off: the body passes untouched
        assert r["origin"]["topic"] == topic_names["input"]
    with_file = []
    for path in sorted(tmp_path.glob("replay*.avro")):
        with open(path, "rb") as f:
            with_file += list(fastavro.reader(f))
    assert sorted(r["article_id"] for r in with_file) == sorted(r["article_id"] for r in out)
    msgs = read_all(broker.bootstrap_servers, topic_names["output"])
    headers = dict(msgs[0].headers)
    assert headers["content-type"] == b"application/vnd.wirestream.enriched_article+avro"
    assert {m.key.decode() for m in msgs} == {r["article_id"] for r in out}

    dead_schema = load_avsc("dead_letter")
    dead = [decode_single_object(m.value, dead_schema) for m in read_all(broker.bootstrap_servers, topic_names["dead"])]
    assert Counter(d["error_type"] for d in dead) == Counter(MALFORMED.values())
    for d in dead:
        assert d["value"] in MALFORMED or d["value"] is None
        assert MALFORMED[d["value"] or b""] == d["error_type"]
        assert d["origin"]["topic"] == topic_names["input"] and d["origin"]["offset"] >= 0
        assert d["stage"] == "parse" and len(d["reason"]) > 20

    # every input offset is committed: a restart resumes after them
    offsets = committed(broker.bootstrap_servers, topic_names["group"], topic_names["input"])
    ends = Counter(m.partition for m in read_all(broker.bootstrap_servers, topic_names["input"]))
    assert offsets == {p: ends[p] for p in offsets}


def test_restart_resumes_from_committed_offsets(broker, topic_names):
    first = [json.dumps({"id": f"a{i}", "title": f"Story {i}", "body": f"Body number {i}.\nSecond line."}).encode()
             for i in range(5)]
    produce(broker.bootstrap_servers, topic_names["input"], first)
    gc_before = (gc.get_threshold(), gc.get_freeze_count())
    s1 = _run(broker, topic_names)
    assert (s1.read, s1.written) == (5, 5)
    # an in-process run tunes the collector for itself (pipeline.tuning.quiet_collector) and leaves it as it was
    assert (gc.get_threshold(), gc.get_freeze_count()) == gc_before
    again = _run(broker, topic_names)
    assert again.read == 0  # nothing new: committed offsets are at the end
    more = [json.dumps({"id": "b1", "body": "A new story."}).encode()]
    produce(broker.bootstrap_servers, topic_names["input"], more)
    s2 = _run(broker, topic_names)
    assert (s2.read, s2.written) == (1, 1)
    ids = [decode_single_object(m.value, load_avsc("enriched_article"))["article_id"]
           for m in read_all(broker.bootstrap_servers, topic_names["output"])]
    assert sorted(ids) == ["a0", "a1", "a2", "a3", "a4", "b1"]
