#!/usr/bin/env python3
"""Throughput of the boilerplate stripper alone (pure core, one core), next to the cost of reading.

Articles: all of ``corpus/wire_articles.jsonl`` (bodies; HTML items skipped) plus the first
``--reuters`` Reuters-21578 stories. Each run: parse the JSON lines (timed: the bare reading cost), then
strip every body with a fresh per-publisher memory in file order, title passed as the stage does (timed).
Prints the median over runs, by wall clock and by this process's CPU time (the CPU figure is the one
that holds when other jobs share the core). Floor: >= 2,000 articles/s for the stripper, CPU time.
Run it pinned to one core: ``taskset -c 0 python bench/bench_boilerplate.py``.

usage: python bench/bench_boilerplate.py [--runs 5] [--reuters 3000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

from pipeline.boilerplate import PublisherMemory, default_rules, strip
from pipeline.corpus import shared_dir

FLOOR = 2000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reuters", type=int, default=3000)
    args = ap.parse_args()
    shared = shared_dir()
    if shared is None:
        print("../shared (corpus) not found beside the repository; set WIRESTREAM_SHARED", file=sys.stderr)
        return 2
    with open(shared / "corpus" / "wire_articles.jsonl", encoding="utf-8") as fh:
        wire_lines = [ln for ln in fh if ln.strip()]
    with open(shared / "corpus" / "reuters21578.jsonl", encoding="utf-8") as fh:
        reuters_lines = [ln for ln in itertools.islice(fh, args.reuters) if ln.strip()]
    lines = wire_lines + reuters_lines
    rules = default_rules()
    read_rates, strip_rates, cpu_rates = [], [], []
    n = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        arts = [json.loads(ln) for ln in lines]
        t1 = time.perf_counter()
        arts = [a for a in arts if a.get("body")]
        n = len(arts)
        mems: dict[str, PublisherMemory] = {}
        t2, c2 = time.perf_counter(), time.process_time()
        for a in arts:
            pub = a.get("publisher") or ""
            mem = mems.get(pub)
            if mem is None:
                mem = mems[pub] = PublisherMemory()
            strip(a["body"], pub, memory=mem, rules=rules, article_key=a.get("title") or a["id"],
                  title=a.get("title"))
        t3, c3 = time.perf_counter(), time.process_time()
        read_rates.append(len(lines) / (t1 - t0))
        strip_rates.append(n / (t3 - t2))
        cpu_rates.append(n / (c3 - c2))
    chars = sum(len(a["body"]) for a in arts)
    rate = statistics.median(cpu_rates)
    read = statistics.median(read_rates)
    print(f"articles: {n} ({chars / n:.0f} chars mean), runs: {args.runs}, one core")
    print(f"read (json parse): {read:,.0f} articles/s median")
    print(f"strip (rules + cues + memory + layout), wall: {statistics.median(strip_rates):,.0f} articles/s median "
          f"(min {min(strip_rates):,.0f}, max {max(strip_rates):,.0f})")
    print(f"strip, CPU time: {rate:,.0f} articles/s median (min {min(cpu_rates):,.0f}, max {max(cpu_rates):,.0f}); "
          f"read + strip: {1 / (1 / read + 1 / rate):,.0f} articles/s; floor {FLOOR:,.0f} -> "
          f"{'met' if rate >= FLOOR else 'MISSED'}")
    return 0 if rate >= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
