"""Learned per-publisher memory of repeated paragraphs.

Outlets repeat their furniture word for word in every article (the same appeal, the same menu, the same
newsletter box). :class:`PublisherMemory` remembers, for ONE publisher, fingerprints of normalized
paragraphs and in how many distinct articles each was seen; a paragraph seen in at least
``min_articles`` distinct recent articles (the current one included) is boilerplate. With the default
``min_articles=2`` one article teaches nothing: the first copy of an appeal stays, the second goes.

Articles are told apart by an article key (the stage uses the normalized title, falling back to the id),
so a re-delivered or updated copy of one story does not count twice and does not strip its own text.

Bounds: at most ``max_paragraphs`` fingerprints (least recently seen dropped first) and an event-time
``horizon_ms``: a fingerprint not seen for longer than that before the newest event time observed is
forgotten. No wall clock is read: the same sequence of calls gives the same verdicts and the same bytes.

The state serializes to compact bytes (:meth:`to_bytes` / :meth:`from_bytes`) for Beam's
``ReadModifyWriteState``: a 21-byte header, then per fingerprint 8 + 8 + 1 + 4*k bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from typing import Iterable

from pipeline.text import normalize

__all__ = ["PublisherMemory", "fingerprint", "article_key_hash"]

_MAGIC = b"WSBM"
_FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sBqI")  # magic, version, newest event time, entry count
_ENTRY = struct.Struct(">QqB")  # fingerprint, last seen (event ms), number of article keys
_KEY = struct.Struct(">I")

DAY_MS = 24 * 3600 * 1000


def fingerprint(paragraph: str) -> int:
    """64-bit fingerprint of a paragraph's normalized form."""
    return int.from_bytes(hashlib.blake2b(normalize(paragraph).encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "big")


def article_key_hash(key: str) -> int:
    """32-bit hash of an article key (normalized title or id)."""
    return int.from_bytes(hashlib.blake2b(normalize(key).encode("utf-8", "surrogatepass"),
                                          digest_size=4).digest(), "big")


class PublisherMemory:
    """Fingerprints of one publisher's paragraphs, with the distinct articles that contained them.

    Args:
        min_articles: a paragraph is boilerplate once seen in this many distinct articles (>= 2).
        max_paragraphs: cap on remembered fingerprints; the least recently seen are dropped first.
        horizon_ms: event-time horizon; fingerprints not seen within it are forgotten.
    """

    def __init__(self, *, min_articles: int = 2, max_paragraphs: int = 5000, horizon_ms: int = 30 * DAY_MS):
        if min_articles < 2:
            raise ValueError(f"min_articles must be >= 2 (one article teaches nothing), got {min_articles!r}")
        if max_paragraphs < 1:
            raise ValueError(f"max_paragraphs must be >= 1, got {max_paragraphs!r}")
        if horizon_ms <= 0:
            raise ValueError(f"horizon_ms must be > 0, got {horizon_ms!r}")
        self.min_articles = min_articles
        self.max_paragraphs = max_paragraphs
        self.horizon_ms = horizon_ms
        self.now_ms: int = 0  # newest event time observed
        # fingerprint -> [last_seen_ms, [article key hashes, most recent last, at most min_articles]]
        self._entries: OrderedDict[int, list] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, entry: list) -> bool:
        return entry[0] >= self.now_ms - self.horizon_ms

    def articles_seen(self, fp: int, *, excluding: int | None = None) -> int:
        """Distinct recent articles (other than ``excluding``) whose body contained ``fp``."""
        entry = self._entries.get(fp)
        if entry is None or not self._live(entry):
            return 0
        return sum(1 for k in entry[1] if k != excluding)

    def is_boilerplate(self, fp: int, article_key: int) -> bool:
        """Seen in at least ``min_articles`` distinct articles, counting the current one."""
        return self.articles_seen(fp, excluding=article_key) + 1 >= self.min_articles

    def observe(self, fps: Iterable[int], article_key: int, event_time_ms: int | None) -> None:
        """Record that the article ``article_key`` contained these fingerprints."""
        if event_time_ms is not None and event_time_ms > self.now_ms:
            self.now_ms = int(event_time_ms)
        t = self.now_ms if event_time_ms is None else int(event_time_ms)
        entries = self._entries
        for fp in dict.fromkeys(fps):
            entry = entries.get(fp)
            if entry is None or not self._live(entry):
                entries[fp] = [t, [article_key]]
            else:
                entry[0] = max(entry[0], t)
                keys = entry[1]
                if article_key in keys:
                    keys.remove(article_key)
                keys.append(article_key)
                if len(keys) > self.min_articles:
                    del keys[0]
            entries.move_to_end(fp)
        self._evict()

    def _evict(self) -> None:
        entries = self._entries
        while len(entries) > self.max_paragraphs:
            entries.popitem(last=False)

    def expire(self) -> None:
        """Drop fingerprints older than the horizon (done anyway by :meth:`to_bytes`)."""
        dead = [fp for fp, e in self._entries.items() if not self._live(e)]
        for fp in dead:
            del self._entries[fp]

    def to_bytes(self) -> bytes:
        self.expire()
        parts = [_HEADER.pack(_MAGIC, _FORMAT_VERSION, self.now_ms, len(self._entries))]
        for fp, (last, keys) in self._entries.items():
            parts.append(_ENTRY.pack(fp, last, len(keys)))
            parts.extend(_KEY.pack(k) for k in keys)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes | None, **params) -> "PublisherMemory":
        """Restore a memory; ``params`` as for the constructor (bounds apply on restore)."""
        mem = cls(**params)
        if not data:
            return mem
        magic, version, now_ms, n = _HEADER.unpack_from(data, 0)
        if magic != _MAGIC or version != _FORMAT_VERSION:
            raise ValueError(f"not a PublisherMemory v{_FORMAT_VERSION} blob (magic {magic!r}, version {version})")
        mem.now_ms = now_ms
        pos = _HEADER.size
        for _ in range(n):
            fp, last, k = _ENTRY.unpack_from(data, pos)
            pos += _ENTRY.size
            keys = [_KEY.unpack_from(data, pos + i * _KEY.size)[0] for i in range(k)]
            pos += k * _KEY.size
            mem._entries[fp] = [last, keys[-mem.min_articles:]]
        mem.expire()
        mem._evict()
        return mem

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PublisherMemory) and self.now_ms == other.now_ms
                and list(self._entries.items()) == list(other._entries.items()))

    __hash__ = None  # type: ignore[assignment]
