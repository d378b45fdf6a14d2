"""Shared helpers for the bench scripts: corpus loading, RSS measurement, medians."""

from __future__ import annotations

import json
import statistics
import sys
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
    """Peak resident set size of this process while the block runs, from the kernel's high-water mark.

    Linux keeps each process's peak RSS (``VmHWM`` in ``/proc/self/status``) and resets it to the current
    RSS when ``5`` is written to ``/proc/self/clear_refs``: reset on entry, read on exit, nothing runs in
    between. (A sampling thread would hold the GIL of the very process it measures, for a psutil scan of
    ``/proc`` every 50 ms: a handicap the hand-written loop it is compared with did not carry.) Only for
    work that runs in this process, as the local in-process
    runner does. Where the reset is not possible, the process's lifetime peak (``ru_maxrss``) is given.
    """

    def __init__(self):
        self.peak_total = 0
        self.since_start = True  # False: the figure is the process's lifetime peak

    def __enter__(self):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.since_start = False
        return self

    def __exit__(self, *exc):
        self.peak_total = _vm_hwm()
        if not self.since_start or not self.peak_total:
            import resource

            self.since_start = False
            self.peak_total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _vm_hwm() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()
