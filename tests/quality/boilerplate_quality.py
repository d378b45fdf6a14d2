#!/usr/bin/env python3
"""Quality of the boilerplate stripper on the development labels, next to jusText.

Runs :func:`pipeline.boilerplate.strip` (memory fed each publisher's articles in published order) over
``gold/boilerplate_dev.jsonl`` (bodies from ``corpus/wire_articles.jsonl`` by id; the seed's body is in
the gold file) and ``gold/synthetic_dev.jsonl``, and prints, with the definitions of
``tools/score_dev.py``:

* removed-character precision = 1 - (story or credit-line chars cut) / (labelled chars cut),
* donation-appeal recall and overall boilerplate recall (photo captions count on neither side),
* precision/recall per kind, the worst false cuts,
* the same three figures on two halves of the labels split by publisher (crc32 parity of the name), to see
  whether rules written on one half hold on the other,
* the same table for jusText (paragraphs wrapped as <p>, its "bad" paragraphs as the cut),
* on all of ``corpus/reuters21578.jsonl``: the share of stories left byte-identical.

Floors: precision >= 0.99, appeal recall >= 0.95, boilerplate recall >= 0.90, Reuters >= 99.5 % untouched.
Exit status 1 when a floor is missed, 2 when the shared directory is absent.

usage: python tests/quality/boilerplate_quality.py [--no-rules] [--no-memory] [--no-justext] [--worst N]
"""

from __future__ import annotations

import argparse
import collections
import html
import sys
import time
import zlib
from datetime import datetime, timezone

from pipeline.boilerplate import PublisherMemory, RuleSet, strip
from pipeline.corpus import read_jsonl, shared_dir
from pipeline.text import cut_spans

BOILER = {"donation_appeal", "newsletter_prompt", "related_links", "share_prompt", "cookie_notice",
          "ad_marker", "gallery_furniture", "other_boilerplate", "author_bio"}
KEEP = {"story", "credit_line"}
FLOORS = {"precision": 0.99, "appeal_recall": 0.95, "boilerplate_recall": 0.90, "reuters_untouched": 0.995}


def _ms(ts: str | None) -> int | None:
    if not ts:
        return None
    try:
        d = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return int(d.timestamp() * 1000)


def load_gold(shared):
    """[(id, publisher, published_at, body, spans {label: [(a, b)]})] for the labelled articles."""
    wire = {a["id"]: a for a in read_jsonl(shared / "corpus" / "wire_articles.jsonl")}
    out = []
    for g in read_jsonl(shared / "gold" / "boilerplate_dev.jsonl"):
        src = wire.get(g["id"], {})
        body = g.get("body") or src.get("body")
        if body is None:
            continue
        spans = collections.defaultdict(list)
        for p in g["paragraphs"]:
            spans[p["label"]].append((p["start"], p["end"]))
        out.append((g["id"], g["publisher"], src.get("published_at"), src.get("title"), body, spans))
    for s in read_jsonl(shared / "gold" / "synthetic_dev.jsonl"):
        spans = collections.defaultdict(list)
        for b in s["labels"]["boilerplate"]:
            spans[b["kind"]].append((b["start"], b["end"]))
        pos = 0
        for a, b in sorted(x for v in list(spans.values()) for x in v):
            if a > pos:
                spans["story"].append((pos, a))
            pos = max(pos, b)
        spans["story"].append((pos, len(s["body"])))
        out.append((s["id"], s["publisher"], s.get("published_at"), s.get("title"), s["body"], spans))
    return out


def _chars(spans):
    s = set()
    for a, b in spans:
        s.update(range(a, b))
    return s


def _ratio(a, b):
    return a / b if b else float("nan")


