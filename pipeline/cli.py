"""``wirestream`` command line: broker, produce, run, consume, demo.

Every command has ``--help``; a wrong argument or a configuration mistake prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from pipeline import __version__
from pipeline.errors import WirestreamError

__all__ = ["main"]

_LOGGER = logging.getLogger("wirestream")


def _json_default(obj):
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, bytes):
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(obj).decode("ascii")}
    raise TypeError(type(obj).__name__)


def _sample_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("pipeline").joinpath("data/sample_articles.jsonl")))


# ------------------------------------------------------------------------------------------ commands


def cmd_broker(args) -> int:
    from pipeline.broker import EmbeddedBroker

    broker = EmbeddedBroker(args.port, host=args.host)
    broker.start()
    print(f"embedded Kafka-protocol broker (tansu, in-memory) on {broker.bootstrap_servers}; Ctrl-C stops it",
          flush=True)
    try:
        broker.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def produce_file(bootstrap: str, topic: str, path: Path, *, partitions: int = 1, kafka_config=None,
                 extra_values: Sequence[bytes] = ()) -> int:
    """Produce one message per non-empty line of a JSON-lines file (bytes as they are). Returns the count."""
    from confluent_kafka import Producer

    from pipeline.admin import TopicSpec, ensure_topics
    from pipeline.kafkaio import kafka_client

    ensure_topics({"bootstrap.servers": bootstrap, **(kafka_config or {})}, [TopicSpec(topic, partitions)])
    producer = kafka_client(Producer, {"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                       **(kafka_config or {})}, "producer")
    errors: list = []
    count = 0

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    def send(value: bytes, key: Optional[bytes]):
        producer.produce(topic, value=value, key=key, on_delivery=delivered)
        producer.poll(0)

    with open(path, "rb") as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            key = None
            try:
                obj = json.loads(line)
                if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                    key = obj["id"].encode()
            except ValueError:
                pass  # sent as is: the pipeline dead-letters what it cannot read
            send(line, key)
            count += 1
    for value in extra_values:
        send(value, None)
        count += 1
    left = producer.flush(60)
    if errors or left:
        raise WirestreamError(f"{len(errors)} message(s) not delivered to {topic} ({errors[:1]}), {left} queued")
    return count


def cmd_produce(args) -> int:
    from pipeline.options import parse_kv

    n = produce_file(args.bootstrap_servers, args.topic, Path(args.file), partitions=args.partitions,
                     kafka_config={k: str(v) for k, v in parse_kv(args.kafka_config, "--kafka-config").items()})
    print(f"produced {n} messages to {args.topic}")
    return 0


def iter_topic(bootstrap: str, topic: str, *, max_messages: Optional[int] = None, timeout: float = 30.0,
               kafka_config=None) -> Iterator:
    """Messages of a topic from the beginning until every partition is at its end (or ``max_messages``)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from pipeline.kafkaio import kafka_client

    consumer = kafka_client(Consumer, {
        "bootstrap.servers": bootstrap, "group.id": f"wirestream-consume-{time.time_ns()}",
        "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
        **(kafka_config or {})}, "consumer")
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None:
            raise WirestreamError(f"topic {topic!r} does not exist ({md.error if md else 'no metadata'})")
        parts = sorted(md.partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        pending = set(parts)
        n = 0
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise WirestreamError(f"reading {topic}: {msg.error()}")
            yield msg
            n += 1
            deadline = time.monotonic() + timeout
            if max_messages is not None and n >= max_messages:
                return
    finally:
        consumer.close()


def decode_record(value: bytes, registry_decoder=None) -> dict:
    from pipeline.avro import DEAD_LETTER, ENRICHED_ARTICLE, decode_any

    return decode_any(value, names=(ENRICHED_ARTICLE, DEAD_LETTER), confluent=registry_decoder)


def cmd_consume(args) -> int:
    registry = None
    if args.schema_registry_url:
        from pipeline.registry import confluent_decoder

        registry = confluent_decoder(args.schema_registry_url, {})
    out = sys.stdout
    for msg in iter_topic(args.bootstrap_servers, args.topic, max_messages=args.max, timeout=args.timeout):
        rec = decode_record(msg.value(), registry)
        out.write(json.dumps(rec, default=_json_default, ensure_ascii=False) + "\n")
    out.flush()
    return 0


def cmd_run(args, beam_args: Sequence[str]) -> int:
    from pipeline.run import run_job

    summary = run_job(list(beam_args))
    print(summary.line(), flush=True)
    return 0 if summary.balanced or not summary.read else 1


def _print_demo_record(rec: dict) -> None:
    body = rec["body"]
    print(f"\n--- {rec['article_id']}  [{rec.get('publisher')}]  {rec.get('title')}")
    print(f"    body: {len(body)} chars (raw body sha256 {rec['raw_body_sha256'][:12]}…): "
          f"{body[:160].replace(chr(10), ' ')}…")
    for b in rec["boilerplate"][:3]:
        print(f"    cut {b['kind']} [{b['start']}:{b['end']}] by {b['rule']}: {b['text'][:70]!r}…")
    for a in rec["attributions"][:6]:
        desc = f" ({a['descriptor']})" if a.get("descriptor") else ""
        print(f"    source {a['kind']}: {a['source']}{desc} via '{a.get('cue')}'")
    for e in rec["events"][:6]:
        a2 = (e.get("actor2") or {}).get("code") or (e.get("actor2") or {}).get("text") or "-"
        print(f"    event {e['code']} {e['label']}: {e['actor1'].get('code') or e['actor1']['text']} -> {a2} "
              f"[{e['trigger']}]{' date ' + e['date'] if e.get('date') else ''}"
              f"{' via ' + e['attributed_to'] if e.get('attributed_to') else ''}")
    d = rec["dedup"]
    if d.get("duplicate_of"):
        print(f"    near-duplicate of {d['duplicate_of']} (similarity {d['similarity']:.2f})")


def cmd_demo(args, beam_args: Sequence[str]) -> int:
    from pipeline.admin import TopicSpec, ensure_topics
    from pipeline.broker import EmbeddedBroker
    from pipeline.run import run_job

    sample = Path(args.articles) if args.articles else _sample_path()
    with EmbeddedBroker(args.port) as broker:
        bs = broker.bootstrap_servers
        print(f"1. embedded broker (tansu) up on {bs}")
        ensure_topics({"bootstrap.servers": bs}, [TopicSpec("raw-articles", 2), TopicSpec("articles", 2),
                                                  TopicSpec("articles.dead-letter", 1)])
        bad = [b"this is not an article", b'{"title": "no body here"}', b"\xff\xfe\x00garbage"]
        n = produce_file(bs, "raw-articles", sample, partitions=2, extra_values=bad)
        print(f"2. produced {n} messages to raw-articles ({n - len(bad)} sample articles from {sample.name}, "
              f"{len(bad)} malformed)")
        print("3. running the pipeline, bounded, on the local runner (the first run loads spaCy)…", flush=True)
        argv = ["--bootstrap-servers", bs, "--input-topic", "raw-articles", "--output-topic", "articles",
                "--dead-letter-topic", "articles.dead-letter", "--bounded", "--start", "earliest",
                *beam_args]
        summary = run_job(argv)
        print("4. " + summary.line())
        records = [decode_record(m.value()) for m in iter_topic(bs, "articles")]
        dead = [decode_record(m.value()) for m in iter_topic(bs, "articles.dead-letter")]
        print(f"5. sink topic 'articles' holds {len(records)} Avro records; 'articles.dead-letter' holds "
              f"{len(dead)}. A few, decoded:")
        for rec in records[: args.show]:
            _print_demo_record(rec)
        for d in dead:
            o = d["origin"]
            print(f"\n--- dead letter from {o['topic']}[{o['partition']}]@{o['offset']} at stage {d['stage']}: "
                  f"{d['error_type']}: {d['reason'][:110]}")
    return 0 if summary.balanced else 1


# ------------------------------------------------------------------------------------------ parser


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no traceback, exit 2
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="wirestream", description="Streaming ingestion of wire stories: Kafka -> Beam -> Avro -> Kafka")
    p.add_argument("--version", action="version", version=f"wirestream {__version__}")
    p.add_argument("--log-level", default="WARNING", help="Python log level (INFO shows stage progress)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    b = sub.add_parser("broker", help="Run the embedded dev broker (tansu) in the foreground")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--host", default="127.0.0.1")

    pr = sub.add_parser("produce", help="Load raw articles (one JSON object a line) into a topic")
    pr.add_argument("file", help="JSON-lines file of raw articles")
    pr.add_argument("--topic", required=True)
    pr.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    pr.add_argument("--partitions", type=int, default=1, help="Partitions if the topic is created")
    pr.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE")

    r = sub.add_parser("run", help="Run the pipeline on any Beam runner (all Beam options pass through)",
                       add_help=False)
    r.add_argument("-h", "--help", action="store_true")

    c = sub.add_parser("consume", help="Decode the Avro output (or dead letters) to JSON lines")
    c.add_argument("--topic", required=True)
    c.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    c.add_argument("--max", type=int, default=None, help="Stop after N records")
    c.add_argument("--timeout", type=float, default=30.0, help="Give up after this many idle seconds")
    c.add_argument("--schema-registry-url", help="For Confluent-framed records")

    d = sub.add_parser("demo", help="Embedded broker + sample articles + a bounded local run, end to end")
    d.add_argument("--port", type=int, default=None, help="Broker port (default: a free one)")
    d.add_argument("--articles", help="JSON-lines file of raw articles (default: the packaged samples)")
    d.add_argument("--show", type=int, default=4, help="How many decoded records to print")
    return p


def _run_help() -> str:
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import WirestreamOptions

    parser = argparse.ArgumentParser(prog="wirestream run", description=(
        "Run the pipeline. wirestream's options are below; every other Beam option (--runner, --project, "
        "--flink_master, --direct_num_workers, ...) passes through to the runner. Without --runner the job "
        "runs locally on Beam's FnApiRunner."))
    WirestreamOptions._add_argparse_args(parser)
    del PipelineOptions
    return parser.format_help()


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            if args.help:
                print(_run_help())
                return 0
            return cmd_run(args, rest)
        if args.command == "demo":
            return cmd_demo(args, rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return {"broker": cmd_broker, "produce": cmd_produce, "consume": cmd_consume}[args.command](args)
    except WirestreamError as exc:
        print(f"wirestream {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wirestream {args.command}: stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
