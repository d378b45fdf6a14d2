"""Runner-specific option mistakes are caught in Config.from_options, before anything is submitted."""

from __future__ import annotations

import gc

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.errors import ConfigError
from pipeline.options import Config, KafkaIO, runner_kind

_BASE = ["--bootstrap-servers", "b:9092", "--input-topic", "in", "--output-topic", "out"]
_DATAFLOW = ["--runner", "DataflowRunner", "--project", "p", "--region", "europe-west1",
             "--temp_location", "gs://bucket/tmp", "--sdk_container_image", "europe-docker.pkg.dev/p/r/ws:1"]


def _config(*extra):
    return Config.from_options(PipelineOptions([*_BASE, *extra]))


@pytest.mark.parametrize("name, kind", [
    ("", "local"), ("DirectRunner", "local"), ("direct", "local"), ("FnApiRunner", "local"),
    ("DataflowRunner", "dataflow"), ("dataflow", "dataflow"), ("FlinkRunner", "flink"), ("SparkRunner", "spark"),
    ("apache_beam.runners.dask.dask_runner.DaskRunner", "dask"), ("PortableRunner", "portable"),
    ("PrismRunner", "prism"), ("SamzaRunner", "other"),
])
def test_runner_kind(name, kind):
    assert runner_kind(name) == kind


@pytest.mark.parametrize("args, message", [
    (["--bounded", "--streaming"], "drop one of the two"),
    (["--output-file", "/tmp/articles"], "add --bounded"),
    (["--runner", "DaskRunner", "--bounded"], "no keyed state or timers"),
    (["--runner", "apache_beam.runners.dask.dask_runner.DaskRunner", "--bounded"], "DaskRunner cannot"),
    (["--runner", "SparkRunner"], "batch only"),
    (["--direct_num_workers", "2"], "direct_running_mode=multi_processing"),
    (["--direct_running_mode", "multi_threading", "--direct_num_workers", "2"], "stale keyed state"),
    (["--direct_running_mode", "multi_threading", "--direct_num_workers", "0"], "use --direct_running_mode=multi"),
    (["--runner", "DataflowRunner", "--project", "p"], "--region, --temp_location"),
    ([*_DATAFLOW[:-2]], "--sdk_container_image"),
    (["--kafka-io", "xlang"], "expansion service"),
    (["--kafka-io", "xlang", "--runner", "DirectRunner"], "use --kafka-io=native"),
    (["--kafka-io", "xlang", *_DATAFLOW, "--bounded"], "--kafka-io=native for replays"),
    (["--kafka-io", "xlang", *_DATAFLOW, "--stop", "2026-11-28T00:00:00Z"], "no such bound"),
    (["--kafka-io", "xlang", *_DATAFLOW, "--start", "0:42"], "explicit offsets"),
    (["--kafka-io", "xlang", "--runner", "FlinkRunner"], "--checkpointing_interval"),
])
def test_runner_mistakes_are_named(args, message):
    with pytest.raises(ConfigError, match=message):
        _config(*args)


@pytest.mark.parametrize("args", [
    ["--bounded", "--output-file", "/tmp/articles"],
    ["--bounded", "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"],
    ["--bounded", "--direct_running_mode", "multi_threading", "--direct_num_workers", "1"],
    ["--runner", "SparkRunner", "--bounded"],
    [*_DATAFLOW],
    ["--runner", "DataflowRunner", "--project", "p", "--region", "r", "--temp_location", "gs://b/t",
     "--setup_file", "./setup.py"],
    ["--kafka-io", "xlang", *_DATAFLOW, "--expansion-service", "localhost:8097"],
    ["--kafka-io", "xlang", "--runner", "FlinkRunner", "--checkpointing_interval", "60000"],
    ["--kafka-io", "xlang", "--runner", "FlinkRunner", "--no-commit"],
    ["--kafka-io", "xlang", "--runner", "PortableRunner", "--start", "2026-11-28T00:00:00Z"],
])
def test_valid_runner_setups_pass(args):
    config = _config(*args)
    assert config.bounded == ("--bounded" in args)


def test_expansion_service_reaches_the_config():
    config = _config("--kafka-io", "xlang", *_DATAFLOW, "--expansion-service", "localhost:8097")
    assert config.kafka_io == KafkaIO.XLANG and config.expansion_service == "localhost:8097"


