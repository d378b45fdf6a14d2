"""Exact dedup's shard index (pure) and its DoFn over simulated state: reuse, rebuild, retries, expiry."""

from __future__ import annotations

import copy

import pytest
from apache_beam import pvalue
from apache_beam.utils.timestamp import Timestamp

from pipeline.dedup import CHUNK_CODER, ShardIndex, shard_of
from pipeline.records import Article
from pipeline.stages.dedup import _DropExactCopiesFn

H = 7 * 24 * 3600 * 1000  # horizon, ms
T0 = 1_700_000_000_000


def test_index_first_copy_duplicate_horizon_and_replacement():
    ix = ShardIndex(H)
    assert ix.check("h1", T0) is None
    ix.add("h1", "a", T0, T0)
    assert ix.check("h1", T0 + H) == ("a", T0)  # the horizon is inclusive
    assert ix.check("h1", T0 - 5) == ("a", T0)  # an earlier-dated copy arriving later is a copy too
    assert ix.check("h1", T0 + H + 1) is None  # outside: a new occasion...
    ix.add("h1", "c", T0 + H + 1, T0 + H + 1)  # ...which replaces the old first copy
    assert ix.check("h1", T0 + H + 2) == ("c", T0 + H + 1)
    assert ix.check("h2", T0) is None


def test_index_consults_fallback_only_for_hashes_it_does_not_hold():
    ix = ShardIndex(H)
    seeds = {"h1": ("old", T0), "h2": ("seeded", T0)}
    assert ix.check("h1", T0 + 10, seeds) == ("old", T0)
    ix.add("h2", "live", T0 + 2 * H, T0 + 2 * H)  # held entry wins over the seed, even if out of horizon
    assert ix.check("h2", T0, seeds) is None


def test_chunks_round_trip_through_their_coder_and_rebuild_the_index():
    ix = ShardIndex(H, token=7)
    ix.add("h1", "a", T0, T0 + 1)
    ix.add("h2", "b", T0 + 1, T0 + 2)
    chunk = ix.take_chunk()
    assert ix.take_chunk() is None  # taken once
    ix.add("h3", "c", T0 + 2, T0 + 3)
    chunks = [CHUNK_CODER.decode(CHUNK_CODER.encode(c)) for c in (chunk, ix.take_chunk())]
    rebuilt = ShardIndex.from_chunks(H, 7, chunks)
    assert len(rebuilt) == 3 and rebuilt.token == 7
    assert rebuilt.check("h3", T0) == ("c", T0 + 2)
    assert rebuilt.oldest_element_ms == T0 + 1
    assert CHUNK_CODER.is_deterministic()


def test_expire_keeps_only_entries_younger_than_a_horizon_of_element_time():
    ix = ShardIndex(H)
    ix.add("old", "a", T0, T0)
    ix.add("new", "b", T0, T0 + 10)
    kept = ix.expire(T0 + H + 5)
    assert kept.hashes == ["new"] and len(ix) == 1 and ix.oldest_element_ms == T0 + 10
    assert ix.check("old", T0) is None and ix.check("new", T0) == ("b", T0)
    assert ix.expire(T0 + H + 10).hashes == [] and len(ix) == 0


def test_shard_of_is_stable_and_in_range():
    h = "ffffffff" + "0" * 56
    assert shard_of(h, 32) == str(0xFFFFFFFF % 32)
    assert {shard_of(f"{i:08x}" + "0" * 56, 7) for i in range(100)} == {str(i) for i in range(7)}
    with pytest.raises(ValueError):
        ShardIndex(0)


# ------------------------------------------------------------------ the DoFn over simulated keyed state


class _Cell:
    def __init__(self):
        self.value = None

    def read(self):
        return self.value

    def write(self, v):
        self.value = v

    def clear(self):
        self.value = None


class _Bag:
    def __init__(self):
        self.items = []

    def read(self):
        return list(self.items)

    def add(self, v):
        self.items.append(CHUNK_CODER.decode(CHUNK_CODER.encode(v)))  # stored encoded, as a runner would

    def clear(self):
        self.items = []


