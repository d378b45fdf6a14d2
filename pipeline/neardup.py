"""Near-duplicate detection, pure core: MinHash signatures, LSH band keys, verification, an in-memory index.

No Beam here; :mod:`pipeline.stages.neardup` adapts this to keyed state.

Architecture:

1. :func:`fingerprint` turns an article (clean body, title, event time) into a :class:`Fingerprint`:
   a MinHash signature over 5-word shingles of the normalized body (``num_perm`` 32-bit minima) plus the few
   features verification needs (shingle count, the body's numbers, the headline's subject words and numbers).
   Packed with :meth:`Fingerprint.to_bytes` it is ~305 bytes with the defaults (Reuters-21578 mean).
2. :func:`band_keys` cuts the signature into ``bands`` bands of ``rows`` minima; two stories that share
   a band key are candidates. With 32 bands of 2 rows, a pair with shingle Jaccard 0.27 collides in at
   least one band with probability 0.91, at 0.4 with 0.997.
3. :func:`verify` decides a candidate pair: estimated containment of the smaller body in the larger
   (edited copies trim paragraphs and append appeals, so Jaccard alone undercounts them), numbers that
   must agree, and, for bodies too short to identify a story on their own (dividend notices, price
   lines, grain tables), headlines that name the same subject and no conflicting headline numbers.
   Both stories must lie within the horizon (default 7 days of event time).
4. :func:`combine` makes one verdict from the verified matches: the most similar is ``duplicate_of``,
   the earliest is ``story_id`` (direct matches only: a story never chains across weeks of a recurring
   formula, and a verdict depends on fingerprints alone, which a Beam pipeline can decide without a loop).
5. :class:`NearDuplicateIndex` is the sequential, in-memory reference: it keeps fingerprints per band
   key, evicts by horizon, caps each band key at a budget, and compares a story only with stored stories
   that precede it in (event time, article id) order. The Beam stage reaches the same verdicts with each
   fingerprint stored once, at the article's home key, and 16-byte entries per band key
   (``tests/unit/test_neardup_state.py`` checks both).

Why MinHash and not SimHash: edited copies in the labels share as little as 27-40 % of their shingles
(containment 0.67-0.89). A 64-bit SimHash of such pairs sits 15-25 bits apart, inside the noise of
unrelated stories of the same formula; MinHash estimates Jaccard without bias, from which containment
follows exactly given the two shingle counts, and its bands give tunable recall. Measured in
``tests/quality/neardup_quality.py`` and ``bench/bench_neardup.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import re
import struct
import zlib
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from pipeline.text import normalize

__all__ = [
    "NearDupConfig",
    "Fingerprint",
    "Match",
    "Verdict",
    "NearDuplicateIndex",
    "event_time_ms",
    "order_key",
    "fingerprint",
    "fingerprint_article",
    "band_keys",
    "band_hashes",
    "estimate_jaccard",
    "similarity",
    "verify",
    "match",
    "verified_matches",
    "combine",
]

DAY_MS = 24 * 3600 * 1000
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,/:]\d+)*")
_TITLE_NOISE = re.compile(r"<[^>]*>|\([^)]*\)|\b(?:rpt|repeat|corrected|correction|update|urgent|flash)\b")
_MAX32 = np.uint64(0xFFFFFFFF)


@dataclasses.dataclass(frozen=True)
class NearDupConfig:
    """Parameters of signatures and verification.

    Args:
        num_perm: MinHash permutations (signature is 4 * num_perm bytes).
        bands: LSH bands; ``bands * rows`` must not exceed ``num_perm``.
        rows: minima per band.
        shingle: words per shingle.
        threshold: minimum similarity (estimated containment of the smaller body, see :func:`similarity`).
        horizon_ms: stories further apart in event time are never duplicates.
        band_budget: most stories kept per band key (oldest in (event time, id) order are dropped first).
        min_body_shingles: bodies with fewer shingles cannot identify a story alone; their headlines must
            agree too.
        min_number_agreement: share of the smaller body's numbers that the larger must contain.
        seed: seed of the permutations (signatures are only comparable under the same seed and num_perm).
    """

    num_perm: int = 64
    bands: int = 32
    rows: int = 2
    shingle: int = 5
    threshold: float = 0.5
    horizon_ms: int = 7 * DAY_MS
    band_budget: int = 200
    min_body_shingles: int = 40
    min_number_agreement: float = 0.5
    seed: int = 1

    def __post_init__(self):
        for name in ("num_perm", "bands", "rows", "shingle", "band_budget", "min_body_shingles"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.bands > 255:
            raise ValueError(f"bands must be <= 255, got {self.bands!r}")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows ({self.bands} * {self.rows}) exceeds num_perm ({self.num_perm})")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if self.horizon_ms < 0:
            raise ValueError(f"horizon_ms must be >= 0, got {self.horizon_ms!r}")
        if not 0.0 <= self.min_number_agreement <= 1.0:
            raise ValueError(f"min_number_agreement must be in [0, 1], got {self.min_number_agreement!r}")


_PERM_CACHE: dict = {}


def _perms(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    key = (num_perm, seed)
    if key not in _PERM_CACHE:
        rng = np.random.RandomState(seed)
        a = rng.randint(0, 1 << 63, size=num_perm, dtype=np.uint64) | np.uint64(1)  # odd multipliers
        b = rng.randint(0, 1 << 63, size=num_perm, dtype=np.uint64)
        _PERM_CACHE[key] = (a, b)
    return _PERM_CACHE[key]


@functools.lru_cache(maxsize=1 << 17)
def _h32(s: str) -> int:
    return zlib.crc32(s.encode("utf-8", "surrogatepass"))


def _h16(s: str) -> int:
    return zlib.crc32(s.encode("utf-8", "surrogatepass")) & 0xFFFF


class Fingerprint(NamedTuple):
    """What the horizon keeps per story: identity, event time, signature and verification features."""

    article_id: str
    event_ms: int
    signature: bytes  # num_perm little-endian uint32 minima
    shingles: int  # distinct shingles in the body
    numbers: tuple  # 16-bit hashes of the body's distinct numbers (first 32)
    title_subject: tuple  # 16-bit hashes of the headline's first two subject words
    title_numbers: tuple  # 16-bit hashes of the headline's numbers (first 8)

    def to_bytes(self) -> bytes:
        """Compact, deterministic encoding (what state stores)."""
        aid = self.article_id.encode("utf-8")
        parts = [struct.pack("<H", len(aid)), aid, struct.pack("<qIH", self.event_ms, self.shingles, len(self.signature)),
                 self.signature]
        for seq in (self.numbers, self.title_subject, self.title_numbers):
            parts.append(struct.pack(f"<B{len(seq)}H", len(seq), *seq))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Fingerprint":
        (n,) = struct.unpack_from("<H", data, 0)
        pos = 2
        aid = data[pos:pos + n].decode("utf-8")
        pos += n
        event_ms, shingles, slen = struct.unpack_from("<qIH", data, pos)
        pos += 14
        sig = bytes(data[pos:pos + slen])
        pos += slen
        seqs = []
        for _ in range(3):
            (m,) = struct.unpack_from("<B", data, pos)
            pos += 1
            seqs.append(tuple(struct.unpack_from(f"<{m}H", data, pos)))
            pos += 2 * m
        return cls(aid, event_ms, sig, shingles, *seqs)

    @property
    def order(self) -> tuple[int, str]:
        return (self.event_ms, self.article_id)


class Match(NamedTuple):
    """A verified earlier copy: its id, event time and similarity."""

    article_id: str
    event_ms: int
    similarity: float


class Verdict(NamedTuple):
    """The decision for one story: ``duplicate_of`` None means it is the original of its story."""

    duplicate_of: Optional[str]
    similarity: Optional[float]
    story_id: str


def event_time_ms(article: Mapping[str, Any]) -> int:
    """Event time of an article: ``published_at``, else the Kafka timestamp, else ``ingested_at``."""
    for value in (article.get("published_at"), (article.get("origin") or {}).get("timestamp"),
                  article.get("ingested_at")):
        if value is not None:
            return int(value)
    return 0


def order_key(article: Mapping[str, Any]) -> tuple[int, str]:
    """The deterministic tie-break: the earlier story is the smaller (event time, article id)."""
    return (event_time_ms(article), str(article["article_id"]))


# ``\w`` on ASCII text is [0-9A-Za-z_]: for ASCII bodies (nearly all wire copy) words come from one
# bytes.translate + split instead of a Unicode regex, and are hashed as bytes (crc32 of the same UTF-8).
_ASCII_WORD_TABLE = bytes(c if (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95) else 32
                          for c in range(256))
_ASCII_NUMBER = re.compile(rb"[0-9]+(?:[.,/:][0-9]+)*")
_SHINGLE_MUL = 1000003
_POW_CACHE: dict = {}


def _shingle_powers(k: int) -> np.ndarray:
    # Horner's rule unrolled: the hash of words w0..w(k-1) is sum(w_j * M^(k-1-j)) mod 2^32.
    if k not in _POW_CACHE:
        _POW_CACHE[k] = np.array([pow(_SHINGLE_MUL, k - 1 - j, 1 << 64) for j in range(k)], dtype=np.uint64)
    return _POW_CACHE[k]


def _word_hashes(text: str) -> np.ndarray:
    """crc32 of each word (``\\w+``) of a normalized text, in order (uint64)."""
    if text.isascii():
        words = text.encode("ascii").translate(_ASCII_WORD_TABLE).split()
        return np.fromiter(map(zlib.crc32, words), dtype=np.uint64, count=len(words))
    words = _WORD.findall(text)
    return np.fromiter(map(_h32, words), dtype=np.uint64, count=len(words))


def _shingle_hashes(wh: np.ndarray, k: int) -> np.ndarray:
    """32-bit hashes of the k-word shingles (a text of k words or fewer is one shingle), sorted, with
    repeats. The hash is ``(...((w0 * M + w1) * M + w2)...) mod 2^32``: one product of the sliding
    windows with the powers of M (uint64 arithmetic wraps mod 2^64, which keeps every residue mod 2^32)."""
    if len(wh) <= k:
        acc = 0
        for h in wh.tolist():
            acc = (acc * _SHINGLE_MUL + h) & 0xFFFFFFFF
        return np.array([acc], dtype=np.uint64)
    n = len(wh) - k + 1
    windows = np.ndarray((n, k), dtype=np.uint64, buffer=np.ascontiguousarray(wh), strides=(8, 8))
    acc = windows @ _shingle_powers(k)
    acc &= _MAX32
    acc.sort()
    return acc


def _distinct_sorted(sorted_hashes: np.ndarray) -> int:
    return 1 + int(np.count_nonzero(sorted_hashes[1:] != sorted_hashes[:-1]))


def _minhash(hashes: np.ndarray, config: NearDupConfig) -> bytes:
    a, b = _perms(config.num_perm, config.seed)
    # Multiply-shift hashing: the high 32 bits of (a * x + b) mod 2^64, one (a, b) per permutation. The
    # shift is monotone, so it is applied to the num_perm minima rather than to every product.
    vals = np.multiply.outer(hashes, a)
    vals += b
    mins = vals.min(axis=0)
    mins >>= np.uint64(32)
    return mins.astype("<u4").tobytes()


def _body_numbers(text: str) -> tuple:
    """16-bit hashes of the first 32 distinct numbers of a normalized text."""
    if text.isascii():
        found = _ASCII_NUMBER.findall(text.encode("ascii"))
        return tuple(zlib.crc32(n) & 0xFFFF for n in list(dict.fromkeys(found))[:32])
    return tuple(_h16(n) for n in list(dict.fromkeys(_NUMBER.findall(text)))[:32])


def _title_features(title: str) -> tuple[tuple, tuple]:
    t = _TITLE_NOISE.sub(" ", normalize(title or ""))
    subject = [w for w in _WORD.findall(t) if len(w) > 1 and not w.isdigit()][:2]
    nums = list(dict.fromkeys(_NUMBER.findall(t)))[:8]
    return tuple(_h16(w) for w in subject), tuple(_h16(n) for n in nums)


def fingerprint(article_id: str, body: str, title: Optional[str], event_ms: int,
                config: NearDupConfig = NearDupConfig()) -> Optional[Fingerprint]:
    """The fingerprint of a story, or None when the body has no words (nothing to compare)."""
    text = normalize(body or "")
    wh = _word_hashes(text)
    if not len(wh):
        return None
    hashes = _shingle_hashes(wh, config.shingle)
    subject, title_numbers = _title_features(title or "")
    return Fingerprint(str(article_id), int(event_ms), _minhash(hashes, config), _distinct_sorted(hashes),
                       _body_numbers(text), subject, title_numbers)


def fingerprint_article(article: Mapping[str, Any], config: NearDupConfig = NearDupConfig()) -> Optional[Fingerprint]:
    """:func:`fingerprint` of an Article-shaped mapping (``body`` is the clean body)."""
    return fingerprint(article["article_id"], article.get("body") or "", article.get("title"),
                       event_time_ms(article), config)


def band_keys(signature: bytes, config: NearDupConfig = NearDupConfig()) -> list[str]:
    """LSH band keys of a signature: ``"<band>:<hex of its rows>"``; candidates share at least one."""
    r = config.rows
    return [f"{b}:{signature[4 * b * r:4 * (b + 1) * r].hex()}" for b in range(config.bands)]


_SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + _SPLITMIX_GAMMA
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def band_hashes(signature: bytes, config: NearDupConfig = NearDupConfig()) -> np.ndarray:
    """The band keys of a signature as 64-bit hashes (uint64 array, one per band): equal band keys give
    equal hashes; distinct ones collide with probability 2^-64 (a collision only adds a candidate)."""
    rows = np.frombuffer(signature, dtype="<u4", count=config.bands * config.rows).astype(np.uint64)
    rows = rows.reshape(config.bands, config.rows)
    h = _splitmix64(np.arange(config.bands, dtype=np.uint64))
    for j in range(config.rows):
        h = _splitmix64(h ^ rows[:, j])
    return h


def estimate_jaccard(a: bytes, b: bytes) -> float:
    """Share of equal minima: an unbiased estimate of shingle-set Jaccard."""
    x = np.frombuffer(a, dtype="<u4")
    y = np.frombuffer(b, dtype="<u4")
    return float(np.count_nonzero(x == y)) / len(x)


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated containment of the smaller shingle set in the larger (from Jaccard and the two sizes).

    An edited copy (trimmed paragraph, appended appeal, a live file carrying the story as one entry)
    keeps most of its own shingles in the other text even when Jaccard is low.
    """
    j = estimate_jaccard(a.signature, b.signature)
    if j >= 1.0:
        return 1.0
    inter = j / (1.0 + j) * (a.shingles + b.shingles)
    return float(min(1.0, max(j, inter / max(1, min(a.shingles, b.shingles)))))


