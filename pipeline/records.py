"""The records that flow between stages, and their Beam coders.

* :class:`KafkaRecord` -- one message as read from Kafka (bytes plus origin). Row-coded.
* :class:`Article` -- a ``dict`` shaped like ``schemas/enriched_article.avsc`` plus an internal
  ``_ack`` field (which input offsets this record covers, for offset commits). Coded by
  :class:`ArticleCoder`, driven by that schema: explicit (no pickling), deterministic, fast.
* :class:`DeadLetter` -- a ``dict`` shaped like ``schemas/dead_letter.avsc`` plus ``_ack``.
* :class:`Ack` -- "these input offsets are done" (written, dropped as duplicate, or dead-lettered).

Stages never mutate an input element: they copy (``Article(article)``) and set fields on the copy.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import numbers
import operator
import typing
from collections.abc import Mapping, Sequence
from typing import Any, List, NamedTuple, Optional

import fastavro
from apache_beam import coders
from apache_beam.coders import coder_impl
from apache_beam.coders.coders import FastCoder

from pipeline import __version__
from pipeline.avro import DEAD_LETTER, ENRICHED_ARTICLE, schema_json
from pipeline.text import content_hash, sha256_hex

__all__ = [
    "Header",
    "KafkaRecord",
    "Ack",
    "Article",
    "DeadLetter",
    "ArticleCoder",
    "DeadLetterCoder",
    "new_article",
    "new_dead_letter",
    "dead_letter_for_article",
    "ack_of",
    "register_row_type",
]


class Header(NamedTuple):
    key: str
    value: Optional[bytes]


class KafkaRecord(NamedTuple):
    """A Kafka message and where it came from.

    ``covers_from`` .. ``offset`` is the offset range this record accounts for in its partition (the
    reader's previous position + 1 up to this offset; more than one offset where the log has gaps such as
    transaction markers). ``run_start`` is where this run started reading the partition.
    """

    topic: str
    partition: int
    offset: int
    timestamp: Optional[int]  # Kafka timestamp, ms since epoch
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Header]
    covers_from: int
    run_start: int


class Ack(NamedTuple):
    """Input offsets ``[covers_from, offset]`` of ``topic``/``partition`` are fully handled."""

    topic: str
    partition: int
    covers_from: int
    offset: int
    run_start: int


def register_row_type(cls: type) -> type:
    """Register a NamedTuple for Beam's RowCoder, with its field types resolved.

    Modules written with ``from __future__ import annotations`` keep annotations as strings; Beam reads
    them as they are, and a field whose type it cannot read becomes a *pickled* ``pythonsdk_any`` field
    in the row schema: slower, Python-only, and exactly the silent pickling a portable pipeline must not
    have (tests/unit/test_portability.py walks every row schema for it).
    """
    cls.__annotations__ = typing.get_type_hints(cls)
    coders.registry.register_coder(cls, coders.RowCoder)
    return cls


register_row_type(Header)
register_row_type(KafkaRecord)
register_row_type(Ack)

_ACK_FIELD = {
    "name": "_ack",
    "doc": "internal: input offsets this record covers",
    "type": ["null", {
        "type": "record", "name": "InternalAck", "fields": [
            {"name": "topic", "type": "string"},
            {"name": "partition", "type": "int"},
            {"name": "covers_from", "type": "long"},
            {"name": "offset", "type": "long"},
            {"name": "run_start", "type": "long"},
        ]}],
    "default": None,
}


_INTERNAL_FIELDS = [
    _ACK_FIELD,
    # The original message, so a later stage that fails on this article can dead-letter its bytes.
    {"name": "_key", "type": ["null", "bytes"], "default": None},
    {"name": "_value", "type": ["null", "bytes"], "default": None},
]


@functools.lru_cache(maxsize=None)
def _inflight_schema(name: str) -> Any:
    # In flight, times stay plain epoch-millisecond ints: drop logical types so fastavro does not
    # turn them into datetimes on decode.
    schema = json.loads(schema_json(name), object_hook=_without_logical_type)
    schema["name"] = "InFlight" + schema["name"]
    schema["fields"] = schema["fields"] + [copy.deepcopy(f) for f in _INTERNAL_FIELDS]
    return fastavro.parse_schema(schema)


def _without_logical_type(obj: dict) -> Any:
    if obj.get("logicalType") and obj.get("type") in ("long", "int"):
        return obj["type"]
    return obj


class Article(dict):
    """An enriched article in flight (a dict in the shape of enriched_article.avsc + ``_ack``)."""


class DeadLetter(dict):
    """A dead letter in flight (a dict in the shape of dead_letter.avsc + ``_ack``)."""


# --- The in-flight coder ------------------------------------------------------------------------------
#
# Every shuffle pays this per article (stateful stages, reshuffles, ListCoder[ArticleCoder] before NLP),
# so it is built for speed without giving up being explicit and deterministic:
#
# 1. From the in-flight schema, generate (once per schema, on first use) a converter from the dict to its
#    *canonical form*: a tuple of the record's slots in a fixed order derived from the schema (see
#    _layout: its primitive fields, then those of its record fields spliced in, then its arrays of
#    records and nullable records, each converted in turn), every value of the exact type the schema
#    asks for (str, int, float, bool, bytes, None, list). Fields are read by name, so the encoding never
#    depends on the dict's key order; missing fields take the schema default (None for a nullable one)
#    and extra keys are ignored, as with the fastavro coder this replaced.
# 2. Check the slot types in one C-level step: the tuple of their types is looked up in a set of
#    signatures already checked against the schema. Anything else -- a wrong type, a subclass, a
#    bytearray, a float for a long -- goes to a slow schema-driven path (_Canonical) that normalises what
#    fastavro accepted (bytearray -> bytes, bool or float -> int, int -> float for a double, ...) to the
#    same canonical form, and raises a TypeError/ValueError naming the field for the rest.
# 3. Encode the canonical form with Beam's Cython ``FastPrimitivesCoderImpl``, whose encoding of None,
#    bool, int, float, str, bytes, list and tuple is a function of the value alone. Its pickling fallback
#    is replaced by one that raises; only checked canonical values ever reach it.
#
# Decoding is the reverse: FastPrimitives decodes the tuple, a generated function unpacks it into dict
# displays, nested and keyed in schema order as fastavro returned them (the top level an Article or
# DeadLetter). The bytes are an in-flight format only (shuffles, state): the sink writes Avro (avro.py).

_NO_DEFAULT = object()
_NONE_TYPE = type(None)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_PRIMITIVE_TYPES = {"null": _NONE_TYPE, "boolean": bool, "int": int, "long": int, "double": float,
                    "bytes": bytes, "string": str}


class _Rec:
    __slots__ = ("name", "fields", "layout")

    def __init__(self, name: str, fields: tuple):
        self.name = name
        self.fields = fields  # of (name, node, default or _NO_DEFAULT)
        self.layout: Optional[tuple] = None  # see _layout


class _Arr(NamedTuple):
    items: Any


class _Opt(NamedTuple):
    """A union of null and one other type."""

    inner: Any


def _schema_tree(avro: Any, named: dict) -> Any:
    """The fastavro-parsed schema as a tree of _Rec/_Arr/_Opt and primitive type names."""
    if isinstance(avro, str):
        if avro in _PRIMITIVE_TYPES:
            return avro
        if named.get(avro) is not None:
            return named[avro]
        raise NotImplementedError(f"in-flight coder: unsupported or recursive type reference {avro!r}")
    if isinstance(avro, list):
        others = [b for b in avro if b != "null"]
        if len(avro) == 2 and len(others) == 1:
            return _Opt(_schema_tree(others[0], named))
        raise NotImplementedError(f"in-flight coder: only unions of null and one type are supported: {avro}")
    kind = avro["type"]
    if kind == "record":
        named[avro["name"]] = None  # being defined: a reference to it now would be recursive
        rec = _Rec(avro["name"], tuple((f["name"], _schema_tree(f["type"], named), f.get("default", _NO_DEFAULT))
                                       for f in avro["fields"]))
        named[avro["name"]] = rec
        return rec
    if kind == "array":
        items = _schema_tree(avro["items"], named)
        if isinstance(items, _Arr) or (isinstance(items, _Opt) and isinstance(items.inner, _Arr)):
            raise NotImplementedError("in-flight coder: arrays of arrays are not supported")
        return _Arr(items)
    if kind in _PRIMITIVE_TYPES:  # {"type": "long"}
        return kind
    raise NotImplementedError(f"in-flight coder: unsupported Avro type {kind!r}")


def _allowed_types(node: Any) -> frozenset:
    """The exact Python types of ``node``'s canonical form."""
    if isinstance(node, _Opt):
        return frozenset({_NONE_TYPE}) | _allowed_types(node.inner)
    if isinstance(node, _Rec):
        return frozenset({tuple})
    if isinstance(node, _Arr):
        return frozenset({list})
    return frozenset({_PRIMITIVE_TYPES[node]})


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


