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
    "compile_writer",
    "schema_writer",
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


# ------------------------------------------------------------------------------------- compiled writer
#
# fastavro's writer interprets the schema for every record (and resolves every [null, T] union by trying
# its branches); on wirestream's output schema that was ~25 us per record, the largest single cost of the
# I/O path after JSON parsing. compile_writer() turns a parsed schema into nested Python closures once;
# they write the same bytes (tests/unit/test_avro_writer.py checks them against fastavro on generated
# records of every shape the schemas allow).

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


# Varint pieces: 14 bits as two bytes with the continuation bit set, 7 bits as one, the last 7 bits alone.
_CONT14 = [bytes(((v & 0x7F) | 0x80, (v >> 7) | 0x80)) for v in range(1 << 14)]
_CONT7 = [bytes((v | 0x80,)) for v in range(1 << 7)]
_LAST7 = [bytes((v,)) for v in range(1 << 7)]


def _zigzag(n: int) -> bytes:
    """An Avro long: zig-zag, then a varint of 7-bit groups, low first, 14 bits a step (the timestamps
    every record carries take 6 bytes: 0.53 vs 0.77 us a bit-at-a-time loop)."""
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit an Avro long")
    n = (n << 1) ^ (n >> 63)
    out = b""
    while n >= 1 << 14:
        out += _CONT14[n & 0x3FFF]
        n >>= 14
    if n >= 1 << 7:
        out += _CONT7[n & 0x7F]
        n >>= 7
    return out + _LAST7[n]


_SMALL_LONGS = [_zigzag(i) for i in range(8192)]


def _long(n: int) -> bytes:
    return _SMALL_LONGS[n] if 0 <= n < 8192 else _zigzag(n)


class _WriteError(Exception):
    """A datum that does not match the schema: the path to it and what was wrong."""


def _bad(path: str, what: str, value: Any):
    raise _WriteError(f"{path}: expected {what}, got {type(value).__name__} {value!r:.60}")


def _missing(path: str):
    raise _WriteError(f"{path}: missing, and it has no default")


class _Codegen:
    """Generates the Python source of a writer for a parsed schema: one function per named record, each
    field written inline (no call per field), unions [null, T] as an if."""

    def __init__(self):
        self.lines: list = []
        self.consts: dict = {}
        self.records: dict = {}  # full name -> function name
        self._n = 0

    def var(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: Any) -> str:
        name = self.var("c")
        self.consts[name] = value
        return name

    def record_fn(self, schema: dict) -> str:
        name = schema["name"]
        if name in self.records:
            return self.records[name]
        fn = self.records[name] = self.var("w_record_")
        body: list = []
        for f in schema["fields"]:
            ftype = f["type"]
            optional = "default" in f or ftype == "null" or (isinstance(ftype, list) and "null" in ftype)
            x = self.var("x")
            if optional:
                body.append(f"{x} = v.get({f['name']!r}, {self.const(f.get('default'))})")
            else:
                body.append(f"{x} = v.get({f['name']!r}, MISSING)")
                body.append(f"if {x} is MISSING: _missing(path + {('.' + f['name'])!r})")
            body.extend(self.write(ftype, x, f"path + {('.' + f['name'])!r}"))
        self.lines.append(f"def {fn}(v, out, path):")
        self.lines.append("    if not isinstance(v, dict) and not isinstance(v, Mapping): _bad(path, 'record (dict)', v)")
        self.lines.extend("    " + line for line in body)
        self.lines.append("")
        return fn

    def write(self, schema: Any, x: str, path: str) -> list:
        """Lines writing the value in variable ``x`` (``path``: an expression naming it in errors)."""
        if isinstance(schema, list):
            if len(schema) == 2 and "null" in schema:
                null_at = schema.index("null")
                inner = self.write(schema[1 - null_at], x, path)
                return ([f"if {x} is None: out += {_long(null_at)!r}", "else:",
                         f"    out += {_long(1 - null_at)!r}"] + ["    " + line for line in inner])
            if len(schema) == 1:
                return ["out += b'\\x00'"] + self.write(schema[0], x, path)
            raise SchemaError(f"unions other than [null, T] are not supported by the compiled writer: {schema}")
        if isinstance(schema, str):
            if schema in self.records:
                return [f"{self.records[schema]}({x}, out, {path})"]
            schema = {"type": schema}
        t = schema["type"]
        if isinstance(t, (dict, list)):
            return self.write(t, x, path)
        if t == "null":
            return [f"if {x} is not None: _bad({path}, 'null', {x})"]
        if t == "boolean":
            return [f"if {x} is True: out += b'\\x01'", f"elif {x} is False: out += b'\\x00'",
                    f"else: _bad({path}, 'boolean', {x})"]
        if t in ("int", "long"):
            lines = []
            logical = schema.get("logicalType")
            if logical in ("timestamp-millis", "timestamp-micros"):
                scale = 1000 if logical == "timestamp-millis" else 1_000_000
                lines.append(f"if not isinstance({x}, int) and hasattr({x}, 'timestamp'): "
                             f"{x} = round({x}.timestamp() * {scale})")
            lines += [f"if not isinstance({x}, int): _bad({path}, {t!r}, {x})",
                      f"out += SMALL[{x}] if 0 <= {x} < 8192 else zigzag({x})"]
            return lines
        if t in ("float", "double"):
            fmt = self.const(struct.Struct("<f" if t == "float" else "<d").pack)
            return [f"if not isinstance({x}, (int, float)): _bad({path}, {t!r}, {x})", f"out += {fmt}({x})"]
        if t == "string":
            b = self.var("b")
            return [f"if {x}.__class__ is not str and not isinstance({x}, str): _bad({path}, 'string', {x})",
                    f"{b} = {x}.encode('utf-8')",
                    f"out += SMALL[len({b})] if len({b}) < 8192 else zigzag(len({b}))",
                    f"out += {b}"]
        if t == "bytes":
            return [f"if not isinstance({x}, (bytes, bytearray)): _bad({path}, 'bytes', {x})",
                    f"out += SMALL[len({x})] if len({x}) < 8192 else zigzag(len({x}))",
                    f"out += {x}"]
        if t == "fixed":
            return [f"if not isinstance({x}, (bytes, bytearray)) or len({x}) != {schema['size']}: "
                    f"_bad({path}, 'fixed of {schema['size']} bytes', {x})", f"out += {x}"]
        if t == "enum":
            index = self.const({sym: _long(i) for i, sym in enumerate(schema["symbols"])})
            return [f"if {x} not in {index}: _bad({path}, 'one of {schema['symbols']}', {x})",
                    f"out += {index}[{x}]"]
        if t == "array":
            item = self.var("i")
            inner = self.write(schema["items"], item, f"{path} + '[]'")
            return ([f"if not isinstance({x}, (list, tuple)): _bad({path}, 'array (list)', {x})",
                     f"if {x}:", f"    out += SMALL[len({x})] if len({x}) < 8192 else zigzag(len({x}))",
                     f"    for {item} in {x}:"] + ["        " + line for line in inner] + ["out += b'\\x00'"])
        if t == "map":
            k, item = self.var("k"), self.var("i")
            inner = self.write("string", k, f"{path} + '{{key}}'") + self.write(schema["values"], item,
                                                                              f"{path} + '{{}}'")
            return ([f"if not isinstance({x}, dict) and not isinstance({x}, Mapping): _bad({path}, 'map (dict)', {x})",
                     f"if {x}:", f"    out += SMALL[len({x})] if len({x}) < 8192 else zigzag(len({x}))",
                     f"    for {k}, {item} in {x}.items():"] + ["        " + line for line in inner]
                    + ["out += b'\\x00'"])
        if t == "record":
            return [f"{self.record_fn(schema)}({x}, out, {path})"]
        raise SchemaError(f"Avro type {t!r} is not supported by the compiled writer")


