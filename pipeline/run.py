"""Running the job: pick the runner deliberately, run, and account for every input.

Local runs use Beam's FnApiRunner directly (what the DirectRunner falls back to) instead of letting the
DirectRunner try the Prism runner first: Prism is a download that may or may not succeed, and the choice
should not depend on the network. ``--runner`` picks any other runner (Dataflow, Flink, Spark, Dask).
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from pipeline.builder import build_pipeline
from pipeline.options import Config
from pipeline.stages.common import METRICS_NAMESPACE

__all__ = ["RunSummary", "make_pipeline", "run_job"]

_LOGGER = logging.getLogger(__name__)
_LOCAL = ("", "direct", "directrunner", "fnapirunner")


@dataclass
class RunSummary:
    runner: str
    read: int
    written: int
    duplicates: int
    dead_lettered: int
    seconds: float
    counters: dict

    @property
    def balanced(self) -> bool:
        return self.read == self.written + self.duplicates + self.dead_lettered

    def line(self) -> str:
        verdict = "ok" if self.balanced else "MISMATCH"
        return (f"wirestream summary: runner={self.runner} read={self.read} written={self.written} "
                f"duplicates={self.duplicates} dead_lettered={self.dead_lettered} "
                f"(read = written + duplicates + dead_lettered: {verdict}) in {self.seconds:.1f}s")


def _runner_for(options: PipelineOptions):
    std = options.view_as(StandardOptions)
    name = (std.runner or "") if isinstance(std.runner, str) else ""
    if name.lower() in _LOCAL:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        std.runner = None
        return FnApiRunner(), "FnApiRunner (local; Prism not attempted)"
    return None, name


def make_pipeline(options: PipelineOptions) -> tuple[beam.Pipeline, str]:
    runner, label = _runner_for(options)
    options.view_as(SetupOptions).save_main_session = False
    return beam.Pipeline(runner=runner, options=options), label


def _counter(result, name: str) -> int:
    res = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))
    total = 0
    for c in res["counters"]:
        total += c.committed if c.committed is not None else c.attempted
    return total


def _all_counters(result) -> dict:
    out: dict = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + (c.committed if c.committed is not None
                                                                    else c.attempted)
    return out


def run_job(argv: Optional[Sequence[str]] = None, *, options: Optional[PipelineOptions] = None) -> RunSummary:
    """Build and run the pipeline from command-line arguments. Returns the summary (bounded runs)."""
    options = options or PipelineOptions(list(argv or []))
    config = Config.from_options(options)
    if config.streaming and not config.bounded:
        options.view_as(StandardOptions).streaming = True
    p, runner_label = make_pipeline(options)
    build_pipeline(p, config)
    _LOGGER.info("starting wirestream on %s: %s -> %s (dead letters -> %s), %s", runner_label,
                 ",".join(config.input_topics), config.output_topic, config.dead_letter_topic,
                 "bounded replay" if config.bounded else "unbounded (stop with Ctrl-C or SIGTERM)")
    started = time.monotonic()
    previous = signal.getsignal(signal.SIGTERM)

    def _terminate(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        previous = None
    try:
        result = p.run()
        result.wait_until_finish()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    counters = _all_counters(result)
    return RunSummary(
        runner=runner_label,
        read=counters.get("read", 0),
        written=counters.get("written", 0),
        duplicates=counters.get("duplicates", 0),
        dead_lettered=counters.get("dead_lettered", 0),
        seconds=time.monotonic() - started,
        counters=counters,
    )
