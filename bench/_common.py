"""Shared helpers for the bench scripts: corpus loading, RSS measurement, medians."""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.corpus import read_jsonl, shared_dir  # noqa: E402

__all__ = ["corpus_articles", "PeakRSS", "median", "raw_fields"]

_FIELDS = ("id", "publisher", "url", "title", "published_at", "language", "body", "html")


def raw_fields(a: dict) -> dict:
    return {k: a.get(k) for k in _FIELDS if a.get(k) is not None}


def corpus_articles(n: int, *, with_body: bool = True) -> list:
    """The first ``n`` Reuters-21578 stories (with bodies), topped up with wire articles. Exits if absent."""
    d = shared_dir()
    if d is None:
        sys.exit("bench: ../shared (the corpus) is not beside the repository; set WIRESTREAM_SHARED")
    out = []
    for path in ("corpus/wire_articles.jsonl", "corpus/reuters21578.jsonl"):
        for a in read_jsonl(d / path):
            if with_body and not a.get("body"):
                continue
            out.append(raw_fields(a))
            if len(out) >= n:
                return out
    return out


def median(xs):
    return statistics.median(xs)


class PeakRSS:
    """Samples the resident set size of this process and its children (psutil) until stopped."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self._proc = psutil.Process(os.getpid())
        self._interval = interval
        self.peak_total = 0
        self.peak_per_process = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._proc] + self._proc.children(recursive=True)
                rss = []
                for p in procs:
                    try:
                        if "tansu" in " ".join(p.cmdline()[:1]):
                            continue  # the broker is not ours to count
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                self.peak_total = max(self.peak_total, sum(rss))
                self.peak_per_process = max([self.peak_per_process] + rss)
            except psutil.Error:
                pass
            time.sleep(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()