class Score:
    def __init__(self):
        self.cut = self.keep_cut = self.app_tp = self.app_n = self.boil_tp = self.boil_n = 0
        self.kind_tp = collections.Counter()
        self.kind_n = collections.Counter()
        self.pred_kind = collections.Counter()
        self.pred_kind_ok = collections.Counter()
        self.false_cuts = []

    def add(self, aid, body, spans, removed):
        """removed: [(start, end, kind, rule)]"""
        pred = _chars((a, b) for a, b, _, _ in removed)
        keep = _chars(x for k in KEEP for x in spans.get(k, []))
        boil = _chars(x for k in BOILER for x in spans.get(k, []))
        app = _chars(spans.get("donation_appeal", []))
        self.cut += len(pred & (keep | boil))
        self.keep_cut += len(pred & keep)
        self.app_tp += len(pred & app)
        self.app_n += len(app)
        self.boil_tp += len(pred & boil)
        self.boil_n += len(boil)
        for k in BOILER:
            c = _chars(spans.get(k, []))
            self.kind_tp[k] += len(pred & c)
            self.kind_n[k] += len(c)
        for a, b, kind, rule in removed:
            span = set(range(a, b))
            lab = span & (keep | boil)
            self.pred_kind[kind] += len(lab)
            self.pred_kind_ok[kind] += len(span & boil)
            bad = len(span & keep)
            if bad:
                self.false_cuts.append((bad, aid, rule, body[a:b].strip()))

    def summary(self):
        return {"precision": 1 - _ratio(self.keep_cut, self.cut),
                "appeal_recall": _ratio(self.app_tp, self.app_n),
                "boilerplate_recall": _ratio(self.boil_tp, self.boil_n)}

    def print(self, title, worst):
        s = self.summary()
        print(f"== {title}")
        print(f"  precision={s['precision']:.4f}  appeal recall={s['appeal_recall']:.4f}  "
              f"boilerplate recall={s['boilerplate_recall']:.4f}  "
              f"(cut {self.cut} labelled chars, {self.keep_cut} of them story/credit)")
        print(f"  {'kind':<18} {'precision':>9} {'recall':>7} {'labelled':>9}")
        for k in sorted(BOILER):
            p = _ratio(self.pred_kind_ok[k], self.pred_kind[k])
            r = _ratio(self.kind_tp[k], self.kind_n[k])
            print(f"  {k:<18} {p:>9.3f} {r:>7.3f} {self.kind_n[k]:>9}")
        if worst:
            print(f"  worst false cuts ({len(self.false_cuts)} spans):")
            for bad, aid, rule, text in sorted(self.false_cuts, key=lambda x: (-x[0], x[1]))[:worst]:
                print(f"    {bad:>5}  {aid:<28} {rule:<28} {text[:90]!r}")


def half(publisher: str | None) -> str:
    """"A" or "B": a fixed split of the labelled articles by publisher."""
    return "AB"[zlib.crc32((publisher or "").encode("utf-8")) % 2]


def run_ours(gold, *, use_rules, use_memory, min_articles):
    """Score over all articles, and {"A": Score, "B": Score} over the two publisher halves."""
    rules = None if use_rules else RuleSet.empty()
    mems: dict[str, PublisherMemory] = {}
    score = Score()
    halves = {"A": Score(), "B": Score()}
    order = sorted(gold, key=lambda g: (g[1] or "", _ms(g[2]) or 0, g[0]))
    for aid, pub, published, title, body, spans in order:
        mem = None
        if use_memory:
            mem = mems.setdefault(pub or "", PublisherMemory(min_articles=min_articles))
        res = strip(body, pub, memory=mem, rules=rules, article_key=title or aid, event_time_ms=_ms(published),
                    title=title)
        assert res.body == cut_spans(body, [(s.start, s.end) for s in res.removed]), aid
        removed = [(s.start, s.end, s.kind, s.rule) for s in res.removed]
        score.add(aid, body, spans, removed)
        halves[half(pub)].add(aid, body, spans, removed)
    return score, halves


def run_justext(gold):
    import justext

    stop = justext.get_stoplist("English")
    score = Score()
    for aid, _pub, _published, _title, body, spans in gold:
        lines = []
        pos = 0
        for line in body.split("\n"):
            if line.strip():
                lead = len(line) - len(line.lstrip())
                lines.append((pos + lead, pos + lead + len(line.strip()), line.strip()))
            pos += len(line) + 1
        doc = "<html><body>" + "".join(f"<p>{html.escape(t)}</p>" for _, _, t in lines) + "</body></html>"
        paras = justext.justext(doc.encode("utf-8"), stop, encoding="utf-8")
        removed = []
        # jusText keeps one paragraph per <p> here (no <br>), in order.
        for (a, b, _), p in zip(lines, paras):
            if p.is_boilerplate:
                removed.append((a, b, "justext", "justext"))
        score.add(aid, body, spans, removed)
    return score


