"""deploy/kafka/create_topics.py against the real broker: creates the layout once, then changes nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "create_topics.py"


def _run(broker, *args):
    return subprocess.run([sys.executable, str(SCRIPT), "--bootstrap-servers", broker.bootstrap_servers,
                           "--replication-factor", "1", *args], capture_output=True, text=True, timeout=120)


def _describe(broker, topics):
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    md = admin.list_topics(timeout=30)
    parts = {t: len(md.topics[t].partitions) for t in topics if t in md.topics}
    futures = admin.describe_configs([ConfigResource("TOPIC", t) for t in topics])
    configs = {res.name: {k: v.value for k, v in fut.result(30).items()} for res, fut in futures.items()}
    return parts, configs


def test_create_topics_is_idempotent(broker):
    tag = uuid.uuid4().hex[:8]
    raw, out, dups = f"raw-{tag}", f"articles-{tag}", f"dups-{tag}"
    dead = f"{out}.dead-letter"
    first = _run(broker, "--input-topic", raw, "--output-topic", out, "--duplicates-topic", dups,
                 "--partitions", "3")
    assert first.returncode == 0, first.stderr
    status = dict(line.split("\t")[:2] for line in first.stdout.splitlines())
    assert status == {raw: "created", out: "created", dead: "created", dups: "created"}

    second = _run(broker, "--input-topic", raw, "--output-topic", out, "--duplicates-topic", dups,
                  "--partitions", "5")  # a different count must not touch existing topics
    assert second.returncode == 0, second.stderr
    assert {line.split("\t")[1] for line in second.stdout.splitlines()} == {"exists"}

    parts, configs = _describe(broker, [raw, out, dead, dups])
    assert parts == {raw: 3, out: 3, dead: 1, dups: 3}
    assert configs[out]["cleanup.policy"] == "compact"
    assert configs[out]["max.message.bytes"] == str(8 * 1024 * 1024)
    assert configs[raw]["cleanup.policy"] == "delete"
    assert configs[dead]["retention.ms"] == str(30 * 24 * 3600 * 1000)


def test_create_topics_reports_an_unreachable_broker():
    res = subprocess.run([sys.executable, str(SCRIPT), "--bootstrap-servers", "127.0.0.1:1", "--input-topic", "a",
                          "--output-topic", "b", "--timeout", "3"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "create_topics:" in res.stderr and "127.0.0.1:1" in res.stderr and "Traceback" not in res.stderr
