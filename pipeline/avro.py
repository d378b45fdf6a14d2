"""Avro schemas and codecs for wirestream's records.

Framings (all decode side detect them from the magic bytes):

* **single-object encoding** (default, no registry needed): ``C3 01`` + the 8-byte little-endian
  CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form + the binary datum, as in the
  Avro specification ("Single-object encoding").
* **Confluent framing**: ``00`` + 4-byte big-endian schema id + binary datum; used with a schema
  registry (see :mod:`pipeline.registry`).

Schemas are parsed once per process (:func:`load_schema`) from ``schemas/*.avsc``, which ship inside the
package as ``pipeline._schemas`` so remote workers have them.
"""

from __future__ import annotations

import functools
import io
import json
import struct
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import fastavro

from pipeline.errors import DecodeError, SchemaError

__all__ = [
    "RAW_ARTICLE",
    "ENRICHED_ARTICLE",
    "DEAD_LETTER",
    "SINGLE_OBJECT_MAGIC",
    "CONFLUENT_MAGIC",
    "load_schema",
    "schema_json",
    "crc64_avro",
    "fingerprint",
    "SingleObjectEncoder",
    "SingleObjectDecoder",
    "decode_any",
]

RAW_ARTICLE = "raw_article"
ENRICHED_ARTICLE = "enriched_article"
DEAD_LETTER = "dead_letter"
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"

_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Avro specification's 64-bit Rabin fingerprint (CRC-64-AVRO) of ``data``."""
    fp = _CRC64_EMPTY
    for b in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ b) & 0xFF]
    return fp


def _schema_path(name: str) -> Path:
    try:
        path = resources.files("pipeline._schemas").joinpath(f"{name}.avsc")
        if path.is_file():
            return Path(str(path))
    except ModuleNotFoundError:
        pass
    path = Path(__file__).resolve().parent.parent / "schemas" / f"{name}.avsc"
    if path.is_file():
        return path
    raise SchemaError(f"schema {name!r} not found: expected schemas/{name}.avsc in the wirestream package; "
                      "reinstall the package (pip install -e .)")


@functools.lru_cache(maxsize=None)
def schema_json(name: str) -> str:
    """The ``.avsc`` text of a schema, as shipped."""
    return _schema_path(name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> Any:
    """The parsed schema (fastavro), cached per process."""
    try:
        return fastavro.parse_schema(json.loads(schema_json(name)))
    except (ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"schemas/{name}.avsc is not a valid Avro schema: {exc}") from exc


@functools.lru_cache(maxsize=None)
def fingerprint(name: str) -> bytes:
    """8-byte little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form."""
    canonical = fastavro.schema.to_parsing_canonical_form(load_schema(name))
    return struct.pack("<Q", crc64_avro(canonical.encode("utf-8")))


class SingleObjectEncoder:
    """Callable: record dict -> Avro single-object encoded bytes for one of our schemas."""

    def __init__(self, name: str):
        self.name = name
        self._schema = load_schema(name)
        self._header = SINGLE_OBJECT_MAGIC + fingerprint(name)

    def __call__(self, record: Mapping[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self._schema, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SchemaError(f"record does not match schema {self.name}: {exc}") from exc
        return buf.getvalue()


class SingleObjectDecoder:
    """Callable: single-object encoded bytes -> dict, for the schemas it knows (by fingerprint)."""

    def __init__(self, *names: str):
        self._by_fp = {fingerprint(n): load_schema(n) for n in names}

    def __call__(self, data: bytes) -> dict:
        if data[:2] != SINGLE_OBJECT_MAGIC or len(data) < 10:
            raise DecodeError("not Avro single-object encoded (no C3 01 header)", error_type="BadFraming")
        schema = self._by_fp.get(data[2:10])
        if schema is None:
            raise DecodeError(
                f"Avro single-object message with unknown schema fingerprint {data[2:10].hex()}; "
                "send it with one of the schemas in schemas/ or use JSON",
                error_type="UnknownSchema",
            )
        return _read(schema, data[10:])


def _read(schema: Any, payload: bytes) -> dict:
    buf = io.BytesIO(payload)
    try:
        record = fastavro.schemaless_reader(buf, schema, None)
    except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise DecodeError(f"Avro payload does not decode with its schema: {exc}", error_type="BadAvro") from exc
    if buf.tell() != len(payload):
        raise DecodeError(
            f"Avro payload has {len(payload) - buf.tell()} trailing bytes after the record", error_type="BadAvro")
    return record


def decode_any(data: bytes, *, names: tuple[str, ...], confluent: Callable[[bytes], dict] | None = None) -> dict:
    """Decode single-object or (with a registry-backed ``confluent`` decoder) Confluent-framed Avro."""
    if data[:2] == SINGLE_OBJECT_MAGIC:
        return SingleObjectDecoder(*names)(data)
    if data[:1] == CONFLUENT_MAGIC and len(data) >= 5:
        if confluent is None:
            raise DecodeError(
                "Confluent-framed Avro (magic byte 0) needs a schema registry: pass --schema-registry-url",
                error_type="NeedsSchemaRegistry",
            )
        return confluent(data)
    raise DecodeError("not Avro: no single-object (C3 01) or Confluent (00) magic bytes", error_type="BadFraming")
