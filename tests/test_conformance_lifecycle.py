"""Stopping and logging, on every concurrent variant: signals, many clients, a stuck log pipe."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from typing import IO

import pytest
from helpers import TIMEOUT, Chat, ChatClient

from chatlab.launch import ServerProcess

STOP_WITHIN = 10.0  # seconds a server may take to exit after SIGTERM or SIGINT
PIPE_SIZE = 4096  # bytes: the smallest pipe buffer Linux allows, one page


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_says_goodbye_to_everyone_and_exits_0(
    variant: str, fresh: Callable[..., ServerProcess], sig: signal.Signals
) -> None:
    server = fresh(variant)
    chat = Chat(server)
    try:
        members = chat.members(3)
        members[0].say("/nick first")
        for member in members:
            member.expect(f"* {members[0].nick} is now known as first")
        os.kill(server.proc.pid, sig)
        for member in members:
            member.expect("* server shutting down")  # and nothing after it
            member.expect_closed()
        assert server.proc.wait(STOP_WITHIN) == 0
        assert "Traceback" not in server.output, server.output
    finally:
        chat.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_promptly_with_many_clients(
    variant: str, fresh: Callable[..., ServerProcess], sig: signal.Signals
) -> None:
    """200 clients (400 threads for the threaded variant), one of them never reading."""
    server = fresh(variant)
    deaf = ChatClient.connect(server, rcvbuf=4096)
    clients = [ChatClient.connect(server) for _ in range(200)]
    try:
        for client in clients:
            client.welcome()
        started = time.monotonic()
        os.kill(server.proc.pid, sig)
        for client in clients:
            while (line := client.line()) != "* server shutting down":
                assert line.endswith(" joined"), f"unexpected {line!r}"
        assert server.proc.wait(STOP_WITHIN) == 0
        assert time.monotonic() - started < STOP_WITHIN
    finally:
        for client in [deaf, *clients]:
            client.close()


def test_verbose_logging_never_blocks_the_room(variant: str) -> None:
    """With -v and a stderr pipe that nobody reads, the room and the shutdown go on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"chatlab.{variant}", "--port", "0", "--web-port", "0", "-v"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # never read while the server runs
    )
    try:
        fcntl.fcntl(proc.stderr, fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # so it fills up sooner
        server = ServerProcess(proc, port=_listening_port(proc))  # type: ignore[arg-type]
        for _ in range(300):  # a "connected" and a "closed" line each: ~20 KiB of log
            socket.create_connection((server.host, server.port), timeout=TIMEOUT).close()
        chat = Chat(server)
        alice, bob = chat.members(2)
        assert _bytes_waiting(proc.stderr) > PIPE_SIZE - 100, "the log pipe never filled"
        alice.say("still chatting")
        bob.expect(f"<{alice.nick}> still chatting")
        chat.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_WITHIN) == 0
        assert b"Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _listening_port(proc: subprocess.Popen[bytes]) -> int:
    """The port from the server's first line, read with a deadline."""
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    assert ready, "the server printed nothing"
    line = proc.stdout.readline().decode()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert match, line
    return int(match[1])


def _bytes_waiting(pipe: IO[bytes]) -> int:
    """How many bytes sit unread in a pipe (FIONREAD)."""
    count = fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(count, sys.byteorder)
