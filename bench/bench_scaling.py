"""Scaling on one machine: the full pipeline, bounded, with 1 and 2 SDK worker processes.

    python bench/bench_scaling.py [--articles 400] [--partitions 4] [--runs 2] [--workers 1,2]

Starts the embedded broker, loads the same N real articles (wire_articles.jsonl, then reuters21578.jsonl,
from the shared corpus) into a topic with ``--partitions`` partitions, and runs the whole pipeline (parse,
exact dedup, boilerplate, near-dup, NLP, Avro, Kafka sinks, offset commits) as a bounded replay with
``--direct_running_mode=multi_processing --direct_num_workers=W`` for each W. Both settings run the same
harness (one runner process + W worker processes), so the ratio measures the workers and nothing else.

Runs the settings interleaved (1, 2, 1, 2, ...). Prints, per W: the median articles/s over ``--runs`` runs (wall time of the job, worker start and model
load included), the runs themselves, the peak RSS and CPU-seconds of the runner process and of each worker
process (psutil, sampled every 0.2 s over the process tree), and where the wall time went: the runner
executes one bundle at a time, a stateful (keyed) stage on one worker only, any other stage split over the
W workers, so the job's wall time is the sum of its bundles' wall times, split here into "one-worker"
(stateful stages and the stateless steps fused into them: in a bounded batch run only the offset commits,
since exact dedup, the boilerplate memory and the near-dup band shards run grouped there; in a streaming
graph those too) and "split" (stateless stages: read, parse, the grouped steps, NLP, encode, write). The runner-side figures come from wrapping
``FnApiRunner._execute_bundle`` (a private Beam method; the breakdown is left out if it moves). Then the
ratio W=2 / W=1 against the floor (1.7x), and the ratio the stage split predicts from W=1 alone
(one-worker time + split time / 2): if the measured ratio is below the predicted one, the machine was busy.

Two figures about the machine rather than the pipeline, since two cores here do not make 2x: before each
pair, the *machine ceiling* (two processes running the pipeline's spaCy model over 40 of the articles side by
side against one alone, the alone time bracketing the side-by-side run; ``--no-ceiling`` skips it), and per
pair how many more CPU-seconds the 2-worker run's workers needed than the 1-worker run's for the same work.
The floor's verdict is on the measured ratio alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.broker import EmbeddedBroker  # noqa: E402
from pipeline.corpus import read_jsonl, shared_dir  # noqa: E402

_FIELDS = ("id", "publisher", "url", "title", "published_at", "body", "html")
FLOOR = 1.7


def load_articles(n: int) -> list[bytes]:
    shared = shared_dir()
    if shared is None:
        sys.exit("bench_scaling: the shared corpus (../shared or $WIRESTREAM_SHARED) is not there")
    out, seen = [], set()
    for name in ("wire_articles.jsonl", "reuters21578.jsonl"):
        for a in read_jsonl(shared / "corpus" / name):
            if a.get("body") and a["id"] not in seen:
                seen.add(a["id"])
                out.append(json.dumps({k: a.get(k) for k in _FIELDS}).encode())
                if len(out) == n:
                    return out
    return out


def produce(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> None:
    from confluent_kafka import Producer

    from pipeline.admin import TopicSpec, ensure_topics

    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(topic, partitions)])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i, v in enumerate(values):
        producer.produce(topic, value=v, key=str(i).encode())
    if producer.flush(60):
        raise RuntimeError("could not load the articles into the broker")


class _Wrapping:
    """A context manager that wraps one method of a Beam-internal class while it is entered, and leaves
    things as they are where the class or method is not there (internals move between Beam versions)."""

    _orig = None

    def _wrap(self, cls, name: str, make) -> None:
        orig = getattr(cls, name, None) if cls is not None else None
        if orig is None:
            return
        self._orig = (cls, name, orig)
        setattr(cls, name, make(orig))

    def __exit__(self, *exc):
        if self._orig:
            cls, name, orig = self._orig
            setattr(cls, name, orig)
        return False


class StageClock(_Wrapping):
    """Wall time of each bundle the FnApiRunner executes, as one-worker (stateful stage) or split."""

    def __init__(self):
        self.bundles: list[tuple[str, bool, float]] = []  # (first step label, stateful, seconds)

    def __enter__(self):
        try:
            from apache_beam.runners.portability.fn_api_runner import fn_runner
        except ImportError:
            return self
        self._wrap(fn_runner.FnApiRunner, "_execute_bundle", self._timed)
        return self

    def _timed(self, orig):
        def timed(runner, ctx, bcm, bundle_input):
            started = time.monotonic()
            try:
                return orig(runner, ctx, bcm, bundle_input)
            finally:
                try:
                    stateful = bool(bcm.stage.is_stateful())
                    label = _stage_label(bcm.stage)
                except Exception:  # noqa: BLE001 - a diagnostic only
                    stateful, label = False, "?"
                self.bundles.append((label, stateful, time.monotonic() - started))

        return timed

    def summary(self) -> dict:
        one = sum(s for _, st, s in self.bundles if st)
        split = sum(s for _, st, s in self.bundles if not st)
        per: dict[str, list] = {}
        for label, st, s in self.bundles:
            e = per.setdefault(label, [st, 0, 0.0])
            e[1] += 1
            e[2] += s
        return {"one_worker_s": one, "split_s": split, "bundles": len(self.bundles), "each": list(self.bundles),
                "stages": sorted(((lab, st, n, s) for lab, (st, n, s) in per.items()), key=lambda x: -x[3])}


_STEPS = ("ReadFromKafka", "ParseArticles", "ExactDedup", "StripBoilerplate", "NearDuplicates", "SpreadForNlp",
          "ExtractFacts", "EncodeArticles", "WriteArticles", "EncodeDeadLetters", "CommitOffsets",
          "CountDuplicates", "WriteDuplicates")


def _stage_label(stage) -> str:
    """The wirestream steps a fused stage holds, e.g. ``ExactDedup+StripBoilerplate+NearDuplicates/Fingerprint``."""
    names = []
    for t in stage.transforms:
        name = t.unique_name
        top = name.split("/")[0]
        if top not in _STEPS:
            continue
        if top == "NearDuplicates":
            sub = name.split("/")[1] if "/" in name else ""
            if sub not in ("Fingerprint", "CandidatesInBand", "CollectCandidates", "VerifyAtHome", "AssembleVerdict"):
                continue  # the joins' Flatten reads and writes: named by the step they feed
            top = f"NearDuplicates/{sub}"
        if top not in names:
            names.append(top)
    return "+".join(names) or stage.name[:60]


class StateCounter(_Wrapping):
    """Keyed-state requests the runner serves over the Fn API state channel, per step and state cell.

    Every such request is a gRPC round trip from a worker process to the runner (worker processes have
    no state cache), so their count is a deterministic proxy for the serial cost of the stateful stages.
    Wraps ``GrpcStateServicer.State`` (a Beam internal; the counts are left out if it moves)."""

    def __init__(self):
        self.counts: dict[tuple[str, str, str], int] = {}
        self._written: set = set()  # (bundle, state key) of every cell written: one blocking commit each
        self._lock = threading.Lock()

    def __enter__(self):
        try:
            from apache_beam.runners.portability.fn_api_runner import worker_handlers
        except ImportError:
            return self
        self._wrap(getattr(worker_handlers, "GrpcStateServicer", None), "State", self._counted)
        return self

    def _counted(self, orig):
        def counted(servicer, request_stream, context=None):
            def requests():
                for request in request_stream:
                    self._count(request)
                    yield request
            return orig(servicer, requests(), context)

        return counted

    def _count(self, request) -> None:
        kind = request.WhichOneof("request")
        key = request.state_key
        which = key.WhichOneof("type")
        if which == "bag_user_state":
            step, cell = _short_step(key.bag_user_state.transform_id), key.bag_user_state.user_state_id
        else:
            step, cell = which or "?", ""
        with self._lock:
            self.counts[(step, cell, kind)] = self.counts.get((step, cell, kind), 0) + 1
            if kind != "get":
                slot = (request.instruction_id, key.SerializeToString())
                if slot not in self._written:
                    self._written.add(slot)
                    self.counts[(step, cell, "commit")] = self.counts.get((step, cell, "commit"), 0) + 1

    def summary(self) -> dict:
        per_step: dict[str, dict[str, int]] = {}
        for (step, cell, kind), n in self.counts.items():
            d = per_step.setdefault(step, {})
            d[kind] = d.get(kind, 0) + n
            d[f"{cell}.{kind}"] = d.get(f"{cell}.{kind}", 0) + n
        total = {k: sum(n for (_, _, kind), n in self.counts.items() if kind == k)
                 for k in ("get", "append", "clear", "commit")}
        return {"total": total, "per_step": per_step}


def _short_step(transform_id: str) -> str:
    """``ref_AppliedPTransform_NearDuplicates-CandidatesInBand_23`` -> ``NearDuplicates/CandidatesInBand``."""
    name = transform_id.removeprefix("ref_AppliedPTransform_")
    name = re.sub(r"_\d+$", "", name)
    return name.replace("-", "/")


def format_state(state: dict) -> str:
    t = state["total"]
    lines = [f"    state requests: {t['get']} get, {t['append']} append, {t['clear']} clear; blocking round trips "
             f"{t['get'] + t['commit']} ({t['get']} gets + {t['commit']} cells committed)"]
    for step, d in sorted(state["per_step"].items()):
        kinds = ", ".join(f"{k} {d[k]}" for k in ("get", "append", "clear", "commit") if k in d)
        cells = ", ".join(f"{k} {n}" for k, n in sorted(d.items()) if "." in k)
        lines.append(f"      {step}: {kinds} ({cells})")
    return "\n".join(lines)


class PeakRss(threading.Thread):
    """Peak RSS per process of this process's tree, sampled until stopped."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self._root = psutil.Process()
        self._interval = interval
        self._halt = threading.Event()
        self.peaks: dict[int, tuple[str, int]] = {}
        self.cpu: dict[int, float] = {}  # last seen user+system CPU seconds per process
        t0 = self._root.cpu_times()
        self._runner_cpu0 = t0.user + t0.system  # the bench process is the runner: count this job only

    def run(self):
        while not self._halt.is_set():
            procs = [self._root] + self._root.children(recursive=True)
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    cmd = " ".join(proc.cmdline()[-2:]) if proc.pid != self._root.pid else "runner"
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                    continue
                _, old = self.peaks.get(proc.pid, (cmd, 0))
                self.peaks[proc.pid] = (cmd, max(old, rss))
            self._halt.wait(self._interval)

    def stop(self):
        self._halt.set()
        self.join()

    def summary(self) -> dict:
        runner = self.peaks.get(self._root.pid, ("runner", 0))[1]
        # the python worker processes (not the /bin/sh wrappers the runner starts them with)
        pids = [pid for pid, (cmd, rss) in self.peaks.items() if "sdk_worker_main" in cmd and rss > 50 * 2**20]
        return {"runner_mb": runner / 2**20, "workers_mb": sorted(self.peaks[p][1] / 2**20 for p in pids),
                "worker_cpu_s": sum(self.cpu.get(p, 0.0) for p in pids),
                "workers_cpu_s": sorted(self.cpu.get(p, 0.0) for p in pids),
                "runner_cpu_s": self.cpu.get(self._root.pid, 0.0) - self._runner_cpu0}