def _agreement(small: Sequence[int], large: Sequence[int]) -> float:
    if not small:
        return 1.0
    other = set(large)
    return sum(1 for x in small if x in other) / len(small)


def verify(earlier: Fingerprint, later: Fingerprint, config: NearDupConfig = NearDupConfig()) -> Optional[float]:
    """Similarity if ``later`` is a near-duplicate of ``earlier``, else None.

    Rules (all must hold):

    * event times at most ``horizon_ms`` apart (same text weeks apart is a recurring formula, a new event);
    * similarity (estimated containment) at least ``threshold``;
    * numbers: when the smaller body has 3 or more distinct numbers, at least ``min_number_agreement`` of
      them occur in the other body (a new casualty count or price is a new story);
    * short bodies (fewer than ``min_body_shingles`` shingles in either): headlines share a subject word
      and have no conflicting numbers (neither headline's numbers contain the other's), because a formulaic
      body ("Qtly div 10 cts vs 10 cts prior") identifies nothing by itself.
    """
    if abs(later.event_ms - earlier.event_ms) > config.horizon_ms:
        return None
    sim = similarity(earlier, later)
    if sim < config.threshold:
        return None
    small, large = (earlier, later) if earlier.shingles <= later.shingles else (later, earlier)
    if len(small.numbers) >= 3 and _agreement(small.numbers, large.numbers) < config.min_number_agreement:
        return None
    if min(earlier.shingles, later.shingles) < config.min_body_shingles:
        if earlier.title_subject and later.title_subject and not set(earlier.title_subject) & set(later.title_subject):
            return None
        ta, tb = set(earlier.title_numbers), set(later.title_numbers)
        if ta and tb and not (ta <= tb or tb <= ta):
            return None
    return sim


