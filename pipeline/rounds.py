"""Unbounded runs on the local runner, as a loop of bounded rounds.

Why rounds: Beam's FnApiRunner runs a stage only once the stages feeding it have finished (downstream
bundles are scheduled at the end-of-time watermark) and holds the watermark of a splittable DoFn that
defers work at the start of time. An unbounded Kafka read on that runner therefore never lets a record
reach the sink: the job reads forever and writes nothing. Streaming runners (Dataflow, Flink) run the
unbounded graph as it is; ``wirestream run`` without ``--bounded`` on the local runner runs rounds instead::

    round 1: the pipeline, bounded, from --start to the partition ends seen when the round starts
    then, until SIGTERM / Ctrl-C:
        wait until some input partition has records past the group's committed offsets
        round k: the pipeline, bounded, from the committed offsets to the ends seen at round start

Every round is an ordinary bounded run: sinks are flushed before the offsets they account for are
committed. So a crash (even SIGKILL) loses nothing and re-delivers at most the round that was in flight,
with the same keys. A round that fails (broker unreachable, sink rejecting records) is logged as an error
and retried with backoff; its offsets stay uncommitted, so the retry re-reads the same records.

Memory between rounds: the exact-dedup memory is carried by warm-starting every round after the first from
the sink topic (:mod:`pipeline.stages.warmstart`; the caller's ``run_round`` keeps the seeds and its place
in the sink between rounds, :class:`~pipeline.stages.warmstart.SinkSeeds`, so a round reads only what the
previous ones wrote); round 1 warm-starts when ``--dedup-warm-start`` is set.
Near-duplicate and boilerplate memories start afresh in each round on this runner (on a streaming runner
they live as long as the job).

Process memory between rounds: every round starts new threads (the runner's workers, the Kafka clients'),
and glibc gives threads their own malloc arenas, up to eight per core. Each arena keeps the high-water mark
of the rounds that used it, so a long loop's RSS climbed by ~2 MB a round while the memory in use stayed
flat (mallinfo2 after 24 rounds: 39 -> 40 MB in use, 13 -> 122 MB free but held). :func:`run_rounds`
therefore caps the arenas at two (``mallopt(M_ARENA_MAX)``, unless ``MALLOC_ARENA_MAX`` is set) before the
first round and hands free pages back (``malloc_trim``) after each round (:func:`release_memory`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import logging
import os
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence

from pipeline.errors import BrokerError, ConfigError
from pipeline.kafkaio import StartMode, StartSpec, kafka_client

__all__ = ["RoundPolicy", "has_backlog", "run_rounds", "limit_malloc_arenas", "release_memory"]

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RoundPolicy:
    """Timing of the round loop.

    Args:
      idle_poll_seconds: how long one backlog check waits for a record before checking again.
      retry_initial_seconds / retry_max_seconds: backoff after a failed round (doubles up to the max).
      max_rounds: stop after this many rounds (tests); None runs until stopped.
    """

    idle_poll_seconds: float = 1.0
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 30.0
    max_rounds: Optional[int] = None


def has_backlog(consumer_config: Mapping[str, Any], topics: Sequence[str], *, timeout_s: float) -> bool:
    """True when some partition of ``topics`` has a record at or past the group's committed offset.

    Learnt by fetching (a record, or an end-of-partition event per partition), which every Kafka-protocol
    broker answers correctly; ListOffsets is not used (see :mod:`pipeline.kafkaio`).
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    conf = dict(consumer_config)
    conf.update({"enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
                 "log.connection.close": False})
    consumer = kafka_client(Consumer, conf, "consumer")
    try:
        tps = []
        for topic in topics:
            md = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            if md is None or md.error is not None or not md.partitions:
                raise BrokerError(f"input topic {topic!r} has no partitions in the metadata "
                                  f"({md.error if md is not None else 'not found'})")
            tps += [TopicPartition(topic, p) for p in sorted(md.partitions)]
        committed = consumer.committed(tps, timeout=timeout_s)
        consumer.assign([TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                         for tp in committed])
        pending = {(tp.topic, tp.partition) for tp in tps}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(min(0.5, max(0.01, deadline - time.monotonic())))
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                return True
            if err.code() == KafkaError._PARTITION_EOF:
                pending.discard((msg.topic(), msg.partition()))
            elif err.fatal():
                raise BrokerError(f"checking {msg.topic()}[{msg.partition()}] for new records: {err}")
        return False
    finally:
        consumer.close()


_M_ARENA_MAX = -8  # mallopt parameter number (malloc.h)
_GLIBC: list = []  # [libc or None], resolved once


def _glibc():
    """The C library when it is glibc (mallopt/malloc_trim), else None (musl, macOS, Windows)."""
    if not _GLIBC:
        libc = None
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(lib, "gnu_get_libc_version") and hasattr(lib, "malloc_trim"):
                    lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                    lib.malloc_trim.argtypes = [ctypes.c_size_t]
                    libc = lib
            except OSError:
                libc = None
        _GLIBC.append(libc)
    return _GLIBC[0]


