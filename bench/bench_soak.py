"""Soak: the unbounded pipeline at a fixed offered rate for a while; end-to-end latency, throughput, memory.

    python bench/bench_soak.py                      # measure capacity, then 10 minutes at half of it
    python bench/bench_soak.py --minutes 3          # shorter
    python bench/bench_soak.py --rate 2.5 --minutes 3 [--bootstrap-servers host:port] [-- extra run options]

Steps:
  1. an embedded broker (or --bootstrap-servers), topics of this run's own;
  2. capacity (unless --rate): a bounded `wirestream run` over --capacity-articles stories, read / seconds;
  3. `wirestream run` unbounded in a subprocess (the local runner: bounded rounds, see pipeline/rounds.py),
     while a producer offers unique stories at the fixed rate (half the capacity) for --minutes;
  4. wait until every offered story is on the sink (or the dead-letter topic), then SIGTERM the job.

Latency of a story = Kafka timestamp of its sink record (set when the pipeline produced it) minus the Kafka
timestamp of its input record (set when this script produced it; the sink record carries it as
origin.timestamp): produce -> record on the sink, on one machine's clock. Near-duplicates are tagged, not
dropped (--near-duplicates tag), so every story reaches the sink. RSS = the job process and its children,
sampled every 2 s; a local round's NLP batch lifts it by 100-250 MB for a few seconds, so the level that
shows growth is the per-minute minimum (between rounds), printed per minute with the per-minute maximum,
and its slope over the second half of the soak (MB/min; ~0 when memory has levelled off).
Stories: Reuters-21578 and the wire corpus from ../shared (each sent once, made unique by a line).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import corpus_articles  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _stories(n: int) -> list:
    arts = corpus_articles(n)
    while len(arts) < n:  # more stories than the corpus: later rounds differ by their marker line
        arts += arts[: n - len(arts)]
    out = []
    for i, a in enumerate(arts[:n]):
        a = dict(a, id=f"soak-{i}-{a.get('id', '')}")
        a["body"] = (a.get("body") or "") + f"\n[soak story {i}]"
        out.append(json.dumps(a).encode())
    return out


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))]


_RSS_EVERY_S = 2.0


def _per_minute(samples, *, after: float):
    """[(minute index, min MB, max MB)] of the RSS samples taken after ``after`` seconds (warm)."""
    out: dict = {}
    for t, mb in samples:
        if t >= after and mb == mb:  # skip NaN (process gone)
            m = int(t // 60)
            lo, hi = out.get(m, (mb, mb))
            out[m] = (min(lo, mb), max(hi, mb))
    return [(m, lo, hi) for m, (lo, hi) in sorted(out.items())]


def _slope(points) -> float:
    """Least-squares slope of [(x, y)]."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def _rss_mb(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
        return sum(x.memory_info().rss for x in procs if x.is_running()) / 1e6
    except psutil.NoSuchProcess:
        return float("nan")


class _SinkReader(threading.Thread):
    """Reads the sink and dead-letter topics as they fill: latency per story."""

    def __init__(self, bs, topics):
        super().__init__(daemon=True)
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.consumer = Consumer({"bootstrap.servers": bs, "group.id": f"soak-reader-{uuid.uuid4().hex[:6]}",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        md = self.consumer.list_topics(timeout=30).topics
        # assigned, not subscribed: no group join (which takes ~23 s on tansu) delays the reading
        self.consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in md[t].partitions])
        self.sink_times: list = []
        self.topics = topics
        self.latency_ms: dict = {}  # story offset key -> latency
        self.first_sink_at = None
        self.dead = 0
        self.stop = threading.Event()

    def run(self):
        from pipeline.avro import DEAD_LETTER, ENRICHED_ARTICLE, SingleObjectDecoder

        dec = SingleObjectDecoder(ENRICHED_ARTICLE, DEAD_LETTER)
        while not self.stop.is_set():
            msg = self.consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            rec = dec(msg.value())
            origin = rec["origin"]
            key = (origin["partition"], origin["offset"])
            if msg.topic() == self.topics[1]:
                self.dead += 1
                self.latency_ms.setdefault(key, None)
                continue
            sink_ts = msg.timestamp()[1]
            src = origin["timestamp"]
            src_ms = int(src.timestamp() * 1000) if hasattr(src, "timestamp") else src
            if self.first_sink_at is None:
                self.first_sink_at = time.monotonic()
            self.sink_times.append(sink_ts)
            self.latency_ms.setdefault(key, sink_ts - src_ms)
        self.consumer.close()


