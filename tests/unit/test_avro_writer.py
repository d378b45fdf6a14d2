"""The compiled Avro writer writes exactly what fastavro writes, for every shape the schemas allow."""

from __future__ import annotations

import io

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.avro import (DEAD_LETTER, ENRICHED_ARTICLE, RAW_ARTICLE, SingleObjectDecoder, SingleObjectEncoder,
                           compile_writer, load_schema)
from pipeline.errors import SchemaError


def _fastavro(schema, record) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def _strategy(schema, named: dict):
    """Records valid under ``schema`` (a parsed fastavro schema), optional fields sometimes left out."""
    if isinstance(schema, list):
        return st.one_of(*[_strategy(b, named) for b in schema])
    if isinstance(schema, str):
        if schema in named:
            return st.deferred(lambda: named[schema])
        schema = {"type": schema}
    t = schema["type"]
    if isinstance(t, (dict, list)):
        return _strategy(t, named)
    simple = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2 ** 31), 2 ** 31 - 1),
        "long": st.integers(-(2 ** 63), 2 ** 63 - 1),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
        "string": st.text(max_size=30),
        "bytes": st.binary(max_size=30),
    }
    if t in simple:
        return simple[t]
    if t == "array":
        return st.lists(_strategy(schema["items"], named), max_size=3)
    if t == "map":
        return st.dictionaries(st.text(max_size=5), _strategy(schema["values"], named), max_size=3)
    if t == "enum":
        return st.sampled_from(schema["symbols"])
    if t == "record":
        required, optional = {}, {}
        for f in schema["fields"]:
            ftype = f["type"]
            may_omit = "default" in f or (isinstance(ftype, list) and "null" in ftype)
            (optional if may_omit else required)[f["name"]] = _strategy(ftype, named)
        strategy = st.fixed_dictionaries(required, optional=optional)
        named[schema["name"]] = strategy
        return strategy
    raise AssertionError(f"no strategy for {t}")


@pytest.mark.parametrize("name", [ENRICHED_ARTICLE, DEAD_LETTER, RAW_ARTICLE])
def test_compiled_writer_matches_fastavro_on_generated_records(name):
    schema = load_schema(name)
    write = compile_writer(schema)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
    @given(_strategy(schema, {}))
    def check(record):
        assert write(record) == _fastavro(schema, record)

    check()


def _article(**over):
    rec = {"article_id": "a1", "publisher": "Wire", "url": None, "title": "Tïtle ✓", "language": "en",
           "published_at": 1_700_000_000_000, "ingested_at": 1_700_000_000_123, "body": "Body text.",
           "raw_body_sha256": "0" * 64,
           "origin": {"topic": "raw", "partition": 3, "offset": 2 ** 40, "timestamp": None},
           "boilerplate": [], "dedup": {"content_hash": "f" * 64, "signature": b"\x00\x01", "duplicate_of": None,
                                        "similarity": None, "story_id": None},
           "attributions": [], "events": [], "entities": [], "pipeline_version": "0"}
    rec.update(over)
    return rec


def test_single_object_encoder_round_trips_and_names_the_bad_field():
    enc = SingleObjectEncoder(ENRICHED_ARTICLE)
    rec = _article()
    assert SingleObjectDecoder(ENRICHED_ARTICLE)(enc(rec))["origin"]["offset"] == 2 ** 40
    with pytest.raises(SchemaError, match=r"origin\.partition: expected int, got str"):
        enc(_article(origin={"topic": "raw", "partition": "3", "offset": 1, "timestamp": None}))
    with pytest.raises(SchemaError, match=r"article_id: missing"):
        enc({k: v for k, v in _article().items() if k != "article_id"})
    with pytest.raises(SchemaError, match="cannot be written"):
        enc(_article(body="lone \ud800 surrogate"))


def test_compile_writer_refuses_what_it_cannot_write():
    with pytest.raises(SchemaError):
        compile_writer({"type": "record", "name": "U", "fields": [{"name": "u", "type": ["int", "string"]}]})
    with pytest.raises(SchemaError):
        compile_writer("string")
