"""Graded tests for exercise 5, poll masks (exercises/ex05_poll_masks.py).

Read first: the docstring of exercises/ex05_poll_masks.py.
"""

from __future__ import annotations

import select
import socket
import time

import pytest

from exercises.support import call_in_time, connected_pair, reset

EXERCISE = "ex05-poll-masks"
IN, OUT, HUP, ERR, NVAL = (
    select.POLLIN,
    select.POLLOUT,
    select.POLLHUP,
    select.POLLERR,
    select.POLLNVAL,
)


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="HUP and ERR both mean 'call recv()': it returns the end or raises the error. "
    "NVAL means the fd is not open at all. Read before you write.",
)
def test_actions_for_each_mask(answer):
    read, write, forget = answer.READ, answer.WRITE, answer.FORGET
    table = {
        0: [],
        IN: [read],
        OUT: [write],
        IN | OUT: [read, write],
        HUP: [read],
        ERR: [read],
        IN | HUP: [read],
        IN | ERR | HUP: [read],
        ERR | OUT: [read, write],
        NVAL: [forget],
    }
    for events, expected in table.items():
        assert answer.actions(events) == expected, f"events {events:#x}"


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="A socket with room in its send buffer is always writable: ask for POLLOUT only "
    "while there is something to write.",
)
def test_interest_asks_to_write_only_while_output_is_pending(answer):
    assert answer.interest(False) == IN
    assert answer.interest(True) == IN | OUT


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="register() and modify() take the events from interest(); wait() turns each "
    "(fd, events) that poll() returns into (fd, actions(events)).",
)
def test_register_and_modify_on_a_real_poller(answer):
    a, b = socket.socketpair()
    with a, b:
        watcher = answer.Watcher()
        fd = a.fileno()
        watcher.register(fd)
        assert watcher.wait(0) == [], "writable, but nobody asked to write; nothing to read"
        b.send(b"x")
        assert watcher.wait(0) == [(fd, [answer.READ])]
        a.recv(1)
        watcher.modify(fd, wants_write=True)
        assert watcher.wait(0) == [(fd, [answer.WRITE])]
        watcher.modify(fd, wants_write=False)
        assert watcher.wait(0) == []
        b.send(b"y")
        watcher.unregister(fd)
        assert watcher.wait(0) == [], "an unregistered fd is not reported"


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="select() counts its timeout in seconds, poll() in milliseconds; a fraction of a "
    "millisecond must not become 0.",
)
def test_wait_takes_seconds(answer):
    a, b = socket.socketpair()
    with a, b:
        watcher = answer.Watcher()
        watcher.register(a.fileno())
        start = time.monotonic()
        assert watcher.wait(0.2) == []
        waited = time.monotonic() - start
        assert waited >= 0.15, f"wait(0.2) returned after {waited * 1000:.1f} ms: 0.2 ms?"
        for _ in range(5):  # a timeout under a millisecond is still a wait, not poll(0)
            start = time.monotonic()
            assert watcher.wait(0.0004) == []
            waited = time.monotonic() - start
            assert waited >= 0.0004, f"wait(0.0004) returned after {waited * 1e6:.0f} µs"


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="None means 'no limit', for select() and for poll(): it has no milliseconds to convert.",
)
def test_wait_none_waits_without_a_limit(answer):
    a, b = socket.socketpair()
    with a, b:
        watcher = answer.Watcher()
        watcher.register(a.fileno())
        b.send(b"x")  # ready now, so a wait without a limit returns at once
        assert call_in_time(watcher.wait, None) == [(a.fileno(), [answer.READ])]


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="An fd closed while still registered comes back as POLLNVAL on every call, "
    "until it is unregistered.",
)
def test_a_closed_fd_is_forgotten(answer):
    a, b = socket.socketpair()
    with b:
        watcher = answer.Watcher()
        fd = a.fileno()
        watcher.register(fd)
        a.close()  # the bug: closed, still registered
        assert watcher.wait(0) == [(fd, [answer.FORGET])]
        watcher.unregister(fd)
        assert watcher.wait(0) == []


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="A peer that closed or reset makes its socket readable: recv() then returns b'' "
    "or raises the error.",
)
def test_a_closed_or_reset_peer_is_read(answer):
    for hang_up in (socket.socket.close, reset):
        client, server_side = connected_pair()
        with client, server_side:
            watcher = answer.Watcher()
            fd = server_side.fileno()
            watcher.register(fd)
            hang_up(client)
            assert watcher.wait(1.0) == [(fd, [answer.READ])], f"after {hang_up.__name__}"


# When you pass: see the note at the end of exercises/ex05_poll_masks.py.
