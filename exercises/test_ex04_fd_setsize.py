"""Graded tests for exercise 4, the FD_SETSIZE guard (exercises/ex04_fd_setsize.py).

Read first: the docstring of exercises/ex04_fd_setsize.py.
To get a connection on an fd above 1,023 without opening a thousand files, the
tests move an accepted socket there with ``os.dup2``, as notebook 03 does.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator

import pytest

from chatlab.measure.fds import fd_is_open, raised_fd_limit
from exercises.support import (
    DEADLINE,
    SMALL_BUFFER,
    call_in_time,
    connected_pair,
    fill_send_buffer,
)

EXERCISE = "ex04-fd-setsize"
HIGH_FD = 1500  # an fd number select() cannot watch
REFUSAL = b"! server full; try again later\n"


@pytest.fixture
def high_fds() -> Iterator[None]:
    """Let this process open fd HIGH_FD (the soft limit is often 1,024)."""
    with raised_fd_limit(HIGH_FD + 64) as limit:
        assert limit > HIGH_FD, f"this system lets a process open only {limit} fds"
        yield


def moved_to(sock: socket.socket, number: int) -> socket.socket:
    """The same connection, on fd ``number``; ``sock`` is closed."""
    assert not fd_is_open(number), f"fd {number} is already in use"
    os.dup2(sock.fileno(), number, inheritable=False)
    sock.close()
    return socket.socket(fileno=number)


def read_to_end(sock: socket.socket) -> tuple[bytes, OSError | None]:
    """Everything ``sock`` receives until the end of stream, and the error that cut it short."""
    sock.settimeout(DEADLINE)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except OSError as error:
        return data, error
    return data, None


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="An fd_set has FD_SETSIZE bits, numbered from 0.",
)
def test_can_watch_stops_at_fd_setsize(answer):
    assert answer.FD_SETSIZE == 1024
    for fd in (0, 3, 1023):
        assert answer.can_watch(fd) is True, f"select can watch fd {fd}"
    for fd in (1024, 1025, 5000):
        assert answer.can_watch(fd) is False, f"select cannot watch fd {fd}"


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="Closing a socket with unread input sends a reset, and a reset can destroy the "
    "message you just sent. Shut down your side, drain all that is waiting (one small "
    "recv is not a drain), then close.",
)
def test_refuse_is_read_as_a_message_and_a_clean_end(answer):
    client, server_side = connected_pair()
    with client, server_side:
        client.sendall(b"hello? anyone?\n" * 2000)  # 30 kB the server will never read
        call_in_time(answer.refuse, server_side, REFUSAL)
        assert server_side.fileno() == -1, "refuse() must close the socket"
        data, error = read_to_end(client)
    assert error is None, f"after {data!r} the client got {error!r}, not a clean end"
    assert data == REFUSAL


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="A refused peer may not be reading: a blocking send() would stop the whole "
    "server. Send once, without blocking, and give up on what does not fit.",
)
def test_refuse_never_blocks(answer):
    client, server_side = connected_pair()
    with client, server_side:
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        fill_send_buffer(server_side)  # the peer has not read a byte
        server_side.setblocking(True)
        call_in_time(answer.refuse, server_side, REFUSAL * 32768)  # 1 MiB: far more than fits
        assert server_side.fileno() == -1, "refuse() must close the socket"


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="admit() decides at the door: watch the fd only if select can hold it; "
    "otherwise refuse it and return False, and never let select() see that fd.",
)
def test_a_connection_select_cannot_hold_is_refused_and_the_loop_goes_on(
    answer, listener, connect, high_fds
):
    watched = {listener.fileno()}
    alice, bob = connect(), connect()
    alice_side, _ = listener.accept()
    bob_side = moved_to(listener.accept()[0], HIGH_FD)
    with alice_side, bob_side:
        assert answer.admit(alice_side, watched, REFUSAL) is True, "alice's fd fits: admit her"
        assert alice_side.fileno() in watched
        admitted = call_in_time(answer.admit, bob_side, watched, REFUSAL)
        assert admitted is False, f"fd {HIGH_FD} does not fit in an fd_set: refuse it"
        assert HIGH_FD not in watched, "select() raises ValueError for an fd >= 1024"
        bob.sock.setblocking(True)
        assert read_to_end(bob.sock) == (REFUSAL, None), "bob must read the refusal, then EOF"

        connect()  # carol
        carol_side, _ = listener.accept()
        with carol_side:
            assert answer.admit(carol_side, watched, REFUSAL) is True, "carol's fd fits"
            alice.send(b"still there?\n")
            readable, _, _ = select.select(watched, [], [], DEADLINE)
            assert readable == [alice_side.fileno()], "the loop goes on serving alice"


# When you pass: see the note at the end of exercises/ex04_fd_setsize.py.
