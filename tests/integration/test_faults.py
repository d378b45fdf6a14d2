"""Faults, for real: a pipeline process SIGKILLed mid-stream, a broker SIGSTOPped, a sink that refuses
records, an article that makes a stage raise. Each test prints its figures.

The pipeline runs as `wirestream run` in a subprocess (unbounded: on the local runner, a loop of bounded
rounds, see pipeline/rounds.py). Topics are read back with kafka-python; every wait is on a condition.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from pipeline.broker import EmbeddedBroker

from .kafka_helpers import produce
from .proc_helpers import Committed, Pipeline, Tail, article, origins, wait_until

pytestmark = pytest.mark.integration

MALFORMED = [b"not json at all", b'{"id": "x", "title": "no body"}']


def _args(bs, names, *extra):
    return ["--bootstrap-servers", bs, "--input-topic", names["input"], "--output-topic", names["output"],
            "--dead-letter-topic", names["dead"], "--group-id", names["group"], "--no-nlp", "--no-near-dedup",
            *extra]


class _Feeder(threading.Thread):
    """Produces batches of articles, one each 0.4 s once the previous one is acknowledged, until ``stop`` is
    set (at most ``max_batches``): a live stream for as long as the test needs one, not a fixed 16 s."""

    def __init__(self, bs, topic, max_batches, per_batch, tag):
        super().__init__(daemon=True)
        self.bs, self.topic, self.max_batches, self.per_batch, self.tag = bs, topic, max_batches, per_batch, tag
        self.sent = 0
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            for b in range(self.max_batches):
                values = [article(b * self.per_batch + i, self.tag) for i in range(self.per_batch)]
                produce(self.bs, self.topic, values)
                self.sent += len(values)
                if self.stop.wait(0.4):  # offered rate: one batch per 0.4 s, until told to stop
                    return
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


class _Accounts:
    """Decoded sink and dead-letter topics, incrementally."""

    def __init__(self, bs, names):
        # fetches answered within 20 ms, not the default 500: a record must be seen soon after it is written to
        # be seen before its offsets are committed
        self.out = Tail(bs, names["output"], fetch_max_wait_ms=20)
        self.dead = Tail(bs, names["dead"], fetch_max_wait_ms=20)
        self._out_seen = 0
        self._dead_seen = 0
        self.out_origins: list = []
        self.dead_origins: list = []

    def poll(self):
        self.out.poll(50)
        self.dead.poll(10)
        self.out_origins += origins(self.out.messages[self._out_seen:], "enriched_article")
        self._out_seen = len(self.out.messages)
        self.dead_origins += origins(self.dead.messages[self._dead_seen:], "dead_letter")
        self._dead_seen = len(self.dead.messages)
        return self

    def close(self):
        self.out.close()
        self.dead.close()


def _input_origins(bs, topic):
    tail = Tail(bs, topic)
    wait_until(lambda: tail.poll(200), 30, "input messages")
    tail.poll(500)
    out = {(m.partition, m.offset) for m in tail.messages}
    tail.close()
    return out


def _crash_and_restart(broker, names, tmp_path, *, warm: bool):
    bs = broker.bootstrap_servers
    produce(bs, names["input"], [article(i, "seed") for i in range(20)] + MALFORMED)
    produce(bs, names["output"], [])
    produce(bs, names["dead"], [], partitions=1)
    extra = ["--dedup-warm-start"] if warm else []
    # fed until the uncommitted window has been caught (a slow machine may need more than a few rounds)
    feeder = _Feeder(bs, names["input"], max_batches=400, per_batch=4, tag="live")
    acc = _Accounts(bs, names)
    committed = Committed(bs, names["group"], names["input"])
    window: list = []
    kills = 0
    try:
        feeder.start()
        # Kill while some written records are not yet committed (the uncommitted window). The window of a
        # round is short (flush -> commit), so a kill may land after the commit: then start again and retry.
        for attempt in range(4):
            proc = Pipeline(_args(bs, names, *extra), tmp_path / f"run-{attempt}.log")

            def written_not_committed():
                # committed offsets first, then the sink: a record read after an offset read that does not
                # cover it was written before that commit was seen. (The other order needs the record to be
                # fetched inside the short flush-to-commit window.) If the commit lands just before the kill,
                # the window found below is empty and the loop starts the pipeline again.
                c = committed.now()
                acc.poll()
                return [o for o in acc.out_origins if o[0][1] >= c.get(o[0][0], 0)]

            try:
                wait_until(written_not_committed, 90, "written records whose offsets are not committed", poll=0.01)
            except AssertionError as exc:
                raise AssertionError(f"{exc} (attempt {attempt + 1}, {feeder.sent} articles fed, "
                                     f"{len(acc.out_origins)} written); the pipeline's log ends:\n"
                                     f"{proc.log()[-3000:]}") from None
            finally:
                proc.kill()
            kills += 1
            at_kill = committed.now()
            acc.poll()
            window = [o for o in acc.out_origins if o[0][1] >= at_kill.get(o[0][0], 0)]
            if window:
                break
        assert window, "never caught a non-empty uncommitted window in 4 kills"
        feeder.stop.set()
        feeder.join(120)
        assert feeder.error is None, feeder.error
        inputs = _input_origins(bs, names["input"])

        restart = Pipeline(_args(bs, names, *extra), tmp_path / "restart.log")
        try:
            def all_accounted():
                acc.poll()
                return inputs <= {o[0] for o in acc.out_origins} | {o[0] for o in acc.dead_origins}

            wait_until(all_accounted, 110, "every input in the sink or the dead-letter topic", poll=0.2)
            wait_until(lambda: committed.now() == _ends(inputs), 60, "all input offsets committed", poll=0.2)
        finally:
            code = restart.stop()
        acc.poll()
        seen = {o[0] for o in acc.out_origins} | {o[0] for o in acc.dead_origins}
        lost = inputs - seen
        per_origin = Counter(o[0] for o in acc.out_origins)
        duplicated = {k: n for k, n in per_origin.items() if n > 1}
        extra_copies = sum(n - 1 for n in duplicated.values())
        window_origins = {o[0] for o in window}
        print(f"\ncrash/restart (warm start {'on' if warm else 'off'}): inputs={len(inputs)} kills={kills} "
              f"written-but-uncommitted at kill={len(window)} lost={len(lost)} "
              f"duplicated records={len(duplicated)} extra copies={extra_copies} "
              f"sink={len(acc.out_origins)} dead-lettered={len(acc.dead_origins)} restart exit={code}")
        assert not lost, f"lost inputs: {sorted(lost)[:10]}"
        assert code in (0, 130, -15), restart.log()[-3000:]
        assert "accounts do not balance" not in restart.log()  # every round: read = written + dups + dead
        # dead letters too: each malformed input once, plus at most a re-write from the window
        assert len({o[0] for o in acc.dead_origins}) == len(MALFORMED)
        for origin, n in Counter(o[0] for o in acc.dead_origins).items():
            assert n == 1 or origin[1] >= at_kill[origin[0]], (origin, at_kill)
        for origin in duplicated:
            # a duplicate can only come from the window that was written but not committed at the kill ...
            assert origin[1] >= at_kill[origin[0]], (origin, at_kill)
            # ... and every copy carries the same key
            assert len({o[1] for o in acc.out_origins if o[0] == origin}) == 1
        return window_origins, set(duplicated)
    finally:
        feeder.stop.set()
        acc.close()
        committed.close()


def _ends(origins_set):
    ends: dict = {}
    for p, off in origins_set:
        ends[p] = max(ends.get(p, 0), off + 1)
    return ends


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_duplicates_only_the_uncommitted_window(broker, topic_names, tmp_path):
    window, duplicated = _crash_and_restart(broker, topic_names, tmp_path, warm=False)
    assert duplicated <= window
    # without warm start the restarted job re-writes what it re-reads from the window
    assert duplicated, "the window was re-read after the restart, so its records should be written again"


@pytest.mark.slow
def test_dedup_warm_start_makes_a_restart_write_no_duplicates(broker, topic_names, tmp_path):
    window, duplicated = _crash_and_restart(broker, topic_names, tmp_path, warm=True)
    assert window  # there was something to re-write ...
    assert not duplicated  # ... and warm start dropped all of it as exact duplicates


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test's own (it gets SIGSTOPped), not the session one."""
    b = EmbeddedBroker(log_path=str(tmp_path / "tansu-own.log"))
    b.start()
    yield b
    b.resume()  # never leave a stopped process behind
    b.stop()


