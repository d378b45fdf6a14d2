"""State the NearDuplicates stage keeps per article, measured by replaying its own DoFns with metered state.

:class:`StageReplay` is a small in-process runner for the stage's five DoFns, wired as
``NearDuplicates.expand`` wires them: keyed state and watermark timers, element timestamps, outputs
routed to the next step. Every state cell holds what the runner would hold: the value encoded with
the cell's coder (nested, as the Fn API state channel frames it). The watermark advances in steps; at
each step every element is processed first (in a shuffled order, so the results cannot depend on it)
and then the due timers fire in timestamp order, the outputs of each being processed before the next
fires. ``held_bytes`` is the state held at a moment: per key its encoded key once, the encoded values of
its non-empty cells, and 9 bytes per set timer (timestamp + tag). ``bench/bench_neardup.py`` uses it on
Reuters-21578; the tests here check it against the TestPipeline run and the pure index.
"""

from __future__ import annotations

import heapq
import inspect
import random
from collections import defaultdict
from typing import Any, Iterable, Optional

import apache_beam as beam
import pytest
from apache_beam import coders, pvalue
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.utils.timestamp import Timestamp

import numpy as np

from pipeline.neardup import DAY_MS, NearDupConfig, NearDuplicateIndex, band_hashes, fingerprint_article, order_key
from pipeline.records import Article, KafkaRecord, new_article
from pipeline.stages.common import ARTICLES, DEAD_LETTERS, DUPLICATES
from pipeline.stages.neardup import (_ENTRY, _AssembleVerdictFn, _CandidatesGroupedFn, _CandidatesInBandFn,
                                     _CollectCandidatesFn, _FindCandidatesFn, _FingerprintFn, _VerifyAtHomeFn,
                                     BATCH_BAND_SHARDS, STREAMING_BAND_SHARDS, NearDuplicates, NearDupMode)

_TIMER_BYTES = 9  # a timer: its 8-byte timestamp and a tag


def _nested(coder: coders.Coder, value: Any) -> bytes:
    return coder.get_impl().encode_nested(value)


class _Value:
    def __init__(self, coder):
        self.coder, self.data = coder, None

    def read(self):
        return None if self.data is None else self.coder.get_impl().decode_nested(self.data)

    def write(self, value):
        self.data = _nested(self.coder, value)

    def clear(self):
        self.data = None

    def size(self) -> int:
        return 0 if self.data is None else len(self.data)


class _Bag:
    def __init__(self, coder):
        self.coder, self.items = coder, []

    def read(self):
        impl = self.coder.get_impl()
        return [impl.decode_nested(x) for x in self.items]

    def add(self, value):
        self.items.append(_nested(self.coder, value))

    def clear(self):
        self.items = []

    def size(self) -> int:
        return sum(len(x) for x in self.items)


class _Timers(dict):
    """(step, key, timer id) -> timestamp, with a heap for the next due one (stale heap entries skipped)."""

    def __init__(self):
        super().__init__()
        self.heap: list = []
        self.seq = 0

    def put(self, slot: tuple, ts: Timestamp) -> None:
        self[slot] = ts
        self.seq += 1
        heapq.heappush(self.heap, (ts.micros, self.seq, slot))

    def pop_due(self, watermark: Timestamp):
        limit = watermark.micros
        while self.heap and self.heap[0][0] <= limit:
            micros, _, slot = heapq.heappop(self.heap)
            ts = self.get(slot)
            if ts is not None and ts.micros == micros:
                del self[slot]
                return ts, slot
        return None


class _Timer:
    def __init__(self, table: "_Timers | dict", slot: tuple):
        self.table, self.slot = table, slot

    def set(self, ts, dynamic_timer_tag=""):
        slot = self.slot + (dynamic_timer_tag,)
        if isinstance(self.table, _Timers):
            self.table.put(slot, Timestamp.of(ts))
        else:
            self.table[slot] = Timestamp.of(ts)

    def clear(self, dynamic_timer_tag=""):
        self.table.pop(self.slot + (dynamic_timer_tag,), None)


