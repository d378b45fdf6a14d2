#!/usr/bin/env python3
"""Throughput of the NLP stage's pure core vs bare ``nlp.pipe`` with the full default model.

Same articles, same run, single process: N wire articles + M Reuters-21578 bodies from ../shared/corpus.

* baseline: ``spacy.load(model)`` with every default component, ``list(nlp.pipe(texts))``;
* stage: :func:`pipeline.nlp.model.load_model` (pruned) + ``pipe_texts`` + ``extract_pieces`` per article
  (exactly what the Beam DoFn does, minus Beam).

Prints the median articles/s of ``--runs`` runs of each, their ratio (floor 1.0x, aim 1.5x) and the
peak RSS of the process.

usage: python bench/bench_nlp.py [--wire 200] [--reuters 100] [--runs 3] [--spacy-model NAME]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import sys
import time

from pipeline.corpus import read_jsonl, shared_dir
from pipeline.nlp.extract import extract_pieces, prepare_text
from pipeline.nlp.model import DEFAULT_MODELS, load_model, pipe_texts


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wire", type=int, default=200, help="wire articles to use")
    ap.add_argument("--reuters", type=int, default=100, help="Reuters-21578 bodies to use")
    ap.add_argument("--runs", type=int, default=3, help="runs of each variant (median reported)")
    ap.add_argument("--spacy-model", default=None, help="model for both variants (default: installed default)")
    args = ap.parse_args(argv)
    shared = shared_dir()
    if shared is None:
        print("../shared (corpus) not found; set WIRESTREAM_SHARED", file=sys.stderr)
        return 2
    wire = [a for a in read_jsonl(shared / "corpus" / "wire_articles.jsonl") if a.get("body")][:args.wire]
    reuters = list(itertools.islice((a for a in read_jsonl(shared / "corpus" / "reuters21578.jsonl")
                                     if a.get("body") and len(a["body"]) > 300), args.reuters))
    arts = wire + reuters
    chars = sum(len(a["body"]) for a in arts)
    print(f"{len(arts)} articles ({len(wire)} wire + {len(reuters)} Reuters), {chars / len(arts):.0f} chars avg")

    import importlib.util

    import spacy

    name = args.spacy_model or next(m for m in DEFAULT_MODELS if importlib.util.find_spec(m))
    full = spacy.load(name)
    pruned = load_model(name)
    print(f"baseline components: {full.pipe_names}\nstage components:    {pruned.pipe_names}")
    texts = [a["body"] for a in arts]

    def baseline() -> None:
        for _ in full.pipe(texts, batch_size=16):
            pass

    def stage() -> None:
        items = [(prepare_text(a["body"]), a) for a in arts]
        for pieces, a in pipe_texts(pruned, items, batch_size=16):
            extract_pieces(pieces, published_at=a.get("published_at"))

    stage()  # warm-up (lexicons, vectors)
    baseline()
    rates: dict[str, list[float]] = {"baseline": [], "stage": []}
    for _ in range(args.runs):
        for label, fn in (("baseline", baseline), ("stage", stage)):
            t = time.perf_counter()
            fn()
            rates[label].append(len(arts) / (time.perf_counter() - t))
    b, s = statistics.median(rates["baseline"]), statistics.median(rates["stage"])
    print(f"bare nlp.pipe (full {name}): {b:.1f} articles/s  runs={[round(x, 1) for x in rates['baseline']]}")
    print(f"NLP stage (pruned + extract): {s:.1f} articles/s  runs={[round(x, 1) for x in rates['stage']]}")
    print(f"ratio stage/baseline: {s / b:.2f}x (floor 1.0x, aim 1.5x)")
    print(f"peak RSS: {_peak_rss_mb():.0f} MB (both models loaded in this process)")
    return 0 if s / b >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
