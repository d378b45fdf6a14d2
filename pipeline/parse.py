"""Pure parsing and validation of raw article messages (no Beam).

``parse_value(bytes) -> RawFields`` detects the format from the first bytes (Avro single-object ``C3 01``,
Confluent ``00``, else JSON in UTF-8/16/32), validates the fields of ``schemas/raw_article.avsc`` and
raises a :class:`~pipeline.errors.RecordError` subclass with a reason a person can act on.

Bodies: ``body`` is plain text with paragraphs on lines; a body that is HTML, or an ``html`` field when
``body`` is absent, is turned into text first. That text is the *raw body*: every offset in the output
refers to it, and ``raw_body_sha256`` hashes it. Nothing is fetched, no entity is resolved, nothing runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional

from pipeline.avro import RAW_ARTICLE, decode_any
from pipeline.errors import BodyTooLarge, DecodeError, InvalidRecord

try:  # 4x faster than json on raw articles (2.4 vs 9.5 us per message); the json module stays the reference
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency; the json module alone gives the same results
    _fast_loads = None

__all__ = ["RawFields", "ParseLimits", "parse_value", "parse_iso_ms", "derive_id", "looks_like_html"]

_STRING_FIELDS = ("id", "publisher", "url", "title", "published_at", "language", "body", "html")
_HTML_START = re.compile(r"^\s*(<!doctype html|<html|<body|<div|<p[ >]|<article|<section|<!--)", re.I)


@dataclass(frozen=True)
class ParseLimits:
    """Size limits: larger inputs are dead-lettered, not processed (a 20 MB body is not an article)."""

    max_message_bytes: int = 4 * 1024 * 1024
    max_body_chars: int = 1_000_000


@dataclass
class RawFields:
    article_id: str
    raw_body: str
    publisher: Optional[str] = None
    url: Optional[str] = None
    title: Optional[str] = None
    language: Optional[str] = None
    published_at: Optional[int] = None  # epoch ms, UTC
    flags: list = field(default_factory=list)


def parse_iso_ms(text: str) -> Optional[int]:
    """ISO-8601 time -> epoch ms (UTC; a time without offset is read as UTC). None if unparseable."""
    t = text.strip()
    if not t:
        return None
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def looks_like_html(text: str) -> bool:
    # match(text, 0, 200) reads the first 200 characters as text[:200] would, without the copy
    return bool(_HTML_START.match(text, 0, 200)) or (text.count("</p>") >= 2 and text.lstrip().startswith("<"))


def derive_id(url: Optional[str], title: Optional[str], body: str) -> str:
    """Stable id for an article sent without one: from its url, else its content."""
    if url:
        return "url-" + hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:24]
    return "content-" + hashlib.sha256(((title or "") + "\n" + body).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _decode_json(value: bytes) -> tuple:
    """``(object, whether every string in it is known to be valid Unicode text)``.

    orjson takes UTF-8 JSON only and refuses what the json module would accept with a caveat (UTF-16/32, a
    BOM, NaN, lone surrogates, numbers beyond a double): those, and every error, go to json.loads, which
    accepts them or names the error. Where both accept, both give the same objects, except that orjson
    reads an integer beyond 64 bits as a float (no raw article field is a number: it is refused either way).
    What orjson accepts holds no lone surrogate, so its strings need no further check.
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(value), True
        except ValueError:
            pass
    try:
        return json.loads(value), False  # detects UTF-8/16/32 (with or without BOM) per RFC 8259
    except UnicodeDecodeError as exc:
        raise DecodeError(f"message is not valid UTF-8 (nor UTF-16/32) JSON: {exc.reason} at byte {exc.start}; "
                          "send UTF-8 JSON or Avro", error_type="InvalidEncoding") from exc
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply to be a raw article", error_type="InvalidJson") from exc
    except ValueError as exc:
        snippet = value[:40]
        raise DecodeError(f"message is neither JSON nor Avro ({exc}); first bytes: {snippet!r}. Send one "
                          "raw_article per message as UTF-8 JSON or Avro", error_type="InvalidJson") from exc


