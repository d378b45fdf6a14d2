"""Create wirestream's topics, idempotently: raw input, enriched output (compacted), dead letters, duplicates.

    python deploy/kafka/create_topics.py --bootstrap-servers kafka-0:9092 --input-topic raw-articles \
        --output-topic articles [--dead-letter-topic articles.dead-letter] [--duplicates-topic articles.duplicates] \
        [--partitions 6] [--replication-factor 3] [--kafka-config security.protocol=SASL_SSL ...]

Topics that exist are left as they are (partitions and configs are not changed); the script prints one line
per topic (``created`` or ``exists``) and exits 0. The layout (retention, compaction, sizes) is
:func:`pipeline.admin.default_topics`. Partitions bound the read parallelism: one reader per partition, so
create at least as many as the job will ever have worker cores for the read (see deploy/README.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.admin import default_topics, ensure_topics  # noqa: E402
from pipeline.errors import WirestreamError  # noqa: E402
from pipeline.options import parse_kv, read_properties  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Create wirestream's Kafka topics (idempotent).")
    ap.add_argument("--bootstrap-servers", required=True, help="host:port[,host:port]")
    ap.add_argument("--input-topic", required=True, help="raw articles")
    ap.add_argument("--output-topic", required=True, help="enriched articles (compacted by article id)")
    ap.add_argument("--dead-letter-topic", help="default: <output-topic>.dead-letter")
    ap.add_argument("--duplicates-topic", help="optional topic for dropped duplicates")
    ap.add_argument("--partitions", type=int, default=6, help="partitions of input/output/duplicates (default 6)")
    ap.add_argument("--replication-factor", type=int, default=3, help="default 3 (1 for a dev broker)")
    ap.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                    help="librdkafka admin-client setting (repeatable), e.g. security.protocol=SASL_SSL")
    ap.add_argument("--kafka-config-file", help="librdkafka settings as a .properties file")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker (default 30)")
    args = ap.parse_args(argv)
    if args.partitions < 1 or args.replication_factor < 1:
        ap.error("--partitions and --replication-factor must be >= 1")
    return args


def main(argv=None) -> int:
    from confluent_kafka import KafkaException

    args = parse_args(argv)
    try:
        conf = read_properties(args.kafka_config_file) if args.kafka_config_file else {}
        conf.update(parse_kv(args.kafka_config, "--kafka-config"))
        conf = {k: (v.reveal() if hasattr(v, "reveal") else v) for k, v in conf.items()}
        conf["bootstrap.servers"] = args.bootstrap_servers
        topics = default_topics(args.input_topic, args.output_topic,
                                args.dead_letter_topic or f"{args.output_topic}.dead-letter",
                                partitions=args.partitions, replication_factor=args.replication_factor,
                                duplicates_topic=args.duplicates_topic)
        status = ensure_topics(conf, topics, timeout=args.timeout)
    except (WirestreamError, KafkaException) as exc:
        print(f"create_topics: {exc} (is {args.bootstrap_servers} reachable, are the credentials right?)",
              file=sys.stderr)
        return 2
    for spec in topics:
        print(f"{spec.name}\t{status[spec.name]}\tpartitions={spec.partitions}\t"
              + " ".join(f"{k}={v}" for k, v in sorted(spec.config.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