@pytest.mark.parametrize("args, workers", [
    ([], 1),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], 2),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=3"], 3),
    (["--runner=FlinkRunner", "--flink_master=localhost:8081", "--direct_num_workers=2"], 1),
])
def test_local_workers_counts_the_processes_the_local_runner_deals_work_to(args, workers):
    assert _config(*args).local_workers == workers


def test_run_options_build_each_view_once_and_share_its_values():
    import copy

    from apache_beam.options.pipeline_options import StandardOptions, TypeOptions

    from pipeline.run import _OptionViews

    o = _OptionViews(["--runner=FnApiRunner", "--bootstrap-servers=x:1", "--no_pipeline_type_check"])
    assert o.view_as(TypeOptions) is o.view_as(TypeOptions)  # built once
    assert o.view_as(TypeOptions).pipeline_type_check is False
    o.view_as(StandardOptions).streaming = True  # a value set through one view is every view's
    assert o.view_as(StandardOptions).streaming and o.get_all_options()["streaming"]
    # beam.Pipeline deep-copies its options: the copy's views are the copy's own
    c = copy.deepcopy(o)
    c.view_as(StandardOptions).runner = None
    assert c.view_as(StandardOptions).runner is None and o.view_as(StandardOptions).runner == "FnApiRunner"
    assert c.view_as(StandardOptions).streaming


def test_short_sampler_ticks_lower_the_default_period_for_the_run_only():
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    from pipeline import tuning

    before = statesampler.StateSampler("t", CounterFactory()).sampling_period_ms
    with tuning.short_sampler_ticks():
        assert statesampler.StateSampler("t", CounterFactory()).sampling_period_ms == tuning.SAMPLER_PERIOD_MS < before
    assert statesampler.StateSampler("t", CounterFactory()).sampling_period_ms == before
    # a signature it was not written for is left alone
    init = statesampler.StateSampler.__init__
    saved = init.__defaults__
    init.__defaults__ = (150,)
    try:
        with tuning.short_sampler_ticks():
            assert statesampler.StateSampler("t", CounterFactory()).sampling_period_ms == 150
    finally:
        init.__defaults__ = saved


class _Counting(beam.DoFn):
    SEEN = beam.transforms.userstate.ReadModifyWriteStateSpec("seen", beam.coders.VarIntCoder())

    def process(self, kv, seen=beam.DoFn.StateParam(SEEN)):
        n = (seen.read() or 0) + 1
        seen.write(n)
        yield kv[0], n


class _Holder:
    TIMER = beam.transforms.userstate.TimerSpec("t", beam.TimeDomain.WATERMARK)

    def fire(self, t=beam.DoFn.TimerParam(TIMER)):
        pass


def test_cached_dofn_specs_are_the_classes_and_leave_instance_methods_alone():
    from apache_beam.transforms import userstate
    from apache_beam.transforms.core import CallableWrapperDoFn

    from pipeline import tuning

    original = userstate.get_dofn_specs
    want = original(_Counting())
    with_method = CallableWrapperDoFn(lambda x: x)
    with_method.extra = _Holder().fire  # a bound method of the instance's own, with a timer parameter
    assert original(with_method)[1] and not original(CallableWrapperDoFn(lambda x: x))[1]
    with tuning.cached_dofn_specs():
        assert userstate.get_dofn_specs is not original
        first = userstate.get_dofn_specs(_Counting())
        assert first == want and userstate.get_dofn_specs(_Counting()) == want
        first[0].clear()  # each caller gets sets of its own
        assert userstate.get_dofn_specs(_Counting()) == want
        assert userstate.is_stateful_dofn(_Counting())
        assert not userstate.is_stateful_dofn(CallableWrapperDoFn(lambda x: x))
        assert userstate.get_dofn_specs(with_method) == original(with_method)  # not the class's entry
        # and a stateful pipeline built and run inside still keeps its state
        with TestPipeline(runner="FnApiRunner") as p:
            out = p | beam.Create([("a", 1), ("a", 2), ("b", 3)]) | beam.ParDo(_Counting())
            assert_that(out, equal_to([("a", 1), ("a", 2), ("b", 1)]))

        def local_dofn():  # as Beam makes some DoFn classes per bundle processor
            class Local(beam.DoFn):
                def process(self, x):
                    yield x
            return Local()

        kept = local_dofn()
        for _ in range(5):
            userstate.get_dofn_specs(local_dofn())
        userstate.get_dofn_specs(kept)
        gc.collect()
        # the cache keeps no class alive: only the one still in use is in it
        assert [c for c in tuning._SPECS if c.__name__ == "Local"] == [type(kept)]
    assert userstate.get_dofn_specs is original
