"""wirestream: a streaming ingestion pipeline for wire stories on Apache Beam.

Stages (see README.md, "Architecture"): read from Kafka -> parse -> exact dedup ->
strip boilerplate -> near-duplicate detection -> attributions and events (spaCy) ->
Avro -> Kafka. Pure logic lives in plain modules; Beam transforms are thin shells.
"""

__version__ = "0.1.0"
