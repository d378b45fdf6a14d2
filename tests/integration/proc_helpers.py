"""Helpers for fault tests: `wirestream run` as a real subprocess, a live tail of a topic, awaiting conditions.

Everything here waits on a condition with a deadline (never a bare sleep) and reads topics with kafka-python,
an independent client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

from kafka import KafkaConsumer, TopicPartition

from .kafka_helpers import decode_single_object, load_avsc

WIRESTREAM = [sys.executable, "-m", "pipeline"]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.1):
    """Call ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)  # a poll interval between checks of a condition, not a wait for time to pass


class Pipeline:
    """`wirestream run ...` in its own process group, output captured to a file."""

    def __init__(self, args: Iterable[str], log_path: Path, *, log_level: str = "INFO", env: Optional[dict] = None):
        self.args = list(args)
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*WIRESTREAM, "--log-level", log_level, "run", *self.args],
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ, **(env or {})))

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (the runner and any worker it started)."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a clean stop) and wait; SIGKILL if it does not stop."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._log.close()
        return self.proc.returncode


class Tail:
    """All messages of a topic from the beginning, kept up to date by :meth:`poll` (kafka-python)."""

    def __init__(self, bootstrap: str, topic: str, **config):
        self.topic = topic
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                      auto_offset_reset="earliest", **config)
        parts = wait_until(lambda: self.consumer.partitions_for_topic(topic), 30, f"partitions of {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.messages: list = []

    def poll(self, timeout_ms: int = 100) -> list:
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        for msgs in batch.values():
            self.messages.extend(msgs)
        return self.messages

    def close(self) -> None:
        self.consumer.close()


class Committed:
    """The consumer group's committed offsets, read by kafka-python."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        self.topic = topic
        parts = wait_until(lambda: self.consumer.partitions_for_topic(topic), 30, f"partitions of {topic}")
        self.tps = [TopicPartition(topic, p) for p in sorted(parts)]

    def now(self) -> dict:
        return {tp.partition: (self.consumer.committed(tp) or 0) for tp in self.tps}

    def close(self) -> None:
        self.consumer.close()


def origins(messages, schema_name: str) -> list:
    """(partition, offset) of the input each sink / dead-letter message came from, with its key."""
    schema = load_avsc(schema_name)
    out = []
    for m in messages:
        rec = decode_single_object(m.value, schema)
        out.append(((rec["origin"]["partition"], rec["origin"]["offset"]), m.key, rec))
    return out


def article(i: int, tag: str = "", pad: int = 0) -> bytes:
    """A small, distinct raw article (``pad`` adds a paragraph of that many characters)."""
    return json.dumps({"id": f"art-{tag}{i}", "publisher": "Test Wire", "title": f"Story {tag}{i}",
                       "published_at": "2026-11-27T10:00:00Z",
                       "body": f"Paragraph one of story {tag}{i}, about harbour works in town {i}.\n"
                               f"Paragraph two of story {tag}{i}: the council met on day {i}."
                               + (f"\n{'The harbour board spoke at length. ' * (pad // 35 + 1)}"[:pad + 1] if pad else "")
                       }).encode()
