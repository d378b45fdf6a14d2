"""End-to-end quality: the whole pipeline over every labelled dev article, scored by ../shared/tools/score_dev.py.

Starts the embedded broker, produces the labelled articles (corpus ids from ../shared/corpus, the seed,
the synthetic set) as raw JSON, runs the pipeline bounded with every stage on (near-duplicates tagged, not
dropped, so every article is scored), reads the sink back with `wirestream consume`'s decoder, writes the
decoded records as JSON lines and runs the shared scorer on them. The per-stage scripts in this folder
score each stage alone; this one checks that the numbers hold when the stages feed each other.

    python tests/quality/pipeline_quality.py [--keep OUT.jsonl]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.admin import TopicSpec, ensure_topics
from pipeline.broker import EmbeddedBroker
from pipeline.cli import _json_default, decode_record, iter_topic, produce_file
from pipeline.corpus import read_jsonl, shared_dir
from pipeline.run import run_job

_FIELDS = ("id", "publisher", "url", "title", "published_at", "language", "body", "html")


def labelled_articles(shared: Path) -> list[dict]:
    gold = shared / "gold"
    wanted = set()
    for name in ("boilerplate_dev.jsonl", "attributions_dev.jsonl", "events_dev.jsonl"):
        wanted |= {g["id"] for g in read_jsonl(gold / name)}
    out, seen = [], set()
    for name in ("wire_articles.jsonl", "reuters21578.jsonl"):
        for a in read_jsonl(shared / "corpus" / name):
            if a["id"] in wanted and a["id"] not in seen:
                seen.add(a["id"])
                out.append({k: a.get(k) for k in _FIELDS if a.get(k) is not None})
    for g in read_jsonl(gold / "boilerplate_dev.jsonl"):  # the seed's body lives in the gold file
        if g["id"] not in seen and g.get("body"):
            seen.add(g["id"])
            out.append({"id": g["id"], "publisher": g.get("publisher"), "body": g["body"]})
    for s in read_jsonl(gold / "synthetic_dev.jsonl"):
        out.append({k: s.get(k) for k in _FIELDS if s.get(k) is not None})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", help="also write the decoded records here")
    args, beam_args = ap.parse_known_args()
    shared = shared_dir()
    if shared is None:
        sys.exit("pipeline_quality: ../shared (corpus and gold) is not beside the repository")
    articles = labelled_articles(shared)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        bs = broker.bootstrap_servers
        src = Path(tmp) / "dev.jsonl"
        src.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), encoding="utf-8")
        ensure_topics({"bootstrap.servers": bs}, [TopicSpec("dev-out", 2), TopicSpec("dev-dead", 1)])
        produce_file(bs, "dev-in", src, partitions=2)
        summary = run_job(["--bootstrap-servers", bs, "--input-topic", "dev-in", "--output-topic", "dev-out",
                           "--dead-letter-topic", "dev-dead", "--bounded", "--start", "earliest",
                           "--near-duplicates", "tag", *beam_args])
        print(summary.line())
        out = Path(args.keep) if args.keep else Path(tmp) / "out.jsonl"
        with open(out, "w", encoding="utf-8") as fh:
            for msg in iter_topic(bs, "dev-out"):
                fh.write(json.dumps(decode_record(msg.value()), default=_json_default, ensure_ascii=False) + "\n")
        print(f"{len(articles)} labelled articles in; scoring {out} with ../shared/tools/score_dev.py:")
        res = subprocess.run([sys.executable, str(shared / "tools" / "score_dev.py"), str(out)])
    return res.returncode or (0 if summary.balanced else 1)


if __name__ == "__main__":
    sys.exit(main())
