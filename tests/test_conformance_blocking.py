"""The blocking variant: the same protocol, one client at a time, on purpose."""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from helpers import TIMEOUT, ChatClient, cpu_seconds_over, serving

from chatlab.launch import ServerProcess, wait_for
from chatlab.room import HELP

WAIT = 0.5  # seconds a queued client is watched for a greeting it must not get


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with serving("blocking", "--max-line", "64") as server:
        yield server


@pytest.fixture
def client(server: ServerProcess) -> Iterator[ChatClient]:
    """The client being served; closed after the test, so the next one is served."""
    client = ChatClient.connect(server)
    client.welcome()
    yield client
    client.close()


def test_the_second_client_is_greeted_only_after_the_first_leaves(server: ServerProcess) -> None:
    first = ChatClient.connect(server)
    first.welcome()
    second = ChatClient.connect(server)  # the kernel completes it; nobody serves it yet
    try:
        second.say("/who")  # sits unread in the kernel until its turn
        second.expect_silence(WAIT)
        first.say("/who")
        first.expect(f"* online: {first.nick}")  # alone: the second is not a member yet
        first.close()
        second.welcome()
        second.expect(f"* online: {second.nick}")
    finally:
        first.close()
        second.close()


def test_commands_work_for_the_one_client(client: ChatClient) -> None:
    client.say("/nick solo", "/who", "/help", "/me waves", "/dance", "talking to nobody", "/who")
    client.expect(f"* {client.nick} is now known as solo")
    client.expect("* online: solo")
    assert [client.line() for _ in HELP] == list(HELP)
    client.expect("! unknown command: /dance")  # /me and the chat go to nobody
    client.expect("* online: solo")


def test_oversized_line_bad_utf8_and_controls(client: ChatClient) -> None:
    client.send(b"x" * 65 + b"\n/nick \x1b[1mbold\n/nick caf\xff\n")
    client.expect("! line too long (over 64 bytes); dropped")
    client.expect("! invalid nick: ")  # checked as sent, before the sequence is removed
    client.expect("! invalid nick: ")
    client.send(b"/dance\x1b[31m\x1b]0;title\x07\n")  # sanitised, what little comes back
    assert client.line() == "! unknown command: /dance"


def test_quit_closes_and_the_next_client_is_served(server: ServerProcess) -> None:
    first = ChatClient.connect(server)
    first.welcome()
    waiting = ChatClient.connect(server)
    try:
        first.say("/quit")
        first.expect("* bye")
        first.expect_closed()
        waiting.welcome()
    finally:
        first.close()
        waiting.close()


def test_quit_amid_a_burst_still_delivers_everything_owed(server: ServerProcess) -> None:
    """Input after /quit is left unread; closing must not turn into a reset that loses output."""
    client = ChatClient.connect(server, rcvbuf=4096)
    try:
        client.welcome()
        client.send(b"/help\n" * 150 + b"/quit\n" + b"ignored after quit\n" * 4000)
        assert [client.line() for _ in range(150 * len(HELP))] == list(HELP) * 150
        client.expect("* bye")
        client.expect_closed()
    finally:
        client.close()


def test_half_close_gets_the_answers_then_the_close(server: ServerProcess) -> None:
    client = ChatClient.connect(server)
    try:
        client.welcome()
        client.say("/who")
        client.sock.shutdown(socket.SHUT_WR)
        client.expect(f"* online: {client.nick}")
        client.expect_closed()
    finally:
        client.close()


def test_a_reset_frees_the_server_for_the_next_client(server: ServerProcess) -> None:
    first = ChatClient.connect(server)
    first.welcome()
    first.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    waiting = ChatClient.connect(server)
    try:
        first.close()  # RST
        waiting.welcome()
    finally:
        waiting.close()


def test_serving_an_idle_client_uses_no_cpu(server: ServerProcess, client: ChatClient) -> None:
    assert cpu_seconds_over(server.proc.pid, 1.0) < 0.2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_says_goodbye_to_the_client_being_served(
    fresh: Callable[..., ServerProcess], sig: signal.Signals
) -> None:
    server = fresh("blocking")
    served, waiting = ChatClient.connect(server), ChatClient.connect(server)
    try:
        served.welcome()
        os.kill(server.proc.pid, sig)
        served.expect("* server shutting down")
        served.expect_closed()
        waiting.expect("* server shutting down")  # never served, but told: not reset
        waiting.expect_closed()
        assert server.proc.wait(10) == 0
    finally:
        served.close()
        waiting.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_an_idle_server(
    fresh: Callable[..., ServerProcess], sig: signal.Signals
) -> None:
    server = fresh("blocking")
    os.kill(server.proc.pid, sig)
    assert server.proc.wait(10) == 0


def test_a_signal_while_the_client_is_not_reading(fresh: Callable[..., ServerProcess]) -> None:
    """The server is stuck in sendall to a client that reads nothing; a signal still stops it."""
    server = fresh("blocking")
    deaf = ChatClient.connect(server, rcvbuf=4096)
    try:
        deaf.welcome()
        assert wait_for(lambda: _system_call(server.proc.pid) != "running", TIMEOUT)
        in_recv = _system_call(server.proc.pid)  # waiting for our next line
        deaf.send(b"/help\n" * 20_000)  # ~6.5 MiB of answers, more than the kernel buffers
        assert wait_for(lambda: _system_call(server.proc.pid) not in ("running", in_recv), TIMEOUT)
        os.kill(server.proc.pid, signal.SIGTERM)  # now blocked in send
        assert server.proc.wait(10) == 0
    finally:
        deaf.close()


def _system_call(pid: int) -> str:
    """The number of the system call the main thread is blocked in, or "running" (Linux)."""
    with open(f"/proc/{pid}/syscall") as syscall:
        return syscall.read().split()[0]


def test_a_signal_while_the_server_is_busy_with_input(fresh: Callable[..., ServerProcess]) -> None:
    """A signal that lands while the room handles input, not in recv, still says goodbye."""
    server = fresh("blocking")
    busy = ChatClient.connect(server)
    sent = 0
    flooding = True

    def flood() -> None:  # chat to nobody: the server only reads and frames it
        nonlocal sent
        try:
            while flooding:
                busy.sock.sendall(b"talking to myself\n" * 5000)
                sent += 90_000
        except OSError:
            pass  # the server has gone

    flooder = threading.Thread(target=flood, daemon=True)
    try:
        busy.welcome()
        flooder.start()
        assert wait_for(lambda: sent > 2_000_000, TIMEOUT)
        os.kill(server.proc.pid, signal.SIGTERM)
        busy.expect("* server shutting down")
        assert server.proc.wait(10) == 0
    finally:
        flooding = False
        busy.close()
        flooder.join(TIMEOUT)
