"""``python -m chatlab.client`` as a subprocess with a stdin pipe, and its two halves alone."""

from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from helpers import TIMEOUT, WELCOME, Chat, serving

from chatlab.client import print_received, send_typed_lines
from chatlab.launch import ServerProcess, wait_for


class ClientProcess:
    """The terminal client as a subprocess; what it prints is collected line by line."""

    def __init__(self, server: ServerProcess) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatlab.client",
                "--host",
                server.host,
                "--port",
                str(server.port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def shows(self, line: str) -> bool:
        """Wait until the client has printed ``line``."""
        return wait_for(lambda: line in self.lines, TIMEOUT)

    def nick(self) -> str:
        assert wait_for(lambda: self.lines, TIMEOUT), "the client printed nothing"
        greeting = WELCOME.fullmatch(self.lines[0])
        assert greeting, self.lines
        return greeting[1]

    def exit_status(self) -> int:
        status = self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)
        return status

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with serving("epoll") as server:
        yield server


@pytest.fixture
def client(server: ServerProcess) -> Iterator[ClientProcess]:
    client = ClientProcess(server)
    try:
        yield client
    finally:
        client.close()


def test_prints_what_arrives_sends_what_is_typed_and_exits_0_on_close(
    chat: Chat, client: ClientProcess
) -> None:
    alice = chat.join()  # in the room before the client, so it hears everything
    nick = client.nick()
    alice.expect(f"* {nick} joined")
    client.type("hello from the terminal \u00e9")
    alice.expect(f"<{nick}> hello from the terminal \u00e9")
    alice.say("hi, terminal")
    assert client.shows(f"<{alice.nick}> hi, terminal")
    client.type("/quit")  # the server closes; stdin is still open
    assert client.shows("* bye")
    assert client.exit_status() == 0
    assert client.stderr() == "* disconnected\n"
    alice.expect(f"* {nick} left")


def test_exits_0_at_the_end_of_its_input(chat: Chat, client: ClientProcess) -> None:
    alice = chat.join()
    nick = client.nick()
    alice.expect(f"* {nick} joined")
    client.type("last words")
    client.proc.stdin.close()  # EOF: the client half-closes, the server closes
    alice.expect(f"<{nick}> last words")
    alice.expect(f"* {nick} left")
    assert client.exit_status() == 0


def test_exits_0_when_the_server_stops(fresh: Callable[..., ServerProcess]) -> None:
    server = fresh("epoll")
    client = ClientProcess(server)
    try:
        client.nick()
        os.kill(server.proc.pid, signal.SIGTERM)
        assert client.shows("* server shutting down")
        assert client.exit_status() == 0
        assert server.proc.wait(TIMEOUT) == 0
    finally:
        client.close()


def test_a_refused_port_is_one_line_and_exit_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "chatlab.client", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 1
    assert result.stderr == f"cannot connect to 127.0.0.1:{port}: Connection refused\n"
    assert result.stdout == ""


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_bad_port_is_a_usage_error_before_any_connection(port: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatlab.client", "--port", port],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 2
    assert result.stderr.endswith(
        f"error: argument --port: '{port}' is not a port number (0-65535)\n"
    )
    assert "cannot connect" not in result.stderr


# -- the two halves, on a socket pair ------------------------------------------------


def receive_all(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_typed_lines_are_sent_with_newlines_then_the_socket_half_closes() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        send_typed_lines(io.StringIO("one\r\ntwo\n\nthree \u00e9"), ours)
        assert receive_all(theirs) == "one\ntwo\n\nthree \u00e9\n".encode()


def test_sending_to_a_vanished_server_ends_quietly() -> None:
    ours, theirs = socket.socketpair()
    theirs.close()
    with ours:
        send_typed_lines(io.StringIO("anyone?\n" * 100), ours)  # EPIPE: no exception


def test_received_text_is_printed_as_it_arrives_until_the_close() -> None:
    ours, theirs = socket.socketpair()
    out = io.StringIO()
    with ours, theirs:
        theirs.sendall(b"* caf\xc3")  # a character split across two reads
        printer = threading.Thread(target=print_received, args=(ours, out))
        printer.start()
        assert wait_for(lambda: out.getvalue() == "* caf", TIMEOUT)
        theirs.sendall(b"\xa9\n<bob> \xff\n")
        theirs.close()
        printer.join(TIMEOUT)
    assert not printer.is_alive()
    assert out.getvalue() == "* caf\u00e9\n<bob> \ufffd\n"


def test_a_reset_ends_printing_quietly() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        theirs, _ = listener.accept()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    theirs.sendall(b"* about to reset\n")
    theirs.close()
    out = io.StringIO()
    with ours:
        print_received(ours, out)
    assert out.getvalue() == "* about to reset\n"  # Linux hands over what came before the RST
