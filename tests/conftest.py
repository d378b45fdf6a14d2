"""Shared pytest fixtures. The Kafka broker fixture lives in tests/integration/conftest.py."""

from __future__ import annotations

import pytest

from pipeline.corpus import read_jsonl, shared_dir


@pytest.fixture(scope="session")
def shared():
    """Path of ../shared (corpus and gold labels); skips the test where it is absent."""
    d = shared_dir()
    if d is None:
        pytest.skip("../shared (corpus and gold labels) is not beside the repository; set WIRESTREAM_SHARED")
    return d


@pytest.fixture(scope="session")
def wire_articles(shared):
    return list(read_jsonl(shared / "corpus" / "wire_articles.jsonl"))


@pytest.fixture(scope="session")
def synthetic_dev(shared):
    return list(read_jsonl(shared / "gold" / "synthetic_dev.jsonl"))