def match(earlier: Fingerprint, later: Fingerprint, config: NearDupConfig = NearDupConfig()) -> Optional[Match]:
    """``earlier`` as a verified earlier copy of ``later``, or None.

    None also when ``earlier`` does not precede ``later`` in (event time, id) order, or is an earlier
    version of the same article (an update is not a copy of itself).
    """
    if earlier.order >= later.order or earlier.article_id == later.article_id:
        return None
    sim = verify(earlier, later, config)
    return None if sim is None else Match(earlier.article_id, earlier.event_ms, round(sim, 6))


def verified_matches(candidate: Fingerprint, stored: Iterable[Fingerprint],
                     config: NearDupConfig = NearDupConfig()) -> list[Match]:
    """Every verified earlier copy of ``candidate`` among ``stored`` (see :func:`match`)."""
    out = []
    for s in stored:
        m = match(s, candidate, config)
        if m is not None:
            out.append(m)
    return out


def combine(article_id: str, matches: Iterable[Optional[Match]]) -> Verdict:
    """One verdict from verified matches (None entries are ignored).

    ``duplicate_of`` is the most similar match (ties to the earlier in (event time, id) order);
    ``story_id`` is the earliest match, or the article itself when there is none. The story is taken
    from the direct matches only, not followed through their own stories: every match lies within the
    horizon before the article, so a story never chains across weeks of a recurring formula, and each
    verdict depends only on fingerprints, which is what lets the Beam stage decide it without a loop.
    """
    ms = [m for m in matches if m is not None]
    if not ms:
        return Verdict(None, None, article_id)
    best = min(ms, key=lambda m: (-m.similarity, m.event_ms, m.article_id))
    first = min(ms, key=lambda m: (m.event_ms, m.article_id))
    return Verdict(best.article_id, best.similarity, first.article_id)