class _Step:
    """One keyed DoFn of the stage: its state per key, its timers, where its outputs go."""

    def __init__(self, name: str, fn: beam.DoFn, key_coder: Optional[coders.Coder], routes: dict):
        self.name, self.fn, self.key_coder, self.routes = name, fn, key_coder, routes
        self.state: dict = defaultdict(dict)  # key -> state id -> _Value | _Bag
        self._params: dict = {}
        state_specs, timer_specs = userstate.get_dofn_specs(fn) if key_coder is not None else (set(), set())
        self.specs = {s.name: s for s in state_specs}
        self.on_timer = {t.name: getattr(fn, t._attached_callback.__name__) for t in timer_specs}

    def cell(self, key, spec):
        cells = self.state[key]
        if spec.name not in cells:
            cells[spec.name] = (_Bag if isinstance(spec, userstate.BagStateSpec) else _Value)(spec.coder)
        return cells[spec.name]

    def kwargs(self, method, key, ts, timers: dict) -> dict:
        params = self._params.get(method.__name__)
        if params is None:
            params = self._params[method.__name__] = [
                (n, p.default) for n, p in inspect.signature(method).parameters.items()
                if p.default is beam.DoFn.TimestampParam or p.default is beam.DoFn.KeyParam
                or isinstance(p.default, (beam.DoFn.StateParam, beam.DoFn.TimerParam))]
        out = {}
        for pname, d in params:
            if d is beam.DoFn.TimestampParam:
                out[pname] = ts
            elif d is beam.DoFn.KeyParam:
                out[pname] = key
            elif isinstance(d, beam.DoFn.StateParam):
                out[pname] = self.cell(key, d.state_spec)
            else:
                out[pname] = _Timer(timers, (self.name, key, d.timer_spec.name))
        return out

    def held(self, timers: dict) -> int:
        total = 0
        timed = defaultdict(int)
        for (name, key, _t, _tag) in timers:
            if name == self.name:
                timed[key] += 1
        for key in set(self.state) | set(timed):
            cells = sum(c.size() for c in self.state.get(key, {}).values())
            if cells or timed[key]:
                total += len(_nested(self.key_coder, key)) + cells + _TIMER_BYTES * timed[key]
        return total


