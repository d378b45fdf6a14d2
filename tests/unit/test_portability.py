"""Portable by construction: the full graph, as a portable runner receives it.

The pipeline is built with every stage on for ``PortableRunner`` (what Flink, Spark and the Dataflow
Runner v2 receive), in both Kafka IO modes, and checked on its runner-API proto:

* it survives ``to_runner_api`` -> ``Pipeline.from_runner_api`` -> ``to_runner_api`` with the same
  transforms (stable labels) and the same coders;
* no PCollection carrying our records is coded by a pickling fallback (FastPrimitives / Pickle / Dill);
* every stateful step is keyed with a deterministic coder;
* every DoFn unpickles on its own and carries no live client or model (those are made in ``setup``).
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import pytest
from apache_beam.coders.coders import deserialize_coder
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2, schema_pb2
from apache_beam.runners import pipeline_context

from pipeline.builder import build_pipeline
from pipeline.options import Config, KafkaIO

from .xlang_fakes import fake_expansion_service

_FALLBACKS = {"FastPrimitivesCoder", "DeterministicFastPrimitivesCoder", "PickleCoder", "DillCoder",
              "CloudpickleCoder", "_PickleCoderBase", "_MemoizingPickleCoder"}
# Beam's own Reshuffle stores each element's (optional) original timestamp in a slot coded as
# Nullable[FastPrimitives]; the element itself keeps its coder. Checked separately below.
_BEAM_INTERNAL = "/ReshufflePerKey/"
_STAGE_LABELS = ["ReadFromKafka", "ParseArticles", "ExactDedup", "StripBoilerplate", "NearDuplicates",
                 "ExtractFacts", "EncodeArticles", "WriteArticles", "EncodeDeadLetters", "WriteDeadLetters"]
_DETERMINISTIC_KEY_URNS = {common_urns.coders.STRING_UTF8.urn, common_urns.coders.BYTES.urn,
                           common_urns.coders.VARINT.urn}


def _config(kafka_io: KafkaIO) -> Config:
    return Config(bootstrap_servers="kafka-0:9092", input_topics=("raw-articles",), output_topic="articles",
                  dead_letter_topic="articles.dead-letter", duplicates_topic="articles.duplicates",
                  kafka_io=kafka_io)


def _portable_pipeline(kafka_io: KafkaIO, local_workers: int = 1) -> beam.Pipeline:
    options = PipelineOptions(["--runner=PortableRunner", "--job_endpoint=localhost:8099",
                               "--environment_type=DOCKER",
                               "--environment_config=europe-docker.pkg.dev/p/r/wirestream:0.1.0"])
    p = beam.Pipeline(options=options)
    config = dataclasses.replace(_config(kafka_io), local_workers=local_workers)
    if kafka_io == KafkaIO.XLANG:
        config = dataclasses.replace(config, expansion_service=fake_expansion_service())
    build_pipeline(p, config)
    return p


# local2: the graph of a local multi-process run, where the NLP packs are keyed by worker share
@pytest.fixture(scope="module", params=[(KafkaIO.NATIVE, 1), (KafkaIO.XLANG, 1), (KafkaIO.NATIVE, 2)],
                ids=["native", "xlang", "native-local2"])
def built(request):
    kafka_io, local_workers = request.param
    p = _portable_pipeline(kafka_io, local_workers)
    return kafka_io, p, p.to_runner_api()


def _coder_tree(components, coder_id):
    """(urn, python class name or None) of a coder and all its components."""
    proto = components.coders[coder_id]
    name = None
    if proto.spec.urn == python_urns.PICKLED_CODER:
        name = type(deserialize_coder(proto.spec.payload)).__name__
    out = [(proto.spec.urn, name)]
    for sub in proto.component_coder_ids:
        out += _coder_tree(components, sub)
    return out


def _fallbacks(components, coder_id):
    return [n for _urn, n in _coder_tree(components, coder_id) if n in _FALLBACKS]


def test_top_level_stages_keep_their_labels(built):
    kafka_io, _p, proto = built
    top = {proto.components.transforms[t].unique_name for t in proto.root_transform_ids}
    if len(top) == 1:  # a single root composite wraps everything
        root = proto.components.transforms[proto.root_transform_ids[0]]
        top = {proto.components.transforms[t].unique_name for t in root.subtransforms}
    assert set(_STAGE_LABELS) <= top
    assert ("CommitOffsets" in top) == (kafka_io == KafkaIO.NATIVE)  # xlang: KafkaIO commits on finalize


def test_runner_api_round_trip_keeps_transforms_and_coders(built):
    _kafka_io, p, proto = built
    again = beam.Pipeline.from_runner_api(proto, p.runner, p._options).to_runner_api()

    def names(pr):
        return sorted(t.unique_name for t in pr.components.transforms.values())

    def coders_by_pcoll(pr):
        # keyed by (producer, output tag): PCollection names of external transforms are not kept
        ctx = pipeline_context.PipelineContext(pr.components)
        comps = pr.components
        return {(t.unique_name, tag): repr(ctx.coders.get_by_id(comps.pcollections[pid].coder_id))
                for t in comps.transforms.values() if not t.subtransforms for tag, pid in t.outputs.items()}

    assert names(again) == names(proto)
    assert coders_by_pcoll(again) == coders_by_pcoll(proto)
    assert len(proto.components.transforms) > 40  # the whole graph, not an empty shell


def test_no_pickling_fallback_coder_for_our_records(built):
    kafka_io, _p, proto = built
    comps = proto.components
    offenders = {}
    for pc in comps.pcollections.values():
        bad = _fallbacks(comps, pc.coder_id)
        if bad and _BEAM_INTERNAL not in pc.unique_name:
            offenders[pc.unique_name] = bad
    assert offenders == {}
    # inside Beam's Reshuffles, the element slot keeps our coder; only the timestamp slot is Beam's
    reshuffled = []
    for pc in comps.pcollections.values():
        if _BEAM_INTERNAL in pc.unique_name and pc.unique_name.endswith("GroupByKey.None"):
            kv = comps.coders[pc.coder_id]
            values = comps.coders[comps.coders[kv.component_coder_ids[1]].component_coder_ids[0]]
            element_id = values.component_coder_ids[0]
            assert _fallbacks(comps, element_id) == [], pc.unique_name
            proto_coder = comps.coders[element_id]
            if proto_coder.spec.urn == python_urns.PICKLED_CODER:
                reshuffled.append(repr(deserialize_coder(proto_coder.spec.payload)))
            else:
                reshuffled.append(_coder_tree(comps, element_id)[0])
    if kafka_io == KafkaIO.NATIVE:  # ReadFromKafka/SpreadPartitions: PartitionSpec
        assert (common_urns.coders.ROW.urn, None) in reshuffled
    assert any("ListCoder" in str(r) and "ArticleCoder" in str(r) for r in reshuffled), reshuffled  # SpreadForNlp


def test_article_pcollections_use_the_avro_coder(built):
    _kafka_io, _p, proto = built
    comps = proto.components
    by_name = {pc.unique_name.lstrip("0123456789"): pc for pc in comps.pcollections.values()}
    for name in ("ParseArticles/Parse/ParDo(_ParseFn).None", "CollectDeadLetters.None",
                 "CollectDuplicates.None"):
        names = [n for _u, n in _coder_tree(comps, by_name[name].coder_id)]
        assert set(names) & {"ArticleCoder", "DeadLetterCoder"}, (name, names)


def _pardo_payloads(proto):
    for tid, t in proto.components.transforms.items():
        if t.spec.urn == common_urns.primitives.PAR_DO.urn:
            yield tid, t, beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)


def test_stateful_steps_are_keyed_with_deterministic_coders(built):
    kafka_io, _p, proto = built
    comps = proto.components
    stateful = []
    for _tid, t, payload in _pardo_payloads(proto):
        if not (payload.state_specs or payload.timer_family_specs):
            continue
        main = [pid for tag, pid in t.inputs.items() if tag not in payload.side_inputs][0]
        kv = comps.coders[comps.pcollections[main].coder_id]
        assert kv.spec.urn == common_urns.coders.KV.urn, t.unique_name
        key = comps.coders[kv.component_coder_ids[0]]
        if key.spec.urn == python_urns.PICKLED_CODER:
            assert deserialize_coder(key.spec.payload).is_deterministic(), t.unique_name
        else:
            assert key.spec.urn in _DETERMINISTIC_KEY_URNS, (t.unique_name, key.spec.urn)
        stateful.append(t.unique_name.split("/")[0])
    expected = {"ExactDedup", "StripBoilerplate"}
    if kafka_io == KafkaIO.NATIVE:
        # near-dup keeps keyed state on an unbounded input; on the fake xlang read's bounded one, with
        # expire_state off (the config is not --streaming), it runs grouped as in batch execution
        expected |= {"CommitOffsets", "NearDuplicates"}
    assert expected <= set(stateful)


def test_every_dofn_unpickles_without_live_clients(built):
    _kafka_io, _p, proto = built
    seen = 0
    for _tid, t, payload in _pardo_payloads(proto):
        if payload.do_fn.urn != python_urns.PICKLED_DOFN_INFO:
            continue
        blob = payload.do_fn.payload
        fn = pickler.loads(blob)[0]
        assert isinstance(fn, beam.DoFn), t.unique_name
        assert len(blob) < 256 * 1024, (t.unique_name, len(blob))  # no model or corpus inside
        for marker in (b"confluent_kafka.cimpl", b"spacy.lang", b"spacy.language"):
            assert marker not in blob, (t.unique_name, marker)
        for attr in ("_consumer", "_producer", "_nlp", "_encode"):
            assert getattr(fn, attr, None) in (None, {}), (t.unique_name, attr)
        seen += 1
    assert seen > 15


def test_timer_ids_are_unique_across_the_pipeline():
    """The local runner tracks written timers by timer id; two stateful DoFns sharing an id (with different
    key coders) corrupt each other's timers (seen as a UnicodeDecodeError in a soak run)."""
    import inspect

    from apache_beam.transforms import userstate

    import pipeline.kafkaio
    import pipeline.stages.boilerplate
    import pipeline.stages.dedup
    import pipeline.stages.neardup

    ids = []
    for module in (pipeline.stages.dedup, pipeline.stages.boilerplate, pipeline.stages.neardup, pipeline.kafkaio):
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            ids += [v.name for v in vars(cls).values() if isinstance(v, userstate.TimerSpec)]
    assert len(ids) >= 5 and len(ids) == len(set(ids)), ids