class NearDuplicateIndex:
    """In-memory LSH index over a horizon of fingerprints (reference implementation, benchmarks, tests).

    ``query`` compares a fingerprint with the stored stories sharing a band key that precede it in
    (event time, id) order; ``add`` stores it under its band keys. Each band key keeps at most
    ``band_budget`` stories (the latest in (event time, id) order). ``evict(now_ms)`` drops stories whose
    event time is more than the horizon before ``now_ms`` (``add`` calls it with the newest event time
    seen, so the index holds one horizon of stories).
    """

    def __init__(self, config: NearDupConfig = NearDupConfig()):
        self.config = config
        # one dict per band: the band's rows (bytes) -> {article id: fingerprint}
        self._bands: list[dict[bytes, dict[str, Fingerprint]]] = [{} for _ in range(config.bands)]
        self._entries: dict[str, tuple[Fingerprint, list[bytes]]] = {}
        self._newest = None
        self._expiry: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def bucket_sizes(self) -> list[int]:
        return [len(b) for band in self._bands for b in band.values()]

    def _rows(self, fp: Fingerprint) -> list[bytes]:
        w = 4 * self.config.rows
        sig = fp.signature
        return [sig[i:i + w] for i in range(0, w * self.config.bands, w)]

    def query(self, fp: Fingerprint, rows: Optional[list[bytes]] = None) -> Verdict:
        """The verdict for ``fp`` against stored, preceding stories (does not store it)."""
        seen: dict[str, Fingerprint] = {}
        for band, key in zip(self._bands, rows if rows is not None else self._rows(fp)):
            bucket = band.get(key)
            if bucket:
                seen.update(bucket)
        return combine(fp.article_id, verified_matches(fp, seen.values(), self.config))

    def add(self, fp: Fingerprint, rows: Optional[list[bytes]] = None) -> None:
        """Store ``fp`` under its band keys, respecting the budget."""
        if fp.article_id in self._entries:
            return
        rows = rows if rows is not None else self._rows(fp)
        budget = self.config.band_budget
        aid = fp.article_id
        for band, key in zip(self._bands, rows):
            bucket = band.get(key)
            if bucket is None:
                band[key] = {aid: fp}
                continue
            bucket[aid] = fp
            if len(bucket) > budget:
                oldest = min(bucket.values(), key=lambda f: f.order)
                del bucket[oldest.article_id]
        self._entries[aid] = (fp, rows)
        heapq.heappush(self._expiry, (fp.event_ms, aid))
        if self._newest is None or fp.event_ms > self._newest:
            self._newest = fp.event_ms
        self.evict(self._newest)

    def process(self, fp: Fingerprint) -> Verdict:
        """``query`` then ``add``: the verdict of one story in a stream replayed in (event time, id) order."""
        rows = self._rows(fp)
        v = self.query(fp, rows)
        self.add(fp, rows)
        return v

    def evict(self, now_ms: int) -> int:
        """Drop stories older than the horizon before ``now_ms``; returns how many were dropped."""
        limit = now_ms - self.config.horizon_ms
        n = 0
        while self._expiry and self._expiry[0][0] < limit:
            _, aid = heapq.heappop(self._expiry)
            entry = self._entries.pop(aid, None)
            if entry is None:
                continue
            n += 1
            for band, key in zip(self._bands, entry[1]):
                bucket = band.get(key)
                if bucket is not None and bucket.pop(aid, None) is not None and not bucket:
                    del band[key]
        return n

    def state_bytes(self) -> int:
        """Serialized size of what the index keeps: each fingerprint once (:meth:`Fingerprint.to_bytes`),
        plus per band key the key (band number + its rows) and an 8-byte reference per member."""
        total = sum(len(fp.to_bytes()) for fp, _ in self._entries.values())
        for band in self._bands:
            for key, bucket in band.items():
                total += 1 + len(key) + 8 * len(bucket)
        return total