class _Canonical:
    """The slow path: ``value`` in canonical form, checked and normalised field by field against the
    schema the way fastavro's writer accepted it; raises TypeError/ValueError naming the field."""

    def __init__(self, label: str):
        self._label = label

    def _fail(self, exc_type: type, path: str, problem: str) -> Exception:
        return exc_type(f"{self._label}: {f'field {path!r}' if path else 'the value'} {problem}")

    def __call__(self, node: Any, value: Any, path: str = "", in_union: bool = False) -> Any:
        if isinstance(node, _Opt):
            return None if value is None else self(node.inner, value, path, in_union=True)
        if isinstance(node, _Rec):
            return self._record(node, value, path)
        if isinstance(node, _Arr):
            # an ordered collection: a set's order would make the encoding depend on the hash seed
            if not isinstance(value, Sequence) or (in_union and isinstance(value, str)):
                raise self._fail(TypeError, path, f"must be an array (a sequence), got {_describe(value)}")
            return [self(node.items, item, f"{path}[{i}]") for i, item in enumerate(value)]
        return getattr(self, "_" + node)(value, path, in_union)

    def _record(self, node: _Rec, value: Any, path: str) -> tuple:
        slots: dict = {}
        self._collect(node, value, path, (), slots)
        return tuple(slots[p] for p, _n in _layout(node))

    def _collect(self, node: _Rec, value: Any, path: str, prefix: tuple, slots: dict) -> None:
        """The canonical values of ``node``'s slots (see _layout) into ``slots``, by path."""
        if not isinstance(value, Mapping):
            raise self._fail(TypeError, path, f"must be a record (a mapping), got {_describe(value)}")
        for name, child, default in node.fields:
            where = f"{path}.{name}" if path else name
            if name in value:
                v = value[name]
            elif default is not _NO_DEFAULT:
                v = default
            elif isinstance(child, _Opt):
                v = None
            else:
                raise self._fail(ValueError, where, "has no value and no default")
            if isinstance(child, _Rec):
                self._collect(child, v, where, prefix + (name,), slots)
            else:
                slots[prefix + (name,)] = self(child, v, where)

    def _null(self, value, path, in_union):
        if value is not None:
            raise self._fail(TypeError, path, f"must be null, got {_describe(value)}")

    def _string(self, value, path, in_union):
        if not isinstance(value, str):
            raise self._fail(TypeError, path, f"must be a string, got {_describe(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: fastavro refused it too
            raise UnicodeEncodeError(exc.encoding, exc.object, exc.start, exc.end,
                                     f"{exc.reason} (field {path!r} of {self._label})") from exc
        return str.__str__(value)  # an exact str, whatever a subclass's __str__ says

    def _bytes(self, value, path, in_union):
        if not isinstance(value, (bytes, bytearray)):
            raise self._fail(TypeError, path, f"must be bytes, got {_describe(value)}")
        return bytes(value)

    def _boolean(self, value, path, in_union):
        if in_union and not isinstance(value, bool):
            raise self._fail(TypeError, path, f"must be a boolean, got {_describe(value)}")
        return bool(value)

    def _long(self, value, path, in_union):
        if isinstance(value, numbers.Integral) and not (in_union and isinstance(value, bool)):
            n = int(value)
        elif isinstance(value, numbers.Real) and not in_union and math.isfinite(value):
            n = int(value)  # fastavro's writer truncated a float given for a long
        else:
            raise self._fail(TypeError, path, f"must be an integer, got {_describe(value)}")
        if not _INT64_MIN <= n <= _INT64_MAX:
            raise self._fail(ValueError, path, f"is out of the 64-bit range: {n}")
        return n

    _int = _long

    def _double(self, value, path, in_union):
        if not isinstance(value, numbers.Real) or (in_union and isinstance(value, bool)):
            raise self._fail(TypeError, path, f"must be a number, got {_describe(value)}")
        try:
            return float(value)
        except OverflowError as exc:
            raise self._fail(ValueError, path, f"is out of the range of a double: {value}") from exc


class _RaisingImpl(coder_impl.StreamCoderImpl):
    """FastPrimitives' fallback: where it would pickle, fail instead (only checked values reach it)."""

    def __init__(self, label: str):
        self._label = label

    def encode_to_stream(self, value, stream, nested):
        raise TypeError(f"{self._label}: cannot encode {_describe(value)} explicitly")

    def decode_from_stream(self, stream, nested):
        raise ValueError(f"{self._label}: not bytes of this coder (a pickled value)")


def _is_leaf(node: Any) -> bool:
    """A value that is its own canonical form: a primitive or an array of primitives, nullable or not."""
    if isinstance(node, _Opt):
        node = node.inner
    if isinstance(node, _Arr):
        node = node.items
    if isinstance(node, _Opt):
        node = node.inner
    return isinstance(node, str)


def _layout(rec: _Rec) -> tuple:
    """The slots of ``rec``'s canonical tuple, in order: ``(path of field names, node)``.

    First ``rec``'s leaves (one ``itemgetter`` reads them), then the slots of each record field, spliced
    in (recursively), then the fields that need converting (arrays of records, nullable records)."""
    if rec.layout is not None:
        return rec.layout
    leaves = [((name,), node) for name, node, _d in rec.fields if _is_leaf(node)]
    spliced = [((name,) + path, n) for name, node, _d in rec.fields if isinstance(node, _Rec)
               for path, n in _layout(node)]
    converted = [((name,), node) for name, node, _d in rec.fields
                 if not _is_leaf(node) and not isinstance(node, _Rec)]
    rec.layout = tuple(leaves + spliced + converted)
    return rec.layout


class _CodeGen:
    """Generates the converters dict -> canonical tuple (type-checked) and back, for one schema.

    Encoding a record: its leaves with one ``itemgetter`` (C speed), a record field's likewise, spliced in;
    when a key is missing, again field by field with the defaults. Then one check of all slot types (a
    lookup of their signature); on a miss, the slow path. An array of flat records: an ``itemgetter`` per
    item, the types checked column by column. Decoding: one unpacking (which checks the arity) into a dict
    display, nested as the schema is.
    """

    def __init__(self, canonical: _Canonical):
        self.canonical = canonical
        self.ns: dict = {"_tuple": tuple, "_list": list, "_map": map, "_type": type, "_zip": zip,
                         "_Sequence": Sequence}
        self.lines: List[str] = []
        self._done: dict = {}
        self._n = 0

    def const(self, value: Any, prefix: str) -> str:
        self._n += 1
        name = f"_{prefix}{self._n}"
        self.ns[name] = value
        return name

    def var(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def _once(self, kind: str, rec: _Rec, build) -> str:
        key = (kind, id(rec))
        if key not in self._done:
            self._done[key] = name = self.var(f"_{kind}_")
            build(name)
        return self._done[key]

    # -- dict -> canonical tuple --------------------------------------------------------------------
    def enc_expr(self, node: Any, src: str) -> str:
        """The canonical form of a field that needs converting (see _layout), read by ``src``."""
        if _is_leaf(node):
            return src
        if isinstance(node, _Opt):
            v = self.var("v")
            return f"(None if ({v} := {src}) is None else {self.enc_expr(node.inner, v)})"
        if isinstance(node, _Rec):
            return f"{self.enc_fn(node)}({src})"
        items = node.items
        if isinstance(items, _Rec):
            v = self.var("v")
            return f"({v} if ({v} := {src}).__class__ is _list and not {v} else {self.enc_list_fn(items)}({v}))"
        x = self.var("x")
        return f"[{self.enc_expr(items, x)} for {x} in {src}]"

    def _parts(self, rec: _Rec, d: str, full: bool) -> tuple:
        """(statements, tuple items) reading the slots of ``rec`` from the mapping named ``d``: all keys
        present (``full`` False: a missing key raises KeyError), or with defaults."""
        stmts, parts = [], []
        g = self.var("g")
        if full:
            stmts.append(f"{g} = {d}.get")

        def read(name, node, default):
            if not full:
                return f"{d}[{name!r}]"
            if default is not _NO_DEFAULT and default is not None:
                return f"{g}({name!r}, {self.const(default, 'default')})"
            if default is None or isinstance(node, _Opt):
                return f"{g}({name!r})"
            return f"{d}[{name!r}]"

        leaves = [(name, node, default) for name, node, default in rec.fields if _is_leaf(node)]
        if full or len(leaves) < 2:
            parts += [read(*leaf) for leaf in leaves]
        else:
            parts.append(f"*{self.const(operator.itemgetter(*(n for n, _x, _d in leaves)), 'getter')}({d})")
        for name, node, default in rec.fields:
            if isinstance(node, _Rec):
                s = self.var("s")
                stmts.append(f"{s} = {read(name, node, default)}")
                more_stmts, more_parts = self._parts(node, s, full)
                stmts += more_stmts
                parts += more_parts
        for name, node, default in rec.fields:
            if not _is_leaf(node) and not isinstance(node, _Rec):
                parts.append(self.enc_expr(node, read(name, node, default)))
        return stmts, parts

    def enc_fn(self, rec: _Rec) -> str:
        return self._once("enc", rec, lambda name: self._enc_fn(rec, name))

    def _enc_fn(self, rec: _Rec, name: str) -> None:
        layout = _layout(rec)
        slow = self.const(functools.partial(self.canonical, rec), "slow")
        allowed = tuple(_allowed_types(node) for _p, node in layout)
        checked = self.const(set(), "checked")
        admit = self.const(functools.partial(_admit, self.ns[checked], allowed), "admit")
        full = self.var(f"{name}_full_")
        stmts, parts = self._parts(rec, "d", full=True)
        self.lines += [f"def {full}(d):  # {rec.name}, with defaults"] + [f"    {s}" for s in stmts]
        self.lines += ["    return ("] + [f"        {p}," for p in parts] + ["    )", ""]
        stmts, parts = self._parts(rec, "d", full=False)
        self.lines += [f"def {name}(d):  # {rec.name}", "    try:"] + [f"        {s}" for s in stmts]
        if len(parts) == 1 and parts[0].startswith("*"):  # the record's leaves, all of it
            self.lines.append(f"        t = {parts[0][1:]}")
        else:
            self.lines += ["        t = ("] + [f"            {p}," for p in parts] + ["        )"]
        self.lines += ["    except KeyError:", f"        t = {full}(d)",
                       f"    if _tuple(_map(_type, t)) not in {checked} and not {admit}(t):",
                       f"        return {slow}(d)"]
        for i, (_path, node) in enumerate(layout):
            array = node.inner if isinstance(node, _Opt) else node
            if isinstance(array, _Arr) and _is_leaf(array):
                items = self.const(_allowed_types(array.items), "items")
                self.lines += [f"    if t[{i}] and not {items}.issuperset(_map(_type, t[{i}])):",
                               f"        return {slow}(d)"]
        self.lines += ["    return t", ""]

    def enc_list_fn(self, rec: _Rec) -> str:
        return self._once("enc_list", rec, lambda name: self._enc_list_fn(rec, name))

    def _enc_list_fn(self, rec: _Rec, name: str) -> None:
        one = self.enc_fn(rec)
        if len(rec.fields) < 2 or not all(isinstance(node.inner if isinstance(node, _Opt) else node, str)
                                          for _f, node, _d in rec.fields):
            self.lines += [f"def {name}(v):  # [{rec.name}]", f"    return _list(_map({one}, v))", ""]
            return
        # Records of primitives only: an itemgetter per item, then the types column by column.
        getter = self.const(operator.itemgetter(*(f for f, _n, _d in rec.fields)), "getter")
        cols = [self.var("c") for _f in rec.fields]
        ok = " and\n                ".join(
            f"{self.const(_allowed_types(node), 'allowed')}.issuperset(_map(_type, {c}))"
            for c, (_f, node, _d) in zip(cols, rec.fields))
        self.lines += [
            f"def {name}(v):  # [{rec.name}]",
            "    try:",
            f"        rows = _list(_map({getter}, v))",
            "    except KeyError:  # a key missing: item by item, with defaults",
            "        rows = None",
            "    if rows is not None:",
            f"        {', '.join(cols)}, = _zip(*rows) if rows else {((),) * len(cols)}",
            f"        if ({ok}):",
            "            return rows",
            "    if not isinstance(v, _Sequence):  # not to be read twice",
            "        raise TypeError('array of records: not a sequence')",
            f"    return _list(_map({one}, v))",
            ""]

    # -- canonical tuple -> dict --------------------------------------------------------------------
    def _display(self, rec: _Rec, names: dict, prefix: tuple = (), sep: str = ", ") -> str:
        """A dict display of ``rec`` in schema order, from the slot variables ``names`` (by path)."""
        items = []
        for field, node, _d in rec.fields:
            path = prefix + (field,)
            if isinstance(node, _Rec):
                items.append(f"{field!r}: {self._display(node, names, path)}")
            elif _is_leaf(node):
                items.append(f"{field!r}: {names[path]}")
            else:
                items.append(f"{field!r}: {self.dec_expr(node, names[path])}")
        return "{" + sep.join(items) + "}"

    def dec_expr(self, node: Any, src: str) -> str:
        """The dict form of a converted field (see _layout) whose canonical form is in the name ``src``."""
        if _is_leaf(node):
            return src
        if isinstance(node, _Opt):
            return f"(None if {src} is None else {self.dec_expr(node.inner, src)})"
        if isinstance(node, _Rec):
            return f"{self.dec_fn(node)}({src})"
        items = node.items
        if isinstance(items, _Rec):
            names = {path: self.var("a") for path, _n in _layout(items)}
            return (f"([{self._display(items, names)} for ({', '.join(names.values())},) in {src}]"
                    f" if {src} else {src})")
        x = self.var("x")
        return f"[{self.dec_expr(items, x)} for {x} in {src}]"

    def dec_fn(self, rec: _Rec, cls: type = dict) -> str:
        return self._once(f"dec_{cls.__name__}", rec, lambda name: self._dec_fn(rec, cls, name))

    def _dec_fn(self, rec: _Rec, cls: type, name: str) -> None:
        names = {path: self.var("f") for path, _n in _layout(rec)}
        display = self._display(rec, names, sep=",\n        ")
        made = display if cls is dict else f"{self.const(cls, 'cls')}({display})"
        self.lines += [f"def {name}(t):  # {rec.name}", f"    {', '.join(names.values())}, = t",
                       f"    return {made}", ""]


def _admit(checked: set, allowed: tuple, t: tuple) -> bool:
    """Whether the slots of ``t`` have types the schema allows; remembers the signature if so."""
    signature = tuple(map(type, t))
    if len(signature) == len(allowed) and all(s in a for s, a in zip(signature, allowed)):
        checked.add(signature)
        return True
    return False


class _InFlightCodec:
    """dict <-> canonical form for one in-flight schema (see the comment above)."""

    def __init__(self, parsed_schema: Any, cls: type, label: str):
        self.root = _schema_tree(parsed_schema, {})
        self.canonical = _Canonical(label)
        gen = _CodeGen(self.canonical)
        fast = gen.enc_fn(self.root)
        from_tuple = gen.dec_fn(self.root, cls)
        self.source = "\n".join(gen.lines)
        exec(compile(self.source, f"<in-flight coder {label}>", "exec"), gen.ns)  # noqa: S102 - our own code
        self.fast = gen.ns[fast]
        self.from_tuple = gen.ns[from_tuple]
        self.primitives = coder_impl.FastPrimitivesCoderImpl(_RaisingImpl(label))

    def slow(self, value: Any) -> tuple:
        """The canonical form by the slow path, or a TypeError/ValueError naming the field."""
        return self.canonical(self.root, value)

    def to_tuple(self, value: Any) -> tuple:
        try:
            return self.fast(value)
        except Exception:  # noqa: BLE001, S110 - anything odd: the slow path normalises it or names the field
            pass
        return self.slow(value)


@functools.lru_cache(maxsize=None)
def _codec(schema_name: str, cls: type, label: str) -> _InFlightCodec:
    return _InFlightCodec(_inflight_schema(schema_name), cls, label)


class _InFlightCoderImpl(coder_impl.StreamCoderImpl):
    """The fast converter, FastPrimitives, and the slow path for anything odd (see the comment above).

    The converter writes nothing, so retrying it on the slow path is safe; if FastPrimitives fails on a
    converted value (an int beyond 64 bits, a lone surrogate), the slow path refuses the value too and
    its error, naming the field, is raised.
    """

    def __init__(self, codec: _InFlightCodec):
        self._fast = codec.fast
        self._slow = codec.slow
        self._from_tuple = codec.from_tuple
        self._primitives = codec.primitives

    def encode_to_stream(self, value, out, nested):
        try:
            t = self._fast(value)
        except Exception:  # noqa: BLE001 - anything odd: the slow path normalises it or names the field
            t = None
        if t is None:
            t = self._slow(value)
        try:
            self._primitives.encode_to_stream(t, out, nested)
        except Exception as exc:
            self._slow(value)  # raises the error naming the field
            raise exc

    def decode_from_stream(self, in_stream, nested):
        return self._from_tuple(self._primitives.decode_from_stream(in_stream, nested))

    def encode(self, value):
        try:
            t = self._fast(value)
        except Exception:  # noqa: BLE001
            t = None
        if t is None:
            t = self._slow(value)
        try:
            return self._primitives.encode(t)
        except Exception as exc:
            self._slow(value)  # raises the error naming the field
            raise exc

    def decode(self, encoded):
        return self._from_tuple(self._primitives.decode(encoded))

    #: The fields that make up nearly all of an article's or a dead letter's size, and its lists of records.
    _BIG = ("body", "_value", "value", "title", "url", "reason")
    _LISTS = ("boilerplate", "attributions", "events", "entities")

    def estimate_size(self, value, nested=False):
        # Beam samples output sizes (a metric) by encoding elements, and a list-of-articles element would
        # be encoded whole for every sample. An estimate is all the metric needs: the texts and bytes that
        # make up nearly all of a record, and ~100 bytes per record in its lists (the I/O path samples
        # every list of a batch: looking at these few fields, not every field, is ~4x cheaper).
        try:
            get = value.get
            size = 200
            for k in self._BIG:
                v = get(k)
                if v is not None:
                    size += len(v)
            for k in self._LISTS:
                v = get(k)
                if v:
                    size += 100 * len(v)
            return size
        except Exception:  # noqa: BLE001 - not a dict: let encoding say what is wrong
            return len(self.encode(value))

    def get_estimated_size_and_observables(self, value, nested=False):
        return self.estimate_size(value, nested), []


class _InFlightCoder(FastCoder):
    """Explicit, deterministic coder of an in-flight dict record (see the comment above)."""

    _schema_name: str
    _type: type

    def _create_impl(self):
        return _InFlightCoderImpl(_codec(self._schema_name, self._type, type(self).__name__))

    def is_deterministic(self):
        return True

    def to_type_hint(self):
        return self._type

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))

    def __reduce__(self):
        return (type(self), ())