def compile_writer(schema: Any) -> Callable[[Mapping[str, Any]], bytes]:
    """A function ``record -> Avro binary datum`` for a parsed record schema (:func:`load_schema`): the
    bytes fastavro's ``schemaless_writer`` writes (tests/unit/test_avro_writer.py), generated once as
    Python source with every field written inline. fastavro interprets the schema for every record and
    resolves each [null, T] union by trying its branches: ~25 us per output record, the largest cost of the
    I/O path after JSON parsing; this is a few times faster. Raises :class:`SchemaError` naming the field
    path when the record does not match."""
    if not (isinstance(schema, dict) and schema.get("type") == "record"):
        raise SchemaError("compile_writer needs a record schema")
    gen = _Codegen()
    top = gen.record_fn(schema)
    env = dict(gen.consts, Mapping=Mapping, MISSING=object(), SMALL=_SMALL_LONGS, zigzag=_zigzag, _bad=_bad,
               _missing=_missing)
    exec(compile("\n".join(gen.lines), f"<avro writer {schema.get('name')}>", "exec"), env)  # noqa: S102
    write = env[top]

    def writer(record: Mapping[str, Any]) -> bytes:
        out = bytearray()
        try:
            write(record, out, "")
        except _WriteError as exc:
            raise SchemaError(str(exc).lstrip(".")) from None
        except (UnicodeEncodeError, OverflowError, struct.error) as exc:
            raise SchemaError(f"value cannot be written: {exc}") from exc
        return bytes(out)

    writer.source = "\n".join(gen.lines)  # for the curious and for tests
    return writer


@functools.lru_cache(maxsize=None)
def schema_writer(name: str) -> Callable[[Mapping[str, Any]], bytes]:
    """:func:`compile_writer` of one of our schemas, compiled once per process (~8 ms for the output
    schema; a local run sets up its encoders afresh, and the writer holds no state)."""
    return compile_writer(load_schema(name))


class SingleObjectEncoder:
    """Callable: record dict -> Avro single-object encoded bytes for one of our schemas."""

    def __init__(self, name: str):
        self.name = name
        self._write = schema_writer(name)
        self._header = SINGLE_OBJECT_MAGIC + fingerprint(name)

    def __call__(self, record: Mapping[str, Any]) -> bytes:
        try:
            return self._header + self._write(record)
        except SchemaError as exc:
            raise SchemaError(f"record does not match schema {self.name}: {exc}") from exc


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
