"""The round loop of unbounded local runs (pipeline/rounds.py), with a fake round and no broker."""

from __future__ import annotations

import pytest

import pipeline.rounds as rounds
from pipeline.errors import ConfigError
from pipeline.kafkaio import StartMode, StartSpec
from pipeline.options import Config
from pipeline.rounds import RoundPolicy, run_rounds


def _config(**kw):
    base = dict(bootstrap_servers="127.0.0.1:1", input_topics=("in",), output_topic="out",
                dead_letter_topic="dead", start=StartSpec(StartMode.EARLIEST))
    base.update(kw)
    return Config(**base)


def test_rounds_resume_from_committed_remember_the_sink_and_sum_counters(monkeypatch):
    monkeypatch.setattr(rounds, "has_backlog", lambda *a, **k: True)
    seen = []

    def one_round(cfg):
        seen.append(cfg)
        return {"read": 3, "written": 2, "duplicates": 1, "dead_lettered": 0}

    total = run_rounds(_config(), one_round, policy=RoundPolicy(max_rounds=3), sleep=lambda s: None)
    assert total == {"read": 9, "written": 6, "duplicates": 3, "dead_lettered": 0}
    assert all(c.bounded and not c.streaming for c in seen)
    assert seen[0].start.mode == StartMode.EARLIEST and not seen[0].dedup_warm_start
    assert all(c.start.mode == StartMode.COMMITTED and c.dedup_warm_start for c in seen[1:])


def test_a_failed_round_is_retried_with_backoff_and_the_same_start(monkeypatch):
    monkeypatch.setattr(rounds, "has_backlog", lambda *a, **k: True)
    calls, sleeps = [], []

    def flaky(cfg):
        calls.append(cfg.start.mode)
        if len(calls) <= 3:
            raise RuntimeError("broker away")
        return {"read": 1, "written": 1}

    total = run_rounds(_config(), flaky, policy=RoundPolicy(max_rounds=4, retry_initial_seconds=1,
                                                            retry_max_seconds=3), sleep=sleeps.append)
    assert calls == [StartMode.EARLIEST] * 4  # nothing was committed, so the retry starts where the first did
    assert sleeps == [1, 2, 3]
    assert total == {"read": 1, "written": 1}


def test_idle_input_runs_no_round(monkeypatch):
    backlog = iter([False, False, True])
    monkeypatch.setattr(rounds, "has_backlog", lambda *a, **k: next(backlog))
    ran = []
    run_rounds(_config(), lambda cfg: ran.append(cfg) or {}, policy=RoundPolicy(max_rounds=2), sleep=lambda s: None)
    assert len(ran) == 2  # the first round always runs; the second waited for two empty checks


def test_config_errors_and_interrupts_are_not_retried(monkeypatch):
    def bad(cfg):
        raise ConfigError("wrong")

    with pytest.raises(ConfigError):
        run_rounds(_config(), bad, policy=RoundPolicy(max_rounds=5), sleep=lambda s: None)
    with pytest.raises(ConfigError, match="--no-commit"):
        run_rounds(_config(commit_offsets=False), bad, policy=RoundPolicy(max_rounds=1))