class ArticleCoder(_InFlightCoder):
    _schema_name = ENRICHED_ARTICLE
    _type = Article


class DeadLetterCoder(_InFlightCoder):
    _schema_name = DEAD_LETTER
    _type = DeadLetter


coders.registry.register_coder(Article, ArticleCoder)
coders.registry.register_coder(DeadLetter, DeadLetterCoder)


def _ack_dict(rec: KafkaRecord) -> dict:
    return {"topic": rec.topic, "partition": rec.partition, "covers_from": rec.covers_from,
            "offset": rec.offset, "run_start": rec.run_start}


def _origin(rec: KafkaRecord) -> dict:
    return {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset, "timestamp": rec.timestamp}


def new_article(rec: KafkaRecord, *, article_id: str, raw_body: str, ingested_at: int, **fields: Any) -> Article:
    """A fresh Article for a parsed record: every stage field present and empty."""
    art = Article(
        article_id=article_id,
        publisher=fields.get("publisher"),
        url=fields.get("url"),
        title=fields.get("title"),
        language=fields.get("language"),
        published_at=fields.get("published_at"),
        ingested_at=ingested_at,
        body=raw_body,
        raw_body_sha256=sha256_hex(raw_body),
        origin=_origin(rec),
        boilerplate=[],
        flags=list(fields.get("flags") or []),
        dedup={"content_hash": content_hash(fields.get("title"), raw_body), "signature": None,
               "duplicate_of": None, "similarity": None, "story_id": None},
        attributions=[],
        events=[],
        entities=[],
        pipeline_version=__version__,
        _ack=_ack_dict(rec),
        _key=rec.key,
        _value=rec.value,
    )
    return art


def new_dead_letter(rec: KafkaRecord, *, stage: str, error_type: str, reason: str, failed_at: int,
                    article_id: str | None = None) -> DeadLetter:
    return DeadLetter(
        origin=_origin(rec),
        key=rec.key,
        value=rec.value,
        stage=stage,
        error_type=error_type,
        reason=reason,
        failed_at=failed_at,
        article_id=article_id,
        pipeline_version=__version__,
        _ack=_ack_dict(rec),
    )


def dead_letter_for_article(article: Article, *, stage: str, error_type: str, reason: str,
                            failed_at: int) -> DeadLetter:
    """A dead letter for an article a later stage failed on, with the original message bytes."""
    return DeadLetter(
        origin=dict(article["origin"]),
        key=article.get("_key"),
        value=article.get("_value"),
        stage=stage,
        error_type=error_type,
        reason=reason,
        failed_at=failed_at,
        article_id=article.get("article_id"),
        pipeline_version=__version__,
        _ack=dict(article["_ack"]),
    )


def ack_of(record: dict) -> Ack:
    """The Ack for an Article or DeadLetter: its input offsets are done."""
    a = record["_ack"]
    return Ack(a["topic"], a["partition"], a["covers_from"], a["offset"], a["run_start"])
