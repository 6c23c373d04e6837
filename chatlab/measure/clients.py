"""A minimal line client for the measurements: connect, read one line, send one line.

Deliberately blocking with a timeout (``settimeout``) rather than built on
select: the flood in notebook 3 holds more than 1,024 client sockets, and a
select-based client would hit the very wall it is there to demonstrate.
"""

from __future__ import annotations

import contextlib
import socket
import time

from chatlab.sockets import RECV_SIZE


class LineClient:
    """One TCP connection to a chat server, read line by line."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.connected_ns = time.perf_counter_ns()
        self._pending = b""

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_line(self, timeout: float = 5.0) -> str | None:
        """The next line without its newline; None on EOF or if ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(RECV_SIZE)
            except (TimeoutError, BlockingIOError):
                return None
            except OSError:
                return None  # reset: the server dropped us
            if not data:
                return None
            self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def send_line(self, text: str) -> None:
        self.sock.settimeout(5.0)
        self.sock.sendall(text.encode("utf-8") + b"\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