@pytest.mark.slow
def test_broker_stall_of_30s_the_pipeline_waits_and_resumes_without_loss(own_broker, topic_names, tmp_path):
    bs = own_broker.bootstrap_servers
    names = topic_names
    before = [article(i, "before") for i in range(20)]
    produce(bs, names["input"], before)
    produce(bs, names["output"], [])
    produce(bs, names["dead"], [], partitions=1)
    proc = Pipeline(_args(bs, names), tmp_path / "stall.log")
    acc = _Accounts(bs, names)
    try:
        wait_until(lambda: len(acc.poll().out_origins) >= len(before), 90, "the first batch in the sink")
        started = proc.log().count("starting (")
        produce(bs, names["input"], [article(i, "during", pad=2000) for i in range(40)])
        # stall the broker while a round is working on the new batch
        wait_until(lambda: proc.log().count("starting (") > started, 30, "a round to start on the new batch",
                   poll=0.02)
        stall = threading.Event()
        own_broker.pause()
        try:
            stall.wait(30)  # the fault itself: the broker is frozen for 30 s (nothing to await)
            assert proc.alive(), "the pipeline exited while the broker was stopped:\n" + proc.log()[-3000:]
        finally:
            own_broker.resume()
        after = [article(i, "after") for i in range(20)]
        produce(bs, names["input"], after)
        inputs = _input_origins(bs, names["input"])
        wait_until(lambda: inputs <= {o[0] for o in acc.poll().out_origins}, 120,
                   "every input, before and after the stall, in the sink")
        assert proc.alive(), proc.log()[-3000:]
        log = proc.log()
        failed_rounds = log.count(" failed after ")
        committed = Committed(bs, names["group"], names["input"])
        try:
            wait_until(lambda: committed.now() == _ends(inputs), 60, "all input offsets committed")
        finally:
            committed.close()
    finally:
        code = proc.stop()
        acc.close()
    per_origin = Counter(o[0] for o in acc.out_origins)
    print(f"\nbroker stall 30 s (mid-round): inputs={len(inputs)} sink={len(acc.out_origins)} lost=0 "
          f"failed rounds={failed_rounds} (retried with backoff), process alive throughout, exit on SIGTERM={code}")
    assert set(per_origin) == inputs
    assert max(per_origin.values()) == 1  # nothing was written twice either
    assert failed_rounds <= 5, "a crash loop: rounds kept failing\n" + log[-3000:]
    assert "accounts do not balance" not in log