class StageReplay:
    """Replays ``NearDuplicates``'s DoFns on articles with a stepped watermark; meters their state."""

    def __init__(self, stage: NearDuplicates, seed: int = 0):
        cfg = stage.config
        self.config = cfg
        self.rng = random.Random(seed)
        self.timers = _Timers()
        self.queue: list = []
        self.out = {ARTICLES: [], DUPLICATES: [], DEAD_LETTERS: []}
        str_key, int_key = coders.StrUtf8Coder(), coders.VarIntCoder()
        self.steps = {
            "fingerprint": _Step("fingerprint", _FingerprintFn(cfg, stage._shards), None,
                                 {None: "join", "bands": "band", "homes": "home", "collect": "collect",
                                  DEAD_LETTERS: DEAD_LETTERS}),
            "band": _Step("band", _CandidatesInBandFn(cfg), int_key, {None: "collect"}),
            "collect": _Step("collect", _CollectCandidatesFn(), str_key, {None: "join", "requests": "home"}),
            "home": _Step("home", _VerifyAtHomeFn(cfg), int_key, {None: "join"}),
            "join": _Step("join", _AssembleVerdictFn(stage._mode), str_key,
                          {None: ARTICLES, DUPLICATES: DUPLICATES, DEAD_LETTERS: DEAD_LETTERS}),
        }
        for s in self.steps.values():
            s.fn.setup()
        self.messages = 0

    def _emit(self, step: _Step, outputs: Optional[Iterable], ts: Timestamp) -> None:
        for o in outputs or ():
            tag, value = (o.tag, o.value) if isinstance(o, pvalue.TaggedOutput) else (None, o)
            dest = step.routes[tag]
            if dest in self.out:
                self.out[dest].append(value)
            else:
                self.queue.append((dest, value, ts))
                self.messages += 1

    def _bundle(self) -> None:
        """A new bundle: every keyed step starts afresh (per-bundle caches are dropped)."""
        for s in self.steps.values():
            if s.key_coder is not None and hasattr(s.fn, "start_bundle"):
                s.fn.start_bundle()

    def _drain(self) -> None:
        if self.queue and self.rng.random() < 0.5:
            self._bundle()
        while self.queue:
            if self.rng.random() < 0.02:
                self._bundle()  # bundles end anywhere: state must carry what a bundle leaves
            i = self.rng.randrange(len(self.queue))
            self.queue[i], self.queue[-1] = self.queue[-1], self.queue[i]
            name, value, ts = self.queue.pop()
            step = self.steps[name]
            if step.key_coder is None:
                self._emit(step, step.fn.process(value), ts)
            else:
                kw = step.kwargs(step.fn.process, value[0], ts, self.timers)
                self._emit(step, step.fn.process(value, **kw), ts)

    def advance(self, watermark: Timestamp) -> None:
        """Process everything queued, then fire every timer due at ``watermark`` in timestamp order."""
        self._drain()
        while True:
            due = self.timers.pop_due(watermark)
            if due is None:
                return
            ts, (name, key, timer, _tag) = due
            if self.rng.random() < 0.5:
                self._bundle()
            step = self.steps[name]
            method = step.on_timer[timer]
            self._emit(step, method(**step.kwargs(method, key, ts, self.timers)), ts)
            self._drain()

    def add(self, articles: Iterable[Article], timestamp: Timestamp) -> None:
        for a in articles:
            self.queue.append(("fingerprint", a, timestamp))

    def held_bytes(self) -> dict:
        return {name: s.held(self.timers) for name, s in self.steps.items()}

    def homes_held(self) -> int:
        """Fingerprints stored at homes (one per article of the horizon with a body)."""
        cell = self.steps["home"].specs["home"]
        return sum(1 for k in list(self.steps["home"].state)
                   for t, _ in self.steps["home"].cell(k, cell).read() if t == 0)

    def replay(self, articles: list[Article], step_ms: int = 3600_000, sample_every: int = 0,
               finish: bool = True) -> list[dict]:
        """Feed articles in event-time order, each stamped with its event time, advancing the watermark
        every ``step_ms``; returns state samples (every ``sample_every`` articles, and after the last
        step). With ``finish`` the watermark then goes to the end of time (every timer fires)."""
        arts = sorted(articles, key=order_key)
        samples: list[dict] = []
        i, fed_since = 0, 0
        t = order_key(arts[0])[0] if arts else 0
        while i < len(arts):
            t = max(t + step_ms, order_key(arts[i])[0] - order_key(arts[i])[0] % step_ms + step_ms)
            batch = []
            while i < len(arts) and order_key(arts[i])[0] < t:
                batch.append(arts[i])
                i += 1
            for a in batch:
                self.queue.append(("fingerprint", a, Timestamp(micros=order_key(a)[0] * 1000)))
            self.advance(Timestamp(micros=t * 1000 - 1))
            fed_since += len(batch)
            if sample_every and (fed_since >= sample_every or i == len(arts)):
                fed_since = 0
                held = self.held_bytes()
                samples.append({"fed": i, "held": held, "articles": self.homes_held()})
        if finish:
            self.advance(Timestamp(micros=2 ** 62))
        return samples

    def verdicts(self) -> set:
        return {(a["article_id"], a["origin"]["offset"], a["dedup"]["duplicate_of"], a["dedup"]["story_id"])
                for a in self.out[ARTICLES] + self.out[DUPLICATES]}


# -- tests -------------------------------------------------------------------------------------------------

HOUR = 3600 * 1000
T0 = 1_760_000_000_000


def _article(aid: str, title: str, body: str, published_at: int, offset: int = 0) -> Article:
    rec = KafkaRecord("wire", 0, offset, published_at, None, body.encode(), [], offset, 0)
    return new_article(rec, article_id=aid, raw_body=body, ingested_at=T0, title=title, published_at=published_at)


def _family(n_stories: int, copies: int = 4, seed: int = 7, spacing_ms: int = 3 * HOUR) -> list[Article]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    out = []
    for s in range(n_stories):
        paras = [" ".join(rng.choices(vocab, k=30)) + f" {rng.randint(1, 99)}." for _ in range(5)]
        t = T0 + s * spacing_ms
        for c in range(copies):
            body = "\n".join(paras[: 5 - (c % 2)]) + ("\nDonate to keep us going." if c == 3 else "")
            out.append(_article(f"s{s}-c{c}", f"Headline {s}-{c}", body, t + rng.choice([0, 1, 2]) * HOUR,
                                len(out)))
    return out


def _index_verdicts(arts: list[Article], config: NearDupConfig = NearDupConfig()) -> set:
    idx = NearDuplicateIndex(config)
    out = set()
    for a in sorted(arts, key=order_key):
        fp = fingerprint_article(a, config)
        v = idx.process(fp)
        out.add((a["article_id"], a["origin"]["offset"], v.duplicate_of, v.story_id))
    return out


