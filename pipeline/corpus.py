"""Locating and reading the shared evaluation corpus (``../shared`` beside the repository).

The corpus texts are not ours: they are never copied into the repo. Tests skip, and bench/quality
scripts exit with a clear message, when the directory is absent. ``WIRESTREAM_SHARED`` overrides the path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

__all__ = ["shared_dir", "read_jsonl"]


def shared_dir() -> Path | None:
    """The shared directory, or None when it is not there."""
    env = os.environ.get("WIRESTREAM_SHARED")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parent.parent
    candidates += [repo.parent / "shared", Path.cwd().parent / "shared"]
    for c in candidates:
        if (c / "corpus").is_dir() or (c / "gold").is_dir():
            return c
    return None


def read_jsonl(path: str | Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
