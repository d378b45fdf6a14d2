"""The in-flight coders ArticleCoder/DeadLetterCoder: round trips, determinism, errors, parity with fastavro.

The coder turns the dict into a tuple of its slots, in an order derived from the schema, and encodes it with
Beam's FastPrimitives coder impl (see pipeline/records.py). What it must keep from the fastavro coder it replaced: every value the
in-flight schema allows round-trips, missing optional keys decode as the schema default, bad values are
refused with an error naming the field; and it must be deterministic and never pickle.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import re
import subprocess
import sys

import fastavro
import numpy as np
import pytest
from apache_beam import coders

from pipeline.avro import DEAD_LETTER, ENRICHED_ARTICLE
from pipeline.parse import parse_value
from pipeline.records import (Article, ArticleCoder, DeadLetter, DeadLetterCoder, KafkaRecord, _codec,
                              _inflight_schema, dead_letter_for_article, new_article, new_dead_letter)

BIG = 2**63 - 1
SMALL = -(2**63)


def _record(i: int = 0) -> KafkaRecord:
    value = json.dumps({"id": f"a-{i}", "publisher": "Агентство ТАСС", "title": "Peskov: talks «possible»",
                        "url": f"https://example.com/{i}", "language": "ru", "published_at": "2022-06-23T10:00:00Z",
                        "body": "MOSCOW (TASS) — Kremlin spokesman Dmitry Peskov said on Thursday…\n\nSecond."},
                       ensure_ascii=False).encode()
    return KafkaRecord("articles", 3, 1_000 + i, 1_700_000_000_000, b"key-\xff", value, [], 990 + i, 900)


def fresh_article(i: int = 0) -> Article:
    """An article as the parse stage makes it."""
    rec = _record(i)
    f = parse_value(rec.value)
    return new_article(rec, article_id=f.article_id, raw_body=f.raw_body, ingested_at=1_700_000_000_123,
                       publisher=f.publisher, url=f.url, title=f.title, language=f.language,
                       published_at=f.published_at, flags=f.flags)


def _actor(text: str, **kw) -> dict:
    return {"text": text, "type": kw.get("type", "PERSON"), "code": kw.get("code", "RUSGOV"),
            "country": kw.get("country", "RUS")}


def rich_article() -> Article:
    """Every field of the schema set (and some nullable ones None), nested lists and records, non-ASCII
    text, extreme longs."""
    a = fresh_article()
    a.update(
        published_at=SMALL, ingested_at=BIG, body="Тело статьи 😀 \x00 end", raw_body_sha256="ab" * 32,
        origin={"topic": "статьи", "partition": 2**31 - 1, "offset": BIG, "timestamp": SMALL},
        boilerplate=[{"kind": "newsletter_prompt", "text": "Подпишитесь!", "start": 0, "end": 12,
                      "rule": "cue:newsletter"},
                     {"kind": "share_prompt", "text": "Share", "start": 13, "end": 18, "rule": "memory:TASS"}],
        flags=["html_extracted", "truncated_for_nlp", "ß"],
        dedup={"content_hash": "0" * 64, "signature": bytes(range(256)), "duplicate_of": "a-0",
               "similarity": 0.875, "story_id": "story-1"},
        attributions=[{"source": "TASS", "kind": "news_agency", "text": "ТАСС", "descriptor": "state-run",
                       "cue": "reported", "content": "talks are possible", "sentence": 0, "start": 9, "end": 13,
                       "role": "channel", "country": "RUS"},
                      {"source": "Dmitry Peskov", "kind": "person", "text": "Peskov", "descriptor": None,
                       "cue": None, "content": None, "sentence": 1, "start": -1, "end": BIG, "role": None,
                       "country": None}],
        events=[{"code": "036", "root_code": "03", "label": "Express intent to meet", "trigger": "offered",
                 "actor1": _actor("Peskov"), "actor2": _actor("Kyiv", type="GPE", code="UKRGOV", country="UKR"),
                 "location": "Москва", "date_text": "Thursday", "date": "2022-06-23", "sentence": 0, "start": 1,
                 "end": 8, "attributed_to": "TASS", "negated": True, "modality": "announced"},
                {"code": "190", "root_code": "19", "label": "Use conventional military force", "trigger": "shelled",
                 "actor1": {"text": "troops", "type": None, "code": None, "country": None}, "actor2": None,
                 "location": None, "date_text": None, "date": None, "sentence": 2, "start": 30, "end": 37,
                 "attributed_to": None, "negated": False, "modality": "asserted"}],
        entities=[{"text": "Песков", "label": "PERSON", "start": 0, "end": 6},
                  {"text": "TASS", "label": "ORG", "start": 9, "end": 13}],
        pipeline_version="9.9.9",
        _ack={"topic": "статьи", "partition": 0, "covers_from": SMALL, "offset": BIG, "run_start": 0},
        _key=b"\x00\xff key",
        _value=bytes(range(256)) * 4,
    )
    return a


def _fields_set(node, value, path=""):
    """Paths of schema fields that are not set (None) anywhere in ``value``."""
    if isinstance(node, list):  # ["null", X]
        other = next(b for b in node if b != "null")
        return _fields_set(other, value, path) if value is not None else set()
    if isinstance(node, dict) and node["type"] == "record":
        missing = set()
        for f in node["fields"]:
            v = value.get(f["name"])
            if v is None:
                missing.add(f"{path}.{f['name']}")
            else:
                missing |= _fields_set(f["type"], v, f"{path}.{f['name']}")
        return missing
    if isinstance(node, dict) and node["type"] == "array":
        if not value:
            return {path + "[]"}
        return set.intersection(*(_fields_set(node["items"], x, path + "[]") for x in value))
    if isinstance(node, str) and value is None:
        return {path}
    return set()


def _named_refs_resolved(schema):
    """The in-flight schema with named-type references (actor2: "Actor") replaced by their definition."""
    named = {}

    def walk(node):
        if isinstance(node, list):
            return [walk(b) for b in node]
        if isinstance(node, str):
            return named.get(node, node)
        if node.get("type") == "record":
            out = dict(node, fields=[dict(f, type=walk(f["type"])) for f in node["fields"]])
            named[node["name"]] = out
            return out
        if node.get("type") == "array":
            return dict(node, items=walk(node["items"]))
        return node

    return walk(schema)


def fastavro_round_trip(value, schema_name=ENRICHED_ARTICLE):
    """What the old coder (fastavro against the in-flight schema) returned for ``value``."""
    schema = _inflight_schema(schema_name)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    return fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), schema, None)


def _keys_in_order(value):
    if isinstance(value, dict):
        return [(k, _keys_in_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_keys_in_order(v) for v in value]
    return None


def test_the_rich_fixture_sets_every_field_of_the_schema():
    schema = _named_refs_resolved(_inflight_schema(ENRICHED_ARTICLE))
    assert _fields_set(schema, rich_article()) == set()


@pytest.mark.parametrize("make", [fresh_article, rich_article], ids=["fresh", "rich"])
def test_article_round_trip(make):
    a = make()
    coder = ArticleCoder()
    back = coder.decode(coder.encode(a))
    assert back == a
    assert type(back) is Article and type(back["origin"]) is dict and type(back["_ack"]) is dict
    # exactly what the fastavro coder returned, key order included (schema order)
    expected = fastavro_round_trip(a)
    assert back == expected
    assert _keys_in_order(back) == _keys_in_order(expected)


def test_rich_article_values_keep_their_types():
    back = ArticleCoder().decode(ArticleCoder().encode(rich_article()))
    assert back["events"][0]["negated"] is True and back["events"][1]["actor2"] is None
    assert type(back["dedup"]["similarity"]) is float and back["dedup"]["signature"] == bytes(range(256))
    assert back["_ack"]["offset"] == BIG and back["published_at"] == SMALL
    assert back["events"][0]["actor2"]["country"] == "UKR"


def test_dead_letter_round_trip():
    coder = DeadLetterCoder()
    dl = new_dead_letter(_record(), stage="parse", error_type="InvalidJson", reason="не JSON", failed_at=BIG)
    later = dead_letter_for_article(rich_article(), stage="nlp", error_type="Boom", reason="x", failed_at=1)
    for d in (dl, later, DeadLetter(dl, key=None, value=None, article_id=None, pipeline_version=None)):
        back = coder.decode(coder.encode(d))
        # the in-flight schemas share the internal fields: a dead letter decodes with _key/_value None
        assert back == {**d, "_key": None, "_value": None} and type(back) is DeadLetter
        assert back == fastavro_round_trip(d, DEAD_LETTER)
        assert _keys_in_order(back) == _keys_in_order(fastavro_round_trip(d, DEAD_LETTER))


def test_missing_optional_keys_decode_as_the_schema_defaults():
    a = {"article_id": "x", "ingested_at": 1, "body": "b", "raw_body_sha256": "s", "pipeline_version": "v",
         "origin": {"topic": "t", "partition": 0, "offset": 1},
         "dedup": {"content_hash": "h"},
         "events": [{"code": "1", "root_code": "01", "label": "l", "trigger": "t", "actor1": {"text": "x"},
                     "sentence": 0, "start": 0, "end": 1}],
         "attributions": [{"source": "s", "kind": "k", "text": "t", "sentence": 0, "start": 0, "end": 1}],
         "_ts": 123}  # an extra key: ignored, as before
    back = ArticleCoder().decode(ArticleCoder().encode(a))
    assert back == fastavro_round_trip(a)
    assert back["publisher"] is None and back["boilerplate"] == [] and back["_ack"] is None and "_ts" not in back
    assert back["origin"]["timestamp"] is None and back["dedup"]["signature"] is None
    assert back["events"][0]["negated"] is False and back["events"][0]["modality"] == "asserted"
    assert back["events"][0]["actor2"] is None and back["events"][0]["actor1"]["type"] is None
    assert back["attributions"][0]["role"] is None


@pytest.mark.parametrize("change", [
    lambda a: a["dedup"].update(similarity=np.float64(0.5)),
    lambda a: a["dedup"].update(similarity=1),  # an int for a double
    lambda a: a["dedup"].update(signature=bytearray(b"sig")),
    lambda a: a.update(ingested_at=np.int64(5)),
    lambda a: a.update(ingested_at=True),
    lambda a: a.update(ingested_at=7.0),  # fastavro truncated a float given for a long
    lambda a: a.update(flags=("a", "b")),
    lambda a: a["events"][0].update(negated=1),
    lambda a: a["events"][0]["actor1"].update(text=np.str_("numpy")),
    lambda a: a["entities"].append({"text": "x", "label": "ORG", "start": np.int32(1), "end": 2}),
    lambda a: a["attributions"][0].pop("role"),
    lambda a: a["boilerplate"][0].update(start=True),
])
def test_values_fastavro_accepted_are_normalised_like_fastavro(change):
    a = rich_article()
    change(a)
    coder = ArticleCoder()
    back = coder.decode(coder.encode(a))
    assert back == fastavro_round_trip(a)
    # the normalised value encodes exactly as the canonical one would
    assert coder.encode(a) == coder.encode(back)


def test_fast_and_slow_paths_agree():
    codec = _codec(ENRICHED_ARTICLE, Article, "ArticleCoder")
    for a in (fresh_article(), rich_article()):
        assert codec.to_tuple(a) == codec.canonical(codec.root, a)


def test_encoding_does_not_depend_on_key_order():
    a = rich_article()

    def reorder(v):
        if isinstance(v, dict):
            return type(v)((k, reorder(v[k])) for k in reversed(list(v)))
        if isinstance(v, list):
            return [reorder(x) for x in v]
        return v

    b = reorder(a)
    assert list(b) != list(a) and list(b["origin"]) != list(a["origin"]) and b == a
    coder = ArticleCoder()
    assert coder.is_deterministic()
    assert coder.encode(a) == coder.encode(b) == coder.encode(dict(a)) == coder.encode(copy.deepcopy(a))
    # a missing optional key and its default are the same value, so the same bytes
    c = Article(a)
    c["dedup"] = dict(a["dedup"], story_id=None)
    d = Article(a)
    d["dedup"] = {k: v for k, v in a["dedup"].items() if k != "story_id"}
    assert coder.encode(c) == coder.encode(d)
    e = Article(a, boilerplate=[], _ack=None)
    f = Article({k: v for k, v in a.items() if k not in ("boilerplate", "_ack")})
    assert coder.encode(e) == coder.encode(f)


def test_encoding_does_not_depend_on_the_process():
    # another interpreter, other hash seeds: the same bytes
    a = rich_article()
    script = ("import pickle, sys; from pipeline.records import ArticleCoder; "
              "sys.stdout.buffer.write(ArticleCoder().encode(pickle.load(sys.stdin.buffer)))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(a), capture_output=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120)
        assert out.stdout == ArticleCoder().encode(a)


@pytest.mark.parametrize("change, exc, field", [
    (lambda a: a.update(title=5), TypeError, "'title'"),
    (lambda a: a.update(article_id=5), TypeError, "'article_id'"),
    (lambda a: a.update(body=b"bytes"), TypeError, "'body'"),
    (lambda a: a["events"][1]["actor1"].update(text=3), TypeError, "'events[1].actor1.text'"),
    (lambda a: a["events"][0]["actor2"].update(country=["RUS"]), TypeError, "'events[0].actor2.country'"),
    (lambda a: a["entities"][1].update(start="9"), TypeError, "'entities[1].start'"),
    (lambda a: a["dedup"].update(similarity="high"), TypeError, "'dedup.similarity'"),
    (lambda a: a["dedup"].update(similarity=True), TypeError, "'dedup.similarity'"),
    (lambda a: a["dedup"].update(signature="text"), TypeError, "'dedup.signature'"),
    (lambda a: a.update(flags=["ok", 1]), TypeError, "'flags[1]'"),
    (lambda a: a.update(boilerplate=None), TypeError, "'boilerplate'"),
    (lambda a: a.update(origin=("t", 0, 1, None)), TypeError, "'origin'"),
    (lambda a: a.update(ingested_at=None), TypeError, "'ingested_at'"),
    (lambda a: a.update(ingested_at=2**63), ValueError, "'ingested_at'"),
    (lambda a: a["_ack"].update(offset=-(2**64)), ValueError, "'_ack.offset'"),
    (lambda a: a.pop("body"), ValueError, "'body'"),
    (lambda a: a["_ack"].pop("run_start"), ValueError, "'_ack.run_start'"),
    (lambda a: a["events"][0]["actor1"].pop("text"), ValueError, "'events[0].actor1.text'"),
    (lambda a: a.update(title=object()), TypeError, "'title'"),  # never pickled
    (lambda a: a.update(body="lone \ud800 surrogate"), UnicodeEncodeError, "'body'"),
    (lambda a: a["events"][1].update(location="\udc80"), UnicodeEncodeError, "'events[1].location'"),
])
def test_a_bad_value_is_refused_naming_the_field(change, exc, field):
    a = rich_article()
    change(a)
    with pytest.raises(exc, match=re.escape(field)) as info:
        ArticleCoder().encode(a)
    assert "ArticleCoder" in str(info.value)
    with pytest.raises((TypeError, ValueError, OverflowError)):  # the fastavro coder refused it too
        fastavro_round_trip(a)
    # also inside another coder's stream
    with pytest.raises(exc, match=re.escape(field)):
        coders.ListCoder(ArticleCoder()).encode([rich_article(), a])


def test_an_unordered_array_is_refused():
    # fastavro took a set for an array, but its order depends on the hash seed: not deterministic
    a = rich_article()
    a["flags"] = {"a", "b"}
    with pytest.raises(TypeError, match="'flags' must be an array"):
        ArticleCoder().encode(a)


def test_not_a_record():
    with pytest.raises(TypeError, match="must be a record"):
        ArticleCoder().encode(None)
    with pytest.raises(TypeError, match="must be a record"):
        DeadLetterCoder().encode(["x"])


def test_nested_in_other_coders_and_size_estimates():
    arts = [fresh_article(i) for i in range(3)] + [rich_article()]
    cases = [(coders.ListCoder(ArticleCoder()), arts),
             (coders.TupleCoder([coders.StrUtf8Coder(), ArticleCoder()]), ("key", arts[3])),
             (coders.IterableCoder(coders.TupleCoder([ArticleCoder(), coders.VarIntCoder()])),
              [(a, i) for i, a in enumerate(arts)])]
    for coder, value in cases:
        assert coder.decode(coder.encode(value)) == value
    impl = ArticleCoder().get_impl()
    a = rich_article()
    assert impl.decode_nested(impl.encode_nested(a)) == a
    # size estimates (Beam's output-size metric samples them) come from the record, not from encoding it
    for art in (fresh_article(1), a):
        assert 0.6 <= impl.estimate_size(art) / len(ArticleCoder().encode(art)) <= 1.5


def test_coder_identity_pickling_and_registration():
    c = ArticleCoder()
    assert c == ArticleCoder() and hash(c) == hash(ArticleCoder()) and c != DeadLetterCoder()
    c.encode(fresh_article())  # builds the impl, which must not travel in the pickle
    again = pickle.loads(pickle.dumps(c))
    assert again == c and again.decode(c.encode(fresh_article())) == fresh_article()
    assert c.to_type_hint() is Article and DeadLetterCoder().to_type_hint() is DeadLetter
    assert DeadLetterCoder().is_deterministic()
    assert isinstance(coders.registry.get_coder(Article), ArticleCoder)
    assert isinstance(coders.registry.get_coder(DeadLetter), DeadLetterCoder)
    assert repr(c) == "ArticleCoder"


# A schema with the shapes the two in-flight schemas do not have, to keep the generated converters honest.
_SHAPES = {
    "type": "record", "name": "Shapes", "namespace": "test", "fields": [
        {"name": "id", "type": "string"},
        {"name": "one", "type": {"type": "record", "name": "One", "fields": [{"name": "x", "type": "long"}]}},
        {"name": "outer", "type": {"type": "record", "name": "Outer", "fields": [
            {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
                {"name": "flag", "type": "boolean"},
                {"name": "pts", "type": {"type": "array", "items": {
                    "type": "record", "name": "Pt", "fields": [{"name": "d", "type": "double"}]}}},
                {"name": "maybe", "type": ["null", "One"], "default": None}]}},
            {"name": "tags", "type": ["null", {"type": "array", "items": ["null", "string"]}], "default": None},
            {"name": "n", "type": ["null", "long"], "default": None}]}},
        {"name": "with_default", "type": "One", "default": {"x": 7}},
        {"name": "opt_items", "type": {"type": "array", "items": ["null", "Pt"]}, "default": []},
        {"name": "opt_list", "type": ["null", {"type": "array", "items": {
            "type": "record", "name": "Pair", "fields": [{"name": "k", "type": "string"},
                                                         {"name": "v", "type": ["null", "bytes"]}]}}],
         "default": None},
        {"name": "longs", "type": {"type": "array", "items": ["null", "long"]}, "default": []},
        {"name": "raw", "type": "bytes"},
    ]}


def _shapes_codec():
    from pipeline.records import _InFlightCodec

    return _InFlightCodec(fastavro.parse_schema(copy.deepcopy(_SHAPES)), dict, "ShapesCoder")


@pytest.mark.parametrize("value", [
    {"id": "a", "one": {"x": BIG}, "raw": b"",
     "outer": {"inner": {"flag": True, "pts": [{"d": 0.5}, {"d": -1.0}], "maybe": {"x": SMALL}},
               "tags": ["t", None, "ü"], "n": 3},
     "with_default": {"x": 1}, "opt_items": [None, {"d": 2.0}], "opt_list": [{"k": "k", "v": b"\x00"},
                                                                             {"k": "z", "v": None}],
     "longs": [None, 1, SMALL]},
    {"id": "b", "one": {"x": 0}, "raw": bytearray(b"r"),
     "outer": {"inner": {"flag": 0, "pts": []}, "tags": [], "n": None}},  # defaults, a bytearray, an int flag
    {"id": "c", "one": {"x": 2.0}, "raw": b"r", "outer": {"inner": {"flag": False, "pts": [{"d": 1}]}},
     "opt_list": [], "longs": [2]},
])
def test_other_shapes_round_trip_like_fastavro(value):
    codec = _shapes_codec()
    schema = fastavro.parse_schema(copy.deepcopy(_SHAPES))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    expected = fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), schema, None)
    canonical = codec.to_tuple(value)
    assert canonical == codec.canonical(codec.root, value)
    back = codec.from_tuple(codec.primitives.decode(codec.primitives.encode(canonical)))
    assert back == expected and _keys_in_order(back) == _keys_in_order(expected)


@pytest.mark.parametrize("change, field", [
    (lambda v: v["outer"].update(tags=["ok", 5]), "'outer.tags[1]'"),
    (lambda v: v.update(longs=[1, "2"]), "'longs[1]'"),
    (lambda v: v.update(longs=[True]), "'longs[0]'"),  # fastavro refused a bool in a union with long
    (lambda v: v["outer"]["inner"]["pts"].append({"d": "x"}), "'outer.inner.pts[1].d'"),
    (lambda v: v["opt_list"][1].update(v="text"), "'opt_list[1].v'"),
    (lambda v: v.update(one={}), "'one.x'"),
])
def test_other_shapes_refuse_bad_values(change, field):
    value = {"id": "a", "one": {"x": 1}, "raw": b"",
             "outer": {"inner": {"flag": True, "pts": [{"d": 0.5}]}, "tags": ["t"]},
             "opt_list": [{"k": "k", "v": None}, {"k": "z", "v": b"v"}]}
    codec = _shapes_codec()
    codec.to_tuple(value)
    change(value)
    with pytest.raises((TypeError, ValueError), match=re.escape(field)):
        codec.to_tuple(value)
