"""Micro-benchmark of the in-flight Article coder: the old fastavro coder vs pipeline.records.ArticleCoder.

Every shuffle of the pipeline (stateful stages, reshuffles, ListCoder[ArticleCoder] before NLP) encodes and
decodes each article once, so this is a per-article cost of the I/O path. Measured on

* fresh articles: real corpus stories (Reuters-21578 + wire articles) as the pipeline has them right after
  parsing (``parse_value`` + ``new_article``: empty stage fields, the original message in ``_value``);
* enriched articles: the same stories with every stage field filled (boilerplate spans, flags, a
  near-duplicate signature, attributions, events with actors, entities), built by hand here;
* ListCoder: fresh articles coded in lists of 100, as SpreadForNlp ships them.

Prints the median over ``--runs`` of µs per article for encode and decode, and the encoded size. The old
coder (fastavro ``schemaless_writer``/``schemaless_reader`` against the same in-flight schema) lives only
here, as the baseline.

    flock /tmp/wirestream-bench.lock python bench/bench_coder.py [--articles 2000] [--runs 7]
"""

from __future__ import annotations

import argparse
import io
import time

import fastavro
from _common import corpus_articles, dumps, median

from pipeline.parse import ParseLimits, parse_value
from pipeline.records import Article, ArticleCoder, KafkaRecord, _inflight_schema, new_article


class FastavroArticleCoder:
    """The coder this replaced: fastavro schemaless encoding against the in-flight schema."""

    def __init__(self):
        self._schema = _inflight_schema("enriched_article")

    def encode(self, value):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self._schema, value)
        return buf.getvalue()

    def decode(self, encoded):
        return Article(fastavro.schemaless_reader(io.BytesIO(encoded), self._schema, None))


def fresh_articles(n: int) -> list:
    limits = ParseLimits()
    out = []
    for i, raw in enumerate(corpus_articles(n)):
        rec = KafkaRecord("articles", i % 4, i, 1_700_000_000_000 + i, None, dumps(raw), [], i, 0)
        try:
            f = parse_value(rec.value, limits=limits, confluent_decoder=None)
        except Exception:  # noqa: BLE001, S112 - a story the parser rejects is not an article
            continue
        out.append(new_article(rec, article_id=f.article_id, raw_body=f.raw_body, ingested_at=1_700_000_001_000 + i,
                               publisher=f.publisher, url=f.url, title=f.title, language=f.language,
                               published_at=f.published_at, flags=f.flags))
    return out


def enriched(article: Article, i: int) -> Article:
    """``article`` with every stage field set, in the shapes the stages produce."""
    a = Article(article)
    body = a["body"]
    a["boilerplate"] = [{"kind": "newsletter_prompt", "text": "Sign up for our newsletter.", "start": 0, "end": 27,
                         "rule": "cue:newsletter"},
                        {"kind": "share_prompt", "text": "Share this article", "start": 28, "end": 46,
                         "rule": "memory:Reuters"}]
    a["flags"] = ["html_extracted", "truncated_for_nlp"]
    a["dedup"] = dict(a["dedup"], signature=bytes(range(256)) * 2, duplicate_of=f"story-{i - 1}", similarity=0.91,
                      story_id=f"story-{i - 7}")
    a["attributions"] = [{"source": "TASS", "kind": "news_agency", "text": "TASS", "descriptor": "state-run",
                          "cue": "reported", "content": body[:80], "sentence": k, "start": 10 * k, "end": 10 * k + 4,
                          "role": "channel", "country": "RUS"} for k in range(3)]
    actor = {"text": "Dmitry Peskov", "type": "PERSON", "code": "RUSGOV", "country": "RUS"}
    a["events"] = [{"code": "036", "root_code": "03", "label": "Express intent to meet or negotiate",
                    "trigger": "offered talks", "actor1": actor, "actor2": None if k % 2 else dict(actor, text="Kyiv"),
                    "location": "Moscow", "date_text": "Thursday", "date": "2022-06-23", "sentence": k,
                    "start": 20 * k, "end": 20 * k + 13, "attributed_to": "TASS", "negated": bool(k % 3 == 2),
                    "modality": "announced"} for k in range(4)]
    a["entities"] = [{"text": word, "label": "ORG", "start": k * 7, "end": k * 7 + len(word)}
                     for k, word in enumerate(body.split()[:20])]
    return a


def _time(fn, items) -> float:
    t0 = time.perf_counter()
    for x in items:
        fn(x)
    return time.perf_counter() - t0


def bench(label: str, coders: dict, items: list, runs: int, per: int = 1) -> None:
    """Encode and decode ``items`` with each coder, the coders' runs interleaved so that load from
    elsewhere on the machine hits them alike; prints the median µs per article of each."""
    encoded = {name: [c.encode(x) for x in items] for name, c in coders.items()}
    for name, c in coders.items():
        assert all(c.decode(e) == x for e, x in zip(encoded[name], items)), f"{name} does not round-trip"
    times: dict = {(name, op): [] for name in coders for op in ("encode", "decode")}
    for _ in range(runs):
        for name, c in coders.items():
            times[name, "encode"].append(_time(c.encode, items) / (len(items) * per) * 1e6)
            times[name, "decode"].append(_time(c.decode, encoded[name]) / (len(items) * per) * 1e6)
    for name in coders:
        enc, dec = median(times[name, "encode"]), median(times[name, "decode"])
        size = sum(map(len, encoded[name])) / (len(items) * per)
        print(f"{label:22s} {name:8s} encode {enc:7.2f} µs  decode {dec:7.2f} µs  "
              f"round trip {enc + dec:7.2f} µs  {size:6.0f} B/article", flush=True)
    (old, new) = coders
    ratio = [median(times[old, op]) / median(times[new, op]) for op in ("encode", "decode")]
    print(f"{label:22s} {new} is {ratio[0]:.1f}x (encode), {ratio[1]:.1f}x (decode) as fast as {old}")


def main() -> None:
    from apache_beam import coders

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    fresh = fresh_articles(args.articles)
    rich = [enriched(a, i) for i, a in enumerate(fresh)]
    old, new = FastavroArticleCoder(), ArticleCoder()
    # both coders decode each other's input to the same dicts: the benchmark compares like with like
    assert all(old.decode(old.encode(a)) == new.decode(new.encode(a)) for a in fresh[:200] + rich[:200])
    print(f"{len(fresh)} articles, median of {args.runs} runs")
    bench("fresh", {"fastavro": old, "new": new}, fresh, args.runs)
    bench("enriched", {"fastavro": old, "new": new}, rich, args.runs)

    class OldAsBeamCoder(coders.Coder):  # how ListCoder saw the old coder: a CallbackCoderImpl
        encode, decode = old.encode, old.decode

    batches = [fresh[i:i + 100] for i in range(0, len(fresh) - 99, 100)]
    if not batches:
        return
    bench("ListCoder (100/list)", {"fastavro": coders.ListCoder(OldAsBeamCoder()),
                                   "new": coders.ListCoder(ArticleCoder())}, batches, args.runs, per=100)


if __name__ == "__main__":
    main()
