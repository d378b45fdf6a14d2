"""Memory of the local round loop (pipeline/rounds.py): the rounds' threads share two malloc arenas.

Every local round starts new threads (runner workers, Kafka clients); with glibc's default of eight arenas
per core each arena kept the high-water mark of the rounds that used it, and the soak's RSS climbed ~2 MB a
round while the memory in use stayed flat. The check runs in a fresh interpreter (arenas are per process
and cannot be merged once created), with fake rounds whose threads allocate and free, and counts the
process's arenas (malloc_info) afterwards. The control run, without the cap, shows that the check can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pipeline.rounds as rounds

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(rounds._glibc() is None, reason="malloc arenas are a glibc matter")

_SCRIPT = textwrap.dedent("""
    import ctypes, json, os, sys, tempfile, threading
    import pipeline.rounds as rounds
    from pipeline.kafkaio import StartMode, StartSpec
    from pipeline.options import Config

    if sys.argv[1] == "uncapped":
        rounds.limit_malloc_arenas = lambda *a, **k: False
    trims = []
    release = rounds.release_memory
    rounds.release_memory = lambda: trims.append(1) or release()
    rounds.has_backlog = lambda *a, **k: True

    def arenas():
        libc = ctypes.CDLL("libc.so.6")
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        fd, path = tempfile.mkstemp()
        os.close(fd)
        f = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, f)
        libc.fclose(f)
        with open(path) as fh:
            text = fh.read()
        os.unlink(path)
        return text.count("<heap nr=")

    def work(together):  # what a round's worker thread does to the C heap: allocate, keep a while, free
        held = [bytearray(4096 + 64 * i) for i in range(300)]
        together.wait()  # the round's threads are alive at once, as a runner's workers are
        del held

    def one_round(cfg):
        together = threading.Barrier(12)
        threads = [threading.Thread(target=work, args=(together,)) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"read": 1, "written": 1}

    cfg = Config(bootstrap_servers="127.0.0.1:1", input_topics=("in",), output_topic="out",
                 dead_letter_topic="dead", start=StartSpec(StartMode.EARLIEST))
    before = arenas()  # the imports' threads may have made some already
    rounds.run_rounds(cfg, one_round, policy=rounds.RoundPolicy(max_rounds=6), sleep=lambda s: None)
    print(json.dumps({"before": before, "arenas": arenas(), "trims": len(trims)}))
""")


def _run(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_round_threads_share_two_arenas_and_each_round_is_trimmed():
    capped = _run("capped")
    assert capped["arenas"] <= max(2, capped["before"]), capped  # no arena beyond the cap was made
    assert capped["trims"] == 6, capped  # one malloc_trim after every round
    control = _run("uncapped")
    assert control["arenas"] > max(2, control["before"]), control  # without the cap the rounds make more


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert rounds.limit_malloc_arenas() is False