_PICKLED_FIELD = "beam:logical:pythonsdk_any:v1"


def _pickled_row_fields(field_type, path):
    """Fields of a row schema whose type Beam could not read and so pickles (a ``pythonsdk_any`` field)."""
    kind = field_type.WhichOneof("type_info")
    if kind == "logical_type":
        if field_type.logical_type.urn == _PICKLED_FIELD:
            return [path]
        return _pickled_row_fields(field_type.logical_type.representation, path)
    if kind == "row_type":
        return [p for f in field_type.row_type.schema.fields for p in _pickled_row_fields(f.type, f"{path}.{f.name}")]
    if kind == "array_type":
        return _pickled_row_fields(field_type.array_type.element_type, path + "[]")
    if kind == "iterable_type":
        return _pickled_row_fields(field_type.iterable_type.element_type, path + "[]")
    if kind == "map_type":
        return (_pickled_row_fields(field_type.map_type.key_type, path + "{key}")
                + _pickled_row_fields(field_type.map_type.value_type, path + "{}"))
    return []


def test_row_coded_records_have_no_pickled_fields(built):
    # NamedTuples declared under `from __future__ import annotations` keep string annotations, which Beam
    # reads as "any type": each such field is pickled inside the row (register_row_type resolves them)
    _kafka_io, _p, proto = built
    comps = proto.components
    rows = 0
    offenders = set()
    for coder in comps.coders.values():
        if coder.spec.urn != common_urns.coders.ROW.urn:
            continue
        rows += 1
        schema = schema_pb2.Schema.FromString(coder.spec.payload)
        for f in schema.fields:
            offenders.update(_pickled_row_fields(f.type, f.name))
    assert rows >= 2  # PartitionSpec, OutboundMessage / KafkaWriteRow, Ack...
    assert offenders == set()