@pytest.mark.slow
def test_unwritable_sink_fails_loudly_and_commits_nothing(broker, topic_names, tmp_path):
    """The producer's message.max.bytes (passed through --kafka-config) is smaller than every record."""
    bs = broker.bootstrap_servers
    names = topic_names
    values = [article(i, "big", pad=3000) for i in range(5)]
    produce(bs, names["input"], values)
    produce(bs, names["output"], [])
    produce(bs, names["dead"], [], partitions=1)
    proc = Pipeline(_args(bs, names, "--kafka-config", "message.max.bytes=1000"), tmp_path / "sink.log")
    committed = Committed(bs, names["group"], names["input"])
    try:
        wait_until(lambda: proc.log().count(" failed after ") >= 2, 90, "two failed (and retried) rounds")
        assert proc.alive(), "a failing sink must not kill the job:\n" + proc.log()[-3000:]
        offsets = committed.now()
    finally:
        proc.stop()
        committed.close()
    log = proc.log()
    first_error = next(line for line in log.splitlines() if " failed after " in line)
    sink = Tail(bs, names["output"])
    written = sink.poll(1000)
    sink.close()
    print(f"\nunwritable sink: inputs={len(values)} failed rounds={log.count(' failed after ')} "
          f"committed={offsets} written={len(written)}\n  {first_error[:300]}")
    assert "ERROR" in first_error and ("MSG_SIZE_TOO_LARGE" in first_error or "not delivered" in first_error
                                       or "too large" in first_error.lower()), first_error
    assert set(offsets.values()) == {0}, offsets  # nothing committed: a restart re-reads every input
    assert not written