def run_once(bootstrap: str, topic: str, workers: int, extra: list[str]) -> tuple[float, object, dict, dict]:
    from pipeline.run import run_job

    tag = uuid.uuid4().hex[:8]
    args = ["--bootstrap-servers", bootstrap, "--input-topic", topic, "--output-topic", f"bench-out-{tag}",
            "--dead-letter-topic", f"bench-dead-{tag}", "--group-id", f"bench-{tag}", "--bounded",
            "--start", "earliest", "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}",
            *extra]
    from pipeline.admin import TopicSpec, ensure_topics

    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(f"bench-out-{tag}", 4),
                                                     TopicSpec(f"bench-dead-{tag}", 1)])
    sampler = PeakRss()
    sampler.start()
    started = time.monotonic()
    try:
        with StageClock() as clock, StateCounter() as state:
            summary = run_job(args)
    finally:
        sampler.stop()
    seconds = time.monotonic() - started
    if not summary.balanced:
        raise RuntimeError(f"accounts do not balance: {summary.line()}")
    return seconds, summary, sampler.summary(), dict(clock.summary(), state=state.summary())


def _spacy_worker(texts: list, barrier, out) -> None:
    """Child process: load the model (untimed), wait for the others, then time ``nlp.pipe`` over ``texts``."""
    from pipeline.nlp.model import shared_model

    nlp = shared_model(None)
    for _ in nlp.pipe(texts[:2]):  # first-call costs out of the timing
        pass
    barrier.wait()
    t0 = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=16):
        pass
    out.put(time.perf_counter() - t0)


