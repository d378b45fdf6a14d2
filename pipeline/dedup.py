"""Exact-duplicate bookkeeping for one shard of content hashes: pure logic, nothing of Beam.

An article is an exact duplicate when an article with the same content hash was seen within ``horizon``
of event time (:mod:`pipeline.stages.dedup` has the whole definition). The Beam stage keeps one
:class:`ShardIndex` per shard of hashes: the first copy of every hash with its event time, plus the
element time that decides when the entry may be forgotten.

Entries are stored as *chunks* (:data:`CHUNK_CODER`: parallel lists, one chunk per batch that added
entries), so a batch of articles costs one append to the shard's state however many hashes it adds, and
an index can be rebuilt from its chunks in one pass.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from apache_beam import coders

__all__ = ["Seen", "Chunk", "CHUNK_CODER", "ShardIndex", "shard_of"]


class Seen(NamedTuple):
    """The first copy of a content hash: its article id and event time (epoch ms)."""

    article_id: str
    event_ms: int


class Chunk(NamedTuple):
    """Entries added together, as parallel lists (cheap to code: one list per column)."""

    hashes: List[str]
    ids: List[str]
    event_ms: List[int]
    element_ms: List[int]  # element (Kafka) time: the entry expires a horizon after it


#: Deterministic, Cython-implemented coder of a :class:`Chunk` (as a plain tuple of lists).
CHUNK_CODER = coders.TupleCoder([coders.ListCoder(coders.StrUtf8Coder()), coders.ListCoder(coders.StrUtf8Coder()),
                                 coders.ListCoder(coders.VarIntCoder()), coders.ListCoder(coders.VarIntCoder())])


def shard_of(content_hash: str, shards: int) -> str:
    """The shard key of a hex content hash: its leading 32 bits modulo ``shards`` (hashes are uniform), as
    text. (Text, because Beam 2.77 may take a stateful ParDo's timer key coder from its side input instead
    of its main input (``ParDo._get_key_and_window_coder``); the warm-start seeds are keyed by text.)"""
    return str(int(content_hash[:8], 16) % shards)


class ShardIndex:
    """The first copies seen in one shard, with a version token naming the stored state they mirror.

    ``check(hash, event_ms)`` answers whether an article is a duplicate; ``add`` records a first copy and
    collects it for the next chunk (``take_chunk``). ``token`` is the value of the stored version cell the
    index was built from or last wrote (see :class:`pipeline.stages.dedup.ExactDedup`): an index is only
    used while the stored token still equals it.
    """

    __slots__ = ("horizon_ms", "token", "_entries", "_pending", "_oldest_element_ms")

    def __init__(self, horizon_ms: int, token: Optional[int] = None):
        if horizon_ms <= 0:
            raise ValueError(f"horizon_ms must be positive, got {horizon_ms!r}")
        self.horizon_ms = horizon_ms
        self.token = token
        self._entries: Dict[str, Tuple[str, int, int]] = {}
        self._pending: List[Tuple[str, str, int, int]] = []
        self._oldest_element_ms: Optional[int] = None

    @classmethod
    def from_chunks(cls, horizon_ms: int, token: Optional[int], chunks: Iterable[Tuple]) -> "ShardIndex":
        """An index over stored chunks (later chunks win: a hash is stored again only after it expired)."""
        index = cls(horizon_ms, token)
        for hashes, ids, event_ms, element_ms in chunks:
            for h, i, e, el in zip(hashes, ids, event_ms, element_ms):
                index._put(h, i, e, el)
        return index

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def oldest_element_ms(self) -> Optional[int]:
        """The earliest element time of any entry (when the first entry may expire, less the horizon)."""
        return self._oldest_element_ms

    def check(self, content_hash: str, event_ms: int, fallback: Optional[Dict] = None) -> Optional[Seen]:
        """The first copy this article duplicates, or None when it is a first copy.

        ``fallback``: hashes written before this job started (warm start), consulted for hashes this
        index does not hold.
        """
        entry = self._entries.get(content_hash)
        if entry is not None:
            seen = Seen(entry[0], entry[1])
        elif fallback:
            got = fallback.get(content_hash)
            seen = Seen(got[0], got[1]) if got is not None else None
        else:
            return None
        if seen is not None and abs(event_ms - seen.event_ms) <= self.horizon_ms:
            return seen
        return None

    def add(self, content_hash: str, article_id: str, event_ms: int, element_ms: int) -> None:
        """Record a first copy (replacing an expired one of the same hash)."""
        self._put(content_hash, article_id, event_ms, element_ms)
        self._pending.append((content_hash, article_id, event_ms, element_ms))

    def take_chunk(self) -> Optional[Chunk]:
        """The entries added since the last call, as one chunk to store; None if there are none."""
        if not self._pending:
            return None
        hashes, ids, event_ms, element_ms = (list(col) for col in zip(*self._pending))
        self._pending = []
        return Chunk(hashes, ids, event_ms, element_ms)

    def expire(self, now_element_ms: int) -> Chunk:
        """Forget entries whose element time lies a horizon or more before ``now_element_ms``; returns the
        remaining entries as one chunk (what the shard's state is rewritten to)."""
        keep = {h: e for h, e in self._entries.items() if e[2] + self.horizon_ms > now_element_ms}
        self._entries = {}
        self._oldest_element_ms = None
        self._pending = []
        for h, (i, e, el) in keep.items():
            self._put(h, i, e, el)
        if not keep:
            return Chunk([], [], [], [])
        hashes = list(keep)
        return Chunk(hashes, [keep[h][0] for h in hashes], [keep[h][1] for h in hashes],
                     [keep[h][2] for h in hashes])

    def _put(self, h: str, i: str, e: int, el: int) -> None:
        self._entries[h] = (i, e, el)
        if self._oldest_element_ms is None or el < self._oldest_element_ms:
            self._oldest_element_ms = el
