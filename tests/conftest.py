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


@pytest.fixture(scope="session")
def nlp():
    """The NLP stage's spaCy pipeline, loaded once per test session; skips where no English model is installed."""
    from pipeline.errors import ConfigError
    from pipeline.nlp.model import load_model

    try:
        return load_model(None)
    except ConfigError as exc:
        pytest.skip(f"no spaCy model for the NLP tests: {exc}")


@pytest.fixture(scope="session")
def seed_article(shared):
    """The seed article (Moscow Times, Victory Day parade): its body from ../shared/seeds."""
    path = sorted((shared / "seeds").glob("*.txt"))[0]
    return {"id": "seed-moscow-times", "body": path.read_text(encoding="utf-8"), "published_at": "2020-05-28"}
