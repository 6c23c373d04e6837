"""What the kit's tests share: real servers per variant, and a client whose every read times out.

A conformance test talks to a real server subprocess over loopback. Its
clients read strictly: ``expect(prefix)`` checks the *next* line, so a test
states every line each client receives, in order. To make that possible on a
server shared by the tests of a module, ``Chat.join`` makes the first client of
each test wait until it is alone in the room (the previous test's clients may
still be leaving), and has every client already in the room read the
``* NICK joined`` line of each newcomer.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator

from chatlab.launch import ServerProcess, start_server
from chatlab.measure.servers import cpu_seconds
from chatlab.variants import available_variants

WELCOME = re.compile(r"\* welcome to chatlab, you are (guest\d+) \(type /help for commands\)")
TIMEOUT = 5.0  # seconds any single expected line may take, on a noisy shared machine

# Every variant that serves many clients at once; new ones are picked up here.
CONCURRENT_VARIANTS = [variant for variant in available_variants() if variant != "blocking"]


class NoLine(AssertionError):
    """No complete line arrived in time."""


class Closed(AssertionError):
    """The server closed the connection (or reset it) where a line was expected."""


class ChatClient:
    """One connection to a chat server, as a test drives it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""  # received bytes not yet returned as a line
        self.nick = ""

    @classmethod
    def connect(cls, server: ServerProcess, *, rcvbuf: int | None = None) -> ChatClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # set before connecting, so the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(TIMEOUT)
        try:
            sock.connect((server.host, server.port))
        except OSError:
            sock.close()
            raise
        return cls(sock)

    def send(self, data: bytes | str) -> None:
        """Send raw bytes (a str is UTF-8 encoded); no newline is added."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.settimeout(TIMEOUT)
        self.sock.sendall(data)

    def say(self, *texts: str) -> None:
        """Send each text as one line, all in one write."""
        self.send("".join(text + "\n" for text in texts))

    def line(self, timeout: float = TIMEOUT) -> str:
        """The next line from the server, without its newline; fails on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoLine(f"no line within {timeout} s; have {self.pending!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                raise Closed(f"connection closed; unfinished: {self.pending!r}")
            self.pending += data
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode("utf-8")  # the server must only ever send valid UTF-8

    def expect(self, prefix: str, timeout: float = TIMEOUT) -> str:
        """The next line, which must start with ``prefix``."""
        line = self.line(timeout)
        assert line.startswith(prefix), f"expected {prefix!r}..., got {line!r}"
        return line

    def welcome(self, line: str | None = None) -> str:
        """Read the greeting (unless it is the ``line`` just read) and learn our nick from it."""
        line = self.line() if line is None else line
        greeting = WELCOME.fullmatch(line)
        assert greeting, f"expected a welcome, got {line!r}"
        self.nick = greeting[1]
        return self.nick

    def expect_closed(self, timeout: float = TIMEOUT) -> None:
        """The server closes the connection next, with no more lines first."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise AssertionError(f"still open after {timeout} s") from None
        assert self.pending + data == b"", f"expected the close, got {self.pending + data!r}"

    def expect_silence(self, seconds: float) -> None:
        """Nothing arrives for ``seconds`` (a negative check: it needs a fixed wait)."""
        assert not self.pending, f"unexpected {self.pending!r}"
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        raise AssertionError(f"expected silence, got {data!r}" if data else "expected silence")

    def close(self) -> None:
        self.sock.close()


class Chat:
    """The clients of one test, on one server; tracks who must hear of whom."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.clients: list[ChatClient] = []  # the members, who hear of every newcomer
        self.opened: list[ChatClient] = []  # every connection made, closed at the end

    def join(self, *, rcvbuf: int | None = None) -> ChatClient:
        """Connect a member; everyone already here reads its ``joined`` line."""
        client = ChatClient.connect(self.server, rcvbuf=rcvbuf)
        client.welcome()
        if not self.clients:
            wait_until_alone(client)
        for other in self.clients:
            other.expect(f"* {client.nick} joined")
        self.clients.append(client)
        self.opened.append(client)
        return client

    def members(self, count: int) -> list[ChatClient]:
        return [self.join() for _ in range(count)]

    def leave(self, client: ChatClient) -> None:
        """Close ``client``; everyone else reads its ``left`` line."""
        self.gone(client)
        client.close()
        for other in self.clients:
            other.expect(f"* {client.nick} left")

    def gone(self, client: ChatClient) -> None:
        """``client`` is no longer a member (it quit, or was or will be dropped)."""
        self.clients.remove(client)

    def close(self) -> None:
        for client in self.opened:
            client.close()
        self.clients.clear()
        self.opened.clear()


def wait_until_alone(client: ChatClient, timeout: float = 10.0) -> None:
    """Ask ``/who`` until ``client`` is the only member; skip the notices of those leaving."""
    deadline = time.monotonic() + timeout
    line = "(no answer)"
    while time.monotonic() < deadline:
        client.say("/who")
        while not (line := client.line()).startswith("* online: "):
            assert line.endswith((" left", " joined")), f"unexpected {line!r}"
        if line == f"* online: {client.nick}":
            return
        time.sleep(0.02)
    raise AssertionError(f"the room never emptied: {line!r}")


def stop_cleanly(server: ServerProcess) -> None:
    """Stop a server with SIGTERM; it must exit 0 and never have printed a traceback."""
    try:
        status = server.stop()
    except subprocess.TimeoutExpired:
        raise AssertionError(f"server ignored SIGTERM:\n{server.output}") from None
    assert status == 0, f"exit status {status}:\n{server.output}"
    assert "Traceback" not in server.output, server.output


@contextlib.contextmanager
def serving(variant: str, *args: str) -> Iterator[ServerProcess]:
    """A server that is always stopped, and must stop cleanly."""
    server = start_server(variant, *args)
    try:
        yield server
    except BaseException:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.stop()
        raise
    stop_cleanly(server)


def cpu_seconds_over(pid: int, seconds: float) -> float:
    """CPU time (user + system, all threads) the process uses during the next ``seconds``."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
