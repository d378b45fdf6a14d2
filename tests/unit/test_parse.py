"""Parsing and validation of raw messages (pure)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.avro import RAW_ARTICLE, SingleObjectEncoder
from pipeline.errors import RecordError
from pipeline.parse import ParseLimits, derive_id, parse_iso_ms, parse_value


def _msg(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_json_article_round_trip():
    f = parse_value(_msg(id="a1", publisher="P", title="T", published_at="2020-05-28T10:15:00Z", body="One.\nTwo."))
    assert (f.article_id, f.publisher, f.title, f.raw_body) == ("a1", "P", "T", "One.\nTwo.")
    assert f.published_at == 1590660900000


def test_avro_single_object_input_is_detected():
    data = SingleObjectEncoder(RAW_ARTICLE)({"id": "av", "body": "Avro body", "title": None})
    assert parse_value(data).raw_body == "Avro body"


def test_utf16_with_bom_is_read():
    f = parse_value(json.dumps({"id": "u16", "body": "Привет"}).encode("utf-16"))
    assert f.raw_body == "Привет"


def test_missing_id_is_derived_stably_from_url_else_content():
    a = parse_value(_msg(url="https://x.example/1", body="b"))
    b = parse_value(_msg(url="https://x.example/1", body="other"))
    assert a.article_id == b.article_id and a.article_id.startswith("url-")
    assert parse_value(_msg(body="same")).article_id == derive_id(None, None, "same")


@pytest.mark.parametrize("value, error_type", [
    (b"", "EmptyMessage"),
    (None, "EmptyMessage"),
    (b"not json", "InvalidJson"),
    (b"\xff\xfe\xfd", "InvalidEncoding"),
    (b"[1, 2]", "WrongShape"),
    (b'{"body": 3}', "WrongFieldType"),
    (b'{"body": "   "}', "MissingBody"),
    (b'{"body": "\\u00a0\\u2003\\n\\t"}', "MissingBody"),  # Unicode spaces are blank too
    (b'{"body": " ", "html": " \\n "}', "MissingBody"),
    (b'{"title": "only"}', "MissingBody"),
    (b'{"body": "nul\\u0000byte"}', "BinaryBody"),
    (b"[" * 100000 + b"]" * 100000, "InvalidJson"),
    (b"\x00\x00\x00\x00\x07xx", "NeedsSchemaRegistry"),
])
def test_malformed_messages_get_a_named_error_and_a_reason(value, error_type):
    with pytest.raises(RecordError) as info:
        parse_value(value)
    assert info.value.error_type == error_type
    assert len(str(info.value)) > 15


def test_limits_reject_oversized_input():
    with pytest.raises(RecordError) as info:
        parse_value(_msg(body="x" * 2000), limits=ParseLimits(max_message_bytes=1000))
    assert info.value.error_type == "MessageTooLarge"
    with pytest.raises(RecordError) as info:
        parse_value(_msg(body="x" * 2000), limits=ParseLimits(max_body_chars=1000))
    assert info.value.error_type == "BodyTooLarge"


def test_bad_date_is_flagged_not_rejected():
    f = parse_value(_msg(body="b", published_at="last Tuesday"))
    assert f.published_at is None and "unparsed_published_at" in f.flags
    assert parse_iso_ms("2020-05-28T10:15:00") == parse_iso_ms("2020-05-28T10:15:00+00:00")


def test_html_body_is_turned_into_text_by_the_given_extractor():
    f = parse_value(_msg(html="<p>Hello</p><p>World</p>"), html_to_text=lambda h: "Hello\nWorld")
    assert f.raw_body == "Hello\nWorld" and "html_extracted" in f.flags
    # a blank body (any whitespace) gives way to the html; a body that is HTML is read as html
    f = parse_value(_msg(body=" \u00a0\n", html="<p>Hi</p>"), html_to_text=lambda h: "Hi")
    assert f.raw_body == "Hi" and "html_extracted" in f.flags
    f = parse_value(_msg(body="  <div><p>A</p></div>"), html_to_text=lambda h: "A")
    assert f.raw_body == "A" and "html_extracted" in f.flags
    f = parse_value(_msg(body="x" * 150 + "<p>a</p><p>b</p>"), html_to_text=lambda h: "no")
    assert f.raw_body.startswith("x") and "html_extracted" not in f.flags  # not HTML at the start


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_either_parse_or_raise_a_record_error(data):
    try:
        parse_value(data, html_to_text=lambda h: h)
    except RecordError as exc:
        assert exc.error_type and str(exc)


def _outcome(value):
    try:
        return parse_value(value, html_to_text=lambda h: h)
    except RecordError as exc:
        return (type(exc).__name__, exc.error_type, str(exc))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "body", "title", "url", "html", "published_at", "x"]), inner, max_size=5),
    max_leaves=10)
_EDGE_CASES = [b'{"body": "a", "body": "b"}', b'{"body": "b", "x": 1e400}', b'{"body": NaN}',
               b'{"body": "\\ud800"}', b'\xef\xbb\xbf{"body": "bom"}', '{"body": "utf16"}'.encode("utf-16"),
               b'{"body": "b", "x": 123456789012345678901234567890}', b'{"body": "\xff"}', b'{"body": "\x01"}']


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.sampled_from(_EDGE_CASES),
                 st.binary(max_size=60)))
def test_the_fast_json_reader_changes_no_outcome(value):
    # orjson reads most messages; the json module is the reference for what is accepted and how it reads
    import pipeline.parse as parse

    assert parse._fast_loads is not None, "orjson is a dependency (setup.py)"
    fast = _outcome(value)
    parse._fast_loads, saved = None, parse._fast_loads
    try:
        assert _outcome(value) == fast
    finally:
        parse._fast_loads = saved
