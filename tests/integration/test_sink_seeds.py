"""Warm-start seeds kept between local rounds: each refresh reads only what the sink got since the last."""

from __future__ import annotations

import json

import pytest

from pipeline.run import run_job
from pipeline.stages.warmstart import SinkSeeds
from pipeline.text import content_hash

from .kafka_helpers import produce

pytestmark = pytest.mark.integration


def _articles(prefix, n):
    return [json.dumps({"id": f"{prefix}{i}", "title": f"Story {prefix}{i}",
                        "body": f"Body of story {prefix}{i}.\nIts second line."}).encode() for i in range(n)]


def _run(broker, names):
    return run_job(["--bootstrap-servers", broker.bootstrap_servers, "--input-topic", names["input"],
                    "--output-topic", names["output"], "--dead-letter-topic", names["dead"],
                    "--group-id", names["group"], "--bounded", "--no-boilerplate", "--no-near-dedup", "--no-nlp"])


def test_refresh_reads_only_new_sink_records_and_keeps_every_seed(broker, topic_names):
    produce(broker.bootstrap_servers, topic_names["input"], _articles("a", 5))
    assert _run(broker, topic_names).written == 5
    seeds = SinkSeeds({"bootstrap.servers": broker.bootstrap_servers}, topic_names["output"],
                      horizon_seconds=7 * 86_400)
    try:
        first = dict(seeds.refresh())
        assert seeds.read == 5
        assert first[content_hash("Story a3", "Body of story a3.\nIts second line.")][0] == "a3"
        produce(broker.bootstrap_servers, topic_names["input"], _articles("b", 3))
        assert _run(broker, topic_names).written == 3
        second = dict(seeds.refresh())
        assert seeds.read == 8  # the 5 already read are not read again
        assert set(first) < set(second) and len(second) == 8
        assert dict(seeds.refresh()) == second and seeds.read == 8  # nothing new: nothing read
    finally:
        seeds.close()


def test_seeds_older_than_the_horizon_are_forgotten(broker, topic_names):
    produce(broker.bootstrap_servers, topic_names["input"], _articles("c", 2))
    assert _run(broker, topic_names).written == 2
    now = [10**13]  # far in the future: every input is older than the horizon
    seeds = SinkSeeds({"bootstrap.servers": broker.bootstrap_servers}, topic_names["output"],
                      horizon_seconds=60, clock=lambda: now[0])
    try:
        assert seeds.refresh() == [] and seeds.read == 2
    finally:
        seeds.close()