def limit_malloc_arenas(max_arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process; True if the cap was set.

    Takes effect for arenas created afterwards, so call it before the first round's threads exist.
    Leaves the process alone when ``MALLOC_ARENA_MAX`` is set (the operator chose) or the C library is not
    glibc. Two arenas cost nothing measurable here: the stages hold the GIL, and the native threads
    (librdkafka, spaCy's BLAS calls) allocate little.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, int(max_arenas)))


def release_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``); a no-op elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _merge(total: dict, counters: Mapping[str, int]) -> None:
    for k, v in counters.items():
        total[k] = total.get(k, 0) + v


def run_rounds(config, run_round: Callable[[Any], Mapping[str, int]], *,
               policy: RoundPolicy = RoundPolicy(), sleep: Callable[[float], None] = time.sleep) -> dict:
    """Run ``config`` (an unbounded :class:`~pipeline.options.Config`) as bounded rounds until interrupted.

    Args:
      config: the job's configuration (``bounded`` False).
      run_round: runs one bounded pipeline for the Config it is given and returns its counters.
      policy: timing (:class:`RoundPolicy`).
      sleep: how to wait (tests pass a fake).

    Returns the counters summed over the rounds that completed (on ``policy.max_rounds`` or StopIteration);
    KeyboardInterrupt (Ctrl-C, SIGTERM) propagates: the round in flight is abandoned uncommitted.
    """
    if not config.commit_offsets:
        raise ConfigError("--no-commit needs --bounded on the local runner: unbounded local runs resume each "
                          "round from the committed offsets")
    if limit_malloc_arenas():  # before any thread of the loop (Kafka clients, runner workers) exists
        _LOGGER.debug("malloc arenas capped at 2 for the round loop")
    first_start = config.start
    if first_start.mode == StartMode.LATEST:
        from pipeline.kafkaio import _probe_high_watermarks  # the one fetch-based end probe
        from confluent_kafka import Consumer, TopicPartition

        probe = kafka_client(Consumer, dict(config.consumer_config, **{"enable.auto.commit": False}),
                             "consumer")
        try:
            tps = [TopicPartition(t, p) for t in config.input_topics
                   for p in sorted(probe.list_topics(t, timeout=30).topics[t].partitions)]
        finally:
            probe.close()
        ends = _probe_high_watermarks(config.consumer_config, tps, 30.0)
        first_start = StartSpec(StartMode.OFFSETS, offsets=tuple((t, p, o) for (t, p), o in sorted(ends.items())))
    total: dict = {}
    rounds = 0
    backoff = policy.retry_initial_seconds
    start = first_start
    warm = config.dedup_warm_start
    while policy.max_rounds is None or rounds < policy.max_rounds:
        if rounds > 0:
            try:
                if not has_backlog(config.consumer_config, config.input_topics, timeout_s=policy.idle_poll_seconds):
                    continue
            except Exception as exc:  # noqa: BLE001 - broker away: wait and look again, never exit
                _LOGGER.warning("checking for new input failed (%s: %s); retrying", type(exc).__name__, exc)
                sleep(min(backoff, policy.retry_max_seconds))
                backoff = min(backoff * 2, policy.retry_max_seconds)
                continue
        round_config = dataclasses.replace(config, bounded=True, streaming=False, start=start,
                                           dedup_warm_start=warm)
        began = time.monotonic()
        _LOGGER.info("round %d starting (%s)", rounds + 1, start.mode.value)
        try:
            counters = run_round(round_config)
        except (ConfigError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the round's offsets stay uncommitted; retry it
            release_memory()
            _LOGGER.error("round %d failed after %.1fs: %s: %s -- nothing of it is committed; retrying in %.0fs",
                          rounds + 1, time.monotonic() - began, type(exc).__name__, _first_lines(exc),
                          min(backoff, policy.retry_max_seconds))
            sleep(min(backoff, policy.retry_max_seconds))
            backoff = min(backoff * 2, policy.retry_max_seconds)
            rounds += 1
            continue
        release_memory()  # the round's threads are gone: give their peak back before waiting for input
        backoff = policy.retry_initial_seconds
        rounds += 1
        _merge(total, counters)
        balance = counters.get("written", 0) + counters.get("duplicates", 0) + counters.get("dead_lettered", 0)
        if counters.get("read", 0) != balance:
            _LOGGER.error("round %d: accounts do not balance: read=%d != written + duplicates + dead_lettered = %d",
                          rounds, counters.get("read", 0), balance)
        _LOGGER.info("round %d: read=%d written=%d duplicates=%d dead_lettered=%d in %.1fs", rounds,
                     counters.get("read", 0), counters.get("written", 0), counters.get("duplicates", 0),
                     counters.get("dead_lettered", 0), time.monotonic() - began)
        # later rounds resume from the committed offsets and remember what earlier rounds wrote
        start = StartSpec(StartMode.COMMITTED)
        warm = True
    return total


def _first_lines(exc: BaseException, n: int = 6) -> str:
    text = str(exc).strip().splitlines()
    return " | ".join(text[:n]) + (f" | … ({len(text) - n} more lines)" if len(text) > n else "")
