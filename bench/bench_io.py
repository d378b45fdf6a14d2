"""I/O-path benchmark: the pipeline with every enrichment stage off vs a hand-written confluent-kafka loop.

Both read the same topic of N real articles (Reuters-21578 + wire articles) from the embedded broker and
write to a fresh topic. The hand-written loop is consume -> json.loads -> json.dumps -> produce; the
pipeline does parse, validation, exact dedup (keyed state), Avro encoding, delivery-checked writes and
offset commits after write. Prints articles/s (median of --runs), the ratio, and peak RSS.

    python bench/bench_io.py --articles 20000 --runs 3
"""

from __future__ import annotations

import argparse
import time
import uuid

from _common import PeakRSS, corpus_articles, dumps, median

from pipeline.admin import TopicSpec, ensure_topics
from pipeline.broker import EmbeddedBroker


def produce(bs: str, topic: str, values, partitions: int) -> None:
    from confluent_kafka import Producer

    ensure_topics({"bootstrap.servers": bs}, [TopicSpec(topic, partitions)])
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "enable.idempotence": True})
    for v in values:
        while True:
            try:
                p.produce(topic, v)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0


def handwritten(bs: str, topic: str, out_topic: str, n: int) -> float:
    """consume -> json -> produce until n messages are through; returns seconds."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    ensure_topics({"bootstrap.servers": bs}, [TopicSpec(out_topic, 2)])
    t0 = time.perf_counter()
    c = Consumer({"bootstrap.servers": bs, "group.id": f"hand-{uuid.uuid4().hex}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "enable.idempotence": True,
                  "compression.type": "lz4"})
    seen = 0
    while seen < n:
        for m in c.consume(500, timeout=1.0):
            if m.error():
                continue
            obj = __import__("json").loads(m.value())
            out = dumps(obj)
            while True:
                try:
                    p.produce(out_topic, out, key=(obj.get("id") or "").encode())
                    break
                except BufferError:
                    p.poll(0.1)
            seen += 1
        p.poll(0)
    assert p.flush(60) == 0
    c.commit(asynchronous=False) if False else None
    c.close()
    return time.perf_counter() - t0


def pipeline_run(bs: str, topic: str, out_topic: str, extra) -> tuple:
    from pipeline.run import run_job

    ensure_topics({"bootstrap.servers": bs}, [TopicSpec(out_topic, 2), TopicSpec(out_topic + ".dl", 1)])
    t0 = time.perf_counter()
    s = run_job(["--bootstrap-servers", bs, "--input-topic", topic, "--output-topic", out_topic,
                 "--dead-letter-topic", out_topic + ".dl", "--group-id", f"bench-{uuid.uuid4().hex}",
                 "--bounded", "--start", "earliest", "--no-boilerplate", "--no-near-dedup", "--no-nlp", *extra])
    return time.perf_counter() - t0, s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=4)
    args, extra = ap.parse_known_args()
    arts = corpus_articles(args.articles)
    values = [dumps(a) for a in arts]
    mb = sum(map(len, values)) / 1e6
    with EmbeddedBroker() as broker:
        bs = broker.bootstrap_servers
        produce(bs, "bench-in", values, args.partitions)
        print(f"{len(values)} articles ({mb:.1f} MB) in a {args.partitions}-partition topic")
        hand, pipe, rss = [], [], []
        for i in range(args.runs):
            hand.append(handwritten(bs, "bench-in", f"hand-out-{i}", len(values)))
            with PeakRSS() as peak:
                secs, summary = pipeline_run(bs, "bench-in", f"pipe-out-{i}", extra)
            pipe.append(secs)
            rss.append(peak.peak_total)
            assert summary.balanced and summary.read == len(values), summary.line()
            print(f"  run {i + 1}: hand-written {len(values) / hand[-1]:,.0f} art/s, "
                  f"pipeline {len(values) / secs:,.0f} art/s ({summary.runner}), "
                  f"peak RSS {peak.peak_total / 2**20:,.0f} MiB")
        h, p = len(values) / median(hand), len(values) / median(pipe)
        print(f"median: hand-written loop {h:,.0f} articles/s, pipeline I/O path {p:,.0f} articles/s, "
              f"ratio {p / h:.2f}x (target >= 0.5x); pipeline peak RSS {median(rss) / 2**20:,.0f} MiB "
              f"(includes runner start-up: {len(values)} articles)")


if __name__ == "__main__":
    main()
