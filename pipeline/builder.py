"""Builds (does not run) the wirestream graph.

    build_pipeline(p, config)      -> PipelineOutputs  (Kafka source, all stages, Kafka sinks, commits)
    build_stages(records, config)  -> StageOutputs     (parse .. encode; no IO: what tests assert on)

Stage list, in order (each is its own module under ``pipeline.stages``; labels are stable so a streaming
job can be updated in place):

    ReadFromKafka -> ParseArticles -> ExactDedup -> StripBoilerplate -> NearDuplicates -> ExtractFacts
        -> EncodeArticles -> WriteArticles
    (with no per-article stage on, records go from the read to the write in lists, one Kafka fetch per
    element: Config.batched_io)
    dead letters of every stage -> EncodeDeadLetters -> WriteDeadLetters
    duplicates of both dedup stages -> (WriteDuplicates | CountDuplicates)
    acks of all three -> CommitOffsets
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Optional

import apache_beam as beam

from pipeline.kafkaio import AckDropped, CommitOffsets, ReadFromKafka, WriteToKafka
from pipeline.options import Config, KafkaIO
from pipeline.records import Ack, Article, DeadLetter
from pipeline.stages.common import ARTICLES, DEAD_LETTERS, DUPLICATES
from pipeline.stages.dedup import ExactDedup
from pipeline.stages.parse import ParseArticles
from pipeline.stages.sink import EncodeArticles, EncodeDeadLetters, public_record

__all__ = ["StageOutputs", "PipelineOutputs", "build_stages", "build_pipeline"]

_LOGGER = logging.getLogger(__name__)


class StageOutputs(NamedTuple):
    articles: beam.PCollection  # Article, fully enriched (List[Article] when batched)
    encoded: beam.PCollection  # OutboundMessage for the output topic (List[OutboundMessage] when batched)
    dead_letters: beam.PCollection  # DeadLetter, from every stage
    duplicates: beam.PCollection  # Article, dropped exact and near duplicates


class PipelineOutputs(NamedTuple):
    stages: StageOutputs
    acks: beam.PCollection  # Ack of every handled input


def _flatten(pcolls, label, element_type):
    pcolls = list(pcolls)
    out = tuple(pcolls) | label >> beam.Flatten()
    out.element_type = element_type
    return out


def build_stages(records: beam.PCollection, config: Config, *,
                 dedup_seeds: Optional[beam.PCollection] = None, batched: bool = False) -> StageOutputs:
    """Parse .. encode over ``PCollection[KafkaRecord]`` (from Kafka, or ``beam.Create`` in tests).

    ``dedup_seeds``: content hashes already written (warm start, :mod:`pipeline.stages.warmstart`).
    ``batched``: ``records`` is ``PCollection[List[KafkaRecord]]`` and articles and encoded messages stay
    in lists to the end; only for a graph without per-article stages (:attr:`Config.batched_io`).
    """
    if batched and config.per_article_stages:
        raise ValueError("batched stages need boilerplate, near-dedup and NLP off (Config.batched_io)")
    dead, dups = [], []
    batch = config.bounded and not config.streaming  # a replay run as a batch job: every input is there
    parsed = records | "ParseArticles" >> ParseArticles(
        limits=config.limits, schema_registry_url=config.schema_registry_url,
        registry_config=config.registry_config, batched=batched)
    dead.append(parsed[DEAD_LETTERS])
    # a bounded batch job groups each shard's articles (no keyed state: split over workers by shard)
    exact = parsed[ARTICLES] | "ExactDedup" >> ExactDedup(
        horizon_seconds=config.dedup_horizon_seconds, seeds=dedup_seeds, expire_state=config.streaming,
        batched=batched, grouped=batch and not batched)
    dead.append(exact[DEAD_LETTERS])
    dups.append(exact[DUPLICATES])
    articles = exact[ARTICLES]
    if config.boilerplate:
        from pipeline.stages.boilerplate import StripBoilerplate

        # a bounded batch job groups each publisher's articles (no keyed state: split over workers by key)
        res = articles | "StripBoilerplate" >> StripBoilerplate(rules_path=config.boilerplate_rules,
                                                                grouped=batch)
        dead.append(res[DEAD_LETTERS])
        articles = res[ARTICLES]
        if batch and config.near_dedup:
            # a fusion break: without it near-dup's Fingerprint step is fused into the grouped stripping,
            # whose work a local runner splits over its workers by publisher (one key for a single agency's
            # feed); after it, by article
            articles = articles | "SpreadAfterBoilerplate" >> beam.Reshuffle().with_output_types(Article)
    if config.near_dedup:
        from pipeline.stages.neardup import NearDuplicates

        # a bounded batch job (expire_state off, bounded input) runs its band step and joins grouped: no
        # keyed state, split over a local runner's workers; streaming jobs keep keyed state and timers
        kwargs = {"horizon_seconds": config.dedup_horizon_seconds,
                  "mode": config.near_duplicates.value, "expire_state": config.streaming}
        if config.near_dup_threshold is not None:
            kwargs["threshold"] = config.near_dup_threshold
        res = articles | "NearDuplicates" >> NearDuplicates(**kwargs)
        dead.append(res[DEAD_LETTERS])
        if DUPLICATES in res:
            dups.append(res[DUPLICATES])
        articles = res[ARTICLES]
    if config.nlp:
        from pipeline.stages.nlp import ExtractFacts, SpreadForNlp

        # A fusion break that spreads the NLP work evenly by size (see SpreadForNlp): without it the
        # FnApiRunner runs NLP, the costliest step, on the one worker of the stateful stages.
        articles = articles | "SpreadForNlp" >> SpreadForNlp(ways=config.local_workers)
        res = articles | "ExtractFacts" >> ExtractFacts(spacy_model=config.spacy_model)
        dead.append(res[DEAD_LETTERS])
        articles = res[ARTICLES]
    enc = articles | "EncodeArticles" >> EncodeArticles(
        topic=config.output_topic, schema_registry_url=config.schema_registry_url,
        registry_config=config.registry_config, batched=batched)
    dead.append(enc[DEAD_LETTERS])
    return StageOutputs(
        articles=articles,
        encoded=enc[ARTICLES],
        dead_letters=_flatten(dead, "CollectDeadLetters", DeadLetter),
        duplicates=_flatten(dups, "CollectDuplicates", Article),
    )


def _source(p: beam.Pipeline, config: Config) -> beam.PCollection:
    if config.kafka_io == KafkaIO.XLANG:
        from pipeline.xlang import XlangReadFromKafka

        return p | "ReadFromKafka" >> XlangReadFromKafka(config)
    records = p | "ReadFromKafka" >> ReadFromKafka(
        config.consumer_config, config.input_topics, start=config.start, bounded=config.bounded,
        stop_timestamp_ms=config.stop_ms, batched=config.batched_io)
    if config.bounded:
        # a replay ends at the offsets seen at start: say so, or file sinks (--output-file) refuse the
        # (formally unbounded-per-element) read, and batch runners would switch to streaming
        records.is_bounded = True
    return records


def build_pipeline(p: beam.Pipeline, config: Config, *, known_seeds: Optional[list] = None) -> PipelineOutputs:
    """The whole job: Kafka in, stages, Kafka out, offset commits.

    ``known_seeds``: the warm-start seeds already read by the caller (the local round loop keeps them
    between rounds, :class:`pipeline.stages.warmstart.SinkSeeds`); without them a warm start reads the sink.
    """
    seeds = None
    if config.dedup_warm_start and known_seeds is not None:
        from pipeline.stages.warmstart import Seed

        seeds = p | "DedupSeeds" >> beam.Create(known_seeds).with_output_types(Seed)
    elif config.dedup_warm_start and config.kafka_io == KafkaIO.NATIVE:
        from pipeline.stages.warmstart import ReadDedupSeeds

        seeds = p | "ReadDedupSeeds" >> ReadDedupSeeds(
            config.consumer_config, config.output_topic, horizon_seconds=config.dedup_horizon_seconds,
            schema_registry_url=config.schema_registry_url, registry_config=config.registry_config)
    batched = config.batched_io
    stages = build_stages(_source(p, config), config, dedup_seeds=seeds, batched=batched)
    if config.kafka_io == KafkaIO.XLANG:
        from pipeline.xlang import XlangWriteToKafka

        stages.encoded | "WriteArticles" >> XlangWriteToKafka(config, config.output_topic)
        (stages.dead_letters
         | "EncodeDeadLetters" >> EncodeDeadLetters(topic=config.dead_letter_topic)
         | "WriteDeadLetters" >> XlangWriteToKafka(config, config.dead_letter_topic))
        return PipelineOutputs(stages, None)
    acks = [stages.encoded | "WriteArticles" >> WriteToKafka(config.producer_config, config.output_topic,
                                                             counter="written", batched=batched)]
    acks.append(stages.dead_letters
                | "EncodeDeadLetters" >> EncodeDeadLetters(
                    topic=config.dead_letter_topic, schema_registry_url=config.schema_registry_url,
                    registry_config=config.registry_config)
                | "WriteDeadLetters" >> WriteToKafka(config.producer_config, config.dead_letter_topic,
                                                     counter="dead_lettered"))
    if config.duplicates_topic:
        dup_enc = stages.duplicates | "EncodeDuplicates" >> EncodeArticles(
            topic=config.duplicates_topic, schema_registry_url=config.schema_registry_url,
            registry_config=config.registry_config)
        acks.append(dup_enc[ARTICLES] | "WriteDuplicates" >> WriteToKafka(
            config.producer_config, config.duplicates_topic, counter="duplicates"))
        # a duplicate that cannot be encoded is still only a duplicate: ack it
        acks.append(dup_enc[DEAD_LETTERS] | "AckUnencodableDuplicates" >> AckDropped("duplicates"))
    else:
        acks.append(stages.duplicates | "CountDuplicates" >> AckDropped("duplicates"))
    all_acks = _flatten(acks, "CollectAcks", Ack)
    if config.commit_offsets:
        all_acks | "CommitOffsets" >> CommitOffsets(config.consumer_config)
    if config.output_file:
        from pipeline.avro import ENRICHED_ARTICLE, load_schema

        articles = stages.articles
        if batched:
            articles = articles | "Unbatch" >> beam.FlatMap(lambda batch: batch).with_output_types(Article)
        (articles
         | "PublicRecords" >> beam.Map(public_record).with_output_types(Article)  # Avro-coded, not pickled
         | "WriteAvroFile" >> beam.io.WriteToAvro(config.output_file, schema=load_schema(ENRICHED_ARTICLE),
                                                  file_name_suffix=".avro"))
    return PipelineOutputs(stages, all_acks)