class _Timer:
    def __init__(self):
        self.at = None

    def set(self, ts):
        self.at = ts


class _ShardState:
    """One shard's committed state; a 'bundle' works on a copy and commits it (or fails and drops it)."""

    def __init__(self):
        self.chunks, self.version, self.timer = _Bag(), _Cell(), _Timer()

    def bundle(self):
        return copy.deepcopy(self)


def _art(aid, content_hash, published=T0):
    return Article(article_id=aid, published_at=published, origin={"timestamp": published}, ingested_at=published,
                   dedup={"content_hash": content_hash, "signature": None, "duplicate_of": None,
                          "similarity": None, "story_id": None})


def _run(fn, state, arts, seeds=None):
    out = fn.process(("3", [(a["published_at"] * 1000, a) for a in arts]), chunks=state.chunks,
                     version=state.version, expiry=state.timer, seeds=seeds)
    kept = [o.value["article_id"] for o in out if not isinstance(o, pvalue.TaggedOutput)]
    dups = [(o.value.value["article_id"], o.value.value["dedup"]["duplicate_of"]) for o in out
            if isinstance(o, pvalue.TaggedOutput) and o.tag == "duplicates"]
    return kept, dups


def _fn(expire=True):
    fn = _DropExactCopiesFn(H, expire)
    fn.setup()
    return fn


def test_batch_dedups_within_itself_and_across_batches_with_one_append_per_batch():
    fn, state = _fn(), _ShardState()
    assert _run(fn, state, [_art("a", "h1"), _art("a2", "h1"), _art("b", "h2")]) == (["a", "b"], [("a2", "a")])
    assert len(state.chunks.items) == 1
    assert _run(fn, state, [_art("c", "h2"), _art("d", "h3")]) == (["d"], [("c", "b")])
    assert len(state.chunks.items) == 2
    assert _run(fn, state, [_art("e", "h3")]) == ([], [("e", "d")])
    assert len(state.chunks.items) == 2  # nothing new: no append, no new version
    assert state.timer.at == Timestamp(micros=(T0 + H) * 1000)


def test_workers_taking_turns_on_a_shard_see_each_others_entries():
    # the local runner hands a stateful stage's bundles to its workers in turn: an index built by one
    # worker must not be trusted once the other has written the shard
    a, b, state = _fn(), _fn(), _ShardState()
    assert _run(a, state, [_art("x1", "h1")]) == (["x1"], [])
    assert _run(b, state, [_art("y1", "h2")]) == (["y1"], [])
    assert _run(a, state, [_art("x2", "h2")]) == ([], [("x2", "y1")])
    assert _run(b, state, [_art("y2", "h1")]) == ([], [("y2", "x1")])


def test_a_failed_bundle_leaves_no_trace_in_the_index():
    fn, state = _fn(), _ShardState()
    _run(fn, state, [_art("a", "h1")])
    attempt = state.bundle()
    assert _run(fn, attempt, [_art("b", "h2")]) == (["b"], [])  # this bundle fails: attempt is dropped
    # the retry (same worker, committed state) must let "b" through again, not call it a copy of itself
    assert _run(fn, state, [_art("b", "h2")]) == (["b"], [])
    assert _run(fn, state, [_art("a2", "h1")]) == ([], [("a2", "a")])


def test_warm_start_seeds_and_timer_expiry():
    fn, state = _fn(), _ShardState()
    seeds = {"h9": ("written-before", T0 - 1000)}
    assert _run(fn, state, [_art("a", "h9"), _art("b", "h1")], seeds) == (["b"], [("a", "written-before")])
    # the expiry timer drops entries a horizon past their element time and rewrites the shard
    fn.expire(key="3", fired=Timestamp(micros=(T0 + H + 1) * 1000), chunks=state.chunks, version=state.version,
              expiry=state.timer)
    assert state.chunks.items == []
    assert _run(fn, state, [_art("c", "h1", published=T0 + 2 * H)]) == (["c"], [])
