"""The local runner is picked deliberately and gives its worker processes a keyed-state cache."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.worker.sdk_worker_main import _get_state_cache_size_bytes
from google.protobuf import json_format

from pipeline.run import _local_provision_info, make_pipeline


def _worker_cache_bytes(argv):
    # what sdk_worker_main does with the provision info's options in a worker process
    info = _local_provision_info(PipelineOptions(argv)).provision_info
    opts = PipelineOptions.from_dictionary(json_format.MessageToDict(info.pipeline_options))
    return _get_state_cache_size_bytes(opts)


@pytest.mark.parametrize("argv, mb", [([], 100), (["--max_cache_memory_usage_mb=0"], 100),
                                      (["--max_cache_memory_usage_mb=256"], 256)])
def test_worker_processes_get_a_state_cache(argv, mb):
    assert _worker_cache_bytes(argv) == mb << 20


def test_local_runs_use_the_fn_api_runner_without_trying_prism():
    p, label = make_pipeline(PipelineOptions(["--direct_running_mode=multi_processing"]))
    assert type(p.runner).__name__ == "FnApiRunner"
    assert "Prism not attempted" in label