_POISON = {"boilerplate": "poison-boilerplate", "near_dedup": "poison-neardup", "nlp": "poison-nlp"}


@pytest.mark.slow
def test_poison_pill_in_each_stage_is_dead_lettered_with_stage_and_exception(broker, topic_names, monkeypatch):
    """One article per stage makes that stage's pure function raise; the rest of the stream is written."""
    import json

    import pipeline.nlp.extract as nlp_extract
    import pipeline.stages.boilerplate as boilerplate_stage
    import pipeline.stages.neardup as neardup_stage
    from pipeline.run import run_job

    class Poison(RuntimeError):
        pass

    real_strip, real_fp, real_extract = (boilerplate_stage.strip_article, neardup_stage.fingerprint_article,
                                         nlp_extract.extract_pieces)

    def strip_article(article, *a, **kw):
        if article["article_id"] == _POISON["boilerplate"]:
            raise Poison("boilerplate poison pill")
        return real_strip(article, *a, **kw)

    def fingerprint_article(article, *a, **kw):
        if article["article_id"] == _POISON["near_dedup"]:
            raise Poison("near-dup poison pill")
        return real_fp(article, *a, **kw)

    def extract_pieces(pieces, *a, **kw):
        if any("POISON-NLP" in doc.text for _off, doc in pieces):
            raise Poison("nlp poison pill")
        return real_extract(pieces, *a, **kw)

    # the FnApiRunner runs its worker in this process, so the patched functions are the ones the stages call
    monkeypatch.setattr(boilerplate_stage, "strip_article", strip_article)
    monkeypatch.setattr(neardup_stage, "fingerprint_article", fingerprint_article)
    monkeypatch.setattr(nlp_extract, "extract_pieces", extract_pieces)

    bs = broker.bootstrap_servers
    names = topic_names
    good = [article(i, "ok") for i in range(12)]
    poison = [json.dumps({"id": aid, "title": f"Poison {stage}",
                          "body": f"The {stage} stage fails on this one.\nPOISON-NLP marker for {stage}."
                          if stage == "nlp" else f"The {stage} stage fails on this one.\nA second line."}).encode()
              for stage, aid in _POISON.items()]
    produce(bs, names["input"], good[:6] + poison + good[6:])
    produce(bs, names["output"], [])
    produce(bs, names["dead"], [], partitions=1)
    summary = run_job(["--bootstrap-servers", bs, "--input-topic", names["input"], "--output-topic",
                       names["output"], "--dead-letter-topic", names["dead"], "--group-id", names["group"],
                       "--bounded"])
    acc = _Accounts(bs, names)
    wait_until(lambda: len(acc.poll().out_origins) >= summary.written and len(acc.dead_origins) >= 3, 30,
               "the run's records on the topics")
    acc.close()
    dead = {rec["article_id"]: rec for _o, _k, rec in acc.dead_origins}
    print(f"\npoison pills: {summary.line()}\n" + "\n".join(
        f"  {aid}: stage={rec['stage']} error_type={rec['error_type']} reason={rec['reason'][:90]!r}"
        for aid, rec in sorted(dead.items())))
    assert summary.balanced and summary.read == len(good) + len(poison)
    assert summary.written == len(good) and summary.dead_lettered == len(poison)
    for stage, aid in _POISON.items():
        rec = dead[aid]
        assert rec["stage"] == stage
        assert rec["error_type"] == "StageError:Poison"
        assert "Poison" in rec["reason"] and "poison pill" in rec["reason"]
        assert rec["value"] in poison  # the original bytes, to re-send after a fix
    assert {rec["article_id"] for _o, _k, rec in acc.out_origins} == {f"art-ok{i}" for i in range(12)}