def machine_ceiling(texts: list) -> float:
    """The ratio this machine allows: two processes running the pipeline's spaCy model over ``texts`` at once
    against one alone, 2 * (one process's time alone / the slower one's time side by side), the time alone
    being the mean of a run before and a run after. The pipeline
    has nothing to do with it: it is what two cores do for the CPU-bound part of the job (shared caches,
    frequency, neighbours on the host), measured next to each pair of runs."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")

    def timed(n: int) -> float:
        barrier, out = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_spacy_worker, args=(texts, barrier, out)) for _ in range(n)]
        for pr in procs:
            pr.start()
        times = [out.get(timeout=600) for _ in procs]
        for pr in procs:
            pr.join(60)
        return max(times)

    # alone, side by side, alone again: the machine's speed drifts over seconds, the mean of the two brackets it
    before = timed(1)
    together = timed(2)
    return 2 * (before + timed(1)) / 2 / together


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=400, help="number of real articles (default 400)")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of the input topic (default 4)")
    ap.add_argument("--runs", type=int, default=2, help="runs per worker count, interleaved; the median is reported")
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    ap.add_argument("--state", action="store_true",
                    help="print the keyed-state requests of each run per step and state cell")
    ap.add_argument("--bundles", action="store_true", help="print the wall time of every bundle of each run")
    ap.add_argument("--extra", default="", help="extra wirestream run flags, space-separated (e.g. --no-nlp)")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                    help="skip measuring the machine's own two-process ceiling next to each pair of runs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("apache_beam", "root", "__main__"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    values = load_articles(args.articles)
    counts = [int(w) for w in args.workers.split(",")]
    extra = args.extra.split()
    print(f"bench_scaling: {len(values)} articles, {args.partitions} partitions, full pipeline "
          f"{' '.join(extra) or '(all stages on)'}, {os.cpu_count()} cores, {args.runs} run(s) per setting")
    rates: dict[int, float] = {}
    clocks: dict[int, list[dict]] = {}
    with EmbeddedBroker() as broker:
        topic = f"bench-in-{uuid.uuid4().hex[:8]}"
        produce(broker.bootstrap_servers, topic, values, args.partitions)
        # Interleaved (1, 2, 1, 2, ...): load from other jobs on a shared machine drifts over minutes, and
        # interleaving spreads it over both settings instead of loading one of them.
        per_w: dict[int, list[float]] = {w: [] for w in counts}
        cpu_w: dict[int, list[float]] = {w: [] for w in counts}
        ceilings: list[float] = []
        texts = [json.loads(v)["body"] for v in values[:40]]
        for _ in range(args.runs):
            if args.ceiling and 2 in counts:
                ceilings.append(machine_ceiling(texts))
                print(f"  machine ceiling: {ceilings[-1]:.2f}x (two processes running the spaCy model on "
                      f"{len(texts)} of the articles side by side vs one alone)", flush=True)
            for w in counts:
                seconds, summary, rss, clock = run_once(broker.bootstrap_servers, topic, w, extra)
                clocks.setdefault(w, []).append(clock)
                per_w[w].append(len(values) / seconds)
                cpu_w[w].append(rss["worker_cpu_s"])
                load = os.getloadavg()[0]
                per_cpu = len(values) / rss["worker_cpu_s"] if rss["worker_cpu_s"] else float("nan")
                print(f"  workers={w}: {len(values) / seconds:6.1f} articles/s ({seconds:.1f}s; read={summary.read} "
                      f"written={summary.written} duplicates={summary.duplicates} "
                      f"dead_lettered={summary.dead_lettered}); peak RSS runner {rss['runner_mb']:.0f} MB, "
                      f"workers {', '.join(f'{m:.0f}' for m in rss['workers_mb'])} MB; CPU runner "
                      f"{rss['runner_cpu_s']:.1f}s, workers {' + '.join(f'{c:.1f}' for c in rss['workers_cpu_s'])}"
                      f" = {rss['worker_cpu_s']:.1f}s ({per_cpu:.1f} articles per worker CPU-second); "
                      f"load average {load:.1f} on {os.cpu_count()} cores"
                      f"{' (machine busy: wall-clock figures are not a scaling measurement)' if load > os.cpu_count() + 0.5 else ''}",
                      flush=True)
                if clock["bundles"]:
                    print(f"    bundles: {clock['one_worker_s']:.1f}s in stateful stages (one worker), "
                          f"{clock['split_s']:.1f}s in stages split over {w} worker(s), {clock['bundles']} bundles; "
                          + "; ".join(f"{lab} {'[1w]' if st else '[split]'} {n}x {sec:.1f}s"
                                      for lab, st, n, sec in clock["stages"] if sec >= 0.5), flush=True)
                if args.bundles:
                    print("    each bundle: " + "; ".join(f"{lab.split('+')[-1]}{'[1w]' if st else ''} {sec:.2f}s"
                                                      for lab, st, sec in clock["each"]), flush=True)
                if args.state and clock["state"]["per_step"]:
                    print(format_state(clock["state"]), flush=True)
        for w in counts:
            rates[w] = statistics.median(per_w[w])
            print(f"workers={w}: median {rates[w]:.1f} articles/s over {len(per_w[w])} run(s)")
        if 1 in per_w and 2 in per_w:
            pairs = [b / a for a, b in zip(per_w[1], per_w[2])]
            print("ratio of each interleaved pair (2 workers / 1 worker): "
                  + ", ".join(f"{r:.2f}x" for r in pairs))
            # The same work, so the same CPU-seconds, unless the cores ran slower side by side (the host's other
            # load, shared caches): how much more the 2-worker run's workers needed, per pair.
            print("workers' CPU-seconds, 2 workers vs 1, per pair (same work; more = slower cores side by side): "
                  + ", ".join(f"{b / a - 1:+.0%}" for a, b in zip(cpu_w[1], cpu_w[2]) if a))
            if ceilings:
                print("machine ceiling next to each pair: " + ", ".join(f"{c:.2f}x" for c in ceilings)
                      + f"; pipeline at {statistics.median(r / c for r, c in zip(pairs, ceilings)):.0%} of it "
                      "(median of the pairs)")
    if 1 in rates and 2 in rates:
        ratio = rates[2] / rates[1]
        verdict = "ok" if ratio >= FLOOR else "BELOW FLOOR"
        print(f"ratio 2 workers / 1 worker: {ratio:.2f}x (floor {FLOOR}x: {verdict})")
        one = [c for c in clocks.get(1, []) if c["bundles"]]
        if one:
            serial = statistics.median(c["one_worker_s"] for c in one)
            split = statistics.median(c["split_s"] for c in one)
            best = (serial + split) / (serial + split / 2) if serial + split else float("nan")
            print(f"Amdahl estimate from workers=1: {serial:.1f}s one-worker + {split:.1f}s splittable -> "
                  f"{best:.2f}x with 2 workers if the split part halves exactly (the stateful stages do not "
                  "split on this runner)")
        return 0 if ratio >= FLOOR else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
