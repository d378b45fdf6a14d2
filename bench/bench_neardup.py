#!/usr/bin/env python3
"""Near-duplicate throughput and state size on Reuters-21578, beside datasketch's MinHashLSH.

usage: /work/venv/bin/python bench/bench_neardup.py [--runs N] [--limit N]

For both systems, one run = fingerprint every story with a body and replay them in (event time, id)
order through an LSH index with the same threshold (query, then insert), on one core. Printed:
median articles per CPU-second of this process over ``--runs`` runs (CPU time, not wall time, so other
jobs on a shared machine do not skew the comparison), the serialized state per article kept in the horizon
(ours: :meth:`NearDuplicateIndex.state_bytes`, fingerprint once + band references; datasketch:
pickled LSH divided by stories held), and pairwise precision/recall on the labelled groups (scored as
in ``tests/quality/neardup_quality.py``: exact hash OR near verdict). datasketch is given the same
5-word shingles and num_perm; its candidates are accepted on estimated Jaccard >= threshold, which is
what MinHashLSH offers (no containment, no verification, no horizon).
"""

from __future__ import annotations

import argparse
import importlib.util
import pickle
import statistics
import sys
import time
from pathlib import Path

from pipeline.corpus import shared_dir
from pipeline.neardup import NearDupConfig, NearDuplicateIndex, _WORD, fingerprint
from pipeline.text import content_hash, normalize


def _quality_module():
    path = Path(__file__).resolve().parent.parent / "tests" / "quality" / "neardup_quality.py"
    spec = importlib.util.spec_from_file_location("neardup_quality", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_ours(stories, config):
    t0 = time.process_time()
    index = NearDuplicateIndex(config)
    for s in stories:
        fp = fingerprint(s["id"], s["body"], s["title"], s["event_ms"], config)
        if fp is not None:
            index.process(fp)
    return time.process_time() - t0, index


def _ds_minhash(text, config, MinHash):
    words = _WORD.findall(normalize(text))
    k = config.shingle
    sh = {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))}
    m = MinHash(num_perm=config.num_perm, seed=config.seed)
    m.update_batch([x.encode("utf-8") for x in sh])
    return m


def run_datasketch(stories, config, links=None):
    from datasketch import MinHash, MinHashLSH

    t0 = time.process_time()
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    sigs = {}
    for s in stories:
        m = _ds_minhash(s["body"], config, MinHash)
        best = None
        for c in lsh.query(m):
            j = m.jaccard(sigs[c])
            if j >= config.threshold and (best is None or j > best[0]):
                best = (j, c)
        if links is not None and best is not None:
            links[s["id"]] = links.get(best[1], best[1])
        lsh.insert(s["id"], m)
        sigs[s["id"]] = m
    return time.process_time() - t0, lsh, sigs


def datasketch_links(stories, config):
    """The whole system with datasketch in place of our stage: exact hash, then MinHashLSH."""
    links, exact, kept = {}, {}, []
    for s in sorted(stories, key=lambda s: (s["event_ms"], s["id"])):
        h = content_hash(s["title"], s["body"])
        prev = exact.get(h)
        if prev is not None and s["event_ms"] - prev[0] <= config.horizon_ms:
            links[s["id"]] = links.get(prev[1], prev[1])
            continue
        exact[h] = (s["event_ms"], s["id"])
        kept.append(s)
    near: dict = {}
    run_datasketch(kept, config, near)
    for s in kept:
        links.setdefault(s["id"], near.get(s["id"], s["id"]))
    return {a: links.get(r, r) if r != a else a for a, r in links.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="only the first N Reuters stories (0: all)")
    args = ap.parse_args()
    shared = shared_dir()
    if shared is None:
        print("bench_neardup: ../shared (corpus) not found; set WIRESTREAM_SHARED", file=sys.stderr)
        return 2
    q = _quality_module()
    all_stories, pos, neg = q.load(shared)
    reuters = sorted((s for s in all_stories if s["id"].startswith("reuters-")), key=lambda s: (s["event_ms"], s["id"]))
    if args.limit:
        reuters = reuters[:args.limit]
    config = NearDupConfig()
    print(f"{len(reuters)} Reuters-21578 stories with a body; threshold={config.threshold} num_perm={config.num_perm} "
          f"bands={config.bands}x{config.rows} horizon={config.horizon_ms / 86_400_000:g} days; one core")

    ours, theirs = [], []
    for _ in range(args.runs):
        dt, index = run_ours(reuters, config)
        ours.append(len(reuters) / dt)
        dt2, lsh, sigs = run_datasketch(reuters, config)
        theirs.append(len(reuters) / dt2)
    # State, measured in an untimed replay: serialized bytes held / stories held, every 500 stories.
    index, samples, fp_sizes = NearDuplicateIndex(config), [], []
    for i, s in enumerate(reuters, 1):
        fp = fingerprint(s["id"], s["body"], s["title"], s["event_ms"], config)
        if fp is not None:
            index.process(fp)
            fp_sizes.append(len(fp.to_bytes()))
        if i % 500 == 0 and len(index):
            samples.append((index.state_bytes() / len(index), len(index)))
    per_article = max(b for b, _ in samples)
    held = statistics.median(n for _, n in samples)
    fp_bytes = statistics.mean(fp_sizes)
    ds_bytes = (len(pickle.dumps(lsh, protocol=pickle.HIGHEST_PROTOCOL))
                + sum(len(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL)) for m in sigs.values())) / max(1, len(sigs))
    print(f"wirestream NearDuplicateIndex: {statistics.median(ours):,.0f} articles/s (median of {args.runs}); "
          f"state {per_article:,.0f} bytes/article in the horizon (worst sample; median {held:,.0f} stories held; "
          f"fingerprint {fp_bytes:.0f} B + {config.bands} band keys/refs)")
    print(f"datasketch MinHashLSH:         {statistics.median(theirs):,.0f} articles/s (median of {args.runs}); "
          f"state {ds_bytes:,.0f} bytes/article (pickled LSH + MinHash objects, {len(sigs)} held, no horizon)")

    res = q.score(q.run_system(all_stories, config), pos, neg)
    ds = q.score(datasketch_links(all_stories, config), pos, neg)
    for name, r in (("wirestream", res), ("datasketch", ds)):
        print(f"{name:10s} labelled groups: precision={r['precision']:.4f} recall={r['recall']:.4f} "
              f"({r['tp']}/{r['gold']}, {r['pred']} predicted pairs, traps merged {r['traps_merged']}/{r['traps']})")
    ok = statistics.median(ours) >= 2000 and per_article <= 1024
    print("floors (>= 2,000 articles/s, <= 1 KB/article):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
