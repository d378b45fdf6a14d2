"""A watchdog for tests that feed hostile input: an audit hook that records forbidden events while armed.

Forbidden: a connection or name lookup to anything but loopback, opening a file outside the interpreter, the
repository and the temp dir, starting a process, unpickling, and running code compiled from a string.
``sys.addaudithook`` hooks cannot be removed, so one instance is made per process (``WATCH``) and it does
nothing unless armed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def _package_dirs() -> set:
    """Where the installed package and its data live (an editable install may map them elsewhere)."""
    import importlib.util

    dirs = set()
    for name in ("pipeline", "pipeline._schemas"):
        spec = importlib.util.find_spec(name)
        if spec is not None:
            dirs.update(spec.submodule_search_locations or [])
    return dirs


_ALLOWED_ROOTS = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, REPO,
                                                         tempfile.gettempdir(), *_package_dirs()}) + ("/dev/", "/proc/")
_CODE_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                "pickle.find_class", "ctypes.dlopen", "webbrowser.open", "urllib.Request"}


class _Watch:
    """Audit-hook watchdog: records forbidden events while armed."""

    def __init__(self):
        self.armed = False
        self.events: list = []
        sys.addaudithook(self._hook)  # hooks cannot be removed; this one is inert unless armed

    def _hook(self, event, args):
        if not self.armed:
            return
        if event == "open":
            path = args[0]
            if isinstance(path, int):
                return
            path = os.fsdecode(path)
            real = os.path.realpath(path)
            if not real.startswith(_ALLOWED_ROOTS):
                self.events.append(("open", path))
        elif event == "socket.connect":
            addr = args[1]
            host = addr[0] if isinstance(addr, tuple) else addr
            if not (isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))):
                self.events.append(("connect", addr))
        elif event == "socket.getaddrinfo":
            if args[0] not in (None, "localhost", "127.0.0.1", "::1", b"localhost"):
                self.events.append(("getaddrinfo", args[0]))
        elif event in _CODE_EVENTS:
            self.events.append((event, repr(args)[:200]))
        elif event == "exec":
            # code run from a string (eval/exec of data); module imports run code read from files
            filename = getattr(args[0], "co_filename", "")
            if not os.path.isfile(filename):
                self.events.append((event, filename))

    @contextlib.contextmanager
    def armed_for(self, seconds: float, *, alarm: bool = True):
        """Arm the watchdog and (``alarm``) a timer: a case running longer than ``seconds`` is a hang."""

        def on_alarm(signum, frame):
            raise TimeoutError(f"no result within {seconds}s")

        previous = signal.signal(signal.SIGALRM, on_alarm) if alarm else None
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, seconds)
        self.armed = True
        try:
            yield
        finally:
            self.armed = False
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)


WATCH = _Watch()
