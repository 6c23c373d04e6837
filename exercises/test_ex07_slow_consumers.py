"""Graded tests for exercise 7, slow consumers (exercises/ex07_slow_consumers.py).

Read first: the docstring of exercises/ex07_slow_consumers.py.
A slow consumer here is a real client that does not read, with small socket
buffers, so its kernel buffers fill after a few kilobytes.
"""

from __future__ import annotations

import socket

import pytest

from exercises.support import (
    SMALL_BUFFER,
    call_in_time,
    connected_pair,
    fill_send_buffer,
    pump,
    reset,
)

EXERCISE = "ex07-slow-consumers"
PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def accept(listener: socket.socket) -> socket.socket:
    sock, _ = listener.accept()
    sock.setblocking(False)
    return sock


def receive(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(1.0)
    data = b""
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return data


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="put() appends to the queue; send_some() makes one send() and deletes from the "
    "queue exactly what it sent.",
)
def test_send_some_delivers_and_says_done(answer):
    client, server_side = connected_pair()
    with client, server_side:
        server_side.setblocking(False)
        box = answer.Outbox()
        box.put(b"hello\n")
        box.put(b"world\n")
        assert box.send_some(server_side) == answer.DONE
        assert len(box) == 0
        assert receive(client, 12) == b"hello\nworld\n"
        assert box.send_some(server_side) == answer.DONE, "an empty outbox is done"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="A non-blocking send() takes what fits, and raises BlockingIOError when nothing "
    "fits: keep the rest, in order, for the next call.",
)
def test_send_some_keeps_what_the_kernel_refuses(answer, listener, connect):
    sleepy = connect(rcvbuf=SMALL_BUFFER, reading=False)
    with accept(listener) as server_side:
        box = answer.Outbox(high_water=1 << 20)
        box.put(PAYLOAD)
        assert call_in_time(box.send_some, server_side) == answer.PENDING
        assert 0 < len(box) < len(PAYLOAD), f"{len(box)} bytes still queued"
        assert call_in_time(box.send_some, server_side) == answer.PENDING, (
            "nothing fits: still pending"
        )

        sleepy.reading = True
        done = pump(lambda: None, [sleepy], lambda: box.send_some(server_side) == answer.DONE)
        assert done, f"{len(box)} bytes never left the outbox"
        assert pump(lambda: None, [sleepy], lambda: len(sleepy.received) >= len(PAYLOAD))
        assert sleepy.received == PAYLOAD, "bytes lost, doubled or out of order"


@pytest.mark.exercise(
    EXERCISE,
    points=2,
    hint="Compare the queue with high_water after the send, and report SLOW when more than "
    "high_water bytes are still waiting.",
)
def test_over_the_high_water_mark_is_slow(answer, listener, connect):
    connect(rcvbuf=SMALL_BUFFER, reading=False)
    with accept(listener) as server_side:
        box = answer.Outbox(high_water=50_000)
        box.put(b"x" * 40_000)
        assert call_in_time(box.send_some, server_side) == answer.PENDING, "under the mark"
        box.put(b"x" * 40_000)
        verdict = call_in_time(box.send_some, server_side)
        assert verdict == answer.SLOW, f"{len(box)} bytes over a 50,000 mark: {verdict}"

    reader, reader_side = connected_pair()
    with reader, reader_side:
        reader_side.setblocking(False)
        box = answer.Outbox(high_water=10_000)
        box.put(b"y" * 12_000)  # a burst over the mark, to a client with empty buffers
        assert call_in_time(box.send_some, reader_side) != answer.SLOW, (
            "the kernel took part of the burst: check the mark after the send, not before"
        )


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="high_water bytes still queued is allowed; one more is a slow consumer.",
)
def test_the_mark_is_exact(answer, listener, connect):
    connect(rcvbuf=SMALL_BUFFER, reading=False)
    with accept(listener) as server_side:
        fill_send_buffer(server_side)  # from now on, send() takes nothing
        box = answer.Outbox(high_water=1000)
        box.put(b"x" * 1000)
        assert call_in_time(box.send_some, server_side) == answer.PENDING, (
            "exactly high_water bytes queued: pending, not slow"
        )
        box.put(b"x")
        assert call_in_time(box.send_some, server_side) == answer.SLOW, "high_water + 1: slow"


@pytest.mark.exercise(
    EXERCISE,
    points=1,
    hint="send() on a reset connection raises an OSError: catch it and say BROKEN.",
)
def test_a_broken_connection_is_reported_not_raised(answer):
    client, server_side = connected_pair()
    with server_side:
        server_side.setblocking(False)
        reset(client)
        box = answer.Outbox()
        box.put(b"anyone there?\n")
        assert box.send_some(server_side) == answer.BROKEN


@pytest.mark.exercise(
    EXERCISE,
    points=3,
    hint="flush_all() calls send_some() for every client and returns exactly those whose "
    "verdict is SLOW or BROKEN, wherever they are among the others.",
)
def test_the_slow_and_the_broken_are_dropped_and_the_rest_get_everything(answer, listener, connect):
    high_water = 32_768
    # Healthy clients before, between and after the bad ones.
    first = connect()
    sleepy = connect(rcvbuf=SMALL_BUFFER, reading=False)
    middle = connect()
    broken = connect()
    last = connect()
    fast = [first, middle, last]
    sides = {client: accept(listener) for client in (first, sleepy, middle, broken, last)}
    broken.reset()
    outboxes = {side: answer.Outbox(high_water) for side in sides.values()}
    messages = [f"{i:04} ".encode() + b"x" * 994 + b"\n" for i in range(200)]  # 1 kB each
    dropped = []
    try:
        for message in messages:
            for box in outboxes.values():
                box.put(message)
            for sock in call_in_time(answer.flush_all, outboxes):
                if sock is not sides[broken]:
                    assert len(outboxes[sock]) > high_water, "dropped below the high-water mark"
                del outboxes[sock]
                dropped.append(sock)
            assert all(len(box) <= high_water for box in outboxes.values()), "unbounded queue"
            for client in fast:
                client.poll()
        assert sorted(dropped, key=id) == sorted([sides[sleepy], sides[broken]], key=id), (
            "exactly the client that does not read and the broken one are dropped"
        )
        everything = b"".join(messages)
        assert pump(
            lambda: call_in_time(answer.flush_all, outboxes),
            fast,
            lambda: all(client.received == everything for client in fast),
        ), "the clients that read must get every message, in order"
    finally:
        for side in sides.values():
            side.close()


# When you pass: see the note at the end of exercises/ex07_slow_consumers.py.
