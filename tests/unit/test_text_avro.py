"""Pure helpers: normalization, offsets, Avro framing. No Beam, no broker."""

from __future__ import annotations

import io
import json
import struct

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import avro
from pipeline.errors import DecodeError
from pipeline.text import OffsetMap, content_hash, cut_spans, normalize, normalized_utf8, paragraphs, sha256_hex


def test_normalize_and_hash_ignore_layout_not_words():
    assert normalize("  Hello\n\tWORLD ") == "hello world"
    assert content_hash("T", "a  b\nc") == content_hash("t", "a b c")
    assert content_hash("Dividend: Acme", "Qtly div 10 cts") != content_hash("Dividend: Bolt", "Qtly div 10 cts")


# ASCII text of every kind (control characters and all of str.split()'s whitespace in runs), and any text.
_ASCII = st.text(st.characters(max_codepoint=127), max_size=80)
_SPACEY = st.text(st.sampled_from(" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000aZ.\u00c9\u212b\ufb01"),
                  max_size=80)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_ASCII, _SPACEY, st.text(max_size=80)))
def test_normalized_utf8_is_normalize_encoded(text):
    assert normalized_utf8(text) == normalize(text).encode("utf-8", "surrogatepass")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), _ASCII, _SPACEY), st.one_of(_ASCII, _SPACEY, st.text(max_size=80)))
def test_content_hash_is_the_hash_of_the_normalized_text(title, body):
    # content hashes are stored in the sink and read back by the warm start: their definition is fixed
    assert content_hash(title, body) == sha256_hex(normalize(title or "") + "\n" + normalize(body))


def test_paragraph_spans_point_into_the_body():
    body = "First para.\n\n  Second para.  \nThird"
    ps = paragraphs(body)
    assert [p.text for p in ps] == ["First para.", "Second para.", "Third"]
    assert all(body[p.start:p.end] == p.text for p in ps)


@pytest.mark.parametrize("removed", [[], [(0, 3)], [(2, 5), (7, 9)], [(4, 8), (2, 6)], [(9, 10)]])
def test_offset_map_inverts_cut_spans(removed):
    raw = "0123456789"
    clean = cut_spans(raw, removed)
    m = OffsetMap(removed)
    for i, ch in enumerate(clean):
        assert raw[m.to_raw(i)] == ch
    for i in range(len(clean)):
        for j in range(i + 1, len(clean) + 1):
            a, b = m.span(i, j)
            inside = [(max(x, a) - a, min(y, b) - a) for x, y in removed if x < b and y > a]
            assert cut_spans(raw[a:b], inside) == clean[i:j]


def test_crc64_avro_matches_the_spec_reference_value():
    # Avro's schema-tests.txt: the fingerprint of "int" is the little-endian bytes 8f5c393f1ad57572
    assert struct.pack("<Q", avro.crc64_avro(b'"int"')) == bytes.fromhex("8f5c393f1ad57572")


@pytest.mark.parametrize("name", [avro.RAW_ARTICLE, avro.ENRICHED_ARTICLE, avro.DEAD_LETTER])
def test_every_schema_parses_and_documents_its_fields(name):
    schema = json.loads(avro.schema_json(name))
    assert schema["namespace"] == "io.wirestream.v1" and schema.get("doc")

    def walk(rec):
        for f in rec["fields"]:
            assert f.get("doc"), f"{name}.{f['name']} has no doc"
            t = f["type"]
            if isinstance(t, list):
                assert t[0] == "null" and "default" in f, f"optional {name}.{f['name']} needs a null default"
            if isinstance(t, dict) and t.get("type") == "record":
                walk(t)

    walk(schema)
    avro.load_schema(name)


def test_single_object_round_trip_with_an_independent_reader():
    enc = avro.SingleObjectEncoder(avro.RAW_ARTICLE)
    data = enc({"id": "x", "publisher": None, "url": None, "title": "T", "published_at": None, "language": "en",
                "body": "Body", "html": None})
    assert data[:2] == b"\xc3\x01"
    canonical = fastavro.schema.to_parsing_canonical_form(avro.load_schema(avro.RAW_ARTICLE))
    assert data[2:10] == struct.pack("<Q", avro.crc64_avro(canonical.encode()))
    rec = fastavro.schemaless_reader(io.BytesIO(data[10:]), avro.load_schema(avro.RAW_ARTICLE), None)
    assert rec["body"] == "Body"
    assert avro.SingleObjectDecoder(avro.RAW_ARTICLE)(data) == rec


def test_decoder_names_what_is_wrong():
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        avro.SingleObjectDecoder(avro.RAW_ARTICLE)(b"\xc3\x01" + b"\x00" * 8 + b"\x02")
    with pytest.raises(DecodeError, match="schema registry"):
        avro.decode_any(b"\x00\x00\x00\x00\x01abc", names=(avro.RAW_ARTICLE,))
    enc = avro.SingleObjectEncoder(avro.RAW_ARTICLE)({"body": "x"})
    with pytest.raises(DecodeError, match="trailing"):
        avro.SingleObjectDecoder(avro.RAW_ARTICLE)(enc + b"junk")