def reuters_untouched(shared, *, use_rules, use_memory, min_articles):
    mems: dict[str, PublisherMemory] = {}
    rules = None if use_rules else RuleSet.empty()
    arts = sorted(read_jsonl(shared / "corpus" / "reuters21578.jsonl"),
                  key=lambda a: (_ms(a.get("published_at")) or 0, a["id"]))
    same = total = 0
    changed = collections.Counter()
    examples = []
    for a in arts:
        body = a.get("body") or ""
        mem = mems.setdefault(a.get("publisher") or "", PublisherMemory(min_articles=min_articles)) if use_memory else None
        res = strip(body, a.get("publisher"), memory=mem, rules=rules, article_key=a.get("title") or a["id"],
                    event_time_ms=_ms(a.get("published_at")), title=a.get("title"))
        total += 1
        if res.body == body:
            same += 1
        else:
            for s in res.removed:
                changed[s.rule] += 1
                if len(examples) < 12:
                    examples.append((a["id"], s.rule, s.text.strip()[:80]))
    return same, total, changed, examples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-rules", action="store_true", help="disable the known-publisher rules layer")
    ap.add_argument("--no-memory", action="store_true", help="disable the per-publisher memory layer")
    ap.add_argument("--no-justext", action="store_true", help="skip the jusText comparison")
    ap.add_argument("--no-reuters", action="store_true", help="skip the Reuters-21578 untouched check")
    ap.add_argument("--min-articles", type=int, default=2, help="memory warm-up threshold")
    ap.add_argument("--worst", type=int, default=15, help="how many worst false cuts to list")
    args = ap.parse_args()
    shared = shared_dir()
    if shared is None:
        print("../shared (corpus and gold labels) not found beside the repository; set WIRESTREAM_SHARED",
              file=sys.stderr)
        return 2
    gold = load_gold(shared)
    t0 = time.perf_counter()
    ours, halves = run_ours(gold, use_rules=not args.no_rules, use_memory=not args.no_memory,
                            min_articles=args.min_articles)
    ours.print(f"wirestream strip ({len(gold)} articles, rules={'off' if args.no_rules else 'on'}, "
               f"memory={'off' if args.no_memory else 'on'}; {time.perf_counter() - t0:.2f}s)", args.worst)
    for name, sc in halves.items():
        h = sc.summary()
        n = sum(1 for g in gold if half(g[1]) == name)
        print(f"  publisher half {name} ({n} articles): precision={h['precision']:.4f}  "
              f"appeal recall={h['appeal_recall']:.4f}  boilerplate recall={h['boilerplate_recall']:.4f}")
    result = ours.summary()
    if not args.no_justext:
        jt = run_justext(gold)
        jt.print("jusText 3 (English stoplist, paragraphs as <p>)", 5)
        j = jt.summary()
        beats = result["precision"] > j["precision"] and result["boilerplate_recall"] >= j["boilerplate_recall"]
        print(f"  ours vs jusText: precision {result['precision']:.4f} vs {j['precision']:.4f}, "
              f"boilerplate recall {result['boilerplate_recall']:.4f} vs {j['boilerplate_recall']:.4f} "
              f"-> {'BEATS' if beats else 'does NOT beat'} jusText")
    if not args.no_reuters:
        same, total, changed, examples = reuters_untouched(
            shared, use_rules=not args.no_rules, use_memory=not args.no_memory, min_articles=args.min_articles)
        result["reuters_untouched"] = same / total
        print(f"== Reuters-21578: {same}/{total} stories byte-identical ({same / total:.2%}); "
              f"cuts by rule: {dict(changed.most_common(8))}")
        for ex in examples:
            print(f"    {ex}")
    missed = [k for k, floor in FLOORS.items() if k in result and not result[k] >= floor]
    print("floors: " + ", ".join(f"{k}>={v}" for k, v in FLOORS.items()) + (
        f" -> MISSED: {missed}" if missed else " -> all met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
