"""wirestream's error hierarchy.

Per-record failures are raised as a :class:`RecordError` subclass and turned into dead letters
(with the original bytes, the stage and this error's ``reason``) by the stage that caught them.
Configuration mistakes raise :class:`ConfigError` before anything runs.
"""

from __future__ import annotations

__all__ = [
    "WirestreamError",
    "ConfigError",
    "RecordError",
    "DecodeError",
    "InvalidRecord",
    "BodyTooLarge",
    "StageError",
    "SchemaError",
    "DeliveryError",
    "BrokerError",
]


class WirestreamError(Exception):
    """Root of every error wirestream raises on purpose."""


class ConfigError(WirestreamError, ValueError):
    """An option or setting is wrong; the message says which and what to do."""


class RecordError(WirestreamError):
    """One input record cannot be processed. ``error_type`` is the machine-readable class name
    written to the dead letter; ``str(err)`` is the human reason."""

    @property
    def error_type(self) -> str:
        return getattr(self, "_error_type", None) or type(self).__name__

    def __init__(self, reason: str, *, error_type: str | None = None):
        super().__init__(reason)
        self._error_type = error_type


class DecodeError(RecordError):
    """The bytes are not JSON or Avro we can read (bad encoding, bad framing, unknown schema)."""


class InvalidRecord(RecordError):
    """The message decodes but is not a valid raw article (wrong types, missing body...)."""


class BodyTooLarge(RecordError):
    """The message or body exceeds the configured size limit."""


class StageError(RecordError):
    """A processing stage raised on this record; the stage name and the exception are kept."""


class SchemaError(WirestreamError):
    """A schema file is missing or invalid, or a record does not match its schema."""


class DeliveryError(WirestreamError):
    """Kafka did not acknowledge a produced message; the bundle fails so the runner retries it."""


class BrokerError(WirestreamError):
    """The Kafka cluster cannot be reached or refused a request (metadata, commit, admin)."""
