"""What every concurrent variant survives: the fd limit, resets, silent web connections, a blast.

Each test starts a fresh server, pushes it the way a hostile or careless client
would, and checks that the room goes on: members stay, memory stays bounded,
the CPU stays idle, the log stays short.
"""

from __future__ import annotations

import resource
import socket
import struct
from collections.abc import Callable

from conftest import TIMEOUT, Chat, ChatClient, Closed, NoLine, cpu_seconds_over

from chatlab.launch import ServerProcess

FD_LIMIT = 64  # descriptors the server may hold in the fd-limit tests
FULL_CPU = 0.3  # seconds of CPU a full server may use in 2 s: far from a spin (2 s)
WEB = ("--web-port", "auto")


def fill_with_members(server: ServerProcess, attempts: int) -> tuple[list[ChatClient], int]:
    """Connect ``attempts`` chat clients; return the members and how many were refused."""
    members, refused = [], 0
    for _ in range(attempts):
        client = ChatClient.connect(server)
        try:
            line = client.line()
        except (Closed, NoLine):
            client.close()
            raise
        if line.startswith("! server full"):
            refused += 1
            client.close()
        else:
            client.welcome(line)
            members.append(client)
    return members, refused


def web_request(server: ServerProcess, request: bytes = b"GET / HTTP/1.1\r\n\r\n") -> bytes:
    """Send one request to the web port; return everything before the close."""
    with socket.create_connection((server.host, server.web_port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_a_browser_at_the_fd_limit_gets_503_and_the_members_stay(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    server = fresh(variant, *WEB)
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    members, refused = fill_with_members(server, FD_LIMIT + 6)
    try:
        assert refused > 0, "the server never ran out of descriptors"
        assert web_request(server).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        lines_before = len(server.lines)
        with socket.create_connection((server.host, server.web_port), timeout=TIMEOUT) as sock:
            # A browser knocking while we measure: it is refused once, not retried on every turn.
            assert sock.recv(100).startswith(b"HTTP/1.1 503")
            assert cpu_seconds_over(server.proc.pid, 2.0) < FULL_CPU
        assert len(server.lines) - lines_before <= 2, server.lines[lines_before:][:10]
        speaker, listener = members[0], members[-1]
        speaker.say("still here")
        while (line := listener.line()) != f"<{speaker.nick}> still here":
            assert line.endswith(" joined"), f"unexpected {line!r}"
        assert server.proc.poll() is None
    finally:
        for client in members:
            client.close()


def test_refusals_at_the_fd_limit_log_one_line_per_burst(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    server = fresh(variant, "-v")
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    members, _ = fill_with_members(server, FD_LIMIT)
    try:
        callers = [ChatClient.connect(server) for _ in range(20)]  # one burst
        for caller in callers:
            caller.expect("! server full")
            caller.close()
        refusal_lines = [line for line in server.lines if "refus" in line]
        assert len(refusal_lines) == 1, refusal_lines  # when the burst began, not one per caller
    finally:
        for client in members:
            client.close()


def test_resets_before_the_welcome_leave_no_trace_in_the_log(
    variant: str, fresh: Callable[..., ServerProcess]
) -> None:
    """A client that connects and resets at once: the server logs nothing without -v."""
    server = fresh(variant)
    for _ in range(200):
        sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST, before the server's welcome could be read
    chat = Chat(server)
    alice, bob = chat.members(2)
    alice.say("after the resets")
    bob.expect(f"<{alice.nick}> after the resets")
    chat.close()
    assert not [line for line in server.lines if "Task exception" in line or "Error" in line]
