"""A stand-in for the Java expansion service: Beam's Python expansion service with the two Kafka URNs.

The real expansion (a Java jar) is not available here. This fake receives exactly the ExpansionRequest the
Java service would (URN + schema-encoded configuration payload), records the decoded configuration, and
expands to Python transforms with the same output contract: the read yields rows in the Java KafkaIO's
with-metadata schema, the write consumes ``KafkaWriteRow`` rows and keeps them in :data:`WRITTEN`.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional

import apache_beam as beam
import numpy as np
from apache_beam import coders
from apache_beam.io import kafka
from apache_beam.portability.api import external_transforms_pb2
from apache_beam.runners.portability.expansion_service import ExpansionServiceServicer
from apache_beam.transforms.ptransform import PTransform

from pipeline.records import register_row_type

REQUESTS: list = []  # (urn, decoded configuration) of every expansion
WRITTEN: dict = {}  # topic -> rows written (in-process runner only)
ROWS_TO_READ: list = []  # what the fake read returns


class JavaKafkaHeader(NamedTuple):
    key: str
    value: Optional[bytes]


class JavaKafkaRecord(NamedTuple):
    """The field names and types of KafkaIO's ByteArrayKafkaRecord (Java), as a Beam schema."""

    topic: str
    partition: np.int32
    offset: np.int64
    timestamp: np.int64
    key: Optional[bytes]
    value: Optional[bytes]
    headers: Optional[List[JavaKafkaHeader]]
    timestampTypeId: np.int32
    timestampTypeName: str


register_row_type(JavaKafkaHeader)  # typed fields, as Java's schema has them (not pickled "any")
register_row_type(JavaKafkaRecord)


def decode_payload(payload: bytes) -> dict:
    """The configuration row of a schema-aware ExternalTransform payload, as a dict."""
    proto = external_transforms_pb2.ExternalConfigurationPayload()
    proto.ParseFromString(payload)
    row = coders.RowCoder(proto.schema).decode(proto.payload)
    return row._asdict()


@PTransform.register_urn(kafka.ReadFromKafka.URN_WITH_METADATA, bytes)
class FakeKafkaRead(beam.PTransform):
    def __init__(self, rows):
        super().__init__()
        self._rows = list(rows)

    def expand(self, pbegin):
        return pbegin | "FakeRecords" >> beam.Create(self._rows).with_output_types(JavaKafkaRecord)

    @staticmethod
    def from_runner_api_parameter(unused_ptransform, payload, unused_context):
        REQUESTS.append((kafka.ReadFromKafka.URN_WITH_METADATA, decode_payload(payload)))
        return FakeKafkaRead(ROWS_TO_READ)


class _Keep(beam.DoFn):
    def __init__(self, topic):
        self._topic = topic

    def process(self, row):
        WRITTEN.setdefault(self._topic, []).append(row)


@PTransform.register_urn(kafka.WriteToKafka.URN_WITH_HEADERS, bytes)
class FakeKafkaWrite(beam.PTransform):
    def __init__(self, topic):
        super().__init__()
        self._topic = topic

    def expand(self, rows):
        # the Java write ends the branch (PDone); typed so the fake adds no pickled coder of its own
        return rows | "Keep" >> beam.ParDo(_Keep(self._topic)).with_output_types(bytes)

    @staticmethod
    def from_runner_api_parameter(unused_ptransform, payload, unused_context):
        conf = decode_payload(payload)
        REQUESTS.append((kafka.WriteToKafka.URN_WITH_HEADERS, conf))
        return FakeKafkaWrite(conf["topic"])


def fake_expansion_service() -> ExpansionServiceServicer:
    """An in-process expansion service object (ExternalTransform accepts anything with ``Expand``)."""
    return ExpansionServiceServicer()


def java_row(topic, partition, offset, value, *, key=None, timestamp=1_700_000_000_000, headers=()):
    return JavaKafkaRecord(topic, np.int32(partition), np.int64(offset), np.int64(timestamp), key, value,
                           [JavaKafkaHeader(k, v) for k, v in headers], np.int32(0), "CreateTime")