@pytest.fixture(params=["scan", "sort"])
def lookup(request, monkeypatch):
    """Run a test with the shards' candidate lookup by scanning, then by sorting (same candidates); in
    both forms of the band step (keyed state, grouped)."""
    monkeypatch.setattr(_FindCandidatesFn, "SCAN_MAX", 10 ** 9 if request.param == "scan" else 0)
    return request.param


def test_replay_matches_the_pure_index_in_any_delivery_order(lookup):
    arts = _family(10)
    want = _index_verdicts(arts)
    assert sum(1 for v in want if v[2] is not None) >= 25  # the family really has copies
    for seed in (1, 2):
        r = StageReplay(NearDuplicates(mode="tag", band_shards=8), seed=seed)
        r.replay(arts, step_ms=HOUR)
        assert r.verdicts() == want
        assert not r.out[DEAD_LETTERS]
        assert sum(r.held_bytes().values()) == 0  # everything expires once the watermark passes the horizon


def test_replay_agrees_with_the_test_pipeline():
    arts = _family(4)
    r = StageReplay(NearDuplicates(mode="tag", band_shards=4), seed=3)
    r.replay(arts)
    with test_pipeline.TestPipeline() as p:
        res = p | beam.Create(arts) | NearDuplicates(mode="tag", band_shards=4)
        assert_that(res[ARTICLES] | beam.Map(lambda a: (a["article_id"], a["origin"]["offset"],
                                                        a["dedup"]["duplicate_of"], a["dedup"]["story_id"])),
                    equal_to(sorted(r.verdicts())))


def test_state_per_article_in_the_horizon_is_under_one_kilobyte():
    # 120 stories x 4 copies over 15 days, a 7-day horizon, 32 shards: every shard holds many entries, as
    # at production scale with the default 1,024 shards
    arts = _family(120, spacing_ms=3 * HOUR)
    r = StageReplay(NearDuplicates(mode="tag", band_shards=32), seed=5)
    samples = r.replay(arts, step_ms=HOUR, sample_every=40)
    steady = [s for s in samples if s["fed"] > 240]
    assert steady
    for s in steady:
        per_article = sum(s["held"].values()) / s["articles"]
        assert per_article <= 1024, s
        # transient steps hold nothing once the watermark has passed every article
        assert s["held"]["collect"] == 0 and s["held"]["join"] == 0, s
    fp_bytes = sum(len(fingerprint_article(a).to_bytes()) for a in arts) / len(arts)
    last = steady[-1]
    assert last["held"]["home"] / last["articles"] < fp_bytes + 24  # each fingerprint once, plus key + timer
    assert last["held"]["band"] / last["articles"] < 32 * 16 * 1.2  # 16-byte entries per band (+ compaction slack)


def test_a_request_before_its_fingerprint_waits_and_one_without_is_answered_at_the_watermark():
    from pipeline.stages.neardup import _FP, _VERIFY, _home_of, _join_key

    import struct

    cfg = NearDupConfig()
    a, b = _family(1, copies=2)
    fa, fb = fingerprint_article(a), fingerprint_article(b)
    if fb.order < fa.order:
        (a, fa), (b, fb) = (b, fb), (a, fa)
    home = _home_of(_join_key(a))
    jk = _join_key(b).encode()
    request = _VERIFY + struct.pack("<qH", fa.event_ms, len(jk)) + jk + fb.to_bytes()
    step = _Step("home", _VerifyAtHomeFn(cfg), coders.VarIntCoder(), {})
    timers: dict = {}
    ts = Timestamp(micros=fb.event_ms * 1000)
    assert list(step.fn.process((home, request), **step.kwargs(step.fn.process, home, ts, timers))) == []
    assert ("home", home, _VerifyAtHomeFn.FLUSH.name, "") in timers  # waits, at most until the watermark passes the request
    replies = list(step.fn.process((home, _FP + fa.to_bytes()), **step.kwargs(step.fn.process, home, ts, timers)))
    assert len(replies) == 1 and replies[0][0] == _join_key(b) and len(replies[0][1]) > 17  # a match
    # a request for a fingerprint that never comes (expired): "no match" when the flush timer fires
    other = 12345
    assert not list(step.fn.process((other, request), **step.kwargs(step.fn.process, other, ts, timers)))
    due = timers[("home", other, _VerifyAtHomeFn.FLUSH.name, "")]
    out = list(step.fn.on_flush(**step.kwargs(step.fn.on_flush, other, due, timers)))
    assert out == [(_join_key(b), b"\x05")]


