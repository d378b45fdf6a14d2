"""Bad input end to end: the fixed corpus of nasties through the real broker and the whole pipeline.

Every message must come out on the sink or the dead-letter topic (with a reason), the run must balance,
and while it runs (in this process, on the local runner) nothing may connect anywhere but loopback or open
a file outside the interpreter, the repository and the temp dir (the watchdog in tests/guards.py).
A 20 MB message travels through the broker too: its dead letter keeps the first MiB.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.run import run_job

from ..guards import WATCH
from ..unit.test_bad_input import _EXPECTED, nasty_corpus
from .kafka_helpers import produce
from .proc_helpers import Tail, origins, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_nasty_corpus_end_to_end(broker, topic_names):
    bs = broker.bootstrap_servers
    names = topic_names
    cases = nasty_corpus()
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(names["input"], 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bs, acks="all", max_request_size=32 * 1024 * 1024)
    for _name, value in cases:
        producer.send(names["input"], value=value).get(timeout=60)
    producer.close()
    produce(bs, names["output"], [])
    produce(bs, names["dead"], [], partitions=1)
    produce(bs, names["dups"], [])

    WATCH.events.clear()
    with WATCH.armed_for(300, alarm=False):
        summary = run_job(["--bootstrap-servers", bs, "--input-topic", names["input"], "--output-topic",
                           names["output"], "--dead-letter-topic", names["dead"], "--group-id", names["group"],
                           "--duplicates-topic", names["dups"], "--bounded"])
    # Beam itself pickles DoFns and execs generated code, so here only network and file events count
    # (the unit test holds the stages to the stricter rule)
    forbidden = [e for e in WATCH.events if e[0] in ("open", "connect", "getaddrinfo")]

    out, dead, dups = Tail(bs, names["output"]), Tail(bs, names["dead"]), Tail(bs, names["dups"])
    wait_until(lambda: len(out.poll()) + len(dead.poll()) + len(dups.poll())
               >= summary.written + summary.dead_lettered + summary.duplicates, 30, "the run's records on the topics")
    sink = {o[0][1]: o[2] for o in origins(out.messages, "enriched_article")}
    letters = {o[0][1]: o[2] for o in origins(dead.messages, "dead_letter")}
    copies = {o[0][1]: o[2] for o in origins(dups.messages, "enriched_article")}
    for t in (out, dead, dups):
        t.close()
    outcome = {}
    for offset, (name, _value) in enumerate(cases):
        if offset in sink:
            outcome[name] = "clean"
        elif offset in copies:
            outcome[name] = f"duplicate of {copies[offset]['dedup']['duplicate_of']}"
        elif offset in letters:
            d = letters[offset]
            outcome[name] = f"dead:{d['stage']}:{d['error_type']}"
        else:
            outcome[name] = "LOST"
    print(f"\nbad input end to end: {len(cases)} messages, {summary.line()}")
    for name, o in outcome.items():
        print(f"  {name:45s} -> {o}")
    print("  outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(Counter(outcome.values()).items())))
    assert not forbidden, forbidden
    assert summary.balanced and summary.read == len(cases), summary.line()
    assert "LOST" not in outcome.values()
    for d in letters.values():
        assert len(d["reason"]) > 10 and d["stage"] and d["error_type"]
        assert d["value"] is not None or d["error_type"] == "EmptyMessage"
    for name, want in _EXPECTED.items():
        # same text as an earlier case (UTF-32 vs UTF-16...) is an exact duplicate of it: it was clean too
        got = "clean" if outcome[name].startswith("duplicate of") else outcome[name]
        assert got.startswith(want), (name, outcome[name])
    for rec in sink.values():
        assert "root:" not in rec["body"] and "SCRIPT-RAN" not in rec["body"]
