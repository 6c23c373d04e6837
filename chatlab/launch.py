"""Start a chatlab server as a subprocess and always stop it: for tests, notebooks and the bench.

    with running_server("epoll") as server:
        sock = socket.create_connection((server.host, server.port))

The server is started with ``--port 0`` (an ephemeral port) and the real port
is read from its ``listening on HOST:PORT`` line. Leaving the ``with`` block
sends SIGTERM and waits; a server that ignores it is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_WEB = re.compile(r"web chat at http://(\S+):(\d+)/")


@dataclass
class ServerProcess:
    """A running server and everything it has printed so far."""

    proc: subprocess.Popen[str]
    host: str = "127.0.0.1"
    port: int = 0
    web_port: int | None = None
    lines: list[str] = field(default_factory=list)  # stdout and stderr, merged, in order

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait for the exit status (kill after ``timeout`` seconds)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_server(variant: str, *args: str, startup_timeout: float = 15.0) -> ServerProcess:
    """Start ``python -m chatlab.<variant>``; return once it is listening.

    ``--port 0`` and ``--web-port 0`` are added unless ``args`` set them.
    """
    argv = [sys.executable, "-m", f"chatlab.{variant}", *args]
    if "--port" not in args:
        argv += ["--port", "0"]
    if "--web-port" not in args:
        argv += ["--web-port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
    )
    server = ServerProcess(proc)
    listening = threading.Event()
    threading.Thread(target=_collect, args=(server, listening), daemon=True).start()
    if not listening.wait(startup_timeout) or not server.port:
        server.stop()
        raise RuntimeError(f"chatlab.{variant} did not start:\n{server.output}")
    return server


@contextlib.contextmanager
def running_server(variant: str, *args: str) -> Iterator[ServerProcess]:
    """``start_server`` as a context manager that always stops the server."""
    server = start_server(variant, *args)
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.stop()


def _collect(server: ServerProcess, listening: threading.Event) -> None:
    """Read the server's output until it exits; note the ports as they appear."""
    assert server.proc.stdout is not None
    for raw in server.proc.stdout:
        line = raw.rstrip("\n")
        server.lines.append(line)
        if match := _WEB.search(line):
            server.web_port = int(match[2])
        elif match := _LISTENING.search(line):
            server.host, server.port = match[1], int(match[2])
        if "connect with" in line:  # the last start-up line, after the ports
            listening.set()
    listening.set()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
