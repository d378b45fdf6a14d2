#!/usr/bin/env python3
"""Near-duplicate throughput and state size on Reuters-21578, beside datasketch's MinHashLSH.

usage: /work/venv/bin/python bench/bench_neardup.py [--runs N] [--limit N] [--state-limit N]

For both systems, one run = fingerprint every story with a body and replay them in (event time, id)
order through an LSH index with the same threshold (query, then insert), on one core. Printed:
median articles per CPU-second of this process over ``--runs`` runs (CPU time, not wall time, so other
jobs on a shared machine do not skew the comparison), the serialized state per article kept in the horizon
(ours: :meth:`NearDuplicateIndex.state_bytes`, fingerprint once + band references; datasketch:
pickled LSH divided by stories held), and pairwise precision/recall on the labelled groups (scored as
in ``tests/quality/neardup_quality.py``: exact hash OR near verdict). datasketch is given the same
5-word shingles and num_perm; its candidates are accepted on estimated Jaccard >= threshold, which is
what MinHashLSH offers (no containment, no verification, no horizon).

The Beam stage's state is measured on the stage itself: its DoFns replay the first ``--state-limit``
Reuters stories (element time = event time, the watermark stepping hourly) with every state cell held
encoded by its coder (``tests/unit/test_neardup_state.py::StageReplay``); printed is the held state
divided by the fingerprints held at homes (the articles of the horizon), sampled every 500 stories once
a horizon has passed, with its split by step. The replay's verdicts are checked against the pure index.
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


def _state_module():
    path = Path(__file__).resolve().parent.parent / "tests" / "unit" / "test_neardup_state.py"
    spec = importlib.util.spec_from_file_location("test_neardup_state", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def beam_stage_state(stories, config, limit):
    """Replay the Beam stage's DoFns on ``stories[:limit]``; returns per-article samples and whether the
    verdicts equal the pure index's."""
    from pipeline.records import KafkaRecord, new_article
    from pipeline.stages.neardup import NearDuplicates

    st = _state_module()
    arts = []
    for i, s in enumerate(stories[:limit]):
        rec = KafkaRecord("reuters", 0, i, s["event_ms"], None, b"", [], i, 0)
        a = new_article(rec, article_id=s["id"], raw_body=s["body"], ingested_at=s["event_ms"], title=s["title"],
                        published_at=s["event_ms"])
        a["body"] = s["body"]
        arts.append(a)
    stage = NearDuplicates(mode="tag", threshold=config.threshold, horizon_seconds=config.horizon_ms / 1000)
    replay = st.StageReplay(stage, seed=1)
    t0 = time.process_time()
    samples = replay.replay(arts, step_ms=3600_000, sample_every=500)
    dt = time.process_time() - t0
    start = arts[0]["published_at"] + config.horizon_ms if arts else 0
    steady = [x for x in samples if x["articles"] and arts[x["fed"] - 1]["published_at"] >= start]
    same = replay.verdicts() == st._index_verdicts(arts, config)
    return steady, same, dt, replay.messages


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
    ap.add_argument("--state-limit", type=int, default=6000,
                    help="Reuters stories replayed through the Beam stage's DoFns to measure its state")
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
                + sum(len(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL)) for m in sigs.values())
                ) / max(1, len(sigs))
    print(f"wirestream NearDuplicateIndex: {statistics.median(ours):,.0f} articles/s (median of {args.runs}); "
          f"state {per_article:,.0f} bytes/article in the horizon (worst sample; median {held:,.0f} stories held; "
          f"fingerprint {fp_bytes:.0f} B + {config.bands} band keys/refs)")
    print(f"datasketch MinHashLSH:         {statistics.median(theirs):,.0f} articles/s (median of {args.runs}); "
          f"state {ds_bytes:,.0f} bytes/article (pickled LSH + MinHash objects, {len(sigs)} held, no horizon)")
    steady, same, dt, messages = beam_stage_state(reuters, config, args.state_limit)
    replayed = max(1, min(len(reuters), args.state_limit))
    beam_bytes = 0.0
    if steady:
        per = [sum(x["held"].values()) / x["articles"] for x in steady]
        worst = steady[per.index(max(per))]
        beam_bytes = max(per)
        split = ", ".join(f"{k} {v / worst['articles']:,.0f}" for k, v in worst["held"].items() if v)
        print(f"wirestream Beam stage:         state {beam_bytes:,.0f} bytes/article in the horizon (worst of "
              f"{len(steady)} samples, median {statistics.median(per):,.0f}; {worst['articles']:,} held: {split}); "
              f"replay of {replayed:,} stories, {messages / replayed:.0f} "
              f"messages/article, verdicts {'equal to' if same else 'DIFFERENT from'} the pure index [{dt:.0f}s]")
    else:
        print("wirestream Beam stage: no steady-state sample (fewer stories than one horizon)")

    res = q.score(q.run_system(all_stories, config), pos, neg)
    ds = q.score(datasketch_links(all_stories, config), pos, neg)
    for name, r in (("wirestream", res), ("datasketch", ds)):
        print(f"{name:10s} labelled groups: precision={r['precision']:.4f} recall={r['recall']:.4f} "
              f"({r['tp']}/{r['gold']}, {r['pred']} predicted pairs, traps merged {r['traps_merged']}/{r['traps']})")
    ok = statistics.median(ours) >= 2000 and per_article <= 1024 and beam_bytes <= 1024 and (not steady or same)
    print("floors (>= 2,000 articles/s, <= 1 KB/article for the index and the Beam stage):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