def _capacity(bs, args, extra) -> float:
    topic = f"soak-cap-{uuid.uuid4().hex[:8]}"
    from confluent_kafka import Producer

    from pipeline.admin import TopicSpec, ensure_topics

    ensure_topics({"bootstrap.servers": bs}, [TopicSpec(topic, args.partitions), TopicSpec(topic + "-out", 2),
                                             TopicSpec(topic + "-dead", 1)])
    p = Producer({"bootstrap.servers": bs})
    for v in _stories(args.capacity_articles):
        p.produce(topic, v)
        p.poll(0)
    p.flush(60)
    r = subprocess.run([sys.executable, "-m", "pipeline", "run", "--bootstrap-servers", bs, "--input-topic", topic,
                        "--output-topic", topic + "-out", "--dead-letter-topic", topic + "-dead", "--group-id", topic,
                        "--bounded", "--near-duplicates", "tag", *extra], capture_output=True, text=True, cwd=ROOT)
    line = next((ln for ln in r.stdout.splitlines() if "wirestream summary" in ln), None)
    if r.returncode != 0 or line is None:
        sys.exit(f"capacity run failed ({r.returncode}):\n{r.stderr[-3000:]}")
    read = int(line.split(" read=")[1].split()[0])
    secs = float(line.rsplit(" in ", 1)[1].rstrip("s"))
    print(f"capacity: {line.split('summary: ')[1]}", flush=True)
    return read / secs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="How long to offer load (default 10)")
    ap.add_argument("--rate", type=float, default=None, help="Stories per second (default: half the capacity)")
    ap.add_argument("--capacity-articles", type=int, default=300, help="Stories in the capacity run")
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--bootstrap-servers", default=None, help="Use this broker instead of an embedded one")
    args, extra = ap.parse_known_args(argv)
    extra = [e for e in extra if e != "--"]

    broker = None
    if args.bootstrap_servers:
        bs = args.bootstrap_servers
    else:
        from pipeline.broker import EmbeddedBroker

        broker = EmbeddedBroker().start()
        bs = broker.bootstrap_servers
    try:
        rate = args.rate if args.rate else _capacity(bs, args, extra) / 2
        print(f"offered rate: {rate:.2f} stories/s for {args.minutes:g} min "
              f"({'given' if args.rate else 'half the measured capacity'})", flush=True)
        return _soak(bs, rate, args, extra)
    finally:
        if broker is not None:
            broker.stop()