def test_both_lookups_send_the_same_candidates():
    # many stories sharing band keys, a budget small enough to bite, releases of many entries at once
    body = "Qtly div 20 cts vs 20 cts previously\nPay April 15\nRecord March 23"
    arts = [_article(f"f{i:02d}", f"COMPANY{i} DIVIDEND", body, T0 + (i % 7) * 60_000, i) for i in range(30)]
    arts += _family(6, spacing_ms=HOUR)
    fn = _CandidatesInBandFn(NearDupConfig(band_budget=4))
    cfg = fn._config
    entries = []
    for a in arts:
        fp = fingerprint_article(a, cfg)
        for h in band_hashes(fp.signature, cfg).tolist():
            entries.append((h & 0xFFFFFFFF, len(entries) % 5, fp.event_ms))
    every = np.array(entries, dtype=_ENTRY)
    seen = set()
    for n_old in (0, len(every) // 3, len(every) - 1):
        scanned = [(sorted(map(int, i)), late, crowd) for i, late, crowd in fn._by_scanning(every, n_old)]
        by_sort = [(sorted(map(int, i)), late, crowd) for i, late, crowd in fn._by_sorting(every, n_old)]
        assert scanned == by_sort
        seen |= {("late", late) for _, late, _ in scanned} | {("crowded", c) for _, _, c in scanned}
        seen |= {("found", bool(i)) for i, _, _ in scanned}
    assert len(seen) == 6  # every case came up: late or not, crowded or not, candidates or none


def test_band_budget_keeps_the_latest_entries_of_a_crowded_band_key(lookup):
    import numpy as np

    from pipeline.stages.neardup import _ENTRY

    # forty notices of one formula (identical bodies, so every band key is shared), budget 5
    body = "Qtly div 20 cts vs 20 cts previously\nPay April 15\nRecord March 23"
    arts = [_article(f"f{i:02d}", f"COMPANY{i} DIVIDEND", body, T0 + i * 60_000, i) for i in range(40)]
    stage = NearDuplicates(mode="tag", band_budget=5, band_shards=4)
    r = StageReplay(stage, seed=2)
    r.replay(arts, step_ms=60_000, finish=False)
    band = r.steps["band"]
    counts = []
    for key in list(band.state):
        blobs = [b for t, b in band.cell(key, band.specs["shard"]).read() if t == 0]
        e = np.frombuffer(b"".join(blobs), dtype=_ENTRY)
        counts.extend(np.unique(e["band"], return_counts=True)[1].tolist())
    assert counts and max(counts) <= 5 + 5 // 4 + 1  # trimmed to the budget once a quarter over it
    r.advance(Timestamp(micros=2 ** 62))
    assert r.verdicts() == _index_verdicts(arts, stage.config)


def test_band_shards_default_to_many_in_streaming_and_few_in_batch():
    assert NearDuplicates()._shards == STREAMING_BAND_SHARDS == 1024
    assert NearDuplicates(expire_state=False)._shards == BATCH_BAND_SHARDS == 64
    assert NearDuplicates(expire_state=False, band_shards=7)._shards == 7


@pytest.mark.parametrize("bad", [0, -1, 2 ** 21, 1.5])
def test_band_shards_are_validated(bad):
    with pytest.raises(ValueError):
        NearDuplicates(band_shards=bad)


def test_drop_mode_through_the_replay():
    arts = _family(3)
    r = StageReplay(NearDuplicates(mode=NearDupMode.DROP, band_shards=4), seed=1)
    r.replay(arts)
    want = _index_verdicts(arts)
    assert {a["article_id"] for a in r.out[DUPLICATES]} == {v[0] for v in want if v[2] is not None}
    assert {a["article_id"] for a in r.out[ARTICLES]} == {v[0] for v in want if v[2] is None}


def test_everything_expires_after_the_horizon():
    arts = _family(2)
    r = StageReplay(NearDuplicates(mode="tag", band_shards=4, horizon_seconds=DAY_MS / 1000), seed=1)
    r.replay(arts)
    assert sum(r.held_bytes().values()) == 0 and not r.timers


# -- the grouped band step (batch execution) ---------------------------------------------------------------


class _Count:
    def __init__(self):
        self.n = 0

    def inc(self, n: int = 1):
        self.n += n


def _timed_entries(arts: list, times_ms: list, cfg: NearDupConfig, shards: int) -> list:
    """The band entries of the Fingerprint step for the grouped form: (shard, element micros + entry +
    join key), each article at its element time."""
    fn = _FingerprintFn(cfg, shards, timed_bands=True)
    out = []
    for a, t in zip(arts, times_ms):
        out += [o.value for o in fn.process(a, timestamp=Timestamp(micros=t * 1000))
                if isinstance(o, pvalue.TaggedOutput) and o.tag == "bands"]
    return out


def _released_by_timers(timed: list, cfg: NearDupConfig) -> tuple:
    """The keyed-state band step fed every entry (in this order), then its timers fired in time order, as
    a runner does when the watermark of a bounded input jumps to the end: (element micros, output) of
    each output, and the late and trimmed counts."""
    import struct

    fn = _CandidatesInBandFn(cfg, expire_state=False)
    fn._late, fn._trimmed = _Count(), _Count()
    step = _Step("band", fn, coders.VarIntCoder(), {})
    timers = _Timers()
    fn.setup()
    fn.start_bundle()
    for shard, data in timed:
        ts = Timestamp(micros=struct.unpack_from("<q", data)[0])
        fn.process((shard, data[8:]), **step.kwargs(fn.process, shard, ts, timers))
    fn.start_bundle()
    out = []
    while (due := timers.pop_due(Timestamp(micros=2 ** 62))) is not None:
        ts, (_name, key, timer, _tag) = due
        method = step.on_timer[timer]
        out += [(ts.micros, o) for o in method(**step.kwargs(method, key, ts, timers))]
    assert all(t == 0 for k in step.state for t, _ in step.cell(k, step.specs["shard"]).read())  # all released
    return sorted(out), fn._late.n, fn._trimmed.n


def _released_grouped(timed: list, cfg: NearDupConfig) -> tuple:
    """The grouped band step over the same entries, grouped by shard as a GroupByKey would."""
    fn = _CandidatesGroupedFn(cfg)
    fn._late, fn._trimmed = _Count(), _Count()
    by_shard = defaultdict(list)
    for shard, data in timed:
        by_shard[shard].append(data)
    out = []
    for shard, entries in by_shard.items():
        out += [(int(tv.timestamp.micros), tv.value) for tv in fn.process((shard, entries))]
    return sorted(out), fn._late.n, fn._trimmed.n


def test_grouped_band_step_releases_what_the_timers_release(lookup):
    # Forty notices of one formula (every band key shared: crowded, trimmed to a budget of 5) two hours
    # apart over more than three horizons of one day (entries expire), and story families with four copies
    # each; every article reaches the step 0 to 59 minutes after its publication, some at the same element
    # time, so entries of earlier stories often come in later steps (late) and copies before their story.
    rng = random.Random(11)
    body = "Qtly div 20 cts vs 20 cts previously\nPay April 15\nRecord March 23"
    arts = [_article(f"f{i:02d}", f"COMPANY{i} DIVIDEND", body, T0 + i * 2 * HOUR, i) for i in range(40)]
    arts += _family(8, spacing_ms=5 * HOUR)
    times = [order_key(a)[0] + rng.randrange(60) * 60_000 + rng.choice([0, 0, 250]) for a in arts]
    for i in range(0, len(arts) - 1, 9):
        times[i + 1] = times[i]  # two articles at one element time
    order = list(range(len(arts)))
    rng.shuffle(order)
    cfg = NearDupConfig(band_budget=5, horizon_ms=DAY_MS)
    timed = _timed_entries([arts[i] for i in order], [times[i] for i in order], cfg, shards=4)
    with_timers = _released_by_timers(timed, cfg)
    grouped = _released_grouped(timed, cfg)
    assert grouped == with_timers
    out, late, trimmed = grouped
    steps = {t for t, _ in out}
    assert len(steps) >= 50 and all(t % 1_000_000 == 0 for t in steps)  # each output at its release step
    assert late >= 40 and trimmed >= 500
    assert sum(1 for _, (_jk, cands) in out if len(cands) > 1) >= 1000  # entries with candidates


def test_grouped_band_step_refuses_expire_state():
    with pytest.raises(ValueError, match="grouped_bands needs expire_state=False"):
        NearDuplicates(expire_state=True, grouped_bands=True)