def parse_value(value: Optional[bytes], *, limits: ParseLimits = ParseLimits(),
                html_to_text: Optional[Callable[[str], str]] = None,
                confluent_decoder: Optional[Callable[[bytes], dict]] = None) -> RawFields:
    """Decode and validate one message value. Raises RecordError subclasses."""
    if value is None or len(value) == 0:
        raise InvalidRecord("message has no value (a tombstone or an empty message); a raw article is needed",
                            error_type="EmptyMessage")
    if len(value) > limits.max_message_bytes:
        raise BodyTooLarge(f"message is {len(value)} bytes, over the limit of {limits.max_message_bytes} "
                           "(--max-message-bytes); split it or raise the limit", error_type="MessageTooLarge")
    text_checked = False
    if value[:2] == b"\xc3\x01" or value[:1] == b"\x00":
        obj = decode_any(value, names=(RAW_ARTICLE,), confluent=confluent_decoder)
    else:
        obj, text_checked = _decode_json(value)
    if not isinstance(obj, dict):
        raise InvalidRecord(f"message is JSON {type(obj).__name__}, not an object with raw_article fields "
                            "(id, publisher, url, title, published_at, language, body|html)", error_type="WrongShape")
    bad = [k for k in _STRING_FIELDS if not isinstance(obj.get(k, ""), (str, type(None)))]
    if bad:
        raise InvalidRecord(", ".join(f"field {k!r} must be a string or null, got {type(obj[k]).__name__}"
                                      for k in bad), error_type="WrongFieldType")
    for k in () if text_checked else _STRING_FIELDS:
        v = obj.get(k)
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate from a JSON \ud800 escape: not text
                raise InvalidRecord(f"field {k!r} holds a lone surrogate (U+{ord(v[exc.start]):04X}) at character "
                                    f"{exc.start}: not valid Unicode text; fix the producer's JSON escaping",
                                    error_type="InvalidText") from exc
    flags: list = []
    body = obj.get("body")
    html = obj.get("html")
    # "blank" is tested with isspace(), not strip(): the same test (strip removes what isspace matches),
    # without copying the body (three copies of every body were ~1 us of the I/O path's parse)
    if body and not body.isspace() and looks_like_html(body):
        html, body = body, None
    if (not body or body.isspace()) and html and not html.isspace():
        if len(html) > limits.max_body_chars * 4:
            raise BodyTooLarge(f"html is {len(html)} characters, over {limits.max_body_chars * 4}",
                               error_type="BodyTooLarge")
        if html_to_text is None:
            from pipeline.boilerplate.html import html_to_text as _html_to_text
            html_to_text = _html_to_text
        body = html_to_text(html)
        flags.append("html_extracted")
    if not body or body.isspace():
        raise InvalidRecord("article has no body text (field 'body' empty or missing, and no usable 'html'); "
                            "nothing to process", error_type="MissingBody")
    if len(body) > limits.max_body_chars:
        raise BodyTooLarge(f"body is {len(body)} characters, over the limit of {limits.max_body_chars} "
                           "(--max-body-chars)", error_type="BodyTooLarge")
    if "\x00" in body:
        raise InvalidRecord("body contains NUL characters: not text; fix the producer's encoding",
                            error_type="BinaryBody")
    published_at = None
    if obj.get("published_at"):
        published_at = parse_iso_ms(obj["published_at"])
        if published_at is None:
            flags.append("unparsed_published_at")
    article_id = (obj.get("id") or "").strip() or derive_id(obj.get("url"), obj.get("title"), body)
    return RawFields(
        article_id=article_id,
        raw_body=body,
        publisher=obj.get("publisher"),
        url=obj.get("url"),
        title=obj.get("title"),
        language=obj.get("language"),
        published_at=published_at,
        flags=flags,
    )