def _soak(bs, rate, args, extra) -> int:
    from confluent_kafka import Producer

    from pipeline.admin import TopicSpec, ensure_topics

    tag = uuid.uuid4().hex[:8]
    t_in, t_out, t_dead = f"soak-in-{tag}", f"soak-out-{tag}", f"soak-dead-{tag}"
    ensure_topics({"bootstrap.servers": bs}, [TopicSpec(t_in, args.partitions), TopicSpec(t_out, 2),
                                             TopicSpec(t_dead, 1)])
    n = int(rate * args.minutes * 60)
    stories = _stories(n)
    log = open(Path(tempfile.gettempdir()) / f"wirestream-soak-{tag}.log", "wb")
    job = subprocess.Popen([sys.executable, "-m", "pipeline", "--log-level", "INFO", "run", "--bootstrap-servers",
                            bs, "--input-topic", t_in, "--output-topic", t_out, "--dead-letter-topic", t_dead,
                            "--group-id", f"soak-{tag}", "--near-duplicates", "tag", *extra],
                           stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    reader = _SinkReader(bs, [t_out, t_dead])
    reader.start()
    producer = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    rss = [(0.0, _rss_mb(job.pid))]
    warm_rss = None  # RSS once the first story is on the sink (models loaded, first round done)
    t0 = time.monotonic()
    next_rss = t0 + _RSS_EVERY_S
    try:
        for i, v in enumerate(stories):  # story i is due at t0 + i / rate
            due = t0 + i / rate
            while True:
                now = time.monotonic()
                if now >= next_rss:
                    rss.append((now - t0, _rss_mb(job.pid)))
                    next_rss += _RSS_EVERY_S
                if warm_rss is None and reader.first_sink_at is not None:
                    warm_rss = (now - t0, _rss_mb(job.pid))
                if now >= due:
                    break
                producer.poll(min(0.05, due - now))
            producer.produce(t_in, v)
            producer.poll(0)
            if job.poll() is not None:
                sys.exit(f"the job exited ({job.returncode}) during the soak; log: {log.name}")
        producer.flush(60)
        offered_s = time.monotonic() - t0
        drain_deadline = time.monotonic() + max(120.0, 10 / rate)
        while len(reader.latency_ms) < n and time.monotonic() < drain_deadline:
            if job.poll() is not None:
                break
            time.sleep(0.5)  # poll interval while the sink catches up
            if time.monotonic() >= next_rss:
                rss.append((time.monotonic() - t0, _rss_mb(job.pid)))
                next_rss += _RSS_EVERY_S
        drained_s = time.monotonic() - t0
        rss.append((drained_s, _rss_mb(job.pid)))
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
        reader.stop.set()
        reader.join(10)
        log.close()
    lat = [v / 1000 for v in reader.latency_ms.values() if v is not None]
    written = len(lat)
    steady = [reader.latency_ms[k] / 1000 for k in sorted(reader.latency_ms)
              if reader.latency_ms[k] is not None][written // 2:]
    rounds = sum(1 for ln in open(log.name, errors="replace") if "pipeline.rounds: round " in ln and " read=" in ln)
    failed = sum(1 for ln in open(log.name, errors="replace") if " failed after " in ln)
    print(f"soak: offered {n} stories at {rate:.2f}/s over {offered_s:.0f}s; on the sink {written}, dead-lettered "
          f"{reader.dead}, missing {n - len(reader.latency_ms)} after {drained_s:.0f}s")
    if lat:
        print(f"  end-to-end latency (produce -> sink record): p50 {statistics.median(lat):.1f}s  "
              f"p99 {_pct(lat, 0.99):.1f}s  max {max(lat):.1f}s; second half only: p50 "
              f"{statistics.median(steady):.1f}s p99 {_pct(steady, 0.99):.1f}s")
    span = (max(reader.sink_times) - min(reader.sink_times)) / 1000 if len(reader.sink_times) > 1 else float("nan")
    print(f"  throughput: {written / span:.2f} stories/s written between the first and last sink record "
          f"({written / drained_s:.2f}/s over the whole run, start-up included; offered {n / offered_s:.2f}/s); "
          f"{rounds} rounds, {failed} failed")
    warm_rss = warm_rss or rss[0]
    print(f"  RSS of the job: at launch {rss[0][1]:.0f} MB, at the first sink record ({warm_rss[0]:.0f}s) "
          f"{warm_rss[1]:.0f} MB, end {rss[-1][1]:.0f} MB, max {max(r for _t, r in rss):.0f} MB; log: {log.name}")
    per_min = _per_minute(rss, after=warm_rss[0])
    if per_min:
        print("  RSS per minute, min/max MB (min = between rounds): "
              + "  ".join(f"m{m + 1} {lo:.0f}/{hi:.0f}" for m, lo, hi in per_min))
        half = per_min[len(per_min) // 2:]
        if len(half) >= 2:
            slope = _slope([(m, lo) for m, lo, _hi in half])
            print(f"  RSS trend of the per-minute minima over the second half (m{half[0][0] + 1}-m{half[-1][0] + 1}): "
                  f"{slope:+.1f} MB/min ({slope / max(rate * 60, 1e-9) * 1000:+.0f} kB per story)")
    return 0 if written + reader.dead == n else 1


if __name__ == "__main__":
    sys.exit(main())
